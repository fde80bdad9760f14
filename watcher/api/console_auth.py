"""Who is at the console: agents sign in, and their name goes into every action.

Three ways, from ``console:`` in watcher.yaml:

- ``users``: names with Argon2 password hashes (``watcher hash-password`` makes one; the
  argon2-cffi library does the hashing, with its current recommended parameters);
- ``proxy_header``: a reverse proxy that has already authenticated the agent passes the
  name in this header (``X-Remote-User``, say); trust it only when watcher listens where
  nothing but the proxy can reach it;
- neither: the console asks only for a name, so that actions still say who did them. When
  the API has a credential (``auth.api``), the console is closed instead, since it would
  otherwise read around that credential.

A signed-in agent holds a session cookie: ``base64(JSON) . HMAC-SHA256`` with the service's
link key, HttpOnly, SameSite=Strict, expiring after ``session_hours``.  It carries the name
and the console language the agent chose.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from watcher.config.console import LANGUAGES, ConsoleConfig, ConsoleUser, load_console

COOKIE = "watcher_session"


def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def verify_password(user: ConsoleUser | None, password: str) -> bool:
    """True when ``password`` is the user's; the same work is done for an unknown name, so the
    answer's timing does not tell which names exist."""
    from argon2 import PasswordHasher
    from argon2.exceptions import Argon2Error

    hasher = PasswordHasher()
    digest = user.password_hash if user is not None else _DUMMY.get(hasher)
    try:
        ok = hasher.verify(digest, password)
    except (Argon2Error, ValueError):
        return False
    return bool(ok) and user is not None


class _Dummy:
    """A hash to verify against when the name is unknown (made once, lazily)."""

    value: str | None = None

    def get(self, hasher: Any) -> str:
        if self.value is None:
            self.value = str(hasher.hash("not a password of anyone"))
        return self.value


_DUMMY = _Dummy()


@dataclass(frozen=True)
class Session:
    name: str
    lang: str
    expires: float


def make_cookie(secret: bytes, session: Session) -> str:
    body = base64.urlsafe_b64encode(json.dumps(
        {"n": session.name, "l": session.lang, "e": int(session.expires)}, ensure_ascii=False).encode()).decode()
    return body + "." + _mac(secret, body)


def read_cookie(secret: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None when it is missing, forged or expired."""
    if not value or "." not in value or len(value) > 4096:
        return None
    body, _, mac = value.rpartition(".")
    if not hmac.compare_digest(mac.encode(), _mac(secret, body).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body.encode()))
        session = Session(str(data["n"]), str(data["l"]), float(data["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if session.expires < (time.time() if now is None else now) or session.lang not in LANGUAGES:
        return None
    return session


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(hashlib.sha256(b"console|" + secret).digest(), body.encode(), hashlib.sha256).hexdigest()


def proxy_user(config: ConsoleConfig, headers: Mapping[str, str]) -> str | None:
    if not config.proxy_header:
        return None
    value = headers.get(config.proxy_header, "").strip()
    return value[:120] or None


__all__ = ["COOKIE", "LANGUAGES", "ConsoleConfig", "ConsoleUser", "Session", "hash_password", "load_console",
           "make_cookie", "proxy_user", "read_cookie", "verify_password"]
