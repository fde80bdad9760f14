"""What the HTTP handlers, the console and the self-watch share of one running process.

Built once by ``watcher.app`` when the service starts; the handlers read it through
``request.app[RUNTIME]``.  It holds references to the running parts, never logic of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from watcher.api.auth import IngestAuth
from watcher.config import Config
from watcher.metrics import Metrics
from watcher.pipeline import EngineWorker, Ingestor
from watcher.store import Store

if TYPE_CHECKING:
    from watcher.collectors.running import RunningCollectors


@dataclass
class Runtime:
    """Everything the handlers need, built once by watcher.app."""

    config: Config
    store: Store
    metrics: Metrics
    ingestor: Ingestor
    worker: EngineWorker
    auth: dict[str, IngestAuth]
    secret: bytes
    started_at: float
    reload: Any = None
    collectors: RunningCollectors | None = None  # the collectors and SNMP receiver this process runs
    observe: Any = None  # watcher.feeds.FeedWatch.observe: sees every event received, re-sends included
    sinks: Any = None  # watcher.sinks.worker.SinkService when helpdesk ticket systems are configured


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
