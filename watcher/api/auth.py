"""Authentication of ingest requests (events and webhooks), as pure functions.

Senders differ in what they can do: Alertmanager, Grafana and Prometheus send a static
bearer token or basic credentials; a script of our own (or a proxy) can sign each body.
``IngestAuth`` says which one an endpoint expects, ``check`` decides a request from its
headers, body and the current time, and ``sign`` makes the signed headers for clients and
tests.  The HTTP layer only maps an ``AuthResult`` to a response.

Status codes: a request without a usable credential gets 401 (with a ``WWW-Authenticate``
challenge), one with a wrong credential 403.  A signed request whose timestamp is outside
``max_skew`` gets 401: the signature may be right, but it is stale (or a replay), and the
sender must sign anew.  Every comparison of a secret is constant-time, and neither reasons
nor ``repr`` ever contain a secret or the credential that was presented.

HMAC signing: ``X-Watcher-Timestamp: <unix seconds>`` and ``X-Watcher-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.  The timestamp is inside the
signed text, so it cannot be moved forward to replay an old body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from watcher.config.service import AUTH_KINDS, AuthKind

TIMESTAMP_HEADER = "X-Watcher-Timestamp"
SIGNATURE_HEADER = "X-Watcher-Signature"
SIGNATURE_SCHEME = "sha256="
DEFAULT_MAX_SKEW = 300

_TIMESTAMP = re.compile(r"\d{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")

_CHALLENGES: dict[AuthKind, str] = {
    "bearer": 'Bearer realm="watcher"',
    "basic": 'Basic realm="watcher", charset="UTF-8"',
    "hmac": 'Watcher-HMAC realm="watcher"',
}


@dataclass(frozen=True, slots=True)
class IngestAuth:
    """What an ingest endpoint requires: nothing, a bearer token, basic credentials or
    an HMAC signature, with the secret it is checked against.

    Construction validates the combination, so a half-configured endpoint fails at
    startup rather than letting every request through or rejecting all of them.
    """

    kind: AuthKind = "none"
    token: str | None = None
    username: str | None = None
    password: str | None = None
    secret: str | None = None
    max_skew: int = DEFAULT_MAX_SKEW

    def __post_init__(self) -> None:
        if self.kind not in AUTH_KINDS:
            raise ValueError(f"kind: expected one of {', '.join(AUTH_KINDS)}, got {self.kind!r}")
        needed: dict[AuthKind, tuple[str, ...]] = {
            "none": (),
            "bearer": ("token",),
            "basic": ("username", "password"),
            "hmac": ("secret",),
        }
        for name in needed[self.kind]:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f"{name}: required (a non-empty string) for kind {self.kind}")
        if self.kind == "basic" and self.username is not None and ":" in self.username:
            raise ValueError("username: must not contain ':' (basic authentication splits on it)")
        if isinstance(self.max_skew, bool) or not isinstance(self.max_skew, int) or self.max_skew <= 0:
            raise ValueError(f"max_skew: expected a positive number of seconds, got {self.max_skew!r}")

    def __repr__(self) -> str:
        shown = [f"kind={self.kind!r}"]
        if self.username is not None:
            shown.append(f"username={self.username!r}")
        for name in ("token", "password", "secret"):
            if getattr(self, name) is not None:
                shown.append(f"{name}='***'")
        if self.kind == "hmac":
            shown.append(f"max_skew={self.max_skew}")
        return f"IngestAuth({', '.join(shown)})"

    __str__ = __repr__

    @classmethod
    def from_dict(cls, raw: Any, what: str = "auth") -> IngestAuth:
        """Read a configuration mapping such as ``{kind: bearer, token: ...}``.

        Unknown keys are errors (a misspelt ``secret`` must not silently turn signing
        off); messages name ``what`` and the key, never a value.
        """
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ValueError(f"{what}: expected a mapping")
        allowed = {"kind", "token", "username", "password", "secret", "max_skew"}
        unknown = sorted(str(key) for key in raw if key not in allowed)
        if unknown:
            raise ValueError(f"{what}: unknown key(s): {', '.join(unknown)}")
        kind = raw.get("kind", "none")
        if kind not in AUTH_KINDS:
            raise ValueError(f"{what}.kind: expected one of {', '.join(AUTH_KINDS)}")
        for key in ("token", "username", "password", "secret"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                raise ValueError(f"{what}.{key}: expected a string")
        try:
            return cls(
                kind=kind,
                token=raw.get("token"),
                username=raw.get("username"),
                password=raw.get("password"),
                secret=raw.get("secret"),
                max_skew=raw.get("max_skew", DEFAULT_MAX_SKEW),
            )
        except ValueError as exc:
            raise ValueError(f"{what}.{exc}") from None


@dataclass(frozen=True, slots=True)
class AuthResult:
    """The decision on one request.

    ``status`` is 200 when ``ok``, else 401 (no usable credential; send ``challenge`` as
    ``WWW-Authenticate``) or 403 (a wrong one).  ``reason`` is safe to return and log.
    """

    ok: bool
    status: int
    reason: str
    challenge: str | None = None


ALLOWED = AuthResult(ok=True, status=200, reason="ok")


def check(auth: IngestAuth, headers: Mapping[str, str], body: bytes, now: datetime) -> AuthResult:
    """Decide whether a request may ingest ``body``.

    ``headers`` may be case-insensitive (aiohttp's) or a plain dict; ``now`` is only read
    for the HMAC timestamp window.
    """
    if auth.kind == "none":
        return ALLOWED
    if auth.kind == "hmac":
        return _check_hmac(auth, headers, body, now)
    authorization = _header(headers, "Authorization")
    if authorization is None:
        return _missing(auth, "missing Authorization header")
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if auth.kind == "bearer":
        if scheme.lower() != "bearer" or not credential:
            return _missing(auth, "expected 'Authorization: Bearer <token>'")
        if not _equal(credential, auth.token or ""):
            return _wrong("invalid bearer token")
        return ALLOWED
    if scheme.lower() != "basic" or not credential:
        return _missing(auth, "expected 'Authorization: Basic <credentials>'")
    try:
        decoded = base64.b64decode(credential, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return _missing(auth, "malformed basic credentials")
    username, colon, password = decoded.partition(":")
    if not colon:
        return _missing(auth, "malformed basic credentials")
    user_ok = _equal(username, auth.username or "")
    password_ok = _equal(password, auth.password or "")
    if not (user_ok and password_ok):
        return _wrong("invalid username or password")
    return ALLOWED


def sign(secret: str | bytes, body: bytes, ts: int | float | datetime) -> dict[str, str]:
    """The headers that make ``body`` pass an ``hmac`` check at time ``ts``."""
    seconds = int(ts.timestamp()) if isinstance(ts, datetime) else int(ts)
    timestamp = str(seconds)
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: SIGNATURE_SCHEME + _digest(secret, timestamp, body),
    }


def _check_hmac(auth: IngestAuth, headers: Mapping[str, str], body: bytes, now: datetime) -> AuthResult:
    timestamp = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if timestamp is None or signature is None:
        return _missing(auth, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    timestamp = timestamp.strip()
    signature = signature.strip()
    if not _TIMESTAMP.fullmatch(timestamp):
        return _missing(auth, f"{TIMESTAMP_HEADER}: expected unix seconds")
    if abs(now.timestamp() - int(timestamp)) > auth.max_skew:
        return _missing(auth, f"{TIMESTAMP_HEADER}: outside the allowed window of {auth.max_skew} s; "
                              "sign the request again (replayed, or the clocks disagree)")
    if not signature.lower().startswith(SIGNATURE_SCHEME):
        return _missing(auth, f"{SIGNATURE_HEADER}: expected '{SIGNATURE_SCHEME}<hex>'")
    presented = signature[len(SIGNATURE_SCHEME):]
    if not _HEX_SHA256.fullmatch(presented):
        return _missing(auth, f"{SIGNATURE_HEADER}: expected 64 hex digits after '{SIGNATURE_SCHEME}'")
    expected = _digest(auth.secret or "", timestamp, body)
    if not hmac.compare_digest(presented.lower().encode("ascii"), expected.encode("ascii")):
        return _wrong("invalid signature")
    return ALLOWED


def _digest(secret: str | bytes, timestamp: str, body: bytes) -> str:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    return hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def _equal(presented: str, expected: str) -> bool:
    """Constant-time equality; bytes, because ``compare_digest`` refuses non-ASCII str."""
    return hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8"))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value if isinstance(value, str) else None


def _missing(auth: IngestAuth, reason: str) -> AuthResult:
    return AuthResult(ok=False, status=401, reason=reason, challenge=_CHALLENGES.get(auth.kind))


def _wrong(reason: str) -> AuthResult:
    return AuthResult(ok=False, status=403, reason=reason)
