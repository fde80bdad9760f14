"""The collectors one process runs, started and stopped together.

``run_collectors(config, sink, primary)`` is an async context manager: it starts the
scheduled collectors (probes, share disk usage, SNMP polling, mailbox checks) and the SNMP
trap receiver that ``config`` asks for, yields a :class:`RunningCollectors` that the API,
``/metrics`` and the console read, and stops everything in reverse order on exit, also when
a later part fails to start.  Every collector emits through ``sink``: the service's one way
into the durable inbox.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watcher.config import Config
from watcher.model import Event

if TYPE_CHECKING:
    from watcher.collectors.schedule import CollectorHealth, Scheduler
    from watcher.collectors.snmptrap import SnmpTrapReceiver

log = logging.getLogger("watcher")

EventSink = Callable[[list[Event]], Awaitable[None]]

TRAP_FIGURES = ("received", "rejected_community", "rejected_v3", "sink_errors", "dropped", "kernel_dropped",
                "garbage")


@dataclass
class RunningCollectors:
    """What the collectors of this process are doing (read by the API, metrics, console)."""

    scheduler: Scheduler | None = None
    traps: SnmpTrapReceiver | None = None
    names: list[str] = field(default_factory=list)

    def health(self) -> dict[str, CollectorHealth]:
        """Each scheduled job's health, by job name (empty when nothing is scheduled)."""
        return self.scheduler.health() if self.scheduler is not None else {}

    def trap_stats(self) -> dict[str, int] | None:
        """The SNMP trap receiver's counters, or None when this process takes no traps."""
        if self.traps is None:
            return None
        st = self.traps.stats
        return {k: int(getattr(st, k, 0)) for k in TRAP_FIGURES}


@contextlib.asynccontextmanager
async def run_collectors(config: Config, sink: EventSink, primary: bool = True
                         ) -> AsyncIterator[RunningCollectors]:
    """Start what ``config`` asks for (nothing unless ``primary``), yield, stop in reverse."""
    running = RunningCollectors()
    async with contextlib.AsyncExitStack() as stack:
        if primary:
            await _scheduled(config, sink, stack, running)
            running.traps = await _traps(config, sink, stack)
        yield running


async def _scheduled(config: Config, sink: EventSink, stack: contextlib.AsyncExitStack,
                     running: RunningCollectors) -> None:
    cc = config.service.collectors
    if not (cc.probes or cc.disk or cc.snmp_devices or config.service.mail):
        return
    from watcher.collectors.schedule import Scheduler

    scheduler = await stack.enter_async_context(Scheduler(max_concurrency=cc.max_concurrency))
    running.scheduler = scheduler
    if cc.probes:
        from watcher.collectors.probes import ProbeCollector

        probes = await stack.enter_async_context(ProbeCollector(config.inventory, sink))
        probes.register(scheduler)
        running.names.append("probes")
        log.info("site probes: %d targets", len(probes.targets()))
    if cc.disk:
        from watcher.collectors.disk import DiskCollector

        disk = stack.enter_context(DiskCollector(config.inventory, sink))
        disk.register(scheduler, interval=cc.disk_interval)
        running.names.append("disk")
        log.info("share disk usage: %d shares", len(disk.share_ids()))
    if cc.snmp_devices:
        from watcher.collectors.snmppoll import SnmpPoller

        poller = await stack.enter_async_context(SnmpPoller(list(cc.snmp_devices), sink))
        poller.register(scheduler, interval=cc.snmp_interval)
        running.names.append("snmp_poll")
        log.info("SNMP polling: %d devices", len(cc.snmp_devices))
    if config.service.mail is not None:
        from watcher.collectors.mailbox import MailboxCollector

        mail = MailboxCollector(config.service.mail, config.inventory)
        mail.register(scheduler, sink)
        running.names.append("mail")
        log.info("mail checks: %d mailboxes, %d servers, %d bounce mailboxes", len(config.service.mail.mailboxes),
                 len(config.service.mail.smtp), len(config.service.mail.bounces))


async def _traps(config: Config, sink: EventSink, stack: contextlib.AsyncExitStack) -> SnmpTrapReceiver | None:
    listen = config.service.snmp.listen
    if not listen:
        return None
    from watcher.collectors.snmptrap import SnmpTrapConfig, SnmpTrapReceiver, SnmpV3User

    host, _, port = listen.rpartition(":")
    users = [SnmpV3User(**u) for u in config.service.snmp.v3_users]  # type: ignore[arg-type]
    cfg = SnmpTrapConfig(host=host or "127.0.0.1", port=int(port), communities=list(config.service.snmp.communities),
                         v3_users=users, rcvbuf=config.service.snmp.rcvbuf)
    receiver = SnmpTrapReceiver(cfg, sink)
    try:
        await receiver.start()
    except OSError as exc:
        log.error("SNMP trap receiver cannot listen on %s: %s", listen, exc)
        return None
    stack.push_async_callback(receiver.stop)
    log.info("SNMP traps on udp %s", listen)
    return receiver
