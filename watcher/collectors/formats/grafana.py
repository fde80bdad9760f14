"""Grafana unified-alerting webhook contact point (payload version 1).

Grafana sends Alertmanager's notification-group structure (``receiver``, ``status``,
``alerts``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``, ``externalURL``,
``groupKey``, ``truncatedAlerts``) with ``version: "1"`` and extras: top-level ``orgId``,
``title``, ``state`` and ``message`` (deprecated, ignored here), and per alert
``silenceURL``, ``dashboardURL``, ``panelURL``, ``imageURL``, ``values`` (refId -> number)
and ``valueString``.  The per-alert extras become annotations so that an agent can follow
them; ``values`` does not become the event's ``value``, which is reserved for metric
samples with no firing/resolved meaning.

Firing alerts carry ``endsAt: "0001-01-01T00:00:00Z"`` and are kept open until Grafana
sends them resolved, as with Alertmanager.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from watcher.collectors.formats._common import describe, optional_str, require_object
from watcher.collectors.formats.alertmanager import Group, parse_group
from watcher.model import Event, EventError

SOURCE = "grafana"
VERSION = "1"

ALERT_LINKS: dict[str, str] = {
    "silenceURL": "silence_url",
    "dashboardURL": "dashboard_url",
    "panelURL": "panel_url",
    "imageURL": "image_url",
    "valueString": "value_string",
}
"""Grafana's per-alert string fields copied into annotations (payload field -> annotation)."""


def parse(payload: Any, received_at: datetime) -> list[Event]:
    """The events of one Grafana webhook POST; ``EventError`` names a bad field."""
    return parse_grafana(payload, received_at).events


def parse_grafana(payload: Any, received_at: datetime) -> Group:
    """Like ``parse``, with the group's ``truncatedAlerts`` count and key."""
    body = require_object(payload, "payload")
    org_id = body.get("orgId")
    if org_id is not None and (isinstance(org_id, bool) or not isinstance(org_id, int)):
        raise EventError(f"orgId: expected an integer, got {describe(org_id)}")
    for key in ("title", "state", "message"):
        optional_str(body, key, "payload")
    return parse_group(payload, received_at, source=SOURCE, version=VERSION, extras=_extras)


def _extras(alert: dict[str, Any], what: str) -> dict[str, str]:
    extra: dict[str, str] = {}
    for field_name, annotation in ALERT_LINKS.items():
        value = optional_str(alert, field_name, what)
        if value:
            extra[annotation] = value
    values = alert.get("values")
    if values is not None:
        obj = require_object(values, f"{what}.values")
        shown = []
        for ref, number in sorted(obj.items()):
            if number is not None and (isinstance(number, bool) or not isinstance(number, int | float)):
                raise EventError(f"{what}.values.{ref}: expected a number, got {describe(number)}")
            shown.append(f"{ref}={number}")
        if shown:
            extra["values"] = ", ".join(shown)
    return extra
