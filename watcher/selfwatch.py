"""Who watches the watcher: the silent-feed watch and the heartbeat, started and stopped
together with the service (one async context, entered by watcher.app)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

from watcher.feeds import FeedWatch
from watcher.heartbeat import Heartbeat
from watcher.model import Event

if TYPE_CHECKING:
    from watcher.runtime import Runtime


@contextlib.asynccontextmanager
async def watching(rt: Runtime, sink: Callable[[list[Event]], Awaitable[None]]) -> AsyncIterator[None]:
    """Every process records what its ingest sees of the expected feeds (HTTP and its own
    collectors call ``rt.observe``); the one running the
    engine announces silences (through ``sink``, the inbox) and pings the heartbeat URL."""
    worker = rt.worker
    feeds = FeedWatch(rt.config, rt.store, rt.metrics, lambda: worker.leader, sink, current=lambda: rt.config)
    heartbeat = Heartbeat(rt.config.service.heartbeat, worker, rt.store, rt.metrics)
    rt.observe = feeds.observe
    await feeds.start()
    await heartbeat.start()
    try:
        yield
    finally:
        rt.observe = None
        await heartbeat.stop()
        await feeds.stop()
