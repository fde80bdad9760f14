"""Signed links in real messages: the self-service callback and the office's answer work
once, and fail when altered, reused, or used for another person or ticket."""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port, text_body
from tests.test_e2e import probe, write_config

LINK = re.compile(r"http://127\.0\.0\.1:\d+/l/[A-Za-z0-9_\-.=]+")


def post(url: str, form: dict[str, str] | None = None) -> int:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(form or {}).encode(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_callback_and_office_links(tmp_path: Path) -> None:
    port = free_port()
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        doc = yaml.safe_load(cfg.read_text())
        doc["public_url"] = f"http://127.0.0.1:{port}"
        cfg.write_text(yaml.safe_dump(doc))
        w = WatcherProcess(cfg, port, tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            w.request("POST", "/api/v1/events", [probe("https://vpn.acme.example/", "firing", start),
                                                 probe("203.0.113.10:443", "firing", start)])
            smtp.wait_for(3, timeout=30)
            by_to = {m["To"]: text_body(m) for m in smtp.messages}
            (jan_link,) = LINK.findall(by_to["jan.kowalski@acme.example"])
            office_links = LINK.findall(by_to["recepcja@acme.example"])
            assert len(office_links) == 2
            tid = w.request("GET", "/api/v1/tickets")[1]["tickets"][0]["id"]

            with urllib.request.urlopen(jan_link, timeout=10) as resp:  # GET only shows the form
                assert resp.status == 200
                page = resp.read().decode()
            # Polish first, in the words of the mail, with the optional wishes
            assert page.index("Proszę o telefon po usunięciu usterki") < page.index("Please call me")
            assert "name=phone" in page and "name=preferred_time" in page and "Powiadom" not in page
            assert w.request("GET", f"/api/v1/tickets/{tid}")[1]["callbacks"] == []
            token = jan_link.rsplit("/", 1)[1]
            forged = jan_link[: -len(token)] + token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
            assert post(forged) == 403
            assert post(jan_link, {"phone": "+48 601 000 000", "preferred_time": "po 15:00"}) == 200
            (cb,) = w.request("GET", f"/api/v1/tickets/{tid}")[1]["callbacks"]
            assert (cb["person"], cb["phone"], cb["preferred_time"]) == ("jan.kowalski", "+48 601 000 000", "po 15:00")
            assert post(jan_link) == 410, "a link works once"

            planned = next(u for u in office_links if post_preview(u) == "planned")
            assert post(planned) == 200
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tid}")[1]["planned"], what="ticket planned")
            smtp.wait_for(5, timeout=30)  # jan and ewa get the planned wording
            kinds = {(n["to"], n["kind"]) for n in w.request("GET", f"/api/v1/tickets/{tid}")[1]["notifications"]}
            assert {("jan.kowalski", "planned"), ("ewa.smith", "planned")} <= kinds
        finally:
            w.stop()


def post_preview(url: str) -> str:
    """Which action a link's confirmation page offers (planned or failure)."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        page = resp.read().decode()
    return "failure" if "awaria" in page.lower() else "planned"
