"""``watcher serve --workers N`` when a worker dies: the parent replaces it (with a backoff and
a log line naming the exit status) while the others keep serving; only deaths that keep
coming stop the service.  Real processes and real signals; nothing is mocked."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import site_down, write_config
from watcher.workers import OWNER_FILE, Supervisor, exit_reason, metrics_dir


@contextlib.contextmanager
def two_workers(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[WatcherProcess]:
    """``watcher serve --workers 2`` on SQLite or a fresh PostgreSQL database, started and
    stopped around the block."""
    db = f"sqlite:///{tmp_path / 'w.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    with SmtpServer() as smtp, HttpReceiver() as http:
        w = WatcherProcess(write_config(tmp_path, smtp, http, db), free_port(), tmp_path / "watcher.log",
                           extra=["--workers", "2"])
        w.start()
        try:
            yield w
        finally:
            code = w.stop()
        assert code == 0, w.log.read_text()


def children(pid: int) -> set[int]:
    """The live worker processes of a ``watcher serve`` parent (Linux /proc)."""
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        out |= {int(p) for p in (task / "children").read_text().split()}
    return out


def stats(w: WatcherProcess) -> dict[str, Any]:
    status, body = w.request("GET", "/api/v1/stats")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


def leader_pid(w: WatcherProcess) -> int:
    process = w.wait_until(lambda: stats(w)["engine"]["leader_process"], what="the engine's leader to publish")
    return int(str(process).rsplit(":", 1)[1])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_sigkilled_worker_is_replaced_while_the_other_keeps_serving(backend: str, tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    with two_workers(backend, tmp_path, request) as w:
        assert w.proc is not None
        parent = w.proc.pid
        workers = w.wait_until(lambda: len(children(parent)) == 2 and children(parent), what="two workers")
        victim = leader_pid(w)  # the worker running the engine: the harder case
        assert victim in workers
        survivor = (workers - {victim}).pop()
        os.kill(victim, signal.SIGKILL)

        start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
        answers = [w.request("POST", "/api/v1/events", site_down(start))[0]]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # while the parent waits out the backoff
            answers.append(w.request("GET", "/healthz")[0])
        assert set(answers) == {200}, answers

        now = w.wait_until(lambda: len(children(parent)) == 2 and children(parent), timeout=30,
                           what="a replacement worker")
        assert survivor in now and victim not in now
        assert w.proc.poll() is None, "the service keeps running"
        log = w.log.read_text()
        assert f"(pid {victim}) ended: killed by signal 9 (SIGKILL); a new one starts in" in log, log
        assert "worker" in log and "started again" in log

        # the engine went on in the survivor (or the replacement): the ticket opens
        tickets = w.wait_until(lambda: w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"],
                               what="a ticket opened after the leader's death")
        assert len(tickets) == 1
        assert leader_pid(w) != victim
        # and the replacement answers requests
        replacement = (now - {survivor}).pop()
        w.wait_until(lambda: stats(w)["process"]["pid"] == replacement, what="an answer from the replacement")


def _short_lived(code: int, after: float) -> int:
    """A real child process that exits with ``code`` after ``after`` seconds (or on SIGTERM)."""
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        time.sleep(after)
        os._exit(code)
    return pid


@pytest.fixture
def own_signals() -> Iterator[None]:
    """The supervisor installs its signal handlers in this (the test's) process: put them back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.mark.usefixtures("own_signals")
def test_repeated_deaths_stop_the_service(caplog: pytest.LogCaptureFixture) -> None:
    """Workers that die again and again (here: real forked processes that exit 3 at once)."""
    started: list[int] = []

    def spawn(_index: int) -> int:
        started.append(_short_lived(3, 0.05))
        return started[-1]

    caplog.set_level(logging.INFO, "watcher")
    began = time.monotonic()
    code = Supervisor(2, spawn, limit=5, window=60, backoff=0.05, backoff_max=0.2, poll=0.01).run()
    assert code == 1
    assert time.monotonic() - began < 20
    assert len(started) in (5, 6)  # two, then three or four replacements (two may be due at once)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 5, errors  # the fifth death stops it
    assert all("exit status 3" in e for e in errors), errors
    assert "5 worker deaths within 60s, stopping the service" in errors[-1]


@pytest.mark.usefixtures("own_signals")
def test_deaths_spread_out_do_not_stop_the_service() -> None:
    """Deaths farther apart than the window are replaced without end; SIGTERM then stops it."""
    spawned: list[int] = []

    def spawn(index: int) -> int:
        # worker 0 dies after 0.1 s each time; worker 1 lives until the test stops it
        spawned.append(_short_lived(1, 0.1) if index == 0 else _short_lived(0, 60))
        if len(spawned) == 6:
            os.kill(os.getpid(), signal.SIGTERM)  # stop the service after five deaths of worker 0
        return spawned[-1]

    code = Supervisor(2, spawn, limit=3, window=0.05, backoff=0.01, poll=0.01).run()
    assert code == 0
    assert len(spawned) == 6


def test_exit_reasons_read_like_the_shell() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    proc.kill()
    _, status = os.waitpid(proc.pid, 0)
    assert exit_reason(status) == "killed by signal 9 (SIGKILL)"
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    _, status = os.waitpid(proc.pid, 0)
    assert exit_reason(status) == "exit status 7"


def test_metrics_folders_of_dead_services_are_removed_at_start(tmp_path: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    stale = tmp_path / "watcher-metrics-stale"
    stale.mkdir()
    (stale / OWNER_FILE).write_text(str(gone.pid))
    (stale / "counter_123.db").write_bytes(b"\0" * 16)
    running = tmp_path / "watcher-metrics-running"
    running.mkdir()
    (running / OWNER_FILE).write_text(str(os.getpid()))
    unknown = tmp_path / "watcher-metrics-unknown"
    unknown.mkdir()

    new = Path(metrics_dir(str(tmp_path)))
    assert not stale.exists()
    assert running.exists() and unknown.exists()
    assert new.exists() and (new / OWNER_FILE).read_text() == str(os.getpid())
