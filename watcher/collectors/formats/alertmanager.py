"""Alertmanager's webhook payload (``webhook_config``, payload version 4).

One POST carries one notification group: top-level ``groupKey``, ``status``, ``receiver``,
``groupLabels``, ``commonLabels``, ``commonAnnotations``, ``externalURL`` and
``truncatedAlerts``, and a list of ``alerts``, each with its own ``status``, ``labels``,
``annotations``, ``startsAt``, ``endsAt``, ``generatorURL`` and ``fingerprint``.  Every
alert carries its full label set, so the group-level fields add nothing to the events.

Firing alerts become events with ``ends_at`` null.  Alertmanager writes Go's zero time
there, and even where it passes a real ``endsAt`` on (Prometheus' "valid until", minutes
ahead) that must not expire the event: Alertmanager repeats a firing group only every
``repeat_interval`` (hours) and says "resolved" itself when the alert ends.

``truncatedAlerts`` counts alerts Alertmanager left out because of ``max_alerts``.  Those
are lost to us, so the count is exposed: ``parse_group`` returns it, and every event of a
truncated group carries it in the ``truncated_alerts`` annotation.

Grafana's unified-alerting webhook is the same structure with a few more fields; it reuses
``parse_group`` (see ``grafana.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.collectors.formats._common import (
    check_version,
    count,
    describe,
    label_set,
    optional_str,
    optional_time,
    require_list,
    require_object,
    required_time,
    string_map,
)
from watcher.model import Event, EventError, Status

SOURCE = "alertmanager"
VERSION = "4"
TRUNCATED_ANNOTATION = "truncated_alerts"

STATUSES: dict[str, Status] = {"firing": "firing", "resolved": "resolved"}

ALERT_LINKS: dict[str, str] = {"generatorURL": "generator_url"}
"""Per-alert link fields copied into annotations (payload field -> annotation)."""

AlertExtras = Callable[[dict[str, Any], str], dict[str, str]]
"""Reads a sender's own per-alert fields (raw alert, its path) into extra annotations."""


@dataclass(frozen=True, slots=True)
class Group:
    """One webhook notification: its events and what the sender says it left out."""

    events: list[Event]
    truncated: int
    group_key: str | None
    receiver: str | None


def parse(payload: Any, received_at: datetime) -> list[Event]:
    """The events of one Alertmanager webhook POST; ``EventError`` names a bad field."""
    return parse_group(payload, received_at).events


def parse_group(
    payload: Any,
    received_at: datetime,
    *,
    source: str = SOURCE,
    version: str = VERSION,
    extras: AlertExtras | None = None,
) -> Group:
    """Parse an Alertmanager-shaped notification group, all or nothing.

    ``source``, ``version`` and ``extras`` let a sender with the same structure (Grafana)
    reuse this parser with its own name, payload version and per-alert fields.
    """
    body = require_object(payload, "payload")
    check_version(body, version)
    raw_alerts = body.get("alerts")
    if raw_alerts is None:
        raise EventError("alerts: required")
    alerts = require_list(raw_alerts, "alerts")
    truncated = count(body.get("truncatedAlerts"), "truncatedAlerts")
    group_key = optional_str(body, "groupKey", "payload")
    receiver = optional_str(body, "receiver", "payload")
    group_status = body.get("status")
    if group_status is not None and (not isinstance(group_status, str) or group_status not in STATUSES):
        raise EventError(f"status: expected 'firing' or 'resolved', got {describe(group_status)}")
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        string_map(body.get(key), key)
    optional_str(body, "externalURL", "payload")

    events = []
    for index, raw in enumerate(alerts):
        event = _alert(raw, f"alerts[{index}]", received_at, source, extras)
        if truncated:
            event.annotations[TRUNCATED_ANNOTATION] = str(truncated)
        events.append(event)
    return Group(events=events, truncated=truncated, group_key=group_key, receiver=receiver)


def _alert(
    raw: Any, what: str, received_at: datetime, source: str, extras: AlertExtras | None
) -> Event:
    alert = require_object(raw, what)
    status_raw = alert.get("status")
    if status_raw is None:
        raise EventError(f"{what}.status: required")
    if not isinstance(status_raw, str) or status_raw not in STATUSES:
        raise EventError(f"{what}.status: expected 'firing' or 'resolved', got {describe(status_raw)}")
    status = STATUSES[status_raw]
    labels = label_set(alert.get("labels"), f"{what}.labels")
    annotations = string_map(alert.get("annotations"), f"{what}.annotations")
    starts_at = required_time(alert, "startsAt", what)
    ends_at = optional_time(alert.get("endsAt"), f"{what}.endsAt")
    optional_str(alert, "fingerprint", what)
    for field_name, annotation in ALERT_LINKS.items():
        link = optional_str(alert, field_name, what)
        if link:
            annotations.setdefault(annotation, link)
    if extras is not None:
        for key, value in extras(alert, what).items():
            annotations.setdefault(key, value)
    return Event(
        labels=labels,
        source=source,
        status=status,
        annotations=annotations,
        starts_at=starts_at,
        ends_at=ends_at if status == "resolved" else None,
        observed_at=received_at,
    )
