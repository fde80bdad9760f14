"""watcher alone on the side-by-side run's "100,000 new alerts" load, without wrk.

``bench/side_by_side/run.sh`` needs wrk and Alertmanager; this script measures only
watcher's side of its first row, with a fixed amount of work so that two runs of the same
code can be compared even on a busy machine: the inventory and rules of the side-by-side
run (``side_by_side/config.py``: 50 clients, 500 offices, two remote people an office, all
told at a local sink), ``--alerts`` new Prometheus-style alerts (each a distinct identity,
the labels of ``side_by_side/load.lua``) posted in batches of 100 to
``POST /api/v2/alerts`` by ``--concurrency`` keep-alive connections, then it waits until
the engine has handled the whole inbox and until the sink has stopped receiving notices.

Printed per run: load seconds, engine drain seconds after the load, the end-to-end rate
(alerts / (load + drain)), the seconds until the last notice reached the sink, the notices
received, and watcher's CPU seconds (user + system) for the whole run: on a shared machine
CPU seconds per run vary less than wall-clock rates.  ``--runs N`` repeats with a fresh
service and database and prints the medians.

    .venv/bin/python bench/new_alerts.py --alerts 100000 --runs 3

``--profile FILE`` starts the service under pyinstrument (``pip install pyinstrument``)
and writes its text report to FILE (the first run only).  ``--code DIR`` runs the service
from another source tree with this venv's packages, for before/after comparisons:

    git archive main | tar -x -C /tmp/before
    .venv/bin/python bench/new_alerts.py --runs 3 --code /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchkit import (
    ROOT,
    Process,
    client_session,
    free_port,
    machine,
    run_load,
    stop_on_sigterm,
    table,
    wait_http_ok,
    workdir,
)

HERE = Path(__file__).resolve().parent / "side_by_side"


def bodies(n_alerts: int, pool: int = 100_000) -> list[tuple[bytes, int]]:
    """``n_alerts`` alerts in batches of 100, identities as load.lua makes them (distinct up to ``pool``)."""
    out = []
    for start in range(0, n_alerts, 100):
        alerts = []
        for n in range(start, min(n_alerts, start + 100)):
            ident = (n * 7919) % pool
            site = ident % 500
            alerts.append({"labels": {"alertname": "ProbeFailed", "client": f"c{site % 50}", "site": f"s{site}",
                                      "instance": f"probe-{ident}", "severity": "critical"},
                           "annotations": {"summary": f"probe {ident} failed"},
                           "startsAt": "2026-11-29T10:00:00Z", "generatorURL": "http://prom/graph"})
        out.append((json.dumps(alerts).encode(), len(alerts)))
    return out


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def get_int(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return int(resp.read())


def inbox_head(db: Path) -> int:
    out = subprocess.run(["sqlite3", str(db), "select coalesce(max(seq),0) from inbox"], capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip() or 0)


async def one_run(wd: Path, args: argparse.Namespace, profile: Path | None) -> dict[str, float]:
    sink_port, port = free_port(), free_port()
    sink = Process([sys.executable, str(HERE / "sink.py"), str(sink_port)], wd / "sink.log")
    try:
        (wd / "rules.yaml").write_text((ROOT / "rules.yaml").read_text(encoding="utf-8"), encoding="utf-8")
        await asyncio.to_thread(subprocess.run, [sys.executable, str(HERE / "config.py"), str(wd),
                                                  f"127.0.0.1:{sink_port}"], check=True)
        cmd = [str(ROOT / ".venv" / "bin" / "watcher")]
        if args.code is not None:
            cmd = [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(args.code.resolve())!r}); "
                   "from watcher.cli import main; sys.exit(main())"]
        if profile is not None:
            cmd = [str(ROOT / ".venv" / "bin" / "pyinstrument"), "-r", "text", "--show-all", "-o", str(profile),
                   "-m", "watcher.cli"]
        db = wd / "w.db"
        srv = Process([*cmd, "serve", "--config", str(wd / "watcher.yaml"), "--listen", f"127.0.0.1:{port}",
                       "--db", f"sqlite:///{db}", "--snmp-listen", "off"], wd / "w.log")
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http_ok(srv, url + "/healthz", "watcher serve")
            wait_http_ok(sink, f"http://127.0.0.1:{sink_port}/count", "sink")
            cpu0 = srv.cpu_seconds()
            loads = bodies(args.alerts)
            t0 = time.perf_counter()
            async with client_session(args.concurrency) as session:
                res = await run_load(session, url + "/api/v2/alerts", loads, args.concurrency, 600.0)
            load_s = time.perf_counter() - t0
            if res.failed:
                raise RuntimeError(f"{res.failed} requests failed: {res.errors}")
            head = await asyncio.to_thread(inbox_head, db)
            while True:
                if get_json(url + "/api/v1/stats")["engine"]["cursor"] >= head:
                    break
                await asyncio.sleep(0.05)
            drain_s = time.perf_counter() - t0 - load_s
            last, seen, quiet_since = 0.0, -1, time.perf_counter()
            while time.perf_counter() - quiet_since < args.quiet:
                n = get_int(f"http://127.0.0.1:{sink_port}/count")
                if n != seen:
                    seen, last, quiet_since = n, time.perf_counter() - t0, time.perf_counter()
                await asyncio.sleep(0.05)
            cpu = srv.cpu_seconds() - cpu0
            return {"load s": load_s, "drain s": drain_s, "e2e alerts/s": args.alerts / (load_s + drain_s),
                    "last notice s": last, "notices": seen, "watcher CPU s": cpu}
        finally:
            srv.stop()
    finally:
        sink.stop()


async def bench(args: argparse.Namespace) -> None:
    print(f"{machine()}; {args.alerts} new alerts in batches of 100, {args.concurrency} connections")
    rows: list[dict[str, float]] = []
    for i in range(args.runs):
        with workdir("watcher-new-alerts-", args.keep) as wd:
            rows.append(await one_run(wd, args, args.profile if i == 0 else None))
        print(table(list(rows[-1]), [[round(v, 2) for v in rows[-1].values()]]), flush=True)
    if len(rows) > 1:
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"median of {len(rows)} runs; at the end: {machine()}")
        print(table(list(med), [[round(v, 2) for v in med.values()]]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alerts", type=int, default=100_000, help="new alerts (default 100000)")
    p.add_argument("--concurrency", type=int, default=8, help="connections (default 8, as run.sh's wrk -c8)")
    p.add_argument("--runs", type=int, default=1, help="runs, each on a fresh service (default 1)")
    p.add_argument("--quiet", type=float, default=3.0,
                   help="seconds without a new notice at the sink that end a run (default 3)")
    p.add_argument("--profile", type=Path, help="pyinstrument text report of the first run to this file")
    p.add_argument("--code", type=Path,
                   help="run the service from this source tree (another commit's export) with this venv")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = p.parse_args()
    stop_on_sigterm()
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
