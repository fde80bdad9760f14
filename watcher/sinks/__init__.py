"""Ticket sinks: watcher's tickets pushed into the helpdesk's own ticket system, and the
agents' steps there brought back.  ``SINKS`` is the one table of the systems watcher knows,
by the ``kind`` of a ``sinks.systems`` entry in watcher.yaml."""

from __future__ import annotations

import aiohttp

from watcher.config.sinks import SinkBase
from watcher.sinks.base import Sink
from watcher.sinks.glpi import GlpiSink
from watcher.sinks.jira import JiraSink
from watcher.sinks.rt import RtSink
from watcher.sinks.webhook import WebhookSink
from watcher.sinks.zammad import ZammadSink

SINKS: dict[str, type[Sink[SinkBase]]] = {
    "rt": RtSink,
    "zammad": ZammadSink,
    "glpi": GlpiSink,
    "jira": JiraSink,
    "webhook": WebhookSink,
}


def build_sink(cfg: SinkBase, session: aiohttp.ClientSession) -> Sink[SinkBase]:
    return SINKS[cfg.kind](cfg, session)


__all__ = ["SINKS", "Sink", "build_sink"]
