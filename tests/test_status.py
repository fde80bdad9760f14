"""The engine's published figures in the store (SQLite and PostgreSQL, for real): written
with the engine's commits or as a heartbeat, fenced by epoch, read alike by every process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from watcher.status import StatusPublisher
from watcher.store import InboxRow, Store
from watcher.store.status import EngineStatus, publish_status, read_figures


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def status(epoch: int, cursor: int, leader: str = "a:1", at: float = 1000.0) -> EngineStatus:
    return EngineStatus(leader=leader, epoch=epoch, cursor=cursor, open_tickets=3, groups=4, alerts=5, unbound=1,
                        unrouted=2, silenced=0, leader_since=900.0, heartbeat_at=at)


def test_no_figures_before_the_engine_publishes(store: Store) -> None:
    store.append([InboxRow("event", "api", f"k{i}", 1.0, "{}") for i in range(3)])
    fig = read_figures(store)
    assert fig.status is None and (fig.inbox_head, fig.inbox_lag) == (3, 3) and fig.outbox == {}


def test_a_commit_publishes_with_its_own_epoch_and_lag_counts_the_rest(store: Store) -> None:
    store.append([InboxRow("event", "api", f"k{i}", 1.0, "{}") for i in range(5)])
    epoch = store.commit_batch(2, {"x": 1}, [], [], 1000.0, epoch=0, status=status(0, 2))
    fig = read_figures(store)
    assert fig.status == status(epoch, 2)
    assert (fig.inbox_head, fig.inbox_lag) == (5, 3)


def test_a_deposed_leader_cannot_write_over_its_successor(store: Store) -> None:
    publish_status(store, status(7, 40, leader="new:2"))
    publish_status(store, status(6, 90, leader="old:1", at=2000.0))  # a heartbeat from an older epoch
    got = read_figures(store).status
    assert got is not None and (got.leader, got.cursor) == ("new:2", 40)
    publish_status(store, status(7, 41, leader="new:2", at=1001.0))
    got = read_figures(store).status
    assert got is not None and (got.cursor, got.heartbeat_at) == (41, 1001.0)


class _Engine:
    tickets = {"T-1": None}
    groups: dict[str, object] = {}
    alerts: dict[str, object] = {}
    unbound = unrouted = silenced = 0


def test_publisher_writes_changes_soon_and_sameness_only_as_a_heartbeat() -> None:
    now = [100.0]
    pub = StatusPublisher(heartbeat=2.0, settle=0.5, clock=lambda: now[0])
    first = pub.row(_Engine(), 10, 1)
    assert pub.due(first)  # nothing published yet
    pub.written(first)
    now[0] = 100.3
    assert not pub.due(pub.row(_Engine(), 11, 1)), "a change waits for the settle time"
    now[0] = 100.6
    assert pub.due(pub.row(_Engine(), 11, 1))
    assert not pub.due(pub.row(_Engine(), 10, 1)), "no change: only the heartbeat"
    now[0] = 102.1
    assert pub.due(pub.row(_Engine(), 10, 1))
    pub.lead()
    assert pub.due(replace(first, heartbeat_at=now[0])), "a new leader publishes at once"
