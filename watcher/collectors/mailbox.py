"""Mailbox health: IMAP logins, quotas, SMTP submission and bounces in, mail signals out.

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
(``env:NAME``, ``file:PATH``, ``file:PATH#KEY``, see :func:`resolve_password`), which is
read at each check (so a rotated secret is picked up) into a :class:`Secret`, whose
``repr`` and ``str`` are masked.  No log line or annotation carries a password.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import json
import logging
import os
import re
import smtplib
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal

import yaml

from watcher.collectors.base import EventSink
from watcher.collectors.schedule import Scheduler
from watcher.config.inventory import Inventory
from watcher.config.yamlload import Reader
from watcher.model import Event, utcnow

__all__ = [
    "SOURCE",
    "BounceSource",
    "DeliveryReport",
    "DsnRecipient",
    "MailConfig",
    "MailConfigError",
    "MailboxCheck",
    "MailboxCollector",
    "MailboxState",
    "QuotaUsage",
    "Secret",
    "SecretError",
    "ServerState",
    "SmtpCheck",
    "load_mail_config",
    "parse_dsn",
    "parse_quota",
    "resolve_password",
]

log = logging.getLogger(__name__)

SOURCE = "mailbox"
LOGIN_FAILED = "MailboxLoginFailed"
QUOTA_FULL = "MailboxQuotaNearlyFull"
DELIVERY_FAILED = "MailDeliveryFailed"
SERVER_DOWN = "MailServerDown"

MAX_BOUNCE_BYTES = 1 << 20
"""Bytes of a bounce read: the report parts come first, the returned message is not needed whole."""
MAX_BOUNCES_PER_CYCLE = 200

_REF_HELP = "expected env:NAME, file:PATH or file:PATH#KEY; a password is never written in the configuration"
_MAP_SUFFIXES = (".yaml", ".yml", ".json")


# ---------------------------------------------------------------- secrets


class SecretError(Exception):
    """A password reference that does not resolve; the message never contains a secret."""


class Secret:
    """A password held in memory; ``repr``/``str`` are masked, :meth:`reveal` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)


def check_password_ref(ref: str) -> None:
    """Raise ValueError (without echoing ``ref``, which may be a pasted password) unless well formed."""
    if ref.startswith("env:"):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", ref[4:]):
            raise ValueError(f"env: needs an environment variable name; {_REF_HELP}")
        return
    if ref.startswith("file:"):
        path = ref[5:].split("#", 1)[0]
        if not path:
            raise ValueError(f"file: needs a path; {_REF_HELP}")
        return
    raise ValueError(_REF_HELP)


def resolve_password(ref: str, key: str, base_dir: Path | None = None) -> Secret:
    """The password ``ref`` names, read now.

    - ``env:NAME``: the environment variable ``NAME``;
    - ``file:PATH#KEY``: the value of ``KEY`` in the YAML or JSON map in ``PATH``;
    - ``file:PATH`` where PATH ends in ``.yaml``, ``.yml`` or ``.json``: that map's value
      for ``key`` (the mailbox address or login name);
    - ``file:PATH`` otherwise: the whole file, without the trailing newline.

    Relative paths are relative to ``base_dir``.  Raises SecretError naming the variable,
    file or key, never a value.
    """
    try:
        check_password_ref(ref)
    except ValueError as exc:
        raise SecretError(str(exc)) from None
    if ref.startswith("env:"):
        name = ref[4:]
        value = os.environ.get(name)
        if value is None:
            raise SecretError(f"environment variable {name} is not set")
        return Secret(value)
    spec = ref[5:]
    path_text, _, map_key = spec.partition("#")
    path = Path(path_text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecretError(f"cannot read secrets file {path}: {exc.strerror or type(exc).__name__}") from None
    if not map_key and path.suffix.lower() not in _MAP_SUFFIXES:
        return Secret(text.rstrip("\r\n"))
    wanted = map_key or key
    data = _load_map(path, text)
    value = data.get(wanted)
    if value is None:
        lowered = {str(k).lower(): v for k, v in data.items()}
        value = lowered.get(wanted.lower())
    if value is None:
        raise SecretError(f"secrets file {path} has no entry for {wanted!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SecretError(f"secrets file {path}: the entry for {wanted!r} is not a string")
    return Secret(str(value))


def _load_map(path: Path, text: str) -> dict[Any, Any]:
    """A YAML/JSON mapping; a parse error names only the line (a snippet could leak a secret)."""
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise SecretError(f"secrets file {path} is not valid JSON (line {exc.lineno})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SecretError(f"secrets file {path} is not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise SecretError(f"secrets file {path} is not a map of address -> password")
    return data


def _scrub(text: str, *secrets: Secret | None) -> str:
    for s in secrets:
        if s is not None and len(s.reveal()) >= 3:
            text = text.replace(s.reveal(), "********")
    return text


# ---------------------------------------------------------------- configuration


class MailConfigError(ValueError):
    """A bad mail check setting; ``key`` names the field."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class MailboxCheck:
    """How to log in to one mailbox over IMAP.

    ``imap_host`` empty means the first of the client's ``mail_hosts`` in the inventory;
    ``imap_port`` None means 993 with ``tls`` (implicit TLS) and 143 without;
    ``starttls`` upgrades a plaintext connection; ``username`` empty means the address.
    """

    address: str
    imap_host: str = ""
    imap_port: int | None = None
    username: str = ""
    password_ref: str = ""
    tls: bool = True
    starttls: bool = False
    verify_tls: bool = True
    quota: bool = True

    def __post_init__(self) -> None:
        if "@" not in self.address:
            raise MailConfigError("address", f"{self.address!r} is not a mail address")
        if self.imap_port is not None and not 0 < self.imap_port < 65536:
            raise MailConfigError("imap_port", f"{self.imap_port} is not a TCP port")
        if self.tls and self.starttls:
            raise MailConfigError("starttls", "starttls needs tls: false (tls is implicit TLS, port 993)")
        try:
            check_password_ref(self.password_ref)
        except ValueError as exc:
            raise MailConfigError("password_ref", str(exc)) from None

    @property
    def port(self) -> int:
        return self.imap_port or (993 if self.tls else 143)

    @property
    def login(self) -> str:
        return self.username or self.address


@dataclass(frozen=True)
class SmtpCheck:
    """A submission check of one mail server: connect, EHLO, optional STARTTLS and AUTH.

    ``client`` empty means the client whose ``mail_hosts`` list ``host``.  ``tls`` is
    implicit TLS (port 465); ``starttls`` (default) upgrades port 587.  ``username`` with
    a ``password_ref`` also tries AUTH.
    """

    host: str
    client: str = ""
    port: int | None = None
    tls: bool = False
    starttls: bool = True
    verify_tls: bool = True
    username: str = ""
    password_ref: str = ""

    def __post_init__(self) -> None:
        if not self.host:
            raise MailConfigError("host", "required")
        if self.port is not None and not 0 < self.port < 65536:
            raise MailConfigError("port", f"{self.port} is not a TCP port")
        if self.tls and self.starttls:
            raise MailConfigError("starttls", "starttls needs tls: false (tls is implicit TLS, port 465)")
        if self.password_ref:
            try:
                check_password_ref(self.password_ref)
            except ValueError as exc:
                raise MailConfigError("password_ref", str(exc)) from None
        if self.password_ref and not self.username:
            raise MailConfigError("username", "required with password_ref")

    @property
    def effective_port(self) -> int:
        return self.port or (465 if self.tls else 587)


@dataclass(frozen=True)
class BounceSource:
    """A mailbox that receives bounces (DSNs), read over IMAP; ``folder`` is searched for UNSEEN."""

    mailbox: MailboxCheck
    folder: str = "INBOX"
    client: str = ""


@dataclass(frozen=True)
class MailConfig:
    """Everything the mail checks need; no password in it (see :func:`resolve_password`)."""

    mailboxes: tuple[MailboxCheck, ...] = ()
    smtp: tuple[SmtpCheck, ...] = ()
    bounces: tuple[BounceSource, ...] = ()
    interval: float = 300.0
    timeout: float = 20.0
    quota_threshold: float = 90.0
    max_concurrency: int = 8
    base_dir: Path | None = None

    def __post_init__(self) -> None:
        if not 0 < self.quota_threshold <= 100:
            raise MailConfigError("quota_threshold", "must be a percentage above 0 and at most 100")
        if self.max_concurrency < 1:
            raise MailConfigError("max_concurrency", "must be at least 1")
        if self.interval <= 0:
            raise MailConfigError("interval", "must be positive")
        if self.timeout <= 0:
            raise MailConfigError("timeout", "must be positive")


def load_mail_config(r: Reader, base_dir: Path) -> MailConfig:
    """The ``mail:`` section of watcher.yaml as a MailConfig; errors name file, line and key.

    ``secrets_file`` (a YAML/JSON map of address -> password) supplies the password of
    every check that has no ``password_ref``.  Relative paths are relative to ``base_dir``.
    """
    r.check_keys({"interval", "timeout", "quota_threshold", "max_concurrency", "secrets_file",
                  "mailboxes", "smtp", "bounces"})
    secrets = r.opt_str("secrets_file")
    secrets_path = (base_dir / secrets).resolve() if secrets else None
    if secrets_path is not None and not secrets_path.is_file():
        r.fail("secrets_file", f"no such file: {secrets_path}")

    def ref_of(mr: Reader, login: str) -> str:
        ref = mr.opt_str("password_ref")
        if ref:
            return ref
        if secrets_path is None:
            mr.fail("password_ref", f"required (or set mail.secrets_file); {_REF_HELP}")
        return f"file:{secrets_path}#{login}"

    def mailbox(mr: Reader, extra: frozenset[str] = frozenset()) -> MailboxCheck:
        mr.check_keys({"address", "imap_host", "imap_port", "username", "password_ref", "tls", "starttls",
                       "verify_tls", "quota"} | extra)
        address = mr.text("address", required=True)
        username = mr.text("username", "")
        try:
            return MailboxCheck(
                address=address, imap_host=mr.text("imap_host", ""),
                imap_port=mr.integer("imap_port") if mr.has("imap_port") else None,
                username=username, password_ref=ref_of(mr, username or address), tls=mr.flag("tls", True),
                starttls=mr.flag("starttls", False), verify_tls=mr.flag("verify_tls", True),
                quota=mr.flag("quota", True))
        except MailConfigError as exc:
            mr.fail(exc.key, str(exc))

    checks = tuple(mailbox(mr) for mr in r.items("mailboxes"))
    smtp: list[SmtpCheck] = []
    for sr in r.items("smtp"):
        sr.check_keys({"host", "client", "port", "tls", "starttls", "verify_tls", "username", "password_ref"})
        username = sr.text("username", "")
        ref = sr.opt_str("password_ref") or (ref_of(sr, username) if username else "")
        try:
            smtp.append(SmtpCheck(
                host=sr.text("host", required=True), client=sr.text("client", ""),
                port=sr.integer("port") if sr.has("port") else None, tls=sr.flag("tls", False),
                starttls=sr.flag("starttls", not sr.flag("tls", False)), verify_tls=sr.flag("verify_tls", True),
                username=username, password_ref=ref))
        except MailConfigError as exc:
            sr.fail(exc.key, str(exc))
    bounces = tuple(BounceSource(mailbox(br, frozenset({"folder", "client"})), br.text("folder", "INBOX"),
                                 br.text("client", ""))
                    for br in r.items("bounces"))
    try:
        return MailConfig(checks, tuple(smtp), bounces, interval=r.duration("interval", 300),
                          timeout=r.duration("timeout", 20), quota_threshold=r.number("quota_threshold", 90.0),
                          max_concurrency=r.integer("max_concurrency", 8, minimum=1), base_dir=base_dir)
    except MailConfigError as exc:
        r.fail(exc.key, str(exc))


# ---------------------------------------------------------------- pure parsers


@dataclass(frozen=True)
class QuotaUsage:
    """One resource of one quota root (RFC 9208): STORAGE is in KiB, MESSAGE in messages."""

    root: str
    resource: str
    usage: int
    limit: int

    @property
    def percent(self) -> float:
        return self.usage * 100.0 / self.limit if self.limit > 0 else 0.0


_QUOTA_LINE = re.compile(r'^\s*(?:"((?:[^"\\]|\\.)*)"|(\S+))\s*\((.*)\)\s*$')


def parse_quota(lines: Iterable[bytes | str | None]) -> list[QuotaUsage]:
    """The untagged ``QUOTA`` responses (``"root" (STORAGE 10 1024 MESSAGE 3 1000)``) as usages.

    Malformed lines or triples are skipped; an empty result means no limit is known.
    """
    out: list[QuotaUsage] = []
    for raw in lines:
        if raw is None:
            continue
        line = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        m = _QUOTA_LINE.match(line)
        if not m:
            continue
        root = re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
        parts = m.group(3).split()
        for i in range(0, len(parts) - 2, 3):
            name, used, limit = parts[i], parts[i + 1], parts[i + 2]
            if used.isdigit() and limit.isdigit():
                out.append(QuotaUsage(root, name.upper(), int(used), int(limit)))
    return out


@dataclass(frozen=True)
class DsnRecipient:
    """The per-recipient fields of a DSN (RFC 3464 section 2.3); addresses lower-cased."""

    final_recipient: str
    action: str
    status: str
    original_recipient: str | None = None
    diagnostic_code: str | None = None
    remote_mta: str | None = None
    last_attempt: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed"


@dataclass(frozen=True)
class DeliveryReport:
    """One delivery status notification: per-message fields, recipients, and who sent the original."""

    recipients: tuple[DsnRecipient, ...]
    message_id: str | None = None
    date: datetime | None = None
    arrival_date: datetime | None = None
    reporting_mta: str | None = None
    envelope_id: str | None = None
    senders: tuple[str, ...] = ()
    original_subject: str | None = None
    original_message_id: str | None = None

    @property
    def failed(self) -> list[DsnRecipient]:
        return [r for r in self.recipients if r.failed]

    @property
    def occurred_at(self) -> datetime | None:
        """When the reported message arrived (``Arrival-Date``), else the bounce's ``Date``."""
        return self.arrival_date or self.date


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def parse_dsn(raw: bytes | str | Message) -> DeliveryReport | None:
    """An RFC 3464 report (``multipart/report; report-type=delivery-status``), or None if it is not one.

    Tolerant as MTAs are not: header case, ``rfc822;addr`` with or without a space,
    ``<addr>``, a status with a comment after it, folded diagnostic codes and a report
    truncated after its delivery-status part all parse.
    """
    if isinstance(raw, Message):
        msg = raw
    elif isinstance(raw, bytes):
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    else:
        msg = email.message_from_string(raw, policy=email.policy.compat32)
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "") or "").lower() != "delivery-status":
        return None
    status_part: Message | None = None
    returned: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status") and status_part is None:
            status_part = part
        elif ctype in ("text/rfc822-headers", "message/rfc822", "message/global",
                       "message/global-headers") and returned is None:
            returned = _returned_headers(part)
    if status_part is None:
        return None
    blocks = _status_blocks(status_part)
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    recipients: list[DsnRecipient] = []
    for block in per_recipient:
        final = _address_field(block.get("Final-Recipient"))
        action = str(block.get("Action", "") or "").strip().lower().split()[0:1]
        if not final or not action:
            continue
        sm = _STATUS.search(str(block.get("Status", "") or ""))
        recipients.append(DsnRecipient(
            final_recipient=final,
            action=action[0],
            status=".".join(sm.groups()) if sm else "",
            original_recipient=_address_field(block.get("Original-Recipient")) or None,
            diagnostic_code=_unfold(block.get("Diagnostic-Code")),
            remote_mta=_typed_value(block.get("Remote-MTA")),
            last_attempt=_date(block.get("Last-Attempt-Date")),
        ))
    if not recipients:
        return None
    senders: list[str] = []
    for value in (per_message.get("X-Postfix-Sender"), per_message.get("X-Original-Sender")):
        addr = _address_field(value)
        if addr:
            senders.append(addr)
    if returned is not None:
        for name in ("From", "Sender", "Return-Path"):
            senders.extend(a for a in _addresses(returned.get_all(name, [])) if a)
    senders.extend(a for a in _addresses(msg.get_all("To", [])) if a)
    return DeliveryReport(
        recipients=tuple(recipients),
        message_id=_unfold(msg.get("Message-ID")),
        date=_date(msg.get("Date")),
        arrival_date=_date(per_message.get("Arrival-Date")),
        reporting_mta=_typed_value(per_message.get("Reporting-MTA")),
        envelope_id=_unfold(per_message.get("Original-Envelope-Id")),
        senders=tuple(dict.fromkeys(senders)),
        original_subject=_unfold(returned.get("Subject")) if returned is not None else None,
        original_message_id=_unfold(returned.get("Message-ID")) if returned is not None else None,
    )


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return list(payload)
    # A transfer-encoded or otherwise unparsed delivery-status body: split the blocks ourselves.
    body = part.get_payload(decode=True)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(payload)
    text = text.replace("\r\n", "\n")
    return [email.message_from_string(chunk.strip("\n") + "\n", policy=email.policy.compat32)
            for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def _returned_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    body = part.get_payload(decode=True)
    if isinstance(body, bytes) and body:
        return email.message_from_bytes(body, policy=email.policy.compat32)
    return None


def _unfold(value: object) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s*\r?\n\s+", " ", str(value)).strip()
    return text or None


def _typed_value(value: object) -> str | None:
    """``dns; mx.example`` -> ``mx.example``."""
    text = _unfold(value)
    if text is None:
        return None
    return text.split(";", 1)[1].strip() if ";" in text else text


def _address_field(value: object) -> str:
    """``rfc822; <Jan@Acme.example>`` -> ``jan@acme.example``; other address types as written."""
    text = _typed_value(value)
    if not text:
        return ""
    text = text.strip().strip("<>").strip()
    return text.lower()


def _addresses(values: Sequence[object]) -> list[str]:
    return [addr.strip().strip("<>").lower() for _, addr in getaddresses([str(v) for v in values]) if addr]


def _date(value: object) -> datetime | None:
    text = _unfold(value)
    if not text:
        return None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


# ---------------------------------------------------------------- state


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


# ---------------------------------------------------------------- blocking checks (worker threads)

Outcome = Literal["ok", "login_failed", "down", "misconfigured", "skipped"]
"""``skipped``: the check did not reach the server (no password, an unexpected error), so it says nothing of it."""


@dataclass
class _ImapResult:
    outcome: Outcome
    error: str = ""
    quota: list[QuotaUsage] | None = None
    quota_error: str | None = None


@dataclass
class _SmtpResult:
    outcome: Outcome
    error: str = ""


class _Down(Exception):
    """The server did not answer or cannot serve logins."""


class _Misconfigured(Exception):
    """The check itself is wrong (plaintext login refused, STARTTLS unsupported by this check)."""


class _LoginRefused(Exception):
    pass


_SERVER_CODES = {"UNAVAILABLE", "SERVERBUG"}
_CONFIG_CODES = {"PRIVACYREQUIRED"}
_BUSY_CODES = {"INUSE", "LIMIT"}


def _ssl_context(verify: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _decode(value: bytes | str | None) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return re.sub(r"\s+", " ", text).strip()


def _exc_text(exc: BaseException) -> str:
    """A one-line description: ``ConnectionRefusedError: Connection refused``, or the server's words."""
    if isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        if isinstance(exc, TimeoutError):
            return "timed out"
        return f"{type(exc).__name__}: {exc.strerror or _decode(str(exc))}"
    text = _decode(exc.args[0] if exc.args and isinstance(exc.args[0], bytes | str) else str(exc))
    return text or type(exc).__name__


def _imap_open(host: str, port: int, tls: bool, starttls: bool, verify: bool, timeout: float) -> imaplib.IMAP4:
    try:
        if tls:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=_ssl_context(verify), timeout=timeout)
        else:
            conn = imaplib.IMAP4(host, port, timeout=timeout)
    except imaplib.IMAP4.abort as exc:
        raise _Down(f"closed the connection: {_exc_text(exc)}") from None
    except imaplib.IMAP4.error as exc:
        raise _Down(f"refused the session: {_exc_text(exc)}") from None
    except ssl.SSLError as exc:
        raise _Down(f"TLS handshake failed: {_exc_text(exc)}") from None
    except TimeoutError:
        raise _Down(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise _Down(_exc_text(exc)) from None
    if starttls:
        try:
            conn.starttls(ssl_context=_ssl_context(verify))
        except imaplib.IMAP4.abort as exc:
            _close(conn)
            raise _Down(f"STARTTLS failed: {_exc_text(exc)}") from None
        except imaplib.IMAP4.error as exc:
            _close(conn)
            raise _Down(f"STARTTLS refused: {_exc_text(exc)}") from None
        except (ssl.SSLError, OSError) as exc:
            _close(conn)
            raise _Down(f"TLS handshake failed: {_exc_text(exc)}") from None
    return conn


def _imap_login(conn: imaplib.IMAP4, user: str, password: Secret) -> None:
    """LOGIN, or AUTHENTICATE PLAIN for non-ASCII credentials; raises _LoginRefused/_Down/_Misconfigured."""
    pw = password.reveal()
    try:
        if "LOGINDISABLED" in conn.capabilities:
            raise _Misconfigured("the server refuses plaintext logins here: use tls or starttls")
        if user.isascii() and pw.isascii():
            conn.login(user, pw)
        else:
            blob = f"\0{user}\0{pw}".encode()
            conn.authenticate("PLAIN", lambda _challenge: blob)
    except imaplib.IMAP4.abort as exc:
        raise _Down(f"dropped the connection during login: {_scrub(_exc_text(exc), password)}") from None
    except imaplib.IMAP4.error as exc:
        text = _scrub(_exc_text(exc), password)
        code = re.search(r"\[([A-Z][A-Z0-9-]*)", text)
        tag = code.group(1) if code else ""
        if tag in _SERVER_CODES:
            raise _Down(f"login service unavailable: {text}") from None
        if tag in _BUSY_CODES:
            raise _Misconfigured(f"login not possible now (no verdict): {text}") from None
        if tag in _CONFIG_CODES or "command error: BAD" in text:
            raise _Misconfigured(f"login not accepted as sent: {text}") from None
        raise _LoginRefused(text) from None
    except (TimeoutError, OSError) as exc:
        raise _Down(f"no answer to login: {_exc_text(exc)}") from None


def _close(conn: imaplib.IMAP4) -> None:
    try:
        conn.shutdown()
    except OSError:
        pass


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        _close(conn)


def _imap_check(check: MailboxCheck, host: str, password: Secret, timeout: float) -> _ImapResult:
    try:
        conn = _imap_open(host, check.port, check.tls, check.starttls, check.verify_tls, timeout)
    except _Down as exc:
        return _ImapResult("down", str(exc))
    try:
        _imap_login(conn, check.login, password)
    except _Down as exc:
        _close(conn)
        return _ImapResult("down", str(exc))
    except _Misconfigured as exc:
        _logout(conn)
        return _ImapResult("misconfigured", str(exc))
    except _LoginRefused as exc:
        _logout(conn)
        return _ImapResult("login_failed", str(exc) or "login refused")
    result = _ImapResult("ok")
    if check.quota:
        try:
            _typ, data = conn.getquotaroot("INBOX")
            quota_lines = data[1] if len(data) > 1 and isinstance(data[1], list) else []
            result.quota = parse_quota(quota_lines)
        except imaplib.IMAP4.abort as exc:
            result.quota_error = f"connection dropped: {_exc_text(exc)}"
        except imaplib.IMAP4.error as exc:
            result.quota_error = f"GETQUOTAROOT not supported or refused: {_exc_text(exc)}"
        except (TimeoutError, OSError) as exc:
            result.quota_error = _exc_text(exc)
    _logout(conn)
    return result


def _smtp_check(check: SmtpCheck, password: Secret | None, timeout: float) -> _SmtpResult:
    ctx = _ssl_context(check.verify_tls)
    port = check.effective_port
    try:
        conn = (smtplib.SMTP_SSL(check.host, port, timeout=timeout, context=ctx) if check.tls
                else smtplib.SMTP(check.host, port, timeout=timeout))
    except smtplib.SMTPConnectError as exc:
        return _SmtpResult("down", f"refused the session: {exc.smtp_code} {_decode(exc.smtp_error)}")
    except smtplib.SMTPServerDisconnected as exc:
        return _SmtpResult("down", f"closed the connection: {_exc_text(exc)}")
    except ssl.SSLError as exc:
        return _SmtpResult("down", f"TLS handshake failed: {_exc_text(exc)}")
    except TimeoutError:
        return _SmtpResult("down", f"no answer within {timeout:g} s")
    except (smtplib.SMTPException, OSError) as exc:
        return _SmtpResult("down", _exc_text(exc))
    try:
        code, msg = conn.ehlo()
        if code != 250:
            return _SmtpResult("down", f"EHLO refused: {code} {msg.decode('utf-8', 'replace')}")
        if check.starttls:
            if not conn.has_extn("starttls"):
                return _SmtpResult("down", "STARTTLS not offered")
            conn.starttls(context=ctx)
            conn.ehlo()
        if check.username and password is not None:
            try:
                conn.login(check.username, password.reveal())
            except smtplib.SMTPAuthenticationError as exc:
                return _SmtpResult("login_failed", _scrub(f"{exc.smtp_code} {_decode(exc.smtp_error)}", password))
            except smtplib.SMTPNotSupportedError:
                return _SmtpResult("misconfigured", "the server offers no AUTH here")
            except smtplib.SMTPException as exc:
                return _SmtpResult("misconfigured", _scrub(_exc_text(exc), password))
        return _SmtpResult("ok")
    except smtplib.SMTPServerDisconnected as exc:
        return _SmtpResult("down", f"closed the connection: {_exc_text(exc)}")
    except ssl.SSLError as exc:
        return _SmtpResult("down", f"TLS handshake failed: {_exc_text(exc)}")
    except TimeoutError:
        return _SmtpResult("down", f"no answer within {timeout:g} s")
    except (smtplib.SMTPException, OSError) as exc:
        return _SmtpResult("down", _scrub(_exc_text(exc), password))
    finally:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()


@dataclass
class _BounceBatch:
    conn: imaplib.IMAP4 | None
    messages: list[tuple[bytes, bytes]]  # (uid, raw bytes)
    outcome: Outcome = "ok"
    error: str = ""


def _bounce_fetch(source: BounceSource, host: str, password: Secret, timeout: float) -> _BounceBatch:
    """Log in, select the folder and read (without setting \\Seen) up to MAX_BOUNCES_PER_CYCLE unseen messages."""
    check = source.mailbox
    try:
        conn = _imap_open(host, check.port, check.tls, check.starttls, check.verify_tls, timeout)
    except _Down as exc:
        return _BounceBatch(None, [], "down", str(exc))
    try:
        _imap_login(conn, check.login, password)
        typ, data = conn.select(_quote_mailbox(source.folder))
        if typ != "OK":
            _logout(conn)
            return _BounceBatch(None, [], "misconfigured", f"cannot select folder {source.folder!r}")
        typ, data = conn.uid("SEARCH", "UNSEEN")
        uids = data[0].split() if typ == "OK" and data and isinstance(data[0], bytes) else []
        messages: list[tuple[bytes, bytes]] = []
        for uid in uids[:MAX_BOUNCES_PER_CYCLE]:
            typ, fetched = conn.uid("FETCH", uid.decode(), f"(BODY.PEEK[]<0.{MAX_BOUNCE_BYTES}>)")
            if typ != "OK":
                continue
            for item in fetched:
                if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], bytes):
                    messages.append((uid, item[1]))
                    break
        return _BounceBatch(conn, messages)
    except _Down as exc:
        _close(conn)
        return _BounceBatch(None, [], "down", str(exc))
    except _Misconfigured as exc:
        _logout(conn)
        return _BounceBatch(None, [], "misconfigured", str(exc))
    except _LoginRefused as exc:
        _logout(conn)
        return _BounceBatch(None, [], "login_failed", str(exc))
    except imaplib.IMAP4.abort as exc:
        _close(conn)
        return _BounceBatch(None, [], "down", f"dropped the connection: {_exc_text(exc)}")
    except imaplib.IMAP4.error as exc:
        _logout(conn)
        return _BounceBatch(None, [], "misconfigured", _exc_text(exc))
    except (TimeoutError, OSError) as exc:
        _close(conn)
        return _BounceBatch(None, [], "down", _exc_text(exc))


def _bounce_commit(conn: imaplib.IMAP4, uids: list[bytes]) -> str | None:
    """Mark ``uids`` seen and log out; an error text, or None."""
    error = None
    try:
        if uids:
            typ, data = conn.uid("STORE", b",".join(uids).decode(), "+FLAGS.SILENT", r"(\Seen)")
            if typ != "OK":
                error = f"STORE \\Seen refused: {data!r}"
    except (imaplib.IMAP4.error, OSError) as exc:
        error = _exc_text(exc)
    _logout(conn)
    return error


def _quote_mailbox(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---------------------------------------------------------------- the collector


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
                        error = await asyncio.to_thread(_bounce_commit, conn, [uid for uid, _ in batch.messages])
                        if error:
                            log.warning("bounces: could not mark %d message(s) read: %s", len(batch.messages), error)
                return events
            finally:
                for batch in bounce_res:
                    if batch.conn is not None:
                        _close(batch.conn)
                        batch.conn = None

    # ------------------------------------------------------------ running the checks

    async def _password(self, what: str, ref: str, key: str) -> Secret | None:
        try:
            secret = await asyncio.to_thread(resolve_password, ref, key, self.config.base_dir)
        except SecretError as exc:
            self._problem(what, f"password: {exc}")
            return None
        return secret

    async def _run_imap(self, target: _ImapTarget) -> tuple[datetime, _ImapResult]:
        check = target.check
        what = f"mailbox {check.address}"
        password = await self._password(what, check.password_ref, check.login)
        async with self._sem:
            at = self._clock()
            if password is None:
                return at, _ImapResult("skipped", self._problems.get(what, "no password"))
            try:
                result = await asyncio.to_thread(_imap_check, check, target.host, password, self.config.timeout)
            except Exception as exc:  # a bug or an unforeseen library error: not a signal
                result = _ImapResult("skipped", _scrub(f"{type(exc).__name__}: {exc}", password))
        self._problem(what, result.error if result.outcome in ("misconfigured", "skipped") else None)
        return at, result

    async def _run_smtp(self, target: _SmtpTarget) -> tuple[datetime, _SmtpResult]:
        check = target.check
        what = f"smtp {check.host}:{check.effective_port}"
        password = None
        if check.password_ref:
            password = await self._password(what, check.password_ref, check.username)
        async with self._sem:
            at = self._clock()
            if check.password_ref and password is None:
                return at, _SmtpResult("skipped", self._problems.get(what, "no password"))
            try:
                result = await asyncio.to_thread(_smtp_check, check, password, self.config.timeout)
            except Exception as exc:
                result = _SmtpResult("skipped", _scrub(f"{type(exc).__name__}: {exc}", password))
        self._problem(what, result.error if result.outcome in ("misconfigured", "login_failed", "skipped")
                      else None)
        return at, result

    async def _run_bounce(self, target: _BounceTarget) -> _BounceBatch:
        check = target.source.mailbox
        password = await self._password(f"bounces {check.address}", check.password_ref, check.login)
        if password is None:
            return _BounceBatch(None, [], "skipped", self._problems.get(f"bounces {check.address}", "no password"))
        async with self._sem:
            try:
                return await asyncio.to_thread(_bounce_fetch, target.source, target.host, password,
                                               self.config.timeout)
            except Exception as exc:
                return _BounceBatch(None, [], "skipped", _scrub(f"{type(exc).__name__}: {exc}", password))

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
                  result: _ImapResult | _SmtpResult | _BounceBatch) -> None:
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
                        result: _ImapResult) -> list[Event]:
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

    def _quota_events(self, state: MailboxState, at: datetime, now: datetime, result: _ImapResult) -> list[Event]:
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

    def _bounce_events(self, batch: _BounceBatch, now: datetime) -> list[Event]:
        events: list[Event] = []
        for _uid, raw in batch.messages:
            try:
                report = parse_dsn(raw)
            except Exception as exc:  # a malformed message must not stop the other bounces
                log.warning("bounces: unreadable message skipped: %s", _exc_text(exc))
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

