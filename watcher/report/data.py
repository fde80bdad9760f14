"""The figures of one client's month, computed from what the store (or a replay) holds.

``build`` is pure: ticket documents (with their timelines, callbacks and notifications),
share samples and the time "now" in, a ``Report`` out; no I/O, so the service, the
command line and the tests compute the same figures.  The month is the client's calendar
month in its own time zone.

How each figure is counted, so that a coordinator's question has one answer:

- a ticket belongs to the month it was opened in; "resolved" counts tickets resolved in
  the month, whenever they opened;
- SLA (planned tickets and tickets of rules that do not escalate have none): the helpdesk
  reacted in time when the ticket was acknowledged or resolved before the tier's reaction
  time had passed, counted in the client's business hours (Standard 6 h, Gold 4 h,
  Platinum 2 h); an escalated ticket then has the administrators' reaction (8/4/2 h) and
  resolution (24/12/8 h, or the team's and the client's own clocks the ticket carries) clocks
  from the escalation; a clock that has not run out yet and
  has not been met is "still running", neither met nor missed;
- an office's downtime is the time its ``internet`` tickets were open (opened to resolved,
  cut to the month); planned breaks are counted apart from sudden outages;
- people told before they called: the people sent an ``opened`` or ``planned`` notice (one
  per person and incident); callbacks made are callbacks with a ``done_at``;
- a share's forecast is the least-squares line through the month's last seven days of
  used bytes, extended to its size.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.config.inventory import Client
from watcher.model import parse_time
from watcher.rules.escalation import HOURS as TEAM_HOURS
from watcher.rules.forecast import least_squares
from watcher.rules.tickets import REACT_HOURS


@dataclass(frozen=True)
class Sample:
    """One reading of a share's used bytes (``folder`` None) or of one folder of it."""

    share: str
    folder: str | None
    at: datetime
    value: float


@dataclass
class Clock:
    met: int = 0
    missed: int = 0
    pending: int = 0


@dataclass
class Missed:
    ticket: str
    title: str
    measure: str  # helpdesk_reaction | admin_reaction | admin_resolution
    deadline: datetime
    late_minutes: float | None  # None: still not done


@dataclass
class Sla:
    tier: str
    hours: tuple[float, float, float]
    business_hours: str
    helpdesk_reaction: Clock = field(default_factory=Clock)
    admin_reaction: Clock = field(default_factory=Clock)
    admin_resolution: Clock = field(default_factory=Clock)
    missed: list[Missed] = field(default_factory=list)


@dataclass
class Office:
    id: str
    name: str
    outages: int = 0
    planned: int = 0
    downtime_minutes: float = 0.0
    longest_minutes: float = 0.0
    planned_minutes: float = 0.0
    spans: list[tuple[datetime, datetime, bool]] = field(default_factory=list)  # (from, to, planned)


@dataclass
class Share:
    id: str
    name: str
    size_bytes: int | None
    series: list[tuple[datetime, float]] = field(default_factory=list)
    used_start: float | None = None
    used_end: float | None = None
    days_to_full: float | None = None
    fill_date: datetime | None = None
    folders: list[tuple[str, str | None, float]] = field(default_factory=list)  # (folder, person, growth bytes)
    tickets: int = 0

    @property
    def used_pct(self) -> float | None:
        if self.used_end is None or not self.size_bytes:
            return None
        return 100.0 * self.used_end / self.size_bytes

    @property
    def growth_bytes(self) -> float | None:
        if self.used_start is None or self.used_end is None:
            return None
        return self.used_end - self.used_start


@dataclass
class MailboxFigures:
    address: str
    person: str | None
    tickets: int = 0
    quota: int = 0
    login_failures: int = 0
    bounces: int = 0


@dataclass
class Mail:
    incidents: int = 0
    quota: int = 0
    login_failures: int = 0
    bounces: int = 0
    server_down: int = 0
    mailboxes: list[MailboxFigures] = field(default_factory=list)


@dataclass
class MonthFigures:
    month: str
    tickets: int
    sudden_outages: int
    downtime_minutes: float
    sla_missed: int


@dataclass
class Recommendation:
    rule: str
    per: str
    subject: str  # the id of the office, share, mailbox, category or client
    subject_name: str
    advice: str
    why: str
    figures: dict[str, float | str]


@dataclass
class Report:
    client_id: str
    client_name: str
    language: str
    month: str
    tier: str
    generated_at: datetime
    tickets: int = 0
    resolved: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    planned: int = 0
    sudden_outages: int = 0
    planned_outages: int = 0
    escalated: int = 0
    escalated_by_category: dict[str, int] = field(default_factory=dict)
    people_told: int = 0
    callbacks: int = 0
    callbacks_asked: int = 0
    sla: Sla | None = None
    offices: list[Office] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    mail: Mail = field(default_factory=Mail)
    trend: list[MonthFigures] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    ticket_ids: list[str] = field(default_factory=list)

    @property
    def outage_minutes(self) -> dict[str, float]:
        """Unplanned downtime per office id (offices with an outage only)."""
        return {o.id: o.downtime_minutes for o in self.offices if o.outages}


def month_bounds(month: str, client: Client) -> tuple[datetime, datetime]:
    """The client's calendar month ``YYYY-MM`` as UTC instants [start, end)."""
    year, mon = (int(x) for x in month.split("-", 1))
    tz = client.timezone
    start = datetime(year, mon, 1, tzinfo=tz)
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def previous_month(month: str, back: int = 1) -> str:
    year, mon = (int(x) for x in month.split("-", 1))
    index = year * 12 + (mon - 1) - back
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _t(value: Any) -> datetime | None:
    return parse_time(value) if value else None


def _in(t: datetime | None, start: datetime, end: datetime) -> bool:
    return t is not None and start <= t < end


def _team_seconds(client: Client, team: str, tier: str) -> tuple[float, float]:
    """The second line's (reaction, resolution) seconds: the client's contract, else the tier's table."""
    hours = TEAM_HOURS.get(team, TEAM_HOURS["admins"])
    react_h, resolve_h = hours.get(tier, hours["standard"])
    return client.escalation_clocks.get(team, (react_h * 3600, resolve_h * 3600))


def _sla(client: Client, mine: Sequence[dict[str, Any]], now: datetime) -> Sla:
    tier = client.sla
    admin_react, admin_resolve = _team_seconds(client, "admins", tier)
    hours = (REACT_HOURS[tier], admin_react / 3600, admin_resolve / 3600)
    sla = Sla(tier, hours, client.business_hours.text)
    bh = client.business_hours

    def judge(clock: Clock, tk: dict[str, Any], measure: str, deadline: datetime, done: datetime | None) -> None:
        if done is not None and done <= deadline:
            clock.met += 1
        elif done is None and now < deadline:
            clock.pending += 1
        else:
            clock.missed += 1
            late = (done - deadline).total_seconds() / 60 if done is not None else None
            sla.missed.append(Missed(tk["id"], tk.get("title") or "", measure, deadline, late))

    for tk in mine:
        if tk.get("planned") or not (tk.get("sla") or {}).get("react_by"):
            continue
        opened = parse_time(tk["opened_at"])
        acked, resolved = _t(tk.get("acknowledged_at")), _t(tk.get("resolved_at"))
        esc = tk.get("escalation") or {}
        handed = _t(esc.get("at")) if esc.get("by") not in (None, "watcher") else None  # an agent's hand-over
        reacted = min((x for x in (acked, resolved, handed) if x is not None), default=None)
        judge(sla.helpdesk_reaction, tk, "helpdesk_reaction", bh.add(opened, hours[0] * 3600), reacted)
        escalated = _t(esc.get("at")) or _t((tk.get("sla") or {}).get("escalated_at"))
        if escalated is not None:
            # the engine's own clocks where the ticket carries them (a team's contract, holidays)
            team, ticket_tier = str(esc.get("to") or "admins"), str(tk["sla"].get("tier") or tier)
            react_s, resolve_s = _team_seconds(client, team, ticket_tier)
            react_by = _t(esc.get("react_by")) or bh.add(escalated, react_s)
            resolve_by = _t(esc.get("resolve_by")) or _t(tk["sla"].get("resolve_by")) or bh.add(escalated, resolve_s)
            after = [x for x in (acked, resolved) if x is not None and x >= escalated]
            admin_reacted = _t(esc.get("reacted_at")) or min(after, default=None)
            judge(sla.admin_reaction, tk, "admin_reaction", react_by, admin_reacted)
            judge(sla.admin_resolution, tk, "admin_resolution", resolve_by, resolved)
    return sla


def _offices(client: Client, tickets: Iterable[dict[str, Any]], start: datetime, end: datetime,
             now: datetime) -> list[Office]:
    offices = {s.id: Office(s.id, s.name) for s in client.sites}
    for tk in tickets:
        if tk["category"] != "internet" or (tk.get("entity") or {}).get("kind") != "site":
            continue
        office = offices.get(tk["entity"]["id"])
        opened = parse_time(tk["opened_at"])
        if office is None or not start <= opened < end:
            continue
        until = min(_t(tk.get("resolved_at")) or min(now, end), end)
        minutes = max(0.0, (until - opened).total_seconds() / 60)
        planned = bool(tk.get("planned"))
        office.spans.append((opened, until, planned))
        if planned:
            office.planned += 1
            office.planned_minutes += minutes
        else:
            office.outages += 1
            office.downtime_minutes += minutes
            office.longest_minutes = max(office.longest_minutes, minutes)
    return list(offices.values())


def _shares(client: Client, samples: Iterable[Sample], mine: Sequence[dict[str, Any]], start: datetime,
            end: datetime) -> list[Share]:
    shares = {s.id: Share(s.id, s.name, s.size_bytes) for s in client.shares}
    folder_owner = {(s.id, folder): person for s in client.shares for person, folder in s.folders.items()}
    folders: dict[tuple[str, str], list[tuple[datetime, float]]] = {}
    for smp in samples:
        share = shares.get(smp.share)
        if share is None or not start <= smp.at < end:
            continue
        if smp.folder is None:
            share.series.append((smp.at, smp.value))
        else:
            folders.setdefault((smp.share, smp.folder), []).append((smp.at, smp.value))
    for tk in mine:
        if tk["category"] == "disk" and tk["entity"]["id"] in shares:
            share = shares[tk["entity"]["id"]]
            share.tickets += 1
            share.size_bytes = share.size_bytes or (tk.get("details") or {}).get("size_bytes")
    for share in shares.values():
        share.series.sort()
        if share.series:
            share.used_start, share.used_end = share.series[0][1], share.series[-1][1]
            last = share.series[-1][0]
            recent = [(t.timestamp(), v) for t, v in share.series if t >= last - timedelta(days=7)]
            fit = least_squares(recent)
            if fit is not None and share.size_bytes:
                slope, intercept = fit
                current = slope * last.timestamp() + intercept
                if current >= share.size_bytes:
                    share.days_to_full = 0.0
                elif slope > 0:
                    share.days_to_full = (share.size_bytes - current) / slope / 86400
                if share.days_to_full is not None:
                    share.fill_date = last + timedelta(days=share.days_to_full)
        growth = []
        for (sid, folder), series in folders.items():
            if sid == share.id and len(series) >= 2:
                series.sort()
                growth.append((folder, folder_owner.get((sid, folder)), series[-1][1] - series[0][1]))
        share.folders = sorted((g for g in growth if g[2] > 0), key=lambda g: -g[2])[:3]
        if not share.series:
            # no samples kept: the disk tickets of the month still tell the forecast they saw
            for tk in mine:
                d = tk.get("details") or {}
                if tk["category"] == "disk" and tk["entity"]["id"] == share.id and d.get("days_to_full") is not None:
                    share.days_to_full = min(float(d["days_to_full"]), share.days_to_full or float("inf"))
                    share.fill_date = parse_time(tk["opened_at"]) + timedelta(days=share.days_to_full)
                    if d.get("folder") and not share.folders:
                        share.folders = [(d["folder"], d.get("folder_person"),
                                          float(d.get("folder_growth_bytes") or 0))]
    return list(shares.values())


def _mail_kind(tk: dict[str, Any]) -> str:
    """What a mail ticket was about, from the signals on its timeline (rule names may be renamed)."""
    if (tk.get("entity") or {}).get("kind") == "client":
        return "server_down"
    seen = " ".join(str(e.get("what", "")) for e in tk.get("timeline") or [])
    for signal, kind in (("MailboxQuota", "quota"), ("MailDelivery", "bounces"), ("MailboxLogin", "login_failures")):
        if signal in seen:
            return kind
    rule = str(tk.get("rule") or "")
    return "quota" if "quota" in rule else "bounces" if "delivery" in rule else "login_failures"


def _mail(client: Client, mine: Sequence[dict[str, Any]]) -> Mail:
    mail = Mail()
    boxes = {m.address: MailboxFigures(m.address, m.person) for m in client.mailboxes}
    for tk in mine:
        if tk["category"] != "mail":
            continue
        mail.incidents += 1
        kind = _mail_kind(tk)
        setattr(mail, kind, getattr(mail, kind) + 1)
        box = boxes.get(tk["entity"]["id"])
        if box is None and tk["entity"]["kind"] == "mailbox":
            box = boxes.setdefault(tk["entity"]["id"], MailboxFigures(tk["entity"]["id"], None))
        if box is not None:
            box.tickets += 1
            if kind != "server_down":
                setattr(box, kind, getattr(box, kind) + 1)
    mail.mailboxes = sorted((b for b in boxes.values() if b.tickets), key=lambda b: (-b.tickets, b.address))
    return mail


def _month_figures(client: Client, tickets: Sequence[dict[str, Any]], month: str, now: datetime) -> MonthFigures:
    start, end = month_bounds(month, client)
    mine = [t for t in tickets if start <= parse_time(t["opened_at"]) < end]
    offices = _offices(client, mine, start, end, now)
    sla = _sla(client, mine, now)
    return MonthFigures(month, len(mine), sum(o.outages for o in offices),
                        sum(o.downtime_minutes for o in offices),
                        sla.helpdesk_reaction.missed + sla.admin_reaction.missed + sla.admin_resolution.missed)


def build(tickets: Sequence[dict[str, Any]], client: Client, month: str, samples: Iterable[Sample] = (),
          now: datetime | None = None) -> Report:
    """The figures of ``client``'s ``month`` (``YYYY-MM``, its own time zone).

    ``tickets`` may hold other clients' and other months' tickets (they are left out, but
    the three months before feed the trend); ``now`` (default: the month's end) decides
    which SLA clocks are still running.
    """
    start, end = month_bounds(month, client)
    now = now or end
    own = [t for t in tickets if t["client"] == client.id]
    mine = [t for t in own if start <= parse_time(t["opened_at"]) < end]
    r = Report(client.id, client.name, client.language, month, client.sla, now, tickets=len(mine))
    r.ticket_ids = [t["id"] for t in mine]
    r.resolved = sum(1 for t in own if _in(_t(t.get("resolved_at")), start, end))
    r.by_category = dict(Counter(t["category"] for t in mine).most_common())
    r.planned = sum(1 for t in mine if t.get("planned"))
    escalated = [t for t in mine if (t.get("sla") or {}).get("escalated_at")]
    r.escalated = len(escalated)
    r.escalated_by_category = dict(Counter(t["category"] for t in escalated))
    internet = [t for t in mine if t["category"] == "internet"]
    r.sudden_outages = sum(1 for t in internet if not t.get("planned"))
    r.planned_outages = len(internet) - r.sudden_outages
    r.people_told = sum(1 for t in mine for n in t.get("notifications", [])
                        if n["kind"] in ("opened", "planned") and not str(n["to"]).startswith("office:")
                        and n["to"] not in ("admins", "coordinator"))
    r.callbacks_asked = sum(len(t.get("callbacks", [])) for t in mine)
    r.callbacks = sum(1 for t in mine for c in t.get("callbacks", []) if c.get("done_at"))
    r.sla = _sla(client, mine, now)
    r.offices = _offices(client, mine, start, end, now)
    r.shares = _shares(client, samples, mine, start, end)
    r.mail = _mail(client, mine)
    r.trend = [_month_figures(client, own, previous_month(month, back), now) for back in (3, 2, 1)]
    r.trend.append(MonthFigures(month, r.tickets, r.sudden_outages, sum(o.downtime_minutes for o in r.offices),
                                r.sla.helpdesk_reaction.missed + r.sla.admin_reaction.missed
                                + r.sla.admin_resolution.missed))
    return r


def samples_from_events(events: Iterable[dict[str, Any]]) -> list[Sample]:
    """Share and folder samples (``share_used_bytes`` / ``folder_used_bytes`` events) from
    normalized events, as a recorded stream or the service's inbox holds them."""
    out = []
    for ev in events:
        labels = ev.get("labels") or {}
        metric = labels.get("metric")
        if metric not in ("share_used_bytes", "folder_used_bytes") or ev.get("value") is None or "share" not in labels:
            continue
        at = ev.get("observed_at") or ev.get("starts_at")
        if not at:
            continue
        out.append(Sample(labels["share"], labels.get("folder") if metric == "folder_used_bytes" else None,
                          parse_time(at), float(ev["value"])))
    return out
