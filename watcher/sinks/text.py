"""What watcher writes into a helpdesk ticket, in the client's language (Polish or English).

Agents read these in their own ticket system, so each text stands on its own: what is
wrong, where, since when, who is affected and who has already been told, who waits for a
call back (with the phone number to call), and the SLA deadline.  Times are shown in the
client's time zone.  The subject carries watcher's ticket id in brackets, which is also how
a ticket is found again after a crash (``[watcher T-000123]``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from watcher.config import Config
from watcher.model import parse_time

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


class Texts:
    """Texts about one ticket document for one client (language and time zone from the inventory)."""

    def __init__(self, config: Config, doc: dict[str, Any]) -> None:
        self.config = config
        self.doc = doc
        client = config.inventory.clients.get(doc["client"])
        self.client = client
        lang = (client.language if client else "en").split("-")[0]
        self.t = _T.get(lang, _T["en"])
        self.zone: ZoneInfo | None = client.timezone if client else None

    def when(self, value: Any) -> str:
        if not value:
            return "-"
        dt: datetime = parse_time(value)
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
        return f"[watcher {self.doc['id']}] {self.doc.get('title', '')}"[:250]

    def body(self) -> str:
        d, t = self.doc, self.t
        site = self.config.inventory.sites.get(d.get("site") or "")
        where = ", ".join(x for x in (self.client.name if self.client else d["client"],
                                      site.name if site else d.get("site")) if x)
        entity = d.get("entity") or {}
        told = [n["to"] for n in d.get("notifications", []) if n["kind"] in ("opened", "planned", "office_check")]
        lines = [
            d.get("title", ""),
            "",
            f"{t['what']}: {d.get('category')} ({entity.get('kind')} {entity.get('id')})",
            f"{t['where']}: {where}",
            f"{t['since']}: {self.when(d.get('opened_at'))}",
            f"{t['affected']}: {', '.join(self.person(p) for p in d.get('affected', [])) or t['none']}",
            f"{t['told']}: {', '.join(self.person(p) for p in dict.fromkeys(told)) or t['none']}",
            f"{t['callbacks']}: " + ("; ".join(self.person(c['person'], phone=True) for c in d.get("callbacks", []))
                                     or t["none"]),
        ]
        sla = d.get("sla") or {}
        if sla.get("react_by"):
            lines.append(f"{t['sla'].format(tier=sla.get('tier'))}: {self.when(sla['react_by'])}")
        if d.get("planned"):
            lines.append(t["planned"])
        if d.get("flapping"):
            lines.append(t["flapping"])
        lines.append(f"{t['watcher']}: {d['id']}")
        base = self.config.service.public_url.rstrip("/")
        if base:
            lines.append(f"{base}/api/v1/tickets/{d['id']}")
        return "\n".join(lines) + "\n"

    def comment(self, key: str) -> str:
        d, t = self.doc, self.t
        sla = d.get("sla") or {}
        if key == "planned":
            return t["planned"]
        if key == "flapping":
            return t["flapping"]
        if key == "escalated":
            return t["escalated"].format(at=self.when(sla.get("escalated_at")), by=self.when(sla.get("resolve_by")))
        if key == "ack":
            return t["ack"].format(by=d.get("acknowledged_by") or "agent", at=self.when(d.get("acknowledged_at")))
        if key.startswith("callback:"):
            pid = key.split(":", 1)[1]
            p = self.config.inventory.people.get(pid)
            phone = p.phone if p and p.phone else t["no_phone"]
            return t["callback"].format(name=p.name if p else pid, phone=phone)
        if key.startswith("evidence:"):
            fp = key.split(":", 1)[1]
            entry = next((e for e in d.get("timeline", []) if e.get("fingerprint") == fp), None)
            if entry is None:
                return t["evidence"].format(role="?", what=fp, at="-")
            labels = entry.get("labels") or {}
            where = labels.get("host") or labels.get("instance") or labels.get("mailbox") or ""
            what = entry["what"] + (f" [{where}]" if where else "")
            return t["evidence"].format(role=t.get(entry.get("role", ""), entry.get("role", "")), what=what,
                                        at=self.when(entry.get("at")))
        return key

    def resolution(self) -> str:
        d, t = self.doc, self.t
        owed = [n["to"] for n in d.get("notifications", []) if n["kind"] == "resolved"]
        text = t["resolved"].format(at=self.when(d.get("resolved_at")), by=d.get("resolved_by") or t["by_monitoring"])
        return text + "\n" + t["all_clear"].format(who=", ".join(self.person(p) for p in owed) or t["none"]) + "\n"
