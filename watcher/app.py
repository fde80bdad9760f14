"""The one place that wires everything together, and ``watcher serve``.

Start order (``build_app``, one part each in aiohttp's ``cleanup_ctx``): store (migrations)
-> link key -> notify dispatcher -> engine worker (state from the store) -> ingest writer ->
the handlers' ``Runtime`` -> report scheduler -> helpdesk sinks -> self-watch -> collectors
and the SNMP receiver; the HTTP listener opens last.  Stop order is the reverse, also when a
part fails to start: in-flight requests finish, collectors stop feeding the inbox, the
engine commits what it took and gives up its lead, and nothing owed is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiohttp import web

from watcher.api import health
from watcher.api.auth import IngestAuth
from watcher.api.http import read_auth, routes
from watcher.collectors.running import run_collectors
from watcher.config import Config, load_config
from watcher.config.collectors import SnmpConfig
from watcher.ingest import submit_events
from watcher.live import Live
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.notify.outbox import Dispatcher
from watcher.pipeline import EngineWorker, Ingestor
from watcher.report.send import Scheduler, prepare_mail
from watcher.runtime import RUNTIME, Runtime
from watcher.selfwatch import watching
from watcher.store import Store, keys
from watcher.tasks import cancel_and_wait

if TYPE_CHECKING:
    from watcher.sinks.worker import SinkService

log = logging.getLogger("watcher")


def _auth(config: Config) -> dict[str, IngestAuth]:
    out = {}
    for name, a in config.service.auth.items():
        out[name] = IngestAuth(kind=a.kind, token=a.token or None,
                               username=a.username or None, password=a.password or None,
                               secret=a.secret or None, max_skew=int(a.max_skew))
    return out


def _secret(config: Config, store: Store) -> bytes:
    """The key that signs links: the configured ``secret_key``, else a random key that the
    first start made and keeps in the store (every restart and replica reads the same one).
    Never anything derived from configuration, which others may read or guess."""
    if config.service.secret_key:
        return config.service.secret_key.encode()
    return keys.link_key(store, time.time())


def build_app(config: Config, metrics: Metrics | None = None, primary: bool = True,
              snmp_listen: str | None = None) -> web.Application:
    """The whole service as an aiohttp application; ``primary`` also runs the collectors and
    the SNMP receiver (one worker of several does).  ``snmp_listen`` is the command line's
    ``--snmp-listen`` (already in ``config``), which a reload keeps over watcher.yaml's.

    Every running part is a small async generator in ``app.cleanup_ctx``, in start order:
    aiohttp starts them one after the other and, on stop or when one fails to start, stops
    the ones that started in reverse order.
    """
    app = web.Application(client_max_size=config.service.max_body_bytes + 1024, middlewares=[read_auth])
    parts = _Parts(config, metrics or Metrics(), primary, snmp_listen)
    app.cleanup_ctx.extend([parts.store_part, parts.secret_part, parts.dispatcher_part, parts.worker_part,
                            parts.ingestor_part, parts.runtime_part, parts.reports_part, parts.sinks_part,
                            parts.selfwatch_part, parts.collectors_part])
    routes(app)
    health.routes(app)
    return app


class _Parts:
    """The parts of one service and what they hand each other while they start.

    Each ``*_part`` starts one thing, yields while the service runs, and stops it: the
    attributes a part sets are there for the parts after it.  Stop deadlines add up to less
    than STOP_DEADLINE with the HTTP runner's own shutdown: the listener is closed already,
    requests had their seconds.  Every part reads the configuration from ``live``, the one
    reference ``reload`` swaps.
    """

    def __init__(self, config: Config, metrics: Metrics, primary: bool, snmp_listen: str | None = None) -> None:
        self.live = Live(config)
        self.metrics = metrics
        self.primary = primary
        self.snmp_listen = snmp_listen
        self.store: Store
        self.secret: bytes
        self.dispatcher: Dispatcher
        self.worker: EngineWorker
        self.ingestor: Ingestor
        self.rt: Runtime
        self.reports: Scheduler | None = None
        self.sinks: SinkService | None = None
        self._collectors: contextlib.AsyncExitStack | None = None
        self._reloading = asyncio.Lock()  # one reload at a time, and none while the collectors stop
        self._stopping = False

    @property
    def config(self) -> Config:
        return self.live.config

    async def store_part(self, app: web.Application) -> AsyncIterator[None]:
        self.store = await asyncio.to_thread(Store, self.config.service.db_url, self.config.service.sqlite_synchronous)
        yield
        self.store.close()

    async def secret_part(self, app: web.Application) -> AsyncIterator[None]:
        self.secret = await asyncio.to_thread(_secret, self.config, self.store)
        yield

    async def dispatcher_part(self, app: web.Application) -> AsyncIterator[None]:
        self.dispatcher = Dispatcher(self.live, self.store, self.metrics, self.secret, report_mail=prepare_mail)
        if self.config.service.notify.enabled:
            await self.dispatcher.start()
        yield
        await self.dispatcher.stop(timeout=1.0)

    async def worker_part(self, app: web.Application) -> AsyncIterator[None]:
        self.worker = EngineWorker(self.live, self.store, self.metrics, self.dispatcher.wake,
                                   tick=self.config.service.engine_tick)
        await self.worker.start()
        yield
        await self.worker.stop(timeout=2.5)
        await asyncio.to_thread(self.store.release_lead)  # another replica may lead from now on

    async def ingestor_part(self, app: web.Application) -> AsyncIterator[None]:
        self.ingestor = Ingestor(self.store, self.worker)
        await self.ingestor.start()
        yield
        await self.ingestor.stop(timeout=1.0)

    async def runtime_part(self, app: web.Application) -> AsyncIterator[None]:
        """What the handlers read (``app[RUNTIME]``): nothing to stop."""
        self.rt = Runtime(self.live, self.store, self.metrics, self.ingestor, self.worker, _auth(self.config),
                          self.secret, time.time(), self.reload)
        app[RUNTIME] = self.rt
        yield

    async def reports_part(self, app: web.Application) -> AsyncIterator[None]:
        if self.primary and self.config.service.report.schedule:
            self.reports = Scheduler(self.live, self.store, self.dispatcher.wake)
            await self.reports.start()
        yield
        if self.reports is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.reports.stop(), 1.0)

    async def sinks_part(self, app: web.Application) -> AsyncIterator[None]:
        """The helpdesk ticket systems of watcher.yaml's ``sinks:`` (only the primary worker polls them)."""
        systems = self.config.service.sinks
        if systems is not None and systems.systems:
            from watcher.sinks.worker import SinkService

            self.sinks = SinkService(self.live, self.store, self.metrics, self.ingestor.submit, poll=self.primary)
            await self.sinks.start()
            self.rt.sinks = self.sinks
            log.info("helpdesk ticket systems: %s", ", ".join(s.name for s in systems.systems))
        yield
        if self.sinks is not None:
            with contextlib.suppress(TimeoutError):  # a call cut off is retried from its queue
                await asyncio.wait_for(self.sinks.stop(), 1.0)

    async def selfwatch_part(self, app: web.Application) -> AsyncIterator[None]:
        rt = self.rt
        async with watching(rt, lambda events: _store_events(rt, events)):
            yield

    async def collectors_part(self, app: web.Application) -> AsyncIterator[None]:
        """The collectors and the SNMP receiver, on the inventory in force (a reload restarts them)."""
        await self._start_collectors(self.config)
        yield
        async with self._reloading:
            self._stopping = True
            await self._stop_collectors()

    async def _start_collectors(self, config: Config, required: frozenset[str] = frozenset()) -> None:
        rt = self.rt
        stack = contextlib.AsyncExitStack()
        rt.collectors = await stack.enter_async_context(
            run_collectors(config, lambda events: _store_events(rt, events), self.primary, required))
        self._collectors = stack

    async def _stop_collectors(self) -> None:
        stack, self._collectors = self._collectors, None
        self.rt.collectors = None
        if stack is not None:
            await stack.aclose()

    async def reload(self) -> Config:
        """Read the rules, the inventory and the rest of the files again, off the event loop;
        only when all of it is valid, restart the collectors on it and swap it in.

        The service settings stay as started (with the command line's overrides), except
        ``feeds:``, which the self-watch follows, and what the collectors run on (``collectors:``,
        ``mail:``, ``snmp:``).  An invalid file raises its error (file, line, key) and changes
        nothing.  The collectors restart only when one of their inputs changed (a restart forgets
        which probes were failing and since when); collectors that cannot start on the new
        configuration are started again on the old one, which stays in force.  A trap listener
        that ran before, or whose section changed, must start again: a new address that cannot
        be bound fails the reload rather than leaving the service without traps.
        """
        async with self._reloading:
            if self._stopping:
                raise RuntimeError("the service is stopping")
            old = self.live.config
            new = await asyncio.to_thread(_read_again, old, self.snmp_listen)
            if _collector_inputs(new) != _collector_inputs(old):
                running = self.rt.collectors
                required = frozenset(running.started if running is not None else ())
                if new.service.snmp != old.service.snmp:
                    required |= {"snmp_traps"}
                await self._stop_collectors()
                try:
                    await self._start_collectors(new, required)
                except Exception:
                    log.exception("the collectors cannot start on the new configuration; restarting them on the old")
                    await self._start_collectors(old)
                    raise
            self.live.config = new  # the one swap: the worker, notifier, reports, sinks and API read it
            self.worker.wake()  # the engine takes the new rules and inventory with its next batch
        log.info("configuration reloaded: %d rules, %d clients", len(new.rules.rules), len(new.inventory.clients))
        return new


def _read_again(old: Config, snmp_listen: str | None = None) -> Config:
    """The configuration files as they are now, with the service settings ``old`` started with
    (listen address, database, workers, auth, secret key: what only a restart can change), but
    for the expected feeds (``feeds:``), which the self-watch reads from the configuration in
    force at each round, and the collectors' sections (``collectors:``, ``mail:``, ``snmp:``),
    which a restart of the collectors applies.  ``snmp_listen`` (``--snmp-listen``) stays over
    the file's ``snmp: listen``."""
    new = load_config(old.service.path)
    return replace(new, service=replace(old.service, feeds=new.service.feeds, collectors=new.service.collectors,
                                        mail=new.service.mail, snmp=_snmp_listen(new.service.snmp, snmp_listen)))


def _snmp_listen(snmp: SnmpConfig, flag: str | None) -> SnmpConfig:
    """``--snmp-listen`` over watcher.yaml's ``snmp: listen`` (``off``: no trap receiver)."""
    return replace(snmp, listen=None if flag == "off" else flag) if flag else snmp


def _collector_inputs(config: Config) -> tuple[object, ...]:
    """Everything ``run_collectors`` builds the collectors from: a reload restarts them only
    when this changed (new rules or feeds alone do not)."""
    s = config.service
    return (config.inventory, s.collectors, s.mail, s.snmp)


async def _store_events(rt: Runtime, events: list[Event]) -> None:
    """The sink of every built-in collector: the same way into the inbox as HTTP ingest."""
    await submit_events(rt.ingestor, events, metrics=rt.metrics, observe=rt.observe)


async def _reload_logged(rt: Runtime) -> None:
    """SIGHUP: reload, and say in the log what came of it (no one else is there to answer)."""
    try:
        await rt.reload()
    except Exception as exc:
        log.error("reload rejected, the old configuration stays in force: %s", exc)


def serve(config: Config, listen: str | None = None, db: str | None = None, snmp_listen: str | None = None,
          workers: int | None = None, demo: bool = False) -> int:
    service = config.service
    if listen:
        service = replace(service, listen=listen)
    if db:
        service = replace(service, db_url=db)
    service = replace(service, snmp=_snmp_listen(service.snmp, snmp_listen))
    if workers:
        service = replace(service, workers=workers)
    config = replace(config, service=service)
    if config.service.workers > 1:
        return _serve_workers(config, snmp_listen)
    return _run(_serve(config, demo=demo, snmp_listen=snmp_listen))


def _run(main: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; the stdlib loop also works
        return asyncio.run(main)
    return uvloop.run(main)


def _listen_socket(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = (host or "127.0.0.1").strip("[]")
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, int(port)))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _serve_workers(config: Config, snmp_listen: str | None = None) -> int:
    """Several worker processes on one listening socket (the kernel spreads connections).

    Every worker takes requests and group-commits its own batches; one at a time runs the
    engine (the store's leadership lock) and the notifier claims rows with locks, so the
    outcome is the same as with one process.  Only worker 0 (or its replacement) runs the
    collectors and the SNMP receiver.  The parent replaces a worker that dies and stops the
    service only when deaths keep coming (watcher.workers.Supervisor).
    """
    from watcher.workers import Supervisor

    Store(config.service.db_url).close()  # migrate once, before the workers start
    sock = _listen_socket(config.service.listen)

    def spawn(index: int) -> int:
        pid = os.fork()
        if pid == 0:  # the worker: nothing of the parent's runs here but the config and the socket
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            _stop_with_parent()
            code = 1
            try:
                code = _run(_serve(config, sock=sock, primary=index == 0, announce=False, snmp_listen=snmp_listen))
            except BaseException:
                log.exception("worker %d failed", index)
            finally:
                os._exit(code)
        return pid

    supervisor = Supervisor(config.service.workers, spawn)
    host, port = sock.getsockname()[:2]
    log.info("%d worker processes", config.service.workers)
    print(f"watcher listening on http://{host}:{port}/", flush=True)
    try:
        return supervisor.run()
    finally:
        sock.close()


STOP_DEADLINE = 9.0  # SIGTERM to exit, in seconds, whatever state the service is in


def _watchdog(seconds: float) -> None:
    """End the process ``seconds`` from now if the orderly stop has not: a thread stuck in the
    store or a send must not keep the port and the engine's lock (the kernel and PostgreSQL
    release both when the process is gone; every write is a transaction, so none is half done)."""
    def fire() -> None:
        log.error("not stopped within %g s of the signal: exiting now", seconds)
        for h in logging.getLogger().handlers:
            with contextlib.suppress(Exception):
                h.flush()
        os._exit(0)

    timer = threading.Timer(seconds, fire)
    timer.daemon = True
    timer.start()


def _stop_with_parent() -> None:
    """Ask Linux to send this worker SIGTERM when the parent dies (even by SIGKILL), so that
    no orphan keeps serving the port or holding the engine's lock."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the supervisor has to stop the workers
        pass


async def _serve(config: Config, sock: socket.socket | None = None, primary: bool = True,
                 announce: bool = True, demo: bool = False, snmp_listen: str | None = None) -> int:
    app = build_app(config, primary=primary, snmp_listen=snmp_listen)
    # keepalive_timeout bounds how long a connection may stay idle or take to send a request's
    # headers (aiohttp does not reset it per byte, so a trickle is cut too); bodies have
    # body_timeout (watcher.api.common.read_body): half-open connections do not pile up
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None,
                           keepalive_timeout=config.service.header_timeout)
    try:
        await runner.setup()
    except BaseException:  # a part that failed to start: stop the ones that started, in reverse
        await runner.cleanup()
        raise
    if sock is None:
        host, _, port = config.service.listen.rpartition(":")
        site: web.BaseSite = web.TCPSite(runner, host or "127.0.0.1", int(port))
    else:
        site = web.SockSite(runner, sock)
    try:
        await site.start()
    except OSError:  # a busy port: stop what setup started; the command line says it in one line
        await runner.cleanup()
        raise
    if announce:
        addr = runner.addresses[0]
        print(f"watcher listening on http://{addr[0]}:{addr[1]}/", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    reloads: set[asyncio.Task[None]] = set()

    def on_hup() -> None:
        task = asyncio.create_task(_reload_logged(app[RUNTIME]), name="reload")
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    async with contextlib.AsyncExitStack() as extras:
        if demo:
            from watcher.demo import running

            await extras.enter_async_context(running(app[RUNTIME]))
        await stop.wait()
    log.info("stopping")
    _watchdog(STOP_DEADLINE)
    for task in list(reloads):
        await cancel_and_wait(task, timeout=0.5)
    await runner.cleanup()
    if announce:
        print("watcher stopped", file=sys.stderr, flush=True)
    return 0
