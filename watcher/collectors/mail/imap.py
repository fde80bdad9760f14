"""The IMAP side of the mail checks: login and quota of a mailbox, and reading a bounce mailbox.

Blocking ``imaplib`` code, run by the collector in worker threads.  Each function returns
an :class:`ImapResult` or :class:`BounceBatch` whose outcome tells a server that does not
answer (``down``) from a refused login (``login_failed``) from a check that cannot work as
configured (``misconfigured``), because only the first two are signals.  Quota answers
(RFC 2087/9208 ``GETQUOTAROOT``) are parsed by the pure :func:`parse_quota`.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from watcher.collectors.mail.outcome import (
    Down,
    LoginRefused,
    Misconfigured,
    Outcome,
    exc_text,
    scrub,
    ssl_context,
)
from watcher.config.mail import BounceSource, MailboxCheck
from watcher.config.secrets import Secret

__all__ = ["MAX_BOUNCES_PER_CYCLE", "MAX_BOUNCE_BYTES", "BounceBatch", "ImapResult", "QuotaUsage",
           "bounce_commit", "bounce_fetch", "close_connection", "imap_check", "parse_quota"]

MAX_BOUNCE_BYTES = 1 << 20
"""Bytes of a bounce read: the report parts come first, the returned message is not needed whole."""
MAX_BOUNCES_PER_CYCLE = 200




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


@dataclass
class ImapResult:
    outcome: Outcome
    error: str = ""
    quota: list[QuotaUsage] | None = None
    quota_error: str | None = None


_SERVER_CODES = {"UNAVAILABLE", "SERVERBUG"}
_CONFIG_CODES = {"PRIVACYREQUIRED"}
_BUSY_CODES = {"INUSE", "LIMIT"}


def imap_open(host: str, port: int, tls: bool, starttls: bool, verify: bool, timeout: float) -> imaplib.IMAP4:
    try:
        if tls:
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(host, port, ssl_context=ssl_context(verify), timeout=timeout)
        else:
            conn = imaplib.IMAP4(host, port, timeout=timeout)
    except imaplib.IMAP4.abort as exc:
        raise Down(f"closed the connection: {exc_text(exc)}") from None
    except imaplib.IMAP4.error as exc:
        raise Down(f"refused the session: {exc_text(exc)}") from None
    except ssl.SSLError as exc:
        raise Down(f"TLS handshake failed: {exc_text(exc)}") from None
    except TimeoutError:
        raise Down(f"no answer within {timeout:g} s") from None
    except OSError as exc:
        raise Down(exc_text(exc)) from None
    if starttls:
        try:
            conn.starttls(ssl_context=ssl_context(verify))
        except imaplib.IMAP4.abort as exc:
            close_connection(conn)
            raise Down(f"STARTTLS failed: {exc_text(exc)}") from None
        except imaplib.IMAP4.error as exc:
            close_connection(conn)
            raise Down(f"STARTTLS refused: {exc_text(exc)}") from None
        except (ssl.SSLError, OSError) as exc:
            close_connection(conn)
            raise Down(f"TLS handshake failed: {exc_text(exc)}") from None
    return conn


def imap_login(conn: imaplib.IMAP4, user: str, password: Secret) -> None:
    """LOGIN, or AUTHENTICATE PLAIN for non-ASCII credentials; raises LoginRefused/Down/Misconfigured."""
    pw = password.reveal()
    try:
        if "LOGINDISABLED" in conn.capabilities:
            raise Misconfigured("the server refuses plaintext logins here: use tls or starttls")
        if user.isascii() and pw.isascii():
            conn.login(user, pw)
        else:
            blob = f"\0{user}\0{pw}".encode()
            conn.authenticate("PLAIN", lambda _challenge: blob)
    except imaplib.IMAP4.abort as exc:
        raise Down(f"dropped the connection during login: {scrub(exc_text(exc), password)}") from None
    except imaplib.IMAP4.error as exc:
        text = scrub(exc_text(exc), password)
        code = re.search(r"\[([A-Z][A-Z0-9-]*)", text)
        tag = code.group(1) if code else ""
        if tag in _SERVER_CODES:
            raise Down(f"login service unavailable: {text}") from None
        if tag in _BUSY_CODES:
            raise Misconfigured(f"login not possible now (no verdict): {text}") from None
        if tag in _CONFIG_CODES or "command error: BAD" in text:
            raise Misconfigured(f"login not accepted as sent: {text}") from None
        raise LoginRefused(text) from None
    except (TimeoutError, OSError) as exc:
        raise Down(f"no answer to login: {exc_text(exc)}") from None


def close_connection(conn: imaplib.IMAP4) -> None:
    try:
        conn.shutdown()
    except OSError:
        pass


def _logout(conn: imaplib.IMAP4) -> None:
    try:
        conn.logout()
    except (imaplib.IMAP4.error, OSError):
        close_connection(conn)


def imap_check(check: MailboxCheck, host: str, password: Secret, timeout: float) -> ImapResult:
    try:
        conn = imap_open(host, check.port, check.tls, check.starttls, check.verify_tls, timeout)
    except Down as exc:
        return ImapResult("down", str(exc))
    try:
        imap_login(conn, check.login, password)
    except Down as exc:
        close_connection(conn)
        return ImapResult("down", str(exc))
    except Misconfigured as exc:
        _logout(conn)
        return ImapResult("misconfigured", str(exc))
    except LoginRefused as exc:
        _logout(conn)
        return ImapResult("login_failed", str(exc) or "login refused")
    result = ImapResult("ok")
    if check.quota:
        try:
            _typ, data = conn.getquotaroot("INBOX")
            quota_lines = data[1] if len(data) > 1 and isinstance(data[1], list) else []
            result.quota = parse_quota(quota_lines)
        except imaplib.IMAP4.abort as exc:
            result.quota_error = f"connection dropped: {exc_text(exc)}"
        except imaplib.IMAP4.error as exc:
            result.quota_error = f"GETQUOTAROOT not supported or refused: {exc_text(exc)}"
        except (TimeoutError, OSError) as exc:
            result.quota_error = exc_text(exc)
    _logout(conn)
    return result


@dataclass
class BounceBatch:
    conn: imaplib.IMAP4 | None
    messages: list[tuple[bytes, bytes]]  # (uid, raw bytes)
    outcome: Outcome = "ok"
    error: str = ""


def bounce_fetch(source: BounceSource, host: str, password: Secret, timeout: float) -> BounceBatch:
    """Log in, select the folder and read (without setting \\Seen) up to MAX_BOUNCES_PER_CYCLE unseen messages."""
    check = source.mailbox
    try:
        conn = imap_open(host, check.port, check.tls, check.starttls, check.verify_tls, timeout)
    except Down as exc:
        return BounceBatch(None, [], "down", str(exc))
    try:
        imap_login(conn, check.login, password)
        typ, data = conn.select(_quote_mailbox(source.folder))
        if typ != "OK":
            _logout(conn)
            return BounceBatch(None, [], "misconfigured", f"cannot select folder {source.folder!r}")
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
        return BounceBatch(conn, messages)
    except Down as exc:
        close_connection(conn)
        return BounceBatch(None, [], "down", str(exc))
    except Misconfigured as exc:
        _logout(conn)
        return BounceBatch(None, [], "misconfigured", str(exc))
    except LoginRefused as exc:
        _logout(conn)
        return BounceBatch(None, [], "login_failed", str(exc))
    except imaplib.IMAP4.abort as exc:
        close_connection(conn)
        return BounceBatch(None, [], "down", f"dropped the connection: {exc_text(exc)}")
    except imaplib.IMAP4.error as exc:
        _logout(conn)
        return BounceBatch(None, [], "misconfigured", exc_text(exc))
    except (TimeoutError, OSError) as exc:
        close_connection(conn)
        return BounceBatch(None, [], "down", exc_text(exc))


def bounce_commit(conn: imaplib.IMAP4, uids: list[bytes]) -> str | None:
    """Mark ``uids`` seen and log out; an error text, or None."""
    error = None
    try:
        if uids:
            typ, data = conn.uid("STORE", b",".join(uids).decode(), "+FLAGS.SILENT", r"(\Seen)")
            if typ != "OK":
                error = f"STORE \\Seen refused: {data!r}"
    except (imaplib.IMAP4.error, OSError) as exc:
        error = exc_text(exc)
    _logout(conn)
    return error


def _quote_mailbox(name: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9._/-]+", name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
