"""Mailbox health: IMAP logins, quotas, SMTP submission and bounces in, mail signals out.

This module keeps the state and turns check outcomes into events; the checks themselves are
``imap.py`` and ``smtp.py``, bounces are parsed by ``dsn.py``, and the settings are
``watcher.config.mail``.

One :class:`MailboxCollector` runs every check of a :class:`MailConfig` per cycle
(``await collector.collect()``, or one scheduler job through :meth:`MailboxCollector.register`).
The blocking stdlib clients (``imaplib``, ``smtplib``) run in worker threads, at most
``max_concurrency`` at a time.  Per-mailbox and per-server state lives in memory, so a
recovery is reported as a resolved event and a lasting problem keeps its ``starts_at``.

Signals (``source: mailbox``; docs/events.md):

- ``{alertname: MailboxLoginFailed, mailbox, client}``: the server refused the login.
  Every failed attempt is a new occurrence: ``starts_at`` is the time of that attempt.
  The first successful login after failures emits the identity resolved.
- ``{alertname: MailboxQuotaNearlyFull, mailbox, client}``: ``GETQUOTAROOT INBOX``
  (RFC 2087/9208) shows a resource over ``quota_threshold`` percent; re-sent each cycle
  with the same ``starts_at`` (the first check over it) and the current numbers in the
  annotations (``percent``, ``used``, ``limit``, ``resource``, ``quota_root``); resolved
  when back under.
- ``{alertname: MailServerDown, client, host}``: an IMAP or SMTP endpoint of the host
  does not answer (refused, timed out, closed at once, TLS handshake failed, an SMTP
  greeting or EHLO refused, STARTTLS not offered when asked for) or its login service
  says it is unavailable (``[UNAVAILABLE]``/``[SERVERBUG]``).  Firing while any checked
  endpoint of the host is down (an endpoint counts as up when any check of it answered
  in the cycle), with a stable ``starts_at``; resolved when every endpoint answers.  A
  mailbox whose server does not answer gets no login verdict at all: an unreachable
  server is not a wrong password.
- ``{alertname: MailDeliveryFailed, mailbox, client, status}``: an RFC 3464 delivery
  status notification with ``Action: failed`` read from a bounce mailbox (unseen
  messages; marked ``\\Seen`` once their events were delivered).  ``mailbox`` is the
  failed recipient when it is in the inventory (mail to it bounced), else the original
  sender when that is (mail from it bounced); ``starts_at`` is the report's
  ``Arrival-Date``, else the bounce's ``Date``, so reading the same bounce again is the
  same occurrence.

Checks that cannot run (a mailbox missing from the inventory, a password reference that
does not resolve, a server that wants TLS for a plaintext login, an SMTP AUTH refused to
the monitoring account: that identity is not a mailbox's owner) are errors of the
collector, not signals: they are logged once when they start and once when they stop,
and listed by :meth:`MailboxCollector.problems`.

Passwords are never in the configuration: a check names a ``password_ref``
(``env:NAME``, ``file:PATH``, ``file:PATH#KEY``, see :func:`watcher.config.secrets.read_secret`), which is
read at each check (so a rotated secret is picked up) into a :class:`Secret`, whose
``repr`` and ``str`` are masked.  No log line or annotation carries a password.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from watcher.collectors.base import EventSink
from watcher.collectors.mail.dsn import DeliveryReport, parse_dsn
from watcher.collectors.mail.imap import (
    BounceBatch,
    ImapResult,
    QuotaUsage,
    bounce_commit,
    bounce_fetch,
    close_connection,
    imap_check,
)
from watcher.collectors.mail.outcome import exc_text, scrub
from watcher.collectors.mail.smtp import SmtpResult, smtp_check
from watcher.collectors.schedule import Scheduler
from watcher.config.inventory import Inventory
from watcher.config.mail import BounceSource, MailboxCheck, MailConfig, SmtpCheck
from watcher.config.secrets import Secret, SecretError, read_secret
from watcher.model import Event, utcnow

__all__ = ["SOURCE", "MailboxCollector", "MailboxState", "ServerState"]

log = logging.getLogger(__name__)

SOURCE = "mailbox"
LOGIN_FAILED = "MailboxLoginFailed"
QUOTA_FULL = "MailboxQuotaNearlyFull"
DELIVERY_FAILED = "MailDeliveryFailed"
SERVER_DOWN = "MailServerDown"


@dataclass
class MailboxState:
    """What the collector knows of one checked mailbox; :meth:`MailboxCollector.states` gives copies."""

    address: str
    client: str
    host: str
    port: int
    login_ok: bool | None = None
    failures: int = 0
    failing_since: datetime | None = None
    last_failure: datetime | None = None
    quota_over: bool | None = None
    quota_since: datetime | None = None
    quota_percent: float | None = None
    quota: tuple[QuotaUsage, ...] = ()
    last_checked: datetime | None = None
    last_error: str | None = None


@dataclass
class ServerState:
    """One (client, host): which endpoints (``imap:993``, ``smtp:587``) are down, since when."""

    client: str
    host: str
    up: bool | None = None
    down_since: datetime | None = None
    down: dict[str, str] = field(default_factory=dict)
    last_checked: datetime | None = None



@dataclass(frozen=True)
class _ImapTarget:
    check: MailboxCheck
    client: str
    host: str


@dataclass(frozen=True)
class _SmtpTarget:
    check: SmtpCheck
    client: str


@dataclass(frozen=True)
class _BounceTarget:
    source: BounceSource
    client: str  # "" when the bounce mailbox's server belongs to no client
    host: str


class MailboxCollector:
    """Runs the mail checks of ``config`` against ``inventory``; see the module docstring.

    ``await collect()`` runs one cycle and returns its events; with ``deliver`` it hands
    them over first and only then marks the bounces read, so a sink that refuses them
    leaves the bounces unread for the next cycle.  ``register(scheduler, sink)`` adds one
    job (``mail``) that does exactly that every ``config.interval``.

    ``resolve_on_start`` (default on, as the probes do): the first good check of an
    identity after the collector is built emits it resolved without ``starts_at``,
    because a previous process may have stopped while it was firing.
    """

    def __init__(self, config: MailConfig, inventory: Inventory, *, sink: EventSink | None = None,
                 resolve_on_start: bool = True, clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self._sink = sink
        self.resolve_on_start = resolve_on_start
        self._clock = clock
        self._lock = asyncio.Lock()
        self._sem = asyncio.Semaphore(config.max_concurrency)
        self._mailbox_client = {addr.lower(): mb.client for addr, mb in inventory.mailboxes.items()}
        self._mailbox_address = {addr.lower(): addr for addr in inventory.mailboxes}
        self._problems: dict[str, str] = {}
        self._config_problems: dict[str, str] = {}
        self._states: dict[str, MailboxState] = {}
        self._servers: dict[tuple[str, str], ServerState] = {}
        self._imap: list[_ImapTarget] = []
        self._smtp: list[_SmtpTarget] = []
        self._bounces: list[_BounceTarget] = []
        for check in config.mailboxes:
            key = check.address.lower()
            if key in self._states:
                self._config_problems[f"mailbox {check.address} (again)"] = "checked twice; the second is ignored"
                continue
            client = self._mailbox_client.get(key)
            if client is None:
                self._config_problems[f"mailbox {check.address}"] = "not in the inventory; not checked"
                continue
            host = check.imap_host or _first(inventory.clients[client].mail_hosts)
            if not host:
                self._config_problems[f"mailbox {check.address}"] = (
                    f"no imap_host and client {client} has no mail_hosts; not checked")
                continue
            self._imap.append(_ImapTarget(check, client, host))
            self._states.setdefault(key, MailboxState(self._mailbox_address[key], client, host, check.port))
        for smtp in config.smtp:
            client = smtp.client or inventory.by_mail_host.get(smtp.host, "")
            if not client or client not in inventory.clients:
                self._config_problems[f"smtp {smtp.host}"] = (
                    f"client {smtp.client!r} is not in the inventory; not checked" if smtp.client
                    else "no client given and no client lists this host in mail_hosts; not checked")
                continue
            self._smtp.append(_SmtpTarget(smtp, client))
        for source in config.bounces:
            check = source.mailbox
            client = (source.client or self._mailbox_client.get(check.address.lower(), "")
                      or inventory.by_mail_host.get(check.imap_host, ""))
            if client and client not in inventory.clients:
                self._config_problems[f"bounces {check.address}"] = f"no client {client!r} in the inventory; not read"
                continue
            host = check.imap_host or (_first(inventory.clients[client].mail_hosts) if client else "")
            if not host:
                self._config_problems[f"bounces {check.address}"] = "no imap_host; not read"
                continue
            self._bounces.append(_BounceTarget(source, client, host))
        for what, problem in self._config_problems.items():
            log.error("mail check %s: %s", what, problem)

    # ------------------------------------------------------------ public

    async def __aenter__(self) -> MailboxCollector:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Nothing held between cycles: each check opens and closes its own connection."""

    def register(self, scheduler: Scheduler, sink: EventSink | None = None, *, name: str = "mail") -> None:
        """One scheduler job that runs :meth:`collect` with ``sink`` (default: the one given at
        construction) every ``config.interval``."""
        deliver = sink or self._sink
        if deliver is None:
            raise RuntimeError("MailboxCollector.register needs a sink")

        async def job() -> None:
            await self.collect(deliver=deliver)
        rounds = max(1, -(-(len(self._imap) + len(self._smtp) + len(self._bounces)) // self.config.max_concurrency))
        timeout = max(self.config.interval, rounds * self.config.timeout * 3 + 10)
        scheduler.add(name, job, interval=self.config.interval, timeout=timeout)

    def states(self) -> list[MailboxState]:
        return [replace(s) for s in self._states.values()]

    def servers(self) -> list[ServerState]:
        return [replace(s, down=dict(s.down)) for s in self._servers.values()]

    def problems(self) -> dict[str, str]:
        """Checks that cannot run as configured, and why (no secrets in the text)."""
        return {**self._config_problems, **self._problems}

    async def collect(self, deliver: EventSink | None = None) -> list[Event]:
        """Run every check once; return (and, with ``deliver``, hand over) the events of this cycle."""
        async with self._lock:
            imap_res, smtp_res, bounce_res = await asyncio.gather(
                asyncio.gather(*(self._run_imap(t) for t in self._imap)),
                asyncio.gather(*(self._run_smtp(t) for t in self._smtp)),
                asyncio.gather(*(self._run_bounce(t) for t in self._bounces)),
            )
            try:
                now = self._clock()
                endpoints: dict[tuple[str, str], dict[str, str | None]] = {}
                events: list[Event] = []
                for target, (at, result) in zip(self._imap, imap_res, strict=True):
                    self._endpoint(endpoints, target.client, target.host, f"imap:{target.check.port}", result)
                    events.extend(self._mailbox_events(target, at, now, result))
                for starget, (_at, sresult) in zip(self._smtp, smtp_res, strict=True):
                    self._endpoint(endpoints, starget.client, starget.check.host,
                                   f"smtp:{starget.check.effective_port}", sresult)
                for btarget, batch in zip(self._bounces, bounce_res, strict=True):
                    if btarget.client:
                        self._endpoint(endpoints, btarget.client, btarget.host,
                                       f"imap:{btarget.source.mailbox.port}", batch)
                    self._problem(f"bounces {btarget.source.mailbox.address}",
                                  None if batch.outcome == "ok" else batch.error)
                    events.extend(self._bounce_events(batch, now))
                events = self._server_events(endpoints, now) + events
                events = list({e.occurrence_key: e for e in events}.values())
                if deliver is not None and events:
                    await deliver(events)
                for batch in bounce_res:
                    if batch.conn is not None:
                        conn, batch.conn = batch.conn, None
                        error = await asyncio.to_thread(bounce_commit, conn, [uid for uid, _ in batch.messages])
                        if error:
                            log.warning("bounces: could not mark %d message(s) read: %s", len(batch.messages), error)
                return events
            finally:
                for batch in bounce_res:
                    if batch.conn is not None:
                        close_connection(batch.conn)
                        batch.conn = None

    # ------------------------------------------------------------ running the checks

    async def _password(self, what: str, ref: str, key: str) -> Secret | None:
        try:
            secret = await asyncio.to_thread(read_secret, ref, self.config.base_dir, key)
        except SecretError as exc:
            self._problem(what, f"password: {exc}")
            return None
        return secret

    async def _run_imap(self, target: _ImapTarget) -> tuple[datetime, ImapResult]:
        check = target.check
        what = f"mailbox {check.address}"
        password = await self._password(what, check.password_ref, check.login)
        async with self._sem:
            at = self._clock()
            if password is None:
                return at, ImapResult("skipped", self._problems.get(what, "no password"))
            try:
                result = await asyncio.to_thread(imap_check, check, target.host, password, self.config.timeout)
            except Exception as exc:  # a bug or an unforeseen library error: not a signal
                result = ImapResult("skipped", scrub(f"{type(exc).__name__}: {exc}", password))
        self._problem(what, result.error if result.outcome in ("misconfigured", "skipped") else None)
        return at, result

    async def _run_smtp(self, target: _SmtpTarget) -> tuple[datetime, SmtpResult]:
        check = target.check
        what = f"smtp {check.host}:{check.effective_port}"
        password = None
        if check.password_ref:
            password = await self._password(what, check.password_ref, check.username)
        async with self._sem:
            at = self._clock()
            if check.password_ref and password is None:
                return at, SmtpResult("skipped", self._problems.get(what, "no password"))
            try:
                result = await asyncio.to_thread(smtp_check, check, password, self.config.timeout)
            except Exception as exc:
                result = SmtpResult("skipped", scrub(f"{type(exc).__name__}: {exc}", password))
        self._problem(what, result.error if result.outcome in ("misconfigured", "login_failed", "skipped")
                      else None)
        return at, result

    async def _run_bounce(self, target: _BounceTarget) -> BounceBatch:
        check = target.source.mailbox
        password = await self._password(f"bounces {check.address}", check.password_ref, check.login)
        if password is None:
            return BounceBatch(None, [], "skipped", self._problems.get(f"bounces {check.address}", "no password"))
        async with self._sem:
            try:
                return await asyncio.to_thread(bounce_fetch, target.source, target.host, password,
                                               self.config.timeout)
            except Exception as exc:
                return BounceBatch(None, [], "skipped", scrub(f"{type(exc).__name__}: {exc}", password))

    def _problem(self, what: str, error: str | None) -> None:
        """Remember a check's own error; log it when it starts, changes or stops (not every cycle)."""
        old = self._problems.get(what)
        if error is None:
            if old is not None:
                del self._problems[what]
                log.info("mail check %s works again", what)
            return
        if old != error:
            self._problems[what] = error
            log.warning("mail check %s cannot run: %s", what, error)

    # ------------------------------------------------------------ turning results into events

    @staticmethod
    def _endpoint(endpoints: dict[tuple[str, str], dict[str, str | None]], client: str, host: str, name: str,
                  result: ImapResult | SmtpResult | BounceBatch) -> None:
        if result.outcome == "skipped":
            return
        slot = endpoints.setdefault((client, host), {})
        if result.outcome != "down":
            slot[name] = None  # any check that got an answer shows the endpoint up
        elif name not in slot:
            slot[name] = result.error

    def _server_events(self, endpoints: dict[tuple[str, str], dict[str, str | None]], now: datetime) -> list[Event]:
        events: list[Event] = []
        for (client, host), slot in endpoints.items():
            state = self._servers.setdefault((client, host), ServerState(client, host))
            state.last_checked = now
            down = {name: err for name, err in sorted(slot.items()) if err is not None}
            labels = {"alertname": SERVER_DOWN, "client": client, "host": host}
            if down:
                if state.down_since is None:
                    state.down_since = now
                    log.warning("mail server %s (client %s) does not answer: %s", host, client,
                                "; ".join(f"{k}: {v}" for k, v in down.items()))
                state.up, state.down = False, down
                events.append(Event(
                    labels=labels, source=SOURCE, status="firing", starts_at=state.down_since, observed_at=now,
                    annotations={"summary": f"Mail server {host} of {client} does not answer",
                                 "endpoints": ", ".join(down),
                                 "error": "; ".join(f"{k}: {v}" for k, v in down.items())}))
                continue
            if state.down_since is not None:
                log.info("mail server %s (client %s) answers again", host, client)
                events.append(Event(labels=labels, source=SOURCE, status="resolved", starts_at=state.down_since,
                                    ends_at=now, observed_at=now,
                                    annotations={"summary": f"Mail server {host} of {client} answers again"}))
            elif state.up is None and self.resolve_on_start:
                events.append(Event(labels=labels, source=SOURCE, status="resolved", ends_at=now, observed_at=now,
                                    annotations={"summary": f"Mail server {host} of {client} answers "
                                                            "(first check since start)"}))
            state.up, state.down, state.down_since = True, {}, None
        return events

    def _mailbox_events(self, target: _ImapTarget, at: datetime, now: datetime,
                        result: ImapResult) -> list[Event]:
        state = self._states[target.check.address.lower()]
        state.last_checked = at
        labels = {"alertname": LOGIN_FAILED, "mailbox": state.address, "client": state.client}
        events: list[Event] = []
        if result.outcome == "login_failed":
            if state.failing_since is None:
                state.failing_since = at
                log.warning("mailbox %s: login refused: %s", state.address, result.error)
            state.login_ok, state.failures, state.last_failure = False, state.failures + 1, at
            state.last_error = result.error
            events.append(Event(labels=labels, source=SOURCE, status="firing", starts_at=at, observed_at=now,
                                annotations={"summary": f"Login to mailbox {state.address} failed",
                                             "error": result.error, "host": target.host,
                                             "consecutive_failures": str(state.failures)}))
            return events
        if result.outcome != "ok":
            state.last_error = result.error
            return events
        state.last_error = None
        if state.failing_since is not None:
            log.info("mailbox %s: login works again after %d failure(s)", state.address, state.failures)
            events.append(Event(labels=labels, source=SOURCE, status="resolved", starts_at=state.last_failure,
                                ends_at=at, observed_at=now,
                                annotations={"summary": f"Login to mailbox {state.address} works again",
                                             "failures": str(state.failures)}))
        elif state.login_ok is None and self.resolve_on_start:
            events.append(Event(labels=labels, source=SOURCE, status="resolved", ends_at=at, observed_at=now,
                                annotations={"summary": f"Login to mailbox {state.address} works "
                                                        "(first check since start)"}))
        state.login_ok, state.failures, state.failing_since = True, 0, None
        events.extend(self._quota_events(state, at, now, result))
        return events

    def _quota_events(self, state: MailboxState, at: datetime, now: datetime, result: ImapResult) -> list[Event]:
        if result.quota_error is not None:
            self._problem(f"quota {state.address}", result.quota_error)
            return []
        self._problem(f"quota {state.address}", None)
        if result.quota is None:
            return []
        state.quota = tuple(result.quota)
        limited = [q for q in result.quota if q.limit > 0]
        labels = {"alertname": QUOTA_FULL, "mailbox": state.address, "client": state.client}
        if not limited:
            state.quota_percent = None
            return self._quota_clear(state, labels, at, now, "no quota limit")
        worst = max(limited, key=lambda q: q.percent)
        state.quota_percent = worst.percent
        threshold = self.config.quota_threshold
        if worst.percent >= threshold:
            if state.quota_since is None:
                state.quota_since = at
                log.warning("mailbox %s is %.1f %% full (%s)", state.address, worst.percent, worst.resource)
            state.quota_over = True
            annotations = {
                "summary": f"Mailbox {state.address} is {worst.percent:.1f} % full",
                "percent": f"{worst.percent:.1f}", "threshold": f"{threshold:g}",
                "resource": worst.resource, "quota_root": worst.root,
                "used": str(worst.usage), "limit": str(worst.limit),
            }
            if worst.resource == "STORAGE":
                annotations["used_bytes"] = str(worst.usage * 1024)
                annotations["limit_bytes"] = str(worst.limit * 1024)
            return [Event(labels=labels, source=SOURCE, status="firing", starts_at=state.quota_since,
                          observed_at=now, annotations=annotations)]
        return self._quota_clear(state, labels, at, now, f"{worst.percent:.1f} % used")

    def _quota_clear(self, state: MailboxState, labels: dict[str, str], at: datetime, now: datetime,
                     why: str) -> list[Event]:
        events: list[Event] = []
        summary = f"Mailbox {state.address} is no longer nearly full ({why})"
        if state.quota_since is not None:
            log.info("mailbox %s: quota back under the threshold (%s)", state.address, why)
            events.append(Event(labels=labels, source=SOURCE, status="resolved", starts_at=state.quota_since,
                                ends_at=at, observed_at=now, annotations={"summary": summary}))
        elif state.quota_over is None and self.resolve_on_start:
            events.append(Event(labels=labels, source=SOURCE, status="resolved", ends_at=at, observed_at=now,
                                annotations={"summary": summary}))
        state.quota_over, state.quota_since = False, None
        return events

    def _bounce_events(self, batch: BounceBatch, now: datetime) -> list[Event]:
        events: list[Event] = []
        for _uid, raw in batch.messages:
            try:
                report = parse_dsn(raw)
            except Exception as exc:  # a malformed message must not stop the other bounces
                log.warning("bounces: unreadable message skipped: %s", exc_text(exc))
                continue
            if report is None:
                log.debug("bounces: a message that is not a delivery status notification was skipped")
                continue
            events.extend(self.report_events(report, now))
        return events

    def report_events(self, report: DeliveryReport, now: datetime | None = None) -> list[Event]:
        """The MailDeliveryFailed events of one parsed DSN: one per failed recipient we can bind."""
        now = now or self._clock()
        events: list[Event] = []
        for rcpt in report.failed:
            candidates = [(rcpt.final_recipient, "inbound")]
            if rcpt.original_recipient:
                candidates.append((rcpt.original_recipient, "inbound"))
            candidates += [(s, "outbound") for s in report.senders]
            found = next(((a, d) for a, d in candidates if a in self._mailbox_client), None)
            if found is None:
                continue
            key, direction = found
            address = self._mailbox_address[key]
            status = rcpt.status or "5.0.0"
            sender = report.senders[0] if report.senders else ""
            annotations = {
                "summary": (f"Mail to {address} bounced ({status})" if direction == "inbound"
                            else f"Mail from {address} to {rcpt.final_recipient} bounced ({status})"),
                "direction": direction,
                "recipient": rcpt.final_recipient,
                "action": rcpt.action,
            }
            for name, value in (("sender", sender), ("diagnostic", rcpt.diagnostic_code),
                                ("remote_mta", rcpt.remote_mta), ("reporting_mta", report.reporting_mta),
                                ("subject", report.original_subject), ("message_id", report.message_id),
                                ("original_message_id", report.original_message_id)):
                if value:
                    annotations[name] = value
            events.append(Event(
                labels={"alertname": DELIVERY_FAILED, "mailbox": address,
                        "client": self._mailbox_client[key], "status": status},
                source=SOURCE, status="firing", starts_at=report.occurred_at or rcpt.last_attempt,
                observed_at=now, annotations=annotations))
        return events


def _first(items: Sequence[str]) -> str:
    return items[0] if items else ""
