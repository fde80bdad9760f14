"""Supervision of ``watcher serve --workers N``: the parent process keeps N workers running.

A worker that dies (a crash, the OOM killer, a stray SIGKILL) is replaced after a short
backoff, with a log line that names its exit status; the others go on serving, so one bad
worker does not drop every connection.  Only deaths that keep coming (``limit`` within
``window`` seconds) stop the whole service, with exit status 1, for the supervisor of the
service (systemd) to restart or report: a worker that cannot live will not start to.

Nothing is lost when a worker dies: its accepted events are already committed, the engine's
leadership (a lock on the store) passes to another worker, and a notice it was sending is
retaken after the outbox's claim lease.

The folder of prometheus_client's multiprocess files belongs to the parent; one left by a
parent that was SIGKILLed is removed at the next start (see ``metrics_dir``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

log = logging.getLogger("watcher")

METRICS_PREFIX = "watcher-metrics-"
OWNER_FILE = "owner.pid"


def exit_reason(status: int) -> str:
    """A wait status as a person reads it: ``exit status 1`` or ``killed by signal 9 (SIGKILL)``."""
    if os.WIFSIGNALED(status):
        num = os.WTERMSIG(status)
        try:
            name = signal.Signals(num).name
        except ValueError:
            name = "unknown"
        return f"killed by signal {num} ({name})"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


class Supervisor:
    """Starts ``count`` workers with ``spawn(index) -> pid`` and keeps them running.

    ``run`` returns the service's exit status: 0 after SIGTERM or SIGINT (forwarded to the
    workers, which finish their requests), 1 after ``limit`` worker deaths within
    ``window`` seconds.  SIGHUP is forwarded (each worker reloads its configuration).
    The backoff before a replacement doubles with each recent death, from ``backoff`` up to
    ``backoff_max`` seconds.
    """

    def __init__(self, count: int, spawn: Callable[[int], int], *, limit: int = 5, window: float = 60.0,
                 backoff: float = 0.5, backoff_max: float = 10.0, poll: float = 0.1) -> None:
        self.count = count
        self.spawn = spawn
        self.limit = limit
        self.window = window
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.poll = poll
        self.children: dict[int, int] = {}  # pid -> worker index
        self.deaths: list[float] = []
        self._restart_at: dict[int, float] = {}  # worker index -> when to start its replacement
        self._stopping = False

    def forward(self, sig: int) -> None:
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if sig != signal.SIGHUP:
            self._stopping = True
        self.forward(sig)

    def run(self) -> int:
        for index in range(self.count):
            self._start(index)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        code = 0
        while self.children or (self._restart_at and not self._stopping):
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                pid, status = 0, 0
            if pid == 0:
                self._restart_due()
                time.sleep(self.poll)
                continue
            if pid not in self.children:
                continue
            index = self.children.pop(pid)
            _mark_dead(pid)
            if self._stopping:
                if status != 0 and not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM):
                    log.warning("worker %d (pid %d) ended while stopping: %s", index, pid, exit_reason(status))
                continue
            now = time.monotonic()
            self.deaths = [t for t in self.deaths if now - t < self.window] + [now]
            if len(self.deaths) >= self.limit:
                log.error("worker %d (pid %d) ended: %s; %d worker deaths within %gs, stopping the service",
                          index, pid, exit_reason(status), len(self.deaths), self.window)
                code = 1
                self._stopping = True
                self._restart_at.clear()
                self.forward(signal.SIGTERM)
                continue
            delay = min(self.backoff * 2 ** (len(self.deaths) - 1), self.backoff_max)
            log.error("worker %d (pid %d) ended: %s; a new one starts in %.1fs (the others keep serving)",
                      index, pid, exit_reason(status), delay)
            self._restart_at[index] = now + delay
        return code

    def _start(self, index: int) -> None:
        pid = self.spawn(index)
        self.children[pid] = index

    def _restart_due(self) -> None:
        if self._stopping:
            return
        now = time.monotonic()
        for index, at in list(self._restart_at.items()):
            if at <= now:
                del self._restart_at[index]
                self._start(index)
                log.info("worker %d started again", index)


def _mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges from the multiprocess files (its counters stay counted)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def metrics_dir(base: str | None = None) -> str:
    """A new folder for the workers' multiprocess metrics, marked with this process's pid;
    folders of earlier services whose parent is gone (SIGKILLed, so it could not clean up)
    are removed first.  Folders of a running service are left alone."""
    root = Path(base or tempfile.gettempdir())
    for old in root.glob(METRICS_PREFIX + "*"):
        try:
            owner = int((old / OWNER_FILE).read_text().strip())
        except (OSError, ValueError):
            continue  # not ours to judge: no owner recorded
        if not _alive(owner):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed the metrics folder %s of a service that ended without cleaning up", old)
    path = tempfile.mkdtemp(prefix=METRICS_PREFIX, dir=root)
    (Path(path) / OWNER_FILE).write_text(str(os.getpid()))
    return path
