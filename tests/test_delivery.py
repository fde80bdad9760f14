"""Notices owed survive a notifier that is down and a SIGKILL of the service: every message
arrives late, none lost, none doubled."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import probe, write_config


def test_notifier_down_then_back_after_a_sigkill_delivers_each_once(tmp_path: Path) -> None:
    smtp = SmtpServer()  # created but not started: the mail server is down
    with HttpReceiver() as http:
        http.status = 500  # the webhook receiver fails too
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            events = [probe("https://vpn.acme.example/", "firing", start),
                      probe("203.0.113.10:443", "firing", start)]
            assert w.request("POST", "/api/v1/events", events)[0] == 200

            def retrying() -> bool:
                rows = w.request("GET", "/api/v1/outbox")[1]["outbox"]
                return len(rows) >= 4 and all(r["attempts"] >= 1 and r["state"] in ("pending", "sending")
                                              for r in rows)

            w.wait_until(retrying, timeout=30, what="every notice to have failed at least once")
            assert smtp.messages == [] and http.bodies == []
            _, metrics = w.request("GET", "/metrics")
            assert 'watcher_notifications_total{kind="opened",result="retry"}' in metrics

            w.kill()  # SIGKILL while notices are owed
            smtp.start()
            http.status = 200
            w.start()
            smtp.wait_for(3, timeout=60)  # two people and the office
            http.wait_for(1, timeout=60)
            time.sleep(2)
            counted = Counter(m["To"] for m in smtp.messages)
            assert counted == {"jan.kowalski@acme.example": 1, "ewa.smith@acme.example": 1,
                               "recepcja@acme.example": 1}, counted
            assert len(http.bodies) == 1
            rows = w.request("GET", "/api/v1/outbox")[1]["outbox"]
            assert {r["state"] for r in rows} == {"sent"}
        finally:
            w.stop()
            smtp.stop()


def test_undeliverable_notice_becomes_dead_and_is_shown(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        text = cfg.read_text().replace("retry_initial: 0.5s", "retry_initial: 0.1s\n  max_attempts: 2")
        cfg.write_text(text)
        http.status = 500
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            w.request("POST", "/api/v1/events", [probe("https://vpn.acme.example/", "firing", start),
                                                 probe("203.0.113.10:443", "firing", start)])
            dead = w.wait_until(lambda: w.request("GET", "/api/v1/outbox?state=dead")[1]["outbox"], timeout=30,
                                what="a dead notice")
            assert [(r["recipient"], r["kind"]) for r in dead] == [("tom.hook", "opened")]
            assert dead[0]["attempts"] == 2 and dead[0]["last_error"], dead
            _, metrics = w.request("GET", "/metrics")
            assert 'watcher_outbox{state="dead"} 1.0' in metrics
        finally:
            w.stop()


def test_two_tickets_for_one_person_at_once_are_one_digest_message(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        inv = tmp_path / "inventory.yaml"
        inv.write_text(inv.read_text().replace("people:", "mailboxes:\n  - address: jan.kowalski@acme.example\n"
                                               "    person: jan.kowalski\n  people:", 1))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            w.request("POST", "/api/v1/events", [
                probe("https://vpn.acme.example/", "firing", start), probe("203.0.113.10:443", "firing", start),
                # a full mailbox, not "mail server down": that notice cannot go into the server that is down
                    {"labels": {"alertname": "MailboxQuotaNearlyFull", "mailbox": "jan.kowalski@acme.example",
                                "client": "acme", "severity": "warning"}}])
            w.wait_until(lambda: len(w.request("GET", "/api/v1/tickets")[1]["tickets"]) == 2, what="two tickets")
            smtp.wait_for(3, timeout=30)
            time.sleep(2)
            to_jan = [m for m in smtp.messages if m["To"] == "jan.kowalski@acme.example"]
            assert len(to_jan) == 1, [m["Subject"] for m in to_jan]
            assert " | " in str(to_jan[0]["Subject"]), to_jan[0]["Subject"]
            rows = w.request("GET", "/api/v1/outbox")[1]["outbox"]
            assert sum(1 for r in rows if r["recipient"] == "jan.kowalski" and r["state"] == "sent") == 2
        finally:
            w.stop()
