"""TLS certificate expiry of every site's ``https://`` probe: ``CertificateExpiresSoon`` before it lapses.

An expired certificate takes a client's web mail or intranet down just as surely as a
broken link, but on a date known weeks ahead.  For each ``http`` probe of a site whose
target is an ``https://`` URL (the inventory's ``probes:``), one scheduler job connects
every ``interval``, reads the certificate the server presents and emits

    {alertname: CertificateExpiresSoon, client, site, instance: <target>, severity: warning}

firing while the certificate ends within ``warn_before`` (or has ended), with ``starts_at``
= the first check that saw it so (stable while it stays so, so re-sends are the same
occurrence) and the annotations ``expires_at``, ``days_left``, ``subject``, ``issuer``;
resolved, with that start, when a renewed certificate is served.  The first good check
after the collector is built emits the resolved form without ``starts_at``, as the probes
do, in case a previous process stopped while it was firing.

The certificate is read, not trusted: whether the chain and the name are valid is the
``http`` probe's question (it fails on a bad certificate); this one asks only "when does
what is served here end?".  A target that does not answer emits nothing (the probe reports
it) and shows as ``failing`` in the job's health.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography import x509

from watcher.collectors.base import EventSink
from watcher.collectors.schedule import Job, Scheduler
from watcher.config.collectors import CertificateSettings
from watcher.config.inventory import Inventory
from watcher.model import Event, utcnow

__all__ = ["ALERTNAME", "SOURCE", "CertificateCollector", "CertificateTarget", "read_certificate"]

log = logging.getLogger(__name__)

SOURCE = "certificate"
ALERTNAME = "CertificateExpiresSoon"


@dataclass(frozen=True, slots=True)
class CertificateTarget:
    """One ``https://`` probe target of one site: where to connect and the labels of its events."""

    client: str
    site: str
    url: str
    host: str
    port: int

    def labels(self) -> dict[str, str]:
        return {"alertname": ALERTNAME, "client": self.client, "site": self.site, "instance": self.url,
                "severity": "warning"}


async def read_certificate(host: str, port: int, timeout: float) -> x509.Certificate:
    """The certificate ``host:port`` presents in a TLS handshake (SNI = ``host``), unverified."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    async with asyncio.timeout(timeout):
        _reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return x509.load_der_x509_certificate(der)


class CertificateCollector:
    """One job per ``https://`` probe target of ``inventory``; events through ``sink``."""

    def __init__(self, settings: CertificateSettings, inventory: Inventory, sink: EventSink, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self._sink = sink
        self._clock = clock
        self._since: dict[tuple[str, str], datetime | None] = {}
        self.targets: list[CertificateTarget] = []
        for site in inventory.sites.values():
            for probe in site.probes:
                parts = urlsplit(probe.target)
                if probe.type == "http" and parts.scheme == "https" and parts.hostname:
                    self.targets.append(CertificateTarget(site.client, site.id, probe.target, parts.hostname,
                                                          parts.port or 443))

    async def __aenter__(self) -> CertificateCollector:
        log.info("certificate expiry: %d https targets", len(self.targets))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Nothing held: each check opens and closes its own connection."""

    def register(self, scheduler: Scheduler) -> None:
        for target in self.targets:
            scheduler.add(f"certificate {target.site} {target.url}", self._job(target),
                          interval=self.settings.interval, timeout=self.settings.timeout + 5.0)

    async def check(self, target: CertificateTarget) -> None:
        """One check of one target; raises OSError/TimeoutError/ssl.SSLError when it does not answer."""
        cert = await read_certificate(target.host, target.port, self.settings.timeout)
        now = self._clock()
        ends = cert.not_valid_after_utc
        key = (target.site, target.url)
        first = key not in self._since
        since = self._since.get(key)
        if ends - now <= timedelta(seconds=self.settings.warn_before):
            if since is None:
                since = now
                log.warning("certificate of %s (site %s) ends %s", target.url, target.site, ends.isoformat())
            self._since[key] = since
            days = (ends - now).total_seconds() / 86400
            await self._sink([Event(
                labels=target.labels(), source=SOURCE, status="firing", starts_at=since, observed_at=now,
                annotations={"summary": (f"The TLS certificate of {target.url} ended {ends:%Y-%m-%d}" if days < 0
                                         else f"The TLS certificate of {target.url} ends {ends:%Y-%m-%d}"),
                             "expires_at": ends.isoformat(), "days_left": f"{days:.1f}",
                             "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string()})])
            return
        self._since[key] = None
        if since is not None or first:
            await self._sink([Event(
                labels=target.labels(), source=SOURCE, status="resolved", starts_at=since, ends_at=now,
                observed_at=now, annotations={"summary": f"The TLS certificate of {target.url} is valid until "
                                                         f"{ends:%Y-%m-%d}", "expires_at": ends.isoformat()})])

    def _job(self, target: CertificateTarget) -> Job:
        async def job() -> str | None:
            try:
                await self.check(target)
            except (OSError, ValueError) as exc:  # no answer, no TLS, or an unreadable certificate
                return f"no certificate read: {type(exc).__name__}: {exc}".rstrip(": ")
            return None
        return job
