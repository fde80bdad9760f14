"""Field readers shared by the source-format adapters.

Every reader takes the already-decoded JSON value and a path such as
``alerts[2].labels`` and either returns a typed Python value or raises ``EventError``
naming that path.  The adapters are fed whatever a sender (or an attacker) posts, so no
reader may let any other exception escape, and error messages never echo long or nested
input back (a short, truncated ``repr`` of scalars only).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from watcher.model import EventError, parse_time

_MAX_SHOWN = 60


def describe(value: Any) -> str:
    """A short description of a JSON value for an error message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


def require_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise EventError(f"{what}: expected an object, got {describe(value)}")
    return value


def require_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise EventError(f"{what}: expected a list, got {describe(value)}")
    return value


def optional_str(obj: dict[str, Any], key: str, what: str) -> str | None:
    """``obj[key]`` as a string; missing, null and ``""`` all mean absent."""
    value = obj.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{what}.{key}: expected a string, got {describe(value)}")
    return value


def string_map(value: Any, what: str) -> dict[str, str]:
    """An object of string values (labels, annotations); null means empty."""
    if value is None:
        return {}
    obj = require_object(value, what)
    for key, val in obj.items():
        if not isinstance(key, str) or not key:
            raise EventError(f"{what}: keys must be non-empty strings")
        if not isinstance(val, str):
            raise EventError(f"{what}.{key}: expected a string, got {describe(val)}")
    return dict(obj)


def label_set(value: Any, what: str) -> dict[str, str]:
    """A label set: required and non-empty, because labels are an event's identity."""
    if value is None:
        raise EventError(f"{what}: required")
    labels = string_map(value, what)
    if not labels:
        raise EventError(f"{what}: must not be empty")
    return labels


def is_zero_time(dt: datetime) -> bool:
    """Go's zero ``time.Time`` (``0001-01-01T00:00:00Z``), which Alertmanager and Grafana
    send as ``endsAt`` of a firing alert to mean "not ended"."""
    return dt.year == 1


def optional_time(value: Any, what: str) -> datetime | None:
    """An RFC 3339 time; missing, null, ``""`` and Go's zero time all mean absent."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise EventError(f"{what}: expected an RFC 3339 time string, got {describe(value)}")
    dt = parse_time(value, what)
    return None if is_zero_time(dt) else dt


def required_time(obj: dict[str, Any], key: str, what: str) -> datetime:
    dt = optional_time(obj.get(key), f"{what}.{key}")
    if dt is None:
        raise EventError(f"{what}.{key}: required")
    return dt


def unix_time(value: int | float, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise EventError(f"{what}: {describe(value)} is not a valid unix time") from exc


def count(value: Any, what: str) -> int:
    """A non-negative integer such as ``truncatedAlerts``; null means 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise EventError(f"{what}: expected a non-negative integer, got {describe(value)}")
    return value


def check_version(obj: dict[str, Any], expected: str, what: str = "version") -> None:
    """Refuse payload versions this adapter was not written for, rather than misread them."""
    version = obj.get("version")
    if version is None:
        raise EventError(f'{what}: required (expected "{expected}")')
    if not isinstance(version, str) or version != expected:
        raise EventError(f'{what}: unsupported version {describe(version)} (expected "{expected}")')
