"""watcher.yaml: the service's own settings, and loading all three files together."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from watcher.collectors.formats import auth_paths
from watcher.config.collectors import CollectorsConfig, SnmpConfig, load_collectors, load_snmp
from watcher.config.console import ConsoleConfig, load_console
from watcher.config.inventory import Inventory, load_inventory
from watcher.config.mail import MailConfig, load_mail_config
from watcher.config.report import ReportConfig, load_report_config
from watcher.config.rules import Rules, load_rules
from watcher.config.secrets import secret_setting
from watcher.config.selfwatch import FeedConfig, HeartbeatConfig, check_feed_clients, load_feeds, load_heartbeat
from watcher.config.sinks import SinksConfig, check_clients, load_sinks
from watcher.config.yamlload import ConfigError, ConfigErrors, Reader, collecting, record, root_reader

AuthKind = Literal["none", "bearer", "basic", "hmac"]
AUTH_KINDS: tuple[AuthKind, ...] = ("none", "bearer", "basic", "hmac")


@dataclass(frozen=True)
class AuthConfig:
    """Credentials for one ingest path; secrets never appear in repr."""

    kind: AuthKind = "none"
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    secret: str = field(default="", repr=False)
    max_skew: float = 300.0


@dataclass(frozen=True)
class NotifyConfig:
    retry_initial: float = 5.0
    retry_max: float = 600.0
    max_attempts: int = 12
    poll_interval: float = 0.5
    per_person_per_hour: int = 20
    templates_dir: Path | None = None
    link_ttl: float = 3 * 86400.0
    enabled: bool = True
    claim_lease: float = 120.0
    digest_window: float = 1.0
    sms_url: str = field(default="", repr=False)  # Apprise URL with {phone}: office contacts' SMS


@dataclass(frozen=True)
class ServiceConfig:
    path: Path
    rules_path: Path
    inventory_path: Path
    listen: str = "127.0.0.1:8080"
    db_url: str = ""
    public_url: str = ""
    secret_key: str = field(default="", repr=False)
    max_body_bytes: int = 10 * 1024 * 1024
    engine_tick: float = 1.0
    workers: int = 1
    sqlite_synchronous: str = "full"
    ingest_retry_window: float = 120.0
    header_timeout: float = 15.0  # a connection must send a request's headers (or be idle) at most this long
    body_timeout: float = 30.0  # and its body within this
    auth: dict[str, AuthConfig] = field(default_factory=dict)
    notify: NotifyConfig = NotifyConfig()
    snmp: SnmpConfig = field(default_factory=SnmpConfig)
    collectors: CollectorsConfig = field(default_factory=CollectorsConfig)
    mail: MailConfig | None = None  # when watcher.yaml has a mail: section
    max_ready_lag: float = 60.0  # /ready fails when the oldest unhandled inbox row waits longer
    max_ready_lag_rows: int = 100_000  # ... or when more rows than this wait
    feeds: tuple[FeedConfig, ...] = ()
    heartbeat: HeartbeatConfig | None = None
    report: ReportConfig = field(default_factory=ReportConfig)
    console: ConsoleConfig = field(default_factory=ConsoleConfig)  # who may use the agent console
    sinks: SinksConfig | None = None  # when watcher.yaml has a sinks: section


@dataclass(frozen=True)
class Config:
    service: ServiceConfig
    rules: Rules
    inventory: Inventory


_AUTH_PATHS = (*auth_paths(), "api")  # the formats' ingest paths (their table) and the agents' API


def _positive(r: Reader, key: str, default: float) -> float:
    value = r.duration(key, default)
    if value <= 0:
        r.fail(key, "expected a duration above zero")
    return value


def _auth(r: Reader) -> AuthConfig:
    r.check_keys({"kind", "token", "username", "password", "secret", "max_skew"})
    text = r.text("kind", "none")
    kind = next((k for k in AUTH_KINDS if k == text), None)
    if kind is None:
        r.fail("kind", "expected none, bearer, basic or hmac")
    auth = AuthConfig(kind, secret_setting(r, "token"), r.text("username", ""), secret_setting(r, "password"),
                      secret_setting(r, "secret"), r.duration("max_skew", 300))
    need = {"bearer": ("token",), "basic": ("username", "password"), "hmac": ("secret",)}.get(kind, ())
    for key in need:
        if not getattr(auth, key):
            r.fail(key, f"required for kind {kind}")
    if kind == "basic" and ":" in auth.username:
        r.fail("username", "must not contain ':'")
    if auth.max_skew < 1:
        r.fail("max_skew", "must be at least 1s")
    return auth


def load_config(path: Path | str | None = None) -> Config:
    """Load watcher.yaml and the rules and inventory it names (relative to its folder).

    Without a watcher.yaml, ./rules.yaml and ./inventory.yaml are used (docs/inventory.md).
    """
    p = Path(path) if path else Path("watcher.yaml")
    if not p.exists():
        if path is not None and str(path) != "watcher.yaml":
            raise ConfigError(str(p), None, "", "no such file")
        base = Path.cwd()
        service = ServiceConfig(path=base / "watcher.yaml", rules_path=base / "rules.yaml",
                                inventory_path=base / "inventory.yaml",
                                db_url=f"sqlite:///{base / 'watcher.db'}")
        return _load_all(lambda: service)
    return _load_all(lambda: load_service(p))


def _load_all(service_of: Callable[[], ServiceConfig]) -> Config:
    """All three files in one pass: every error of every file is reported together (see
    ``yamlload.collecting``); a file whose mistake stops its reading adds that one error."""
    with collecting() as errors:
        try:
            service = service_of()
        except ConfigError as exc:
            record(exc)
            raise ConfigErrors(errors) from None
        parts: list[Any] = []
        for load, fp in ((load_rules, service.rules_path), (load_inventory, service.inventory_path)):
            try:
                parts.append(load(fp))
            except ConfigError as exc:
                record(exc)
        if errors:
            raise ConfigErrors(list(errors))
    config = Config(service, parts[0], parts[1])
    check_feed_clients(service.feeds, config.inventory.clients)
    if service.sinks is not None:
        check_clients(service.sinks, config.inventory, str(service.path))
    return config


def load_service(p: Path) -> ServiceConfig:
    r = root_reader(p)
    r.check_keys({"rules", "inventory", "listen", "database", "public_url", "secret_key", "max_body_bytes",
                  "engine_tick", "workers", "sqlite_synchronous", "ingest_retry_window", "auth", "notify", "snmp",
                  "collectors", "mail", "header_timeout", "body_timeout", "max_ready_lag", "max_ready_lag_rows",
                  "feeds", "heartbeat", "report", "console", "sinks"})
    base = p.resolve().parent
    rules_path = base / r.text("rules", "rules.yaml")
    inventory_path = base / r.text("inventory", "inventory.yaml")
    for key, fp in (("rules", rules_path), ("inventory", inventory_path)):
        if not fp.exists():
            r.fail(key, f"no such file: {fp}")
    db = r.text("database", "")
    if not db:
        db = f"sqlite:///{base / 'watcher.db'}"
    elif db.startswith("sqlite:///") and not db.startswith("sqlite:////"):
        rel = db[len("sqlite:///"):]
        db = f"sqlite:///{(base / rel).resolve()}" if rel and rel != ":memory:" else db
    auth: dict[str, AuthConfig] = {}
    ar = r.child("auth")
    if ar is not None:
        ar.check_keys(set(_AUTH_PATHS) | {"default"})
        for name in ar.data:
            auth[name] = _auth(ar.child_or_fail(name))
    notify = NotifyConfig()
    nr = r.child("notify")
    if nr is not None:
        nr.check_keys({"retry_initial", "retry_max", "max_attempts", "poll_interval", "per_person_per_hour",
                       "templates_dir", "link_ttl", "enabled", "claim_lease", "digest_window",
                       "sms_url"})
        tdir = nr.opt_str("templates_dir")
        if tdir and not (base / tdir).is_dir():
            nr.fail("templates_dir", f"no such folder: {base / tdir}")
        notify = NotifyConfig(nr.duration("retry_initial", 5), nr.duration("retry_max", 600),
                              nr.integer("max_attempts", 12, minimum=1), nr.duration("poll_interval", 0.5),
                              nr.integer("per_person_per_hour", 20, minimum=1),
                              (base / tdir) if tdir else None, nr.duration("link_ttl", 3 * 86400),
                              nr.flag("enabled", True), nr.duration("claim_lease", 120),
                              nr.duration("digest_window", 1), secret_setting(nr, "sms_url"))
        if notify.sms_url and ("{phone}" not in notify.sms_url or "://" not in notify.sms_url):
            nr.fail("sms_url", "expected an Apprise URL with {phone} where the number goes")
    snmp = load_snmp(r.child("snmp"))
    sync = r.text("sqlite_synchronous", "full")
    if sync not in ("full", "normal"):
        r.fail("sqlite_synchronous", "expected full (fsync every commit) or normal")
    collectors = load_collectors(r.child("collectors"))
    mr = r.child("mail")
    mail = load_mail_config(mr, base) if mr is not None else None
    rr = r.child("report")
    report = load_report_config(rr) if rr is not None else ReportConfig()
    sinks = None
    skr = r.child("sinks")
    if skr is not None:
        sinks = load_sinks(skr, secret_setting)
    return ServiceConfig(
        collectors=collectors, mail=mail, report=report, sinks=sinks, console=load_console(r.child("console")),
        feeds=load_feeds(r), heartbeat=load_heartbeat(r, secret_setting),
        path=p.resolve(), rules_path=rules_path, inventory_path=inventory_path,
        listen=r.text("listen", "127.0.0.1:8080"), db_url=db, public_url=r.text("public_url", ""),
        secret_key=secret_setting(r, "secret_key"),
        max_body_bytes=r.integer("max_body_bytes", 10 * 1024 * 1024, minimum=1024),
        engine_tick=r.duration("engine_tick", 1.0), workers=r.integer("workers", 1, minimum=1),
        sqlite_synchronous=sync, ingest_retry_window=r.duration("ingest_retry_window", 120.0),
        header_timeout=_positive(r, "header_timeout", 15.0), body_timeout=_positive(r, "body_timeout", 30.0),
        auth=auth, notify=notify, snmp=snmp,
        max_ready_lag=r.duration("max_ready_lag", 60.0),
        max_ready_lag_rows=r.integer("max_ready_lag_rows", 100_000, minimum=1),
    )
