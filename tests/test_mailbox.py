"""Mailbox health: pure parsers (DSN, quota, secrets, config), then a real dovecot and SMTP server.

The dovecot tests start their own unprivileged instance (see :class:`Dovecot`): every
service runs as one user (the current one, or ``dovecot`` when the tests run as root),
so logins, quotas (maildir++ with a 1 MiB limit) and bounces are served for real.
"""

from __future__ import annotations

import asyncio
import grp
import imaplib
import itertools
import logging
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.servers import SmtpServer, free_port
from watcher.collectors.mail.collector import MailboxCollector
from watcher.collectors.mail.dsn import parse_dsn
from watcher.collectors.mail.imap import parse_quota
from watcher.collectors.schedule import Scheduler
from watcher.config.inventory import Inventory, load_inventory
from watcher.config.mail import BounceSource, MailboxCheck, MailConfig, MailConfigError, SmtpCheck, load_mail_config
from watcher.config.secrets import Secret, SecretError, read_secret
from watcher.config.yamlload import ConfigError, root_reader
from watcher.model import Event

FIXTURES = Path(__file__).parent / "fixtures" / "mail"
DOVECOT = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)

INVENTORY = """
clients:
  - id: acme
    name: ACME
    mail_hosts: ["127.0.0.1"]
    people:
      - {id: jan.kowalski, name: Jan Kowalski}
      - {id: ewa.nowak, name: Ewa Nowak}
      - {id: olga.lis, name: Olga Lis}
    mailboxes:
      - {address: jan.kowalski@acme.example, person: jan.kowalski}
      - {address: ewa.nowak@acme.example, person: ewa.nowak}
      - {address: olga.lis@acme.example, person: olga.lis}
"""

JAN, EWA, OLGA, BOUNCES = ("jan.kowalski@acme.example", "ewa.nowak@acme.example", "olga.lis@acme.example",
                           "bounces@msp.example")


@pytest.fixture
def inventory(tmp_path: Path) -> Inventory:
    path = tmp_path / "inventory.yaml"
    path.write_text(INVENTORY)
    return load_inventory(path)


def named(events: list[Event], alertname: str, **labels: str) -> list[Event]:
    return [e for e in events if e.alertname == alertname
            and all(e.labels.get(k) == v for k, v in labels.items())]


# ---------------------------------------------------------------- DSN parsing


def test_postfix_bounce_of_an_outgoing_message() -> None:
    report = parse_dsn((FIXTURES / "postfix-outbound-user-unknown.eml").read_bytes())
    assert report is not None
    [rcpt] = report.failed
    assert rcpt.final_recipient == "kontakt@biuro-nowak.example"
    assert rcpt.original_recipient == "kontakt@biuro-nowak.example"
    assert rcpt.status == "5.1.1"
    assert rcpt.remote_mta == "mx1.biuro-nowak.example"
    assert rcpt.diagnostic_code == ("smtp; 550 5.1.1 <kontakt@biuro-nowak.example>: Recipient address rejected: "
                                    "User unknown in virtual mailbox table")
    assert report.arrival_date == datetime(2026, 11, 2, 8, 13, 58, tzinfo=UTC)
    assert report.occurred_at == report.arrival_date
    assert report.reporting_mta == "mail.acme.example"
    assert report.senders[0] == JAN
    assert report.original_message_id == "<5c1e0b7a-2f4d-4c1e-9a53-0d3c0e4b1f2a@acme.example>"


def test_exchange_bounce_of_an_incoming_message_uses_the_date_without_arrival_date() -> None:
    report = parse_dsn((FIXTURES / "exchange-inbound-mailbox-full.eml").read_bytes())
    assert report is not None
    [rcpt] = report.failed
    assert rcpt.final_recipient == EWA  # "rfc822;Ewa.Nowak@ACME.example", lower-cased
    assert rcpt.status == "5.2.2"
    assert report.arrival_date is None
    assert report.occurred_at == datetime(2026, 11, 3, 14, 2, 9, tzinfo=UTC)
    assert "piotr@partner.example" in report.senders


def test_delayed_report_and_ordinary_mail_are_not_failures() -> None:
    delayed = parse_dsn((FIXTURES / "postfix-delayed.eml").read_bytes())
    assert delayed is not None
    assert [(r.action, r.status) for r in delayed.recipients] == [("delayed", "4.4.1")]
    assert delayed.failed == []
    assert parse_dsn((FIXTURES / "vacation-autoreply.eml").read_bytes()) is None


def test_report_truncated_after_its_status_part_still_parses() -> None:
    raw = (FIXTURES / "postfix-outbound-user-unknown.eml").read_bytes()
    cut = raw[: raw.index(b"Content-Description: Undelivered Message Headers")]
    report = parse_dsn(cut)
    assert report is not None and [r.status for r in report.failed] == ["5.1.1"]


def test_bounces_bind_to_the_inventory_mailbox(inventory: Inventory) -> None:
    collector = MailboxCollector(MailConfig(), inventory)
    now = datetime(2026, 11, 5, tzinfo=UTC)
    outbound = collector.report_events(parse_dsn((FIXTURES / "postfix-outbound-user-unknown.eml").read_bytes())
                                       or pytest.fail("not parsed"), now)
    assert [e.labels for e in outbound] == [
        {"alertname": "MailDeliveryFailed", "mailbox": JAN, "client": "acme", "status": "5.1.1"}]
    assert outbound[0].starts_at == datetime(2026, 11, 2, 8, 13, 58, tzinfo=UTC)
    assert outbound[0].annotations["direction"] == "outbound"
    assert outbound[0].annotations["recipient"] == "kontakt@biuro-nowak.example"
    inbound = collector.report_events(parse_dsn((FIXTURES / "exchange-inbound-mailbox-full.eml").read_bytes())
                                      or pytest.fail("not parsed"), now)
    assert [e.labels for e in inbound] == [
        {"alertname": "MailDeliveryFailed", "mailbox": EWA, "client": "acme", "status": "5.2.2"}]
    assert inbound[0].annotations["direction"] == "inbound"
    assert "Mailbox full" in inbound[0].annotations["diagnostic"]
    # Re-reading the same bounce later is the same occurrence.
    again = collector.report_events(parse_dsn((FIXTURES / "exchange-inbound-mailbox-full.eml").read_bytes())
                                    or pytest.fail("not parsed"), datetime(2026, 11, 6, tzinfo=UTC))
    assert again[0].occurrence_key == inbound[0].occurrence_key


def test_bounce_of_strangers_is_ignored(inventory: Inventory) -> None:
    raw = (FIXTURES / "postfix-outbound-user-unknown.eml").read_text()
    raw = raw.replace("jan.kowalski@acme.example", "someone@elsewhere.example")
    report = parse_dsn(raw)
    assert report is not None and report.failed
    assert MailboxCollector(MailConfig(), inventory).report_events(report) == []


# ---------------------------------------------------------------- quota parsing


def test_parse_quota_lines() -> None:
    usages = parse_quota([b'"User quota" (STORAGE 950 1024 MESSAGE 10 1000)', None,
                          b'"odd \\"root\\"" (STORAGE 5 0)', "plain (STORAGE 1 2)", b"garbage", b'"x" (STORAGE a b)'])
    assert [(u.root, u.resource, u.usage, u.limit) for u in usages] == [
        ("User quota", "STORAGE", 950, 1024), ("User quota", "MESSAGE", 10, 1000),
        ('odd "root"', "STORAGE", 5, 0), ("plain", "STORAGE", 1, 2)]
    assert round(usages[0].percent, 1) == 92.8
    assert usages[2].percent == 0.0
    assert parse_quota([]) == []


# ---------------------------------------------------------------- secrets and configuration


def test_password_refs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHER_TEST_PW", "s3cret-env")
    assert read_secret("env:WATCHER_TEST_PW", None, JAN).reveal() == "s3cret-env"
    (tmp_path / "one.pw").write_text("s3cret-file\n")
    assert read_secret("file:one.pw", tmp_path, JAN).reveal() == "s3cret-file"
    (tmp_path / "map.yaml").write_text(f"{JAN}: s3cret-yaml\n")
    assert read_secret(f"file:{tmp_path / 'map.yaml'}", None, JAN).reveal() == "s3cret-yaml"
    (tmp_path / "map.json").write_text('{"bounce": "s3cret-json"}')
    assert read_secret("file:map.json#bounce", tmp_path, JAN).reveal() == "s3cret-json"
    with pytest.raises(SecretError, match="WATCHER_TEST_MISSING is not set"):
        read_secret("env:WATCHER_TEST_MISSING", None, JAN)
    with pytest.raises(SecretError, match=r"no entry for 'nobody@acme\.example'") as info:
        read_secret("file:map.yaml", tmp_path, "nobody@acme.example")
    assert "s3cret" not in str(info.value)
    (tmp_path / "broken.yaml").write_text(f"{JAN}: [s3cret-broken\n")
    with pytest.raises(SecretError, match="not valid YAML") as info:
        read_secret("file:broken.yaml", tmp_path, JAN)
    assert "s3cret" not in str(info.value)
    secret = Secret("hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{[secret]}"


def test_a_password_written_in_the_config_is_refused_without_echo() -> None:
    with pytest.raises(MailConfigError, match="never written in the configuration") as info:
        MailboxCheck(JAN, "127.0.0.1", password_ref="hunter2")
    assert "hunter2" not in str(info.value)
    check = MailboxCheck(JAN, "127.0.0.1", password_ref="env:JAN_PW")
    assert (check.port, check.login) == (993, JAN)
    assert MailboxCheck(JAN, password_ref="env:X", tls=False).port == 143


def test_load_mail_config(tmp_path: Path) -> None:
    (tmp_path / "mail-secrets.yaml").write_text(f"{JAN}: s3cret\n")
    (tmp_path / "watcher.yaml").write_text(f"""\
mail:
  interval: 2m
  quota_threshold: 85
  secrets_file: mail-secrets.yaml
  mailboxes:
    - {{address: {JAN}, imap_host: mail.acme.example}}
    - {{address: {EWA}, imap_port: 143, tls: false, starttls: true, password_ref: env:EWA_PW}}
  smtp:
    - {{host: mail.acme.example, client: acme}}
  bounces:
    - {{address: {BOUNCES}, imap_host: mail.msp.example, password_ref: file:bounce.pw, folder: Bounces}}
""")
    r = root_reader(tmp_path / "watcher.yaml").child_or_fail("mail")
    cfg = load_mail_config(r, tmp_path)
    assert cfg.interval == 120 and cfg.quota_threshold == 85
    assert cfg.mailboxes[0].password_ref == f"file:{tmp_path / 'mail-secrets.yaml'}#{JAN}"
    assert (cfg.mailboxes[1].port, cfg.mailboxes[1].starttls) == (143, True)
    assert (cfg.smtp[0].effective_port, cfg.smtp[0].starttls) == (587, True)
    assert cfg.bounces[0].folder == "Bounces" and cfg.bounces[0].mailbox.login == BOUNCES
    assert "s3cret" not in repr(cfg)

    (tmp_path / "bad.yaml").write_text(f"mail:\n  mailboxes:\n    - {{address: {JAN}, password_ref: hunter2}}\n")
    with pytest.raises(ConfigError) as info:
        load_mail_config(root_reader(tmp_path / "bad.yaml").child_or_fail("mail"), tmp_path)
    assert "mail.mailboxes[0].password_ref" in str(info.value) and ":3" in str(info.value)
    assert "hunter2" not in str(info.value)
    (tmp_path / "bad2.yaml").write_text(f"mail:\n  mailboxes:\n    - {{address: {JAN}, imap_hots: x}}\n")
    with pytest.raises(ConfigError, match="imap_hots"):
        load_mail_config(root_reader(tmp_path / "bad2.yaml").child_or_fail("mail"), tmp_path)


def test_unknown_mailbox_is_a_problem_not_a_signal(inventory: Inventory) -> None:
    cfg = MailConfig(mailboxes=(MailboxCheck("stranger@elsewhere.example", "127.0.0.1", password_ref="env:X"),))
    collector = MailboxCollector(cfg, inventory)
    assert "not in the inventory" in collector.problems()["mailbox stranger@elsewhere.example"]
    assert collector.states() == []


# ---------------------------------------------------------------- servers that do not answer


async def test_unreachable_imap_server_is_mail_server_down_not_a_login_failure(
        inventory: Inventory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAN_PW", "whatever")
    port = free_port()  # nothing listens there
    cfg = MailConfig(mailboxes=(MailboxCheck(JAN, "127.0.0.1", port, password_ref="env:JAN_PW", tls=False),
                                MailboxCheck(EWA, "127.0.0.1", port, password_ref="env:WATCHER_TEST_NO_SUCH_VAR",
                                             tls=False)),
                     timeout=3)
    collector = MailboxCollector(cfg, inventory)
    first = await collector.collect()
    assert [e.labels for e in first] == [{"alertname": "MailServerDown", "client": "acme", "host": "127.0.0.1"}]
    assert "WATCHER_TEST_NO_SUCH_VAR is not set" in collector.problems()[f"mailbox {EWA}"]
    assert "imap:" in first[0].annotations["endpoints"] and "refused" in first[0].annotations["error"].lower()
    second = await collector.collect()
    assert second[0].starts_at == first[0].starts_at and second[0].status == "firing"


async def test_scheduler_job_hands_events_to_the_sink(inventory: Inventory) -> None:
    cfg = MailConfig(smtp=(SmtpCheck("127.0.0.1", client="acme", port=free_port(), starttls=False),),
                     interval=60, timeout=3)
    collector = MailboxCollector(cfg, inventory)
    got: asyncio.Queue[list[Event]] = asyncio.Queue()

    async def sink(events: list[Event]) -> None:
        await got.put(events)

    async with Scheduler(max_jitter=0) as scheduler:
        collector.register(scheduler, sink)
        events = await asyncio.wait_for(got.get(), 10)
    assert [e.labels["alertname"] for e in events] == ["MailServerDown"]
    assert scheduler.names() == ["mail"]


async def test_smtp_submission_down_and_back(inventory: Inventory) -> None:
    server = SmtpServer().start()
    try:
        check = SmtpCheck("127.0.0.1", port=server.port, starttls=False)  # client found by mail_hosts
        collector = MailboxCollector(MailConfig(smtp=(check,), timeout=3), inventory, resolve_on_start=False)
        assert await collector.collect() == []
        wants_tls = MailboxCollector(MailConfig(smtp=(SmtpCheck("127.0.0.1", port=server.port),), timeout=3),
                                     inventory)
        [no_tls] = await wants_tls.collect()
        assert no_tls.alertname == "MailServerDown" and "STARTTLS not offered" in no_tls.annotations["error"]
        server.stop()
        [down] = await collector.collect()
        assert down.labels == {"alertname": "MailServerDown", "client": "acme", "host": "127.0.0.1"}
        assert down.status == "firing" and f"smtp:{server.port}" in down.annotations["endpoints"]
        server.start()
        [up] = await collector.collect()
        assert (up.status, up.labels, up.starts_at) == ("resolved", down.labels, down.starts_at)
    finally:
        server.stop()


# ---------------------------------------------------------------- a real dovecot


class Dovecot:
    """A private dovecot (IMAP only, no TLS) in a fresh folder, on a free port of 127.0.0.1.

    The trick that makes it run without root and without touching /etc: every service
    runs as one user (``default_internal_user`` = ``default_login_user`` = that user,
    the userdb's uid too, ``first_valid_uid`` lowered to it), login processes are not
    chrooted, all state lives in ``base_dir``/``state_dir`` in the folder, and the
    ``anvil-auth-penalty`` socket is moved to a name the auth process does not look for,
    which switches off the growing per-IP delay after failed logins (tests fail logins
    on purpose).  Run as root, the instance is started as the ``dovecot`` user the
    package created (imap-login refuses to run as root).  The folder is a short
    ``mkdtemp`` one, not ``tmp_path``: UNIX socket paths are limited to 108 bytes, and
    pytest's root-owned 0700 folders are closed to the ``dovecot`` user.
    """

    def __init__(self, users: dict[str, str]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="wdv-"))
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._seq = itertools.count()
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("dovecot")
            except KeyError:
                shutil.rmtree(self.root)
                pytest.skip("running as root and there is no 'dovecot' user to run dovecot as "
                            "(imap-login refuses root)")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
            self.user, self.group = pw.pw_name, grp.getgrgid(pw.pw_gid).gr_name
        else:
            self.uid, self.gid = os.geteuid(), os.getegid()
            self.user, self.group = pwd.getpwuid(self.uid).pw_name, grp.getgrgid(self.gid).gr_name
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir()
        self.passwd = self.root / "passwd"
        self.passwd.write_text("".join(
            f"{user}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{self.root / 'mail' / user}::\n"
            for user, password in users.items()))
        self.conf = self.root / "dovecot.conf"
        self.conf.write_text(self._config())
        self.log = self.root / "dovecot.log"
        self._own(self.root)

    def _config(self) -> str:
        r = self.root
        return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {r}/run
state_dir = {r}/state
instance_name = watcher-test-{self.port}
log_path = {r}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {self.user}
default_internal_group = {self.group}
default_login_user = {self.user}
first_valid_uid = {self.uid}
first_valid_gid = {self.gid}
mail_location = maildir:{r}/mail/%u/Maildir
mail_plugins = quota
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd}
}}
userdb {{
  driver = passwd-file
  args = {self.passwd}
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    path = anvil-auth-penalty-off
  }}
}}
protocol imap {{
  mail_plugins = $mail_plugins imap_quota
}}
plugin {{
  quota = maildir:User quota
  quota_rule = *:storage=1M
}}
"""

    def _own(self, path: Path) -> None:
        if os.geteuid() != 0:
            return
        for p in [path, *path.rglob("*")]:
            os.chown(p, self.uid, self.gid, follow_symlinks=False)

    def start(self) -> None:
        extra: dict[str, Any] = {}
        if os.geteuid() == 0:
            extra = {"user": self.uid, "group": self.gid, "extra_groups": []}
        assert DOVECOT is not None
        try:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE, **extra)
        except PermissionError as exc:
            pytest.skip(f"cannot start dovecot as user {self.user}: {exc}")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                pytest.fail(f"dovecot exited with {self.proc.returncode}: {err}\n{self.log_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.settimeout(5)
                    if s.recv(64).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        pytest.fail(f"dovecot did not greet on port {self.port}:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        if proc.stderr:
            proc.stderr.close()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no log)"

    def maildir(self, user: str) -> Path:
        return self.root / "mail" / user / "Maildir"

    def deliver(self, user: str, raw: bytes) -> Path:
        """Drop a message into the user's Maildir/new, as an MDA would."""
        box = self.maildir(user)
        for sub in ("cur", "new", "tmp"):
            (box / sub).mkdir(parents=True, exist_ok=True)
        name = f"{int(time.time())}.M{next(self._seq)}P{os.getpid()}.watcher-test,S={len(raw)}"
        tmp = box / "tmp" / name
        tmp.write_bytes(raw)
        final = box / "new" / name
        tmp.rename(final)
        self._own(self.root / "mail" / user)
        return final


PASSWORDS = {JAN: "jan-Pa55!", EWA: "ewa-Pa55!", OLGA: "olga-Pa55!", BOUNCES: "bounce-Pa55!"}


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    if DOVECOT is None:
        pytest.skip("dovecot is not installed (Debian package dovecot-imapd; make system-deps)")
    if not Path("/usr/lib/dovecot/modules/lib11_imap_quota_plugin.so").exists() and not list(
            Path("/usr/lib").glob("**/dovecot/**/lib11_imap_quota_plugin.so")):
        pytest.skip("dovecot's imap_quota plugin is not installed")
    server = Dovecot(PASSWORDS)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jan's and Olga's passwords from a YAML map, Ewa's from the environment (wrong), the bounce box from a file."""
    (tmp_path / "mail-secrets.yaml").write_text(f'{JAN}: "{PASSWORDS[JAN]}"\n{OLGA}: "{PASSWORDS[OLGA]}"\n')
    (tmp_path / "bounce.pw").write_text(PASSWORDS[BOUNCES] + "\n")
    monkeypatch.setenv("WATCHER_TEST_EWA_PW", "not-her-password")
    return tmp_path


def imap_check(address: str, port: int, ref: str, **kw: Any) -> MailboxCheck:
    return MailboxCheck(address, "127.0.0.1", port, password_ref=ref, tls=False, **kw)


async def test_wrong_password_is_one_occurrence_per_failed_login(
        dovecot: Dovecot, inventory: Inventory, secrets: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    dovecot.start()
    cfg = MailConfig(mailboxes=(imap_check(JAN, dovecot.port, "file:mail-secrets.yaml"),
                                imap_check(EWA, dovecot.port, "env:WATCHER_TEST_EWA_PW")),
                     timeout=10, base_dir=secrets)
    collector = MailboxCollector(cfg, inventory, resolve_on_start=False)
    first = await collector.collect()
    second = await collector.collect()
    for events in (first, second):
        assert [e.labels for e in events if e.status == "firing"] == [
            {"alertname": "MailboxLoginFailed", "mailbox": EWA, "client": "acme"}], events
        assert named(events, "MailServerDown") == [] and named(events, "MailboxLoginFailed", mailbox=JAN) == []
    [a], [b] = named(first, "MailboxLoginFailed"), named(second, "MailboxLoginFailed")
    assert a.starts_at is not None and b.starts_at is not None and a.starts_at < b.starts_at
    assert a.occurrence_key != b.occurrence_key
    assert "AUTHENTICATIONFAILED" in a.annotations["error"]
    # The password is fixed where it lives; the next check picks it up and resolves the failures.
    monkeypatch.setenv("WATCHER_TEST_EWA_PW", PASSWORDS[EWA])
    third = await collector.collect()
    [resolved] = named(third, "MailboxLoginFailed")
    assert resolved.status == "resolved" and resolved.labels == a.labels
    [ewa] = [s for s in collector.states() if s.address == EWA]
    assert ewa.login_ok and ewa.failures == 0
    # No password anywhere: logs, annotations, reprs.
    dump = caplog.text + repr(first + second + third) + repr(collector.config) + repr(collector.states())
    for password in [*PASSWORDS.values(), "not-her-password"]:
        assert password not in dump


async def test_mailbox_over_quota(dovecot: Dovecot, inventory: Inventory, secrets: Path) -> None:
    body = b"x" * (95 * 1024 - 200)
    for i in range(10):  # about 950 KiB of a 1 MiB quota: 93 %
        dovecot.deliver(OLGA, b"From: a@partner.example\nTo: %s\nSubject: big %d\n\n%s\n" % (OLGA.encode(), i, body))
    dovecot.start()
    cfg = MailConfig(mailboxes=(imap_check(OLGA, dovecot.port, "file:mail-secrets.yaml"),
                                imap_check(JAN, dovecot.port, "file:mail-secrets.yaml")),
                     timeout=10, base_dir=secrets)
    collector = MailboxCollector(cfg, inventory, resolve_on_start=False)
    [full] = await collector.collect()
    assert full.labels == {"alertname": "MailboxQuotaNearlyFull", "mailbox": OLGA, "client": "acme"}
    assert full.status == "firing"
    assert 90 <= float(full.annotations["percent"]) < 100
    assert (full.annotations["resource"], full.annotations["limit"]) == ("STORAGE", "1024")
    [again] = await collector.collect()
    assert again.starts_at == full.starts_at  # a re-send of the same occurrence
    [jan] = [s for s in collector.states() if s.address == JAN]
    assert jan.quota_percent is not None and jan.quota_percent < 1

    def clean_up() -> None:  # Olga deletes half of her mail
        conn = imaplib.IMAP4("127.0.0.1", dovecot.port, timeout=10)
        conn.login(OLGA, PASSWORDS[OLGA])
        conn.select("INBOX")
        conn.store("1:5", "+FLAGS", r"(\Deleted)")
        conn.expunge()
        conn.logout()

    await asyncio.to_thread(clean_up)
    [resolved] = await collector.collect()
    assert (resolved.status, resolved.labels, resolved.starts_at) == ("resolved", full.labels, full.starts_at)


async def test_bounces_from_the_bounce_mailbox(dovecot: Dovecot, inventory: Inventory, secrets: Path) -> None:
    for name in ("postfix-outbound-user-unknown.eml", "exchange-inbound-mailbox-full.eml", "postfix-delayed.eml",
                 "vacation-autoreply.eml"):
        dovecot.deliver(BOUNCES, (FIXTURES / name).read_bytes())
    dovecot.start()
    source = BounceSource(imap_check(BOUNCES, dovecot.port, "file:bounce.pw", quota=False))
    collector = MailboxCollector(MailConfig(bounces=(source,), timeout=10, base_dir=secrets), inventory,
                                 resolve_on_start=False)

    async def refuse(events: list[Event]) -> None:
        raise RuntimeError("the pipeline is not taking events")

    with pytest.raises(RuntimeError):
        await collector.collect(deliver=refuse)
    taken: list[Event] = []

    async def take(events: list[Event]) -> None:
        taken.extend(events)

    events = await collector.collect(deliver=take)  # still unread: the refused cycle did not mark them
    assert events == taken
    by_mailbox = {e.labels["mailbox"]: e for e in events}
    assert sorted(e.alertname for e in events) == ["MailDeliveryFailed", "MailDeliveryFailed"]
    assert by_mailbox[JAN].labels == {"alertname": "MailDeliveryFailed", "mailbox": JAN, "client": "acme",
                                      "status": "5.1.1"}
    assert by_mailbox[JAN].starts_at == datetime(2026, 11, 2, 8, 13, 58, tzinfo=UTC)
    assert by_mailbox[EWA].labels["status"] == "5.2.2"
    assert by_mailbox[EWA].starts_at == datetime(2026, 11, 3, 14, 2, 9, tzinfo=UTC)
    assert await collector.collect() == []  # all four are \Seen now
    flags = sorted(p.name.rsplit(":2,", 1)[-1] for p in (dovecot.maildir(BOUNCES) / "cur").iterdir())
    assert flags == ["S", "S", "S", "S"]
    # A second copy of a bounce already read is the same occurrence again.
    dovecot.deliver(BOUNCES, (FIXTURES / "exchange-inbound-mailbox-full.eml").read_bytes())
    [again] = await collector.collect()
    assert again.occurrence_key == by_mailbox[EWA].occurrence_key


async def test_dovecot_stopped_is_mail_server_down_and_back(
        dovecot: Dovecot, inventory: Inventory, secrets: Path) -> None:
    dovecot.start()
    cfg = MailConfig(mailboxes=(imap_check(JAN, dovecot.port, "file:mail-secrets.yaml"),
                                imap_check(EWA, dovecot.port, "env:WATCHER_TEST_EWA_PW")),
                     timeout=5, base_dir=secrets)
    collector = MailboxCollector(cfg, inventory)
    first = await collector.collect()
    assert [e.status for e in named(first, "MailServerDown")] == ["resolved"]  # first check since start
    dovecot.stop()
    down = await collector.collect()
    assert [e.labels for e in down] == [{"alertname": "MailServerDown", "client": "acme", "host": "127.0.0.1"}]
    assert down[0].status == "firing"  # and no MailboxLoginFailed: a server that is gone is no wrong password
    still = await collector.collect()
    assert [(e.status, e.starts_at) for e in still] == [("firing", down[0].starts_at)]
    dovecot.start()
    back = await collector.collect()
    [resolved] = named(back, "MailServerDown")
    assert (resolved.status, resolved.starts_at) == ("resolved", down[0].starts_at)
    assert [e.status for e in named(back, "MailboxLoginFailed", mailbox=EWA)] == ["firing"]
    assert [s.up for s in collector.servers()] == [True]
