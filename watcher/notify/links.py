"""Signed links that people click without logging in: "call me back", "planned or failure?".

A token is ``PAYLOAD.SIGNATURE``, both base64url without padding, so it fits in a URL path
or query as it is.  The payload is compact JSON naming the action, the ticket, the person
(or ``office:SITE``) and the expiry, plus a random nonce; the signature is HMAC-SHA256 over
a fixed domain tag and the payload, so a token made for one purpose in watcher is never
valid as another kind of token signed with the same secret.

``verify`` checks the signature before it reads anything, then the expiry, and, when the
caller says what it expects, the action, ticket and person: a link made for Jan cannot be
used for Ewa's callback.  It does not enforce single use: a click is a state change, so
the store records the claim's ``nonce`` when it applies the action and refuses a nonce it
has seen (which also makes a double click or a mail scanner's prefetch harmless).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["LinkClaims", "LinkError", "sign", "verify"]

_DOMAIN = b"watcher.link.v1\x00"
_VERSION = 1


class LinkError(ValueError):
    """A token that must not be honoured; ``reason`` is a short machine-readable word.

    Reasons: ``malformed``, ``signature``, ``expired``, ``action``, ``ticket``, ``person``.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class LinkClaims:
    """What a verified token says."""

    action: str
    ticket_id: str
    person: str
    expires: datetime
    nonce: str


def sign(secret: bytes, action: str, ticket_id: str, person: str, expires: datetime) -> str:
    """A URL-safe token for ``action`` on ``ticket_id`` by ``person``, valid until ``expires``.

    A naive ``expires`` is taken as UTC.  Every call gives a new nonce, so two links for
    the same thing are distinct and each can be used once.
    """
    _check_secret(secret)
    for name, value in (("action", action), ("ticket_id", ticket_id), ("person", person)):
        if not isinstance(value, str) or not value:
            raise ValueError(f"{name} must be a non-empty string")
    payload = {
        "v": _VERSION,
        "a": action,
        "t": ticket_id,
        "p": person,
        "e": int(_aware(expires).timestamp()),
        "n": secrets.token_urlsafe(12),
    }
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(_mac(secret, body))}"


def verify(secret: bytes, token: str, now: datetime, *, action: str | None = None,
           ticket_id: str | None = None, person: str | None = None) -> LinkClaims:
    """The claims of a genuine, unexpired token; LinkError otherwise.

    ``action``, ``ticket_id`` and ``person``, when given, must match the token's.  A token
    expires at its ``expires`` second: it is valid strictly before it.
    """
    _check_secret(secret)
    if not isinstance(token, str) or token.count(".") != 1:
        raise LinkError("malformed", "expected PAYLOAD.SIGNATURE")
    body_part, mac_part = token.split(".")
    try:
        body, mac = _unb64(body_part), _unb64(mac_part)
    except (binascii.Error, ValueError) as exc:
        raise LinkError("malformed", "not base64url") from exc
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise LinkError("signature", "the token was not signed with this secret or was altered")
    try:
        raw = json.loads(body)
        claims = LinkClaims(
            action=_text(raw["a"]),
            ticket_id=_text(raw["t"]),
            person=_text(raw["p"]),
            expires=datetime.fromtimestamp(int(raw["e"]), UTC),
            nonce=_text(raw["n"]),
        )
        version = raw.get("v")
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise LinkError("malformed", "the payload is not a link") from exc
    if version != _VERSION:
        raise LinkError("malformed", f"unknown token version {version!r}")
    if _aware(now) >= claims.expires:
        raise LinkError("expired", f"the link expired at {claims.expires.isoformat()}")
    for reason, want, have in (("action", action, claims.action), ("ticket", ticket_id, claims.ticket_id),
                               ("person", person, claims.person)):
        if want is not None and want != have:
            raise LinkError(reason, f"the link is for {reason} {have!r}, not {want!r}")
    return claims


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ValueError("the link secret must be non-empty bytes")


def _mac(secret: bytes, body: bytes) -> bytes:
    return hmac.new(secret, _DOMAIN + body, hashlib.sha256).digest()


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict base64url: a token has exactly one spelling, so it cannot be varied unseen."""
    if not text or not text.isascii():
        raise ValueError("empty or non-ASCII")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data
