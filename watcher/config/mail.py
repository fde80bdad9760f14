"""The ``mail:`` section of watcher.yaml: which mailboxes, mail servers and bounce mailboxes to check.

Parsed strictly into frozen objects (errors name file, line and key).  No password is ever
in them: a check holds a reference (``env:NAME``, ``file:PATH``, ``file:PATH#KEY``) that the
collector reads through :func:`watcher.config.secrets.read_secret` at every check, relative
to this file's folder, so a rotated password is picked up without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from watcher.config.secrets import REF_HELP, check_ref
from watcher.config.yamlload import Reader

__all__ = ["BounceSource", "MailConfig", "MailConfigError", "MailboxCheck", "SmtpCheck", "load_mail_config"]


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
            check_ref(self.password_ref)
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
                check_ref(self.password_ref)
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
    """Everything the mail checks need; no password in it (see :func:`watcher.config.secrets.read_secret`)."""

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
            mr.fail("password_ref", f"required (or set mail.secrets_file); {REF_HELP}")
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
