"""SIGTERM stops ``watcher serve`` within 10 s whatever it is doing, and releases the engine:
here the store blocks the engine's commits (another session holds a lock on its table, as a
long migration or a stuck backup would) while requests wait for the engine.  A second replica
then leads at once, and once the store is free again it opens the ticket and tells people."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import probe, write_config


@contextlib.contextmanager
def engine_table_locked(db_url: str) -> Iterator[None]:
    """Another session that blocks writes to the engine's state (reads still go through)."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.split("///", 1)[1], isolation_level=None, timeout=30)
        conn.execute("BEGIN IMMEDIATE")  # the database's write lock
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    eng = create_engine(db_url)
    with eng.connect() as conn:
        conn.execute(text("LOCK TABLE engine_state IN EXCLUSIVE MODE"))
        try:
            yield
        finally:
            conn.rollback()
    eng.dispose()


def test_sigterm_while_the_engine_is_stuck_then_another_replica_leads(tmp_path: Path, db_url: str) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, db_url)
        cfg.write_text(cfg.read_text() + "max_ready_lag: 2s\n")
        a = WatcherProcess(cfg, free_port(), tmp_path / "a.log")
        b = WatcherProcess(cfg, free_port(), tmp_path / "b.log")
        a.start()
        b.start()
        try:
            leader, other = (a, b) if "runs the engine" in a.log.read_text() else (b, a)
            assert "runs the engine" in leader.log.read_text()
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            with engine_table_locked(db_url):
                answers: list[object] = []

                def ask(method: str, path: str, body: object) -> None:
                    try:
                        answers.append(leader.request(method, path, body)[0])
                    except OSError as exc:  # cut off by the stop: the client retries, nothing is half-stored
                        answers.append(exc)

                in_flight = [threading.Thread(target=ask, args=args, daemon=True) for args in (
                    ("POST", "/api/v1/events", [probe("https://vpn.acme.example/", "firing", start)]),
                    ("POST", "/api/v1/people/jan.kowalski/callbacks", {}))]
                for t in in_flight:
                    t.start()
                time.sleep(3)
                if not db_url.startswith("sqlite"):  # SQLite's lock also holds up /ready's reads... and ingest
                    status, ready = leader.request("GET", "/ready")
                    assert status == 503 and ready["lag_seconds"] > 2, ready
                assert leader.proc is not None
                began = time.monotonic()
                leader.proc.send_signal(signal.SIGTERM)
                leader.proc.wait(30)
                took = time.monotonic() - began
                assert took < 10, f"SIGTERM took {took:.1f} s\n{leader.log.read_text()}"
                # the other replica takes the engine at once, even while the store is still stuck
                other.wait_until(lambda: "runs the engine" in other.log.read_text(), timeout=5,
                                 what="the other replica to lead")
            firing = [probe("https://vpn.acme.example/", "firing", start), probe("203.0.113.10:443", "firing", start)]
            assert other.request("POST", "/api/v1/events", firing)[0] == 200
            other.wait_until(lambda: other.request("GET", "/api/v1/tickets")[1]["tickets"], what="the ticket")
            smtp.wait_for(3, timeout=30)
            assert other.wait_until(lambda: other.request("GET", "/ready")[0] == 200, what="ready again")
        finally:
            for w in (a, b):
                if w.proc and w.proc.poll() is None:
                    w.stop()
