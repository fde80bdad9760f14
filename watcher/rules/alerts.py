"""Events in: alerts as the engine knows them, and metric samples, handed to their groups.

An alert identity (its fingerprint) is firing or resolved; a new ``starts_at`` is a new
occurrence, a re-send of the same one is a duplicate.  Each event is bound to the inventory,
counted when it names something unknown, routed (``watcher.rules.routing``) to the groups
of the rules that name it, and put on their timelines; then each group's condition is
looked at again (``watcher.rules.groups``).  Muting silences stop it before any group.
"""

from __future__ import annotations

from dataclasses import dataclass
from sys import intern
from typing import TYPE_CHECKING, Any

from watcher.model import MAX_VALUE, EventError
from watcher.rules import groups, mail
from watcher.rules.binding import bind
from watcher.rules.unbound import unknown_name, what_it_names

if TYPE_CHECKING:
    from watcher.config.rules import Rule, Signal
    from watcher.model import Event
    from watcher.rules.engine import Engine
    from watcher.rules.groups import PendingEntry


@dataclass(slots=True)
class Alert:
    """One alert identity as the engine knows it."""

    fp: str
    labels: dict[str, str]
    status: str
    start: float
    last: float
    expires: float | None = None
    end: float | None = None

    def to_row(self) -> list[Any]:
        return [self.fp, self.labels, self.status, self.start, self.last, self.expires, self.end]


def _shared(labels: dict[str, str]) -> dict[str, str]:
    """Labels as the engine keeps them for a long time: one string object per distinct value.

    A storm of alerts repeats the same few values (``alertname``, ``severity``, a client's
    id) in every alert; held as separate objects they would cost more than the alert itself.
    """
    return {intern(k): intern(v) for k, v in labels.items()}


def unbound(engine: Engine, ev: Event, labels: dict[str, str], t: float) -> bool:
    """Count and list an event that names something the inventory lacks, or binds to no
    client at all.  True if it names something unknown: it must then touch nothing (an
    event without any client is still recorded, and can reach no group anyway)."""
    miss = unknown_name(ev.labels, labels, engine.inv)
    if miss is None and labels.get("client"):
        return False
    engine.unbound += 1
    key, value = miss or what_it_names(ev.labels)
    engine.unbound_log.record(ev.source, key, value, t)
    return miss is not None


def handle_alert(engine: Engine, ev: Event, t: float) -> None:
    labels = bind(ev.labels, engine.inv)
    if unbound(engine, ev, labels, t):
        return
    fp = ev.fingerprint
    start = min(ev.start.timestamp(), t)
    a = engine.alerts.get(fp)
    routes = engine.router.route(fp, labels)
    if not routes:
        engine.unrouted += 1
    resolved = ev.status == "resolved" or (ev.ends_at is not None and ev.ends_at.timestamp() <= t)
    change = "duplicate"
    if resolved:
        if a is not None and a.status == "firing":
            resolve_alert(engine, a, ev.ends_at.timestamp() if ev.ends_at else t, t)
            change = "resolved"
        for rule, role, idx in routes:
            if role == "resolver":
                _resolve_by(engine, rule, rule.signals[idx], labels, t)
                change = "resolved"
        if a is None:
            engine.alerts[fp] = Alert(fp, _shared(labels), "resolved", start, t, None, t)
    else:
        expires = ev.ends_at.timestamp() if ev.ends_at is not None else None
        if a is None or (a.status == "resolved" and start > a.start + 0.5) or \
                (a.status == "firing" and start > a.start + 0.5):
            change = "new" if a is None or a.status == "resolved" else "occurrence"
            if a is None:
                a = Alert(fp, _shared(labels), "firing", start, t, expires)
                engine.alerts[fp] = a
            else:
                a.status, a.start, a.last, a.expires, a.end, a.labels = "firing", start, t, expires, None, labels
        elif a.status == "firing":
            a.last = t
            if expires is not None and (a.expires is None or expires > a.expires):
                a.expires = expires
        if a.status == "firing" and a.expires is not None:
            engine.schedule(a.expires, "expire", fp)
    if engine.silence(labels, t, mute=True) is not None:
        engine.silenced += 1
        return
    summaries = engine.summaries
    for rule, role, idx in routes:
        if role == "resolver":
            continue
        gid = engine.router.gid(rule, labels)
        if gid is None:
            continue
        g = groups.group(engine, rule, gid, labels)
        g.events += 1
        if rule.category == "mail":
            mail.note_event(g, ev, engine.tickets.get(g.ticket or ""))
        entry: PendingEntry | None = {"at": t, "what": f"{ev.alertname or 'event'} {ev.status}", "role": role,
                 "fingerprint": fp, "labels": ev.labels} if change != "duplicate" else None
        if role == "symptom":
            groups.symptom(engine, g, fp, entry)
            continue
        cur = engine.alerts.get(fp)
        if cur is not None and cur.status == "firing":
            was = g.members.get(fp)
            g.members[fp] = idx
            if was is None:
                summaries.add(g.gid, idx, cur)
            elif was != idx or change != "duplicate":
                summaries.drop(g.gid)
            engine.kinds[rule.name].on_firing_member(g, change, start, t)
        elif g.members.pop(fp, None) is not None:
            summaries.drop(g.gid)
        groups.note(engine, g, entry)
        if g.state == "suppressed" and g.parent:
            parent = engine.groups.get(g.parent)
            if parent is not None:
                parent.events += 1
                groups.note(engine, parent, entry, role="symptom")
        groups.evaluate(engine, g, t)


def resolve_alert(engine: Engine, a: Alert, end: float, t: float) -> None:
    """The alert is over (resolved, or its ``ends_at`` passed): its groups look again."""
    a.status, a.end, a.last, a.expires = "resolved", end, t, None
    for rule, role, _ in engine.router.route(a.fp, a.labels):
        if role != "signal":
            continue
        gid = engine.router.gid(rule, a.labels)
        g = engine.groups.get(gid) if gid else None
        if g is not None and a.fp in g.members:
            del g.members[a.fp]
            engine.summaries.drop(g.gid)
            groups.evaluate(engine, g, t)


def _resolve_by(engine: Engine, rule: Rule, sig: Signal, labels: dict[str, str], t: float) -> None:
    """A ``resolved_by`` alert (LinkUp) clears the group's members it names (LinkDown, same port)."""
    gid = engine.router.gid(rule, labels)
    g = engine.groups.get(gid) if gid else None
    if g is None:
        return
    for fp in list(g.members):
        a = engine.alerts.get(fp)
        if a is None or a.status != "firing" or not sig.matches(a.labels):
            continue
        if all(a.labels.get(k) == labels.get(k) for k in sig.resolved_same):
            resolve_alert(engine, a, t, t)


def handle_sample(engine: Engine, ev: Event, t: float) -> None:
    """A metric sample, for the rules that read its metric (forecasts)."""
    value = float(ev.value or 0.0)
    if not -MAX_VALUE <= value <= MAX_VALUE:  # NaN fails every comparison
        raise EventError(f"value: {value!r} is not a finite number within ±{MAX_VALUE:g}")
    labels = bind(ev.labels, engine.inv)
    router, kinds = engine.router, engine.kinds
    routes = router.metric_routes(labels.get("metric", ""))
    if routes and unbound(engine, ev, labels, t):
        return
    for rule, role in routes:
        gid = router.gid(rule, labels)
        if gid is None:
            engine.unbound += 1
            continue
        g = groups.group(engine, rule, gid, labels)
        if kinds[rule.name].take_sample(engine, g, role, ev, labels, value, t):
            g.events += 1
            if g.ticket:
                groups.note(engine, g, None)
            groups.evaluate(engine, g, t)
