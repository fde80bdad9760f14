"""The engine worker sets a failing item aside and goes on as if it had not been there, on a
real store (SQLite and PostgreSQL).

After the fixes at the edge and in the engine no input is known to make the engine raise,
so the failures here are injected: one engine method is wrapped to raise (or to leave a
state that cannot be stored) for one marked alert.  That wrapper is the only stand-in;
the store, the worker, the rules and the inventory are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.test_engine import INVENTORY, ROOT
from watcher.config import load_config
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.pipeline import EngineWorker
from watcher.rules.engine import Engine, Group
from watcher.rules.windows import SilenceWindow
from watcher.store import InboxRow, Store
from watcher.store import quarantine as qstore

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def worker(tmp_path: Path, db_url: str) -> Iterator[EngineWorker]:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    (tmp_path / "watcher.yaml").write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: inventory.yaml\n"
                                           f"database: {db_url}\n")
    config = load_config(tmp_path / "watcher.yaml")
    store = Store(db_url)
    w = EngineWorker(config, store, Metrics(), on_notices=lambda: None, clock=Clock())
    w._load()
    try:
        yield w
    finally:
        store.close()


def _probe(instance: str, at: float) -> Event:
    return Event({"alertname": "ProbeFailed", "client": "acme", "site": "krk", "instance": instance},
                 source="probe", starts_at=datetime.fromtimestamp(at, UTC),
                 observed_at=datetime.fromtimestamp(at, UTC))


def _marked(name: str, at: float) -> Event:
    return Event({"alertname": name, "client": "acme", "severity": "critical"}, source="api",
                 starts_at=datetime.fromtimestamp(at, UTC), observed_at=datetime.fromtimestamp(at, UTC))


def _post(w: EngineWorker, events: list[Event]) -> list[int]:
    rows = [InboxRow("event", ev.source, ev.occurrence_key, w.clock(), orjson.dumps(ev.to_dict()).decode())
            for ev in events]
    return [s for s in w.store.append(rows) if s is not None]


def _run(w: EngineWorker, until: float) -> None:
    """Steps at a few moments up to ``until``, as the live loop would (it also commits on time)."""
    clock = w.clock
    assert isinstance(clock, Clock)
    while True:
        for _ in range(50):
            if not w._guarded_step():
                break
        if clock.now >= until:
            return
        clock.now = min(until, clock.now + 60)


def _wrap(monkeypatch: pytest.MonkeyPatch, name: str, after: Callable[[Engine, Any], None]) -> None:
    original = getattr(Engine, name)

    def wrapped(self: Engine, item: Any, t: float) -> Any:
        result = original(self, item, t)
        after(self, item)
        return result

    monkeypatch.setattr(Engine, name, wrapped)


def _tickets(w: EngineWorker) -> list[dict[str, Any]]:
    return w.store.list_tickets()


def test_a_failing_event_is_set_aside_and_what_it_half_did_is_undone(worker: EngineWorker,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(engine: Engine, ev: Any) -> None:
        if ev.alertname == "Poison":  # after the engine has recorded the alert and started its group
            raise RuntimeError("injected failure")

    _wrap(monkeypatch, "_alert", boom)
    seqs = _post(worker, [_probe("https://vpn.acme.example/", T0), _marked("Poison", T0),
                          _probe("203.0.113.10:443", T0)])
    _run(worker, T0 + 600)
    poison = _marked("Poison", T0)
    assert poison.fingerprint not in worker.engine.alerts, "the failing item's half-done work was undone"
    assert not any(g.rule == "other" for g in worker.engine.groups.values())
    (item,) = qstore.rows(worker.store)
    assert (item["seq"], item["kind"]) == (seqs[1], "event")
    assert item["reason"] == "RuntimeError: injected failure" and "Poison" in item["payload"]
    assert [t["category"] for t in _tickets(worker)] == ["internet"], "the others went on"
    assert worker.metrics.quarantined_items._value.get() == 1

    # a restart neither fails on it again nor lists it twice
    again = EngineWorker(worker.config, worker.store, Metrics(), on_notices=lambda: None, clock=worker.clock)
    again._load()
    _post(again, [_probe("https://vpn.acme.example/", T0 + 700)])
    _run(again, T0 + 800)
    assert qstore.count(worker.store) == 1


def test_a_commit_that_fails_is_traced_to_its_row(worker: EngineWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    def unstorable(engine: Engine, ev: Any) -> None:
        if ev.alertname == "Unstorable":  # a state no JSON serialiser takes (an integer over 64 bits)
            engine.silences.append(SilenceWindow.make({"x": "y"}, 0, 2**70, "", False, None))

    _wrap(monkeypatch, "_alert", unstorable)
    seqs = _post(worker, [_probe("https://vpn.acme.example/", T0), _marked("Fine", T0 + 1),
                          _marked("Unstorable", T0 + 2), _probe("203.0.113.10:443", T0 + 3)])
    _run(worker, T0 + 900)
    (item,) = qstore.rows(worker.store)
    assert item["seq"] == seqs[2] and "cannot be stored" in item["reason"], item
    assert sorted(t["category"] for t in _tickets(worker)) == ["internet", "other"]
    _, state = worker.store.load_engine()
    assert state is not None and not state["silences"], "the stored state has nothing of the failing row"
    assert worker.cursor == seqs[-1]


def test_a_failing_timer_is_set_aside_once(worker: EngineWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Engine._on_due

    def due(self: Engine, g: Group, t: float) -> None:
        if g.rule == "other":
            raise ValueError("injected timer failure")
        original(self, g, t)

    monkeypatch.setattr(Engine, "_on_due", due)
    _post(worker, [_marked("Lingering", T0), _probe("https://vpn.acme.example/", T0),
                   _probe("203.0.113.10:443", T0)])
    _run(worker, T0 + 1800)
    items = qstore.rows(worker.store)
    assert [i["kind"] for i in items] == ["timer"], items
    assert items[0]["payload"].startswith("group|other|") and "injected timer failure" in items[0]["reason"]
    assert [t["category"] for t in _tickets(worker)] == ["internet"]
    # a restart does not fire it again
    again = EngineWorker(worker.config, worker.store, Metrics(), on_notices=lambda: None, clock=worker.clock)
    again._load()
    _run(again, T0 + 2400)
    assert qstore.count(worker.store) == 1


def test_an_op_that_fails_answers_with_the_reason(worker: EngineWorker, monkeypatch: pytest.MonkeyPatch) -> None:
    original = Engine._op

    def op(self: Engine, item: Any, t: float) -> dict[str, Any]:
        if item.kind == "callback":
            raise KeyError("injected")
        return original(self, item, t)

    monkeypatch.setattr(Engine, "_op", op)
    row = InboxRow("op", "api", "op|1", T0, orjson.dumps({"op": "callback", "at": "2026-11-02T08:00:00Z",
                                                          "person": "jan"}).decode())
    (seq,) = worker.store.append([row])
    _run(worker, T0)
    assert worker.store.op_result(seq) == {"error": "set aside: KeyError: 'injected'"}
    assert qstore.rows(worker.store)[0]["kind"] == "op"


def test_a_timer_whose_result_cannot_be_stored_is_set_aside(worker: EngineWorker,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The outage's hold expires in a step without rows: the failed commit is the timer's."""
    original = Engine._on_due

    def due(self: Engine, g: Group, t: float) -> None:
        original(self, g, t)
        if g.rule == "site-internet":
            self.silences.append(SilenceWindow.make({"x": "y"}, 0, 2**70, "", False, None))

    monkeypatch.setattr(Engine, "_on_due", due)
    _post(worker, [_probe("https://vpn.acme.example/", T0), _probe("203.0.113.10:443", T0)])
    _run(worker, T0 + 1800)
    items = qstore.rows(worker.store)
    assert [(i["kind"], i["payload"].split("|")[:2]) for i in items] == [("timer", ["group", "site-internet"])], items
    assert "cannot be stored" in items[0]["reason"]
    _, state = worker.store.load_engine()
    assert state is not None and not state["silences"]
    assert worker.guard.failing_since is None and not _tickets(worker), "as if the hold had never expired"
