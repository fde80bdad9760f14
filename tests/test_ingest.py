"""``submit_events``, the one way events enter the inbox (HTTP ingest and the collectors), and
the Ingestor handing what it committed to the engine's intake: one direction, no callback
from the caller into the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watcher.ingest import source_label, submit_events
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.pipeline import Ingestor
from watcher.store import Store

START = datetime(2026, 11, 2, 8, 15, tzinfo=UTC)


@dataclass
class Intake:
    """The engine worker's side of the Ingestor, recorded."""

    primed: list[tuple[list[int | None], list[Event]]] = field(default_factory=list)
    wakes: int = 0

    def prime(self, seqs: list[int | None], events: Sequence[Event]) -> None:
        self.primed.append((list(seqs), list(events)))

    def wake(self) -> None:
        self.wakes += 1


@dataclass
class Setup:
    store: Store
    ingestor: Ingestor
    intake: Intake
    metrics: Metrics

    def count(self, name: str, source: str) -> float:
        value = self.metrics.registry.get_sample_value(f"watcher_events_{name}_total", {"source": source})
        return value or 0.0


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    store = Store(f"sqlite:///{tmp_path / 'watcher.db'}")
    intake = Intake()
    ingestor = Ingestor(store, intake)
    await ingestor.start()
    try:
        yield Setup(store, ingestor, intake, Metrics())
    finally:
        await ingestor.stop()
        store.close()


def probe(instance: str, source: str = "probe") -> Event:
    return Event(labels={"alertname": "ProbeFailed", "instance": instance}, source=source, starts_at=START)


async def test_events_are_stored_counted_observed_and_handed_to_the_engine(setup: Setup) -> None:
    seen: list[tuple[int, float]] = []
    events = [probe("a"), probe("b")]
    done = await submit_events(setup.ingestor, events, metrics=setup.metrics,
                               observe=lambda evs, at: seen.append((len(evs), at)))
    assert (done.accepted, done.duplicates) == (2, 0)
    assert setup.store.inbox_max() == 2
    assert [n for n, _ in seen] == [2]
    assert setup.intake.primed == [([1, 2], events)] and setup.intake.wakes == 1
    assert setup.count("received", "probe") == 2
    assert all(ev.observed_at is not None for ev in events)  # the time of receipt, when a source gives none


async def test_a_resend_is_a_duplicate_without_a_store_round_trip(setup: Setup) -> None:
    await submit_events(setup.ingestor, [probe("a")], metrics=setup.metrics)
    seen: list[int] = []
    done = await submit_events(setup.ingestor, [probe("a"), probe("c")], metrics=setup.metrics,
                               observe=lambda evs, _at: seen.append(len(evs)))
    assert (done.accepted, done.duplicates) == (1, 1)
    assert seen == [2]  # a re-send still shows that its sender is alive
    seqs, primed = setup.intake.primed[-1]
    assert seqs == [2] and [ev.labels["instance"] for ev in primed] == ["c"]  # only the new one was stored
    assert setup.count("duplicate", "probe") == 1 and setup.count("received", "probe") == 2


async def test_a_duplicate_the_cache_does_not_know_is_found_by_the_store(setup: Setup) -> None:
    await submit_events(setup.ingestor, [probe("a")], metrics=setup.metrics)
    other = Ingestor(setup.store, Intake())  # another worker: its cache is empty
    await other.start()
    try:
        done = await submit_events(other, [probe("a")], metrics=setup.metrics)
    finally:
        await other.stop()
    assert (done.accepted, done.duplicates) == (0, 1)
    assert setup.store.inbox_max() == 1


async def test_unknown_sources_share_one_metric_series(setup: Setup) -> None:
    await submit_events(setup.ingestor, [probe("a", source="my-script")], metrics=setup.metrics)
    assert setup.count("received", "other") == 1
    assert source_label("uptimekuma") == "uptimekuma" and source_label("snmp") == "snmp"


async def test_nothing_to_submit_touches_nothing(setup: Setup) -> None:
    done = await submit_events(setup.ingestor, [], metrics=setup.metrics, observe=lambda *_: pytest.fail())
    assert (done.accepted, done.duplicates) == (0, 0) and setup.intake.wakes == 0
