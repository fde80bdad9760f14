"""The one way events enter the inbox: ``submit_events``.

Every source goes through here, the HTTP ingest routes and the built-in collectors alike:
collectors / HTTP -> ``submit_events`` -> inbox (group commit) -> engine.  It builds the
inbox rows, lets the feed observer see the events (a re-send still shows that its sender is
alive), hands the rows to the ``Ingestor`` and counts what was stored and what repeated an
occurrence.  The engine worker's warm cache is filled by the Ingestor after the commit, not
here, so nothing on this path calls back into the engine.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from watcher.collectors.formats import metric_sources
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.pipeline import Ingestor
from watcher.runtime import Observe
from watcher.store import InboxRow

NO_WINDOW = ("", 0.0)

COLLECTOR_SOURCES = frozenset({"snmp", "snmp_poll", "probe", "poller", "disk", "mail", "mailbox", "certificate"})
"""The ``source`` of the built-in collectors' events."""

KNOWN_SOURCES = COLLECTOR_SOURCES | metric_sources()
"""Sources with a metric series of their own: the collectors' and the formats' (their table)."""


def source_label(source: str) -> str:
    """A metric label for an event's source: senders choose ``source`` freely, so only the
    known ones get a series of their own (one per sender would be unbounded)."""
    return source if source in KNOWN_SOURCES else "other"


@dataclass(frozen=True, slots=True)
class Submitted:
    """What became of the events of one submission."""

    accepted: int  # new occurrences, now durable in the inbox
    duplicates: int  # repeats of an occurrence already stored (not stored again)


async def submit_events(ingestor: Ingestor, events: list[Event], *, metrics: Metrics,
                        observe: Observe | None = None,
                        windows: Sequence[tuple[str, float]] | None = None) -> Submitted:
    """Store ``events`` durably in the inbox; returns once they are committed.

    ``windows`` (one ``(window_key, seconds)`` per event, see ``watcher.api.retries``) makes
    a retried request a duplicate.  An event already known committed by this process and
    without a window is answered as a duplicate without touching the store: that is what
    makes a storm of re-sends cheap.  Raises what the store raises when the commit fails;
    nothing was stored then.
    """
    if not events:
        return Submitted(0, 0)
    received = time.time()
    now = datetime.fromtimestamp(received, UTC)
    rows = []
    fresh = []
    known = ingestor.committed
    duplicates: Counter[str] = Counter()
    for ev, (window_key, window) in zip(events, windows or [NO_WINDOW] * len(events), strict=True):
        if ev.observed_at is None:
            ev.observed_at = now
        key = ev.occurrence_key
        if key in known and not window_key:  # a re-send of an occurrence already durable: nothing to store
            duplicates[ev.source] += 1
            continue
        rows.append(InboxRow("event", ev.source[:64], key, received, orjson.dumps(ev.to_dict()).decode(),
                             window_key, window))
        fresh.append(ev)
    if observe is not None:
        observe(events, received)
    received_by: Counter[str] = Counter()
    if rows:
        seqs = await ingestor.submit(rows, fresh)
        for ev, seq in zip(fresh, seqs, strict=True):
            (received_by if seq is not None else duplicates)[ev.source] += 1
    for counts, metric in ((received_by, metrics.events_received), (duplicates, metrics.events_duplicate)):
        for source, n in counts.items():
            metric.labels(source_label(source)).inc(n)
    accepted = sum(received_by.values())
    return Submitted(accepted, len(events) - accepted)
