"""Replay benchmark: events per second through the rule engine, ``watcher replay`` in process.

Runs ``watcher.replay.replay(config, lines)`` (the code behind ``watcher replay``: parse
each line, the engine on virtual time, collect tickets and notices; no database, no
delivery) on

* the shared sample scenario (``/work/shared/scenarios/sample``: stream and inventory,
  with the shipped rules.yaml), and
* a synthetic stream for ``--clients`` x ``--sites`` sites over ``--hours`` hours: share
  and folder samples every 15 minutes (some shares filling), internet outages with
  re-sends every 5 minutes (some twice, some out of order), SNMP LinkDown/LinkUp, hosts
  down behind the site, people calling in, a planned outage, flapping links, mailbox
  login failures, and noise (short probe blips, ``info`` alerts).

The stream is read into memory first, so the time is the engine's (and JSON parsing's),
not the disk's.  Each stream is replayed ``--repeat`` times; the table shows the best and
the median.  ``--profile`` adds the functions that took the most time (cProfile, one run).

    .venv/bin/python bench/replay.py --clients 40 --sites 3 --hours 24
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from benchkit import RULES, machine, rfc3339, table, workdir

from watcher.config import load_config
from watcher.replay import replay

SAMPLE = Path("/work/shared/scenarios/sample")
T0 = datetime(2026, 11, 2, tzinfo=UTC).timestamp()
MIN = 60.0


def synthetic(n_clients: int, n_sites: int, hours: float, seed: int = 7) -> tuple[dict[str, Any], list[str]]:
    """(inventory, stream lines) for a made-up helpdesk of ``n_clients`` x ``n_sites`` sites."""
    rnd = random.Random(seed)
    end = T0 + hours * 3600
    lines: list[tuple[float, int, str]] = []
    seq = 0

    def emit(at: float, obj: dict[str, Any]) -> None:
        nonlocal seq
        seq += 1
        lines.append((at, seq, json.dumps(obj)))

    def event(at: float, labels: dict[str, str], status: str = "firing", starts: float | None = None,
              ends: float | None = None, value: float | None = None, source: str = "prometheus") -> None:
        emit(at, {"source": source, "status": status, "labels": labels, "annotations": {},
                  "starts_at": rfc3339(starts if starts is not None else at),
                  "ends_at": rfc3339(ends) if ends is not None else None, "observed_at": rfc3339(at),
                  "value": value})

    clients: list[dict[str, Any]] = []
    for c in range(n_clients):
        cid = f"sc{c:03d}"
        lang = "pl" if c % 3 else "en"
        client: dict[str, Any] = {
            "id": cid, "name": f"Synthetic {c}", "sla": ("standard", "gold", "platinum")[c % 3], "language": lang,
            "timezone": "Europe/Warsaw", "business_hours": "Mon-Fri 08:00-17:00",
            "coordinator": {"name": f"Coordinator {c}", "email": f"coord@{cid}.example"},
            "admins": ["mailto://admin@msp.example"], "sites": [], "people": [], "shares": [], "mailboxes": [],
        }
        for s in range(n_sites):
            sid = f"{cid}-s{s}"
            n = c * n_sites + s
            agent = f"10.{n // 250}.{n % 250}.1"
            probes = [f"https://vpn.{sid}.example/", f"192.0.{n % 250}.{s + 10}:443"]
            client["sites"].append({
                "id": sid, "name": f"Office {sid}",
                "office_contact": {"name": "Reception", "email": f"rec@{sid}.example"},
                "probes": [{"type": "http", "target": probes[0]}, {"type": "tcp", "target": probes[1]}],
                "match": {"snmp_agent": [agent], "host": f"{sid}-.*"},
            })
            people = [f"u{n}-{k}" for k in range(3)]
            for k, pid in enumerate(people):
                client["people"].append({"id": pid, "name": f"User {pid}", "site": sid, "remote": k < 2,
                                         "notify": [f"mailto://{pid}@{cid}.example"], "language": lang})
                client["mailboxes"].append({"address": f"{pid}@{cid}.example", "person": pid})
            share = f"{sid}-data"
            size = 2_000_000_000_000
            folders = {people[0]: "F0", people[1]: "F1"}
            client["shares"].append({"id": share, "site": sid, "path": f"/srv/{share}", "size_bytes": size,
                                     "folders": folders})

            # disk: samples every 15 minutes; every 7th share fills through folder F0
            filling = n % 7 == 3
            base = [0.35 * size, 0.15 * size]
            t = T0
            while t < end:
                grow = (t - T0) / 86400 * 0.25 * size if filling else rnd.uniform(-1, 1) * 1e9
                f0, f1 = base[0] + grow, base[1] + rnd.uniform(-1, 1) * 1e8
                event(t, {"metric": "folder_used_bytes", "share": share, "folder": "F0"}, value=f0, source="poller")
                event(t, {"metric": "folder_used_bytes", "share": share, "folder": "F1"}, value=f1, source="poller")
                event(t, {"metric": "share_used_bytes", "share": share}, value=f0 + f1 + 0.2 * size, source="poller")
                t += 15 * MIN

            # internet outages: a quarter of the sites, one or two a day
            if n % 4 == 0:
                day = T0
                planned_done = False
                while day < end:
                    start = day + rnd.uniform(1, 20) * 3600
                    dur = rnd.uniform(20, 90) * MIN
                    if start + dur < end:
                        if not planned_done and n % 8 == 0:
                            planned_done = True
                            emit(start - 3 * 3600, {"op": "maintenance", "at": rfc3339(start - 3 * 3600),
                                                    "client": cid, "site": sid, "starts_at": rfc3339(start - 60),
                                                    "ends_at": rfc3339(start + dur + 600), "reason": "upgrade"})
                        outage(event, emit, rnd, cid, sid, agent, probes, people, start, dur)
                    day += 86400

            # noise: a probe blip under a minute, an info alert, every few hours
            t = T0 + rnd.uniform(0, 4) * 3600
            while t < end:
                lab = {"alertname": "ProbeFailed", "client": cid, "site": sid, "instance": probes[1]}
                event(t, lab, starts=t)
                event(t + 40, lab, "resolved", starts=t, ends=t + 40)
                event(t + 5, {"alertname": "BackupSlow", "client": cid, "host": f"{sid}-nas", "severity": "info"})
                t += rnd.uniform(3, 6) * 3600

            # mail: every 5th site has a mailbox with three failed logins in ten minutes
            if n % 5 == 1:
                t = T0 + rnd.uniform(2, max(2.5, hours - 1)) * 3600
                mbox = f"{people[2]}@{cid}.example"
                for k in range(3):
                    at = t + k * 3 * MIN
                    event(at, {"alertname": "MailboxLoginFailed", "mailbox": mbox}, starts=at)
                    event(at + 30, {"alertname": "MailboxLoginFailed", "mailbox": mbox}, starts=at)  # re-send
            # flapping link: every 11th site, once
            if n % 11 == 5:
                t = T0 + rnd.uniform(1, max(1.5, hours - 1)) * 3600
                link = {"alertname": "LinkDown", "snmp_agent": agent, "ifIndex": "2", "ifDescr": "wan0"}
                up = {**link, "alertname": "LinkUp"}
                for k in range(8):
                    at = t + k * 3 * MIN
                    event(at, link, starts=at, source="snmp")
                    event(at + 60, up, "resolved", starts=at + 60, source="snmp")
        clients.append(client)
    lines.sort()
    return {"clients": clients}, [text for _, _, text in lines]


def outage(event: Callable[..., None], emit: Callable[[float, dict[str, Any]], None], rnd: random.Random,
           cid: str, sid: str, agent: str, probes: list[str], people: list[str], start: float, dur: float) -> None:
    """One office offline: probes failing (re-sent, some twice, some late), the uplink down,
    two hosts behind it down, a person calling in; everything resolved at the end."""
    stop = start + dur
    link = {"alertname": "LinkDown", "snmp_agent": agent, "ifIndex": "1", "ifDescr": "wan0"}
    event(start + 2, link, starts=start + 2, source="snmp")
    signals = [({"alertname": "ProbeFailed", "client": cid, "site": sid, "instance": p, "severity": "critical"},
                start) for p in probes]
    signals += [({"alertname": "InstanceDown", "host": f"{sid}-srv{h}", "severity": "critical"}, start + 60)
                for h in range(2)]
    for labels, began in signals:
        t = began
        while t < stop:
            late = rnd.uniform(0, 8) if rnd.random() < 0.1 else 0.0
            event(t + late, labels, starts=began)
            if rnd.random() < 0.15:
                event(t + rnd.uniform(0, 3), labels, starts=began, source="prometheus-replica")
            t += 5 * MIN
        event(stop + rnd.uniform(0, 20), labels, "resolved", starts=began, ends=stop)
    event(stop + 5, {**link, "alertname": "LinkUp"}, "resolved", starts=stop + 5, source="snmp")
    emit(start + 10 * MIN, {"op": "callback", "at": rfc3339(start + 10 * MIN), "person": people[0]})


def run_once(config: Any, lines: list[str]) -> tuple[float, dict[str, Any]]:
    t = time.perf_counter()
    result = replay(config, lines)
    return time.perf_counter() - t, result


def measure(name: str, config: Any, lines: list[str], repeat: int, profile: bool) -> list[Any]:
    times: list[float] = []
    result: dict[str, Any] = {}
    for _ in range(repeat):
        secs, result = run_once(config, lines)
        times.append(secs)
    ops = sum(1 for ln in lines if ln.startswith('{"op"'))
    cats = Counter(tk["category"] for tk in result["tickets"])
    best, median = min(times), statistics.median(times)
    if profile:
        prof = cProfile.Profile()
        prof.enable()
        replay(config, lines)
        prof.disable()
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        print(f"--- profile: {name} (by own time) ---")
        print("\n".join(ln for ln in out.getvalue().splitlines() if ln.strip())[:6000], flush=True)
    events = len(lines) - ops
    return [name, len(lines), events, best, median, events / best, events / median,
            len(result["tickets"]), " ".join(f"{k}:{v}" for k, v in sorted(cats.items())),
            len(result["notifications"])]


def config_for(wd: Path, name: str, inventory: Path) -> Any:
    folder = wd / name
    folder.mkdir()
    (folder / "watcher.yaml").write_text(f"rules: {RULES}\ninventory: {inventory}\n", encoding="utf-8")
    return load_config(folder / "watcher.yaml")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=40, help="synthetic clients (default 40)")
    p.add_argument("--sites", type=int, default=3, help="sites per synthetic client (default 3)")
    p.add_argument("--hours", type=float, default=24.0, help="hours of synthetic stream (default 24)")
    p.add_argument("--repeat", type=int, default=3, help="runs per stream (default 3)")
    p.add_argument("--sample", type=Path, default=SAMPLE, help=f"scenario folder (default {SAMPLE})")
    p.add_argument("--no-sample", action="store_true", help="skip the sample scenario")
    p.add_argument("--profile", action="store_true", help="print a cProfile summary per stream")
    args = p.parse_args()
    if args.clients < 1 or args.sites < 1 or args.hours <= 0 or args.repeat < 1:
        p.error("sizes must be positive")
    rows: list[list[Any]] = []
    with workdir("watcher-bench-replay-") as wd:
        if not args.no_sample:
            lines = (args.sample / "stream.jsonl").read_text(encoding="utf-8").splitlines()
            config = config_for(wd, "sample", args.sample / "inventory.yaml")
            rows.append(measure(f"scenario {args.sample.name}", config, lines, args.repeat, args.profile))
        t = time.perf_counter()
        inv, lines = synthetic(args.clients, args.sites, args.hours)
        gen = time.perf_counter() - t
        inv_path = wd / "synthetic-inventory.yaml"
        inv_path.write_text(yaml.safe_dump(inv, sort_keys=False), encoding="utf-8")
        config = config_for(wd, "synthetic", inv_path)
        name = f"synthetic {args.clients}x{args.sites} sites, {args.hours:g} h"
        rows.append(measure(name, config, lines, args.repeat, args.profile))
    print(f"Replay throughput: watcher.replay.replay() in process, best and median of {args.repeat} runs "
          f"(synthetic stream generated in {gen:.1f} s, not counted); {machine()}")
    print(table(["stream", "lines", "events", "best s", "median s", "events/s best", "events/s median",
                 "tickets", "by category", "notices"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
