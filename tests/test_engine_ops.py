"""Typed operations and typed silences and maintenances: made once at the JSON edge, handled
through one table, stored in the form the engine's snapshot always had."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.test_engine import INVENTORY, ROOT
from watcher.config import ConfigError, load_inventory, load_rules
from watcher.model import OP_TYPES, Ack, Event, Maintenance, Silence, op_from_dict
from watcher.rules import Engine
from watcher.rules.kinds import RULE_KINDS
from watcher.rules.ops import HANDLERS
from watcher.rules.windows import SilenceWindow, window_id

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    return Engine(load_rules(ROOT / "rules.yaml"), load_inventory(tmp_path / "inventory.yaml"))


def test_every_op_type_has_its_handler() -> None:
    assert set(HANDLERS) == set(OP_TYPES.values())
    assert {cls.kind for cls in HANDLERS} == set(OP_TYPES)


def test_an_op_is_typed_once_and_gives_its_json_back() -> None:
    raw = {"op": "silence", "at": "2026-11-02T08:00:00Z", "matchers": {"host": "=~krk-.*"},
           "ends_at": "2026-11-02T10:00:00Z", "comment": "router swap", "extra": [1]}
    op = op_from_dict(raw)
    assert isinstance(op, Silence) and op.kind == "silence"
    assert (op.matchers, op.ends_at, op.starts_at, op.mute) == ({"host": "=~krk-.*"}, T0 + timedelta(hours=2),
                                                                 None, False)
    assert op.to_dict() == raw, "the JSON as it came, a newer sender's extra fields included"
    ack = op_from_dict({"op": "ack", "ticket": "T-000001"}, T0)
    assert isinstance(ack, Ack) and (ack.ticket, ack.by, ack.at) == ("T-000001", None, T0)
    assert ack.moved(T0 + timedelta(minutes=1)).at == T0 + timedelta(minutes=1)


def test_windows_are_stored_as_they_always_were(engine: Engine) -> None:
    engine.handle(op_from_dict({"op": "maintenance", "client": "acme", "site": "krk", "reason": "works", "id": "m1",
                                "starts_at": "2026-11-02T08:00:00Z", "ends_at": "2026-11-02T12:00:00Z"}, T0), T0)
    engine.handle(op_from_dict({"op": "silence", "matchers": {"host": "krk-nas"}, "ends_at": "2026-11-02T12:00:00Z",
                                "mute": True}, T0), T0)
    state = json.loads(json.dumps(engine.snapshot()))
    assert state["maintenances"] == [{"client": "acme", "site": "krk", "start": T0.timestamp(),
                                      "end": T0.timestamp() + 4 * 3600, "reason": "works", "id": "m1"}]
    (stored,) = state["silences"]
    assert stored == {"matchers": {"host": "krk-nas"}, "start": T0.timestamp(), "end": T0.timestamp() + 4 * 3600,
                      "reason": "", "mute": True, "id": None}
    restored = Engine(engine.rules, engine.inv, state)
    assert restored.silences[0].ident == window_id(stored), "listed and lifted under the same id after a restart"
    assert isinstance(op_from_dict({"op": "maintenance", "client": "acme", "starts_at": "2026-11-02T08:00:00Z",
                                    "ends_at": "2026-11-02T09:00:00Z"}), Maintenance)
    lifted = restored.handle(op_from_dict({"op": "expire", "what": "silence", "id": window_id(stored)}, T0), T0)
    assert lifted == {"ok": True} and not restored.silences


def test_a_stored_silence_that_no_longer_compiles_matches_nothing(engine: Engine) -> None:
    state = engine.snapshot()
    state["silences"] = [{"matchers": {"host": "=~(a)\\1"}, "start": 0, "end": 2e9, "reason": "", "mute": True}]
    restored = Engine(engine.rules, engine.inv, state)
    window = restored.silences[0]
    assert isinstance(window, SilenceWindow) and not window.matches({"host": "aa"}, T0.timestamp(), None)
    restored.handle(Event(labels={"alertname": "InstanceDown", "client": "acme", "host": "krk-h1"},
                          starts_at=T0, observed_at=T0), T0)
    assert restored.silenced == 0


def test_a_kind_reads_only_its_own_keys(tmp_path: Path) -> None:
    for name, kind in RULE_KINDS.items():
        assert kind.name == name
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - name: r\n    kind: outage\n    signals: [{match: {alertname: X}}]\n    count: 3\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert (info.value.line, info.value.key) == (5, "rules[0].count") and "unknown key" in info.value.message
