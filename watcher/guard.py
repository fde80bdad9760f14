"""What keeps one bad item from stopping the engine: the bookkeeping of items set aside.

The engine worker handles inbox rows in order.  When one of them (or a timer the engine
fires) raises, the worker

1. records the item in the quarantine with its reason (``watcher.store.quarantine``),
2. remembers to skip it (``Guard.skip`` for rows, ``Guard.skip_timers`` for timers),
3. reloads the engine from the store, i.e. from its last commit, and runs the rows again.

So whatever the failing item half-did to the engine's state is thrown away with the
reload: the engine goes on exactly as if the item had never arrived.  This costs a
reload and a re-run of the rows since the last commit, which is cheap next to copying the
state before every item, and failures are rare once inputs are checked at the edge.

A failing commit (the state or a ticket cannot be stored) cannot name its item, so the
rows of that batch are run again one at a time with a commit after each
(``Guard.trace_until``); the row whose commit fails is set aside.  Failures of the store
itself (connection lost, leadership lost) are not the items' fault: they are retried.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import exc as sa_exc

from watcher.rules import Engine
from watcher.store import LostLeadership


class SetAside(Exception):
    """An item was set aside: reload the engine from the store and go on."""


class CommitFailed(Exception):
    """The commit of a batch ending at inbox row ``last`` failed for a reason of its content."""

    def __init__(self, last: int, cause: BaseException) -> None:
        super().__init__(reason(cause))
        self.last = last


def reason(exc: BaseException) -> str:
    """One line for the quarantine and the log: the exception's class and message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{exc.__class__.__name__}: {text}"[:1000]


def is_infrastructure(exc: BaseException) -> bool:
    """A failure of the store or of leadership, which retrying fixes, not setting items aside."""
    return isinstance(exc, LostLeadership | sa_exc.OperationalError | sa_exc.InterfaceError |
                      sa_exc.DisconnectionError | sa_exc.TimeoutError | OSError)


class Guard:
    """The worker's memory of what it set aside, and of how its batches went (for /ready)."""

    def __init__(self) -> None:
        self.skip: dict[int, str] = {}
        self.skip_timers: set[str] = set()
        self.trace_until = 0
        self.failing_since: float | None = None
        self.last_ok: float | None = None
        self.unbound: list[list[Any]] = []
        self._unbound_version = -1
        self._lock = threading.Lock()

    def loaded(self, engine: Engine, seqs: set[int], timers: set[str]) -> None:
        """After the engine was (re)built from the store: keep skipping what was set aside."""
        for seq in seqs:
            self.skip.setdefault(seq, "set aside before")
        self.skip_timers |= timers
        engine.skip_timers |= self.skip_timers
        self._unbound_version = -1
        self.publish(engine)

    def skip_timer(self, engine: Engine, ident: str) -> None:
        self.skip_timers.add(ident)
        if len(self.skip_timers) > 10_000:
            self.skip_timers.pop()
        engine.skip_timers.add(ident)

    def tracing(self, cursor: int) -> bool:
        return cursor < self.trace_until

    def forget_before(self, cursor: int) -> None:
        for seq in [s for s in self.skip if s <= cursor]:
            del self.skip[seq]

    def failed(self, now: float) -> None:
        if self.failing_since is None:
            self.failing_since = now

    def succeeded(self, now: float) -> None:
        self.failing_since = None
        self.last_ok = now

    def publish(self, engine: Engine) -> None:
        """Copy the engine's unbound list for readers on other threads (the HTTP handlers)."""
        if engine.unbound_log.version != self._unbound_version:
            rows = engine.unbound_log.rows()
            with self._lock:
                self.unbound = rows
                self._unbound_version = engine.unbound_log.version


__all__ = ["CommitFailed", "Guard", "SetAside", "is_infrastructure", "reason"]
