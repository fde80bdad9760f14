"""Which calls a ticket owes each helpdesk system, derived from the ticket as it stands.

Pure and repeatable: the engine worker asks for the jobs of every ticket it writes, and
the queue keeps each (ticket, system, key) once, so asking again costs nothing and a crash
between two asks loses nothing.  Keys name facts, not moments: ``open``; a comment for
each fact learnt later (``planned``, ``flapping``, ``escalated``, ``ack``, ``callback:<person>``,
``evidence:<fingerprint>``); ``resolve``.  The facts already true when the ticket opened
are the open job's ``baseline``: they are in the new ticket's body, so their comment jobs
finish without a call.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from watcher.config.sinks import SinksConfig
from watcher.model import Ticket

MAX_EVIDENCE = 20  # comments about new evidence per ticket and system; more would be noise


def facts(tk: Ticket) -> list[str]:
    """The comment keys true of the ticket now, in the order they should be told."""
    out: list[str] = []
    seen: set[str] = set()
    for entry in tk.timeline:
        if entry.fingerprint and entry.fingerprint not in seen and len(seen) < MAX_EVIDENCE:
            seen.add(entry.fingerprint)
            out.append(f"evidence:{entry.fingerprint}")
    if tk.planned:
        out.append("planned")
    if tk.flapping:
        out.append("flapping")
    if tk.escalated_at is not None:
        out.append("escalated")
    if tk.acknowledged_at is not None:
        out.append("ack")
    out += [f"callback:{c.person}" for c in tk.callbacks]
    return out


def jobs_for(tickets: Iterable[Ticket], cfg: SinksConfig) -> list[dict[str, Any]]:
    """The jobs the tickets owe every system that serves their client (open first, resolve last)."""
    jobs: list[dict[str, Any]] = []
    for tk in tickets:
        systems = [s for s in cfg.systems if s.serves(tk.client)]
        if not systems:
            continue
        now_true = facts(tk)
        for system in systems:
            base = {"ticket_id": tk.id, "sink": system.name}
            jobs.append({**base, "key": "open", "action": "open", "payload": {"baseline": now_true}})
            jobs += [{**base, "key": key, "action": "comment"} for key in now_true]
            if tk.status == "resolved":
                jobs.append({**base, "key": "resolve", "action": "resolve"})
    return jobs
