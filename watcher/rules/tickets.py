"""Tickets: what a group's incident looks like to the helpdesk, and who is told.

A group that opens gets a ticket here: its title in the client's language, who is affected
and why, whether it is planned (a maintenance window or a silence covers it), its SLA
clock, the kind's own details (``RuleKind.open_details``), the calls owed and the notices
(opened or planned, the office check, advice).  Its end is here too: resolved when its group
resolves or an agent resolves it, and escalated to the client's administrators when the
helpdesk's reaction time runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from watcher.model import Callback, NotificationKind, Ticket, TimelineEntry, format_time
from watcher.rules import calls, escalation, mail, office
from watcher.rules.impact import affected

if TYPE_CHECKING:
    from watcher.config.rules import Rule
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group
    from watcher.rules.windows import MaintenanceWindow, SilenceWindow

REACT_HOURS = {"standard": 6.0, "gold": 4.0, "platinum": 2.0}
ADMIN_HOURS = {"standard": (8.0, 24.0), "gold": (4.0, 12.0), "platinum": (2.0, 8.0)}
EARLY_CALLBACK_TTL = 15 * 60.0

_DEFAULT_TITLES = {
    "internet": {"pl": "Brak dostępu do internetu: {site_name}", "en": "Internet outage: {site_name}"},
    "host": {"pl": "Urządzenie nie odpowiada: {host}", "en": "Host not answering: {host}"},
    "disk": {"pl": "Kończy się miejsce: {share_name}", "en": "Running out of space: {share_name}"},
    "mail": {"pl": "Problem z pocztą: {mailbox}", "en": "Mail problem: {mailbox}"},
    "other": {"pl": "{alertname}: {client_name}", "en": "{alertname}: {client_name}"},
}


def dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class _Default(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def title(engine: Engine, rule: Rule, g: Group, lang: str) -> str:
    templ = rule.title or _DEFAULT_TITLES.get(rule.category, _DEFAULT_TITLES["other"])
    text = templ.get(lang) or templ.get("en") or next(iter(templ.values()))
    labels = g.labels
    inv = engine.inv
    site = inv.sites.get(labels.get("site", ""))
    client = inv.clients.get(labels.get("client", ""))
    share = inv.shares.get(labels.get("share", ""))
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


def _planned_by(engine: Engine, g: Group, client: str, t: float) -> MaintenanceWindow | SilenceWindow | None:
    """The maintenance window, else the (non-muting) silence, that makes the new ticket planned."""
    labels = g.labels
    maint = engine.in_maintenance(client, labels.get("site"), t)
    if maint is not None:
        return maint
    for fp in [*g.members, None]:
        member = engine.alerts.get(fp) if fp else None
        sil = engine.silence(member.labels if member else labels, t, mute=False)
        if sil is not None:
            return sil
    return None


def open_ticket(engine: Engine, g: Group, t: float) -> None:
    rule = engine.rule_of[g.rule]
    inv = engine.inv
    labels = g.labels
    client = inv.clients.get(labels.get("client", ""))
    if client is None:  # the inventory was reloaded without it: nobody to open a ticket for
        engine.unbound += 1
        engine.unbound_log.record("engine", "client", labels.get("client", ""), t)
        return
    tid = f"T-{engine.next_id:06d}"
    engine.next_id += 1
    entity_id = labels.get(rule.entity) or labels.get("client", "")
    maint = _planned_by(engine, g, client.id, t)
    who = affected(rule.affects, labels, inv)
    details: dict[str, object] = {}
    kind = engine.kinds[rule.name]
    advice_to = kind.open_details(engine, g, client, details)
    if maint:
        details["maintenance"] = {"reason": maint.reason, "starts_at": format_time(dt(maint.start)),
                                  "ends_at": format_time(dt(maint.end))}
    if labels.get("mailbox"):
        details["mailbox"] = labels["mailbox"]
    if g.detail.get("bounced") and rule.category == "mail":
        details["bounced"] = list(g.detail["bounced"])
    if labels.get("host"):
        details["host"] = labels["host"]
    tk = Ticket(
        id=tid, client=client.id, category=rule.category, entity_kind=rule.entity, entity_id=entity_id,
        title=title(engine, rule, g, client.language), opened_at=dt(t), rule=rule.name, group_key=g.gid,
        site=labels.get("site"), planned=maint is not None, flapping=g.flapping, sla_tier=client.sla,
        affected=list(who), affected_why=who, advice_to=advice_to, details=details,
        event_count=g.events,
    )
    problem = mail.problem(tk, labels)
    if problem:
        tk.details["problem"] = problem
    if rule.escalate and not tk.planned:
        tk.react_by = client.business_hours.add(tk.opened_at, REACT_HOURS[client.sla] * 3600)
        engine.schedule(tk.react_by.timestamp(), "escalate", tid)
    for entry in g.pending_timeline:
        tk.timeline.append(TimelineEntry(dt(entry["at"]), entry["what"], entry["role"],
                                         entry.get("fingerprint"), entry.get("labels")))
    g.pending_timeline = []
    g.ticket = tid
    engine.tickets[tid] = tk
    for person, asked in list(engine.early_callbacks.items()):
        if t - asked > EARLY_CALLBACK_TTL:
            del engine.early_callbacks[person]
        elif person in who:
            tk.callbacks.append(Callback(person, dt(asked)))
            del engine.early_callbacks[person]
    engine.changed(tk)
    told: NotificationKind = "planned" if tk.planned else "opened"
    domains = mail.mail_domains(inv, client.id) if problem == "server_down" else set()
    for person in who:
        engine.notify(tk, person, told, t)
        if domains and person in inv.people and \
                not mail.independent_urls(inv.people[person].notify, domains):
            calls.add(tk, person, dt(t), reason="mail server down: no other way to reach them")
    site = inv.sites.get(labels.get("site", ""))
    if rule.office_check and not tk.planned and site and site.office_contact:
        office.on_open(engine, tk, site, t)
    kind.on_open(engine, tk, t)
    if advice_to:
        engine.notify(tk, advice_to, "advice", t)


def close(engine: Engine, tk: Ticket, t: float, by: str | None) -> None:
    tk.status = "resolved"
    tk.resolved_at = dt(t)
    tk.resolved_by = by
    told = [n.to for n in tk.notifications if n.kind in ("opened", "planned")]
    for person in dict.fromkeys([c.person for c in tk.callbacks] + told):
        engine.notify(tk, person, "resolved", t)
    calls.on_close(engine, tk)  # callbacks stay "to call" until an agent records the call
    engine.changed(tk)


def auto_escalate(engine: Engine, tk: Ticket, t: float) -> None:
    """The helpdesk's reaction time ran out on a ticket still open: the client's admins take it."""
    if tk.status != "open" or tk.planned:
        return
    client = engine.inv.clients.get(tk.client)
    tk.escalated_at = dt(t)
    tk.breached = True
    if client:
        tk.resolve_by = client.business_hours.add(dt(t), ADMIN_HOURS[client.sla][1] * 3600)
    engine.notify(tk, "admins", "escalated", t)
    escalation.on_auto(engine, tk, t)
    engine.changed(tk)
