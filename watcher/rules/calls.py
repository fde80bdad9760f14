"""The call list: callbacks people asked for, kept until an agent records the call.

A notice that says "we will call you" is a promise, so a callback is not done when the
ticket resolves: it stays "to call" (on the ticket, and, after resolution, in the
engine's ``owed`` tickets) until an agent records a call that reached the person
(``call`` op, outcome ``reached`` or ``left_message``).  A call that did not reach them
(``no_answer``) is recorded as an attempt and the callback stays on the list.

Pure functions over the engine's state, called from small hooks in ``engine.py``; they
use only the op's own time, so replaying the inbox gives the same list.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from watcher.model import CallAttempt, Callback, Ticket, format_time

if TYPE_CHECKING:
    from watcher.rules.engine import Engine

OUTCOMES = ("reached", "left_message", "no_answer")
DONE_OUTCOMES = ("reached", "left_message")
OWED_TTL = 30 * 86400.0  # a resolved ticket's calls stay on the list this long at most
TEXT_MAX = 500


def _clean(value: Any) -> str | None:
    """Free text from an agent or a caller, trimmed to a sane length; None when empty."""
    if value is None:
        return None
    text = " ".join(str(value).split())[:TEXT_MAX]
    return text or None


def pending(tk: Ticket) -> list[Callback]:
    return [c for c in tk.callbacks if c.done_at is None]


def add(tk: Ticket, person: str, at: datetime, *, note: str | None = None, phone: str | None = None,
        preferred_time: str | None = None, reason: str | None = None, again: bool = False) -> bool:
    """Put ``person`` on the ticket's call list, or update their wish; True if anything changed."""
    extra: dict[str, str | None] = {"note": _clean(note), "phone": _clean(phone),
                                    "preferred_time": _clean(preferred_time), "reason": _clean(reason)}
    for cb in tk.callbacks:
        if cb.person == person:
            changed = False
            for key, value in extra.items():
                if value and getattr(cb, key) != value:
                    setattr(cb, key, value)
                    changed = True
            if cb.done_at is not None and again:
                cb.done_at, cb.how, changed = None, None, True
            return changed
    tk.callbacks.append(Callback(person, at, note=extra["note"], phone=extra["phone"],
                                 preferred_time=extra["preferred_time"], reason=extra["reason"]))
    return True


def record(tk: Ticket, person: str | None, at: datetime, outcome: str | None, by: str | None,
           note: str | None) -> bool:
    """An agent's call: attempt recorded; a call that reached the person ends the callback."""
    outcome = outcome or "reached"
    if outcome not in OUTCOMES:
        return False
    targets = [c for c in pending(tk) if person is None or c.person == person]
    if not targets:
        return False
    entry = CallAttempt(at=format_time(at), outcome=outcome)
    who, what = _clean(by), _clean(note)
    if who:
        entry["by"] = who
    if what:
        entry["note"] = what
    for cb in targets[:1] if person is None else targets:
        cb.calls.append(entry.copy())
        if outcome in DONE_OUTCOMES:
            cb.done_at = at
            cb.how = "called"
    return True


def on_close(engine: Engine, tk: Ticket) -> None:
    """A resolved ticket with calls still owed stays reachable for the ``call`` op."""
    if pending(tk):
        engine.owed[tk.id] = tk


def find(engine: Engine, ticket_id: str) -> Ticket | None:
    """An open ticket, or a resolved one that still owes calls."""
    return engine.tickets.get(ticket_id) or engine.owed.get(ticket_id)


def settle(engine: Engine, tk: Ticket) -> None:
    """Drop a resolved ticket from the owed list once nobody is waiting for a call."""
    if tk.status == "resolved" and not pending(tk):
        engine.owed.pop(tk.id, None)


def prune(engine: Engine, now: float) -> None:
    for tid in [tid for tid, tk in engine.owed.items()
                if tk.resolved_at is not None and now - tk.resolved_at.timestamp() > OWED_TTL]:
        del engine.owed[tid]


def call_list(docs: list[dict[str, Any]], people: dict[str, Any], sites: dict[str, Any]) -> list[dict[str, Any]]:
    """The agents' call list from ticket documents: every call owed, oldest first.

    Callbacks not yet made (on open, acknowledged and resolved tickets alike: the call is
    due when it is fixed) and open tasks such as "call the office".  ``people`` and
    ``sites`` are the inventory's, for names and phone numbers.
    """
    rows: list[dict[str, Any]] = []
    for doc in docs:
        for cb in doc.get("callbacks", []):
            if cb.get("done_at"):
                continue
            person = people.get(cb["person"])
            site_id = getattr(person, "site", None) or doc.get("site")
            site = sites.get(site_id or "")
            rows.append({
                "kind": "callback", "ticket": doc["id"], "ticket_status": doc["status"],
                "ticket_title": doc.get("title"), "client": doc["client"], "person": cb["person"],
                "name": getattr(person, "name", cb["person"]),
                "phone": cb.get("phone") or getattr(person, "phone", None),
                "site": site_id, "site_name": getattr(site, "name", site_id),
                "preferred_time": cb.get("preferred_time"), "note": cb.get("note"), "reason": cb.get("reason"),
                "asked_at": cb.get("added_at"), "attempts": len(cb.get("calls", [])),
                "call_now": doc["status"] == "resolved" or bool(cb.get("reason")),
            })
        for task in doc.get("tasks", []):
            if task.get("done_at"):
                continue
            rows.append({
                "kind": task.get("kind", "task"), "ticket": doc["id"], "ticket_status": doc["status"],
                "ticket_title": doc.get("title"), "client": doc["client"], "person": None,
                "name": task.get("name"), "phone": task.get("phone"), "site": task.get("site"),
                "site_name": task.get("site_name"), "preferred_time": task.get("due_at"), "note": task.get("note"),
                "reason": task.get("what"), "asked_at": task.get("added_at"),
                "attempts": len(task.get("attempts", [])), "call_now": True,
            })
    rows.sort(key=lambda r: (not r["call_now"], r["asked_at"] or ""))
    return rows
