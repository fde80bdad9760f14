"""A shared periodic runner for the built-in collectors (probes, disk, pollers).

Each collector registers one or more jobs (an ``async def`` with no arguments) with an
interval.  The scheduler runs every job on its own task, so a slow job never delays
another, but all jobs share one semaphore, so a site with two thousand probes does not
open two thousand sockets at once.  Jobs start at a random offset (jitter) so that a
restart does not fire everything in the same second, and then keep a fixed rate
(start to start), which keeps that spread.

A job that raises or overruns its timeout is an *error of the collector* (a broken
share path, a sink that refuses events), not a monitoring signal: it is counted in the
job's :class:`CollectorHealth`, retried with exponential backoff, and logged once when
the job starts failing and once when it recovers, as Home Assistant's update
coordinator does, so a source that stays down does not flood the log.  A probe whose
target is unreachable is a *successful* job that emitted a ``ProbeFailed`` event; the job
returns what it found failing, and its health shows it (``failing``, ``up`` false), because
an operator asking "are my probes fine?" means the targets, not the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from types import TracebackType
from typing import Any

from watcher.collectors.base import EventSink
from watcher.model import format_time, utcnow

__all__ = ["CollectorHealth", "EventSink", "Job", "Scheduler"]

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[str | None]]
"""A collector's run; it may return what it found failing (a probe's target that does not
answer): the run worked, but its health says ``failing``."""


@dataclass(slots=True)
class CollectorHealth:
    """What /metrics and the API show about one job; a copy, safe to keep."""

    name: str
    interval: float
    timeout: float
    runs: int = 0
    errors: int = 0
    consecutive_errors: int = 0
    last_run: datetime | None = None
    last_duration: float | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    next_delay: float | None = None
    failing: str | None = None

    @property
    def up(self) -> bool:
        """False from the first failed run until the next successful one, and while the last
        run found what it watches failing."""
        return self.consecutive_errors == 0 and self.failing is None

    @property
    def status(self) -> str:
        """``ok``, ``failing`` (the job works, what it watches does not) or ``error``."""
        if self.consecutive_errors:
            return "error"
        return "failing" if self.failing is not None else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "up": self.up,
            "status": self.status,
            "failing": self.failing,
            "interval": self.interval,
            "timeout": self.timeout,
            "runs": self.runs,
            "errors": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "last_run": format_time(self.last_run),
            "last_duration": self.last_duration,
            "last_success": format_time(self.last_success),
            "last_error": self.last_error,
            "next_delay": self.next_delay,
        }


@dataclass(slots=True)
class _Entry:
    job: Job
    health: CollectorHealth
    jitter: float
    task: asyncio.Task[None] | None = None


class Scheduler:
    """Runs registered jobs periodically until stopped; use as ``async with Scheduler() as s``.

    ``max_concurrency`` bounds how many jobs run at the same moment (waiting for a slot
    does not count against a job's timeout).  ``max_jitter`` caps the random delay
    before a job's first run (the delay is uniform in ``[0, min(interval, max_jitter)]``).
    After ``n`` consecutive errors a job waits ``interval * backoff_factor ** n``, but no
    longer than ``max(interval, max_backoff)``.  ``rng`` and ``clock`` are for tests.
    """

    def __init__(
        self,
        *,
        max_concurrency: int = 32,
        max_jitter: float = 30.0,
        backoff_factor: float = 2.0,
        max_backoff: float = 600.0,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.max_concurrency = max_concurrency
        self.max_jitter = max_jitter
        self.backoff_factor = backoff_factor
        self.max_backoff = max_backoff
        self._rng = rng or random.Random()
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._sem: asyncio.Semaphore | None = None
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def add(self, name: str, job: Job, *, interval: float, timeout: float | None = None,
            jitter: float | None = None) -> None:
        """Register ``job`` under a unique ``name``; it starts at once if the scheduler runs.

        ``timeout`` defaults to the interval; ``jitter`` overrides the scheduler's cap on
        the first-run delay for this job (0 runs it immediately).
        """
        if name in self._entries:
            raise ValueError(f"a job named {name!r} is already scheduled")
        if interval <= 0:
            raise ValueError(f"{name}: interval must be positive, got {interval}")
        limit = self.max_jitter if jitter is None else jitter
        entry = _Entry(job, CollectorHealth(name, interval, timeout or interval),
                       max(0.0, min(interval, limit)))
        self._entries[name] = entry
        if self._running:
            entry.task = self._spawn(name, entry)

    async def remove(self, name: str) -> None:
        """Stop and forget one job (for an inventory reload that dropped its target)."""
        entry = self._entries.pop(name, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)

    def names(self) -> list[str]:
        return list(self._entries)

    def health(self) -> dict[str, CollectorHealth]:
        """A snapshot of every job's health, keyed by job name."""
        return {name: replace(e.health) for name, e in self._entries.items()}

    async def start(self) -> None:
        if self._running:
            return
        self._sem = asyncio.Semaphore(self.max_concurrency)
        self._running = True
        for name, entry in self._entries.items():
            entry.task = self._spawn(name, entry)

    async def stop(self) -> None:
        """Cancel every job (a run in progress is cancelled too) and wait until all have ended."""
        self._running = False
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        for entry in self._entries.values():
            entry.task = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Scheduler:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    def _spawn(self, name: str, entry: _Entry) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(self._loop(entry), name=f"collector:{name}")

    async def _loop(self, entry: _Entry) -> None:
        loop = asyncio.get_running_loop()
        health = entry.health
        await asyncio.sleep(self._rng.uniform(0.0, entry.jitter) if entry.jitter else 0.0)
        while True:
            assert self._sem is not None
            async with self._sem:
                wall = self._clock()
                started = loop.time()
                error: str | None = None
                failing: str | None = None
                deadline = asyncio.timeout(health.timeout)
                try:
                    async with deadline:
                        failing = await entry.job()
                except TimeoutError as exc:
                    error = (f"timed out after {health.timeout:g} s" if deadline.expired()
                             else _describe(exc))
                except Exception as exc:
                    error = _describe(exc)
                duration = loop.time() - started
            self._record(health, wall, duration, error, failing)
            await asyncio.sleep(max(0.0, started + (health.next_delay or 0.0) - loop.time()))

    def _record(self, health: CollectorHealth, wall: datetime, duration: float, error: str | None,
                failing: str | None = None) -> None:
        health.runs += 1
        if error is None:
            health.failing = failing if isinstance(failing, str) else None
        health.last_run = wall
        health.last_duration = duration
        if error is None:
            if health.consecutive_errors:
                log.info("collector %s recovered after %d failed run(s)", health.name,
                         health.consecutive_errors)
            health.consecutive_errors = 0
            health.last_success = wall
            health.next_delay = health.interval
            return
        health.errors += 1
        health.consecutive_errors += 1
        health.last_error = error
        ceiling = max(health.interval, self.max_backoff)
        health.next_delay = min(health.interval * self.backoff_factor ** min(health.consecutive_errors, 64),
                                ceiling)
        if health.consecutive_errors == 1:
            log.warning("collector %s failing: %s (retrying with backoff, logged again on recovery)",
                        health.name, error)
        else:
            log.debug("collector %s still failing (%d): %s", health.name, health.consecutive_errors, error)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
