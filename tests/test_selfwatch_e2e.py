"""Who watches the watcher, end to end with ``watcher serve`` as a subprocess: a Watchdog
that stops arriving and an SNMP agent that goes quiet each open one "blind" ticket for the
MSP's team after the configured period (nobody at the client affected), it survives a
SIGKILL of watcher without a second ticket, and it resolves when the source speaks again;
the heartbeat URL gets pings while the engine is healthy and none while it is stalled.

Periods are 2-3 s so the tests are fast; the margins around them are generous (several
seconds) because the CI machine is a shared 2-core box.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, free_port
from tests.test_e2e import fast_rules

SNMPTRAP = shutil.which("snmptrap")
COLD_START = "1.3.6.1.6.3.1.1.5.1"


def write_config(tmp_path: Path, db: str, **extra: Any) -> Path:
    inventory = {"clients": [{
        "id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "en", "timezone": "Europe/Warsaw",
        "admins": ["json://127.0.0.1:9/admins"],
        "sites": [{"id": "acme-krk", "name": "Biuro Kraków", "match": {"snmp_agent": ["127.0.0.1"]}}],
        "people": [{"id": "jan", "name": "Jan", "site": "acme-krk", "remote": True,
                    "notify": ["json://127.0.0.1:9/jan"]}],
    }]}
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True))
    fast_rules(tmp_path)
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml", "database": db,
                                   "engine_tick": "0.2s", "notify": {"poll_interval": "0.2s"}, **extra}))
    return cfg


def watchdog(start: datetime) -> dict[str, Any]:
    """What Alertmanager re-sends every repeat_interval for the always-firing Watchdog: the
    same payload each time, so watcher stores it once and later copies are duplicates."""
    return {"version": "4", "status": "firing", "receiver": "watcher", "groupKey": "{}:{alertname=\"Watchdog\"}",
            "groupLabels": {"alertname": "Watchdog"}, "commonLabels": {}, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{"status": "firing", "labels": {"alertname": "Watchdog", "severity": "none",
                                                       "prometheus": "acme/k8s"},
                        "annotations": {"summary": "An alert that should always be firing"},
                        "startsAt": start.strftime("%Y-%m-%dT%H:%M:%SZ"), "endsAt": "0001-01-01T00:00:00Z"}]}


@contextmanager
def every(seconds: float, action: Callable[[], object]) -> Iterator[None]:
    """Run ``action`` every ``seconds`` in a thread while the block runs (a source that speaks)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            action()
            stop.wait(seconds)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def monitoring_tickets(w: WatcherProcess) -> list[dict[str, Any]]:
    return [t for t in w.request("GET", "/api/v1/tickets")[1]["tickets"] if t["category"] == "monitoring"]


def blind_ticket_cycle(w: WatcherProcess, speak: Callable[[], object], period: float, feed: str) -> None:
    """A source that speaks, goes silent past its period, survives a SIGKILL of watcher, and
    comes back: one ticket, opened after the period, resolved after it speaks again."""
    with every(0.4, speak):
        time.sleep(period * 2 + 1)  # speaking: nothing opens, however long
        assert monitoring_tickets(w) == []
    silent_from = time.time()
    tickets = w.wait_until(lambda: monitoring_tickets(w), timeout=period + 15, what="the blind ticket")
    waited = time.time() - silent_from
    assert waited >= period - 1.0, f"opened {waited:.1f}s into a {period}s period"
    (tk,) = tickets
    assert tk["status"] == "open" and tk["entity"] == {"kind": "client", "id": "acme"}, tk
    assert tk["title"].startswith("Monitoring of ACME Sp. z o.o. is blind since "), tk["title"]
    assert feed in tk["title"]
    assert tk["affected"] == [], "nobody at the client is told: their office is not down, our view is"
    metrics = w.request("GET", "/metrics")[1]
    assert f'watcher_feed_silent{{client="acme",feed="{feed}"}} 1.0' in metrics

    w.kill()  # the announcement is durable: a restart neither forgets it nor opens it twice
    w.start()
    time.sleep(period + 1.5)
    assert [t["id"] for t in monitoring_tickets(w)] == [tk["id"]]
    assert w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]["status"] == "open"

    with every(0.4, speak):
        w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]["status"] == "resolved",
                     timeout=20, what="the blind ticket resolved once the source speaks")
        time.sleep(period + 1)
    assert [t["id"] for t in monitoring_tickets(w)] == [tk["id"]], "one incident, one ticket"
    w.wait_until(lambda: f'watcher_feed_silent{{client="acme",feed="{feed}"}} 0.0' in w.request("GET", "/metrics")[1],
                 what="the feed no longer silent on /metrics")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_watchdog_that_stops_opens_one_blind_ticket_and_resolves(backend: str, tmp_path: Path,
                                                                 request: pytest.FixtureRequest) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    period = 3.0
    cfg = write_config(tmp_path, db, feeds=[{"name": "acme-watchdog", "client": "acme", "source": "alertmanager",
                                             "match": {"alertname": "Watchdog"}, "period": f"{period}s"}])
    w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
    w.start()
    try:
        payload = watchdog(datetime.now(UTC))
        assert w.request("POST", "/webhooks/alertmanager", payload)[0] == 200
        blind_ticket_cycle(w, lambda: w.request("POST", "/webhooks/alertmanager", payload), period, "acme-watchdog")
        assert "feed acme-watchdog of client acme is silent since" in w.log.read_text()
    finally:
        w.stop()


@pytest.mark.skipif(SNMPTRAP is None, reason="net-snmp's snmptrap is not installed (Debian package snmp)")
def test_snmp_agent_that_goes_quiet_opens_one_blind_ticket_and_resolves(tmp_path: Path) -> None:
    period = 3.0
    snmp_port = free_port()
    cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'w.db'}",
                       snmp={"listen": f"127.0.0.1:{snmp_port}", "communities": ["s3cret"]},
                       feeds=[{"name": "krk-router", "client": "acme", "source": "snmp",
                               "match": {"snmp_agent": "127.0.0.1"}, "period": f"{period}s"}])
    w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log", extra=["--snmp-listen", f"127.0.0.1:{snmp_port}"])
    w.start()

    def trap() -> None:
        assert SNMPTRAP is not None
        subprocess.run([SNMPTRAP, "-v", "2c", "-c", "s3cret", f"udp:127.0.0.1:{snmp_port}", "", COLD_START],
                       check=True, timeout=20, capture_output=True)

    try:
        blind_ticket_cycle(w, trap, period, "krk-router")
    finally:
        w.stop()


def test_heartbeat_pings_while_healthy_and_not_while_the_engine_is_stalled(tmp_path: Path, pg_url: str) -> None:
    """The engine is stalled for real: a transaction of another client holds an exclusive
    lock on the inbox (as a runaway migration or a stuck vacuum would), so the engine's next
    read blocks; the HTTP side and the database itself still answer."""
    with HttpReceiver() as hc:
        cfg = write_config(tmp_path, pg_url, heartbeat={"url": hc.url("/ping/acme-watcher"), "interval": "0.3s",
                                                         "stall_after": "1.5s"})
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            pings = hc.wait_for(3, timeout=20)
            assert {p["path"] for p in hc.requests} == {"/ping/acme-watcher"}
            assert all(p == "" for p in pings), "a plain GET"

            locker = create_engine(pg_url)
            with locker.connect() as conn:
                conn.execute(text("LOCK TABLE inbox IN ACCESS EXCLUSIVE MODE"))
                time.sleep(1.5 + 1.5)  # stall_after, and a margin for the ping in flight
                before = len(hc.requests)
                time.sleep(4)
                assert len(hc.requests) == before, "no pings while the engine is stalled"
                assert w.request("GET", "/-/healthy")[0] == 200, "the service itself still answers"
                conn.rollback()
            locker.dispose()
            hc.wait_for(len(hc.requests) + 3, timeout=20)  # the engine goes on: pings again
            metrics = w.request("GET", "/metrics")[1]
            skipped = [line for line in metrics.splitlines()
                       if line.startswith('watcher_heartbeat_pings_total{result="skipped"}')]
            assert skipped and float(skipped[0].split()[-1]) > 0, metrics
            assert "watcher_store_errors_total 0.0" in metrics, "the database answered: only the engine was stuck"
            assert "engine not healthy" in w.log.read_text()
        finally:
            w.stop()
