"""What every collector is: one sink type, one protocol, one row shape for the table.

A collector is watcher's own eye on something (site probes, share sizes, SNMP devices,
mailboxes, the SNMP trap port).  They differ in what they watch, not in how the service
runs them, so the service needs to know only this much about each:

- it is built from its typed settings (parsed in ``watcher.config``), the inventory and
  the :data:`EventSink`, and emits events through that sink only;
- it is an async context manager: entering it acquires what it holds (an HTTP session, a
  UDP port), leaving it releases that;
- :meth:`Collector.register` puts its periodic jobs on the shared
  :class:`~watcher.collectors.schedule.Scheduler` (one semaphore bounds them all); a
  collector that listens instead (the trap receiver) registers nothing.

``watcher.collectors.running.COLLECTORS`` is the one table of them; adding a collector is
its own file plus one row there (README, "Adding a collector").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from watcher.config import Config, Inventory
from watcher.model import Event

if TYPE_CHECKING:
    from watcher.collectors.schedule import Scheduler

__all__ = ["Collector", "CollectorRow", "EventSink", "Row"]

EventSink = Callable[[list[Event]], Awaitable[None]]
"""Where a collector hands its events (the service's one way into the durable inbox).
Returning means "taken"; an exception means "not taken", and the collector's run errors."""


class Collector(Protocol):
    """An async context manager that owns one kind of watching; see the module docstring."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(self, *exc_info: object) -> None: ...

    def register(self, scheduler: Scheduler) -> None:
        """Add this collector's periodic jobs to ``scheduler`` (none for a listener)."""


S = TypeVar("S")


@dataclass(frozen=True)
class CollectorRow(Generic[S]):
    """One row of the collector table.

    ``settings`` picks the collector's typed settings out of the loaded config, or None
    when the config leaves it off; ``build`` makes the (not yet entered) collector from
    them.  ``scheduled`` says whether it needs the shared scheduler (a listener does not).
    """

    settings: Callable[[Config], S | None]
    build: Callable[[S, Inventory, EventSink], Collector]
    scheduled: bool = True

    def make(self, config: Config, sink: EventSink) -> Collector | None:
        """The collector ``config`` asks for, or None when it is off."""
        settings = self.settings(config)
        return None if settings is None else self.build(settings, config.inventory, sink)


class Row(Protocol):
    """What the service reads of a row, whatever its settings type (the table's value type)."""

    @property
    def scheduled(self) -> bool: ...

    def make(self, config: Config, sink: EventSink) -> Collector | None: ...
