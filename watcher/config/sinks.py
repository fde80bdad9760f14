"""The ``sinks:`` section of watcher.yaml: the helpdesk ticket systems watcher pushes to.

Each system gets a typed configuration of its own kind (Request Tracker, Zammad, GLPI,
Jira Service Management, a signed webhook), checked strictly here so that a typo fails at
start-up with its line number rather than at the first outage.  Credentials take the same
``env:NAME`` / ``file:PATH`` forms as the rest of watcher.yaml, so they stay out of the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from watcher.config.inventory import Inventory
from watcher.config.yamlload import ConfigError, Reader

Secret = Callable[[Reader, str], str]
_COMMON = {"name", "kind", "url", "clients", "poll", "timeout"}
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class SinkBase:
    """What every ticket system shares: its name, which clients it serves, whether to poll it."""

    name: str
    kind: str
    url: str
    clients: tuple[str, ...] = ()  # empty: every client
    poll: bool = True
    timeout: float = 20.0

    def serves(self, client: str) -> bool:
        return not self.clients or client in self.clients

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        """The kind's own keys (the common ones are in ``base``), checked strictly."""
        raise NotImplementedError


@dataclass(frozen=True)
class RtConfig(SinkBase):
    """Request Tracker 5 through REST 2.0 (basic auth or an auth token)."""

    queue: str = "General"
    username: str = ""
    password: str = field(default="", repr=False)
    token: str = field(default="", repr=False)
    requestor: str = ""
    custom_fields: dict[str, str] = field(default_factory=dict)
    id_field: str = ""  # a custom field that holds watcher's ticket id (else the subject is searched)

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        r.check_keys(_COMMON | {"queue", "username", "password", "token", "requestor", "custom_fields", "id_field"})
        cfg = cls(**base, queue=r.text("queue", "General"), username=r.text("username", ""),  # type: ignore[arg-type]
                  password=secret(r, "password"), token=secret(r, "token"), requestor=r.text("requestor", ""),
                  custom_fields=r.str_map("custom_fields"), id_field=r.text("id_field", ""))
        if not cfg.token and not (cfg.username and cfg.password):
            r.fail("token", "give token, or username and password")
        return cfg


@dataclass(frozen=True)
class ZammadConfig(SinkBase):
    token: str = field(default="", repr=False)
    group: str = "Users"
    customer: str = ""
    closed_state: str = "closed"

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        r.check_keys(_COMMON | {"token", "group", "customer", "closed_state"})
        cfg = cls(**base, token=secret(r, "token"), group=r.text("group", "Users"),  # type: ignore[arg-type]
                  customer=r.text("customer", required=True), closed_state=r.text("closed_state", "closed"))
        if not cfg.token:
            r.fail("token", "required")
        return cfg


@dataclass(frozen=True)
class GlpiConfig(SinkBase):
    app_token: str = field(default="", repr=False)
    user_token: str = field(default="", repr=False)
    entity: int = 0
    solved_status: int = 5

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        r.check_keys(_COMMON | {"app_token", "user_token", "entity", "solved_status"})
        cfg = cls(**base, app_token=secret(r, "app_token"), user_token=secret(r, "user_token"),  # type: ignore[arg-type]
                  entity=r.integer("entity", 0, minimum=0), solved_status=r.integer("solved_status", 5, minimum=1))
        if not cfg.user_token:
            r.fail("user_token", "required")
        return cfg


@dataclass(frozen=True)
class JiraConfig(SinkBase):
    email: str = ""
    api_token: str = field(default="", repr=False)
    service_desk: str = ""
    request_type: str = ""
    resolve_transition: str = ""

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        r.check_keys(_COMMON | {"email", "api_token", "service_desk", "request_type", "resolve_transition"})
        cfg = cls(**base, email=r.text("email", required=True), api_token=secret(r, "api_token"),  # type: ignore[arg-type]
                  service_desk=r.text("service_desk", required=True),
                  request_type=r.text("request_type", required=True),
                  resolve_transition=r.text("resolve_transition", required=True))
        if not cfg.api_token:
            r.fail("api_token", "required")
        return cfg


@dataclass(frozen=True)
class WebhookConfig(SinkBase):
    secret: str = field(default="", repr=False)

    @classmethod
    def parse(cls, r: Reader, base: dict[str, object], secret: Secret) -> SinkBase:
        r.check_keys(_COMMON | {"secret"})
        cfg = cls(**{**base, "poll": False}, secret=secret(r, "secret"))  # type: ignore[arg-type]
        if not cfg.secret:
            r.fail("secret", "required: the receiver checks the HMAC signature with it")
        return cfg


@dataclass(frozen=True)
class SinksConfig:
    """The systems and how their queue of calls is worked (retries, dead letters, polling)."""

    systems: tuple[SinkBase, ...] = ()
    retry_initial: float = 5.0
    retry_max: float = 600.0
    max_attempts: int = 12
    claim_lease: float = 120.0
    poll_interval: float = 30.0
    poll_overlap: float = 120.0


def load_sinks(r: Reader, secret: Secret) -> SinksConfig:
    """Parse ``sinks:``; ``secret`` reads a value that may be ``env:NAME`` or ``file:PATH``.

    The kinds are those of ``watcher.sinks.SINKS``, the one table of systems: each sink class
    names its configuration class, whose ``parse`` reads the kind's own keys.
    """
    from watcher.sinks import SINKS

    kinds = {kind: cls.config_type for kind, cls in SINKS.items()}
    r.check_keys({"systems", "retry_initial", "retry_max", "max_attempts", "claim_lease", "poll_interval",
                  "poll_overlap"})
    systems: list[SinkBase] = []
    seen: set[str] = set()
    for sr in r.items("systems"):
        name = sr.text("name", required=True)
        if not _NAME.match(name):
            sr.fail("name", "expected lower-case letters, digits, - or _ (at most 32)")
        if name in seen:
            sr.fail("name", f"a second system named {name!r}")
        seen.add(name)
        kind = sr.text("kind", required=True)
        if kind not in kinds:
            sr.fail("kind", f"expected one of {', '.join(kinds)}")
        url = sr.text("url", required=True).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            sr.fail("url", "expected an http:// or https:// URL")
        timeout = sr.duration("timeout", 20.0)
        if timeout <= 0:
            sr.fail("timeout", "must be positive")
        base: dict[str, object] = {"name": name, "kind": kind, "url": url,
                                   "clients": tuple(sr.str_list("clients")), "poll": sr.flag("poll", True),
                                   "timeout": timeout}
        systems.append(kinds[kind].parse(sr, base, secret))
    cfg = SinksConfig(tuple(systems), r.duration("retry_initial", 5.0), r.duration("retry_max", 600.0),
                      r.integer("max_attempts", 12, minimum=1), r.duration("claim_lease", 120.0),
                      r.duration("poll_interval", 30.0), r.duration("poll_overlap", 120.0))
    if cfg.claim_lease < 1:
        r.fail("claim_lease", "must be at least 1s")
    if cfg.poll_interval < 0.1:
        r.fail("poll_interval", "must be at least 0.1s")
    return cfg


def check_clients(cfg: SinksConfig, inventory: Inventory, file: str) -> None:
    """A system's ``clients`` must name clients of the inventory (a typo would silently push nothing)."""
    for system in cfg.systems:
        for client in system.clients:
            if client not in inventory.clients:
                raise ConfigError(file, None, f"sinks.systems.{system.name}.clients",
                                  f"no client {client!r} in the inventory")
