"""What the HTTP handlers, the console and the self-watch share of one running process.

Built once by ``watcher.app`` when the service starts; the handlers read it through
``request.app[RUNTIME]``.  It holds references to the running parts, never logic of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

from watcher.api.auth import IngestAuth
from watcher.config import Config
from watcher.live import Live
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.pipeline import EngineWorker, Ingestor
from watcher.store import Store

if TYPE_CHECKING:
    from watcher.collectors.running import RunningCollectors
    from watcher.sinks.worker import SinkService

Reload = Callable[[], Awaitable[Config]]
"""Read, check and swap in the configuration files again; raises (changing nothing) when they
are not valid, else returns the configuration now in force."""

Observe = Callable[[list[Event], float], None]
"""Sees every event received (re-sends included) and when: watcher.feeds.FeedWatch.observe."""


@dataclass
class Runtime:
    """Everything the handlers need, built once by watcher.app."""

    live: Live
    store: Store
    metrics: Metrics
    ingestor: Ingestor
    worker: EngineWorker
    auth: dict[str, IngestAuth]
    secret: bytes
    started_at: float
    reload: Reload
    collectors: RunningCollectors | None = None  # the collectors and SNMP receiver this process runs
    observe: Observe | None = None
    sinks: SinkService | None = None  # when watcher.yaml configures helpdesk ticket systems

    @property
    def config(self) -> Config:
        """The configuration in force (``reload`` swaps it)."""
        return self.live.config


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
