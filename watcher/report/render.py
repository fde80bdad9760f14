"""A ``Report`` as text, HTML (with SVG charts) and PDF, in the client's language.

The HTML is one Jinja2 template (``templates/report.html``, autoescaped) filled with
strings this module formats: every count goes through Babel's plural rules and number
format, every time is shown in the client's time zone.  The PDF is that same HTML laid
out by WeasyPrint (A4, page numbers), so the mail attachment and the console's page say
the same thing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from watcher.config.inventory import Client
from watcher.report import charts, i18n
from watcher.report.data import Report, month_bounds

FIGURE_LABELS = {
    "outages": {"pl": "awarie", "en": "outages"},
    "planned": {"pl": "planowane przerwy", "en": "planned breaks"},
    "downtime_hours": {"pl": "przestój [h]", "en": "downtime [h]"},
    "longest_hours": {"pl": "najdłuższy przestój [h]", "en": "longest downtime [h]"},
    "days_to_full": {"pl": "dni do zapełnienia", "en": "days to full"},
    "used_pct": {"pl": "zajęte [%]", "en": "used [%]"},
    "growth_gb": {"pl": "przyrost [GB]", "en": "growth [GB]"},
    "tickets": {"pl": "zgłoszenia", "en": "tickets"},
    "quota": {"pl": "problemy z limitem", "en": "quota problems"},
    "login_failures": {"pl": "nieudane logowania", "en": "login failures"},
    "bounces": {"pl": "zwroty", "en": "bounces"},
    "escalations": {"pl": "eskalacje", "en": "escalations"},
    "escalation_share": {"pl": "udział w eskalacjach", "en": "share of escalations"},
    "sla_missed": {"pl": "poza SLA", "en": "SLA missed"},
    "sudden_outages": {"pl": "nagłe awarie", "en": "sudden outages"},
    "callbacks": {"pl": "oddzwonienia", "en": "callbacks"},
}
TIER_NAMES = {"standard": "Standard", "gold": "Gold", "platinum": "Platinum"}


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                       autoescape=select_autoescape(["html"]), keep_trailing_newline=True)


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def _size(n: float | None, lang: str) -> str:
    if n is None:
        return "-"
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if abs(n) >= scale:
            return f"{i18n.number(n / scale, lang)} {unit}"
    return f"{i18n.number(n, lang)} B"


def title(r: Report) -> str:
    return f"{i18n.t('title', r.language)}: {i18n.month_name(r.month, r.language)}"


def context(r: Report, client: Client, with_charts: bool = True) -> dict[str, Any]:
    """Everything the template shows, formatted for the report's language."""
    lang, tz = r.language, client.timezone
    sla = r.sla
    assert sla is not None
    start, end = month_bounds(r.month, client)
    measure = {k: i18n.t(k, lang) for k in ("helpdesk_reaction", "admin_reaction", "admin_resolution")}
    rows = []
    for key, hours in zip(("helpdesk_reaction", "admin_reaction", "admin_resolution"), sla.hours, strict=True):
        clock = getattr(sla, key)
        rows.append({"name": measure[key], "target": f"{i18n.number(hours, lang)} h", "met": clock.met,
                     "missed": clock.missed, "pending": clock.pending})
    still = i18n.t("open_still", lang)
    missed = [{"ticket": m.ticket, "title": m.title, "measure": measure[m.measure],
               "deadline": i18n.stamp(m.deadline, lang, tz),
               "late": i18n.duration(m.late_minutes, lang) if m.late_minutes is not None else still}
              for m in sla.missed]
    told = i18n.plural(r.people_told, "person", lang)
    kpis = [
        (i18n.t("opened", lang), i18n.number(r.tickets, lang)),
        (i18n.t("resolved", lang), i18n.number(r.resolved, lang)),
        (i18n.t("sudden", lang), i18n.number(r.sudden_outages, lang)),
        (i18n.t("planned", lang), i18n.number(r.planned_outages, lang)),
        (i18n.t("told", lang), told),
        (f"{i18n.t('callbacks', lang)} ({i18n.t('callbacks_asked', lang)}: {r.callbacks_asked})",
         i18n.number(r.callbacks, lang)),
    ]
    offices = [{"name": o.name, "outages": o.outages, "downtime": i18n.duration(o.downtime_minutes, lang),
                "longest": i18n.duration(o.longest_minutes, lang), "planned": o.planned} for o in r.offices]
    shares = []
    for s in r.shares:
        full = (i18n.day(s.fill_date.astimezone(tz), lang) + f" ({i18n.plural(s.days_to_full or 0, 'day', lang, 0)})"
                if s.fill_date is not None else i18n.t("never", lang))
        used = (f"{i18n.number(s.used_pct, lang)} % ({_size(s.used_end, lang)})" if s.used_pct is not None
                else _size(s.used_end, lang))
        folders = ", ".join(f"{f}" + (f" ({p})" if p else "") + f": +{_size(g, lang)}" for f, p, g in s.folders)
        shares.append({"name": s.name, "used": used, "growth": _size(s.growth_bytes, lang), "full_on": full,
                       "folders": folders or "-"})
    trend = [{"month": i18n.short_month(m.month, lang), "tickets": m.tickets, "sudden": m.sudden_outages,
              "downtime": i18n.duration(m.downtime_minutes, lang), "sla_missed": m.sla_missed} for m in r.trend]
    before = r.trend[:-1]
    avg = sum(m.tickets for m in before) / len(before) if before else 0.0
    recs = []
    for rec in r.recommendations:
        figs = "; ".join(f"{FIGURE_LABELS.get(k, {}).get(lang, k)}: "
                         f"{i18n.number(v, lang) if isinstance(v, int | float) else v}" for k, v in rec.figures.items())
        recs.append({"advice": rec.advice, "why": rec.why, "figures": figs})
    chart_uris: dict[str, str] = {}
    if with_charts:
        if r.by_category:
            chart_uris["categories"] = _data_uri(charts.categories(r.by_category, lang))
        if r.offices:
            chart_uris["timeline"] = _data_uri(charts.timeline(r.offices, start, end, tz, lang))
        if any(s.series for s in r.shares):
            chart_uris["shares"] = _data_uri(charts.shares(r.shares, start, end, tz, lang))
        chart_uris["trend"] = _data_uri(charts.trend(r.trend, lang))
    return {
        "lang": lang, "title": title(r), "client_name": r.client_name, "month_name": i18n.month_name(r.month, lang),
        "tier": TIER_NAMES.get(r.tier, r.tier), "made": i18n.stamp(r.generated_at, lang, tz),
        "t": {k: v["pl" if lang == "pl" else "en"] for k, v in i18n.TEXTS.items()},
        "kpis": kpis, "categories": [(i18n.category(c, lang), n) for c, n in r.by_category.items()],
        "sla_intro": i18n.t("sla_intro", lang, hours=sla.business_hours), "sla_rows": rows, "missed": missed,
        "offices": offices, "shares": shares, "mail": r.mail, "mailboxes": r.mail.mailboxes, "trend": trend,
        "vs_before": i18n.t("vs_before", lang, avg=i18n.plural(avg, "ticket", lang)),
        "recommendations": recs, "charts": chart_uris,
    }


def render_html(r: Report, client: Client, with_charts: bool = True) -> str:
    return _env().get_template("report.html").render(context(r, client, with_charts))


def render_pdf(r: Report, client: Client, html: str | None = None) -> bytes:
    """The report as an A4 PDF (WeasyPrint lays out the HTML; fonts come from fontconfig)."""
    from weasyprint import HTML

    pdf: bytes = HTML(string=html or render_html(r, client)).write_pdf()
    return pdf


def render_text(r: Report, client: Client) -> str:
    """A plain-text version for the terminal and the mail's text part."""
    c = context(r, client, with_charts=False)
    lang = r.language
    out = [c["title"], f"{r.client_name} · {c['t']['tier']}: {c['tier']}", "", f"{c['t']['glance']}:"]
    out += [f"  {label}: {value}" for label, value in c["kpis"]]
    out += [f"  {name}: {n}" for name, n in c["categories"]]
    out += ["", f"{c['t']['sla']} ({c['sla_intro']})"]
    out += [f"  {row['name']} ({row['target']}): {c['t']['met']} {row['met']}, {c['t']['missed']} {row['missed']}"
            + (f", {c['t']['pending']} {row['pending']}" if row["pending"] else "") for row in c["sla_rows"]]
    out += [f"  - {m['ticket']} {m['title']}: {m['measure']}, {m['late']}" for m in c["missed"]]
    out += ["", f"{c['t']['offices']}:"]
    out += [f"  {o['name']}: {i18n.plural(o['outages'], 'outage', lang)}, {c['t']['downtime']} {o['downtime']}, "
            f"{c['t']['longest']} {o['longest']}" + (f", {i18n.plural(o['planned'], 'break', lang)}" if o["planned"]
                                                     else "") for o in c["offices"]]
    if c["shares"]:
        out += ["", f"{c['t']['shares']}:"]
        out += [f"  {s['name']}: {s['used']}, {c['t']['full_on']}: {s['full_on']}; {s['folders']}" for s in c["shares"]]
    m = r.mail
    out += ["", f"{c['t']['mail']}: {i18n.plural(m.incidents, 'problem', lang)} ({c['t']['quota']} {m.quota}, "
            f"{c['t']['logins']} {m.login_failures}, {c['t']['bounces']} {m.bounces}, "
            f"{c['t']['server_down']} {m.server_down})"]
    out += ["", f"{c['t']['trend']}:"]
    out += [f"  {t['month']}: {t['tickets']}, {c['t']['sudden']} {t['sudden']}" for t in c["trend"]]
    out += ["", f"{c['t']['recommendations']}:"]
    out += [f"- {rec['advice']} {c['t']['because']}: {rec['why']} ({rec['figures']})" for rec in c["recommendations"]]
    if not c["recommendations"]:
        out.append(f"- {c['t']['nothing_to_recommend']}")
    return "\n".join(out) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_json(r: Report) -> dict[str, Any]:
    """The figures as plain JSON (times in RFC 3339 UTC)."""
    doc: dict[str, Any] = _plain(dataclasses.asdict(r))
    doc["outage_minutes"] = r.outage_minutes
    return doc


def render_json(r: Report) -> str:
    return json.dumps(to_json(r), ensure_ascii=False, indent=2)
