"""Site probes and the collector scheduler, against real local servers.

The servers are real (an aiohttp application on a free port, an asyncio TCP listener)
and are stopped and started again on the same port to make a target go down and come
back.  Intervals are tens of milliseconds so the timelines take well under a second.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from watcher.collectors.probes import ProbeCollector, ProbeError, ProbeTarget, icmp_method
from watcher.collectors.schedule import Job, Scheduler
from watcher.config.inventory import Inventory, Probe, Site
from watcher.model import Event


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def inventory(*probes: Probe, site: str = "acme-krk", client: str = "acme") -> Inventory:
    inv = Inventory()
    inv.sites[site] = Site(site, client, site, None, tuple(probes), (), None)
    return inv


class Sink:
    """The collector's sink: keeps every batch it is handed."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: list[Event]) -> None:
        self.events.extend(events)

    def of(self, status: str) -> list[Event]:
        return [e for e in self.events if e.status == status and e.value is None]


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


class HttpServer:
    """A small aiohttp site on a fixed port that the test can stop and start again."""

    def __init__(self, app: web.Application, port: int) -> None:
        self.app = app
        self.port = port
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="<h1>VPN portal</h1> status: OK")

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="oops")

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/broken", broken)
    server = HttpServer(app, free_port())
    await server.start()
    yield server
    await server.stop()


# ---------------------------------------------------------------- probe kinds


async def test_http_status_and_expect(http_server: HttpServer) -> None:
    collector = ProbeCollector(Inventory(), Sink())
    async with collector:
        await collector.check(Probe("http", http_server.url, timeout=2))
        await collector.check(Probe("http", http_server.url, timeout=2, expect="status: OK"))
        with pytest.raises(ProbeError, match="lacks 'status: DOWN'"):
            await collector.check(Probe("http", http_server.url, timeout=2, expect="status: DOWN"))
        with pytest.raises(ProbeError, match="HTTP 500"):
            await collector.check(Probe("http", http_server.url + "broken", timeout=2))


async def test_http_expect_mismatch_fires_through_run(http_server: HttpServer) -> None:
    sink = Sink()
    probe = Probe("http", http_server.url, timeout=2, retries=0, expect="maintenance page")
    async with ProbeCollector(inventory(probe), sink) as collector:
        await collector.run(ProbeTarget("acme", "acme-krk", probe))
    [event] = sink.of("firing")
    assert "lacks 'maintenance page'" in event.annotations["error"]


async def test_dns_localhost_and_invalid() -> None:
    collector = ProbeCollector(Inventory(), Sink())
    await collector.check(Probe("dns", "localhost", timeout=5))
    await collector.check(Probe("dns", "localhost", timeout=5, expect="127.0.0.1"))
    with pytest.raises(ProbeError, match=r"cannot resolve nonexistent\.invalid"):
        await collector.check(Probe("dns", "nonexistent.invalid", timeout=5))
    with pytest.raises(ProbeError, match=r"not 192\.0\.2\.99"):
        await collector.check(Probe("dns", "localhost", timeout=5, expect="192.0.2.99"))


async def test_tcp_banner_expect() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    collector = ProbeCollector(Inventory(), Sink())
    try:
        await collector.check(Probe("tcp", f"127.0.0.1:{port}", timeout=2, expect="SSH-2.0"))
        with pytest.raises(ProbeError, match="banner lacks"):
            await collector.check(Probe("tcp", f"127.0.0.1:{port}", timeout=2, expect="220 smtp"))
    finally:
        server.close()
        await server.wait_closed()


async def test_icmp_localhost_when_allowed() -> None:
    method = icmp_method()
    if method is None:
        pytest.skip("this process may not send ICMP (no ping socket, raw socket or ping binary)")
    collector = ProbeCollector(Inventory(), Sink(), icmp=method)
    await collector.check(Probe("icmp", "127.0.0.1", timeout=2))


async def test_icmp_unavailable_is_reported_once_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    sink = Sink()
    probes = (Probe("icmp", "192.0.2.1"), Probe("icmp", "192.0.2.2"), Probe("dns", "localhost"))
    scheduler = Scheduler()
    with caplog.at_level(logging.ERROR, logger="watcher.collectors.probes"):
        collector = ProbeCollector(inventory(*probes), sink, icmp=None)
        collector.register(scheduler)
        await collector.run(ProbeTarget("acme", "acme-krk", probes[0]))
    assert scheduler.names() == ["probe acme-krk dns localhost"]
    assert len([r for r in caplog.records if "icmp probes skipped" in r.message]) == 1
    skipped = {s.target.probe.target: s.skipped for s in collector.states()}
    assert skipped["192.0.2.1"] and skipped["192.0.2.2"] and skipped["localhost"] is None
    assert sink.events == []


def test_malformed_targets_are_not_run() -> None:
    probes = (Probe("tcp", "no-port-here"), Probe("http", "vpn.acme.example"), Probe("tcp", "10.0.0.1:22"))
    collector = ProbeCollector(inventory(*probes), Sink())
    assert [t.probe.target for t in collector.targets()] == ["10.0.0.1:22"]


# ---------------------------------------------------------------- down and up again


async def test_tcp_target_down_then_back() -> None:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    port = free_port()
    server = await asyncio.start_server(serve, "127.0.0.1", port)
    probe = Probe("tcp", f"127.0.0.1:{port}", interval=0.05, timeout=1, retries=1)
    target = ProbeTarget("acme", "acme-krk", probe)
    sink = Sink()
    collector = ProbeCollector(inventory(probe), sink, retry_delay=0.01)

    await collector.run(target)
    [startup] = sink.events
    assert startup.status == "resolved" and startup.starts_at is None, "closes what a previous run left"
    assert startup.ends_at is not None
    sink.events.clear()
    await collector.run(target)
    assert sink.events == []

    server.close()
    await server.wait_closed()
    await collector.run(target)
    await collector.run(target)
    first, again = sink.of("firing")
    assert first.labels == {"alertname": "ProbeFailed", "client": "acme", "site": "acme-krk",
                            "instance": f"127.0.0.1:{port}", "probe_type": "tcp"}
    assert first.source == "probe"
    assert first.starts_at is not None and first.starts_at == again.starts_at
    assert first.occurrence_key == again.occurrence_key
    assert "refused" in first.annotations["error"].lower()
    assert first.annotations["attempts"] == "2"
    assert float(first.annotations["latency_seconds"]) >= 0

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    try:
        await collector.run(target)
        await collector.run(target)
    finally:
        server.close()
        await server.wait_closed()
    [resolved] = sink.of("resolved")
    assert resolved.labels == first.labels
    assert resolved.starts_at == first.starts_at
    assert resolved.ends_at is not None and resolved.ends_at >= first.starts_at
    assert len(sink.events) == 3
    [state] = collector.states()
    assert state.up is True and state.failing_since is None


async def test_retry_that_succeeds_is_no_failure() -> None:
    attempts = 0

    async def flaky(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        return web.Response(status=503 if attempts == 1 else 200)

    app = web.Application()
    app.router.add_get("/", flaky)
    server = HttpServer(app, free_port())
    await server.start()
    probe = Probe("http", server.url, timeout=2, retries=1)
    sink = Sink()
    try:
        async with ProbeCollector(inventory(probe), sink, retry_delay=0.01,
                                  resolve_on_start=False) as collector:
            await collector.run(ProbeTarget("acme", "acme-krk", probe))
    finally:
        await server.stop()
    assert attempts == 2
    assert sink.events == []


async def test_http_target_stops_and_comes_back_on_schedule(http_server: HttpServer) -> None:
    probe = Probe("http", http_server.url, interval=0.05, timeout=1, retries=0, expect="status: OK")
    sink = Sink()
    async with ProbeCollector(inventory(probe), sink) as collector, \
            Scheduler(max_jitter=0) as scheduler:
        collector.register(scheduler)
        await asyncio.sleep(0.15)
        assert [e.status for e in sink.events] == ["resolved"]
        sink.events.clear()

        await http_server.stop()
        await until(lambda: len(sink.of("firing")) >= 3)
        assert len({e.starts_at for e in sink.of("firing")}) == 1

        await http_server.start()
        await until(lambda: len(sink.of("resolved")) == 1)
        await asyncio.sleep(0.15)
        health = scheduler.health()[f"probe acme-krk http {http_server.url}"]
    [resolved] = sink.of("resolved")
    assert resolved.starts_at == sink.of("firing")[0].starts_at
    assert all(e.status == "firing" for e in sink.events[: sink.events.index(resolved)])
    assert len(sink.events) == sink.events.index(resolved) + 1
    assert health.errors == 0 and health.runs >= 6


async def test_latency_samples_on_request(http_server: HttpServer) -> None:
    probe = Probe("http", http_server.url, timeout=2)
    sink = Sink()
    async with ProbeCollector(inventory(probe), sink, report_latency=True,
                              resolve_on_start=False) as collector:
        await collector.run(ProbeTarget("acme", "acme-krk", probe))
    [sample] = sink.events
    assert sample.labels["metric"] == "probe_duration_seconds"
    assert sample.labels["instance"] == http_server.url and "alertname" not in sample.labels
    assert sample.value is not None and 0 <= sample.value < 2


async def test_probe_concurrency_is_bounded() -> None:
    active = 0
    peak = 0
    served = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal active, peak, served
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        served += 1
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/", slow)
    server = HttpServer(app, free_port())
    await server.start()
    probes = [Probe("http", f"{server.url}?n={i}", interval=60, timeout=2) for i in range(12)]
    try:
        async with ProbeCollector(inventory(*probes), Sink()) as collector, \
                Scheduler(max_concurrency=3, max_jitter=0) as scheduler:
            collector.register(scheduler)
            await until(lambda: served == 12)
    finally:
        await server.stop()
    assert peak == 3


# ---------------------------------------------------------------- the scheduler


async def test_jitter_spreads_first_runs() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    first: dict[str, float] = {}

    def job(name: str) -> Job:
        async def run() -> None:
            first.setdefault(name, loop.time() - started)
        return run

    async with Scheduler(max_jitter=0.3, rng=random.Random(7)) as scheduler:
        for i in range(20):
            scheduler.add(f"j{i}", job(f"j{i}"), interval=10)
        scheduler.add("now", job("now"), interval=10, jitter=0)
        await until(lambda: len(first) == 21)
    offsets = sorted(v for k, v in first.items() if k != "now")
    assert first["now"] < 0.2
    assert offsets[-1] < 0.3 + 0.25
    assert offsets[-1] - offsets[0] > 0.1


async def test_backoff_after_errors_and_health() -> None:
    loop = asyncio.get_running_loop()
    runs: list[float] = []

    async def failing() -> None:
        runs.append(loop.time())
        raise OSError("share path gone")

    async with Scheduler(max_jitter=0, backoff_factor=2, max_backoff=0.16) as scheduler:
        scheduler.add("disk acme", failing, interval=0.02)
        await until(lambda: len(runs) >= 6)
        health = scheduler.health()["disk acme"]
    gaps = [b - a for a, b in itertools.pairwise(runs)]
    expected = [0.04, 0.08, 0.16, 0.16, 0.16]
    for gap, want in zip(gaps, expected, strict=False):
        assert want * 0.9 <= gap < want + 0.25
    assert health.errors == health.consecutive_errors >= 5
    assert health.up is False
    assert health.last_error == "OSError: share path gone"
    assert health.next_delay == pytest.approx(0.16)
    assert health.last_success is None


async def test_health_counters_and_logging_of_state_changes(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0
    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

    async def job() -> None:
        nonlocal calls
        calls += 1
        if 2 <= calls <= 4:
            raise RuntimeError(f"poll {calls} failed")

    def clock() -> datetime:
        return t0 + timedelta(minutes=calls)

    with caplog.at_level(logging.DEBUG, logger="watcher.collectors.schedule"):
        async with Scheduler(max_jitter=0, backoff_factor=1, clock=clock) as scheduler:
            scheduler.add("poller", job, interval=0.01)
            await until(lambda: calls >= 6)
            health = scheduler.health()["poller"]
    assert health.runs >= 6 and health.errors == 3 and health.consecutive_errors == 0
    assert health.up and health.last_error == "RuntimeError: poll 4 failed"
    assert health.last_success is not None and health.last_run is not None
    assert health.last_duration is not None and health.last_duration >= 0
    assert health.to_dict()["up"] is True
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.levelno >= logging.INFO]
    assert messages == [
        (logging.WARNING, "collector poller failing: RuntimeError: poll 2 failed "
                          "(retrying with backoff, logged again on recovery)"),
        (logging.INFO, "collector poller recovered after 3 failed run(s)"),
    ]


async def test_timeout_is_an_error_and_stop_is_clean() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hangs() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    scheduler = Scheduler(max_jitter=0)
    scheduler.add("slow", hangs, interval=10, timeout=0.05)
    await scheduler.start()
    await until(lambda: scheduler.health()["slow"].errors == 1)
    assert scheduler.health()["slow"].last_error == "timed out after 0.05 s"
    assert cancelled.is_set()

    started.clear()
    cancelled.clear()
    scheduler.add("hanging", hangs, interval=10, timeout=30, jitter=0)
    await asyncio.wait_for(started.wait(), 2)
    begin = time.monotonic()
    await scheduler.stop()
    assert time.monotonic() - begin < 1
    assert cancelled.is_set()
    assert not scheduler.running
    assert [t for t in asyncio.all_tasks() if t.get_name().startswith("collector:")] == []


async def test_remove_and_duplicate_names() -> None:
    ran = asyncio.Event()

    async def job() -> None:
        ran.set()

    async with Scheduler(max_jitter=0) as scheduler:
        scheduler.add("a", job, interval=0.01)
        with pytest.raises(ValueError, match="already scheduled"):
            scheduler.add("a", job, interval=1)
        await asyncio.wait_for(ran.wait(), 2)
        await scheduler.remove("a")
        assert scheduler.names() == []
