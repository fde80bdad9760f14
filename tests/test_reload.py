"""Hot reload: a broken new file is rejected with its error, the old configuration stays."""

from __future__ import annotations

import signal
from pathlib import Path

import yaml

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import write_config


def test_reload_rejects_broken_rules_and_keeps_serving(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            rules = tmp_path / "rules.yaml"
            good = rules.read_text()
            doc = yaml.safe_load(good)
            doc["rules"].append({"name": "broken", "kind": "outage", "colour": "red"})
            broken = yaml.safe_dump(doc, allow_unicode=True)
            rules.write_text(broken)
            status, body = w.request("POST", "/api/v1/reload", {})
            assert status == 400, body
            assert "rules.yaml" in body["error"] and "colour" in body["error"], body
            line = next(i for i, text in enumerate(broken.splitlines(), 1) if "colour" in text)
            assert f":{line}:" in body["error"], body

            assert w.proc is not None
            w.proc.send_signal(signal.SIGHUP)  # the same through SIGHUP: logged, old config stays
            w.wait_until(lambda: "reload rejected" in w.log.read_text(), what="the SIGHUP reload to be rejected")
            status, _ = w.request("POST", "/api/v1/events", [{"labels": {"alertname": "LinkDown",
                                                                        "client": "acme", "site": "acme-krk"}}])
            assert status == 200
            w.wait_until(lambda: w.request("GET", "/api/v1/tickets")[1]["tickets"], what="a ticket")

            rules.write_text(good)
            status, body = w.request("POST", "/api/v1/reload", {})
            assert status == 200, body
        finally:
            w.stop()
