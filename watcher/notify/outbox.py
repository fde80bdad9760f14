"""The delivery loop: notices owed in the durable outbox become messages sent via Apprise.

The engine writes a row per (ticket, recipient, kind) in the same transaction as the
ticket change, so nothing owed is lost in a crash.  This loop claims due rows, renders
them in the recipient's language, sends them with the recipient's Apprise URLs (fallbacks
in order) and records the outcome: sent, retry with exponential backoff, or dead (shown
by the API and /metrics).

Delivery is at-least-once, and the window in which a crash can double a notice is kept to
the send itself: due rows are read without being taken, rendered, then claimed (a
conditional update, so two notifiers never both win) just before the send, and marked sent
in one transaction right after it.  Every notifier writes a heartbeat; the claims of one
that is known dead (its process is gone from this host, or its heartbeat stopped for
``DEAD_AFTER`` seconds) are taken again at once, not after the claim's lease.  The outbox
ids travel with the message as its idempotency key (a stable ``Message-ID`` for mail, an
``Idempotency-Key`` header for webhooks), so a receiver that deduplicates drops the one
repeat a crash between send and mark can cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from watcher.config import Config
from watcher.live import Live
from watcher.metrics import Metrics
from watcher.model import Ticket, format_time
from watcher.notify import links
from watcher.notify.render import Message, RenderError, render
from watcher.notify.sender import SendResult, send
from watcher.rules import mail
from watcher.store import OutboxItem, Store, keys
from watcher.tasks import cancel_and_wait

log = logging.getLogger(__name__)

HEARTBEAT = 2.0  # seconds between a notifier's heartbeats
DEAD_AFTER = 10.0  # a notifier whose heartbeat is this old is dead: its claims are taken again


@dataclass(frozen=True)
class Recipient:
    urls: tuple[str, ...]
    language: str
    person: dict[str, str] | None  # the reader as the templates see it: id, name, language


def resolve_recipient(config: Config, client_id: str, to: str) -> Recipient | None:
    """Where and in which language a notice goes: a person, the admins, the coordinator, an office."""
    inv = config.inventory
    client = inv.clients.get(client_id)
    lang = client.language if client else "pl"
    if to == "admins":
        return Recipient(client.admins, lang, None) if client else None
    if to == "service":  # the service team ("Serwis IT"); the admins where the inventory names none
        return Recipient(client.service or client.admins, lang, None) if client else None
    if to.startswith("provider:"):
        provider = getattr(inv.sites.get(to[9:]), "provider_contact", None)
        return Recipient(provider.urls(), lang, None) if provider else None
    if to == "coordinator":
        if client and client.coordinator:
            c = client.coordinator
            return Recipient(c.urls(), lang, {"id": "coordinator", "name": c.name, "language": lang})
        return None
    if to.startswith("office:"):
        site = inv.sites.get(to[7:])
        if site and site.office_contact:
            c = site.office_contact
            urls = c.urls()
            if c.phone and config.service.notify.sms_url:  # an office without internet still reads SMS
                digits = "".join(ch for ch in c.phone if ch.isdigit() or ch == "+")
                urls = (config.service.notify.sms_url.replace("{phone}", digits), *urls)  # SMS first, mail next
            return Recipient(urls, lang, {"id": to, "name": c.name, "language": lang})
        return None
    person = inv.people.get(to)
    if person is None:
        return None
    return Recipient(person.notify, person.language, {"id": person.id, "name": person.name,
                                                      "language": person.language})


def digest(messages: list[Message]) -> Message:
    """Several notices for one person at once become one message: their parts in order."""
    subject = " | ".join(m.subject for m in messages)
    if len(subject) > 200:
        subject = subject[:197] + "..."
    text = "\n\n".join(m.text.rstrip() for m in messages) + "\n"
    html = None
    if all(m.html for m in messages):
        html = "<hr>".join(m.html or "" for m in messages)
    return Message(subject, text, html)


class OutcomeWriter:
    """Deliveries' outcomes written in batches: every outcome that finished while the
    previous batch was being committed goes into the next single transaction.

    ``record`` returns once its outcome is durable, so a delivery counts as done only when
    its row says so, exactly as with one commit per outcome; what changes is that a storm
    of a thousand notices costs a few fsyncs, not a thousand, and leaves the store's write
    lock to ingest.
    """

    def __init__(self, store: Store, executor: ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self.executor = executor  # threads of its own: a mark must not queue behind other work
        self._sent: list[tuple[int, str | None, float]] = []
        self._failed: list[tuple[int, str, float | None]] = []
        self._waiting: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    async def sent(self, item_id: int, channel: str | None, at: float) -> None:
        self._sent.append((item_id, channel, at))
        await self._wait()

    async def failed(self, item_id: int, error: str, next_due: float | None) -> None:
        self._failed.append((item_id, error, next_due))
        await self._wait()

    async def _wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append(fut)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name="outbox-outcomes")
        await fut

    async def _flush(self) -> None:
        while self._waiting:
            sent, failed, waiting = self._sent, self._failed, self._waiting
            self._sent, self._failed, self._waiting = [], [], []
            try:
                await asyncio.get_running_loop().run_in_executor(self.executor, self.store.record_outcomes,
                                                                 sent, failed)
            except Exception as exc:  # the store is down: each sender sees the error and logs it
                for fut in waiting:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for fut in waiting:
                if not fut.done():
                    fut.set_result(None)


class ClaimWriter:
    """Claims written in batches, as ``OutcomeWriter`` writes outcomes: every claim asked for
    while the previous batch was being committed goes into the next single transaction.

    ``claim`` returns once its claim is durable, with the ids this notifier now owns, so
    each delivery still sends right after its own claim (the window in which a crash can
    repeat a notice stays the send itself); what changes is that the claims of the
    recipients being served at once cost one fsync, not one each.
    """

    def __init__(self, store: Store, owner: str, clock: Callable[[], float],
                 executor: ThreadPoolExecutor | None = None) -> None:
        self.store = store
        self.owner = owner
        self.clock = clock
        self.executor = executor
        self._asked: list[tuple[list[int], float, asyncio.Future[set[int]]]] = []
        self._task: asyncio.Task[None] | None = None

    async def claim(self, ids: list[int], lease: float) -> set[int]:
        fut: asyncio.Future[set[int]] = asyncio.get_running_loop().create_future()
        self._asked.append((ids, lease, fut))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush(), name="outbox-claims")
        return await fut

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._asked:
            asked, self._asked = self._asked, []
            by_lease: dict[float, list[tuple[list[int], asyncio.Future[set[int]]]]] = {}
            for ids, lease, fut in asked:
                by_lease.setdefault(lease, []).append((ids, fut))
            for lease, claims in by_lease.items():
                try:
                    got = set(await loop.run_in_executor(self.executor, self.store.claim,
                                                         [i for ids, _ in claims for i in ids],
                                                         self.clock(), self.owner, lease))
                except Exception as exc:  # the store is down: each delivery sees the error
                    for _, fut in claims:
                        if not fut.done():
                            fut.set_exception(exc)
                    continue
                for ids, fut in claims:
                    if not fut.done():
                        fut.set_result(got.intersection(ids))


@dataclass
class _Batch:
    """What one round of due notices reads together: their tickets (a ticket's recipients
    share one read and one JSON form) and each recipient's recent sends (the rate limit)."""

    tickets: dict[str, Ticket]
    recent: dict[str, int]
    docs: dict[str, dict[str, Any]]

    def doc(self, tk: Ticket) -> dict[str, Any]:
        """The ticket in its JSON form, made once for all its recipients (templates cannot
        change it: they run in an immutable sandbox)."""
        doc = self.docs.get(tk.id)
        if doc is None:
            doc = self.docs[tk.id] = tk.to_dict()
        return doc


ReportMail = Callable[[Store, Config, str], tuple[str, tuple[str, ...], Message] | None]
"""Makes the mail of the stored report an outbox row names: (language, the coordinator's URLs,
the message), or None when there is no such report (``watcher.report.send.prepare_mail``)."""


class Dispatcher:
    """Claims due outbox rows and delivers them, a few at a time.

    ``report_mail`` makes the monthly report's mail (``report`` rows); it is handed in by the
    wiring (watcher.app), so notify does not import the report that sends through it.  Without
    one, a ``report`` row is a dead letter.
    """

    def __init__(self, config: Config | Live, store: Store, metrics: Metrics, secret: bytes,
                 clock: Callable[[], float] = time.time, concurrency: int = 8,
                 report_mail: ReportMail | None = None) -> None:
        self.live = Live.of(config)
        self.report_mail = report_mail
        self.store = store
        self.metrics = metrics
        self.secret = secret
        self.clock = clock
        self.concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._down: set[str] = set()
        self.owner = uuid.uuid4().hex
        self._busy: set[int] = set()  # outbox ids this process is delivering
        self._beat_task: asyncio.Task[None] | None = None
        self._install = hashlib.sha256(b"watcher.install|" + secret).hexdigest()[:12]
        # claims and sent-marks on threads of their own: behind ingest's and the API's work in
        # the shared default pool, a mark would wait, and a crash in that wait repeats a send
        self._marks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="outbox-marks")
        self.outcomes = OutcomeWriter(store, self._marks)
        self.claims = ClaimWriter(store, self.owner, clock, self._marks)

    @property
    def config(self) -> Config:
        """The configuration in force (read at each use: a reload swaps it)."""
        return self.live.config

    async def start(self) -> None:
        now = self.clock()
        await asyncio.to_thread(keys.bury_dead_notifiers, self.store, now - DEAD_AFTER)
        await asyncio.to_thread(keys.heartbeat, self.store, self.owner, now)
        self._beat_task = asyncio.create_task(self._beat(), name="notify-heartbeat")
        self._task = asyncio.create_task(self._run(), name="notify-dispatcher")

    async def _beat(self) -> None:
        """Say this notifier is alive, and bury the ones that are not (their claims free up)."""
        while True:
            await asyncio.sleep(HEARTBEAT)
            try:
                now = self.clock()
                await asyncio.to_thread(keys.heartbeat, self.store, self.owner, now)
                if await asyncio.to_thread(keys.bury_dead_notifiers, self.store, now - DEAD_AFTER):
                    self._wake.set()
            except Exception as exc:
                log.warning("notifier heartbeat failed: %s", exc)

    async def stop(self, timeout: float = 35.0) -> None:
        """Finish the sends in flight (a send cut off midway would be repeated after a restart)."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout=timeout)
            except TimeoutError:
                await cancel_and_wait(self._task)
        if self._beat_task:
            self._beat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beat_task
            with contextlib.suppress(Exception):
                await asyncio.to_thread(keys.forget_notifier, self.store, self.owner)
        self._marks.shutdown(wait=False)  # nothing is in flight once the loop ended; never block the loop

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        """Keep up to ``concurrency`` recipients' deliveries in flight; claim more as slots free.

        A slow channel (a mail server that times out) holds one slot, not the whole queue.
        When nothing is due, sleep until the earliest notice falls due, a wake-up from the
        engine, or the poll interval, whichever comes first.
        """
        n = self.config.service.notify
        inflight: set[asyncio.Task[None]] = set()
        while not self._stopping:
            free = self.concurrency - len(inflight)
            items: list[OutboxItem] = []
            if free > 0:
                try:
                    items = await asyncio.to_thread(self.store.due, self.clock(), free * 4, n.claim_lease,
                                                    tuple(self._busy))
                except Exception as exc:
                    log.error("outbox unavailable: %s", exc)
            by_recipient: dict[str, list[OutboxItem]] = {}
            for item in items:
                # a report's mail goes alone: "coordinator" names a different person per client
                key = item.ticket_id if item.kind == "report" else item.recipient
                by_recipient.setdefault(key, []).append(item)
            batch = await self._read_batch(items) if items else None
            for group in by_recipient.values():
                ids = {i.id for i in group}
                self._busy |= ids
                task = asyncio.create_task(self._deliver_group(group, batch))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
                task.add_done_callback(functools.partial(self._done, ids))
            if items and len(inflight) < self.concurrency:
                continue
            timeout = n.poll_interval
            if not items:
                try:
                    upcoming = await asyncio.to_thread(self.store.next_due)
                except Exception:
                    upcoming = None
                if upcoming is not None:
                    timeout = min(timeout, max(0.0, upcoming - self.clock()) + 0.001)
            self._wake.clear()
            waiters: set[asyncio.Future[Any]] = {asyncio.ensure_future(self._wake.wait()), *inflight}
            _done, pending = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            for fut in pending:
                if fut not in inflight:
                    fut.cancel()
        if inflight:
            await asyncio.wait(inflight, timeout=30)

    async def _read_batch(self, items: list[OutboxItem]) -> _Batch | None:
        """The tickets and recent sends of a round of notices, in one trip to the store (None
        when the store fails: each delivery then reads its own, and says why it cannot)."""
        since = self.clock() - 3600
        tickets = [i.ticket_id for i in items if i.kind != "report"]
        people = [i.recipient for i in items if i.kind != "report"]

        def read() -> _Batch:
            return _Batch(self.store.tickets_by_id(tickets), self.store.sent_recently_many(people, since), {})

        try:
            return await asyncio.to_thread(read)
        except Exception as exc:
            log.warning("outbox batch read failed (%s); reading notice by notice", exc)
            return None

    def _done(self, ids: set[int], _task: asyncio.Task[None]) -> None:
        self._busy.difference_update(ids)

    def _backoff(self, attempts: int) -> float:
        n = self.config.service.notify
        return float(min(n.retry_max, n.retry_initial * (2 ** max(0, attempts))))

    async def _deliver(self, item: OutboxItem) -> None:
        await self._deliver_group([item])

    async def _prepare(self, item: OutboxItem, now: float, batch: _Batch | None = None
                       ) -> tuple[Recipient, Message] | None:
        """Render one notice; a notice that can never be sent is marked dead here (None)."""
        n = self.config.service.notify
        if item.kind == "report":
            if self.report_mail is None:
                await self._dead(item, "this service makes no report mails")
                return None
            made = await asyncio.to_thread(self.report_mail, self.store, self.config, item.ticket_id)
            if made is None or not made[1]:
                await self._dead(item, "no such report, or its client has no coordinator address")
                return None
            return Recipient(made[1], made[0], None), made[2]
        tk = batch.tickets.get(item.ticket_id) if batch is not None else None
        if tk is None:
            tk = await asyncio.to_thread(self.store.ticket, item.ticket_id)
        if tk is None:
            await self._dead(item, "ticket not found")
            return None
        recipient = resolve_recipient(self.config, tk.client, item.recipient)
        if recipient is None or not recipient.urls:
            await self._dead(item, "no address for this recipient")
            return None
        if tk.details.get("problem") == "server_down" and item.kind in ("opened", "planned"):
            # mail into the server that is down cannot arrive: only the other channels
            urls = mail.independent_urls(recipient.urls, mail.mail_domains(self.config.inventory, tk.client))
            if not urls:
                await self._dead(item, "every channel goes through the mail server that is down: on the call list")
                return None
            recipient = Recipient(urls, recipient.language, recipient.person)
        try:
            message = render(item.kind, recipient.language, self._context(tk, item, recipient, now, batch),
                             n.templates_dir)
        except RenderError as exc:
            log.error("cannot render %s for %s: %s", item.kind, item.ticket_id, exc)
            await self._dead(item, f"template: {exc}")
            return None
        return recipient, message

    async def _dead(self, item: OutboxItem, why: str) -> None:
        await asyncio.to_thread(self.store.mark_failed, item.id, why, None)
        self.metrics.notifications.labels(item.kind, "dead").inc()

    async def _deliver_group(self, items: list[OutboxItem], batch: _Batch | None = None) -> None:
        """Deliver the notices owed to one recipient: one message, a digest if there are several."""
        n = self.config.service.notify
        now = self.clock()
        head = items[0]
        if not head.recipient.startswith("office:") and head.recipient not in ("admins", "coordinator") and \
                any(i.kind not in ("resolved", "escalated") for i in items):
            if batch is not None:
                recent = batch.recent.get(head.recipient, 0)
            else:
                recent = await asyncio.to_thread(self.store.sent_recently, head.recipient, now - 3600)
            if recent >= n.per_person_per_hour:
                for item in items:
                    await asyncio.to_thread(self.store.mark_failed, item.id, "rate limit for this person", now + 300)
                return
        prepared: list[tuple[OutboxItem, Recipient, Message]] = []
        for item in items:
            got = await self._prepare(item, now, batch)
            if got is not None:
                prepared.append((item, *got))
        if not prepared:
            return
        # the claim, just before the send: a crash before it leaves the rows pending, after it
        # the rows are claimed by this (then dead) notifier and taken again at once
        claimed = await self.claims.claim([i.id for i, _, _ in prepared], n.claim_lease)
        prepared = [p for p in prepared if p[0].id in claimed]
        if not prepared:
            return  # another notifier took them
        recipient = prepared[0][1]
        message = prepared[0][2] if len(prepared) == 1 else digest([m for _, _, m in prepared])
        key = self.idempotency_key([i.id for i, _, _ in prepared])
        result = await send(recipient.urls, message, idempotency_key=key)
        await asyncio.gather(*(self._record(item, result) for item, _, _ in prepared))

    def idempotency_key(self, ids: list[int]) -> str:
        """The same notices always get the same key (outbox ids are unique in one database; the
        install tag, from the link key, keeps keys of two installations apart)."""
        return f"watcher-{self._install}-" + "-".join(str(i) for i in sorted(ids))

    async def _record(self, item: OutboxItem, result: SendResult) -> None:
        n = self.config.service.notify
        if result.ok:
            await self.outcomes.sent(item.id, result.channel, self.clock())
            self.metrics.notifications.labels(item.kind, "sent").inc()
            self.metrics.delivery_seconds.labels(item.kind).observe(max(0.0, self.clock() - item.created_at))
            if item.recipient in self._down:
                self._down.discard(item.recipient)
                log.info("delivery to %s works again", item.recipient)
            return
        give_up = not result.retryable or item.attempts + 1 >= n.max_attempts
        next_due = None if give_up else self.clock() + self._backoff(item.attempts)
        await self.outcomes.failed(item.id, result.error or "delivery failed", next_due)
        self.metrics.notifications.labels(item.kind, "dead" if give_up else "retry").inc()
        if item.recipient not in self._down:
            self._down.add(item.recipient)
            log.warning("delivery to %s is failing (%s); retrying with backoff, logged again when it works",
                        item.recipient, result.error)

    def _context(self, tk: Ticket, item: OutboxItem, recipient: Recipient, now: float,
                 batch: _Batch | None = None) -> dict[str, Any]:
        """What the templates read: the ticket in its JSON form (as the API shows it), the reader,
        the client and site, the signed links and the time (watcher.notify.render)."""
        inv = self.config.inventory
        client = inv.clients.get(tk.client)
        site = inv.sites.get(tk.site or "")
        expires = datetime.fromtimestamp(now, UTC) + timedelta(seconds=self.config.service.notify.link_ttl)
        base = self.config.service.public_url.rstrip("/")
        link_map: dict[str, str] = {}
        if base:
            if item.kind in ("opened", "planned") and recipient.person and not item.recipient.startswith("office:"):
                link_map["callback"] = f"{base}/l/" + links.sign(self.secret, "callback", tk.id,
                                                                 item.recipient, expires)
            if item.kind == "office_check":
                for action in ("planned", "failure"):
                    link_map[action] = f"{base}/l/" + links.sign(self.secret, action, tk.id,
                                                                 item.recipient, expires)
        return {
            "ticket": batch.doc(tk) if batch is not None else tk.to_dict(),
            "person": recipient.person,
            "client": {"id": client.id, "name": client.name, "timezone": str(client.timezone)} if client
            else {"id": tk.client, "name": tk.client},
            "site": {"id": site.id, "name": site.name} if site else None,
            "links": link_map,
            "now": format_time(datetime.fromtimestamp(now, UTC)),
        }
