"""Ingest benchmark: how fast ``POST /api/v1/events`` accepts events durably, and how long a
firing event takes to become a notification handed to Apprise.

Starts ``watcher serve`` in a temporary folder (a generated inventory, and a copy of the
shipped rules.yaml with no hold on site-internet's ProbeFailed signal), SQLite by default
or a fresh PostgreSQL database with ``--db postgresql`` (dropped afterwards), and:

1. notification latency: for ``--sites`` sites one after the other, then for as many
   other sites at once (a burst), POSTs ``ProbeFailed`` for every probe of the site and
   times until the site's remote person's ``json://`` URL (a receiver in this process)
   gets the ``opened`` notice, and the office contact its ``office_check``;
2. throughput: for each batch size x concurrency, POSTs up to ``--events`` events (or for
   ``--seconds``), each a new occurrence of one of ``--identities`` alert identities
   (``severity: info``, so the engine records them without opening tickets: this measures
   the ingest path, not the rules), and reports events/s, request latency, watcher's CPU
   and how long the engine then needed to catch up with the inbox;
3. durability: every 2xx promises the events are committed, so at the end the number of
   events the 2xx answers said were stored must equal the inbox rows in the database
   (read directly, not through the service).

    .venv/bin/python bench/ingest.py --events 20000 --seconds 15 --sites 20
    .venv/bin/python bench/ingest.py --db postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from typing import Any

import aiohttp
import yaml
from benchkit import (
    LoadResult,
    Receiver,
    WatcherServer,
    accepted_from_watcher,
    client_session,
    count_rows,
    database,
    generate_inventory,
    parse_list,
    percentile,
    rfc3339,
    run_load,
    shortened_rules,
    table,
    workdir,
)


class EventFactory:
    """Unique events: event ``i`` is occurrence ``i // identities`` of identity ``i % identities``."""

    def __init__(self, sites: list[dict[str, Any]], identities: int, base: float) -> None:
        self.sites = sites
        self.identities = identities
        self.base = base
        self.i = 0

    def event(self) -> dict[str, Any]:
        ident, occurrence = self.i % self.identities, self.i // self.identities
        self.i += 1
        site = self.sites[ident % len(self.sites)]
        return {
            "source": "bench",
            "status": "firing",
            "labels": {"alertname": "BenchSignal", "client": site["client"], "site": site["id"],
                       "host": f"{site['id']}-h{ident}", "severity": "info"},
            "annotations": {"summary": "benchmark event"},
            "starts_at": rfc3339(self.base + occurrence),
            "ends_at": None,
        }

    def bodies(self, batch: int, total: int) -> list[tuple[bytes, int]]:
        return [(json.dumps([self.event() for _ in range(batch)]).encode(), batch)
                for _ in range(max(1, total // batch))]


def probe_events(site: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Every probe of ``site`` failing, starting ``now``."""
    return [{"source": "bench", "status": "firing",
             "labels": {"alertname": "ProbeFailed", "client": site["client"], "site": site["id"],
                        "instance": target, "severity": "critical"},
             "annotations": {"summary": f"probe {target} fails"},
             "starts_at": rfc3339(now), "ends_at": None} for target in site["probes"]]


async def site_latency(session: aiohttp.ClientSession, url: str, receiver: Receiver, site: dict[str, Any],
                       timeout: float) -> tuple[float, float | None, float | None]:
    """(POST answered, person got ``opened``, office got ``office_check``), seconds after the POST."""
    body = json.dumps(probe_events(site, time.time())).encode()
    t0 = time.perf_counter()
    async with session.post(url + "/api/v1/events", data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status // 100 != 2:
            raise RuntimeError(f"POST for {site['id']} answered {resp.status}")
    answered = time.perf_counter() - t0
    person = await receiver.wait(f"/n/{site['person']}", timeout)
    office = await receiver.wait(f"/n/office-{site['id']}", timeout)
    return (answered, None if person is None else person - t0, None if office is None else office - t0)


def latency_rows(label: str, got: list[tuple[float, float | None, float | None]]) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for what, idx in (("POST answered", 0), ("opened -> person", 1), ("office_check -> office", 2)):
        vals = [g[idx] for g in got if g[idx] is not None]
        ms = [v * 1000.0 for v in vals if v is not None]
        rows.append([label, what, f"{len(ms)}/{len(got)}", percentile(ms, 50), percentile(ms, 99),
                     max(ms) if ms else float("nan")])
    return rows


async def bench(args: argparse.Namespace) -> int:
    batches, concs = parse_list(args.batches), parse_list(args.concurrency)
    ok = True
    with workdir("watcher-bench-ingest-", args.keep) as wd, database(args.db, wd) as db_url:
        async with Receiver() as receiver:
            inv = generate_inventory(2 * args.sites, f"json://127.0.0.1:{receiver.port}")
            inv_path = wd / "inventory.yaml"
            inv_path.write_text(yaml.safe_dump(inv.doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
            rules = shortened_rules(wd / "rules.yaml")
            async with WatcherServer(wd, rules, inv_path, db_url,
                                     {"public_url": "http://127.0.0.1:9/"}) as srv, \
                    client_session(max([*concs, args.sites])) as session:
                assert srv.proc is not None
                print(f"watcher {srv.url} db={args.db} cpus={os.cpu_count()} python={platform.python_version()}")
                print(f"inventory: {len(inv.sites)} sites generated; rules: {rules.name} "
                      "(site-internet ProbeFailed for: 0s)\n", flush=True)

                # 1. notification latency, sequential then a burst
                seq_sites, burst_sites = inv.sites[:args.sites], inv.sites[args.sites:2 * args.sites]
                seq = [await site_latency(session, srv.url, receiver, s, args.notify_timeout) for s in seq_sites]
                await srv.wait_engine(session)
                burst = list(await asyncio.gather(*(site_latency(session, srv.url, receiver, s, args.notify_timeout)
                                                    for s in burst_sites)))
                notify_events = 2 * len(seq_sites) + 2 * len(burst_sites)
                print("Notification latency: ProbeFailed for every probe of a site (one POST) -> the notice "
                      "arriving at a json:// receiver (ms)")
                print(table(["mode", "what", "got", "p50 ms", "p99 ms", "max ms"],
                            latency_rows(f"one site at a time ({len(seq_sites)})", seq)
                            + latency_rows(f"burst of {len(burst_sites)} sites", burst)))
                missing = sum(1 for g in seq + burst if g[1] is None or g[2] is None)
                if missing:
                    ok = False
                    print(f"!! {missing} sites did not get both notices within {args.notify_timeout:g}s")
                print(flush=True)

                # 2. throughput matrix
                factory = EventFactory(inv.sites, args.identities, time.time() - 86400)
                rows: list[list[Any]] = []
                results: list[LoadResult] = []
                for batch in batches:
                    for conc in concs:
                        bodies = factory.bodies(batch, args.events)
                        res = await run_load(session, srv.url + "/api/v1/events", bodies, conc, args.seconds,
                                             accepted_from_watcher, {"watcher": srv.proc})
                        drain = await srv.wait_engine(session)
                        results.append(res)
                        rows.append([batch, conc, res.requests, res.events, res.seconds, res.rate, res.p(50),
                                     res.p(99), max(res.latencies) * 1000 if res.latencies else float("nan"),
                                     res.cpu["watcher"], drain])
                        if res.failed:
                            ok = False
                            print(f"!! batch {batch} x {conc}: {res.failed} failed requests: {res.errors}",
                                  file=sys.stderr)
                print(f"Ingest throughput: POST /api/v1/events, {args.db}, up to {args.events} events or "
                      f"{args.seconds:g} s per row; each 2xx = committed")
                print(table(["batch", "conc", "requests", "events", "secs", "events/s", "p50 ms", "p99 ms",
                             "max ms", "watcher CPU%", "engine catch-up s"], rows))
                print(flush=True)

                # 3. durability: what the 2xx answers promised is in the inbox
                promised = sum(r.accepted for r in results) + notify_events
                sent = sum(r.events for r in results) + notify_events
                stored = count_rows(db_url, "SELECT count(*) FROM inbox WHERE kind = 'event'")
                verdict = "OK" if promised == stored == sent else "MISMATCH"
                ok = ok and verdict == "OK"
                print(f"Durability check: events in 2xx requests {sent}, stored per the 2xx answers {promised}, "
                      f"inbox rows in the database {stored}: {verdict}")
                print(f"watcher RSS at the end: {srv.proc.rss_mb():.0f} MB; engine state row: "
                      f"{count_rows(db_url, 'SELECT length(state) FROM engine_state') / 1e6:.2f} MB")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=20000, help="events per matrix row at most (default 20000)")
    p.add_argument("--seconds", type=float, default=15.0, help="time per matrix row at most (default 15)")
    p.add_argument("--batches", default="1,10,100", help="events per request (default 1,10,100)")
    p.add_argument("--concurrency", default="1,8,32", help="concurrent requests (default 1,8,32)")
    p.add_argument("--identities", type=int, default=1000,
                   help="distinct alert identities the events cycle through (default 1000)")
    p.add_argument("--sites", type=int, default=20, help="sites for the notification latency (default 20)")
    p.add_argument("--notify-timeout", type=float, default=60.0, help="seconds to wait for a notice (default 60)")
    p.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs, SQLite file)")
    args = p.parse_args()
    if args.events < 1 or args.seconds <= 0 or args.identities < 1 or args.sites < 1:
        p.error("sizes must be positive")
    return asyncio.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
