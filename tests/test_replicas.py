"""Several replicas on one PostgreSQL database: every replica takes events and agents'
operations, one runs the engine, and when it dies another takes over with nothing lost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import probe, write_config


def test_two_replicas_one_engine_and_failover(tmp_path: Path, pg_url: str) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, pg_url)
        # a replica killed in the middle of a send leaves claims that the other retakes after the lease
        cfg.write_text(cfg.read_text().replace("retry_initial: 0.5s", "retry_initial: 0.5s\n  claim_lease: 3s"))
        a = WatcherProcess(cfg, free_port(), tmp_path / "a.log")
        b = WatcherProcess(cfg, free_port(), tmp_path / "b.log")
        a.start()
        b.start()
        try:
            leader, other = (a, b) if "runs the engine" in a.log.read_text() else (b, a)
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            # the same alert from two senders, one to each replica: one occurrence
            p1 = probe("https://vpn.acme.example/", "firing", start)
            p2 = probe("203.0.113.10:443", "firing", start)
            assert a.request("POST", "/api/v1/events", [p1, p2])[1]["accepted"] == 2
            assert b.request("POST", "/api/v1/events", [p1, p2])[1]["duplicates"] == 2
            tickets = other.wait_until(lambda: other.request("GET", "/api/v1/tickets")[1]["tickets"],
                                       what="a ticket seen from the replica that does not run the engine")
            assert len(tickets) == 1
            tid = tickets[0]["id"]
            status, body = other.request("POST", "/api/v1/people/jan.kowalski/callbacks", {})
            assert status == 200 and body["tickets"] == [tid], body

            leader.kill()  # the engine's replica dies
            other.wait_until(lambda: "runs the engine" in other.log.read_text(), timeout=30,
                             what="the other replica to take over the engine")
            end = datetime.now(UTC).replace(microsecond=0)
            resolved = [probe("https://vpn.acme.example/", "resolved", start, end),
                        probe("203.0.113.10:443", "resolved", start, end)]
            assert other.request("POST", "/api/v1/events", resolved)[0] == 200
            other.wait_until(lambda: other.request("GET", f"/api/v1/tickets/{tid}")[1]["status"] == "resolved",
                             what="the ticket resolved by the new engine")
            try:
                smtp.wait_for(5, timeout=30)
            except TimeoutError:
                raise AssertionError(str(other.request("GET", "/api/v1/outbox")[1])) from None
            doc = other.request("GET", f"/api/v1/tickets/{tid}")[1]
            assert [c["person"] for c in doc["callbacks"]] == ["jan.kowalski"]
            sent = [(m["To"]) for m in smtp.messages]
            assert sorted(sent).count("jan.kowalski@acme.example") == 2, sent  # opened + resolved, once each
        finally:
            for w in (a, b):
                if w.proc and w.proc.poll() is None:
                    w.stop()
