"""The SMTP side of the mail checks: can the client's server take a submission?

Connect, EHLO, STARTTLS when asked, AUTH when a monitoring account is configured; blocking
``smtplib`` code run by the collector in a worker thread.  A refused AUTH is
``login_failed`` but not a mailbox's signal (the monitoring account is nobody's mailbox),
so the collector reports it as its own problem.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass

from watcher.collectors.mail.outcome import Outcome, decode, exc_text, scrub, ssl_context
from watcher.config.mail import SmtpCheck
from watcher.config.secrets import Secret

__all__ = ["SmtpResult", "smtp_check"]


@dataclass
class SmtpResult:
    outcome: Outcome
    error: str = ""


def _down(exc: smtplib.SMTPException | OSError, timeout: float, password: Secret | None) -> SmtpResult:
    """The server did not take the session: why, in words (with no password in them)."""
    if isinstance(exc, smtplib.SMTPConnectError):
        return SmtpResult("down", f"refused the session: {exc.smtp_code} {decode(exc.smtp_error)}")
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return SmtpResult("down", f"closed the connection: {exc_text(exc)}")
    if isinstance(exc, ssl.SSLError):
        return SmtpResult("down", f"TLS handshake failed: {exc_text(exc)}")
    if isinstance(exc, TimeoutError):
        return SmtpResult("down", f"no answer within {timeout:g} s")
    return SmtpResult("down", scrub(exc_text(exc), password))


def smtp_check(check: SmtpCheck, password: Secret | None, timeout: float) -> SmtpResult:
    """Connect, EHLO, STARTTLS (when asked) and AUTH (with a password); one outcome."""
    ctx = ssl_context(check.verify_tls)
    port = check.effective_port
    try:
        conn = (smtplib.SMTP_SSL(check.host, port, timeout=timeout, context=ctx) if check.tls
                else smtplib.SMTP(check.host, port, timeout=timeout))
    except (smtplib.SMTPException, OSError) as exc:
        return _down(exc, timeout, None)
    try:
        code, msg = conn.ehlo()
        if code != 250:
            return SmtpResult("down", f"EHLO refused: {code} {msg.decode('utf-8', 'replace')}")
        if check.starttls:
            if not conn.has_extn("starttls"):
                return SmtpResult("down", "STARTTLS not offered")
            conn.starttls(context=ctx)
            conn.ehlo()
        if check.username and password is not None:
            try:
                conn.login(check.username, password.reveal())
            except smtplib.SMTPAuthenticationError as exc:
                return SmtpResult("login_failed", scrub(f"{exc.smtp_code} {decode(exc.smtp_error)}", password))
            except smtplib.SMTPNotSupportedError:
                return SmtpResult("misconfigured", "the server offers no AUTH here")
            except smtplib.SMTPException as exc:
                return SmtpResult("misconfigured", scrub(exc_text(exc), password))
        return SmtpResult("ok")
    except (smtplib.SMTPException, OSError) as exc:
        return _down(exc, timeout, password)
    finally:
        try:
            conn.quit()
        except (smtplib.SMTPException, OSError):
            conn.close()
