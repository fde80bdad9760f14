"""Uptime Kuma's webhook notification (its "Webhook" provider, body type JSON).

Uptime Kuma posts, for each important heartbeat of a monitor (the monitor went down or came
back up)::

    {
      "heartbeat": {                       null in the "Test" notification
        "monitorID": 29,
        "status": 0,                       0 down, 1 up, 2 pending, 3 maintenance
        "time": "2026-11-02 08:15:00.527", UTC (Uptime Kuma's SQL form), or RFC 3339
        "msg": "getaddrinfo ENOTFOUND nas.acme.example",
        "ping": null, "important": true, "duration": 0,
        "timezone": "Europe/Warsaw", "timezoneOffset": "+01:00", "localDateTime": "..."
      },
      "monitor": {                         null in the "Test" notification
        "id": 29, "name": "NAS", "type": "ping", "hostname": "nas.acme.example",
        "url": "https://", "tags": [{"name": "client", "value": "acme"}], ...
      },
      "msg": "[NAS] [🔴 Down] getaddrinfo ENOTFOUND nas.acme.example"
    }

Mapping: a down heartbeat is a firing ``UptimeKumaDown`` (severity ``critical``) from its
``time``; an up heartbeat resolves it at its ``time``; pending (Uptime Kuma still retrying)
and maintenance (its own maintenance windows) yield no event, nor does the test message.
Labels: ``alertname``, ``severity``, ``monitor`` (the monitor's id, stable when it is
renamed, so that the up heartbeat ends the down one), ``host`` (its ``hostname``, for
binding to the inventory) and every monitor tag that has a value (``client: acme`` binds
the alert to that client); the name, message and URL become annotations.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from watcher.collectors.formats._common import describe, optional_str, optional_time, require_list, require_object
from watcher.model import Event, EventError, Status

SOURCE = "uptimekuma"
ALERTNAME = "UptimeKumaDown"

STATUS_BY_CODE: dict[int, Status | None] = {0: "firing", 1: "resolved", 2: None, 3: None}
"""Heartbeat status -> event status; None: no event (pending, maintenance)."""

DERIVED = ("alertname", "monitor")
"""Labels a monitor tag may not replace: they are the alert's identity."""

_SQL_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?")


def parse(payload: Any, received_at: datetime) -> list[Event]:
    """The event of one Uptime Kuma webhook POST (none for pending, maintenance or a test)."""
    body = require_object(payload, "payload")
    heartbeat = body.get("heartbeat")
    if heartbeat is None:
        return []  # "Test" in Uptime Kuma's notification dialog: only a msg
    beat = require_object(heartbeat, "heartbeat")
    code = beat.get("status")
    if isinstance(code, bool) or not isinstance(code, int) or code not in STATUS_BY_CODE:
        raise EventError(f"heartbeat.status: expected 0 (down), 1 (up), 2 (pending) or 3 (maintenance), "
                         f"got {describe(code)}")
    status = STATUS_BY_CODE[code]
    if status is None:
        return []
    monitor = require_object(body.get("monitor"), "monitor")
    monitor_id = monitor.get("id")
    if isinstance(monitor_id, bool) or not isinstance(monitor_id, int | str) or monitor_id == "":
        raise EventError(f"monitor.id: expected a number, got {describe(monitor_id)}")

    labels = _tags(monitor.get("tags"))
    labels.update(alertname=ALERTNAME, monitor=str(monitor_id))
    labels.setdefault("severity", "critical")
    host = optional_str(monitor, "hostname", "monitor")
    if host:
        labels.setdefault("host", host)

    annotations: dict[str, str] = {}
    name = optional_str(monitor, "name", "monitor")
    if name:
        annotations["monitor_name"] = name
    summary = optional_str(beat, "msg", "heartbeat") or optional_str(body, "msg", "payload")
    if summary:
        annotations["summary"] = summary
    url = optional_str(monitor, "url", "monitor")
    if url and url not in ("http://", "https://"):  # Uptime Kuma's placeholder for monitors without a URL
        annotations["url"] = url

    at = _time(beat.get("time"))
    return [Event(labels=labels, source=SOURCE, status=status, annotations=annotations,
                  starts_at=at if status == "firing" else None,
                  ends_at=(at or received_at) if status == "resolved" else None)]


def _tags(value: Any) -> dict[str, str]:
    """The monitor's tags that carry a value, as labels (a tag without one is only a marker)."""
    out: dict[str, str] = {}
    if value is None:
        return out
    for index, item in enumerate(require_list(value, "monitor.tags")):
        tag = require_object(item, f"monitor.tags[{index}]")
        name = optional_str(tag, "name", f"monitor.tags[{index}]")
        text = optional_str(tag, "value", f"monitor.tags[{index}]")
        if name and text and name not in DERIVED:
            out[name] = text
    return out


def _time(value: Any) -> datetime | None:
    """Uptime Kuma's ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC), or an RFC 3339 time; missing: None."""
    if isinstance(value, str) and (m := _SQL_TIME.fullmatch(value)):
        year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
        micro = int((m.group(7) or "0").ljust(6, "0"))
        try:
            return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
        except ValueError as exc:
            raise EventError(f"heartbeat.time: {describe(value)} is not a valid time") from exc
    return optional_time(value, "heartbeat.time")
