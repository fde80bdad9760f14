"""``watcher replay``: the service's engine on a recorded stream, on virtual time.

The clock is each line's ``observed_at`` (an op's ``at``) and never moves backwards; timers
fire at their own due times between lines, exactly as they would live.  Nothing is stored
and nothing is delivered: the result is one JSON document of tickets and notifications.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from watcher.config import Config
from watcher.model import Event, EventError, Notice, Op, Ticket, op_from_dict, parse_time
from watcher.rules import Engine

log = logging.getLogger(__name__)


def read_stream(lines: Iterable[str], source: str = "stream") -> Iterator[tuple[datetime | None, Event | Op]]:
    """(time, item) for each line; a bad line is logged with its number and skipped."""
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if isinstance(raw, dict) and "op" in raw:
                op = op_from_dict(raw)
                yield op.at, op
            else:
                ev = Event.from_dict(raw)
                yield ev.observed_at or ev.starts_at, ev
        except (ValueError, EventError) as exc:
            log.warning("%s:%d: skipped: %s", source, n, exc)


def replay(config: Config, lines: Iterable[str], source: str = "stream") -> dict[str, Any]:
    engine = Engine(config.rules, config.inventory)
    tickets: dict[str, Ticket] = {}
    notices: list[Notice] = []
    last: datetime | None = None
    for at, item in read_stream(lines, source):
        now = at or last
        if now is None:
            what = f"op {item.kind}" if isinstance(item, Op) else f"event {item.alertname or item.fingerprint}"
            log.warning("%s: skipped %s: it carries no time (observed_at or starts_at) and no line before it "
                        "did", source, what)
            continue
        if last is not None and now < last:
            now = last
        if isinstance(item, Event) and item.observed_at is None:
            item.observed_at = now
        engine.handle(item, now)
        last = now
        changes = engine.drain()
        for tk in changes.tickets:
            tickets[tk.id] = tk
        notices.extend(changes.notices)
    return {
        "tickets": [tk.to_dict() for tk in sorted(tickets.values(), key=lambda t: t.id)],
        "notifications": [n.to_dict() for n in notices],
        "stats": {"unrouted_events": engine.unrouted, "unbound_events": engine.unbound,
                  "open_tickets": len(engine.tickets)},
    }


def run(config: Config, path: Path, out: TextIO) -> int:
    with path.open(encoding="utf-8") as f:
        result = replay(config, f, str(path))
    json.dump(result, out, ensure_ascii=False)
    out.write("\n")
    return 0


__all__ = ["parse_time", "read_stream", "replay", "run"]
