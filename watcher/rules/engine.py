"""The correlation engine: one incident is one ticket, however many signals describe it.

Pure by design: ``handle(item, now)`` and ``advance(now)`` take events, operations and the
current time and change only the engine's own state; ``drain()`` hands over the tickets
that changed and the notices owed.  No clock is read and nothing is stored here, so the
service (wall clock, store) and ``watcher replay`` (virtual time, memory) run the same
code and get the same tickets.

Timers (holds, resolve holds, escalations, expiries) fire at their exact due time, not at
the time of the next event, so a ticket opens when its hold expires even if no further
signal arrives.  The whole state is a JSON document (``snapshot``/``restore``), so the
service can keep it in the store next to the tickets it produced.
"""

from __future__ import annotations

import heapq
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from sys import intern
from typing import Any

from watcher.config.inventory import Inventory
from watcher.config.rules import SEVERITIES, Rule, Rules, Signal
from watcher.model import (
    MAX_VALUE,
    Callback,
    EngineDelta,
    Event,
    EventError,
    Notice,
    NotificationKind,
    NotificationRecord,
    Op,
    OpBase,
    Ticket,
    TimelineEntry,
    format_time,
)
from watcher.rules import advice, calls, escalation, forecast, mail, office, ops
from watcher.rules.binding import bind
from watcher.rules.impact import affected
from watcher.rules.tracked import TrackedDict
from watcher.rules.unbound import UnboundLog, unknown_name, what_it_names
from watcher.rules.windows import MaintenanceWindow, SilenceWindow, window_id

REACT_HOURS = {"standard": 6.0, "gold": 4.0, "platinum": 2.0}
ADMIN_HOURS = {"standard": (8.0, 24.0), "gold": (4.0, 12.0), "platinum": (2.0, 8.0)}
ACTIVE = ("pending", "open", "resolving")
TIMELINE_CAP = 300
RESOLVED_ALERT_TTL = 6 * 3600.0
EARLY_CALLBACK_TTL = 15 * 60.0
UNROUTED_ALERT_TTL = 3600.0
PRUNE_EVERY = 60.0

_DEFAULT_TITLES = {
    "internet": {"pl": "Brak dostępu do internetu: {site_name}", "en": "Internet outage: {site_name}"},
    "host": {"pl": "Urządzenie nie odpowiada: {host}", "en": "Host not answering: {host}"},
    "disk": {"pl": "Kończy się miejsce: {share_name}", "en": "Running out of space: {share_name}"},
    "mail": {"pl": "Problem z pocztą: {mailbox}", "en": "Mail problem: {mailbox}"},
    "other": {"pl": "{alertname}: {client_name}", "en": "{alertname}: {client_name}"},
}


def _shared(labels: dict[str, str]) -> dict[str, str]:
    """Labels as the engine keeps them for a long time: one string object per distinct value.

    A storm of alerts repeats the same few values (``alertname``, ``severity``, a client's
    id) in every alert; held as separate objects they would cost more than the alert itself.
    """
    return {intern(k): intern(v) for k, v in labels.items()}


def _ts(dt: datetime) -> float:
    return dt.timestamp()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _size(text: str | None) -> float | None:
    """A size an exporter reported in an annotation, if it is a usable number of bytes."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and 0 < value <= MAX_VALUE else None


class TimerError(Exception):
    """A timer (hold, resolve hold, escalation, expiry) failed: the caller sets it aside."""

    def __init__(self, kind: str, key: str, due: float, cause: BaseException) -> None:
        super().__init__(f"timer {kind} {key} due {due}: {cause.__class__.__name__}: {cause}")
        self.kind, self.key, self.due = kind, key, due

    @property
    def ident(self) -> str:
        return timer_ident(self.kind, self.key, self.due)


def timer_ident(kind: str, key: str, due: float) -> str:
    return f"{kind}|{key}|{due:.3f}"


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


@dataclass
class Group:
    """One rule applied to one group key: the unit that becomes one ticket."""

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
    occurrences: list[float] = field(default_factory=list)
    series: list[list[float]] = field(default_factory=list)
    folders: dict[str, list[list[float]]] = field(default_factory=dict)
    parent: str | None = None
    events: int = 0
    pending_timeline: list[dict[str, Any]] = field(default_factory=list)
    flapping: bool = False
    detail: dict[str, Any] = field(default_factory=dict)
    folder_kinds: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class Changes:
    """What one batch of work changed: tickets to store, notices to send.

    ``material`` is False when the only changes are more evidence on open tickets (event
    counts, timeline entries): the service may then delay writing them a little and batch
    them with later changes, since replaying the inbox after a crash restores them.
    """

    tickets: list[Ticket]
    notices: list[Notice]
    material: bool = True
    fired: list[str] = field(default_factory=list)  # timers fired (``timer_ident``), to trace a failed commit


class Engine:
    """Rules + inventory + state.  See the module docstring for the contract."""

    def __init__(self, rules: Rules, inventory: Inventory, state: dict[str, Any] | None = None) -> None:
        self.rules = rules
        self.inv = inventory
        self._rule = {r.name: r for r in rules.rules}
        self.clock = 0.0
        self.next_id = 1
        self.alerts: TrackedDict[Alert] = TrackedDict()
        self.groups: TrackedDict[Group] = TrackedDict()
        self._pruned_at = 0.0
        self.tickets: dict[str, Ticket] = {}
        self.owed: dict[str, Ticket] = {}  # resolved tickets that still owe calls (rules/calls.py)
        self.maintenances: list[MaintenanceWindow] = []
        self.silences: list[SilenceWindow] = []
        self.early_callbacks: dict[str, float] = {}
        self.silenced = 0
        self.unrouted = 0
        self.unbound = 0
        self.unbound_log = UnboundLog()
        self.skip_timers: set[str] = set()  # timers set aside after they failed (see TimerError)
        self._timers: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._dirty: dict[str, Ticket] = {}
        self._notices: list[Notice] = []
        self._material = False
        self._fired: list[tuple[str, str, float]] = []
        self._routes: dict[str, list[tuple[Rule, str, int]]] = {}
        self._aggs: dict[str, dict[int, MemberSummary]] = {}
        self._route_lists: dict[tuple[tuple[str, str, int], ...], list[tuple[Rule, str, int]]] = {}
        self._metric_rules: dict[str, list[tuple[Rule, str]]] = {}
        for r in rules.rules:
            if r.kind == "forecast":
                self._metric_rules.setdefault(r.metric, []).append((r, "total"))
                if r.folder_metric:
                    self._metric_rules.setdefault(r.folder_metric, []).append((r, "folder"))
        if state:
            self._restore(state)
        self.alerts.take_touched()  # what the state held is stored already: only changes count
        self.groups.take_touched()

    # ------------------------------------------------------------ public API

    def handle(self, item: Event | Op, now: datetime) -> dict[str, Any]:
        """Apply one event or operation at ``now`` (after firing any timers due before it).

        Returns a small result for the caller (for ops: how many tickets it touched).
        """
        t = self._advance_to(_ts(now))
        result: dict[str, Any] = {}
        if isinstance(item, OpBase):
            result = self._op(item, t)
        elif item.value is not None and item.labels.get("metric"):
            self._sample(item, t)
        else:
            self._alert(item, t)
        self._advance_to(t)  # holds of zero (or already served) take effect now, not at the next event
        return result

    def advance(self, now: datetime) -> None:
        """Move the clock to ``now``, firing every timer due until then at its own time."""
        self._advance_to(_ts(now))

    def drain(self) -> Changes:
        changes = Changes(list(self._dirty.values()), self._notices, self._material,
                          [timer_ident(*f) for f in self._fired] if self._fired else [])
        self._dirty = {}
        self._notices = []
        self._material = False
        self._fired = []
        return changes

    def next_due(self) -> datetime | None:
        while self._timers and not self._timer_valid(self._timers[0]):
            heapq.heappop(self._timers)
        return _dt(self._timers[0][0]) if self._timers else None

    def open_tickets(self) -> list[Ticket]:
        return list(self.tickets.values())

    def explain(self, event: Event) -> dict[str, Any]:
        """What the rules would do with this event, and why (for ``watcher rules test``)."""
        labels = bind(event.labels, self.inv)
        out: dict[str, Any] = {"bound_labels": labels, "fingerprint": event.fingerprint, "matches": []}
        if event.value is not None and labels.get("metric"):
            for rule, role in self._metric_rules.get(labels["metric"], []):
                out["matches"].append({"rule": rule.name, "role": f"series ({role})",
                                       "group": self._gid(rule, labels)})
            return out
        for rule, role, idx in self._route(event.fingerprint, labels):
            gid = self._gid(rule, labels)
            g = self.groups.get(gid) if gid else None
            entry: dict[str, Any] = {"rule": rule.name, "kind": rule.kind, "role": role, "group": gid,
                                     "group_state": g.state if g else "idle"}
            if role == "signal" and idx >= 0:
                sig = rule.signals[idx]
                entry["hold_s"] = sig.hold
                if sig.all_probes:
                    entry["needs"] = "every probe of the site failing"
            for parent in rule.symptom_of:
                pg = self.groups.get(self._gid(self._rule[parent], labels) or "")
                if pg and pg.state in ACTIVE:
                    entry["suppressed_by"] = f"{parent} ({pg.state}, ticket {pg.ticket})"
            out["matches"].append(entry)
        if not out["matches"]:
            out["outcome"] = "recorded only: no rule names it" + (
                "" if labels.get("client") else " (and it binds to no client)")
        return out

    # ------------------------------------------------------------ clock and timers

    def _advance_to(self, t: float) -> float:
        if t < self.clock:
            t = self.clock
        while self._timers and self._timers[0][0] <= t:
            due, _, kind, key = heapq.heappop(self._timers)
            if not self._timer_valid((due, 0, kind, key)):
                continue
            if self.skip_timers and timer_ident(kind, key, due) in self.skip_timers:
                continue
            self.clock = max(self.clock, due)
            if len(self._fired) < 1000:
                self._fired.append((kind, key, due))
            try:
                self._fire(kind, key, self.clock)
            except Exception as exc:
                raise TimerError(kind, key, due, exc) from exc
        self.clock = t
        return t

    def schedule(self, due: float, kind: str, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, key))

    def _timer_valid(self, timer: tuple[float, int, str, str]) -> bool:
        due, _, kind, key = timer
        if kind == "group":
            g = self.groups.peek(key)
            return g is not None and g.due is not None and abs(g.due - due) < 1e-6
        if kind == "escalate":
            tk = self.tickets.get(key)
            return tk is not None and tk.react_by is not None and tk.escalated_at is None \
                and abs(_ts(tk.react_by) - due) < 1e-6
        if kind == "expire":
            a = self.alerts.peek(key)
            return a is not None and a.status == "firing" and a.expires is not None and abs(a.expires - due) < 1e-6
        if kind == "deadline":
            return escalation.valid(self, key, due)
        return False

    def _fire(self, kind: str, key: str, t: float) -> None:
        if kind == "group":
            g = self.groups[key]
            g.due = None
            self._on_due(g, t)
        elif kind == "escalate":
            self._escalate(self.tickets[key], t)
        elif kind == "expire":
            a = self.alerts[key]
            self._resolve_alert(a, a.expires or t, t)
        elif kind == "deadline":
            escalation.fire(self, key, t)

    # ------------------------------------------------------------ alerts

    def _route(self, fp: str, labels: dict[str, str]) -> list[tuple[Rule, str, int]]:
        cached = self._routes.get(fp)
        if cached is not None:
            return cached
        routes: list[tuple[Rule, str, int]] = []
        for rule in self.rules.rules:
            if rule.kind in ("forecast", "catchall"):
                continue
            for i, sig in enumerate(rule.signals):
                if sig.matches(labels):
                    routes.append((rule, "signal", i))
                    break
            else:
                for sym in rule.symptoms:
                    if sym.matches(labels):
                        routes.append((rule, "symptom", -1))
                        break
                else:
                    for i, sig in enumerate(rule.signals):
                        if sig.resolved_by and all(m.matches(labels) for m in sig.resolved_by):
                            routes.append((rule, "resolver", i))
        if not routes:
            sev = SEVERITIES.get(labels.get("severity", "none"), 0)
            for rule in self.rules.rules:
                if rule.kind == "catchall" and sev >= SEVERITIES[rule.min_severity] and \
                        (not rule.signals or any(s.matches(labels) for s in rule.signals)):
                    routes.append((rule, "signal", 0))
                    break
        if len(self._routes) > 200_000:
            self._routes.clear()
        # Most alerts route alike (every probe of every office): one shared list per distinct
        # routing keeps the cache at a pointer per alert instead of a list each.
        routes = self._route_lists.setdefault(tuple((r.name, role, i) for r, role, i in routes), routes)
        self._routes[fp] = routes
        return routes

    def _gid(self, rule: Rule, labels: dict[str, str]) -> str | None:
        parts = []
        for k in rule.group_by:
            v = labels.get(k)
            if not v:
                return None
            parts.append(v)
        if not labels.get("client"):
            return None
        return rule.name + "|" + "|".join(parts)

    def _group(self, rule: Rule, gid: str, labels: dict[str, str]) -> Group:
        g = self.groups.get(gid)
        if g is None:
            keep = {k: labels[k] for k in ("client", "site", "host", "mailbox", "share", "person", "alertname",
                                           rule.entity, *rule.kept_labels) if k in labels}
            g = Group(gid, rule.name, [labels.get(k, "") for k in rule.group_by], keep)
            self.groups[gid] = g
        return g

    def _unbound(self, ev: Event, labels: dict[str, str], t: float) -> bool:
        """Count and list an event that names something the inventory lacks, or binds to no
        client at all.  True if it names something unknown: it must then touch nothing (an
        event without any client is still recorded, and can reach no group anyway)."""
        miss = unknown_name(ev.labels, labels, self.inv)
        if miss is None and labels.get("client"):
            return False
        self.unbound += 1
        key, value = miss or what_it_names(ev.labels)
        self.unbound_log.record(ev.source, key, value, t)
        return miss is not None

    def _alert(self, ev: Event, t: float) -> None:
        labels = bind(ev.labels, self.inv)
        if self._unbound(ev, labels, t):
            return
        fp = ev.fingerprint
        start = min(_ts(ev.start), t)
        a = self.alerts.get(fp)
        routes = self._route(fp, labels)
        if not routes:
            self.unrouted += 1
        resolved = ev.status == "resolved" or (ev.ends_at is not None and _ts(ev.ends_at) <= t)
        change = "duplicate"
        if resolved:
            if a is not None and a.status == "firing":
                self._resolve_alert(a, _ts(ev.ends_at) if ev.ends_at else t, t)
                change = "resolved"
            for rule, role, idx in routes:
                if role == "resolver":
                    self._resolve_by(rule, rule.signals[idx], labels, t)
                    change = "resolved"
            if a is None:
                self.alerts[fp] = Alert(fp, _shared(labels), "resolved", start, t, None, t)
        else:
            expires = _ts(ev.ends_at) if ev.ends_at is not None else None
            if a is None or (a.status == "resolved" and start > a.start + 0.5) or \
                    (a.status == "firing" and start > a.start + 0.5):
                change = "new" if a is None or a.status == "resolved" else "occurrence"
                if a is None:
                    a = Alert(fp, _shared(labels), "firing", start, t, expires)
                    self.alerts[fp] = a
                else:
                    a.status, a.start, a.last, a.expires, a.end, a.labels = "firing", start, t, expires, None, labels
            elif a.status == "firing":
                a.last = t
                if expires is not None and (a.expires is None or expires > a.expires):
                    a.expires = expires
            if a.status == "firing" and a.expires is not None:
                self.schedule(a.expires, "expire", fp)
        if self._silence(labels, t, mute=True) is not None:
            self.silenced += 1
            return
        for rule, role, idx in routes:
            if role == "resolver":
                continue
            gid = self._gid(rule, labels)
            if gid is None:
                continue
            g = self._group(rule, gid, labels)
            g.events += 1
            if rule.category == "mail":
                mail.note_event(g, ev, self.tickets.get(g.ticket or ""))
            entry = {"at": t, "what": f"{ev.alertname or 'event'} {ev.status}", "role": role,
                     "fingerprint": fp, "labels": ev.labels} if change != "duplicate" else None
            if role == "symptom":
                self._symptom(g, fp, entry, t)
                continue
            cur = self.alerts.get(fp)
            if cur is not None and cur.status == "firing":
                was = g.members.get(fp)
                g.members[fp] = idx
                if was is None:
                    self._agg_add(g.gid, idx, cur)
                elif was != idx or change != "duplicate":
                    self._aggs.pop(g.gid, None)
                if rule.kind == "threshold" and change in ("new", "occurrence"):
                    g.occurrences.append(start)
            elif g.members.pop(fp, None) is not None:
                self._aggs.pop(g.gid, None)
            self._note(g, entry)
            if g.state == "suppressed" and g.parent:
                parent = self.groups.get(g.parent)
                if parent is not None:
                    parent.events += 1
                    self._note(parent, entry, role="symptom")
            self._evaluate(g, t)

    def _symptom(self, g: Group, fp: str, entry: dict[str, Any] | None, t: float) -> None:
        if g.state not in ACTIVE:
            g.events = 0
            return
        if fp not in g.symptoms:
            g.symptoms.append(fp)
        self._note(g, entry, role="symptom")

    def _note(self, g: Group, entry: dict[str, Any] | None, role: str | None = None) -> None:
        """Put an event on the group's ticket timeline (or keep it until the ticket opens)."""
        if g.ticket and g.ticket in self.tickets:
            tk = self.tickets[g.ticket]
            tk.event_count = max(tk.event_count, 0) + 1
            if entry is not None and len(tk.timeline) < TIMELINE_CAP:
                tk.timeline.append(TimelineEntry(_dt(entry["at"]), entry["what"], role or entry["role"],
                                                 entry["fingerprint"], entry["labels"]))
            self._dirty[tk.id] = tk
        elif entry is not None and len(g.pending_timeline) < TIMELINE_CAP:
            g.pending_timeline.append(dict(entry, role=role or entry["role"]))

    def _resolve_alert(self, a: Alert, end: float, t: float) -> None:
        a.status, a.end, a.last, a.expires = "resolved", end, t, None
        for rule, role, _ in self._route(a.fp, a.labels):
            if role != "signal":
                continue
            gid = self._gid(rule, a.labels)
            g = self.groups.get(gid) if gid else None
            if g is not None and a.fp in g.members:
                del g.members[a.fp]
                self._aggs.pop(g.gid, None)
                self._evaluate(g, t)

    def _resolve_by(self, rule: Rule, sig: Signal, labels: dict[str, str], t: float) -> None:
        gid = self._gid(rule, labels)
        g = self.groups.get(gid) if gid else None
        if g is None:
            return
        for fp in list(g.members):
            a = self.alerts.get(fp)
            if a is None or a.status != "firing" or not sig.matches(a.labels):
                continue
            if all(a.labels.get(k) == labels.get(k) for k in sig.resolved_same):
                self._resolve_alert(a, t, t)

    # ------------------------------------------------------------ samples (forecast rules)

    def _sample(self, ev: Event, t: float) -> None:
        value = float(ev.value or 0.0)
        if not -MAX_VALUE <= value <= MAX_VALUE:  # NaN fails every comparison
            raise EventError(f"value: {value!r} is not a finite number within ±{MAX_VALUE:g}")
        labels = bind(ev.labels, self.inv)
        rules = self._metric_rules.get(labels.get("metric", ""), [])
        if rules and self._unbound(ev, labels, t):
            return
        for rule, role in rules:
            gid = self._gid(rule, labels)
            if gid is None:
                self.unbound += 1
                continue
            g = self._group(rule, gid, labels)
            at = min(_ts(ev.observed_at or ev.start), t) if ev.observed_at else t
            if role == "folder":
                series = g.folders.setdefault(labels.get("folder", "?"), [])
                kinds = ev.annotations.get("file_kinds")
                if kinds:
                    try:
                        g.folder_kinds[labels.get("folder", "?")] = json.loads(kinds)
                    except ValueError:
                        pass
            else:
                series = g.series
            if series and at <= series[-1][0]:
                continue  # a re-sent or out-of-order sample
            series.append([at, value])
            cutoff = t - rule.window
            while series and series[0][0] < cutoff:
                series.pop(0)
            if role == "total":
                total = _size(ev.annotations.get("total_bytes") or ev.annotations.get("size_bytes"))
                if total:
                    g.detail["reported_size"] = total
                g.events += 1
                if g.ticket:
                    self._note(g, None)
                self._evaluate(g, t)

    def _forecast(self, rule: Rule, g: Group, t: float) -> bool:
        share = self.inv.shares.get(g.labels.get("share", ""))
        reported = g.detail.get("reported_size")
        size = (share.size_bytes if share else None) or (int(reported) if reported else None)
        pts = [(p[0], p[1]) for p in g.series]
        if not size or len(pts) < 4:
            return False
        used = pts[-1][1] / size
        g.detail = {"reported_size": reported} if reported else {}
        g.detail |= {"used_pct": round(100 * used, 1), "size_bytes": size, "used_bytes": int(pts[-1][1])}
        if used >= rule.full_ratio:
            g.detail["reason"] = f"over {int(rule.full_ratio * 100)} % full"
            return True
        if pts[-1][0] - pts[0][0] < rule.min_span:
            return False
        eta = forecast.seconds_to_reach(pts, float(size), t)
        if eta is None or eta > rule.horizon:
            return False
        rise = pts[-1][1] - pts[0][1]
        if rise < rule.min_growth_ratio * size or forecast.largest_step_share(pts) > 0.5:
            return False
        g.detail["days_to_full"] = round(eta / 86400, 1)
        g.detail["reason"] = f"forecast full in {eta / 86400:.1f} days"
        return True

    # ------------------------------------------------------------ group state machine

    def _condition(self, rule: Rule, g: Group, t: float) -> tuple[bool, float]:
        """Is the rule's condition true for the group, and since when?"""
        if rule.kind == "forecast":
            ok = self._forecast(rule, g, t)
            if ok and not g.cond:
                g.since = t
            return ok, (g.since or t)
        if rule.kind == "threshold":
            # a poll's drift (5 min + 0.5 s) must not push the third failure out of the window
            within = rule.within + min(60.0, rule.within / 10)
            g.occurrences = [o for o in g.occurrences if o >= t - max(within, rule.quiet)]
            recent = [o for o in g.occurrences if o >= t - within]
            if g.state in ("open", "resolving"):
                last = max(g.occurrences) if g.occurrences else 0.0
                return bool(g.members) and t - last < rule.quiet, t
            if len(recent) >= rule.count:
                return True, sorted(recent)[-rule.count]
            return False, t
        aggs = self._aggs.get(g.gid)
        if aggs is None:
            aggs = self._aggs[g.gid] = self._aggregate(g)
        if rule.kind == "catchall":
            agg = aggs.get(0)
            return (True, agg.first) if agg and agg.count else (False, t)
        best: float | None = None
        for i, sig in enumerate(rule.signals):
            agg = aggs.get(i)
            if agg is None or not agg.count:
                continue
            if sig.all_probes:
                site = self.inv.sites.get(g.labels.get("site", ""))
                need = len(site.probes) if site and site.probes else 1
                if len(agg.instances) < need:
                    continue
                since = agg.last
            else:
                since = agg.first
            due = since + sig.hold
            best = due if best is None else min(best, due)
        if best is None:
            return False, t
        return True, best

    def _aggregate(self, g: Group) -> dict[int, MemberSummary]:
        """The firing members of a group summed up per signal, from scratch."""
        out: dict[int, MemberSummary] = {}
        peek = self.alerts.peek  # reads only: these alerts are not changed here
        for fp, idx in g.members.items():
            a = peek(fp)
            if a is not None and a.status == "firing":
                out.setdefault(idx, MemberSummary()).add(a)
        return out

    def _agg_add(self, gid: str, idx: int, a: Alert) -> None:
        """A new firing member joins the group: its summary grows by one, when there is one."""
        aggs = self._aggs.get(gid)
        if aggs is not None:
            aggs.setdefault(idx, MemberSummary()).add(a)

    def _hold_due(self, rule: Rule, g: Group, since: float, t: float) -> float:
        if rule.kind == "threshold" or rule.kind == "forecast":
            hold = rule.signals[0].hold if rule.signals else 0.0
            return max(t, since + hold)
        return max(t, since)  # outage: _condition already added the signal's hold

    def _evaluate(self, g: Group, t: float) -> None:
        rule = self._rule[g.rule]
        cond, since = self._condition(rule, g, t)
        if cond != g.cond:
            g.flaps.append(t)
            g.cond = cond
        if rule.flapping:
            g.flaps = [f for f in g.flaps if f >= t - rule.flapping.window]
        if g.state == "idle":
            if cond:
                g.state = "pending"
                self._set_due(g, self._hold_due(rule, g, since, t))
            else:
                self._forget_if_idle(g)
        elif g.state == "pending":
            if not cond:
                if rule.flapping and len(g.flaps) >= rule.flapping.changes:
                    g.flapping = True
                    self._open(g, t)
                    g.state = "resolving"
                    self._set_due(g, t + max(rule.resolve_after, rule.flapping.stable))
                    return
                g.state = "idle"
                g.due = None
                g.pending_timeline = []
                g.symptoms = []
                g.events = 0
            else:
                self._set_due(g, self._hold_due(rule, g, since, t))
        elif g.state == "open":
            if not cond:
                g.state = "resolving"
                stable = rule.flapping.stable if (rule.flapping and g.flapping) else 0.0
                self._set_due(g, t + max(rule.resolve_after, stable))
            elif rule.kind == "threshold":
                last = max(g.occurrences) if g.occurrences else t
                self._set_due(g, last + rule.quiet)
            if rule.flapping and len(g.flaps) >= rule.flapping.changes and not g.flapping:
                self._mark_flapping(g)
        elif g.state == "resolving":
            if cond:
                g.state = "open"
                g.due = None
                if rule.flapping and len(g.flaps) >= rule.flapping.changes and not g.flapping:
                    self._mark_flapping(g)
                if rule.kind == "threshold":
                    last = max(g.occurrences) if g.occurrences else t
                    self._set_due(g, last + rule.quiet)
        elif g.state == "suppressed":
            if not cond:
                g.state = "idle"
                g.due = None
                g.parent = None
                g.events = 0
        elif g.state == "closed" and not cond:
            g.state = "idle"
            g.ticket = None

    def _mark_flapping(self, g: Group) -> None:
        g.flapping = True
        if g.ticket and g.ticket in self.tickets:
            tk = self.tickets[g.ticket]
            tk.flapping = True
            self._dirty[tk.id] = tk
            self._material = True

    def _set_due(self, g: Group, due: float) -> None:
        if g.due is None or abs(g.due - due) > 1e-6:
            g.due = due
            self.schedule(due, "group", g.gid)

    def _forget_if_idle(self, g: Group) -> None:
        rule = self._rule[g.rule]
        if g.state == "idle" and not g.members and rule.kind != "forecast" and not g.occurrences \
                and not (rule.flapping and g.flaps):
            self.groups.pop(g.gid, None)
            self._aggs.pop(g.gid, None)

    def _on_due(self, g: Group, t: float) -> None:
        rule = self._rule[g.rule]
        if g.state == "pending":
            cond, _ = self._condition(rule, g, t)
            if not cond and rule.kind != "threshold":
                self._evaluate(g, t)
                return
            parent = self._active_parent(rule, g)
            if parent is not None:
                g.state = "suppressed"
                g.parent = parent.gid
                parent.events += g.events
                for entry in g.pending_timeline:
                    self._note(parent, entry, role="symptom")
                g.pending_timeline = []
                self._set_due(g, t + max(60.0, rule.signals[0].hold if rule.signals else 60.0))
                return
            self._open(g, t)
            g.state = "open"
            self._evaluate(g, t)
        elif g.state == "resolving":
            cond, _ = self._condition(rule, g, t)
            if cond:
                g.state = "open"
                return
            self._resolve(g, t)
        elif g.state == "open" and rule.kind == "threshold":
            self._evaluate(g, t)
        elif g.state == "suppressed":
            parent = self._active_parent(rule, g)
            if parent is not None:
                self._set_due(g, t + max(60.0, rule.signals[0].hold if rule.signals else 60.0))
                return
            g.state = "idle"
            g.parent = None
            g.cond = False
            self._evaluate(g, t)

    def _active_parent(self, rule: Rule, g: Group) -> Group | None:
        for name in rule.symptom_of:
            prule = self._rule[name]
            pgid = self._gid(prule, g.labels)
            pg = self.groups.get(pgid) if pgid else None
            if pg is not None and pg.state in ACTIVE:
                return pg
        return None

    # ------------------------------------------------------------ tickets

    def _title(self, rule: Rule, g: Group, lang: str) -> str:
        templ = rule.title or _DEFAULT_TITLES.get(rule.category, _DEFAULT_TITLES["other"])
        text = templ.get(lang) or templ.get("en") or next(iter(templ.values()))
        labels = g.labels
        site = self.inv.sites.get(labels.get("site", ""))
        client = self.inv.clients.get(labels.get("client", ""))
        share = self.inv.shares.get(labels.get("share", ""))
        values = {
            **labels,
            "site_name": site.name if site else labels.get("site", ""),
            "client_name": client.name if client else labels.get("client", ""),
            "share_name": share.name if share else labels.get("share", ""),
            "mailbox": labels.get("mailbox", client.name if client else ""),
            "host": labels.get("host", ""),
            "alertname": labels.get("alertname", ""),
        }
        try:
            return text.format_map(_Default(values))
        except (ValueError, IndexError):
            return text

    def _in_maintenance(self, client: str, site: str | None, t: float) -> MaintenanceWindow | None:
        return next((m for m in self.maintenances if m.covers(client, site, t)), None)

    def _silence(self, labels: dict[str, str], t: float, mute: bool | None = None) -> SilenceWindow | None:
        """The active silence whose matchers all match ``labels`` (only muting ones if ``mute``)."""
        return next((sil for sil in self.silences if sil.matches(labels, t, mute)), None)

    def _open(self, g: Group, t: float) -> None:
        rule = self._rule[g.rule]
        labels = g.labels
        client = self.inv.clients.get(labels.get("client", ""))
        if client is None:  # the inventory was reloaded without it: nobody to open a ticket for
            self.unbound += 1
            self.unbound_log.record("engine", "client", labels.get("client", ""), t)
            return
        tid = f"T-{self.next_id:06d}"
        self.next_id += 1
        entity_id = labels.get(rule.entity) or labels.get("client", "")
        maint: MaintenanceWindow | SilenceWindow | None = self._in_maintenance(client.id, labels.get("site"), t)
        if maint is None:
            for fp in [*g.members, None]:
                member = self.alerts.get(fp) if fp else None
                maint = self._silence(member.labels if member else labels, t, mute=False)
                if maint is not None:
                    break
        who = affected(rule.affects, labels, self.inv)
        details: dict[str, Any] = {}
        advice_to = None
        if rule.kind == "forecast":
            details.update(g.detail)
            share = self.inv.shares.get(labels.get("share", ""))
            advice_to = advice.decide(g, share, client.advice, details)
            if share:
                details["share_name"] = share.name
        if maint:
            details["maintenance"] = {"reason": maint.reason, "starts_at": format_time(_dt(maint.start)),
                                      "ends_at": format_time(_dt(maint.end))}
        if labels.get("mailbox"):
            details["mailbox"] = labels["mailbox"]
        if g.detail.get("bounced") and rule.category == "mail":
            details["bounced"] = list(g.detail["bounced"])
        if labels.get("host"):
            details["host"] = labels["host"]
        tk = Ticket(
            id=tid, client=client.id, category=rule.category, entity_kind=rule.entity, entity_id=entity_id,
            title=self._title(rule, g, client.language), opened_at=_dt(t), rule=rule.name, group_key=g.gid,
            site=labels.get("site"), planned=maint is not None, flapping=g.flapping, sla_tier=client.sla,
            affected=list(who), affected_why=who, advice_to=advice_to, details=details,
            event_count=g.events,
        )
        problem = mail.problem(tk, labels)
        if problem:
            tk.details["problem"] = problem
        if rule.escalate and not tk.planned:
            tk.react_by = client.business_hours.add(tk.opened_at, REACT_HOURS[client.sla] * 3600)
            self.schedule(_ts(tk.react_by), "escalate", tid)
        for entry in g.pending_timeline:
            tk.timeline.append(TimelineEntry(_dt(entry["at"]), entry["what"], entry["role"],
                                             entry.get("fingerprint"), entry.get("labels")))
        g.pending_timeline = []
        g.ticket = tid
        self.tickets[tid] = tk
        for person, asked in list(self.early_callbacks.items()):
            if t - asked > EARLY_CALLBACK_TTL:
                del self.early_callbacks[person]
            elif person in who:
                tk.callbacks.append(Callback(person, _dt(asked)))
                del self.early_callbacks[person]
        self._dirty[tid] = tk
        self._material = True
        kind: NotificationKind = "planned" if tk.planned else "opened"
        domains = mail.mail_domains(self.inv, client.id) if problem == "server_down" else set()
        for person in who:
            self.notify(tk, person, kind, t)
            if domains and person in self.inv.people and \
                    not mail.independent_urls(self.inv.people[person].notify, domains):
                calls.add(tk, person, _dt(t), reason="mail server down: no other way to reach them")
        site = self.inv.sites.get(labels.get("site", ""))
        if rule.office_check and not tk.planned and site and site.office_contact:
            office.on_open(self, tk, site, t)
        if rule.kind == "forecast":
            self.notify(tk, "admins", "disk_review", t)
        if advice_to:
            self.notify(tk, advice_to, "advice", t)

    def notify(self, tk: Ticket, to: str, kind: NotificationKind, t: float) -> None:
        """Owe ``to`` a notice of ``kind`` about ``tk`` (once per person and kind)."""
        if any(n.to == to and n.kind == kind for n in tk.notifications):
            return
        tk.notifications.append(NotificationRecord(to, kind, _dt(t)))
        self._notices.append(Notice(tk.id, to, kind, _dt(t)))
        self._dirty[tk.id] = tk
        self._material = True

    def _resolve(self, g: Group, t: float, by: str | None = None) -> None:
        tk = self.tickets.pop(g.ticket, None) if g.ticket else None
        g.state = "idle" if by is None else "closed"
        g.due = None
        g.flapping = False
        g.symptoms = []
        g.events = 0
        if by is None:
            g.ticket = None
        if tk is None:
            return
        self._close_ticket(tk, t, by)
        self._forget_if_idle(g)

    def _close_ticket(self, tk: Ticket, t: float, by: str | None) -> None:
        tk.status = "resolved"
        tk.resolved_at = _dt(t)
        tk.resolved_by = by
        told = [n.to for n in tk.notifications if n.kind in ("opened", "planned")]
        for person in dict.fromkeys([c.person for c in tk.callbacks] + told):
            self.notify(tk, person, "resolved", t)
        calls.on_close(self, tk)  # callbacks stay "to call" until an agent records the call
        self._dirty[tk.id] = tk
        self._material = True

    def _escalate(self, tk: Ticket, t: float) -> None:
        if tk.status != "open" or tk.planned:
            return
        client = self.inv.clients.get(tk.client)
        tk.escalated_at = _dt(t)
        tk.breached = True
        if client:
            tk.resolve_by = client.business_hours.add(_dt(t), ADMIN_HOURS[client.sla][1] * 3600)
        self.notify(tk, "admins", "escalated", t)
        escalation.on_auto(self, tk, t)
        self._dirty[tk.id] = tk
        self._material = True

    # ------------------------------------------------------------ operations

    def _op(self, op: Op, t: float) -> dict[str, Any]:
        return ops.apply(self, op, t)

    def changed(self, tk: Ticket) -> None:
        """``tk`` changed in a way its people or agents see: store it with the next commit."""
        self._dirty[tk.id] = tk
        self._material = True

    def mark(self, material: bool) -> None:
        """Something of the state changed that must be committed soon (not only more evidence)."""
        self._material = self._material or material

    def resolve_ticket(self, tk: Ticket, t: float, by: str) -> None:
        """An agent resolves ``tk``: its group (if it still holds it) is closed with it."""
        g = self.groups.get(tk.group_key)
        if g is not None and g.ticket == tk.id:
            self._resolve(g, t, by=by)
        else:
            self.tickets.pop(tk.id, None)
            self._close_ticket(tk, t, by)

    # ------------------------------------------------------------ persistence of the state

    def snapshot(self, prune: bool = True) -> dict[str, Any]:
        """The whole working state as JSON-able data (see ``restore``); ``prune=False`` leaves
        the state exactly as it is (replay's checkpoints must not change what comes next)."""
        if prune:
            self._prune()
        return {
            "version": 1,
            "clock": self.clock,
            "next_id": self.next_id,
            "alerts": [self._alert_row(a) for a in self.alerts.values()],
            "groups": [g.__dict__ for g in self.groups.values()],
            "tickets": [tk.to_dict() for tk in self.tickets.values()],
            **self._rest(),
        }

    def snapshot_rest(self) -> dict[str, Any]:
        """The state without its alerts and groups (see ``delta``)."""
        return {"version": 1, "clock": self.clock, "next_id": self.next_id, **self._rest()}

    def _rest(self) -> dict[str, Any]:
        return {
            "maintenances": [m.to_dict() for m in self.maintenances],
            "silences": [x.to_dict() for x in self.silences],
            "early_callbacks": self.early_callbacks,
            "owed": [tk.to_dict() for tk in self.owed.values()],
            "counters": {"unrouted": self.unrouted, "unbound": self.unbound, "silenced": self.silenced},
            "unbound": self.unbound_log.rows(),
            "skip_timers": sorted(self.skip_timers),
        }

    def delta(self, whole: bool = False, tickets: Iterable[str] = ()) -> EngineDelta:
        """What changed since the last ``delta`` (or since the engine was built), for a store
        that keeps alerts, groups and open tickets as rows of their own: the small rest of the
        state whole, and only the alerts and groups that were touched, written or deleted,
        and the ``tickets`` named (every ticket change is handed out by ``drain``, so the
        caller knows them).  ``whole``: every entry (after a restore from an older layout, or
        a reload that dropped rules)."""
        self._prune()
        doc = self.snapshot_rest()
        touched_alerts, touched_groups = self.alerts.take_touched(), self.groups.take_touched()
        touched_tickets = set(tickets)
        if whole:
            touched_alerts, touched_groups, touched_tickets = set(self.alerts), set(self.groups), set(self.tickets)
        alerts = {fp: (self._alert_row(a) if (a := self.alerts.peek(fp)) is not None else None)
                  for fp in touched_alerts}
        groups = {gid: (dict(g.__dict__) if (g := self.groups.peek(gid)) is not None else None)
                  for gid in touched_groups}
        open_tickets = {tid: (tk.to_dict() if (tk := self.tickets.get(tid)) is not None else None)
                        for tid in touched_tickets}
        return EngineDelta(doc, {"alerts": alerts, "groups": groups, "tickets": open_tickets}, whole)

    @staticmethod
    def _alert_row(a: Alert) -> list[Any]:
        return [a.fp, a.labels, a.status, a.start, a.last, a.expires, a.end]

    def _prune(self) -> None:
        """Forget what can no longer matter, so the state does not grow without bound: resolved
        alerts after a while, alerts no rule names once they go quiet (a trap that never
        resolves), and callers' early wishes past their time.

        A scan of every alert, so it runs at most once a minute of engine time: what it
        forgets is hours old, and a commit must not cost as much as the state is large."""
        if self.clock - self._pruned_at < PRUNE_EVERY and self._pruned_at <= self.clock:
            return
        self._pruned_at = self.clock
        horizon = self.clock - RESOLVED_ALERT_TTL
        quiet = self.clock - UNROUTED_ALERT_TTL
        stale = [fp for fp, a in self.alerts.items()
                 if (a.status == "resolved" and a.last < horizon)
                 or (a.last < quiet and not self._route(fp, a.labels))]
        for fp in stale:
            del self.alerts[fp]
        if stale:
            self._aggs.clear()
        for person in [p for p, at in self.early_callbacks.items() if self.clock - at > EARLY_CALLBACK_TTL]:
            del self.early_callbacks[person]
        self.skip_timers = {x for x in self.skip_timers if float(x.rsplit("|", 1)[1]) >= self.clock - 86400}
        calls.prune(self, self.clock)

    def _restore(self, s: dict[str, Any]) -> None:
        self.clock = float(s.get("clock", 0.0))
        self.next_id = int(s.get("next_id", 1))
        for row in s.get("alerts", []):
            a = Alert(*row)
            self.alerts[a.fp] = a
            if a.status == "firing" and a.expires is not None:
                self.schedule(a.expires, "expire", a.fp)
        for gd in s.get("groups", []):
            if gd.get("rule") not in self._rule:
                continue
            g = Group(**gd)
            self.groups[g.gid] = g
            if g.due is not None:
                self.schedule(g.due, "group", g.gid)
        for td in s.get("tickets", []):
            restored = Ticket.from_dict(td)
            self.tickets[restored.id] = restored
            if restored.react_by is not None and restored.escalated_at is None and restored.status == "open":
                self.schedule(_ts(restored.react_by), "escalate", restored.id)
            escalation.restore(self, restored)
        for td in s.get("owed", []):
            owed = Ticket.from_dict(td)
            self.owed[owed.id] = owed
        self.maintenances = [MaintenanceWindow.from_dict(m) for m in s.get("maintenances", [])]
        self.silences = [SilenceWindow.from_dict(x) for x in s.get("silences", [])]
        self.early_callbacks = dict(s.get("early_callbacks", {}))
        c = s.get("counters", {})
        self.unrouted, self.unbound = int(c.get("unrouted", 0)), int(c.get("unbound", 0))
        self.silenced = int(c.get("silenced", 0))
        self.unbound_log.restore(list(s.get("unbound", [])))
        self.skip_timers = set(s.get("skip_timers", []))


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


__all__ = ["Changes", "Engine", "TimerError", "format_time", "timedelta", "timer_ident", "window_id"]
