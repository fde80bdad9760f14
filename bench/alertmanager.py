"""The yardstick: the same Prometheus alert push to watcher and to Prometheus' Alertmanager.

Starts Debian's ``prometheus-alertmanager`` (one route to a webhook receiver in this
process, clustering off, storage in a temporary folder) and ``watcher serve`` (the shipped
rules.yaml and inventory.yaml, SQLite by default, ``--db postgresql`` for a throwaway
PostgreSQL database) side by side, and pushes the same alerts to both through the
endpoint Prometheus itself uses, ``POST /api/v2/alerts`` (a JSON list of ``{labels,
annotations, startsAt, endsAt, generatorURL}``), with the same batch sizes and concurrency,
one server at a time.  The load is what Prometheus sends: ``--identities`` firing alerts,
each re-sent again and again with the same ``startsAt`` and an ``endsAt`` that moves ahead.

A do-nothing HTTP server in its own process gets the same load too (``null``): the
ceiling of this Python load client on this machine; a server that comes close to it is
faster than the client can measure.

The two numbers do not promise the same thing: watcher answers 2xx only once the alerts
are committed to its database (SQLite in WAL mode with synchronous=FULL, or PostgreSQL),
so a crash right after loses none; Alertmanager keeps alerts in memory (its storage path
holds only silences and the notification log, snapshotted periodically) and a crash loses
them until Prometheus re-sends.

    .venv/bin/python bench/alertmanager.py --alerts 40000 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from benchkit import (
    ROOT,
    LoadResult,
    NullServer,
    Process,
    Receiver,
    WatcherServer,
    accepted_from_watcher,
    client_session,
    count_rows,
    database,
    free_port,
    machine,
    parse_list,
    rfc3339,
    run_load,
    stop_on_sigterm,
    table,
    wait_http_ok,
    workdir,
)

AM_BIN = "/usr/bin/prometheus-alertmanager"


class Alertmanager:
    """``prometheus-alertmanager`` with one route to ``webhook``, no cluster, storage in ``folder``."""

    def __init__(self, folder: Path, webhook: str) -> None:
        self.folder = folder
        folder.mkdir()
        self.config = folder / "alertmanager.yml"
        self.config.write_text(
            "route:\n  receiver: dummy\n  group_by: [alertname]\nreceivers:\n  - name: dummy\n"
            f"    webhook_configs:\n      - url: {webhook}\n        send_resolved: false\n", encoding="utf-8")
        self.port = 0
        self.proc: Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        self.proc = Process([AM_BIN, f"--config.file={self.config}", f"--storage.path={self.folder / 'data'}",
                             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
                             "--log.level=warn"], self.folder / "alertmanager.log")
        try:
            wait_http_ok(self.proc, self.url + "/-/ready", "alertmanager")
        except BaseException:
            self.proc.stop()
            raise

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)


class AlertFactory:
    """Prometheus-style pushes: alert ``i`` is re-send ``i // identities`` of identity ``i % identities``."""

    HOSTS = (("acme-krk", "krk"), ("acme-waw", "waw"))

    def __init__(self, identities: int) -> None:
        self.identities = identities
        now = time.time()
        self.starts = rfc3339(now - 3600)
        self.ends_base = now + 3600
        self.i = 0

    def alert(self) -> dict[str, Any]:
        ident, resend = self.i % self.identities, self.i // self.identities
        self.i += 1
        site, prefix = self.HOSTS[ident % 2]
        return {
            "labels": {"alertname": "BenchAlert", "client": "acme", "site": site, "host": f"{prefix}-h{ident}",
                       "instance": f"{prefix}-h{ident}:9100", "job": "node", "severity": "info"},
            "annotations": {"summary": f"benchmark alert {ident}", "description": "pushed by bench/alertmanager.py"},
            "startsAt": self.starts,
            "endsAt": rfc3339(self.ends_base + resend),
            "generatorURL": f"http://prometheus.bench:9090/graph?g0.expr=bench_up%7Binstance%3D%22h{ident}%22%7D",
        }

    def bodies(self, batch: int, total: int) -> list[tuple[bytes, int]]:
        return [(json.dumps([self.alert() for _ in range(batch)]).encode(), batch)
                for _ in range(max(1, total // batch))]


def row(target: str, batch: int, conc: int, res: LoadResult, cpu: float) -> list[Any]:
    return [target, batch, conc, res.requests, res.events, res.seconds, res.rate, res.p(50), res.p(99),
            cpu, res.client_cpu]


async def bench(args: argparse.Namespace) -> int:
    batches, concs = parse_list(args.batches), parse_list(args.concurrency)
    ok = True
    with workdir("watcher-bench-am-", args.keep) as wd, database(args.db, wd) as db_url:
        wdir = wd / "watcher"
        wdir.mkdir()
        async with Receiver() as hook, \
                Alertmanager(wd / "am", f"http://127.0.0.1:{hook.port}/webhook") as am, \
                WatcherServer(wdir, ROOT / "rules.yaml", ROOT / "inventory.yaml", db_url,
                              {"workers": args.workers}) as srv, \
                client_session(max(concs)) as session:
            assert am.proc is not None and srv.proc is not None
            null = NullServer(wd) if args.null else None
            if null is not None:
                await asyncio.to_thread(null.__enter__)
            try:
                print(f"watcher {srv.url} (db {args.db}, {args.workers} workers), "
                      f"alertmanager {am.url} ({AM_BIN}), {machine()}\n",
                      flush=True)
                factory = AlertFactory(args.identities)
                rows: list[list[Any]] = []
                watcher_results: list[LoadResult] = []
                for batch in batches:
                    for conc in concs:
                        bodies = factory.bodies(batch, args.alerts)
                        res = await run_load(session, srv.url + "/api/v2/alerts", bodies, conc, args.seconds,
                                             accepted_from_watcher, {"p": srv.proc})
                        await srv.wait_engine(session)
                        watcher_results.append(res)
                        rows.append(row("watcher", batch, conc, res, res.cpu["p"]))
                        res_am = await run_load(session, am.url + "/api/v2/alerts", bodies, conc, args.seconds,
                                                None, {"p": am.proc})
                        rows.append(row("alertmanager", batch, conc, res_am, res_am.cpu["p"]))
                        if null is not None and null.proc is not None:
                            res_null = await run_load(session, null.url + "/api/v2/alerts", bodies, conc,
                                                      args.seconds, None, {"p": null.proc})
                            rows.append(row("null (client ceiling)", batch, conc, res_null, res_null.cpu["p"]))
                        for name, r in (("watcher", res), ("alertmanager", res_am)):
                            if r.failed:
                                ok = False
                                print(f"!! {name} batch {batch} x {conc}: {r.failed} failed: {r.errors}",
                                      file=sys.stderr)
                print(f"POST /api/v2/alerts, same bodies to each, up to {args.alerts} alerts or {args.seconds:g} s "
                      f"per row, {args.identities} alert identities re-sent with a moving endsAt")
                print(table(["target", "batch", "conc", "requests", "alerts", "secs", "alerts/s", "p50 ms",
                             "p99 ms", "server CPU%", "client CPU%"], rows))
                promised = sum(r.accepted for r in watcher_results)
                stored = count_rows(db_url, "SELECT count(*) FROM inbox WHERE kind = 'event'")
                verdict = "OK" if promised == stored else "MISMATCH"
                ok = ok and verdict == "OK"
                print(f"\nwatcher: a 2xx means the alerts are durable: committed to {args.db} before the answer "
                      f"(stored per the answers {promised}, inbox rows {stored}: {verdict}).")
                print("alertmanager: keeps alerts in memory only (its storage holds silences and the "
                      "notification log); a crash loses them until Prometheus re-sends.")
                print(f"alertmanager's webhook got {hook.count} notification(s); CPU% is of one core; the client "
                      f"shares the machine; at the end: {machine()}")
            finally:
                if null is not None:
                    await asyncio.to_thread(null.__exit__, None, None, None)
    return 0 if ok else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=40000, help="alerts per row at most (default 40000)")
    p.add_argument("--seconds", type=float, default=10.0, help="time per row at most (default 10)")
    p.add_argument("--batches", default="1,10,100", help="alerts per request (default 1,10,100)")
    p.add_argument("--concurrency", default="1,8,32", help="concurrent requests (default 1,8,32)")
    p.add_argument("--identities", type=int, default=1000, help="distinct alerts (default 1000)")
    p.add_argument("--db", default="sqlite", choices=["sqlite", "postgresql"])
    p.add_argument("--workers", type=int, default=1, help="watcher serve --workers (worker processes)")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (configs, logs, SQLite file)")
    p.add_argument("--no-null", dest="null", action="store_false", help="skip the do-nothing server")
    args = p.parse_args()
    if args.alerts < 1 or args.seconds <= 0 or args.identities < 1:
        p.error("sizes must be positive")
    if not Path(AM_BIN).exists():
        p.error(f"{AM_BIN} is not installed (apt-get install prometheus-alertmanager)")
    stop_on_sigterm()
    try:
        return asyncio.run(bench(args))
    except KeyboardInterrupt:
        print("interrupted; servers stopped and temporary files removed", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
