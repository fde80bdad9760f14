"""``watcher replay``: the service's engine on a recorded stream, on virtual time.

The clock is each line's ``observed_at`` (an op's ``at``) and never moves backwards; timers
fire at their own due times between lines, exactly as they would live.  Nothing is stored
and nothing is delivered: the result is one JSON document of tickets and notifications.

Nothing in a line can end the replay.  A line that cannot be read is reported (on stderr,
through logging, with its number and the reason) and skipped.  A line whose handling fails
is set aside as the service does it: the engine goes back to its last checkpoint (a
snapshot taken every ``CHECKPOINT_EVERY`` lines, the replay's equivalent of the service's
commit) and runs the lines since then again without it, so the result is as if the line had
never been there.  A timer that fails is set aside the same way.  ``stats`` says how many
lines were skipped and set aside.

A line whose ``observed_at`` jumps more than ``MAX_JUMP`` ahead of both the clock and the
next line is a sender's broken clock, not the stream's: it is handled at the current time
instead of moving every timer a long way forward.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson

from watcher.config import Config
from watcher.model import Event, EventError, Notice, Op, Ticket, format_time, op_from_dict, parse_time
from watcher.rules import Engine
from watcher.rules.engine import TimerError

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 10000
MAX_JUMP = 86400.0

_READ_ERRORS = (ValueError, EventError, OverflowError, TypeError, RecursionError, KeyError)


def _parse(text: str) -> Event | Op:
    raw = json.loads(text)
    if isinstance(raw, dict) and "op" in raw:
        return op_from_dict(raw)
    return Event.from_dict(raw)


def _lines(lines: Iterable[str | bytes], source: str, skipped: list[int] | None
           ) -> Iterator[tuple[int, datetime | None, Event | Op, str]]:
    for n, line in enumerate(lines, 1):
        try:
            text = line.decode("utf-8") if isinstance(line, bytes) else line
            if not text.strip():
                continue
            item = _parse(text)
            yield n, (item.at if isinstance(item, Op) else item.observed_at or item.starts_at), item, text
        except _READ_ERRORS as exc:
            log.warning("%s:%d: skipped, cannot be read: %s", source, n, str(exc)[:300])
            if skipped is not None:
                skipped.append(n)


def read_stream(lines: Iterable[str | bytes], source: str = "stream",
                skipped: list[int] | None = None) -> Iterator[tuple[int, datetime | None, Event | Op]]:
    """(line number, time, item) for each line; a bad line is logged with its number and
    skipped (and its number appended to ``skipped``)."""
    for n, at, item, _ in _lines(lines, source, skipped):
        yield n, at, item


def _timed(items: Iterator[tuple[int, datetime | None, Event | Op, str]], source: str
           ) -> Iterator[tuple[int, datetime, Event | Op, str]]:
    """The replay clock for each item: its own time, never backwards, ignoring lone jumps."""
    jump = timedelta(seconds=MAX_JUMP)
    last: datetime | None = None
    pending = next(items, None)
    while pending is not None:
        following = next(items, None)
        n, t, item, text = pending
        if t is not None and (last is None or t > last + jump):
            nxt = following[1] if following is not None else None
            if (last is not None or nxt is not None) and (nxt is None or abs(t - nxt) > jump):
                log.warning("%s:%d: its time %s is far from the stream's; handled at the stream's time",
                            source, n, t.isoformat())
                t = last if last is not None else nxt
        if t is None or (last is not None and t < last):
            t = last
        if t is not None:
            last = t
            yield n, t, item, text
        else:
            what = f"op {item.kind}" if isinstance(item, Op) else f"event {item.alertname or item.fingerprint}"
            log.warning("%s:%d: skipped %s: it carries no time (observed_at or starts_at) and no line before "
                        "it did", source, n, what)
        pending = following


def _when(ts: float) -> str | None:
    return format_time(datetime.fromtimestamp(ts, UTC))


class _Failed(Exception):
    """An item or a timer was set aside: go back to the checkpoint."""


class Replayer:
    """The engine plus what the replay collects, with the service's way of setting items aside."""

    def __init__(self, config: Config, source: str = "stream") -> None:
        self.config = config
        self.source = source
        self.engine = Engine(config.rules, config.inventory)
        self.tickets: dict[str, Ticket] = {}
        self.notices: list[Notice] = []
        self.set_aside: dict[int, str] = {}  # line number -> reason
        self.skip_timers: set[str] = set()
        self.warned: set[int] = set()
        # the lines since the checkpoint, as text: parsed objects kept alive would cost the
        # garbage collector more than parsing them again on the rare way back
        self.since: list[tuple[int, datetime, str]] = []
        self._ck: tuple[bytes, set[str], int] = self._take()

    def _take(self) -> tuple[bytes, set[str], int]:
        return orjson.dumps(self.engine.snapshot(prune=False)), set(self.tickets), len(self.notices)

    def feed(self, n: int, now: datetime, item: Event | Op, text: str) -> None:
        """One line (``_handle`` inlined: this is replay's hot loop)."""
        since = self.since
        since.append((n, now, text))
        if isinstance(item, Event) and item.observed_at is None:
            item.observed_at = now
        try:
            result = self.engine.handle(item, now)
        except TimerError as exc:  # back to the checkpoint; the line itself runs again without the timer
            log.warning("%s:%d: a timer failed and is set aside: %s", self.source, n, exc)
            self.skip_timers.add(exc.ident)
            self._rebuild()
        except Exception as exc:
            self._set_aside(n, f"{exc.__class__.__name__}: {exc}")
            self._rebuild()
        else:
            if result and result.get("skipped") and n not in self.warned:
                self.warned.add(n)
                log.warning("%s:%d: %s op skipped: %s", self.source, n, getattr(item, "kind", "?"),
                            result["skipped"])
            changes = self.engine.drain()
            tickets = self.tickets
            for tk in changes.tickets:
                tickets[tk.id] = tk
            if changes.notices:
                self.notices.extend(changes.notices)
        if len(since) >= CHECKPOINT_EVERY:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Keep the engine's state to go back to; a state that cannot be kept (the service could
        not store it) is traced to its line by running the lines since the last one singly."""
        try:
            self._ck = self._take()
            self.since = []
            return
        except Exception as exc:
            log.error("%s: the engine's state cannot be kept (%s); finding the line that causes it",
                      self.source, exc)
        items, self.since = self.since, []
        self._restore()
        for n, now, text in items:
            if n in self.set_aside:
                continue
            self.since = [(n, now, text)]
            try:
                self._handle(n, now, _parse(text))
                self._ck = self._take()
                continue
            except _Failed:
                pass
            except Exception as exc:
                self._set_aside(n, f"its result cannot be kept: {exc.__class__.__name__}: {exc}")
            self._rebuild()
            self._ck = self._take()
        self.since = []

    def _handle(self, n: int, now: datetime, item: Event | Op) -> None:
        if isinstance(item, Event) and item.observed_at is None:
            item.observed_at = now
        try:
            result = self.engine.handle(item, now)
        except TimerError as exc:
            log.warning("%s:%d: a timer failed and is set aside: %s", self.source, n, exc)
            self.skip_timers.add(exc.ident)
            raise _Failed from exc
        except Exception as exc:
            self._set_aside(n, f"{exc.__class__.__name__}: {exc}")
            raise _Failed from exc
        if result.get("skipped") and n not in self.warned:
            self.warned.add(n)
            log.warning("%s:%d: %s op skipped: %s", self.source, n, getattr(item, "kind", "?"), result["skipped"])
        self._collect()

    def _set_aside(self, n: int, reason: str) -> None:
        log.warning("%s:%d: set aside, its handling failed: %s", self.source, n, reason[:300])
        self.set_aside[n] = reason

    def _collect(self) -> None:
        changes = self.engine.drain()
        for tk in changes.tickets:
            self.tickets[tk.id] = tk
        self.notices.extend(changes.notices)

    def _restore(self) -> None:
        state, ids, count = self._ck
        self.engine = Engine(self.config.rules, self.config.inventory, orjson.loads(state))
        self.engine.skip_timers |= self.skip_timers
        # tickets resolved before the checkpoint never change again; open ones come back from the state
        self.tickets = {tid: self.engine.tickets.get(tid) or self.tickets[tid] for tid in ids}
        del self.notices[count:]

    def _rebuild(self) -> None:
        """Back to the checkpoint, and every line since then again but those set aside."""
        while True:
            self._restore()
            try:
                for n, now, text in self.since:
                    if n not in self.set_aside:
                        self._handle(n, now, _parse(text))
                return
            except _Failed:
                continue


def replay(config: Config, lines: Iterable[str | bytes], source: str = "stream") -> dict[str, Any]:
    skipped: list[int] = []
    r = Replayer(config, source)
    for n, now, item, text in _timed(_lines(lines, source, skipped), source):
        r.feed(n, now, item, text)
    engine = r.engine
    if skipped or r.set_aside:
        log.warning("%s: %d lines skipped (cannot be read), %d set aside (handling failed)", source,
                    len(skipped), len(r.set_aside))
    return {
        "tickets": [tk.to_dict() for tk in sorted(r.tickets.values(), key=lambda t: t.id)],
        "notifications": [n.to_dict() for n in r.notices],
        "stats": {"unrouted_events": engine.unrouted, "unbound_events": engine.unbound,
                  "open_tickets": len(engine.tickets), "skipped_lines": len(skipped),
                  "set_aside_lines": len(r.set_aside),
                  "unbound": [{"source": e.source, "label": e.key, "value": e.value, "count": e.count,
                               "first_seen": _when(e.first), "last_seen": _when(e.last)}
                              for e in engine.unbound_log.entries.values()]},
    }


def run(config: Config, path: Path, out: TextIO) -> int:
    """0 whatever the lines hold; an unreadable file raises OSError (the CLI says so and exits 2)."""
    with path.open("rb") as f:
        result = replay(config, f, str(path))
    json.dump(result, out, ensure_ascii=False)
    out.write("\n")
    return 0


__all__ = ["Replayer", "parse_time", "read_stream", "replay", "run"]
