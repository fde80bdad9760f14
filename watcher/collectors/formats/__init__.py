"""Source-format adapters: one sender's decoded JSON payload in, normalized events out.

Each adapter is a pure function ``(payload, received_at) -> list[Event]``: no I/O, no
clock of its own (``received_at`` is "now" for it), all or nothing.  Anything it cannot
read raises ``EventError`` with a message naming the field, and nothing else, whatever
JSON value it is given, so the HTTP layer can answer 400 with that message.

``TABLE`` is the one table of formats: the ingest routes, their ``auth:`` keys and their
metric labels are built from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.collectors.formats import alertmanager, grafana, prometheus, uptimekuma, zabbix
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


@dataclass(frozen=True, slots=True)
class Format:
    """One row of the formats table: everything the service needs to take a sender's payload.

    The HTTP ingest routes, the ``auth:`` keys watcher.yaml accepts and the metric labels
    are all built from this table; adding a format is its parser module plus one row here
    (and its entry in ``watcher/api/openapi.yaml``, which a test checks).
    """

    name: str  # the table's key
    parse: Adapter  # pure: (payload, received_at) -> events, or EventError
    paths: tuple[str, ...]  # the POST routes that take this format
    source: str  # the ``source`` its events carry: their metric label (watcher_events_received{source=})
    auth: str = ""  # the ``auth:`` key of watcher.yaml that guards its paths; default: ``name``
    counts_truncated: bool = False  # its payloads say how many alerts the sender left out (truncatedAlerts)

    @property
    def auth_path(self) -> str:
        return self.auth or self.name


def webhook(name: str, parse: Adapter, source: str = "", counts_truncated: bool = False) -> Format:
    """A format posted to ``/webhooks/<name>``, guarded by ``auth.<name>``, its events' source ``name``."""
    return Format(name, checked(parse), (f"/webhooks/{name}",), source or name, counts_truncated=counts_truncated)


TABLE: tuple[Format, ...] = (
    Format("events", parse_events, ("/api/v1/events",), "api"),  # Event.from_dict checks each event itself
    Format("prometheus", checked(prometheus.parse), ("/api/v2/alerts", "/api/v1/alerts"), "prometheus"),
    webhook("alertmanager", alertmanager.parse, counts_truncated=True),
    webhook("grafana", grafana.parse, counts_truncated=True),
    webhook("zabbix", zabbix.parse),
    webhook("uptimekuma", uptimekuma.parse),
)
"""Every format watcher takes over HTTP, one row each."""

FORMATS: dict[str, Adapter] = {f.name: f.parse for f in TABLE}
"""Adapters by name (the table's parsers, for replay and the tests)."""


def auth_paths() -> tuple[str, ...]:
    """The ``auth:`` keys of the formats' ingest paths, in table order."""
    return tuple(dict.fromkeys(f.auth_path for f in TABLE))


def metric_sources() -> frozenset[str]:
    """The event sources the formats give a metric series of their own."""
    return frozenset(f.source for f in TABLE)


__all__ = ["FORMATS", "TABLE", "Adapter", "Format", "auth_paths", "checked", "metric_sources", "parse_events",
           "webhook"]
