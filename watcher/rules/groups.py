"""Groups: one rule applied to one group key, the unit that becomes one ticket.

Every kind of rule shares one state machine, here: ``idle`` -> ``pending`` (the condition
holds, waiting for its hold) -> ``open`` (a ticket) -> ``resolving`` (waiting for the
resolve hold; a relapse is the same incident) -> ``idle``; ``suppressed`` while another
rule's incident explains it (its evidence goes into that ticket); ``closed`` after an
agent resolved the ticket while the condition still holds.  Flapping is detected here too.
What makes the condition true, and when a pending group is due, is the rule kind's
(``watcher.rules.kinds``); what a ticket holds is ``watcher.rules.tickets``'.

Functions over the engine's state (``engine``), as the other modules of this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from watcher.model import TimelineEntry
from watcher.rules import tickets
from watcher.rules.kinds import GroupState, NoState

if TYPE_CHECKING:
    from watcher.config.rules import Rule
    from watcher.rules.alerts import Alert
    from watcher.rules.engine import Engine
    from watcher.rules.kinds import RuleKind

ACTIVE = ("pending", "open", "resolving")
TIMELINE_CAP = 300
_COMMON = ("gid", "rule", "key", "labels", "state", "due", "since", "ticket", "members", "symptoms", "flaps", "cond",
           "parent", "events", "pending_timeline", "flapping", "detail")


class PendingEntry(TypedDict):
    """An event noted for a group's ticket before the ticket opens (a ``TimelineEntry`` then),
    kept in the group's stored row; ``at`` in seconds since the epoch."""

    at: float
    what: str
    role: str  # cause | symptom | info
    fingerprint: str
    labels: dict[str, str]


class Bounce(TypedDict, total=False):
    """What a bounce said (watcher.rules.mail), for the notice that names the lost messages."""

    recipient: str
    sender: str
    subject: str
    direction: str
    diagnostic: str
    at: str  # RFC 3339


class GroupDetail(TypedDict, total=False):
    """What a group notes for its ticket's details, kept in its stored row: a mail group's
    bounces, a forecast group's last figures (watcher.rules.kinds.forecast)."""

    bounced: list[Bounce]
    reported_size: float  # the share's size as its exporter reported it, in bytes
    used_pct: float
    size_bytes: int
    used_bytes: int
    days_to_full: float
    reason: str


@dataclass(slots=True)
class Group:
    """One rule applied to one group key; ``kind_state`` is what the rule's kind keeps of it."""

    gid: str
    rule: str
    key: list[str]
    labels: dict[str, str]
    state: str = "idle"  # idle | pending | open | resolving | suppressed | closed
    due: float | None = None
    since: float | None = None
    ticket: str | None = None
    members: dict[str, int] = field(default_factory=dict)  # fp -> signal index
    symptoms: list[str] = field(default_factory=list)
    flaps: list[float] = field(default_factory=list)
    cond: bool = False
    parent: str | None = None
    events: int = 0
    pending_timeline: list[PendingEntry] = field(default_factory=list)
    flapping: bool = False
    detail: GroupDetail = field(default_factory=lambda: GroupDetail())
    kind_state: GroupState = field(default_factory=NoState)

    def to_row(self) -> dict[str, Any]:
        """The group as stored: the common keys and the kind's own, side by side."""
        return {**{k: getattr(self, k) for k in _COMMON}, **self.kind_state.to_row()}

    @staticmethod
    def from_row(row: dict[str, Any], kind: RuleKind[object]) -> Group:
        """The inverse of ``to_row``; also reads the rows of earlier releases (every kind's keys)."""
        return Group(**{k: row[k] for k in _COMMON if k in row}, kind_state=kind.state_from_row(row))


@dataclass(slots=True)
class MemberSummary:
    """What a group's condition needs of its firing members for one signal, kept up to date
    as members join, so that an office with a thousand failing probes costs the same per
    event as one with two.  Derived, never stored: a member leaving, changing its start or
    its signal drops the summary, and the next condition check sums the members again."""

    count: int = 0
    first: float = math.inf
    last: float = -math.inf
    instances: set[str] = field(default_factory=set)

    def add(self, a: Alert) -> None:
        self.count += 1
        self.first = min(self.first, a.start)
        self.last = max(self.last, a.start)
        self.instances.add(a.labels.get("instance", a.fp))


class Summaries:
    """The member summaries of the groups, per signal index, computed when first asked for."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cached: dict[str, dict[int, MemberSummary]] = {}

    def of(self, g: Group) -> dict[int, MemberSummary]:
        sums = self.cached.get(g.gid)
        if sums is None:
            sums = self.cached[g.gid] = self.aggregate(g)
        return sums

    def aggregate(self, g: Group) -> dict[int, MemberSummary]:
        """The firing members of a group summed up per signal, from scratch."""
        out: dict[int, MemberSummary] = {}
        peek = self.engine.alerts.peek  # reads only: these alerts are not changed here
        for fp, idx in g.members.items():
            a = peek(fp)
            if a is not None and a.status == "firing":
                out.setdefault(idx, MemberSummary()).add(a)
        return out

    def add(self, gid: str, idx: int, a: Alert) -> None:
        """A new firing member joins the group: its summary grows by one, when there is one."""
        sums = self.cached.get(gid)
        if sums is not None:
            sums.setdefault(idx, MemberSummary()).add(a)

    def drop(self, gid: str) -> None:
        self.cached.pop(gid, None)


def group(engine: Engine, rule: Rule, gid: str, labels: dict[str, str]) -> Group:
    """The group ``gid`` of ``rule``, made when it does not exist yet."""
    g = engine.groups.get(gid)
    if g is None:
        keep = {k: labels[k] for k in ("client", "site", "host", "mailbox", "share", "person", "alertname",
                                       rule.entity, *rule.kept_labels) if k in labels}
        g = Group(gid, rule.name, [labels.get(k, "") for k in rule.group_by], keep,
                  kind_state=engine.kinds[rule.name].new_state())
        engine.groups[gid] = g
    return g


def symptom(engine: Engine, g: Group, fp: str, entry: PendingEntry | None) -> None:
    if g.state not in ACTIVE:
        g.events = 0
        return
    if fp not in g.symptoms:
        g.symptoms.append(fp)
    note(engine, g, entry, role="symptom")


def note(engine: Engine, g: Group, entry: PendingEntry | None, role: str | None = None) -> None:
    """Put an event on the group's ticket timeline (or keep it until the ticket opens)."""
    tk = engine.tickets.get(g.ticket) if g.ticket else None
    if tk is not None:
        tk.event_count = max(tk.event_count, 0) + 1
        if entry is not None and len(tk.timeline) < TIMELINE_CAP:
            tk.timeline.append(TimelineEntry(tickets.dt(entry["at"]), entry["what"], role or entry["role"],
                                             entry["fingerprint"], entry["labels"]))
        engine.noted(tk)
    elif entry is not None and len(g.pending_timeline) < TIMELINE_CAP:
        kept = entry.copy()
        kept["role"] = role or entry["role"]
        g.pending_timeline.append(kept)


def evaluate(engine: Engine, g: Group, t: float) -> None:
    """The group's condition looked at again at ``t``: move the state machine on."""
    rule = engine.rule_of[g.rule]
    kind = engine.kinds[g.rule]
    cond, since = kind.condition(engine, g, t)
    if cond != g.cond:
        g.flaps.append(t)
        g.cond = cond
    flapping = rule.flapping
    if flapping:
        g.flaps = [f for f in g.flaps if f >= t - flapping.window]
    if g.state == "idle":
        if cond:
            g.state = "pending"
            set_due(engine, g, kind.hold_due(g, since, t))
        else:
            forget_if_idle(engine, g)
    elif g.state == "pending":
        if not cond:
            if flapping and len(g.flaps) >= flapping.changes:
                g.flapping = True
                tickets.open_ticket(engine, g, t)
                g.state = "resolving"
                set_due(engine, g, t + max(rule.resolve_after, flapping.stable))
                return
            g.state = "idle"
            g.due = None
            g.pending_timeline = []
            g.symptoms = []
            g.events = 0
        else:
            set_due(engine, g, kind.hold_due(g, since, t))
    elif g.state == "open":
        if not cond:
            g.state = "resolving"
            stable = flapping.stable if (flapping and g.flapping) else 0.0
            set_due(engine, g, t + max(rule.resolve_after, stable))
        elif (due := kind.open_due(g, t)) is not None:
            set_due(engine, g, due)
        if flapping and len(g.flaps) >= flapping.changes and not g.flapping:
            mark_flapping(engine, g)
    elif g.state == "resolving":
        if cond:
            g.state = "open"
            g.due = None
            if flapping and len(g.flaps) >= flapping.changes and not g.flapping:
                mark_flapping(engine, g)
            if (due := kind.open_due(g, t)) is not None:
                set_due(engine, g, due)
    elif g.state == "suppressed":
        if not cond:
            g.state = "idle"
            g.due = None
            g.parent = None
            g.events = 0
    elif g.state == "closed" and not cond:
        g.state = "idle"
        g.ticket = None
        _look_again(engine, g, t)


def on_due(engine: Engine, g: Group, t: float) -> None:
    """The group's timer fired (its hold, resolve hold, quiet time or suppression check)."""
    rule = engine.rule_of[g.rule]
    kind = engine.kinds[g.rule]
    if g.state == "pending":
        cond, _ = kind.condition(engine, g, t)
        if not cond and not kind.opens_when_due:
            evaluate(engine, g, t)
            return
        parent = active_parent(engine, rule, g)
        if parent is not None:
            g.state = "suppressed"
            g.parent = parent.gid
            parent.events += g.events
            for entry in g.pending_timeline:
                note(engine, parent, entry, role="symptom")
            g.pending_timeline = []
            set_due(engine, g, t + _recheck(rule))
            return
        tickets.open_ticket(engine, g, t)
        g.state = "open"
        evaluate(engine, g, t)
    elif g.state == "resolving":
        cond, _ = kind.condition(engine, g, t)
        if cond:
            g.state = "open"
            return
        resolve(engine, g, t)
    elif g.state == "open" and kind.open_due(g, t) is not None:
        evaluate(engine, g, t)  # an open group's due of its kind (threshold: the quiet time)
    elif g.state == "idle":
        evaluate(engine, g, t)  # an idle group's due of its kind (``idle_due``)
    elif g.state == "suppressed":
        if active_parent(engine, rule, g) is not None:
            set_due(engine, g, t + _recheck(rule))
            return
        g.state = "idle"
        g.parent = None
        g.cond = False
        evaluate(engine, g, t)


def resolve(engine: Engine, g: Group, t: float, by: str | None = None) -> None:
    """The group's incident is over (``by``: an agent resolved it; the group stays closed
    until its condition clears)."""
    tk = engine.tickets.pop(g.ticket, None) if g.ticket else None
    g.state = "idle" if by is None else "closed"
    g.due = None
    g.flapping = False
    g.symptoms = []
    g.events = 0
    if by is None:
        g.ticket = None
    if tk is None:
        return
    tickets.close(engine, tk, t, by)
    forget_if_idle(engine, g)
    if by is None:
        _look_again(engine, g, t)


def _look_again(engine: Engine, g: Group, t: float) -> None:
    """A group that has just gone idle gets the timer its kind asks for (``idle_due``)."""
    due = engine.kinds[g.rule].idle_due(g, t)
    if due is not None and engine.groups.peek(g.gid) is g:
        set_due(engine, g, due)


def _recheck(rule: Rule) -> float:
    """How long a suppressed group waits before it asks again whether its parent is active."""
    return max(60.0, rule.signals[0].hold if rule.signals else 60.0)


def active_parent(engine: Engine, rule: Rule, g: Group) -> Group | None:
    """The group of a ``symptom_of`` rule, for the same labels, that is active now."""
    for name in rule.symptom_of:
        pgid = engine.router.gid(engine.rule_of[name], g.labels)
        pg = engine.groups.get(pgid) if pgid else None
        if pg is not None and pg.state in ACTIVE:
            return pg
    return None


def mark_flapping(engine: Engine, g: Group) -> None:
    g.flapping = True
    tk = engine.tickets.get(g.ticket) if g.ticket else None
    if tk is not None:
        tk.flapping = True
        engine.changed(tk)


def set_due(engine: Engine, g: Group, due: float) -> None:
    if g.due is None or abs(g.due - due) > 1e-6:
        g.due = due
        engine.schedule(due, "group", g.gid)


def forget_if_idle(engine: Engine, g: Group) -> None:
    rule = engine.rule_of[g.rule]
    if g.state == "idle" and not g.members and not engine.kinds[g.rule].keep_when_idle(g) \
            and not (rule.flapping and g.flaps):
        engine.groups.pop(g.gid, None)
        engine.summaries.drop(g.gid)
