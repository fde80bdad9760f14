"""Escalation as the helpdesk does it: an agent hands a ticket to a second line, with a reason.

The second line is the client's administrators ("Administracja IT") or the service team
("Serwis IT", for hardware).  Handing over starts that team's reaction and resolution
clocks from the client's SLA tier, counted in the client's business hours (which skip the
client's public holidays when the inventory names a calendar):

    tier       Administracja IT   Serwis IT
    standard   8 h / 24 h         8 h / 48 h
    gold       4 h / 12 h         4 h / 24 h
    platinum   2 h / 8 h          2 h / 12 h

An acknowledgement after the hand-over meets the reaction clock; only resolving the ticket
stops the resolution clock.  A clock that runs out is flagged on the ticket
(``escalation.reaction_missed`` / ``resolution_missed``) and told to the team.  The
automatic escalation on a missed helpdesk reaction stays in the engine; its resolution
deadline (``sla.resolve_by``) is watched here too.

A client whose contract differs from the table names its own clocks in the inventory
(``escalation_clocks: {admins: {react: 4h, resolve: 12h}}``).

Timers are the engine's (kind ``deadline``, key ``TICKET|react`` or ``TICKET|resolve``), so
they fire at their exact time in the service and in replay alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watcher.model import Ticket, format_time, parse_time

if TYPE_CHECKING:
    from watcher.rules.engine import Engine

TEAMS = {"admins": "Administracja IT", "service": "Serwis IT"}
HOURS: dict[str, dict[str, tuple[float, float]]] = {
    "admins": {"standard": (8.0, 24.0), "gold": (4.0, 12.0), "platinum": (2.0, 8.0)},
    "service": {"standard": (8.0, 48.0), "gold": (4.0, 24.0), "platinum": (2.0, 12.0)},
}
HARDWARE_CATEGORIES = frozenset({"hardware", "printer", "device", "workstation"})


def team_for(tk: Ticket, asked: str | None) -> str | None:
    """The team an escalation goes to: the agent's choice, else by the ticket's category."""
    if asked in TEAMS:
        return str(asked)
    if asked in (None, ""):
        return "service" if tk.category in HARDWARE_CATEGORIES else "admins"
    return None


def escalate(engine: Engine, tk: Ticket, t: float, to: str, reason: str, by: str,
             notify: str | None = None) -> None:
    """Hand ``tk`` to team ``to``: start its clocks, tell its recipient (``notify`` or the team)."""
    client = engine.inv.clients.get(tk.client)
    at = datetime.fromtimestamp(t, UTC)
    react_h, resolve_h = HOURS[to][tk.sla_tier if tk.sla_tier in HOURS[to] else "standard"]
    react_s, resolve_s = react_h * 3600, resolve_h * 3600
    if client is not None:
        react_s, resolve_s = client.escalation_clocks.get(to, (react_s, resolve_s))
        react_by = client.business_hours.add(at, react_s)
        resolve_by = client.business_hours.add(at, resolve_s)
    else:
        react_by = resolve_by = at
    recipient = notify or to
    tk.escalation = {
        "to": to, "team": TEAMS[to], "reason": reason[:500], "by": by[:100], "at": format_time(at),
        "notify": recipient, "react_by": format_time(react_by), "resolve_by": format_time(resolve_by),
        "reacted_at": None, "reaction_missed": False, "resolution_missed": False,
    }
    if tk.escalated_at is None:
        tk.escalated_at = at
    tk.resolve_by = resolve_by
    _schedule(engine, tk)
    engine.notify(tk, recipient, "escalated", t)
    engine.changed(tk)


def on_auto(engine: Engine, tk: Ticket, t: float) -> None:
    """After the engine's automatic escalation: watch the resolution deadline it set."""
    if tk.resolve_by is not None and not tk.escalation:
        tk.escalation = {"to": "admins", "team": TEAMS["admins"], "reason": "helpdesk reaction time exceeded",
                         "by": "watcher", "at": format_time(datetime.fromtimestamp(t, UTC)), "notify": "admins",
                         "react_by": None, "resolve_by": format_time(tk.resolve_by), "reacted_at": None,
                         "reaction_missed": False, "resolution_missed": False}
    _schedule(engine, tk)


def on_ack(tk: Ticket, t: float, by: str | None) -> bool:
    """An acknowledgement after the hand-over meets the team's reaction clock."""
    esc = tk.escalation
    if not esc or esc.get("reacted_at") or not esc.get("react_by"):
        return False
    esc["reacted_at"] = format_time(datetime.fromtimestamp(t, UTC))
    if by:
        esc["reacted_by"] = by
    return True


def _schedule(engine: Engine, tk: Ticket) -> None:
    esc = tk.escalation
    if esc.get("react_by") and not esc.get("reacted_at") and not esc.get("reaction_missed"):
        engine.schedule(parse_time(esc["react_by"]).timestamp(), "deadline", f"{tk.id}|react")
    if tk.resolve_by is not None and not esc.get("resolution_missed"):
        engine.schedule(tk.resolve_by.timestamp(), "deadline", f"{tk.id}|resolve")


def restore(engine: Engine, tk: Ticket) -> None:
    """Re-arm a restored ticket's clocks (the timer heap is not part of the snapshot)."""
    if tk.escalation or tk.resolve_by is not None:
        _schedule(engine, tk)


def valid(engine: Engine, key: str, due: float) -> bool:
    tid, which = key.rsplit("|", 1)
    tk = engine.tickets.get(tid)
    if tk is None:
        return False
    esc = tk.escalation
    if which == "react":
        return bool(esc.get("react_by")) and not esc.get("reacted_at") and not esc.get("reaction_missed") \
            and abs(parse_time(esc["react_by"]).timestamp() - due) < 1e-6
    return tk.resolve_by is not None and not esc.get("resolution_missed") \
        and abs(tk.resolve_by.timestamp() - due) < 1e-6


def fire(engine: Engine, key: str, t: float) -> None:
    """A clock ran out on a ticket still not resolved: flag it and tell the team."""
    tid, which = key.rsplit("|", 1)
    tk = engine.tickets[tid]
    if not tk.escalation:
        on_auto(engine, tk, t)
    esc = tk.escalation
    esc["reaction_missed" if which == "react" else "resolution_missed"] = True
    engine.notify(tk, str(esc.get("notify") or "admins"),
                   "reaction_missed" if which == "react" else "resolution_missed", t)
    engine.changed(tk)
