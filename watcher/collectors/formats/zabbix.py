"""The JSON that watcher's Zabbix webhook media type posts (``deploy/zabbix/``), version 1.

Zabbix has no standard outgoing alert format: a webhook media type runs a script that
builds whatever JSON it likes from macros.  This is ours (all values strings unless noted;
Zabbix macros expand to strings)::

    {
      "version": "1",                      optional; anything else is refused
      "event_id": "4711",                  {EVENT.ID} (in a recovery: the problem's id)
      "event_value": "1",                  {EVENT.VALUE}: 1 problem, 0 recovery
      "event_source": "0",                 optional, {EVENT.SOURCE}: only 0 (triggers)
      "event_update_status": "0",          optional, {EVENT.UPDATE.STATUS}: 1 = an
                                           acknowledgement or comment, which yields no event
      "event_name": "Link down on Gi0/1",  {EVENT.NAME}: the alertname, unless a tag says
      "trigger_severity": "High",          {EVENT.SEVERITY}: Not classified, Information,
                                           Warning, Average, High, Disaster (or 0-5)
      "trigger_nseverity": "4",            optional, {EVENT.NSEVERITY}; wins over the name,
                                           which a Zabbix admin may have renamed
      "trigger_id": "23145",               optional, {TRIGGER.ID}
      "trigger_description": "...",        optional, {TRIGGER.DESCRIPTION}
      "host_name": "krk-rtr-01",           optional, {HOST.NAME}: the ``host`` label
      "host_ip": "192.0.2.1",              optional, {HOST.IP}
      "event_tags": [{"tag": "client", "value": "acme"}],
                                           optional, {EVENT.TAGSJSON}, or the
                                           "client:acme, site:acme-krk" text of {EVENT.TAGS}
      "event_clock": "2026-11-02T08:15:00Z",
                                           when the problem began: RFC 3339 or unix seconds
                                           ({EVENT.TIMESTAMP}); or instead "event_date"
                                           "2026.11.02" + "event_time" "09:15:00" read in
                                           "timezone" (IANA name or +HH:MM, default UTC)
      "recovery_clock": "...",             optional, when it ended; or recovery_date +
                                           recovery_time, as above
      "event_opdata": "...",               optional, {EVENT.OPDATA}
      "event_url": "https://..."           optional, a link back to the problem in Zabbix
    }

Mapping: labels are ``alertname`` (``event_name``), ``severity`` (the table below),
``host`` (``host_name``) and every event tag, a tag overriding a derived label of the same
name (so a tag ``alertname`` names the alert).  Tags whose name starts with ``__`` are
skipped: media types store their own bookkeeping there (``__zbx_*``) after the problem was
sent, which would change the label set, and with it the identity, between problem and
recovery.  A tag given twice keeps all its values, sorted and comma-joined.  A value that
is still an unexpanded macro (``{EVENT.RECOVERY.TIMESTAMP}`` in a problem message) counts
as absent.  Ids, description, IP, operational data and link become annotations.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from watcher.collectors.formats._common import (
    check_version,
    describe,
    optional_time,
    require_object,
    unix_time,
)
from watcher.model import Event, EventError, Status

SOURCE = "zabbix"
VERSION = "1"

SEVERITY_BY_NAME: dict[str, str] = {
    "not classified": "info",
    "information": "info",
    "warning": "warning",
    "average": "warning",
    "high": "critical",
    "disaster": "critical",
}
SEVERITY_NAMES: tuple[str, ...] = ("Not classified", "Information", "Warning", "Average", "High", "Disaster")
"""Zabbix's default severity names, indexed by ``{EVENT.NSEVERITY}``."""

STATUS_BY_VALUE: dict[str, Status] = {"1": "firing", "0": "resolved"}

ANNOTATIONS: dict[str, str] = {
    "event_id": "zabbix_event_id",
    "trigger_id": "zabbix_trigger_id",
    "trigger_description": "description",
    "host_ip": "host_ip",
    "event_opdata": "opdata",
    "event_url": "generator_url",
}
"""Payload fields copied into annotations (payload field -> annotation)."""

_MACRO = re.compile(r"\{[#$]?[A-Z][A-Z0-9_.]*(?::[^{}]*)?\}")
_OFFSET = re.compile(r"([+-])(\d\d):?(\d\d)")
_UNIX = re.compile(r"\d+(?:\.\d+)?")


def parse(payload: Any, received_at: datetime) -> list[Event]:
    """The event of one Zabbix webhook POST (none for a problem update)."""
    body = require_object(payload, "payload")
    if body.get("version") is not None:
        check_version(body, VERSION)
    source = _text(body, "event_source")
    if source is not None and source != "0":
        raise EventError(f"event_source: only trigger events (0) are supported, got {describe(source)}")
    update = _text(body, "event_update_status")
    if update is not None and update not in ("0", "1"):
        raise EventError(f"event_update_status: expected 0 or 1, got {describe(update)}")
    if update == "1":
        return []

    value = _required_text(body, "event_value")
    if value not in STATUS_BY_VALUE:
        raise EventError(f"event_value: expected 1 (problem) or 0 (recovery), got {describe(value)}")
    status = STATUS_BY_VALUE[value]
    _required_text(body, "event_id")
    severity_name = _severity_name(body)

    labels: dict[str, str] = {"severity": SEVERITY_BY_NAME[severity_name.lower()]}
    event_name = _text(body, "event_name")
    if event_name:
        labels["alertname"] = event_name
    host = _text(body, "host_name")
    if host:
        labels["host"] = host
    labels.update(_tags(_get(body, "event_tags"), "event_tags"))
    if not labels.get("alertname"):
        raise EventError("event_name: required (or a tag named alertname)")

    annotations: dict[str, str] = {"zabbix_severity": severity_name}
    if event_name:
        annotations["summary"] = event_name
    for field_name, annotation in ANNOTATIONS.items():
        text = _text(body, field_name)
        if text:
            annotations[annotation] = text

    starts_at = _clock(body, "event")
    if starts_at is None:
        raise EventError("event_clock: required (or event_date and event_time)")
    ends_at = _clock(body, "recovery") if status == "resolved" else None
    return [
        Event(
            labels=labels,
            source=SOURCE,
            status=status,
            annotations=annotations,
            starts_at=starts_at,
            ends_at=ends_at,
            observed_at=received_at,
        )
    ]


def _get(body: dict[str, Any], key: str) -> Any:
    """``body[key]``, with missing, null, ``""`` and an unexpanded macro all as None."""
    value = body.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str) and _MACRO.fullmatch(value.strip()):
        return None
    return value


def _text(body: dict[str, Any], key: str) -> str | None:
    """A string field; integers are accepted too, since ids and flags are numbers at heart."""
    value = _get(body, key)
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise EventError(f"{key}: expected a string, got {describe(value)}")


def _required_text(body: dict[str, Any], key: str) -> str:
    text = _text(body, key)
    if text is None:
        raise EventError(f"{key}: required")
    return text


def _severity_name(body: dict[str, Any]) -> str:
    """The Zabbix severity name, from the number if there is one, else from the name."""
    number = _text(body, "trigger_nseverity")
    if number is not None:
        if number not in ("0", "1", "2", "3", "4", "5"):
            raise EventError(f"trigger_nseverity: expected 0 to 5, got {describe(number)}")
        return SEVERITY_NAMES[int(number)]
    name = _text(body, "trigger_severity")
    if name is None:
        raise EventError("trigger_severity: required")
    if name in ("0", "1", "2", "3", "4", "5"):
        return SEVERITY_NAMES[int(name)]
    if name.lower() not in SEVERITY_BY_NAME:
        raise EventError(
            f"trigger_severity: unknown severity {describe(name)}; expected one of "
            f"{', '.join(SEVERITY_NAMES)}, or send trigger_nseverity"
        )
    return next(known for known in SEVERITY_NAMES if known.lower() == name.lower())


def _tags(value: Any, what: str) -> dict[str, str]:
    pairs: list[tuple[str, str]] = []
    if value is None:
        return {}
    if isinstance(value, str):
        for part in value.split(","):
            if not part.strip():
                continue
            tag, _, tag_value = part.partition(":")
            pairs.append((tag.strip(), tag_value.strip()))
    elif isinstance(value, list):
        for index, raw in enumerate(value):
            item = require_object(raw, f"{what}[{index}]")
            name = item.get("tag")
            text = item.get("value")
            if not isinstance(name, str):
                raise EventError(f"{what}[{index}].tag: expected a string, got {describe(name)}")
            if text is not None and not isinstance(text, str):
                raise EventError(f"{what}[{index}].value: expected a string, got {describe(text)}")
            pairs.append((name.strip(), text or ""))
    else:
        raise EventError(f"{what}: expected a list of {{tag, value}} or a 'tag:value, ...' string, "
                         f"got {describe(value)}")
    collected: dict[str, set[str]] = {}
    for tag, tag_value in pairs:
        if not tag:
            raise EventError(f"{what}: a tag has an empty name")
        if tag.startswith("__"):
            continue
        collected.setdefault(tag, set()).add(tag_value)
    return {tag: ",".join(sorted(values)) for tag, values in collected.items()}


def _clock(body: dict[str, Any], prefix: str) -> datetime | None:
    """``<prefix>_clock`` (RFC 3339 or unix seconds), else ``<prefix>_date`` + ``_time``."""
    key = f"{prefix}_clock"
    value = _get(body, key)
    if value is not None:
        if isinstance(value, bool):
            raise EventError(f"{key}: expected an RFC 3339 time or unix seconds, got {describe(value)}")
        if isinstance(value, int | float):
            return unix_time(value, key) if value > 0 else None
        if isinstance(value, str) and _UNIX.fullmatch(value.strip()):
            seconds = float(value)
            return unix_time(seconds, key) if seconds > 0 else None
        return optional_time(value, key)
    date = _get(body, f"{prefix}_date")
    time = _get(body, f"{prefix}_time")
    if date is None and time is None:
        return None
    if not isinstance(date, str) or not isinstance(time, str):
        raise EventError(f"{prefix}_date, {prefix}_time: expected both, as strings like "
                         f"2026.11.02 and 09:15:00")
    try:
        local = datetime.strptime(f"{date.strip().replace('-', '.')} {time.strip()}", "%Y.%m.%d %H:%M:%S")
    except ValueError as exc:
        raise EventError(f"{prefix}_date, {prefix}_time: {describe(date)} {describe(time)} is not "
                         f"a date like 2026.11.02 and a time like 09:15:00") from exc
    try:
        return local.replace(tzinfo=_zone(body)).astimezone(UTC)
    except OverflowError as exc:
        raise EventError(f"{prefix}_date: {describe(date)} is out of range") from exc


def _zone(body: dict[str, Any]) -> tzinfo:
    """The zone the Zabbix server's local date and time macros are in (default UTC)."""
    name = _get(body, "timezone")
    if name is None:
        return UTC
    if not isinstance(name, str):
        raise EventError(f"timezone: expected an IANA zone name or +HH:MM, got {describe(name)}")
    name = name.strip()
    if name.upper() in ("Z", "UTC"):
        return UTC
    offset = _OFFSET.fullmatch(name)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta >= timedelta(hours=24):
            raise EventError(f"timezone: offset {describe(name)} is out of range")
        return timezone(-delta if sign == "-" else delta)
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError) as exc:
        raise EventError(f"timezone: unknown zone {describe(name)}") from exc
