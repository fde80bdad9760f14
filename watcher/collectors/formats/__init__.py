"""Source-format adapters: one sender's decoded JSON payload in, normalized events out.

Each adapter is a pure function ``(payload, received_at) -> list[Event]``: no I/O, no
clock of its own (``received_at`` is "now" for it), all or nothing.  Anything it cannot
read raises ``EventError`` with a message naming the field, and nothing else, whatever
JSON value it is given, so the HTTP layer can answer 400 with that message.

``FORMATS`` is the one table the ingest endpoints look adapters up in.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from watcher.collectors.formats import alertmanager, grafana, prometheus, zabbix
from watcher.collectors.formats._common import describe
from watcher.model import Event, EventError

Adapter = Callable[[Any, datetime], list[Event]]


def parse_events(payload: Any, received_at: datetime) -> list[Event]:
    """A JSON list of normalized events (docs/events.md), all or nothing.

    A bad item fails the whole request, its message prefixed with the item's index
    (``[3] labels: ...``) so the sender can find it in a long batch.
    """
    if not isinstance(payload, list):
        raise EventError(f"expected a JSON list of events, got {describe(payload)}")
    events = []
    for index, raw in enumerate(payload):
        try:
            events.append(Event.from_dict(raw, received_at))
        except (ValueError, OverflowError) as exc:
            raise EventError(f"[{index}] {exc}") from exc
    return events


def checked(adapter: Adapter) -> Adapter:
    """The adapter with every event brought within the engine's bounds (``Event.check``):
    whatever a sender's format carries, the engine and the store get values they can keep."""

    def parse(payload: Any, received_at: datetime) -> list[Event]:
        events = adapter(payload, received_at)
        for index, ev in enumerate(events):
            try:
                ev.check()
            except EventError as exc:
                raise EventError(f"[{index}] {exc}") from exc
        return events

    parse.__doc__ = adapter.__doc__
    return parse


FORMATS: dict[str, Adapter] = {
    "events": parse_events,  # Event.from_dict checks each event itself
    "prometheus": checked(prometheus.parse),
    "alertmanager": checked(alertmanager.parse),
    "grafana": checked(grafana.parse),
    "zabbix": checked(zabbix.parse),
}
"""Adapters by name: ``events`` for ``POST /api/v1/events``, ``prometheus`` for
``POST /api/v2/alerts``, the others for ``POST /webhooks/<name>``."""

__all__ = ["FORMATS", "Adapter", "checked", "parse_events"]
