"""The one place that wires everything together, and ``watcher serve``.

Start order: store (migrations) -> engine worker (state from the store) -> ingest writer
-> notify dispatcher -> HTTP and SNMP listeners.  Stop order is the reverse, so in-flight
requests finish, the engine commits what it took, and nothing owed is lost.
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
from typing import Any

from aiohttp import web

from watcher.api import health
from watcher.api.auth import IngestAuth
from watcher.api.http import read_auth, routes
from watcher.collectors.running import run_collectors
from watcher.config import Config, load_config
from watcher.ingest import submit_events
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.notify.outbox import Dispatcher
from watcher.pipeline import EngineWorker, Ingestor
from watcher.report.send import Scheduler
from watcher.runtime import RUNTIME, Runtime
from watcher.selfwatch import watching
from watcher.store import Store, keys

log = logging.getLogger("watcher")


def _auth(config: Config) -> dict[str, IngestAuth]:
    out = {}
    for name, a in config.service.auth.items():
        out[name] = IngestAuth(kind=a.kind, token=a.token or None,  # type: ignore[arg-type]
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


def build_app(config: Config, metrics: Metrics | None = None, primary: bool = True) -> web.Application:
    """The whole service as an aiohttp application; ``primary`` also runs the collectors and
    the SNMP receiver (one worker of several does)."""
    app = web.Application(client_max_size=config.service.max_body_bytes + 1024, middlewares=[read_auth])
    metrics = metrics or Metrics()

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store = await asyncio.to_thread(Store, config.service.db_url, config.service.sqlite_synchronous)
        secret = await asyncio.to_thread(_secret, config, store)
        dispatcher = Dispatcher(config, store, metrics, secret)
        worker = EngineWorker(config, store, metrics, dispatcher.wake, tick=config.service.engine_tick)
        ingestor = Ingestor(store, worker)
        await worker.start()
        await ingestor.start()
        if config.service.notify.enabled:
            await dispatcher.start()
        reports = Scheduler(config, store, dispatcher.wake) if primary and config.service.report.schedule else None
        if reports is not None:
            await reports.start()
        rt = Runtime(config, store, metrics, ingestor, worker, _auth(config), secret, time.time())
        sinks = await _start_sinks(config, rt, primary)

        def reload() -> None:
            # rules and inventory are reloaded; the service settings stay as started (with CLI overrides)
            new = replace(load_config(config.service.path), service=rt.config.service)
            worker.reload(new)
            rt.config = new
            dispatcher.config = new
            if reports is not None:
                reports.config = new
            if sinks is not None:
                sinks.config = new
            log.info("configuration reloaded: %d rules, %d clients", len(new.rules.rules),
                     len(new.inventory.clients))

        rt.reload = reload
        app[RUNTIME] = rt
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(watching(rt, lambda events: _store_events(rt, events)))
            rt.collectors = await stack.enter_async_context(
                run_collectors(config, lambda events: _store_events(rt, events), primary))
            yield
        # within STOP_DEADLINE in all: the listener is closed already, requests had their seconds
        await ingestor.stop(timeout=1.0)
        await worker.stop(timeout=2.5)
        await asyncio.to_thread(store.release_lead)  # another replica may lead from now on
        if reports is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(reports.stop(), 1.0)
        if sinks is not None:
            with contextlib.suppress(TimeoutError):  # a call cut off is retried from its queue
                await asyncio.wait_for(sinks.stop(), 1.0)
        await dispatcher.stop(timeout=1.0)
        store.close()

    app.cleanup_ctx.append(lifecycle)
    routes(app)
    health.routes(app)
    return app


async def _start_sinks(config: Config, rt: Runtime, primary: bool) -> Any:
    """The helpdesk ticket systems of watcher.yaml's ``sinks:`` (only the primary worker polls them)."""
    if config.service.sinks is None or not config.service.sinks.systems:
        return None
    from watcher.sinks.worker import SinkService

    sinks = SinkService(config, rt.store, rt.metrics, rt.ingestor.submit, poll=primary)
    await sinks.start()
    rt.sinks = sinks
    log.info("helpdesk ticket systems: %s", ", ".join(s.name for s in config.service.sinks.systems))
    return sinks


async def _store_events(rt: Runtime, events: list[Event]) -> None:
    """The sink of every built-in collector: the same way into the inbox as HTTP ingest."""
    await submit_events(rt.ingestor, events, metrics=rt.metrics, observe=rt.observe)


def serve(config: Config, listen: str | None = None, db: str | None = None, snmp_listen: str | None = None,
          workers: int | None = None, demo: bool = False) -> int:
    service = config.service
    if listen:
        service = replace(service, listen=listen)
    if db:
        service = replace(service, db_url=db)
    if snmp_listen:
        service = replace(service, snmp=replace(service.snmp, listen=None if snmp_listen == "off" else snmp_listen))
    if workers:
        service = replace(service, workers=workers)
    config = replace(config, service=service)
    if config.service.workers > 1:
        return _serve_workers(config)
    return _run(_serve(config, demo=demo))


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


def _serve_workers(config: Config) -> int:
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
                code = _run(_serve(config, sock=sock, primary=index == 0, announce=False))
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
                 announce: bool = True, demo: bool = False) -> int:
    app = build_app(config, primary=primary)
    # keepalive_timeout bounds how long a connection may stay idle or take to send a request's
    # headers (aiohttp does not reset it per byte, so a trickle is cut too); bodies have
    # body_timeout (watcher.api.common.read_body): half-open connections do not pile up
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0, access_log=None,
                           keepalive_timeout=config.service.header_timeout)
    await runner.setup()
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

    def on_hup() -> None:
        rt = app[RUNTIME]
        try:
            rt.reload()
        except Exception as exc:
            log.error("reload rejected, the old configuration stays in force: %s", exc)

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGHUP, on_hup)
    async with contextlib.AsyncExitStack() as extras:
        if demo:
            from watcher.demo import running

            await extras.enter_async_context(running(app[RUNTIME]))
        await stop.wait()
    log.info("stopping")
    _watchdog(STOP_DEADLINE)
    await runner.cleanup()
    if announce:
        print("watcher stopped", file=sys.stderr, flush=True)
    return 0
