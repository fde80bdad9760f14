"""Replay gives the same tickets and notifications as the recorded golden output.

The engine is reshaped from time to time (rule kinds, ops, timers moved between modules); a
change of that kind must not change what an agent or an employee sees.  These streams are
made by a seeded generator from the shipped rules and a small inventory, so they touch every
rule kind (outage with all-probes, resolved_by and symptoms, threshold, forecast, catchall),
every operation (maintenance, silence and expire, callback, ack, resolve, office answer,
call, escalate, advice) and the timers between them.  The expected output was recorded by the
code before the reshaping; when a change is *meant* to alter behaviour, record it again with
``WATCHER_GOLDEN_RECORD=1`` and say why in the commit.

The shared sample's replay is compared by its digest as well when the sample is there.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED
from tests.test_engine import INVENTORY, ROOT
from watcher.config import Config, load_config
from watcher.replay import replay

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
RECORD = os.environ.get("WATCHER_GOLDEN_RECORD") == "1"
SEEDS = (1, 2, 3, 4, 5, 6)
T0 = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)

PROBES = ["https://vpn.acme.example/", "203.0.113.10:443"]
MAILBOXES = ["jan@acme.example", "ewa@acme.example", "ghost@acme.example"]
HOSTS = ["krk-sw1", "krk-srv1", "krk-nas", "other-host"]
PEOPLE = ["jan", "ewa", "olek", "nobody"]


def _event(rng: random.Random, at: datetime) -> dict[str, Any]:
    status = "firing" if rng.random() < 0.6 else "resolved"
    pick = rng.randrange(12)
    labels: dict[str, str] = {"client": "acme"}
    value: float | None = None
    annotations: dict[str, str] = {}
    if pick <= 2:
        labels |= {"alertname": "ProbeFailed", "site": "krk", "target": rng.choice(PROBES)}
    elif pick == 3:
        labels |= {"alertname": rng.choice(["LinkDown", "LinkUp"]), "snmp_agent": "192.0.2.1",
                   "ifIndex": rng.choice(["1", "2"])}
    elif pick == 4:
        labels |= {"alertname": rng.choice(["InstanceDown", "HostDown"]), "host": rng.choice(HOSTS)}
    elif pick == 5:
        labels |= {"alertname": rng.choice(["MailServerDown", "MailboxLoginFailed", "MailDeliveryFailed"]),
                   "host": "mail01", "mailbox": rng.choice(MAILBOXES)}
    elif pick == 6:
        labels |= {"alertname": "MailboxQuotaNearlyFull", "mailbox": rng.choice(MAILBOXES)}
    elif pick in (7, 8):
        labels |= {"metric": "share_used_bytes", "share": "projects", "site": "krk"}
        value = 5e11 + (at - T0).total_seconds() * rng.uniform(5e5, 4e6)
        annotations = {"total_bytes": "1000000000000"}
        status = "firing"
    elif pick == 9:
        labels |= {"metric": "folder_used_bytes", "share": "projects", "folder": rng.choice(["jan", "ewa"])}
        value = 1e11 + (at - T0).total_seconds() * rng.uniform(1e5, 3e6)
        status = "firing"
    elif pick == 10:
        labels |= {"alertname": rng.choice(["HostOutOfDiskSpace", "BackupFailed", "CertExpiring"]),
                   "host": rng.choice(HOSTS), "severity": rng.choice(["info", "warning", "critical"])}
    else:
        labels |= {"alertname": rng.choice(["ProbeFailed", "InstanceDown"]),
                   "client": rng.choice(["acme", "newclient"]), "site": rng.choice(["krk", "ghost-site"])}
    line: dict[str, Any] = {"source": rng.choice(["probe", "poller", "snmp", "api"]), "status": status,
                            "labels": labels, "observed_at": at.isoformat(),
                            "starts_at": (at - timedelta(seconds=rng.randrange(0, 120))).isoformat()}
    if status == "resolved":
        line["ends_at"] = at.isoformat()
    if value is not None:
        line["value"] = value
    if annotations:
        line["annotations"] = annotations
    return line


def _op(rng: random.Random, at: datetime, ticket_count: int) -> dict[str, Any]:
    kind = rng.choice(["maintenance", "silence", "expire", "callback", "ack", "resolve", "office_answer", "call",
                       "escalate", "advice"])
    ticket = f"T-{rng.randrange(1, max(2, ticket_count + 2)):06d}"
    line: dict[str, Any] = {"op": kind, "at": at.isoformat()}
    if kind == "maintenance":
        line |= {"client": "acme", "site": rng.choice(["krk", None]),
                 "starts_at": (at + timedelta(minutes=rng.randrange(-10, 30))).isoformat(),
                 "ends_at": (at + timedelta(minutes=rng.randrange(30, 180))).isoformat(), "reason": "works",
                 "id": f"M-{rng.randrange(1, 4)}"}
    elif kind == "silence":
        line |= {"matchers": rng.choice([{"alertname": "BackupFailed"}, {"host": "=~krk-.*"},
                                         {"mailbox": "jan@acme.example"}]),
                 "ends_at": (at + timedelta(minutes=rng.randrange(10, 120))).isoformat(),
                 "mute": rng.random() < 0.5, "id": f"S-{rng.randrange(1, 4)}"}
    elif kind == "expire":
        what = rng.choice(["silence", "maintenance"])
        line |= {"what": what, "id": f"{what[0].upper()}-{rng.randrange(1, 5)}"}
    elif kind == "callback":
        line |= {"person": rng.choice(PEOPLE)} | ({"ticket": ticket} if rng.random() < 0.5 else {})
    elif kind in ("ack", "resolve"):
        line |= {"ticket": ticket, "by": rng.choice(["anna", None])}
    elif kind == "office_answer":
        line |= {"ticket": ticket, "answer": rng.choice(["planned", "failure", "working"])}
    elif kind == "call":
        line |= {"ticket": ticket, "person": rng.choice(PEOPLE),
                 "outcome": rng.choice(["reached", "no_answer", "left_message"])}
    elif kind == "escalate":
        line |= {"ticket": ticket, "to": rng.choice(["admins", "service", None]), "reason": "by hand"}
    else:
        line |= {"ticket": ticket, "person": rng.choice(["jan", "ewa", None])}
    return line


def stream(seed: int, lines: int = 2500) -> list[str]:
    """A few days of traffic: bursts, quiet hours (timers fire between lines) and ops."""
    rng = random.Random(seed)
    at = T0
    out: list[str] = []
    for n in range(lines):
        at += timedelta(seconds=rng.choice([1, 5, 20, 60, 60, 120, 300, 900]) if rng.random() < 0.97
                        else rng.randrange(3600, 8 * 3600))
        item = _op(rng, at, n // 60) if rng.random() < 0.06 else _event(rng, at)
        out.append(json.dumps(item, ensure_ascii=False))
    return out


def _config(tmp_path: Path, inventory: Path) -> Config:
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: {inventory}\n")
    return load_config(cfg)


def _canonical(doc: dict[str, Any]) -> str:
    return json.dumps({"tickets": doc["tickets"], "notifications": doc["notifications"]}, sort_keys=True,
                      ensure_ascii=False, indent=1)


@pytest.mark.parametrize("seed", SEEDS)
def test_replay_matches_golden(tmp_path: Path, seed: int) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY)
    doc = replay(_config(tmp_path, inv), stream(seed))
    got = _canonical(doc)
    path = GOLDEN / f"seed{seed}.json"
    if RECORD:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got + "\n")
    expected = path.read_text().rstrip("\n")
    assert json.loads(got)["tickets"], "the stream should open tickets"
    assert got == expected, f"replay of seed {seed} differs from {path.name}"


SAMPLE = SHARED / "scenarios" / "sample"


@pytest.mark.skipif(not (SAMPLE / "stream.jsonl").exists(), reason="the shared sample is not there")
def test_sample_replay_digest(tmp_path: Path) -> None:
    doc = replay(_config(tmp_path, SAMPLE / "inventory.yaml"),
                 (SAMPLE / "stream.jsonl").read_text().splitlines())
    digest = hashlib.sha256(_canonical(doc).encode()).hexdigest()
    path = GOLDEN / "sample.sha256"
    if RECORD:
        path.write_text(digest + "\n")
    assert digest == path.read_text().strip()
