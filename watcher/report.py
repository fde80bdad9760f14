"""The monthly report for a client's IT coordinator: what happened, how fast it was handled,
and what we recommend.

``build(tickets, client, month)`` is pure (ticket documents in, a ``Report`` out), so the
same code serves ``watcher report``, the API and the tests; ``render_text`` and
``render_html`` only format it.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from typing import Any

from watcher.config.inventory import Client
from watcher.model import parse_time

CATEGORY_NAMES = {
    "pl": {"internet": "Internet w biurach", "disk": "Dyski sieciowe", "mail": "Poczta", "host": "Urządzenia",
           "other": "Inne"},
    "en": {"internet": "Office internet", "disk": "Network shares", "mail": "Mail", "host": "Devices",
           "other": "Other"},
}


@dataclass
class Report:
    client_id: str
    client_name: str
    language: str
    month: str
    tickets: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    escalated: int = 0
    median_reaction_min: float | None = None
    median_resolution_min: float | None = None
    within_sla_pct: float | None = None
    people_told: int = 0
    callbacks: int = 0
    outage_minutes: dict[str, float] = field(default_factory=dict)
    recurring: list[tuple[str, str, int]] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)


def _month_bounds(month: str) -> tuple[datetime, datetime]:
    year, mon = (int(x) for x in month.split("-", 1))
    start = datetime(year, mon, 1, tzinfo=UTC)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=UTC)
    return start, end


def build(tickets: list[dict[str, Any]], client: Client, month: str) -> Report:
    """Summarise the client's tickets opened in ``month`` (``YYYY-MM``, UTC)."""
    start, end = _month_bounds(month)
    mine = [t for t in tickets if t["client"] == client.id and start <= parse_time(t["opened_at"]) < end]
    r = Report(client.id, client.name, client.language, month, tickets=len(mine))
    r.by_category = dict(Counter(t["category"] for t in mine))
    r.planned = sum(1 for t in mine if t.get("planned"))
    r.escalated = sum(1 for t in mine if (t.get("sla") or {}).get("escalated_at"))
    reactions, resolutions, in_sla = [], [], 0
    told: set[str] = set()
    for t in mine:
        opened = parse_time(t["opened_at"])
        if t.get("acknowledged_at"):
            reactions.append((parse_time(t["acknowledged_at"]) - opened).total_seconds() / 60)
        if t.get("resolved_at"):
            minutes = (parse_time(t["resolved_at"]) - opened).total_seconds() / 60
            resolutions.append(minutes)
            if t["category"] == "internet" and not t.get("planned"):
                r.outage_minutes[t["entity"]["id"]] = r.outage_minutes.get(t["entity"]["id"], 0.0) + minutes
        if not (t.get("sla") or {}).get("breached"):
            in_sla += 1
        told.update(n["to"] for n in t.get("notifications", []) if n["kind"] in ("opened", "planned"))
        r.callbacks += len(t.get("callbacks", []))
    r.people_told = len(told)
    r.median_reaction_min = round(statistics.median(reactions), 1) if reactions else None
    r.median_resolution_min = round(statistics.median(resolutions), 1) if resolutions else None
    r.within_sla_pct = round(100 * in_sla / len(mine), 1) if mine else None
    counts = Counter((t["category"], t["entity"]["id"]) for t in mine if not t.get("planned"))
    r.recurring = [(cat, ent, n) for (cat, ent), n in counts.most_common() if n >= 2][:10]
    r.recommendations = _recommend(r, mine, client.language)
    return r


def _recommend(r: Report, tickets: list[dict[str, Any]], lang: str) -> list[str]:
    """Advice that follows from the month's tickets (the helpdesk's experience as rules)."""
    pl = lang == "pl"
    out = []
    for cat, entity, n in r.recurring:
        if cat == "internet":
            out.append(f"Biuro {entity}: {n} awarie internetu w miesiącu. Rekomendujemy łącze zapasowe (LTE/5G) "
                       "z automatycznym przełączaniem." if pl else
                       f"Office {entity}: {n} internet outages this month. We recommend a backup link (LTE/5G) "
                       "with automatic failover.")
        elif cat == "host":
            out.append(f"Urządzenie {entity} przestawało działać {n} razy: warto sprawdzić zasilanie (UPS) i stan "
                       "sprzętu." if pl else
                       f"Device {entity} stopped {n} times: check its power supply (UPS) and hardware.")
        elif cat == "mail":
            out.append(f"Skrzynka {entity}: {n} zgłoszenia. Rozważ większy limit, archiwizację lub szkolenie "
                       "z bezpiecznego logowania (MFA)." if pl else
                       f"Mailbox {entity}: {n} tickets. Consider a larger quota, archiving, or training in safe "
                       "sign-in (MFA).")
    if r.by_category.get("disk"):
        out.append("Dyski sieciowe się zapełniają: proponujemy zasady archiwizacji i limity na foldery "
                   "użytkowników." if pl else
                   "Network shares are filling up: we propose an archiving policy and per-user folder quotas.")
    if r.escalated:
        out.append(f"{r.escalated} zgłoszeń przekroczyło czas reakcji SLA: omówmy dyżury lub wyższy pakiet."
                   if pl else f"{r.escalated} tickets exceeded the SLA reaction time: let us review on-call "
                   "cover or a higher tier.")
    if not out:
        out.append("Brak powtarzających się problemów: utrzymujemy obecną konfigurację." if pl else
                   "No recurring problems: we keep the current set-up.")
    return out


def render_text(r: Report) -> str:
    pl = r.language == "pl"
    names = CATEGORY_NAMES["pl" if pl else "en"]
    lines = [f"{'Raport miesięczny' if pl else 'Monthly report'} {r.month}: {r.client_name}", ""]
    lines.append(f"{'Zgłoszenia' if pl else 'Tickets'}: {r.tickets} "
                 f"({'w tym planowane' if pl else 'planned'}: {r.planned}, "
                 f"{'eskalowane' if pl else 'escalated'}: {r.escalated})")
    for cat, n in sorted(r.by_category.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {names.get(cat, cat)}: {n}")
    if r.within_sla_pct is not None:
        lines.append(f"{'W czasie SLA' if pl else 'Within SLA'}: {r.within_sla_pct} %")
    if r.median_reaction_min is not None:
        lines.append(f"{'Mediana czasu reakcji' if pl else 'Median reaction'}: {r.median_reaction_min} min")
    if r.median_resolution_min is not None:
        lines.append(f"{'Mediana czasu rozwiązania' if pl else 'Median resolution'}: {r.median_resolution_min} min")
    lines.append(f"{'Osoby uprzedzone o problemie' if pl else 'People told before they called'}: {r.people_told}; "
                 f"{'oddzwonienia' if pl else 'callbacks'}: {r.callbacks}")
    for site, minutes in sorted(r.outage_minutes.items()):
        lines.append(f"  {'Przerwy w internecie' if pl else 'Internet downtime'} {site}: {round(minutes)} min")
    lines += ["", "Rekomendacje:" if pl else "Recommendations:"]
    lines += [f"- {rec}" for rec in r.recommendations]
    return "\n".join(lines) + "\n"


def render_html(r: Report) -> str:
    body = "".join(f"<p>{escape(line)}</p>" if line and not line.startswith(("  ", "- ")) else
                   f"<li>{escape(line.strip(' -'))}</li>" if line else "" for line in render_text(r).splitlines())
    title = escape(render_text(r).splitlines()[0])
    return f"<!doctype html><meta charset=utf-8><title>{title}</title><h1>{title}</h1>{body}"
