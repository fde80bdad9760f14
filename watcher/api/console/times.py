"""Times as an agent reads them: ``HH:MM`` in the client's time zone, "12 min ago", "1 h 20 min".

Pure: they take the time (and the language's words), so tests check them without a server.
The board, the ticket page and the lists all show times through these, so that one ticket's
times read the same on every page.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from watcher.api.console.words import words
from watcher.config import Config
from watcher.model import format_time, parse_time

UTC_ZONE = ZoneInfo("UTC")


def span(seconds: float, w: dict[str, str]) -> str:
    """A duration in whole minutes, with hours when there are any: ``1 h 20 min``, ``12 min``."""
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} {w['h']} {minutes:02d} {w['min']}" if hours else f"{minutes} {w['min']}"


def zone_of(config: Config, client: str | None) -> ZoneInfo:
    """The client's time zone from the inventory; UTC for no client or an unknown one."""
    c = config.inventory.clients.get(client or "")
    return c.timezone if c is not None else UTC_ZONE


def local_time(value: str | None, zone: ZoneInfo, now: datetime) -> str:
    """``HH:MM`` in the client's zone, with the date when it is not today there."""
    if not value:
        return ""
    at = parse_time(value).astimezone(zone)
    today = now.astimezone(zone).date()
    return at.strftime("%H:%M") if at.date() == today else at.strftime("%d.%m %H:%M")


def ago(value: str | None, now: datetime, lang: str = "en") -> str:
    """How long ago ``value`` was: "just now" under a minute, else ``span`` and "ago"."""
    if not value:
        return ""
    w = words(lang)
    seconds = (now - parse_time(value)).total_seconds()
    if seconds < 60:
        return w["just_now"]
    return f"{span(seconds, w)} {w['ago']}"


def ts_local(ts: float | None, now: datetime, zone: ZoneInfo = UTC_ZONE) -> str:
    """``local_time`` of a Unix time, as the engine's state and the outbox keep times."""
    if ts is None:
        return ""
    return local_time(format_time(datetime.fromtimestamp(ts, UTC)), zone, now)
