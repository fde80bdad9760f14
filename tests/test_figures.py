"""Every worker and every replica tells the same figures: the engine's cursor, the inbox lag
and the open tickets are the database's, whichever process answers the scrape.

Real ``watcher serve`` processes (``--workers 2`` on SQLite and PostgreSQL, and two replicas
on one PostgreSQL database) under a steady stream of events that open and resolve tickets.
While the stream runs, scrapes in sequence never see the cursor go back (a process that
reported its own stale engine would); once it stops, every process reports the same cursor,
no lag, and the open tickets the tickets API lists.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import write_config
from tests.test_workers import two_workers


def host_down(host: str, status: str, start: datetime) -> dict[str, Any]:
    """A host of ACME stops answering (the host-down rule: one ticket per host, nobody told)."""
    return {"source": "prometheus", "status": status,
            "labels": {"alertname": "InstanceDown", "client": "acme", "host": host},
            "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if status == "resolved" else None}


class Load:
    """Posts batches of events to the given services in turn until stopped: every batch
    brings new hosts down and brings back some that went down earlier."""

    def __init__(self, targets: list[WatcherProcess], batch: int = 30, pause: float = 0.02) -> None:
        self.targets, self.batch, self.pause = targets, batch, pause
        self.sent = 0
        self.failures: list[Any] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
        n = 0
        while not self._stop.is_set():
            events = []
            for _ in range(self.batch):
                events.append(host_down(f"srv-{n}", "firing", start))
                if n % 3 == 0 and n >= 30:  # a third of the hosts come back a little later
                    events.append(host_down(f"srv-{n - 30}", "resolved", start))
                n += 1
            target = self.targets[(n // self.batch) % len(self.targets)]
            status, body = target.request("POST", "/api/v1/events", events)
            if status != 200:
                self.failures.append(body)
            self.sent += len(events)
            self._stop.wait(self.pause)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class Reading:
    pid: int
    cursor: int
    lag: int
    head: int
    open_tickets: int
    leader_process: str | None

    @property
    def figures(self) -> tuple[int, int, int, int]:
        return self.cursor, self.lag, self.head, self.open_tickets


def read_stats(w: WatcherProcess) -> Reading:
    status, body = w.request("GET", "/api/v1/stats")
    assert status == 200, body
    e = body["engine"]
    return Reading(body["process"]["pid"], e["cursor"], e["inbox_lag"], e["inbox_head"], e["open_tickets"],
                   e["leader_process"])


def read_metrics(w: WatcherProcess) -> dict[str, float]:
    status, text = w.request("GET", "/metrics")
    assert status == 200, text
    wanted = {"watcher_engine_cursor", "watcher_inbox_lag", "watcher_inbox_head", "watcher_open_tickets"}
    return {f.name: f.samples[0].value for f in text_string_to_metric_families(text) if f.name in wanted}


def scrape_under_load(services: list[WatcherProcess], processes: int, seconds: float = 8.0) -> list[Reading]:
    """Scrape the services in turn while events stream in; the readings in the order taken."""
    readings: list[Reading] = []
    metric_cursors: list[float] = []
    with Load(services) as load:
        deadline = time.monotonic() + seconds
        i = 0
        while time.monotonic() < deadline or len({r.pid for r in readings}) < processes:
            w = services[i % len(services)]
            readings.append(read_stats(w))
            m = read_metrics(w)
            metric_cursors.append(m["watcher_engine_cursor"])
            assert m["watcher_inbox_lag"] >= 0
            i += 1
            assert time.monotonic() < deadline + 30, "not every process answered"
    assert not load.failures, load.failures[:3]
    assert load.sent > 500, load.sent
    assert len({r.pid for r in readings}) == processes
    assert readings[-1].cursor > readings[0].cursor, "the engine moved while it was scraped"
    cursors = [r.cursor for r in readings]
    assert cursors == sorted(cursors), f"a scrape saw the cursor go back: {cursors}"
    assert metric_cursors == sorted(metric_cursors), f"/metrics saw the cursor go back: {metric_cursors}"
    leaders = {r.leader_process for r in readings if r.leader_process is not None}  # None: before it published
    assert len(leaders) == 1, f"one leader, the same for every process: {leaders}"
    assert all(0 <= r.lag <= r.head - r.cursor for r in readings)
    return readings


def settle(services: list[WatcherProcess], processes: int, open_count: Callable[[], int]) -> Reading:
    """Once the stream stopped and the engine caught up (its timers too): every process
    reports the same in /api/v1/stats and /metrics, and it is what the tickets API lists."""

    def agreed() -> Reading | None:
        got: dict[int, Reading] = {}
        metrics: set[tuple[float, ...]] = set()
        for _ in range(12):
            for w in services:
                r = read_stats(w)
                got[r.pid] = r
                m = read_metrics(w)
                metrics.add((m["watcher_engine_cursor"], m["watcher_inbox_lag"], m["watcher_inbox_head"],
                             m["watcher_open_tickets"]))
        figures = {r.figures for r in got.values()}
        if len(got) < processes or len(figures) != 1 or metrics != figures:
            return None
        r = next(iter(got.values()))
        if r.lag != 0 or r.cursor != r.head or r.open_tickets != open_count():
            return None
        if read_stats(services[0]).figures != r.figures:  # nothing moved meanwhile
            return None
        return r

    return services[0].wait_until(agreed, timeout=60, what="every process to report the same figures")


def open_tickets(w: WatcherProcess) -> Callable[[], int]:
    """Counts the open and acknowledged tickets the tickets API lists (page by page)."""

    def count() -> int:
        total = 0
        for status in ("open", "acknowledged"):
            offset = 0
            while page := w.request("GET", f"/api/v1/tickets?status={status}&limit=5000&offset={offset}")[1][
                    "tickets"]:
                total += len(page)
                offset += len(page)
        return total
    return count


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_every_worker_reports_the_same_figures(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    with two_workers(backend, tmp_path, request) as w:
        scrape_under_load([w], processes=2)
        final = settle([w], 2, open_tickets(w))
        assert final.open_tickets > 50, final


def test_every_replica_reports_the_same_figures(tmp_path: Path, pg_url: str) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, pg_url)
        a = WatcherProcess(cfg, free_port(), tmp_path / "a.log")
        b = WatcherProcess(cfg, free_port(), tmp_path / "b.log")
        a.start()
        b.start()
        try:
            scrape_under_load([a, b], processes=2)
            final = settle([a, b], 2, open_tickets(b))
            assert final.open_tickets > 50, final
        finally:
            for w in (a, b):
                w.stop()
