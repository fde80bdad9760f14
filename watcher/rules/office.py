"""The office check as a call task: an office that has just lost its internet reads no e-mail.

When a rule with ``office_check`` opens a ticket for a site whose office contact has a phone
number, the ticket gets a "call the office" task (shown on the call list with the number,
due at the start of the client's next business hours).  The agent records the answer:

- ``planned``: the ticket becomes planned and the remote staff get the planned notice;
- ``failure``: the ticket is escalated to the administrators (or to the site's internet
  provider, when the inventory names one) and the remote staff are told that the office
  confirmed the failure;
- ``no_answer``: the attempt is recorded and the task stays on the list.

The notice with the two answer links still goes: by SMS first when watcher.yaml names an
SMS gateway (``notify.sms_url``, an Apprise URL with ``{phone}``) and the contact has a
phone, else by e-mail (the office's staff may read mail another way).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watcher.model import CallAttempt, format_time
from watcher.rules import escalation

if TYPE_CHECKING:
    from watcher.config.inventory import Site
    from watcher.model import OfficeAnswer, Ticket
    from watcher.rules.engine import Engine

ANSWERS = ("planned", "failure", "no_answer")


def on_open(engine: Engine, tk: Ticket, site: Site, t: float) -> None:
    """Create the call task when the office can be phoned; the notice with the answer links goes too."""
    contact = site.office_contact
    if contact is None:
        return
    at = datetime.fromtimestamp(t, UTC)
    if contact.phone:
        client = engine.inv.clients.get(tk.client)
        due = client.business_hours.add(at, 0) if client else at
        tk.tasks.append({"id": "call-office", "kind": "call_office", "site": site.id, "site_name": site.name,
                         "name": contact.name, "phone": contact.phone, "what": "planned or failure?",
                         "added_at": format_time(at), "due_at": format_time(due), "done_at": None,
                         "answer": None, "attempts": []})
    engine.notify(tk, f"office:{site.id}", "office_check", t)  # by e-mail, or SMS (notify.sms_url)


def answer(engine: Engine, tk: Ticket, op: OfficeAnswer, t: float) -> bool:
    """Record the office's answer (from the console, the CLI or the e-mail's link)."""
    reply = op.answer
    if reply not in ANSWERS:
        return False
    at = format_time(datetime.fromtimestamp(t, UTC))
    by = (op.by or "office")[:100]
    note = " ".join((op.note or "").split())[:500] or None
    task = next((x for x in tk.tasks if x.get("kind") == "call_office"), None)
    if reply == "no_answer":
        if task is None or task.get("done_at"):
            return False
        attempt = CallAttempt(at=at, outcome="no_answer", by=by)
        if note:
            attempt["note"] = note
        task["attempts"].append(attempt)
        return True
    if task is not None and not task.get("done_at"):
        task["done_at"], task["answer"], task["by"] = at, reply, by
        if note:
            task["note"] = note
    if tk.details.get("office_answer") == reply:
        return True
    tk.details["office_answer"] = reply
    if reply == "planned":
        if not tk.planned:
            tk.planned = True
            for person in tk.affected:
                engine.notify(tk, person, "planned", t)
        return True
    site = engine.inv.sites.get(tk.site or "")
    provider = getattr(site, "provider_contact", None) if site else None
    recipient = f"provider:{site.id}" if site is not None and provider is not None else None
    if not tk.escalation:
        escalation.escalate(engine, tk, t, "admins", "the office confirmed a failure" + (f": {note}" if note else ""),
                            by, notify=recipient)
        if recipient:
            engine.notify(tk, "admins", "escalated", t)
    for person in tk.affected:
        engine.notify(tk, person, "failure_confirmed", t)
    return True
