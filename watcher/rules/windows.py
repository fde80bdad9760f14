"""Silences and maintenance windows: the times when a ticket opens as planned, or not at all.

They used to be dicts whose matchers were parsed again on every lookup, for every event.
Here each is a small typed object whose matchers are compiled once, when it is made (from an
operation, or from the stored state), and the engine asks it one question: does it cover
these labels (or this client and site) at this time?

The stored form (``to_dict``/``from_dict``) is the one the engine's snapshot always had, so a
database written before this module existed restores, and the API's listing reads it as is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from watcher.config.regex import RegexError
from watcher.config.rules import Matcher, parse_matcher


def window_id(entry: dict[str, Any]) -> str:
    """The id of a silence or maintenance (as stored): given when it was made; for one stored
    before ids existed, a digest of its content (stable, so it can still be listed and lifted)."""
    given = entry.get("id")
    if isinstance(given, str) and given:
        return given
    content = json.dumps({k: v for k, v in entry.items() if k != "id"}, sort_keys=True, default=str)
    return hashlib.sha256(content.encode()).hexdigest()[:16]


def _ident(d: dict[str, Any]) -> str:
    """The id a stored window keeps: its own, or the digest it was listed under."""
    return window_id(d)


@dataclass(slots=True)
class MaintenanceWindow:
    """A client's (or one site's) planned break from ``start`` to ``end`` (epoch seconds)."""

    client: str
    site: str | None
    start: float
    end: float
    reason: str | None = ""
    id: str | None = None

    def covers(self, client: str, site: str | None, t: float) -> bool:
        return self.client == client and (not self.site or self.site == site) and self.start <= t <= self.end

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "site": self.site, "start": self.start, "end": self.end,
                "reason": self.reason, "id": self.id}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> MaintenanceWindow:
        return MaintenanceWindow(d["client"], d.get("site"), d["start"], d["end"], d.get("reason", ""), _ident(d))

    @property
    def ident(self) -> str:
        return window_id(self.to_dict())


@dataclass(slots=True)
class SilenceWindow:
    """Alerts whose labels match every matcher, from ``start`` to ``end``: their tickets open as
    planned, or (``mute``) nothing opens at all.  ``compiled`` holds the matchers compiled when
    the silence was made; None for a stored one that no longer compiles (it could only have been
    stored before regexes were checked): it matches nothing, instead of failing every event."""

    matchers: dict[str, str]
    start: float
    end: float
    reason: str | None
    mute: bool
    id: str | None
    compiled: tuple[Matcher, ...] | None = field(repr=False, compare=False)

    @staticmethod
    def make(matchers: dict[str, str], start: float, end: float, reason: str | None, mute: bool,
             id: str | None) -> SilenceWindow:
        """Raises RegexError for a pattern RE2 does not take (watcher.config.regex)."""
        compiled = tuple(parse_matcher(str(label), str(spec)) for label, spec in matchers.items())
        return SilenceWindow(matchers, start, end, reason, mute, id, compiled)

    def matches(self, labels: dict[str, str], t: float, mute: bool | None) -> bool:
        if not self.start <= t <= self.end or (mute is not None and self.mute != mute) or self.compiled is None:
            return False
        return all(m.matches(labels) for m in self.compiled)

    def to_dict(self) -> dict[str, Any]:
        return {"matchers": self.matchers, "start": self.start, "end": self.end, "reason": self.reason,
                "mute": self.mute, "id": self.id}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> SilenceWindow:
        args = (dict(d.get("matchers") or {}), d["start"], d["end"], d.get("reason", ""), bool(d.get("mute")),
                _ident(d))
        try:
            return SilenceWindow.make(*args)
        except RegexError:
            return SilenceWindow(*args, None)

    @property
    def ident(self) -> str:
        return window_id(self.to_dict())
