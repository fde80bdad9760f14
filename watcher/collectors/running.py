"""The collectors one process runs: the table of them, started and stopped together.

``COLLECTORS`` is the one table of collectors (name -> :class:`~watcher.collectors.base.CollectorRow`):
how to find each one's typed settings in the config and how to build it.  Adding a
collector is its own file plus one row here (README, "Adding a collector").

``run_collectors(config, sink, primary)`` is an async context manager: it builds and enters
every collector whose settings are on, registers their jobs on one shared scheduler, starts
the scheduler last, yields a :class:`RunningCollectors` that the API, ``/metrics`` and the
console read, and unwinds in reverse on exit (the scheduler stops before the collectors
close what its jobs use), also when a later part fails to start.  Every collector emits
through ``sink``: the service's one way into the durable inbox.

A collector that cannot start because of the machine (an OSError: the SNMP trap port is
taken) is logged and left out; the service and the other collectors run on.  Unless it is
``required``: a reload that moves the trap listener must fail on an address it cannot bind,
so that the old collectors go on instead of running without one.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watcher.collectors.base import Collector, CollectorRow, EventSink, Row
from watcher.collectors.certificates import CertificateCollector
from watcher.config import Config, Inventory
from watcher.config.collectors import CollectorsConfig, SnmpConfig

if TYPE_CHECKING:
    from watcher.collectors.schedule import CollectorHealth, Scheduler
    from watcher.config.mail import MailConfig

log = logging.getLogger("watcher")

TRAP_FIGURES = ("received", "rejected_community", "rejected_v3", "sink_errors", "dropped", "kernel_dropped",
                "garbage")


# ---------------------------------------------------------------- the rows' builders
# A builder adapts a collector whose constructor is not (settings, inventory, sink), and
# imports it inside, so that a process that runs no SNMP does not load pysnmp.


def _probes(cc: CollectorsConfig, inventory: Inventory, sink: EventSink) -> Collector:
    from watcher.collectors.probes import ProbeCollector

    probes = ProbeCollector(inventory, sink)
    log.info("site probes: %d targets", len(probes.targets()))
    return probes


def _disk(cc: CollectorsConfig, inventory: Inventory, sink: EventSink) -> Collector:
    from watcher.collectors.disk import DiskCollector

    disk = DiskCollector(inventory, sink, interval=cc.disk_interval)
    log.info("share disk usage: %d shares", len(disk.share_ids()))
    return disk


def _snmp_poll(cc: CollectorsConfig, inventory: Inventory, sink: EventSink) -> Collector:
    from watcher.collectors.snmppoll import SnmpPoller

    log.info("SNMP polling: %d devices", len(cc.snmp_devices))
    return SnmpPoller(list(cc.snmp_devices), sink, interval=cc.snmp_interval)


def _mail(mail: MailConfig, inventory: Inventory, sink: EventSink) -> Collector:
    from watcher.collectors.mail.collector import MailboxCollector

    log.info("mail checks: %d mailboxes, %d servers, %d bounce mailboxes", len(mail.mailboxes), len(mail.smtp),
             len(mail.bounces))
    return MailboxCollector(mail, inventory, sink=sink)


def _snmp_traps(snmp: SnmpConfig, inventory: Inventory, sink: EventSink) -> Collector:
    from watcher.collectors.snmptrap import SnmpTrapConfig, SnmpTrapReceiver

    assert snmp.listen is not None
    host, _, port = snmp.listen.rpartition(":")
    cfg = SnmpTrapConfig(host=host or "127.0.0.1", port=int(port), communities=list(snmp.communities),
                         v3_users=list(snmp.v3_users), rcvbuf=snmp.rcvbuf)
    return SnmpTrapReceiver(cfg, sink)


def _when(on: Callable[[CollectorsConfig], object]) -> Callable[[Config], CollectorsConfig | None]:
    """The ``collectors:`` settings when ``on`` says this collector is on, else None."""
    return lambda config: config.service.collectors if on(config.service.collectors) else None


COLLECTORS: dict[str, Row] = {
    "probes": CollectorRow(_when(lambda cc: cc.probes), _probes),
    "disk": CollectorRow(_when(lambda cc: cc.disk), _disk),
    "snmp_poll": CollectorRow(_when(lambda cc: cc.snmp_devices), _snmp_poll),
    "mail": CollectorRow(lambda c: c.service.mail, _mail),
    "certificates": CollectorRow(lambda c: c.service.collectors.certificates, CertificateCollector),
    "snmp_traps": CollectorRow(lambda c: c.service.snmp if c.service.snmp.listen else None, _snmp_traps,
                               scheduled=False),
}
"""Every collector watcher has, in start order; see :class:`~watcher.collectors.base.CollectorRow`."""


@dataclass
class RunningCollectors:
    """What the collectors of this process are doing (read by the API, metrics, console)."""

    scheduler: Scheduler | None = None
    started: dict[str, Collector] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)  # the scheduled ones, in start order

    def health(self) -> dict[str, CollectorHealth]:
        """Each scheduled job's health, by job name (empty when nothing is scheduled)."""
        return self.scheduler.health() if self.scheduler is not None else {}

    def trap_stats(self) -> dict[str, int] | None:
        """The SNMP trap receiver's counters, or None when this process takes no traps."""
        from watcher.collectors.snmptrap import SnmpTrapReceiver

        traps = self.started.get("snmp_traps")
        if not isinstance(traps, SnmpTrapReceiver):
            return None
        st = traps.stats
        return {k: int(getattr(st, k, 0)) for k in TRAP_FIGURES}


@contextlib.asynccontextmanager
async def run_collectors(config: Config, sink: EventSink, primary: bool = True, required: Collection[str] = (),
                         table: dict[str, Row] | None = None) -> AsyncIterator[RunningCollectors]:
    """Start what ``config`` asks for (nothing unless ``primary``), yield, stop in reverse.

    ``table`` defaults to :data:`COLLECTORS` (a test may pass its own).  A collector named in
    ``required`` that cannot start raises its OSError (the ones started before it stop)
    instead of being left out.
    """
    from watcher.collectors.schedule import Scheduler

    running = RunningCollectors()
    async with contextlib.AsyncExitStack() as stack:
        if primary:
            scheduler = Scheduler(max_concurrency=config.service.collectors.max_concurrency)
            for name, row in (COLLECTORS if table is None else table).items():
                collector = row.make(config, sink)
                if collector is None:
                    continue
                try:
                    await stack.enter_async_context(collector)
                except OSError as exc:
                    if name in required:
                        raise
                    log.error("collector %s cannot start: %s; the others run", name, exc)
                    continue
                if row.scheduled:
                    collector.register(scheduler)
                    running.scheduler = scheduler
                    running.names.append(name)
                running.started[name] = collector
            if running.scheduler is not None:
                await stack.enter_async_context(scheduler)
        yield running
