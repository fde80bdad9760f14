"""The one place that wires everything together, and ``watcher serve``.

Start order: store (migrations) -> engine worker (state from the store) -> ingest writer
-> notify dispatcher -> HTTP and SNMP listeners.  Stop order is the reverse, so in-flight
requests finish, the engine commits what it took, and nothing owed is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from watcher.api.auth import IngestAuth
from watcher.api.http import RUNTIME, Runtime, read_auth, routes, source_label
from watcher.config import Config, load_config
from watcher.metrics import Metrics
from watcher.notify.outbox import Dispatcher
from watcher.pipeline import EngineWorker, Ingestor
from watcher.store import InboxRow, Store

log = logging.getLogger("watcher")


def _auth(config: Config) -> dict[str, IngestAuth]:
    out = {}
    for name, a in config.service.auth.items():
        out[name] = IngestAuth(kind=a.kind, token=a.token or None,  # type: ignore[arg-type]
                               username=a.username or None, password=a.password or None,
                               secret=a.secret or None, max_skew=int(a.max_skew))
    return out


def _secret(config: Config) -> bytes:
    """The key that signs links: configured, else derived from the config path (stable across restarts)."""
    if config.service.secret_key:
        return config.service.secret_key.encode()
    log.warning("no secret_key in watcher.yaml: signed links use a key derived from the database URL; "
                "set secret_key for production")
    return hashlib.sha256(b"watcher-link|" + config.service.db_url.encode()).digest()


def build_app(config: Config, metrics: Metrics | None = None) -> web.Application:
    app = web.Application(client_max_size=config.service.max_body_bytes + 1024, middlewares=[read_auth])
    metrics = metrics or Metrics()
    holder: dict[str, Any] = {}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        store = await asyncio.to_thread(Store, config.service.db_url)
        secret = _secret(config)
        dispatcher = Dispatcher(config, store, metrics, secret)
        worker = EngineWorker(config, store, metrics, dispatcher.wake, tick=config.service.engine_tick)
        ingestor = Ingestor(store, worker.wake)
        await worker.start()
        await ingestor.start()
        if config.service.notify.enabled:
            await dispatcher.start()
        rt = Runtime(config, store, metrics, ingestor, worker, _auth(config), secret, time.time())

        def reload() -> None:
            # rules and inventory are reloaded; the service settings stay as started (with CLI overrides)
            new = replace(load_config(config.service.path), service=rt.config.service)
            worker.reload(new)
            rt.config = new
            dispatcher.config = new
            log.info("configuration reloaded: %d rules, %d clients", len(new.rules.rules),
                     len(new.inventory.clients))

        rt.reload = reload
        app[RUNTIME] = rt
        holder["rt"] = rt
        snmp = await _start_snmp(config, rt)
        async with contextlib.AsyncExitStack() as stack:
            await _start_collectors(config, rt, stack)
            try:
                yield
            finally:
                if snmp is not None:
                    await snmp.stop()
        await ingestor.stop()
        await worker.stop()
        await dispatcher.stop()
        store.close()

    app.cleanup_ctx.append(lifecycle)
    routes(app)
    return app


async def _store_events(rt: Runtime, events: list[Any]) -> None:
    """The sink of every built-in collector: the same durable inbox as HTTP ingest."""
    if not events:
        return
    rows = [InboxRow("event", ev.source, ev.occurrence_key, time.time(), orjson.dumps(ev.to_dict()).decode())
            for ev in events]
    seqs = await rt.ingestor.submit(rows)
    for ev, seq in zip(events, seqs, strict=True):
        (rt.metrics.events_received if seq is not None else rt.metrics.events_duplicate).labels(
            source_label(ev.source)).inc()


async def _start_collectors(config: Config, rt: Runtime, stack: contextlib.AsyncExitStack) -> None:
    cc = config.service.collectors
    if not (cc.probes or cc.disk or cc.snmp_devices or config.service.mail):
        return
    from watcher.collectors.schedule import Scheduler

    async def sink(events: list[Any]) -> None:
        await _store_events(rt, events)

    scheduler = await stack.enter_async_context(Scheduler(max_concurrency=cc.max_concurrency))
    rt.scheduler = scheduler
    if cc.probes:
        from watcher.collectors.probes import ProbeCollector

        probes = await stack.enter_async_context(ProbeCollector(config.inventory, sink))
        probes.register(scheduler)
        log.info("site probes: %d targets", len(probes.targets()))
    if cc.disk:
        from watcher.collectors.disk import DiskCollector

        disk = stack.enter_context(DiskCollector(config.inventory, sink))
        disk.register(scheduler, interval=cc.disk_interval)
        log.info("share disk usage: %d shares", len(disk.share_ids()))
    if cc.snmp_devices:
        from watcher.collectors.snmppoll import SnmpPoller

        poller = await stack.enter_async_context(SnmpPoller(list(cc.snmp_devices), sink))
        poller.register(scheduler, interval=cc.snmp_interval)
        log.info("SNMP polling: %d devices", len(cc.snmp_devices))
    if config.service.mail is not None:
        from watcher.collectors.mailbox import MailboxCollector

        mail = MailboxCollector(config.service.mail, config.inventory)
        mail.register(scheduler, sink)
        log.info("mail checks: %d mailboxes, %d servers, %d bounce mailboxes", len(config.service.mail.mailboxes),
                 len(config.service.mail.smtp), len(config.service.mail.bounces))


async def _start_snmp(config: Config, rt: Runtime) -> Any:
    listen = config.service.snmp.listen
    if not listen:
        return None
    try:
        from watcher.collectors.snmptrap import SnmpTrapConfig, SnmpTrapReceiver, SnmpV3User
    except ImportError as exc:  # pragma: no cover - pysnmp is a dependency
        log.error("SNMP trap receiver unavailable: %s", exc)
        return None
    host, _, port = listen.rpartition(":")
    users = [SnmpV3User(**u) for u in config.service.snmp.v3_users]  # type: ignore[arg-type]
    cfg = SnmpTrapConfig(host=host or "127.0.0.1", port=int(port), communities=list(config.service.snmp.communities),
                         v3_users=users)

    async def sink(events: list[Any]) -> None:
        await _store_events(rt, events)

    receiver = SnmpTrapReceiver(cfg, sink)
    try:
        await receiver.start()
    except OSError as exc:
        log.error("SNMP trap receiver cannot listen on %s: %s", listen, exc)
        return None
    log.info("SNMP traps on udp %s", listen)
    rt.snmp = receiver
    return receiver


def serve(config: Config, listen: str | None = None, db: str | None = None, snmp_listen: str | None = None) -> int:
    service = config.service
    if listen:
        service = replace(service, listen=listen)
    if db:
        service = replace(service, db_url=db)
    if snmp_listen:
        service = replace(service, snmp=replace(service.snmp, listen=None if snmp_listen == "off" else snmp_listen))
    config = replace(config, service=service)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency; the stdlib loop also works
        return asyncio.run(_serve(config))
    return uvloop.run(_serve(config))


async def _serve(config: Config) -> int:
    app = build_app(config)
    host, _, port = config.service.listen.rpartition(":")
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=10.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host or "127.0.0.1", int(port))
    await site.start()
    addr = runner.addresses[0] if runner.addresses else (host, port)
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
    await stop.wait()
    log.info("stopping")
    await runner.cleanup()
    print("watcher stopped", file=sys.stderr, flush=True)
    return 0
