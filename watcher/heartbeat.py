"""Heartbeat out, and watcher's own health on /metrics.

An outside dead man's switch (healthchecks.io, Cronitor, a Prometheus ``Watchdog`` route,
an Apprise channel) can only notice that watcher died if watcher says, regularly, that it
lives.  ``Heartbeat`` pings a URL every ``interval`` while this process runs the engine and
the engine is healthy: it completed a batch within ``stall_after`` (it steps every
``engine_tick`` even when idle, so a wedged or failing engine stops the pings) and the
database answers.  A replica that does not run the engine stays quiet, so with no leader
among the replicas nobody pings.

Every process also probes the database (``watcher_store_up``, ``watcher_store_errors_total``)
for the shipped Prometheus rules in ``deploy/prometheus/``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import aiohttp
from sqlalchemy import text

from watcher.config.selfwatch import HeartbeatConfig
from watcher.metrics import Metrics
from watcher.pipeline import EngineWorker
from watcher.store import Store
from watcher.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class Heartbeat:
    def __init__(self, config: HeartbeatConfig | None, worker: EngineWorker, store: Store, metrics: Metrics,
                 probe_interval: float = 5.0, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.worker = worker
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.interval = config.interval if config else probe_interval
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._healthy: bool | None = None
        self._store_ok = True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
                log.exception("heartbeat round failed")
            await asyncio.sleep(self.interval)

    async def _store_answers(self) -> bool:
        try:
            await asyncio.wait_for(asyncio.to_thread(self._select_one), timeout=max(1.0, self.interval))
        except Exception as exc:
            self.metrics.store_errors.inc()
            if self._store_ok:
                log.error("the database does not answer: %s", exc)
            self._store_ok = False
            return False
        if not self._store_ok:
            log.info("the database answers again")
        self._store_ok = True
        return True

    def _select_one(self) -> None:
        with self.store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def engine_healthy(self, now: float) -> bool:
        """Leading, and a batch went through within ``stall_after``."""
        stall_after = self.config.stall_after if self.config else 60.0
        return self.worker.leader and self.worker.last_step > 0 and now - self.worker.last_step <= stall_after

    async def beat(self) -> None:
        """One round: publish health; ping when this process runs a healthy engine."""
        store_ok = await self._store_answers()
        now = self.clock()
        self.metrics.store_up.set(1 if store_ok else 0)
        if self.config is None:
            return
        healthy = store_ok and self.engine_healthy(now)
        if healthy != self._healthy and (self.worker.leader or self._healthy):
            if healthy:
                log.info("engine healthy: heartbeat pings go out every %gs", self.config.interval)
            else:
                log.warning("engine not healthy (stalled, not leading or no database): heartbeat pings stop")
        self._healthy = healthy
        if not healthy:
            if self.worker.leader:
                self.metrics.heartbeat_pings.labels("skipped").inc()
            return
        ok = await self.ping()
        self.metrics.heartbeat_pings.labels("sent" if ok else "failed").inc()

    async def ping(self) -> bool:
        assert self.config is not None
        url = self.config.url
        if url.startswith(("http://", "https://")):
            if self._session is None:
                self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.config.timeout))
            try:
                async with self._session.request(self.config.method, url,
                                                 data=b"watcher ok" if self.config.method == "POST" else None) as resp:
                    await resp.read()
                    if resp.status < 400:
                        return True
                    log.warning("heartbeat URL answered %d", resp.status)
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("heartbeat URL unreachable: %s", exc)
            return False
        return await asyncio.to_thread(self._apprise, url)

    @staticmethod
    def _apprise(url: str) -> bool:
        import apprise

        ap = apprise.Apprise()
        if not ap.add(url):
            log.warning("heartbeat: Apprise does not know this URL")
            return False
        return bool(ap.notify(title="watcher heartbeat", body="watcher is alive and its engine is healthy"))
