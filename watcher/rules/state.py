"""The engine's state as data: the whole document, the delta since the last commit, and back.

The service keeps the state in the store next to the tickets it produced (alerts, groups and
open tickets as rows of their own, ``engine_parts``; the small rest as one document), and
replay keeps it in memory as its checkpoints; both restore it with ``restore``.  The form is
the one every release wrote: a database written by an earlier release restores, and
forgetting what can no longer matter (``prune``) keeps it from growing without bound.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from watcher.model import EngineDelta, Ticket, TimelineEntry
from watcher.rules import calls, escalation
from watcher.rules.alerts import Alert
from watcher.rules.groups import Group
from watcher.rules.tickets import EARLY_CALLBACK_TTL
from watcher.rules.windows import MaintenanceWindow, SilenceWindow

if TYPE_CHECKING:
    from watcher.rules.engine import Engine

RESOLVED_ALERT_TTL = 6 * 3600.0
UNROUTED_ALERT_TTL = 3600.0
PRUNE_EVERY = 60.0


def snapshot(engine: Engine, prune: bool = True) -> dict[str, Any]:
    """The whole working state as JSON-able data (see ``restore``); ``prune=False`` leaves
    the state exactly as it is (replay's checkpoints must not change what comes next)."""
    if prune:
        prune_state(engine)
    return {
        "version": 1,
        "clock": engine.clock,
        "next_id": engine.next_id,
        "alerts": [a.to_row() for a in engine.alerts.values()],
        "groups": [g.to_row() for g in engine.groups.values()],
        "tickets": [tk.to_dict() for tk in engine.tickets.values()],
        **_rest(engine),
    }


def snapshot_rest(engine: Engine) -> dict[str, Any]:
    """The state without its alerts and groups (see ``delta``)."""
    return {"version": 1, "clock": engine.clock, "next_id": engine.next_id, **_rest(engine)}


def _rest(engine: Engine) -> dict[str, Any]:
    return {
        "maintenances": [m.to_dict() for m in engine.maintenances],
        "silences": [x.to_dict() for x in engine.silences],
        "early_callbacks": engine.early_callbacks,
        "owed": [tk.to_dict() for tk in engine.owed.values()],
        "counters": {"unrouted": engine.unrouted, "unbound": engine.unbound, "silenced": engine.silenced},
        "unbound": engine.unbound_log.rows(),
        "skip_timers": sorted(engine.skip_timers),
    }


def delta(engine: Engine, whole: bool = False, tickets: Iterable[str] = ()) -> EngineDelta:
    """What changed since the last ``delta`` (see ``Engine.delta``)."""
    prune_state(engine)
    doc = snapshot_rest(engine)
    touched_alerts, touched_groups = engine.alerts.take_touched(), engine.groups.take_touched()
    touched_tickets = set(tickets)
    if whole:
        touched_alerts, touched_groups, touched_tickets = set(engine.alerts), set(engine.groups), set(engine.tickets)
    alerts = {fp: (a.to_row() if (a := engine.alerts.peek(fp)) is not None else None) for fp in touched_alerts}
    groups = {gid: (g.to_row() if (g := engine.groups.peek(gid)) is not None else None) for gid in touched_groups}
    open_tickets = {tid: _ticket_doc(engine, tid) for tid in touched_tickets}
    return EngineDelta(doc, {"alerts": alerts, "groups": groups, "tickets": open_tickets}, whole)


class TimelineDocs:
    """Per open ticket, its timeline entries and their JSON forms as the last delta made them
    (see ``_ticket_doc``)."""

    def __init__(self) -> None:
        self._kept: dict[str, tuple[list[TimelineEntry], list[dict[str, Any]]]] = {}


def _ticket_doc(engine: Engine, tid: str) -> dict[str, Any] | None:
    """``tk.to_dict()`` of the open ticket ``tid`` (None when it is not open), its timeline
    entries' JSON forms reused from the last delta where the entry is the same object.

    A busy office's ticket holds hundreds of timeline entries and each commit that touches
    the ticket wrote them all again: formatting their times was most of a commit's work.
    Entries are never changed once on a timeline (a restore makes new ones), and the ``labels``
    an entry's JSON form holds are the entry's own dict, as in ``to_dict``.
    """
    tk = engine.tickets.get(tid)
    if tk is None:
        engine.timeline_docs._kept.pop(tid, None)
        return None
    doc = tk.to_dict(with_timeline=False)
    entries = tk.timeline
    cache = engine.timeline_docs._kept
    kept, docs = cache.get(tid, ((), []))
    same = 0
    for old, new in zip(kept, entries, strict=False):
        if old is not new:
            break
        same += 1
    docs = docs[:same] + [e.to_dict() for e in entries[same:]]
    cache[tid] = (list(entries), docs)
    doc["timeline"] = list(docs)
    return doc


def prune_state(engine: Engine) -> None:
    """Forget what can no longer matter, so the state does not grow without bound: resolved
    alerts after a while, alerts no rule names once they go quiet (a trap that never
    resolves), and callers' early wishes past their time.

    A scan of every alert, so it runs at most once a minute of engine time: what it
    forgets is hours old, and a commit must not cost as much as the state is large."""
    clock = engine.clock
    if clock - engine.pruned_at < PRUNE_EVERY and engine.pruned_at <= clock:
        return
    engine.pruned_at = clock
    horizon = clock - RESOLVED_ALERT_TTL
    quiet = clock - UNROUTED_ALERT_TTL
    route = engine.router.route
    stale = [fp for fp, a in engine.alerts.items()
             if (a.status == "resolved" and a.last < horizon) or (a.last < quiet and not route(fp, a.labels))]
    for fp in stale:
        del engine.alerts[fp]
    if stale:
        engine.summaries.cached.clear()
    for person in [p for p, at in engine.early_callbacks.items() if clock - at > EARLY_CALLBACK_TTL]:
        del engine.early_callbacks[person]
    engine.skip_timers = {x for x in engine.skip_timers if float(x.rsplit("|", 1)[1]) >= clock - 86400}
    calls.prune(engine, clock)


def restore(engine: Engine, s: dict[str, Any]) -> None:
    """The state ``snapshot`` (or an earlier release) wrote, back in ``engine``, timers re-armed
    (the timer heap is not part of the state: it follows from the due times)."""
    engine.clock = float(s.get("clock", 0.0))
    engine.next_id = int(s.get("next_id", 1))
    for row in s.get("alerts", []):
        a = Alert(*row)
        engine.alerts[a.fp] = a
        if a.status == "firing" and a.expires is not None:
            engine.schedule(a.expires, "expire", a.fp)
    for gd in s.get("groups", []):
        kind = engine.kinds.get(gd.get("rule"))
        if kind is None:  # its rule is gone (a reload dropped it)
            continue
        g = Group.from_row(gd, kind)
        engine.groups[g.gid] = g
        if g.due is not None:
            engine.schedule(g.due, "group", g.gid)
    for td in s.get("tickets", []):
        restored = Ticket.from_dict(td)
        engine.tickets[restored.id] = restored
        if restored.react_by is not None and restored.escalated_at is None and restored.status == "open":
            engine.schedule(restored.react_by.timestamp(), "escalate", restored.id)
        escalation.restore(engine, restored)
    for td in s.get("owed", []):
        owed = Ticket.from_dict(td)
        engine.owed[owed.id] = owed
    engine.maintenances = [MaintenanceWindow.from_dict(m) for m in s.get("maintenances", [])]
    engine.silences = [SilenceWindow.from_dict(x) for x in s.get("silences", [])]
    engine.early_callbacks = dict(s.get("early_callbacks", {}))
    c = s.get("counters", {})
    engine.unrouted, engine.unbound = int(c.get("unrouted", 0)), int(c.get("unbound", 0))
    engine.silenced = int(c.get("silenced", 0))
    engine.unbound_log.restore(list(s.get("unbound", [])))
    engine.skip_timers = set(s.get("skip_timers", []))
