"""Operations on the engine, one handler per op type, found through one table.

Each operation (``watcher.model.Op``: a typed dataclass per kind, made at the JSON edge) went
through the inbox like the events, so the service and ``watcher replay`` apply it at the same
point of the stream and get the same tickets.  ``HANDLERS`` maps an op's class to its
handler; a new op is a dataclass in ``watcher.model`` (with its row in ``OP_TYPES``) plus one
``@handles`` function here.

A handler returns a small result for the caller: ``{"tickets": [...]}`` (the tickets it
touched), ``{"ok": ...}``, and ``skipped`` or ``error`` saying why it did nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from watcher.config.regex import RegexError
from watcher.model import (
    Ack,
    Advice,
    Call,
    CallbackOp,
    Escalate,
    Expire,
    Maintenance,
    OfficeAnswer,
    Op,
    OpBase,
    Resolve,
    Silence,
    Ticket,
)
from watcher.rules import advice, calls, escalation, groups, office, tickets
from watcher.rules.windows import MaintenanceWindow, SilenceWindow

if TYPE_CHECKING:
    from watcher.rules.engine import Engine

Result = dict[str, Any]
OpT = TypeVar("OpT", bound=OpBase)
Handler = Callable[["Engine", OpT, float], Result]
HANDLERS: dict[type[OpBase], Handler[OpBase]] = {}


def handles(cls: type[OpT]) -> Callable[[Handler[OpT]], Handler[OpT]]:
    """Register the decorated function as the handler of ``cls``: in the table, it takes any
    op and checks that it is one of ``cls`` (``apply`` looks it up by the op's own class)."""
    def register(fn: Handler[OpT]) -> Handler[OpT]:
        def checked(engine: Engine, op: OpBase, t: float) -> Result:
            assert isinstance(op, cls)
            return fn(engine, op, t)
        HANDLERS[cls] = checked
        return fn
    return register


def apply(engine: Engine, op: Op, t: float) -> Result:
    return HANDLERS[type(op)](engine, op, t)


def _at(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


# ---------------------------------------------------------------- silences and maintenances


@handles(Maintenance)
def _maintenance(engine: Engine, op: Maintenance, t: float) -> Result:
    if op.client not in engine.inv.clients:
        return {"skipped": f"no client {op.client[:100]!r} in the inventory"}
    engine.maintenances.append(MaintenanceWindow(op.client, op.site, op.starts_at.timestamp(),
                                                 op.ends_at.timestamp(), op.reason, op.id))
    engine.maintenances = [m for m in engine.maintenances if m.end >= t - 86400]
    return {"ok": True}


@handles(Silence)
def _silence(engine: Engine, op: Silence, t: float) -> Result:
    start = op.starts_at.timestamp() if op.starts_at else t
    try:  # a matcher that cannot be compiled would fail every later event: refuse it here
        window = SilenceWindow.make(dict(op.matchers), start, op.ends_at.timestamp(), op.comment, op.mute, op.id)
    except RegexError as exc:  # RE2, as every user regex (watcher.config.regex)
        return {"skipped": f"silence.matchers: bad regular expression: {exc}"}
    engine.silences.append(window)
    engine.silences = [x for x in engine.silences if x.end >= t]
    return {"ok": True}


@handles(Expire)
def _expire(engine: Engine, op: Expire, t: float) -> Result:
    listed: list[SilenceWindow] | list[MaintenanceWindow] = \
        engine.silences if op.what == "silence" else engine.maintenances
    before = len(listed)
    listed[:] = [x for x in listed if x.ident != op.id]  # type: ignore[misc]
    lifted = len(listed) != before
    engine.mark(material=lifted)
    return {"ok": lifted}


# ---------------------------------------------------------------- callers and agents


@handles(CallbackOp)
def _callback(engine: Engine, op: CallbackOp, t: float) -> Result:
    touched = []
    for found in _tickets_for(engine, op.ticket, op.person):
        if calls.add(found, op.person, _at(t), note=op.note, phone=op.phone, preferred_time=op.preferred_time,
                     reason=op.reason, again=op.again):
            engine.changed(found)
        touched.append(found.id)
    if op.person not in engine.inv.people:
        return {"tickets": touched, "skipped": f"no person {op.person[:100]!r} in the inventory"}
    if not touched and not op.ticket:
        # a caller faster than the ticket's hold: remember the wish for a while
        engine.early_callbacks[op.person] = t
    return {"tickets": touched}


def _tickets_for(engine: Engine, ticket: str | None, person: str) -> Iterable[Ticket]:
    """The open tickets a caller is asking about: the one named, else all that affect them."""
    if ticket:
        found = engine.tickets.get(ticket)
        return [found] if found is not None else []
    return [tk for tk in engine.tickets.values() if person in tk.affected]


def _open_ticket(engine: Engine, tid: str) -> Ticket | Result:
    tk = engine.tickets.get(tid)
    return tk if tk is not None else {"tickets": [], "skipped": f"no open ticket {tid[:100]!r}"}


@handles(Ack)
def _ack(engine: Engine, op: Ack, t: float) -> Result:
    tk = _open_ticket(engine, op.ticket)
    if not isinstance(tk, Ticket):
        return tk
    if tk.status == "open" or tk.escalation:
        escalation.on_ack(tk, t, op.by)
        if tk.status == "open":
            tk.status = "acknowledged"
            tk.acknowledged_at = _at(t)
            tk.acknowledged_by = op.by
    engine.changed(tk)
    return {"tickets": [tk.id]}


@handles(Resolve)
def _resolve(engine: Engine, op: Resolve, t: float) -> Result:
    tk = _open_ticket(engine, op.ticket)
    if not isinstance(tk, Ticket):
        return tk
    by = op.by or "agent"
    g = engine.groups.get(tk.group_key)
    if g is not None and g.ticket == tk.id:  # its group (if it still holds it) is closed with it
        groups.resolve(engine, g, t, by=by)
    else:
        engine.tickets.pop(tk.id, None)
        tickets.close(engine, tk, t, by)
    engine.changed(tk)
    return {"tickets": [tk.id]}


# ---------------------------------------------------------------- the helpdesk's own steps


def _step(engine: Engine, tk: Ticket | None, tid: str, step: Callable[[Ticket], bool], why: str) -> Result:
    """Apply ``step`` to the ticket; ``why`` is the answer when it changed nothing."""
    if tk is None:
        return {"tickets": [], "error": f"no open ticket {tid}"}
    if not step(tk):
        return {"tickets": [], "error": why}
    engine.changed(tk)
    return {"tickets": [tk.id]}


@handles(Call)
def _call(engine: Engine, op: Call, t: float) -> Result:
    def record(tk: Ticket) -> bool:
        changed = calls.record(tk, op.person or None, _at(t), op.outcome, op.by, op.note)
        if changed:
            calls.settle(engine, tk)
        return changed
    return _step(engine, calls.find(engine, op.ticket), op.ticket, record,
                 "no call owed to that person on this ticket, or an unknown outcome")


@handles(Escalate)
def _escalate(engine: Engine, op: Escalate, t: float) -> Result:
    def hand_over(tk: Ticket) -> bool:
        team = escalation.team_for(tk, op.to)
        if team is None or tk.status == "resolved":
            return False
        escalation.escalate(engine, tk, t, team, op.reason or "", op.by or "agent")
        return True
    return _step(engine, engine.tickets.get(op.ticket), op.ticket, hand_over, "to: expected admins or service")


@handles(Advice)
def _advice(engine: Engine, op: Advice, t: float) -> Result:
    return _step(engine, engine.tickets.get(op.ticket), op.ticket, lambda tk: advice.on_op(engine, tk, op, t),
                 "not a disk ticket waiting for confirmation, or a person without a folder on the share")


@handles(OfficeAnswer)
def _office_answer(engine: Engine, op: OfficeAnswer, t: float) -> Result:
    return _step(engine, engine.tickets.get(op.ticket), op.ticket, lambda tk: office.answer(engine, tk, op, t),
                 "answer: expected planned, failure or no_answer (and an open call task for no_answer)")
