"""Benchmark: N HTTP probes spread over one schedule interval against a local aiohttp server.

    .venv/bin/python bench/probes.py [N] [--window SECONDS] [--concurrency C]

Every probe runs once (its first, start-up run emits one event either way: the
resolved "all clear" of ``resolve_on_start`` or ProbeFailed, which is how completion is
counted without polling the collector), at a random offset within ``--window`` seconds (the scheduler's
start-up jitter), as a site list of N probes with that interval would in steady state.
``--window 0`` fires them all at once and measures the ceiling instead.  The server runs
in a child process so that the CPU and memory figures are the prober's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import statistics
import sys
import time

import psutil
from aiohttp import web

from watcher.collectors.probes import ProbeCollector
from watcher.collectors.schedule import Scheduler
from watcher.config.inventory import Inventory, Probe, Site
from watcher.model import Event


def serve(port: int) -> None:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="status: OK")

    app = web.Application()
    app.router.add_get("/", index)
    print("ready", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=4096)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_inventory(n: int, port: int, interval: float) -> Inventory:
    inv = Inventory()
    per_site = 10
    for first in range(0, n, per_site):
        probes = tuple(Probe("http", f"http://127.0.0.1:{port}/?p={i}", interval=interval, timeout=10,
                             retries=0, expect="OK")
                       for i in range(first, min(n, first + per_site)))
        site = f"site-{first // per_site}"
        inv.sites[site] = Site(site, "bench", site, None, probes, (), None)
    return inv


async def sample_rss(proc: psutil.Process, peak: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], proc.memory_info().rss)
        await asyncio.sleep(0.05)


async def bench(n: int, window: float, concurrency: int) -> None:
    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", str(port), stdout=asyncio.subprocess.PIPE)
    assert server.stdout is not None
    await server.stdout.readline()
    await asyncio.sleep(0.3)
    failures: list[Event] = []
    finished = 0
    all_done = asyncio.Event()

    async def sink(events: list[Event]) -> None:
        nonlocal finished
        finished += len(events)
        failures.extend(e for e in events if e.status == "firing")
        if finished >= n:
            all_done.set()

    me = psutil.Process()
    peak = [me.memory_info().rss]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(me, peak, stop))
    interval = max(window, 1.0) * 10
    inventory = build_inventory(n, port, interval)
    cpu0 = me.cpu_times()
    wall0 = time.perf_counter()
    async with ProbeCollector(inventory, sink) as collector, \
            Scheduler(max_concurrency=concurrency, max_jitter=window) as scheduler:
        collector.register(scheduler)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(all_done.wait(), window + 60)
        elapsed = time.perf_counter() - wall0
        states = collector.states()
    cpu1 = me.cpu_times()
    stop.set()
    await sampler
    server_cpu = psutil.Process(server.pid).cpu_times()
    server.terminate()
    await server.wait()

    latencies = sorted(s.last_latency for s in states if s.last_latency is not None)
    done = len(latencies)
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    p50 = statistics.median(latencies) if latencies else float("nan")
    p99 = latencies[min(done - 1, int(done * 0.99))] if latencies else float("nan")
    rows = [
        ("probes scheduled", f"{n}"),
        ("probes done", f"{done}"),
        ("failures", f"{len(failures)}"),
        ("window (s)", f"{window:g}"),
        ("elapsed (s)", f"{elapsed:.2f}"),
        ("probes/s", f"{done / elapsed:.1f}"),
        ("latency p50 (ms)", f"{p50 * 1000:.1f}"),
        ("latency p99 (ms)", f"{p99 * 1000:.1f}"),
        ("CPU prober (s)", f"{cpu:.2f}"),
        ("CPU per probe (ms)", f"{cpu / max(done, 1) * 1000:.2f}"),
        ("CPU server (s)", f"{server_cpu.user + server_cpu.system:.2f}"),
        ("peak RSS prober (MiB)", f"{peak[0] / 2**20:.1f}"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("n", nargs="?", type=int, default=2000, help="number of probes (default 2000)")
    parser.add_argument("--window", type=float, default=60.0, help="schedule spread in seconds (default 60)")
    parser.add_argument("--concurrency", type=int, default=64, help="scheduler slots (default 64)")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    asyncio.run(bench(args.n, args.window, args.concurrency))


if __name__ == "__main__":
    main()
