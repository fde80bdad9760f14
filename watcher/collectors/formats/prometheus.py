"""Prometheus' own alert push (``POST /api/v2/alerts``), so Prometheus can name watcher as
its Alertmanager.

The body is a JSON list of ``{labels, annotations, startsAt, endsAt, generatorURL}``
(Alertmanager's ``PostableAlerts``) with no status field: an alert is resolved when its
``endsAt`` has passed.  Prometheus re-sends every firing alert on each evaluation (at
least every ``resend_delay``) with ``endsAt`` set a few evaluation intervals ahead, so a
firing event keeps that ``ends_at`` (docs/events.md: firing until then unless re-sent),
and a Prometheus that dies lets its alerts expire instead of leaving them open forever.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watcher.collectors.formats._common import (
    label_set,
    optional_str,
    optional_time,
    require_list,
    require_object,
    string_map,
)
from watcher.model import Event, Status

SOURCE = "prometheus"


def parse(payload: Any, received_at: datetime) -> list[Event]:
    """The events of one push; all or nothing, ``EventError`` names a bad field.

    ``received_at`` decides the status: ``endsAt`` at or before it means resolved.
    """
    alerts = require_list(payload, "payload")
    return [_alert(raw, f"[{index}]", received_at) for index, raw in enumerate(alerts)]


def _alert(raw: Any, what: str, received_at: datetime) -> Event:
    alert = require_object(raw, what)
    labels = label_set(alert.get("labels"), f"{what}.labels")
    annotations = string_map(alert.get("annotations"), f"{what}.annotations")
    starts_at = optional_time(alert.get("startsAt"), f"{what}.startsAt")
    ends_at = optional_time(alert.get("endsAt"), f"{what}.endsAt")
    generator_url = optional_str(alert, "generatorURL", what)
    if generator_url:
        annotations.setdefault("generator_url", generator_url)
    status: Status = "resolved" if ends_at is not None and ends_at <= received_at else "firing"
    return Event(
        labels=labels,
        source=SOURCE,
        status=status,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        observed_at=received_at,
    )
