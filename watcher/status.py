"""One truth from every process: the engine's figures as the database holds them.

Only the replica (or worker) that leads the engine knows its cursor and counts first-hand;
the others' in-memory engines are stale copies.  So the leader publishes its figures into
the store (``engine_status``, with every engine commit and as a heartbeat in between), and
every process answers ``/metrics``, ``/api/v1/stats`` and ``/healthz`` from that row plus a
live reading of the inbox and outbox.  A scrape then says the same thing whichever process
answers it, and a leader that stopped is visible as an old heartbeat and a growing lag.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Sized
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client.metrics_core import GaugeMetricFamily, Metric

from watcher.model import format_time
from watcher.store.status import EngineStatus, StoreFigures

OUTBOX_STATES = ("pending", "sending", "sent", "dead")


class _Counts(Protocol):
    """What the publisher reads of a rules engine (watcher.rules.Engine)."""

    @property
    def tickets(self) -> Sized: ...
    @property
    def groups(self) -> Sized: ...
    @property
    def alerts(self) -> Sized: ...

    unbound: int
    unrouted: int
    silenced: int


def process_name() -> str:
    """This process as other replicas see it in the status: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class StatusPublisher:
    """Decides when the engine's leader writes its figures between commits.

    Every engine commit carries them; otherwise a changed figure is written at most every
    ``settle`` seconds and an unchanged one every ``heartbeat`` seconds, so an idle engine
    costs one small write per heartbeat.
    """

    def __init__(self, heartbeat: float = 2.0, settle: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.heartbeat = heartbeat
        self.settle = settle
        self.clock = clock
        self.identity = process_name()
        self.since = clock()
        self._written: EngineStatus | None = None
        self._written_at = 0.0

    def lead(self) -> None:
        """This process has just taken the engine: publish at once."""
        self.since = self.clock()
        self._written = None
        self._written_at = 0.0

    def row(self, engine: _Counts, cursor: int, epoch: int) -> EngineStatus:
        return EngineStatus(leader=self.identity, epoch=epoch, cursor=cursor, open_tickets=len(engine.tickets),
                            groups=len(engine.groups), alerts=len(engine.alerts), unbound=engine.unbound,
                            unrouted=engine.unrouted, silenced=engine.silenced, leader_since=self.since,
                            heartbeat_at=self.clock())

    def due(self, status: EngineStatus) -> bool:
        age = status.heartbeat_at - self._written_at
        if self._written is None or age >= self.heartbeat:
            return True
        changed = replace(status, heartbeat_at=0.0) != replace(self._written, heartbeat_at=0.0)
        return changed and age >= self.settle

    def written(self, status: EngineStatus) -> None:
        self._written = status
        self._written_at = status.heartbeat_at


def _time(ts: float | None) -> str | None:
    return format_time(datetime.fromtimestamp(ts, UTC)) if ts else None


def engine_stats(fig: StoreFigures, this_leads: bool, now: float) -> dict[str, Any]:
    """The ``engine`` object of /api/v1/stats: the store's figures; ``leader`` alone is about
    the answering process."""
    st = fig.status
    return {
        "leader": this_leads,
        "leader_process": st.leader if st else None,
        "leader_since": _time(st.leader_since) if st else None,
        "heartbeat_at": _time(st.heartbeat_at) if st else None,
        "heartbeat_age_seconds": round(max(0.0, now - st.heartbeat_at), 3) if st else None,
        "cursor": st.cursor if st else 0,
        "inbox_head": fig.inbox_head,
        "inbox_lag": fig.inbox_lag,
        "open_tickets": st.open_tickets if st else 0,
        "groups": st.groups if st else 0,
        "alerts": st.alerts if st else 0,
        "unbound_events": st.unbound if st else 0,
        "unrouted_events": st.unrouted if st else 0,
        "silenced_events": st.silenced if st else 0,
    }


class FiguresCollector:
    """The store's figures as Prometheus gauges (a prometheus_client collector), the same
    from every process: they are read from the database at scrape time, not kept in any
    process's memory or multiprocess files."""

    def __init__(self, fig: StoreFigures) -> None:
        self.fig = fig

    def collect(self) -> Iterator[Metric]:
        fig, st = self.fig, self.fig.status

        def gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, value=value)

        yield gauge("watcher_inbox_lag", "Stored events the engine has not handled yet", fig.inbox_lag)
        yield gauge("watcher_inbox_head", "The last inbox row stored (its sequence number)", fig.inbox_head)
        yield gauge("watcher_engine_cursor", "The last inbox row the engine handled, as its leader published it",
                    st.cursor if st else 0)
        outbox = GaugeMetricFamily("watcher_outbox", "Notifications in the outbox, by state", labels=["state"])
        for state in OUTBOX_STATES:
            outbox.add_metric([state], fig.outbox.get(state, 0))
        yield outbox
        yield gauge("watcher_open_tickets", "Tickets open in the engine", st.open_tickets if st else 0)
        yield gauge("watcher_unbound_events", "Events that bound to no client of the inventory (kept, counted)",
                    st.unbound if st else 0)
        yield gauge("watcher_unrouted_events", "Events that no rule names (recorded only)", st.unrouted if st else 0)
        if st is not None:
            yield gauge("watcher_engine_heartbeat_timestamp_seconds", "When the engine's leader last published "
                        "its figures (Unix time); an old one means no process runs the engine", st.heartbeat_at)
            info = GaugeMetricFamily("watcher_engine_leader", "The process that published the engine's figures "
                                     "(host:pid), always 1", labels=["process"])
            info.add_metric([st.leader], 1)
            yield info
