"""Monthly reports made, kept and mailed: once per client and month.

On the client's first working day of the month (its business days, in its time zone, from
the opening hour on) the previous month's report is made and stored in the ``reports``
table, and a ``report`` notice to the ``coordinator`` is written to the outbox in the same
transaction.  ``reports`` is unique on (client, month) and the outbox on (ticket, recipient,
kind), with ``R-<report id>`` as the ticket: whichever replica or restart gets there first
writes both rows, the others write nothing, so the coordinator gets one mail.  The outbox's
dispatcher delivers it like any notice (retries, dead letters), with the PDF attached
(``prepare_mail``).

A service that was down on that day still sends within ``catch_up`` (default 7 days); a
report is never sent for a month that ended long ago by surprise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import select

from watcher.config import Config
from watcher.config.inventory import Client
from watcher.live import Live
from watcher.notify.render import Message
from watcher.report import build, data, i18n, recommend, render
from watcher.store import Store
from watcher.store.schema import inbox, outbox, reports
from watcher.tasks import cancel_and_wait

log = logging.getLogger(__name__)

KIND: Final = "report"


def ticket_key(report_id: int) -> str:
    """The outbox's ticket column for a report's mail (fits its 32 characters)."""
    return f"R-{report_id}"


def first_working_day(client: Client, year: int, month: int) -> datetime:
    """When the client's first business day of the month opens (UTC), skipping its public holidays
    when the inventory names a calendar; the 1st at midnight if it has none."""
    bh = client.business_hours
    day = date(year, month, 1)
    for _ in range(31):
        if day.weekday() in bh.days and not bh.closed(day):
            return datetime.combine(day, bh.start, client.timezone).astimezone(UTC)
        day += timedelta(days=1)
    return datetime(year, month, 1, tzinfo=client.timezone).astimezone(UTC)


def due_month(client: Client, now: datetime, catch_up: float) -> str | None:
    """The month whose report is due at ``now`` (the one before the client's current month), or None."""
    local = now.astimezone(client.timezone)
    opens = first_working_day(client, local.year, local.month)
    if not opens <= now < opens + timedelta(seconds=catch_up):
        return None
    return data.previous_month(f"{local.year:04d}-{local.month:02d}")


def samples_between(store: Store, start: datetime, end: datetime) -> list[data.Sample]:
    """Share and folder samples the inbox received in [start, end) (plus a day either side,
    for events recorded late); ``data.build`` keeps those observed inside the month."""
    lo, hi = (start - timedelta(days=1)).timestamp(), (end + timedelta(days=1)).timestamp()
    q = (select(inbox.c.payload).where((inbox.c.kind == "event") & (inbox.c.received_at >= lo)
                                       & (inbox.c.received_at < hi) & inbox.c.payload.like("%_used_bytes%")))
    events: list[dict[str, Any]] = []
    with store.engine.connect() as conn:
        for (payload,) in conn.execute(q):
            with contextlib.suppress(ValueError):
                doc = json.loads(payload)
                if isinstance(doc, dict):
                    events.append(doc)
    return data.samples_from_events(events)


@dataclass(frozen=True)
class Made:
    report: data.Report
    html: str
    pdf: bytes


def make(store: Store, config: Config, client: Client, month: str, now: datetime, pdf: bool = True,
         html: bool = True) -> Made:
    """Build and render a client's report from what the store holds (blocking: call in a thread);
    ``pdf=False`` leaves the PDF empty and ``html=False`` the HTML too (for the figures only)."""
    start, end = data.month_bounds(month, client)
    tickets = store.list_tickets(client=client.id, since=start - timedelta(days=130), limit=1_000_000)
    rep = build(tickets, client, month, samples_between(store, start, end), now,
                recommend.rules_for(config.service.report))
    page = render.render_html(rep, client) if html or pdf else ""
    return Made(rep, page, render.render_pdf(rep, client, page) if pdf else b"")


def save(store: Store, client: Client, month: str, made: Made, now: float, queue: bool = True) -> int | None:
    """Store the report and owe its mail, in one transaction; None if this month's report exists."""
    summary = json.dumps(render.to_json(made.report), ensure_ascii=False)
    with store.write() as conn:
        got = conn.execute(store._insert(reports).on_conflict_do_nothing(
            index_elements=["client", "month"]).returning(reports.c.id), [{
                "client": client.id, "month": month, "language": client.language, "created_at": now,
                "title": render.title(made.report), "summary": summary, "html": made.html, "pdf": made.pdf}]).all()
        if not got:
            return None
        report_id = int(got[0][0])
        if queue:
            conn.execute(store._insert(outbox).on_conflict_do_nothing(
                index_elements=["ticket_id", "recipient", "kind"]),
                [{"ticket_id": ticket_key(report_id), "recipient": "coordinator", "kind": KIND, "created_at": now,
                  "due_at": now, "attempts": 0, "state": "pending"}])
    return report_id


def exists(store: Store, client_id: str, month: str) -> bool:
    with store.engine.connect() as conn:
        return conn.execute(select(reports.c.id).where((reports.c.client == client_id)
                                                       & (reports.c.month == month))).first() is not None


def listing(store: Store, client_id: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Reports made, newest first, with the state of their mail."""
    q = (select(reports.c.id, reports.c.client, reports.c.month, reports.c.title, reports.c.created_at)
         .order_by(reports.c.month.desc(), reports.c.client).limit(limit))
    if client_id:
        q = q.where(reports.c.client == client_id)
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(q)]
        keys = [ticket_key(r["id"]) for r in rows]
        mails = {m[0]: m for m in conn.execute(select(outbox.c.ticket_id, outbox.c.state, outbox.c.sent_at)
                                               .where(outbox.c.ticket_id.in_(keys) & (outbox.c.kind == KIND)))}
    for r in rows:
        m = mails.get(ticket_key(r["id"]))
        r["mail"] = m[1] if m else "not sent"
        r["sent_at"] = datetime.fromtimestamp(m[2], UTC) if m and m[2] else None
    return rows


def pdf_of(store: Store, report_id: int) -> tuple[str, str, bytes] | None:
    """(client, month, PDF) of a stored report."""
    with store.engine.connect() as conn:
        row = conn.execute(select(reports.c.client, reports.c.month, reports.c.pdf)
                           .where(reports.c.id == report_id)).first()
    return (str(row[0]), str(row[1]), bytes(row[2])) if row else None


def prepare_mail(store: Store, config: Config, ticket_id: str) -> tuple[str, tuple[str, ...], Message] | None:
    """The mail of a stored report: (language, the coordinator's URLs, message with the PDF)."""
    try:
        report_id = int(ticket_id.removeprefix("R-"))
    except ValueError:
        return None
    with store.engine.connect() as conn:
        row = conn.execute(select(reports.c.client, reports.c.month, reports.c.language, reports.c.html,
                                  reports.c.pdf).where(reports.c.id == report_id)).first()
    if row is None:
        return None
    client_id, month, lang, html, pdf = str(row[0]), str(row[1]), str(row[2]), str(row[3]), bytes(row[4])
    client = config.inventory.clients.get(client_id)
    if client is None or client.coordinator is None:
        return None
    coordinator = client.coordinator
    month_name = i18n.month_name(month, lang)
    subject = i18n.t("mail_subject", lang, month=month_name, client=client.name)
    text = i18n.t("mail_body", lang, name=coordinator.name, month=month_name)
    return lang, coordinator.urls(), Message(subject, text, html,
                                                  ((f"report-{client_id}-{month}.pdf", "application/pdf", pdf),))


def run_once(store: Store, config: Config, now: datetime) -> list[tuple[str, str, int]]:
    """Make and queue every report due at ``now``; returns (client, month, report id) of those made here."""
    cfg = config.service.report
    made_here: list[tuple[str, str, int]] = []
    for client in config.inventory.clients.values():
        month = due_month(client, now, cfg.catch_up)
        if month is None or client.coordinator is None or exists(store, client.id, month):
            continue
        try:
            made = make(store, config, client, month, now)
            report_id = save(store, client, month, made, now.timestamp())
        except Exception:
            log.exception("monthly report for %s %s failed; trying again later", client.id, month)
            continue
        if report_id is not None:
            log.info("monthly report %s for %s queued for its coordinator", month, client.id)
            made_here.append((client.id, month, report_id))
    return made_here


class Scheduler:
    """Looks every ``report.interval`` for reports that are due (``run_once``) and wakes the
    dispatcher when it queued one."""

    def __init__(self, config: Config | Live, store: Store, wake: Callable[[], None],
                 clock: Callable[[], float] = time.time) -> None:
        self.live = Live.of(config)
        self.store = store
        self.wake = wake
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    @property
    def config(self) -> Config:
        """The configuration in force (read at each run: a reload swaps it)."""
        return self.live.config

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="report-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        while True:
            now = datetime.fromtimestamp(self.clock(), UTC)
            try:
                if await asyncio.to_thread(run_once, self.store, self.config, now):
                    self.wake()
            except Exception:
                log.exception("report scheduler")
            await asyncio.sleep(self.config.service.report.interval)

