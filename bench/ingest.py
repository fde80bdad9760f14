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

    .venv/bin/python bench/ingest.py --events 40000 --seconds 15 --sites 20
    .venv/bin/python bench/ingest.py --db postgresql
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import time
from dataclasses import dataclass
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
    machine,
    parse_list,
    percentile,
    query,
    rfc3339,
    run_load,
    shortened_rules,
    stop_on_sigterm,
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


@dataclass
class SiteTiming:
    """One site's outage, timed from just before its POST (wall clock ``posted``)."""

    site: dict[str, Any]
    posted: float
    answered: float  # seconds until the POST's 2xx
    arrived: dict[str, float | None]  # recipient -> seconds until the receiver got its POST


async def site_latency(session: aiohttp.ClientSession, url: str, receiver: Receiver, site: dict[str, Any],
                       timeout: float) -> SiteTiming:
    """POST every probe of ``site`` failing; wait for its person's and its office's notice."""
    posted = time.time()
    body = json.dumps(probe_events(site, posted)).encode()
    t0 = time.perf_counter()
    async with session.post(url + "/api/v1/events", data=body,
                            headers={"Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status // 100 != 2:
            raise RuntimeError(f"POST for {site['id']} answered {resp.status}")
    answered = time.perf_counter() - t0
    arrived: dict[str, float | None] = {}
    for recipient, path in ((site["person"], f"/n/{site['person']}"), (f"office:{site['id']}",
                                                                        f"/n/office-{site['id']}")):
        got = await receiver.wait(path, timeout)
        arrived[recipient] = None if got is None else got - t0
    return SiteTiming(site, posted, answered, arrived)


def stats_row(label: str, what: str, values: list[float | None]) -> list[Any]:
    ms = [v * 1000.0 for v in values if v is not None]
    return [label, what, f"{len(ms)}/{len(values)}", percentile(ms, 50), percentile(ms, 99),
            max(ms) if ms else float("nan")]


def latency_rows(label: str, got: list[SiteTiming], outbox: dict[str, tuple[float, ...]]) -> list[list[Any]]:
    """End to end per notice kind, then where the time went (from the outbox row's timestamps:
    created = the engine's commit, due = created + digest window, claimed, sent = Apprise done)."""
    person = [g.arrived[g.site["person"]] for g in got]
    office = [g.arrived[f"office:{g.site['id']}"] for g in got]
    stages: dict[str, list[float | None]] = {"  POST -> notice queued (engine commit)": [],
                                             "  queued -> due (digest window)": [],
                                             "  due -> claimed by the notifier": [],
                                             "  claimed -> Apprise done": []}
    for g in got:
        row = outbox.get(g.site["person"])
        vals = [row[0] - g.posted, row[1] - row[0], row[2] - row[1], row[3] - row[2]] if row else [None] * 4
        for key, v in zip(stages, vals, strict=True):
            stages[key].append(v)
    return ([stats_row(label, "POST answered (2xx)", [g.answered for g in got]),
             stats_row(label, "POST -> 'opened' at the person's receiver", person),
             stats_row(label, "POST -> 'office_check' at the office's", office)]
            + [stats_row(label, key, vals) for key, vals in stages.items()])


def outbox_times(db_url: str) -> dict[str, tuple[float, ...]]:
    """recipient -> (created, due, claimed, sent) of its ``opened`` notice."""
    rows = query(db_url, "SELECT recipient, created_at, due_at, claimed_at, sent_at FROM outbox "
                         "WHERE kind = 'opened' AND sent_at IS NOT NULL")
    return {str(r[0]): tuple(float(x) for x in r[1:]) for r in rows}


async def bench(args: argparse.Namespace) -> int:
    batches, concs = parse_list(args.batches), parse_list(args.concurrency)
    ok = True
    with workdir("watcher-bench-ingest-", args.keep) as wd, database(args.db, wd) as db_url:
        async with Receiver() as receiver:
            inv = generate_inventory(2 * args.sites, f"json://127.0.0.1:{receiver.port}")
            inv_path = wd / "inventory.yaml"
            inv_path.write_text(yaml.safe_dump(inv.doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
            rules = shortened_rules(wd / "rules.yaml")
            extra: dict[str, Any] = {"public_url": "http://127.0.0.1:9/", "workers": args.workers}
            if args.digest_window is not None:
                extra["notify"] = {"digest_window": f"{args.digest_window:g}s"}
            async with WatcherServer(wd, rules, inv_path, db_url, extra) as srv, \
                    client_session(max([*concs, args.sites])) as session:
                assert srv.proc is not None
                print(f"watcher {srv.url} db={args.db} workers={args.workers} "
                      f"python={platform.python_version()} {machine()}")
                print(f"inventory: {len(inv.sites)} sites generated; rules: {rules.name} "
                      "(site-internet ProbeFailed for: 0s)\n", flush=True)

                # 1. notification latency, sequential then a burst
                seq_sites, burst_sites = inv.sites[:args.sites], inv.sites[args.sites:2 * args.sites]
                seq = [await site_latency(session, srv.url, receiver, s, args.notify_timeout) for s in seq_sites]
                await srv.wait_engine(session)
                burst = list(await asyncio.gather(*(site_latency(session, srv.url, receiver, s, args.notify_timeout)
                                                    for s in burst_sites)))
                notify_events = 2 * len(seq_sites) + 2 * len(burst_sites)
                await asyncio.sleep(1.0)  # the sent_at of the last notices is recorded after Apprise returns
                outbox = outbox_times(db_url)
                window = "watcher's default" if args.digest_window is None else f"{args.digest_window:g} s"
                print("Notification latency: ProbeFailed for every probe of a site (one POST) -> the notice at a "
                      f"json:// receiver; digest window: {window}")
                print(table(["mode", "what", "got", "p50 ms", "p99 ms", "max ms"],
                            latency_rows(f"one site at a time ({len(seq_sites)})", seq, outbox)
                            + latency_rows(f"burst of {len(burst_sites)} sites", burst, outbox)))
                missing = sum(1 for g in seq + burst for v in g.arrived.values() if v is None)
                if missing:
                    ok = False
                    print(f"!! {missing} notices did not arrive within {args.notify_timeout:g}s")
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
                      f"{count_rows(db_url, 'SELECT length(state) FROM engine_state') / 1e6:.2f} MB; {machine()}")
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=40000, help="events per matrix row at most (default 40000)")
    p.add_argument("--seconds", type=float, default=15.0, help="time per matrix row at most (default 15)")
    p.add_argument("--batches", default="1,10,100", help="events per request (default 1,10,100)")
    p.add_argument("--concurrency", default="1,8,32", help="concurrent requests (default 1,8,32)")
    p.add_argument("--identities", type=int, default=1000,
                   help="distinct alert identities the events cycle through (default 1000)")
    p.add_argument("--sites", type=int, default=20, help="sites for the notification latency (default 20)")
    p.add_argument("--notify-timeout", type=float, default=60.0, help="seconds to wait for a notice (default 60)")
    p.add_argument("--digest-window", type=float, default=None,
                   help="notify.digest_window in seconds (default: watcher's own default)")
    p.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    p.add_argument("--workers", type=int, default=1, help="watcher serve --workers (worker processes)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs, SQLite file)")
    args = p.parse_args()
    if args.events < 1 or args.seconds <= 0 or args.identities < 1 or args.sites < 1:
        p.error("sizes must be positive")
    stop_on_sigterm()
    try:
        return asyncio.run(bench(args))
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
