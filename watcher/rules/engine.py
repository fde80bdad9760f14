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

This class keeps the clock, the timers and what a batch of work changed (``drain``); the
rest is in rooms of its own, functions over the engine's state:

- ``routing``: which rules name an alert, in which role, and its group key;
- ``alerts``: events and samples in, handed to their groups;
- ``groups``: the state machine every group runs (holds, flapping, suppression);
- ``kinds/``: what differs between rule kinds (one class each, one table);
- ``tickets``: a ticket's opening, closing and automatic escalation;
- ``ops``: the operations, one handler per op type;
- ``windows``: silences and maintenance windows;
- ``state``: the state as data (snapshot, delta, restore, prune).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from watcher.config.inventory import Inventory
from watcher.config.rules import Rules
from watcher.model import (
    EngineDelta,
    Event,
    Notice,
    NotificationKind,
    NotificationRecord,
    Op,
    OpBase,
    Ticket,
)
from watcher.rules import alerts, escalation, groups, ops, routing, state, tickets
from watcher.rules.alerts import Alert
from watcher.rules.groups import Group, Summaries
from watcher.rules.kinds import RULE_KINDS, RuleKind
from watcher.rules.routing import Router
from watcher.rules.tracked import TrackedDict
from watcher.rules.unbound import UnboundLog
from watcher.rules.windows import MaintenanceWindow, SilenceWindow


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


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

    def __init__(self, rules: Rules, inventory: Inventory, state_doc: dict[str, Any] | None = None) -> None:
        self.rules = rules
        self.inv = inventory
        self.rule_of = {r.name: r for r in rules.rules}
        self.kinds: dict[str, RuleKind[object]] = {r.name: RULE_KINDS[r.kind](r) for r in rules.rules}
        self.router = Router(rules, self.kinds)
        self.clock = 0.0
        self.next_id = 1
        self.alerts: TrackedDict[Alert] = TrackedDict()
        self.groups: TrackedDict[Group] = TrackedDict()
        self.summaries = Summaries(self)
        self.pruned_at = 0.0
        self.tickets: dict[str, Ticket] = {}
        self.timeline_docs = state.TimelineDocs()  # a commit formats only the entries added since
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
        if state_doc:
            state.restore(self, state_doc)
        self.alerts.take_touched()  # what the state held is stored already: only changes count
        self.groups.take_touched()

    # ------------------------------------------------------------ public API

    def handle(self, item: Event | Op, now: datetime) -> dict[str, Any]:
        """Apply one event or operation at ``now`` (after firing any timers due before it).

        Returns a small result for the caller (for ops: how many tickets it touched).
        """
        t = self._advance_to(now.timestamp())
        result: dict[str, Any] = {}
        if isinstance(item, OpBase):
            result = self._op(item, t)
        elif item.value is not None and item.labels.get("metric"):
            alerts.handle_sample(self, item, t)
        else:
            self._alert(item, t)
        self._advance_to(t)  # holds of zero (or already served) take effect now, not at the next event
        return result

    def advance(self, now: datetime) -> None:
        """Move the clock to ``now``, firing every timer due until then at its own time."""
        self._advance_to(now.timestamp())

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
        return routing.explain(self, event)

    def snapshot(self, prune: bool = True) -> dict[str, Any]:
        """The whole working state as JSON-able data; ``prune=False`` leaves the state exactly
        as it is (replay's checkpoints must not change what comes next)."""
        return state.snapshot(self, prune)

    def snapshot_rest(self) -> dict[str, Any]:
        """The state without its alerts and groups (see ``delta``)."""
        return state.snapshot_rest(self)

    def delta(self, whole: bool = False, tickets: Iterable[str] = ()) -> EngineDelta:
        """What changed since the last ``delta`` (or since the engine was built), for a store
        that keeps alerts, groups and open tickets as rows of their own: the small rest of the
        state whole, and only the alerts and groups that were touched, written or deleted,
        and the ``tickets`` named (every ticket change is handed out by ``drain``, so the
        caller knows them).  ``whole``: every entry (after a restore from an older layout, or
        a reload that dropped rules)."""
        return state.delta(self, whole, tickets)

    # ------------------------------------------------------------ for the rooms of this package

    def schedule(self, due: float, kind: str, key: str) -> None:
        """Fire timer ``kind`` (a row of ``_TIMERS``) for ``key`` at ``due``."""
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, kind, key))

    def notify(self, tk: Ticket, to: str, kind: NotificationKind, t: float) -> None:
        """Owe ``to`` a notice of ``kind`` about ``tk`` (once per person and kind)."""
        if any(n.to == to and n.kind == kind for n in tk.notifications):
            return
        tk.notifications.append(NotificationRecord(to, kind, _dt(t)))
        self._notices.append(Notice(tk.id, to, kind, _dt(t)))
        self.changed(tk)

    def changed(self, tk: Ticket) -> None:
        """``tk`` changed in a way its people or agents see: store it with the next commit."""
        self._dirty[tk.id] = tk
        self._material = True

    def noted(self, tk: Ticket) -> None:
        """``tk`` got more evidence only (event count, timeline): store it, no hurry."""
        self._dirty[tk.id] = tk

    def mark(self, material: bool) -> None:
        """Something of the state changed that must be committed soon (not only more evidence)."""
        self._material = self._material or material

    def in_maintenance(self, client: str, site: str | None, t: float) -> MaintenanceWindow | None:
        for m in self.maintenances:
            if m.covers(client, site, t):
                return m
        return None

    def silence(self, labels: dict[str, str], t: float, mute: bool | None = None) -> SilenceWindow | None:
        """The active silence whose matchers all match ``labels`` (only muting ones if ``mute``)."""
        for sil in self.silences:
            if sil.matches(labels, t, mute):
                return sil
        return None

    # ------------------------------------------------------------ the items and the timers

    def _op(self, op: Op, t: float) -> dict[str, Any]:
        return ops.apply(self, op, t)

    def _alert(self, ev: Event, t: float) -> None:
        alerts.handle_alert(self, ev, t)

    def _on_due(self, g: Group, t: float) -> None:
        groups.on_due(self, g, t)

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
                self._TIMERS[kind][1](self, key, self.clock)
            except Exception as exc:
                raise TimerError(kind, key, due, exc) from exc
        self.clock = t
        return t

    def _timer_valid(self, timer: tuple[float, int, str, str]) -> bool:
        due, _, kind, key = timer
        row = self._TIMERS.get(kind)
        return row is not None and row[0](self, key, due)

    # Each timer kind: is a timer due at ``due`` still the one that counts (a group's hold may
    # have moved since it was scheduled), and what it does when it fires.

    def _group_valid(self, key: str, due: float) -> bool:
        g = self.groups.peek(key)
        return g is not None and g.due is not None and abs(g.due - due) < 1e-6

    def _group_fire(self, key: str, t: float) -> None:
        g = self.groups[key]
        g.due = None
        self._on_due(g, t)

    def _escalate_valid(self, key: str, due: float) -> bool:
        tk = self.tickets.get(key)
        return tk is not None and tk.react_by is not None and tk.escalated_at is None \
            and abs(tk.react_by.timestamp() - due) < 1e-6

    def _escalate_fire(self, key: str, t: float) -> None:
        tickets.auto_escalate(self, self.tickets[key], t)

    def _expire_valid(self, key: str, due: float) -> bool:
        a = self.alerts.peek(key)
        return a is not None and a.status == "firing" and a.expires is not None and abs(a.expires - due) < 1e-6

    def _expire_fire(self, key: str, t: float) -> None:
        a = self.alerts[key]
        alerts.resolve_alert(self, a, a.expires or t, t)

    _TIMERS: ClassVar[dict[str, tuple[Callable[[Engine, str, float], bool], Callable[[Engine, str, float], None]]]] = {
        "group": (_group_valid, _group_fire),
        "escalate": (_escalate_valid, _escalate_fire),
        "expire": (_expire_valid, _expire_fire),
        "deadline": (escalation.valid, escalation.fire),
    }


__all__ = ["Changes", "Engine", "TimerError", "timer_ident"]
