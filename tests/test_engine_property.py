"""Hypothesis drives the engine with what feeds really send: unknown names, extreme numbers,
odd strings and times, operations on things that do not exist, and long gaps of quiet.

Whatever it finds, the engine must not raise (a line the edge refuses is refused there, as
``POST /api/v1/events`` would answer 400), a snapshot taken at any point must be storable,
and ``watcher replay`` of the same lines must give the same tickets and notices."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_engine import INVENTORY, ROOT
from watcher.config import Config, load_config
from watcher.model import Event, EventError, Op, op_from_dict
from watcher.replay import replay
from watcher.rules import Engine

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)

KNOWN = ["acme", "krk", "ProbeFailed", "InstanceDown", "LinkDown", "LinkUp", "DiskFull", "MailboxLoginFailed",
         "https://vpn.acme.example/", "203.0.113.10:443", "192.0.2.1", "krk-sw1", "jan", "ewa", "critical",
         "warning", "info", "share_used_bytes", "folder_used_bytes", "mail01"]
ODD = ["", " ", "newclient", "ghost-site", "192.0.2.250", "nobody@nowhere", "\x00", "\x07\x1b[31m", "\u202e",
       "x" * 300, "ż" * 50, "{client}", "%s", "T-000001", "=~(", "9" * 40]
KEYS = ["alertname", "client", "site", "host", "instance", "snmp_agent", "share", "folder", "mailbox", "person",
        "severity", "metric", "ifIndex", "target"]

names = st.sampled_from(KNOWN) | st.sampled_from(ODD) | st.text(max_size=20)
label_sets = st.dictionaries(st.sampled_from(KEYS) | st.text(min_size=1, max_size=12), names,
                             min_size=1, max_size=6)
numbers = (st.floats(allow_nan=True, allow_infinity=True) | st.integers(-10**20, 10**20)
           | st.sampled_from([0, 1e12, 5e11, 1e18, 1e20, -1.0]))
sizes = st.sampled_from(["inf", "-inf", "nan", "1e400", "1e20", "0", "-5", "800000000000", "abc", ""]) | st.text(
    max_size=8)
times = st.sampled_from(["1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                         "2026-11-02T08:00:00+14:00", "2200-01-01T00:00:00Z", "not a time", ""])


@st.composite
def event_line(draw: st.DrawFn, at: datetime) -> dict[str, Any]:
    line: dict[str, Any] = {"source": draw(st.sampled_from(["api", "probe", "poller", "snmp", "x" * 70])),
                            "status": draw(st.sampled_from(["firing", "resolved"])),
                            "labels": draw(label_sets), "observed_at": at.isoformat()}
    start = at - timedelta(seconds=draw(st.integers(-3600, 86400)))
    line["starts_at"] = draw(st.just(start.isoformat()) | times)
    if draw(st.booleans()):
        line["ends_at"] = draw(st.just((at + timedelta(seconds=draw(st.integers(-600, 3600)))).isoformat()) | times)
    if draw(st.booleans()):
        line["value"] = draw(numbers)
        line["labels"].setdefault("metric", draw(st.sampled_from(["share_used_bytes", "folder_used_bytes"])))
    if draw(st.booleans()):
        line["annotations"] = {"total_bytes": draw(sizes)}
    return line


@st.composite
def op_line(draw: st.DrawFn, at: datetime) -> dict[str, Any]:
    kind = draw(st.sampled_from(["maintenance", "silence", "callback", "ack", "resolve", "office_answer"]))
    line: dict[str, Any] = {"op": kind, "at": at.isoformat()}
    value = st.sampled_from(KNOWN) | st.sampled_from(ODD) | st.sampled_from(["T-000001", "T-000002"])
    if kind == "maintenance":
        line |= {"client": draw(value), "site": draw(st.none() | value),
                 "starts_at": (at + timedelta(seconds=draw(st.integers(-3600, 3600)))).isoformat(),
                 "ends_at": draw(st.just((at + timedelta(hours=2)).isoformat()) | times), "reason": draw(value)}
    elif kind == "silence":
        line |= {"matchers": draw(st.dictionaries(st.sampled_from(KEYS), value | st.sampled_from(["=~(", "!~.*"]),
                                                  max_size=2)),
                 "ends_at": (at + timedelta(hours=1)).isoformat(), "mute": draw(st.booleans())}
    elif kind == "callback":
        line |= {"person": draw(value)} | ({"ticket": draw(value)} if draw(st.booleans()) else {})
    elif kind == "office_answer":
        line |= {"ticket": draw(value), "answer": draw(st.sampled_from(["planned", "failure", "?"]))}
    else:
        line |= {"ticket": draw(value), "by": draw(value)}
    return line


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    at = T0
    lines = []
    for _ in range(draw(st.integers(1, 40))):
        at += timedelta(seconds=draw(st.sampled_from([0, 1, 30, 90, 200, 900, 3600, 6 * 3600])))
        lines.append(draw(op_line(at) if draw(st.integers(0, 5)) == 0 else event_line(at)))
    return lines


_CONFIG: list[Config] = []


def _config(tmp: Path) -> Config:
    if not _CONFIG:
        (tmp / "inventory.yaml").write_text(INVENTORY)
        (tmp / "watcher.yaml").write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: inventory.yaml\n")
        _CONFIG.append(load_config(tmp / "watcher.yaml"))
    return _CONFIG[0]


def _live(config: Config, lines: list[dict[str, Any]], restarts: set[int]) -> tuple[dict[str, Any], list[Any]]:
    """As the service: the edge refuses what it cannot read; the engine gets the rest, its
    state is serialised as the store would at every step, and at ``restarts`` the engine is
    rebuilt from that stored state (a restart, a reload, a replica taking over)."""
    engine = Engine(config.rules, config.inventory)
    tickets: dict[str, Any] = {}
    notices: list[Any] = []
    clock = None
    for index, raw in enumerate(lines):
        try:
            item: Event | Op = op_from_dict(raw) if "op" in raw else Event.from_dict(raw)
        except EventError:
            continue
        at = item.at if isinstance(item, Op) else (item.observed_at or item.starts_at)
        assert at is not None
        clock = at if clock is None or at > clock else clock
        engine.handle(item, clock)
        changes = engine.drain()
        for tk in changes.tickets:
            tickets[tk.id] = tk
        notices.extend(n.to_dict() for n in changes.notices)
        stored = orjson.dumps(engine.snapshot())  # what the service commits must always be storable
        if index in restarts:
            engine = Engine(config.rules, config.inventory, orjson.loads(stored))
    return {k: v.to_dict() for k, v in sorted(tickets.items())}, notices


@settings(max_examples=int(os.environ.get("WATCHER_PROPERTY_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=streams(), restarts=st.sets(st.integers(0, 40), max_size=3))
def test_engine_never_raises_and_replay_agrees(lines: list[dict[str, Any]], restarts: set[int],
                                               tmp_path: Path) -> None:
    config = _config(tmp_path)
    tickets, notices = _live(config, lines, restarts)
    out = replay(config, [json.dumps(x) for x in lines])
    assert {t["id"]: t for t in out["tickets"]} == tickets
    assert out["notifications"] == notices
    assert out["stats"]["set_aside_lines"] == 0, "nothing may fail in the engine itself"
    for t in tickets.values():
        assert t["client"] == "acme", "only the inventory's clients get tickets"
