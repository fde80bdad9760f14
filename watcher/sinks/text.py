"""What watcher writes into a helpdesk ticket, in the client's language (Polish or English).

Agents read these in their own ticket system, so each text stands on its own: what is
wrong, where, since when, who is affected and who has already been told, who waits for a
call back (with the phone number to call), and the SLA deadline.  Times are shown in the
client's time zone.  The subject carries watcher's ticket id in brackets, which is also how
a ticket is found again after a crash (``[watcher T-000123]``).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from watcher.config import Config
from watcher.model import NotificationKind, Ticket

_T: dict[str, dict[str, str]] = {
    "pl": {
        "what": "Co", "where": "Gdzie", "since": "Od", "affected": "Dotyczy", "told": "Powiadomieni",
        "callbacks": "Prośba o kontakt", "sla": "Termin reakcji (SLA {tier})", "none": "nikt",
        "watcher": "Zgłoszenie watcher", "phone": "tel.", "no_phone": "brak telefonu w inwentarzu",
        "planned": "Przerwa planowana (nie liczy się do SLA).", "flapping": "Sygnał migocze: problem znika i wraca.",
        "escalated": "Termin reakcji minął {at}; sprawa eskalowana do administratorów. Termin rozwiązania: {by}.",
        "ack": "Potwierdzone w konsoli watcher przez {by} ({at}).",
        "callback": "{name} prosi o kontakt: {phone}.",
        "evidence": "Nowy sygnał ({role}): {what}, {at}.", "cause": "przyczyna", "symptom": "objaw",
        "resolved": "Problem ustąpił {at} ({by}).", "all_clear": "Wiadomość o usunięciu problemu idzie do: {who}.",
        "by_monitoring": "potwierdził monitoring", "office": "biuro",
    },
    "en": {
        "what": "What", "where": "Where", "since": "Since", "affected": "Affected", "told": "Told",
        "callbacks": "Waiting for a call back", "sla": "React by (SLA {tier})", "none": "nobody",
        "watcher": "watcher ticket", "phone": "phone", "no_phone": "no phone number in the inventory",
        "planned": "Planned outage (does not count against the SLA).",
        "flapping": "The signal is flapping: the problem goes away and comes back.",
        "escalated": "The reaction deadline passed {at}; escalated to the admins. Resolve by: {by}.",
        "ack": "Acknowledged in the watcher console by {by} ({at}).",
        "callback": "{name} asks to be called back: {phone}.",
        "evidence": "New signal ({role}): {what}, {at}.", "cause": "cause", "symptom": "symptom",
        "resolved": "The problem ended {at} ({by}).", "all_clear": "The all-clear goes to: {who}.",
        "by_monitoring": "seen by monitoring", "office": "office",
    },
}


TOLD: tuple[NotificationKind, ...] = ("opened", "planned", "office_check")  # the notices that tell of a problem


class Texts:
    """Texts about one ticket for one client (language and time zone from the inventory)."""

    def __init__(self, config: Config, ticket: Ticket) -> None:
        self.config = config
        self.ticket = ticket
        client = config.inventory.clients.get(ticket.client)
        self.client = client
        lang = (client.language if client else "en").split("-")[0]
        self.t = _T.get(lang, _T["en"])
        self.zone: ZoneInfo | None = client.timezone if client else None

    def when(self, value: datetime | None) -> str:
        if value is None:
            return "-"
        dt = value
        if self.zone is not None:
            dt = dt.astimezone(self.zone)
        return dt.strftime("%Y-%m-%d %H:%M %Z")

    def person(self, pid: str, phone: bool = False) -> str:
        if pid.startswith("office:"):
            site = self.config.inventory.sites.get(pid[7:])
            return f"{site.office_contact.name if site and site.office_contact else pid} ({self.t['office']})"
        if pid in ("admins", "coordinator"):
            return pid
        p = self.config.inventory.people.get(pid)
        if p is None:
            return pid
        if not phone:
            return p.name
        return f"{p.name}, {self.t['phone']} {p.phone}" if p.phone else f"{p.name} ({self.t['no_phone']})"

    def subject(self) -> str:
        return f"[watcher {self.ticket.id}] {self.ticket.title}"[:250]

    def body(self) -> str:
        tk, t = self.ticket, self.t
        site = self.config.inventory.sites.get(tk.site or "")
        where = ", ".join(x for x in (self.client.name if self.client else tk.client,
                                      site.name if site else tk.site) if x)
        told = [n.to for n in tk.notifications if n.kind in TOLD]
        lines = [
            tk.title,
            "",
            f"{t['what']}: {tk.category} ({tk.entity_kind} {tk.entity_id})",
            f"{t['where']}: {where}",
            f"{t['since']}: {self.when(tk.opened_at)}",
            f"{t['affected']}: {', '.join(self.person(p) for p in tk.affected) or t['none']}",
            f"{t['told']}: {', '.join(self.person(p) for p in dict.fromkeys(told)) or t['none']}",
            f"{t['callbacks']}: " + ("; ".join(self.person(c.person, phone=True) for c in tk.callbacks)
                                     or t["none"]),
        ]
        if tk.react_by is not None:
            lines.append(f"{t['sla'].format(tier=tk.sla_tier)}: {self.when(tk.react_by)}")
        if tk.planned:
            lines.append(t["planned"])
        if tk.flapping:
            lines.append(t["flapping"])
        lines.append(f"{t['watcher']}: {tk.id}")
        base = self.config.service.public_url.rstrip("/")
        if base:
            lines.append(f"{base}/api/v1/tickets/{tk.id}")
        return "\n".join(lines) + "\n"

    def comment(self, key: str) -> str:
        tk, t = self.ticket, self.t
        if key == "planned":
            return t["planned"]
        if key == "flapping":
            return t["flapping"]
        if key == "escalated":
            return t["escalated"].format(at=self.when(tk.escalated_at), by=self.when(tk.resolve_by))
        if key == "ack":
            return t["ack"].format(by=tk.acknowledged_by or "agent", at=self.when(tk.acknowledged_at))
        if key.startswith("callback:"):
            pid = key.split(":", 1)[1]
            p = self.config.inventory.people.get(pid)
            phone = p.phone if p and p.phone else t["no_phone"]
            return t["callback"].format(name=p.name if p else pid, phone=phone)
        if key.startswith("evidence:"):
            fp = key.split(":", 1)[1]
            entry = next((e for e in tk.timeline if e.fingerprint == fp), None)
            if entry is None:
                return t["evidence"].format(role="?", what=fp, at="-")
            labels = entry.labels or {}
            where = labels.get("host") or labels.get("instance") or labels.get("mailbox") or ""
            what = entry.what + (f" [{where}]" if where else "")
            return t["evidence"].format(role=t.get(entry.role, entry.role), what=what, at=self.when(entry.at))
        return key

    def resolution(self) -> str:
        tk, t = self.ticket, self.t
        owed = [n.to for n in tk.notifications if n.kind == "resolved"]
        text = t["resolved"].format(at=self.when(tk.resolved_at), by=tk.resolved_by or t["by_monitoring"])
        return text + "\n" + t["all_clear"].format(who=", ".join(self.person(p) for p in owed) or t["none"]) + "\n"
