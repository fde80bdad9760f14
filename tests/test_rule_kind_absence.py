"""The ``absence`` rule kind (watcher/rules/kinds/absence.py): a nightly backup that stops
reporting its success opens a ticket once ``period`` has passed, by a timer, with no event
arriving; the next success resolves it, and the next silence opens a new one.  Through the
engine, through its stored state, and through ``watcher replay``."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_engine import INVENTORY
from watcher.config import ConfigError, load_inventory, load_rules
from watcher.model import Event
from watcher.rules import Engine

T0 = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
RULES = """rules:
  - name: backup-missing
    kind: absence
    category: backup
    entity: host
    group_by: [client, host]
    signals: [{match: {alertname: BackupSucceeded}}]
    period: 26h
"""


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return Engine(load_rules(tmp_path / "rules.yaml"), load_inventory(tmp_path / "inventory.yaml"))


def _success(night: int) -> dict[str, Any]:
    """The backup of ``night`` (0: the first) finished: one occurrence of its success."""
    at = T0 + timedelta(days=night)
    return {"labels": {"alertname": "BackupSucceeded", "client": "acme", "host": "krk-nas"},
            "starts_at": at.isoformat(), "observed_at": at.isoformat(), "source": "api"}


def test_a_missing_backup_opens_a_ticket_on_time_and_the_next_success_resolves_it(engine: Engine) -> None:
    for night in range(3):
        engine.handle(Event.from_dict(_success(night)), T0 + timedelta(days=night))
    assert not engine.drain().tickets, "successes on time: nothing to report"

    last = T0 + timedelta(days=2)
    engine.advance(last + timedelta(hours=26) - timedelta(seconds=1))
    assert not engine.tickets
    engine.advance(last + timedelta(hours=30))  # no event at all: the timer opens it
    (tk,) = engine.tickets.values()
    assert (tk.category, tk.entity_kind, tk.entity_id, tk.rule) == ("backup", "host", "krk-nas", "backup-missing")
    assert tk.opened_at == last + timedelta(hours=26)
    assert tk.details["last_seen"] == "2026-11-04T02:00:00Z" and tk.details["period_s"] == 26 * 3600

    back = T0 + timedelta(days=3, hours=6)
    engine.handle(Event.from_dict(_success(3) | {"starts_at": back.isoformat()}), back)
    assert tk.status == "resolved" and tk.resolved_at == back and not engine.tickets

    engine.advance(back + timedelta(hours=27))  # silent again: a new incident, again by the timer alone
    (again,) = engine.tickets.values()
    assert again.id != tk.id and again.opened_at == back + timedelta(hours=26)


def test_the_state_keeps_when_it_was_last_seen(engine: Engine) -> None:
    engine.handle(Event.from_dict(_success(0)), T0)
    state = json.loads(json.dumps(engine.snapshot()))
    (row,) = state["groups"]
    assert row["last_seen"] == T0.timestamp() and row["state"] == "pending"
    restored = Engine(engine.rules, engine.inv, state)
    restored.advance(T0 + timedelta(hours=27))
    assert [tk.opened_at for tk in restored.tickets.values()] == [T0 + timedelta(hours=26)]


def test_the_period_is_required(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES.replace("    period: 26h\n", ""))
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert (info.value.file, info.value.key) == (str(path), "rules[0].period"), str(info.value)


def test_watcher_replay_reports_the_missing_backup(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(RULES)
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    config = tmp_path / "watcher.yaml"
    config.write_text("rules: rules.yaml\ninventory: inventory.yaml\n")
    stream = tmp_path / "stream.jsonl"
    # three nights on time, then none; other lines move the replay's clock on (no line of the backup's)
    lines = [_success(n) for n in range(3)] + [
        {"labels": {"alertname": "Unrelated", "client": "acme"},
         "observed_at": (T0 + timedelta(days=2, hours=12 * k)).isoformat()} for k in range(1, 5)]
    stream.write_text("".join(json.dumps(x) + "\n" for x in lines))
    watcher = Path(sys.executable).parent / "watcher"
    out = subprocess.run([str(watcher), "replay", "--config", str(config), str(stream)], capture_output=True,
                         text=True, timeout=120, check=True)
    (tk,) = json.loads(out.stdout)["tickets"]
    assert (tk["rule"], tk["entity"], tk["status"]) == ("backup-missing", {"kind": "host", "id": "krk-nas"}, "open")
    assert tk["opened_at"] == "2026-11-05T04:00:00Z"
