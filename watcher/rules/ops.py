"""The helpdesk's own operations on tickets: record a call, escalate, confirm disk advice,
answer the office check.

Each is an ``Op`` that went through the inbox like ``ack`` and ``resolve``, so the service
and ``watcher replay`` apply it at the same point of the stream and get the same tickets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watcher.rules import advice, calls, escalation, office

if TYPE_CHECKING:
    from watcher.model import Op
    from watcher.rules.engine import Engine

HANDLED = ("call", "escalate", "advice", "office_answer")


def apply(engine: Engine, op: Op, t: float) -> dict[str, Any]:
    """Apply one of ``HANDLED``; ``{"tickets": [id]}`` when it changed the ticket, else empty."""
    a = op.args
    tid = str(a.get("ticket"))
    tk = calls.find(engine, tid) if op.kind == "call" else engine.tickets.get(tid)
    if tk is None:
        return {"tickets": [], "error": f"no open ticket {tid}"}
    from datetime import UTC, datetime

    at = datetime.fromtimestamp(t, UTC)
    if op.kind == "call":
        person = a.get("person")
        changed = calls.record(tk, str(person) if person else None, at, a)
        if changed:
            calls.settle(engine, tk)
        why = "no call owed to that person on this ticket, or an unknown outcome"
    elif op.kind == "escalate":
        team = escalation.team_for(tk, a.get("to"))
        changed = team is not None and tk.status != "resolved"
        if team is not None and changed:
            escalation.escalate(engine, tk, t, team, str(a.get("reason") or ""), str(a.get("by") or "agent"))
        why = "to: expected admins or service"
    elif op.kind == "advice":
        changed = advice.on_op(engine, tk, a, t)
        why = "not a disk ticket waiting for confirmation, or a person without a folder on the share"
    else:
        changed = office.answer(engine, tk, a, t)
        why = "answer: expected planned, failure or no_answer (and an open call task for no_answer)"
    if not changed:
        return {"tickets": [], "error": why}
    engine._dirty[tk.id] = tk
    engine._material = True
    return {"tickets": [tk.id]}
