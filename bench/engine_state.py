"""Engine state benchmark: what a commit and a restart cost with N alerts held.

Builds an engine holding ``--alerts`` firing alerts (the perf load's shape: ProbeFailed
for 500 offices of 50 clients, an inventory that knows them all), stores it on SQLite
(``synchronous=FULL``) and measures

* a commit after one more event: the delta the service writes (one alert row, its group
  rows, the small rest of the state), against writing the whole state as one document;
* a restart: loading the state from the store and building the engine from it;
* memory: the process's RSS growth per alert held (engine plus the Python objects).

    .venv/bin/python bench/engine_state.py --alerts 100000 1000000
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import psutil
from benchkit import RULES, machine, table, workdir

from watcher.config import load_inventory, load_rules
from watcher.model import Event
from watcher.rules import Engine
from watcher.store import Store

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def inventory(path: Path) -> Path:
    lines = ["clients:"]
    for c in range(50):
        lines += [f"  - id: c{c}", f"    name: Client {c}", "    sla: standard", "    language: en",
                  "    timezone: Europe/Warsaw", '    business_hours: "Mon-Fri 08:00-17:00"',
                  '    admins: ["json://127.0.0.1:9/"]', "    sites:"]
        lines += [f"      - {{id: s{s}, name: Site {s}}}" for s in range(500) if s % 50 == c]
    path.write_text("\n".join(lines) + "\n")
    return path


def event(n: int) -> Event:
    site = n % 500
    return Event(labels={"alertname": "ProbeFailed", "client": f"c{site % 50}", "site": f"s{site}",
                         "instance": f"probe-{n}", "severity": "critical"}, source="prometheus",
                 starts_at=T0, observed_at=T0)


def measure(n: int, tmp: Path) -> list[object]:
    rules = load_rules(RULES)
    inv = load_inventory(inventory(tmp / "inventory.yaml"))
    proc = psutil.Process()
    gc.collect()
    rss0 = proc.memory_info().rss
    engine = Engine(rules, inv)
    at = T0 + timedelta(seconds=1)
    for i in range(n):
        engine.handle(event(i), at)
    gc.collect()
    per_alert = (proc.memory_info().rss - rss0) / n
    db = tmp / f"state-{n}.db"
    store = Store(f"sqlite:///{db}")
    t = time.perf_counter()
    store.commit_batch(n, engine.delta(whole=True), [], [], at.timestamp())
    first = time.perf_counter() - t

    engine.handle(event(n + 1), at + timedelta(seconds=1))
    t = time.perf_counter()
    delta = engine.delta()
    store.commit_batch(n + 1, delta, [], [], at.timestamp() + 1)
    one = time.perf_counter() - t

    t = time.perf_counter()
    whole_doc = orjson.dumps(engine.snapshot())
    whole = time.perf_counter() - t  # serialising alone, before any write: the old commit's floor

    del engine
    gc.collect()
    t = time.perf_counter()
    _, state, _ = store.load_engine_epoch()
    restored = Engine(rules, inv, state)
    restart = time.perf_counter() - t
    assert len(restored.alerts) == n + 1
    store.close()
    return [n, f"{per_alert:,.0f}", f"{first:.2f}", f"{one * 1000:.1f}",
            f"{whole * 1000:.0f} ({len(whole_doc) / 1e6:.0f} MB)", f"{restart:.1f}"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--alerts", type=int, nargs="+", default=[100_000])
    args = ap.parse_args()
    print(machine())
    rows = []
    with workdir("watcher-state-") as tmp:
        for n in args.alerts:
            rows.append(measure(n, Path(tmp)))
    print(table(["alerts held", "RSS bytes/alert", "first commit s (all rows)", "commit after 1 event ms",
                 "whole-document serialise ms", "restart s"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
