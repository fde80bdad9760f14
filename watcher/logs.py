"""Logs for the people who run watcher: one line per thing that matters, optionally JSON.

A helpdesk lead reading the log wants to see tickets come and go (opened, escalated,
marked planned, acknowledged, resolved), not every retry of every delivery.  ``TicketLog``
turns the engine's changed tickets into one INFO line per transition; it remembers what it
has already said, and is primed with the tickets that exist at start so that a restart does
not announce them again.

``setup`` configures the root logger: plain text for a terminal, or one JSON object a line
(``--log-format json``) for a log shipper.  Secrets never reach a log line through here:
delivery targets are shown by ``redact_url``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from watcher.model import Ticket

log = logging.getLogger("watcher.tickets")

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, RFC 3339), level, logger, message, and the
    ticket fields a record carries in ``extra={"ticket": ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("ticket", "event", "client", "category"):
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup(level: str = "INFO", fmt: str = "text") -> None:
    """The root logger on stderr, at ``level``, as ``text`` or ``json``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for noisy in ("alembic", "weasyprint", "fontTools", "matplotlib"):  # the report's renderers log every step
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Apprise warns on every failed attempt; the outbox says once when a target goes down
    logging.getLogger("apprise").setLevel(logging.ERROR)


def redact_url(url: str) -> str:
    """A delivery target fit for a log: scheme, user name, host and port; the password,
    the path, the query string and the fragment (where webhooks and SMS gateways keep
    their tokens and API keys) are left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable target)"
    if not parts.scheme:
        return "(target)"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    user = ""
    if parts.username:
        user = parts.username + (":***" if parts.password else "") + "@"
    path = parts.path if len(parts.path) <= 1 else "/…"
    return f"{parts.scheme}://{user}{parts.hostname or ''}{port}{path}"


def _what(tk: Ticket) -> str:
    entity = f"{tk.entity_kind} {tk.entity_id}"
    return f"{tk.id} [{tk.category}] {tk.client} {entity}: {tk.title}"


class TicketLog:
    """Says once what happened to each ticket, from the engine's changed tickets."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[str, bool, bool]] = {}

    def prime(self, tickets: Iterable[Ticket]) -> None:
        """Tickets that already exist (after a restart): known, not announced."""
        for tk in tickets:
            self._seen[tk.id] = self._state(tk)

    @staticmethod
    def _state(tk: Ticket) -> tuple[str, bool, bool]:
        return tk.status, tk.planned, tk.escalated_at is not None

    def observe(self, tickets: Iterable[Ticket]) -> None:
        for tk in tickets:
            old = self._seen.get(tk.id)
            new = self._state(tk)
            if old == new:
                continue
            extra = {"ticket": tk.id, "client": tk.client, "category": tk.category}
            if old is None:
                extra["event"] = "opened"
                people = len(tk.affected)
                log.info("ticket opened%s: %s; %d affected", " (planned)" if tk.planned else "", _what(tk), people,
                         extra=extra)
            else:
                status, was_planned, escalated = old
                if tk.planned and not was_planned:
                    log.info("ticket marked planned: %s", _what(tk), extra={**extra, "event": "planned"})
                if new[2] and not escalated:
                    log.info("ticket escalated to the admins: %s", _what(tk), extra={**extra, "event": "escalated"})
                if tk.status == "acknowledged" and status == "open":
                    log.info("ticket acknowledged by %s: %s", tk.acknowledged_by or "an agent", _what(tk),
                             extra={**extra, "event": "acknowledged"})
            if tk.status == "resolved" and (old is None or old[0] != "resolved"):
                log.info("ticket resolved%s: %s", f" by {tk.resolved_by}" if tk.resolved_by else "", _what(tk),
                         extra={**extra, "event": "resolved"})
            self._seen[tk.id] = new
        if len(self._seen) > 50_000:  # forget resolved tickets; they do not change again
            for tid in [t for t, s in self._seen.items() if s[0] == "resolved"]:
                del self._seen[tid]
