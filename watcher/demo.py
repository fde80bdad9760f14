"""``watcher serve --demo``: a scripted morning played into the live service.

The demo must show itself on any machine, with no network and nothing to click first, so
it does not depend on the fictitious probe targets of the demo inventory failing (a
network that answers "unreachable" at once and one that drops packets behave differently).
Instead it plays, through the same durable inbox as every collector, what a helpdesk sees
on a bad morning at ACME:

- the night's disk samples of the project share, Jan's photo folder growing steadily, so
  that the forecast rule has its hours of history when the service starts;
- the Kraków office loses its uplink (an IF-MIB linkDown of its router), a printer behind
  it stops answering (a symptom), and Jan Kowalski calls and asks to be called back;
- Ewa Nowak's mailbox goes over 90 % of its quota;
- the Warsaw office goes offline too, and its office answers "planned break";
- a warning that no rule names (a slow backup job) becomes a catch-all ticket.

History needs virtual time: the engine takes an inbox row's ``received_at`` as the time it
happened, as long as its clock is not past it.  ``prepare`` therefore writes the night's
samples into a fresh database before the service (and its engine) starts; the live part
(``play``) is ordinary events and operations submitted while the service runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from watcher.config import Config
from watcher.model import Event, Op, Status, op_from_dict, utcnow
from watcher.store import InboxRow, Store

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # the service's Runtime, which the demo plays into; not imported at run time
    from watcher.runtime import Runtime

SHARE = "acme-projects"
HISTORY = timedelta(hours=3, minutes=45)
"""How far back the night's samples start: just over the share rule's 3 h of history plus
its 45 min hold, so that the share ticket opens about 20 seconds after the start."""
STEP = timedelta(minutes=10)
FULL_AT_START = 0.80  # share usage when the history starts, as a share of its size
GROWTH_PER_HOUR = 0.025  # of the share's size: about 50 GB of photos an hour on 2 TB


def _event(labels: dict[str, str], at: datetime, *, value: float | None = None, status: Status = "firing",
           starts_at: datetime | None = None, summary: str = "") -> Event:
    return Event(source="demo", status=status, labels=labels,
                 annotations={"summary": summary} if summary else {},
                 starts_at=starts_at if starts_at is not None else (None if value is not None else at),
                 observed_at=at, value=value)


def _row(ev: Event | Op, received: float) -> InboxRow:
    if isinstance(ev, Op):
        return InboxRow("op", "demo", f"op|demo|{uuid.uuid4().hex}", received, orjson.dumps(ev.to_dict()).decode())
    return InboxRow("event", "demo", ev.occurrence_key, received, orjson.dumps(ev.to_dict()).decode())


def share_samples(config: Config, at: datetime, start: datetime) -> list[Event]:
    """The project share's used bytes at ``at``, and its two folders: Jan's photos grow,
    Ewa's folder stays flat."""
    share = config.inventory.shares.get(SHARE)
    size = float(share.size_bytes) if share is not None and share.size_bytes else 2e12
    hours = (at - start).total_seconds() / 3600
    photos = size * (0.30 + GROWTH_PER_HOUR * hours)
    rest = size * (FULL_AT_START - 0.30)
    base = {"client": "acme", "share": SHARE}
    return [
        _event({**base, "metric": "share_used_bytes"}, at, value=round(photos + rest)),
        _event({**base, "metric": "folder_used_bytes", "folder": "Jan"}, at, value=round(photos)),
        _event({**base, "metric": "folder_used_bytes", "folder": "Ewa"}, at, value=round(size * 0.05)),
    ]


def _history(config: Config, now: datetime) -> Iterator[Event]:
    start = now - HISTORY
    at = start
    while at < now - timedelta(seconds=5):
        yield from share_samples(config, at, start)
        at += STEP


def prepare(config: Config, db: str | None) -> tuple[Config, str | None]:
    """The configuration the demo runs with, and the folder to remove afterwards.

    Without ``--db`` the demo gets a fresh SQLite database in a temporary folder (the
    history below only works on an engine whose clock has not passed it), and only one
    worker process.  The night's samples are written to its inbox.
    """
    tmp: str | None = None
    if db is None:
        tmp = tempfile.mkdtemp(prefix="watcher-demo-")
        db = f"sqlite:///{Path(tmp) / 'demo.db'}"
    config = replace(config, service=replace(config.service, db_url=db, workers=1))
    now = utcnow()
    store = Store(db, "normal")
    try:
        store.append([_row(ev, ev.observed_at.timestamp()) for ev in _history(config, now)
                      if ev.observed_at is not None])
    finally:
        store.close()
    return config, tmp


SCRIPT: list[tuple[float, str]] = [
    (2, "krk_down"), (6, "printer"), (10, "mailbox"), (16, "caller"), (24, "waw_down"), (32, "waw_planned"),
    (40, "backup"),
]
"""(seconds after the start, step): the morning's live part, well inside a minute."""


async def play(rt: Runtime, started: float | None = None) -> None:
    """Play the live part of the morning into ``rt`` (the service's ``Runtime``), then keep
    feeding the share's samples every 30 s so that its forecast stays current."""
    started = time.monotonic() if started is None else started
    history_start = utcnow() - HISTORY
    waw_ticket: str | None = None
    log.info("demo: playing a scripted morning (%d steps within %d s)", len(SCRIPT), SCRIPT[-1][0])
    for offset, step in SCRIPT:
        await asyncio.sleep(max(0.0, started + offset - time.monotonic()))
        now = utcnow()
        if step == "krk_down":
            await _submit(rt, [_event({"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "ifIndex": "1",
                                       "ifDescr": "wan0", "severity": "critical"}, now,
                                      summary="Uplink of the Kraków office router is down")])
        elif step == "printer":
            await _submit(rt, [_event({"alertname": "InstanceDown", "host": "krk-printer01", "severity": "warning"},
                                      now, summary="krk-printer01 does not answer")])
        elif step == "mailbox":
            await _submit(rt, [_event({"alertname": "MailboxQuotaNearlyFull", "mailbox": "ewa.nowak@acme.example",
                                       "severity": "warning"}, now, summary="Mailbox at 94 % of its quota")])
        elif step == "caller":
            await _submit(rt, [op_from_dict({"op": "callback", "person": "jan.kowalski"}, now)])
        elif step == "waw_down":
            await _submit(rt, [_event({"alertname": "LinkDown", "snmp_agent": "192.0.2.2", "ifIndex": "1",
                                       "ifDescr": "wan0", "severity": "critical"}, now,
                                      summary="Uplink of the Warsaw office router is down")])
        elif step == "waw_planned":
            waw_ticket = await _ticket_of(rt, "acme-waw")
            if waw_ticket is not None:
                await _submit(rt, [op_from_dict({"op": "office_answer", "ticket": waw_ticket, "answer": "planned",
                                                 "by": "Sekretariat (demo)"}, now)])
        elif step == "backup":
            await _submit(rt, [_event({"alertname": "BackupJobSlow", "client": "acme", "severity": "warning"},
                                      now, summary="The nightly backup took 7 h")])
    log.info("demo: the morning is played; open the console to work the tickets")
    while True:
        await asyncio.sleep(30)
        await _submit(rt, share_samples(rt.config, utcnow(), history_start))


async def _submit(rt: Runtime, items: Sequence[Event | Op]) -> None:
    received = time.time()
    await rt.ingestor.submit([_row(item, received) for item in items])


async def _ticket_of(rt: Runtime, site: str, timeout: float = 10.0) -> str | None:
    """The open ticket of ``site`` once the engine has opened it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for tk in list(rt.worker.engine.tickets.values()):
            if tk.site == site and tk.status != "resolved":
                return str(tk.id)
        await asyncio.sleep(0.5)
    return None


@contextlib.asynccontextmanager
async def running(rt: Runtime) -> AsyncIterator[None]:
    """``async with running(rt):`` plays the demo for as long as the block runs."""
    task = asyncio.create_task(play(rt), name="demo")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
