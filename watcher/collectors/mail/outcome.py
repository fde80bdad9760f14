"""What a mail check can conclude, and the few helpers both protocols' checks share.

The IMAP and SMTP checks run the blocking stdlib clients in worker threads; each ends in
one :data:`Outcome`, because the collector turns outcomes (not exceptions) into signals:
only ``down`` says anything about the server, only ``login_failed`` about a mailbox, and
``misconfigured``/``skipped`` are the collector's own problems (logged, not signalled).
Error texts pass through :func:`scrub`, so no password reaches a log line or annotation.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from typing import Literal

from watcher.config.secrets import Secret

__all__ = ["Down", "LoginRefused", "Misconfigured", "Outcome", "decode", "exc_text", "scrub", "ssl_context"]

Outcome = Literal["ok", "login_failed", "down", "misconfigured", "skipped"]
"""``skipped``: the check did not reach the server (no password, an unexpected error), so it says nothing of it."""


class Down(Exception):
    """The server did not answer or cannot serve logins."""


class Misconfigured(Exception):
    """The check itself is wrong (plaintext login refused, STARTTLS unsupported by this check)."""


class LoginRefused(Exception):
    """The server refused these credentials: a verdict on the mailbox, not on the server."""


def ssl_context(verify: bool) -> ssl.SSLContext:
    """The system's defaults; ``verify_tls: false`` (a server with a self-signed certificate) drops the checks."""
    ctx = ssl.create_default_context()
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def decode(value: bytes | str | None) -> str:
    """A server's reply as one line of text (replies are bytes, may be folded, may not be UTF-8)."""
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")
    return re.sub(r"\s+", " ", text).strip()


def exc_text(exc: BaseException) -> str:
    """A one-line description: ``ConnectionRefusedError: Connection refused``, or the server's words."""
    if isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException):
        if isinstance(exc, TimeoutError):
            return "timed out"
        return f"{type(exc).__name__}: {exc.strerror or decode(str(exc))}"
    text = decode(exc.args[0] if exc.args and isinstance(exc.args[0], bytes | str) else str(exc))
    return text or type(exc).__name__


def scrub(text: str, *secrets: Secret | None) -> str:
    for s in secrets:
        if s is not None and len(s.reveal()) >= 3:
            text = text.replace(s.reveal(), "********")
    return text
