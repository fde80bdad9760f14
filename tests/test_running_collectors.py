"""run_collectors: the table's rows started in order, one shared scheduler, unwound in reverse.

The rows here are small recording collectors (what the table promises does not depend on
what a collector watches); the real collectors run against real servers in their own tests
and in test_collectors_e2e.py.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from watcher.collectors.base import CollectorRow, EventSink, Row
from watcher.collectors.running import COLLECTORS, run_collectors
from watcher.collectors.schedule import Scheduler
from watcher.config import Config, Inventory, load_config
from watcher.model import Event


class Recorder:
    """A collector that notes when it is entered and left, and schedules one job that emits."""

    def __init__(self, name: str, log: list[str], sink: EventSink, fail: bool = False) -> None:
        self.name, self.log, self.sink, self.fail = name, log, sink, fail

    async def __aenter__(self) -> Recorder:
        if self.fail:
            raise OSError(f"{self.name}: address already in use")
        self.log.append(f"enter {self.name}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.log.append(f"exit {self.name}")

    def register(self, scheduler: Scheduler) -> None:
        async def job() -> None:
            await self.sink([Event(labels={"alertname": "Seen", "collector": self.name}, source="test")])
        scheduler.add(f"job {self.name}", job, interval=3600, jitter=0)


def row(name: str, log: list[str], *, on: bool = True, fail: bool = False, scheduled: bool = True) -> Row:
    def build(settings: bool, inventory: Inventory, sink: EventSink) -> Recorder:
        return Recorder(name, log, sink, fail)
    return CollectorRow(lambda _c: True if on else None, build, scheduled=scheduled)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    (tmp_path / "inventory.yaml").write_text("clients: []\n")
    (tmp_path / "watcher.yaml").write_text("snmp: {listen: \"off\"}\n")
    return load_config(tmp_path / "watcher.yaml")


async def test_rows_start_in_order_and_unwind_in_reverse(config: Config, caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    seen: list[Event] = []

    async def sink(events: list[Event]) -> None:
        seen.extend(events)

    table = {"a": row("a", log), "off": row("off", log, on=False), "taken": row("taken", log, fail=True),
             "listener": row("listener", log, scheduled=False), "b": row("b", log)}
    with caplog.at_level(logging.ERROR, logger="watcher"):
        async with run_collectors(config, sink, table=table) as running:
            for _ in range(200):
                if len(seen) == 2:
                    break
                await asyncio.sleep(0.01)
            assert sorted(running.health()) == ["job a", "job b"]
            assert running.names == ["a", "b"] and list(running.started) == ["a", "listener", "b"]
            assert running.trap_stats() is None
    assert sorted(e.labels["collector"] for e in seen) == ["a", "b"]
    assert log == ["enter a", "enter listener", "enter b", "exit b", "exit listener", "exit a"]
    assert "collector taken cannot start: taken: address already in use; the others run" in caplog.text


async def test_a_replica_that_is_not_primary_runs_none(config: Config) -> None:
    log: list[str] = []

    async def sink(events: list[Event]) -> None:
        raise AssertionError("nothing runs")

    async with run_collectors(config, sink, primary=False, table={"a": row("a", log)}) as running:
        assert running.health() == {} and running.started == {}
    assert log == []


def test_the_table_names_every_collector_and_is_off_by_default(config: Config) -> None:
    assert list(COLLECTORS) == ["probes", "disk", "snmp_poll", "mail", "certificates", "snmp_traps"]

    async def sink(events: list[Event]) -> None:
        pass

    assert all(r.make(config, sink) is None for r in COLLECTORS.values())
