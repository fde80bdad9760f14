"""The engine's state kept as rows: a commit writes what changed, a restart gets it all back.

Runs on SQLite and PostgreSQL (``db_url``).  The point is the cost model: with thousands of
alerts held, one more event must write one alert row and its group rows, not the state.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.test_engine import INVENTORY, ROOT
from watcher.config import load_inventory, load_rules
from watcher.model import Event
from watcher.rules import Engine
from watcher.store import Store
from watcher.store.schema import engine_parts

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def _engine(tmp_path: Path, state: dict | None = None) -> Engine:  # type: ignore[type-arg]
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY)
    return Engine(load_rules(ROOT / "rules.yaml"), load_inventory(inv), state)


def _event(i: int, status: str = "firing") -> Event:
    return Event(labels={"alertname": "InstanceDown", "client": "acme", "host": f"krk-h{i}",
                         "instance": f"krk-h{i}:9100"}, source="api", status=status,  # type: ignore[arg-type]
                 starts_at=T0, observed_at=T0)


def _same(a: Engine, b: Engine) -> bool:
    """The same state, whatever order the alerts and groups come in (rows come by key)."""
    def norm(s: dict) -> dict:  # type: ignore[type-arg]
        return {**s, "alerts": sorted(s["alerts"]), "groups": sorted(s["groups"], key=lambda g: g["gid"])}
    return norm(a.snapshot()) == norm(b.snapshot())


def _rows(store: Store, kind: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(engine_parts)
                                .where(engine_parts.c.kind == kind)).scalar_one())


def test_a_commit_writes_only_what_changed(store: Store, tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for i in range(300):
        engine.handle(_event(i), T0 + timedelta(seconds=1))
    first = engine.delta()
    assert len(first.parts["alerts"]) == 300
    store.commit_batch(300, first, [], [], T0.timestamp())
    assert _rows(store, "alerts") == 300

    engine.handle(_event(7, "resolved"), T0 + timedelta(seconds=2))
    second = engine.delta()
    assert list(second.parts["alerts"]) == [engine.alerts.peek(_event(7).fingerprint).fp]  # type: ignore[union-attr]
    assert len(second.parts["groups"]) <= 2  # the host's group (and nothing held elsewhere)
    store.commit_batch(301, second, [], [], T0.timestamp() + 1)

    cursor, state, _ = store.load_engine_epoch()
    assert cursor == 301
    restored = _engine(tmp_path, state)
    assert _same(restored, engine)


def test_forgotten_alerts_are_deleted_rows(store: Store, tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    engine.handle(Event(labels={"alertname": "Nobody", "x": "1"}, starts_at=T0, observed_at=T0), T0)
    store.commit_batch(1, engine.delta(), [], [], T0.timestamp())
    assert _rows(store, "alerts") == 1
    engine.advance(T0 + timedelta(hours=2))  # an alert no rule names, quiet for an hour: forgotten
    delta = engine.delta()
    assert list(delta.parts["alerts"].values()) == [None]
    store.commit_batch(2, delta, [], [], T0.timestamp() + 7200)
    assert _rows(store, "alerts") == 0


def test_a_state_written_whole_by_an_earlier_release_is_split_on_the_next_commit(store: Store,
                                                                                  tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    for i in range(5):
        engine.handle(_event(i), T0)
    store.commit_batch(5, engine.snapshot(), [], [], T0.timestamp())  # the whole document
    _, state, _, inline = store.load_engine_state()
    assert not inline and _rows(store, "alerts") == 5  # a whole dict is stored as rows too
    # an earlier release kept everything in the document itself:
    from sqlalchemy import update

    from watcher.store import _dumps
    from watcher.store.schema import engine_state
    with store.write() as conn:
        conn.execute(update(engine_state).values(state=_dumps(engine.snapshot())))
        conn.execute(engine_parts.delete())
    _, state, _, inline = store.load_engine_state()
    assert inline and state is not None and len(state["alerts"]) == 5
    again = _engine(tmp_path, state)
    store.commit_batch(6, again.delta(whole=True), [], [], T0.timestamp() + 1)
    _, state, _, inline = store.load_engine_state()
    assert not inline and _rows(store, "alerts") == 5
    assert _same(_engine(tmp_path, state), engine)


# ---------------------------------------------------------------- derived summaries

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_STEP = st.tuples(st.integers(0, 5), st.sampled_from(["firing", "resolved"]), st.integers(0, 3),
                  st.integers(0, 120))


@settings(max_examples=60, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_member_summaries_always_match_the_members(tmp_path_factory: pytest.TempPathFactory,
                                                   steps: list[tuple[int, str, int, int]]) -> None:
    """The per-group summaries kept up to date as alerts come and go equal a sum from scratch
    after every step: probes failing, recovering, failing again with another start."""
    engine = _engine(tmp_path_factory.mktemp("inv"))
    at = T0
    for probe, status, start_shift, dt in steps:
        at += timedelta(seconds=dt)
        ev = Event(labels={"alertname": "ProbeFailed", "client": "acme", "site": "krk",
                           "instance": f"probe-{probe % 3}", "n": str(probe)}, source="api",
                   status=status, starts_at=T0 + timedelta(minutes=start_shift), observed_at=at)  # type: ignore[arg-type]
        engine.handle(ev, at)
        for gid, aggs in engine.summaries.cached.items():
            g = engine.groups.peek(gid)
            assert g is not None
            assert {i: (a.count, a.first, a.last, a.instances) for i, a in aggs.items() if a.count} == \
                {i: (a.count, a.first, a.last, a.instances) for i, a in engine.summaries.aggregate(g).items()}


def test_open_tickets_are_rows_written_when_they_change(store: Store, tmp_path: Path) -> None:
    """An agent's acknowledgement of one ticket rewrites that ticket, not the others held."""
    from watcher.model import op_from_dict

    engine = _engine(tmp_path)
    at = T0
    for i in range(3):  # three hosts down: three host tickets once their hold is over
        engine.handle(_event(i), at)
    at += timedelta(minutes=10)
    engine.advance(at)
    opened = [tk.id for tk in engine.drain().tickets]
    assert len(set(opened)) == 3
    store.commit_batch(3, engine.delta(tickets=opened), [], [], at.timestamp())
    assert _rows(store, "tickets") == 3
    engine.handle(op_from_dict({"op": "ack", "ticket": opened[0], "by": "ola"}, at), at)
    changed = [tk.id for tk in engine.drain().tickets]
    delta = engine.delta(tickets=changed)
    assert list(delta.parts["tickets"]) == [opened[0]]
    store.commit_batch(4, delta, [], [], at.timestamp() + 1)
    _, state, _ = store.load_engine_epoch()
    restored = _engine(tmp_path, state)
    assert restored.tickets[opened[0]].acknowledged_by == "ola"
    assert _same(restored, engine)
