"""TLS certificate expiry, against a real TLS server on 127.0.0.1 with self-signed certificates.

The certificates are made here with ``cryptography`` (one that ends in 5 days, one in 90);
the server is asyncio's own TLS listener, restarted on the same port to "renew" its
certificate.  The collector is built through its row of the collector table, from a
watcher.yaml, as the service builds it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from watcher.collectors.certificates import CertificateCollector
from watcher.collectors.running import COLLECTORS
from watcher.collectors.schedule import Scheduler
from watcher.config import load_config
from watcher.config.yamlload import ConfigError
from watcher.model import Event

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def make_cert(folder: Path, name: str, days: int) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1 ending ``days`` after NOW."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name}.acme.example")])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=300)).not_valid_after(NOW + timedelta(days=days))
            .sign(key, hashes.SHA256()))
    (folder / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / f"{name}.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(folder / f"{name}.pem", folder / f"{name}.key")
    return ctx


class TlsServer:
    """asyncio's TLS listener on a fixed loopback port; answers nothing, closes after the handshake."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self, ctx: ssl.SSLContext) -> None:
        async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, ssl=ctx)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


@pytest.fixture
async def server() -> AsyncIterator[TlsServer]:
    srv = TlsServer()
    yield srv
    await srv.stop()


def write_config(folder: Path, port: int, certificates: str = "{warn_before: 21d, interval: 1h}") -> Path:
    (folder / "rules.yaml").write_text("rules: []\n")
    (folder / "inventory.yaml").write_text(f"""\
clients:
  - id: acme
    name: ACME
    sites:
      - id: acme-krk
        name: Kraków
        probes:
          - {{type: http, target: "https://127.0.0.1:{port}/owa/"}}
          - {{type: http, target: "http://127.0.0.1:{port}/"}}
          - {{type: tcp, target: "127.0.0.1:{port}"}}
""")
    (folder / "watcher.yaml").write_text(f"collectors:\n  certificates: {certificates}\nsnmp: {{listen: \"off\"}}\n")
    return folder / "watcher.yaml"


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: list[Event]) -> None:
        self.events.extend(events)


async def test_a_certificate_ending_soon_fires_and_its_renewal_resolves(tmp_path: Path, server: TlsServer) -> None:
    await server.start(make_cert(tmp_path, "old", days=5))
    config = load_config(write_config(tmp_path, server.port))
    sink = Sink()
    clock = [NOW]
    made = COLLECTORS["certificates"].make(config, sink)
    assert isinstance(made, CertificateCollector)
    collector = CertificateCollector(made.settings, config.inventory, sink, clock=lambda: clock[0])
    [target] = collector.targets  # only the https probe has a certificate to read

    await collector.check(target)
    [firing] = sink.events
    assert firing.labels == {"alertname": "CertificateExpiresSoon", "client": "acme", "site": "acme-krk",
                             "instance": f"https://127.0.0.1:{server.port}/owa/", "severity": "warning"}
    assert (firing.status, firing.starts_at, firing.source) == ("firing", NOW, "certificate")
    assert firing.annotations["days_left"] == "5.0"
    assert firing.annotations["expires_at"] == (NOW + timedelta(days=5)).isoformat()
    assert firing.annotations["subject"] == "CN=old.acme.example"

    clock[0] = NOW + timedelta(hours=6)
    await collector.check(target)
    assert sink.events[1].status == "firing" and sink.events[1].occurrence_key == firing.occurrence_key

    await server.stop()
    await server.start(make_cert(tmp_path, "new", days=90))
    clock[0] = NOW + timedelta(hours=12)
    await collector.check(target)
    resolved = sink.events[2]
    assert (resolved.status, resolved.labels, resolved.starts_at) == ("resolved", firing.labels, NOW)
    assert resolved.ends_at == NOW + timedelta(hours=12)

    await collector.check(target)  # still fine: nothing more to say
    assert len(sink.events) == 3


async def test_scheduled_through_the_table_with_health(tmp_path: Path, server: TlsServer) -> None:
    await server.start(make_cert(tmp_path, "good", days=200))
    config = load_config(write_config(tmp_path, server.port))
    sink = Sink()
    collector = COLLECTORS["certificates"].make(config, sink)
    assert collector is not None
    async with collector, Scheduler(max_jitter=0) as scheduler:
        collector.register(scheduler)
        for _ in range(200):
            if sink.events:
                break
            await asyncio.sleep(0.01)
        [job] = scheduler.health().values()
    [first] = sink.events  # the first good check after a start says "resolved", without a start
    assert (first.status, first.starts_at, first.labels["alertname"]) == ("resolved", None, "CertificateExpiresSoon")
    assert job.name == f"certificate acme-krk https://127.0.0.1:{server.port}/owa/" and job.up


async def test_a_target_that_does_not_answer_is_failing_not_a_signal(tmp_path: Path, server: TlsServer) -> None:
    await server.start(make_cert(tmp_path, "gone", days=200))
    port = server.port
    await server.stop()
    config = load_config(write_config(tmp_path, port))
    sink = Sink()
    collector = COLLECTORS["certificates"].make(config, sink)
    assert collector is not None
    async with Scheduler(max_jitter=0) as scheduler:
        collector.register(scheduler)
        for _ in range(200):
            [job] = scheduler.health().values()
            if job.runs:
                break
            await asyncio.sleep(0.01)
    assert sink.events == []
    assert job.status == "failing" and job.failing is not None and "no certificate read" in job.failing


def test_settings_are_checked_with_file_line_and_key(tmp_path: Path) -> None:
    path = write_config(tmp_path, 443, "{warn_before: soon}")
    with pytest.raises(ConfigError, match=r"watcher\.yaml:2: collectors\.certificates\.warn_before: expected a dur"):
        load_config(path)
    assert load_config(write_config(tmp_path, 443, "{}")).service.collectors.certificates is not None
    off = tmp_path / "off.yaml"
    off.write_text("collectors: {probes: false}\n")
    assert COLLECTORS["certificates"].make(load_config(off), Sink()) is None
