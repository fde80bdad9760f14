"""``console:`` of watcher.yaml: who may use the agent console, and how they sign in.

Parsed here, with the rest of the configuration, so that ``config/`` imports nothing from the
API; ``watcher.api.console_auth`` checks passwords and sessions against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from watcher.config.yamlload import Reader

LANGUAGES = ("pl", "en")


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    password_hash: str = field(repr=False)
    display: str = ""


@dataclass(frozen=True)
class ConsoleConfig:
    users: tuple[ConsoleUser, ...] = ()
    proxy_header: str | None = None
    session_hours: float = 12.0
    language: str = "pl"

    @property
    def mode(self) -> str:
        """``users``, ``proxy`` or ``open`` (a name only)."""
        if self.users:
            return "users"
        return "proxy" if self.proxy_header else "open"

    def user(self, name: str) -> ConsoleUser | None:
        folded = name.strip().casefold()
        return next((u for u in self.users if u.name.casefold() == folded), None)


def load_console(r: Reader | None) -> ConsoleConfig:
    """``console:`` of watcher.yaml (absent: an open console that asks for a name)."""
    if r is None:
        return ConsoleConfig()
    r.check_keys({"users", "proxy_header", "session_hours", "language"})
    users = []
    for ur in r.items("users"):
        ur.check_keys({"name", "password_hash", "display"})
        digest = ur.text("password_hash", required=True)
        if not digest.startswith("$argon2"):
            ur.fail("password_hash", "expected an Argon2 hash (make one with `watcher hash-password`)")
        users.append(ConsoleUser(ur.text("name", required=True), digest, ur.text("display", "")))
    language = r.text("language", "pl")
    if language not in LANGUAGES:
        r.fail("language", f"expected one of {', '.join(LANGUAGES)}")
    hours = r.number("session_hours", 12.0)
    return ConsoleConfig(tuple(users), r.opt_str("proxy_header"), hours, language)
