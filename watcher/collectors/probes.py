"""Site reachability probes: the inventory's ``probes:`` of each site in, ``ProbeFailed`` out.

Each probe of each site is one scheduler job (see :mod:`watcher.collectors.schedule`)
at the probe's own interval.  A run tries the target up to ``retries + 1`` times; only
when every attempt fails is the probe failing.  Then it emits

    {alertname: ProbeFailed, client, site, instance: <target>, probe_type}

firing, with ``starts_at`` = the time of the first failed attempt of the first failing
run.  That start stays the same while the probe keeps failing and the event is re-sent
every interval, so the engine sees one occurrence (re-sends are duplicates), and the
"every probe of the site fails for two minutes" rule can count from it.  The first
successful run after that emits the same labels resolved, with ``ends_at``.  Other
successful runs emit nothing unless ``report_latency`` asks for a
``probe_duration_seconds`` sample, with one exception (``resolve_on_start``, on by
default): the first successful run of a target after the collector is built emits a
resolved event without ``starts_at``, because a previous process may have stopped while
the target was failing, and its firing alert would otherwise stay open in the engine.

The ``instance`` label is the probe's target exactly as written in the inventory: the
engine counts a site's distinct failing instances against the number of its probes.

Probe kinds:

- ``http``: GET with TLS verification, redirects followed, a fresh connection each time
  (a kept-alive connection would hide a broken DNS or a new TLS problem); a status below
  400 is up; ``expect`` must then occur in the first MiB of the body.
- ``tcp``: ``host:port`` (``[v6]:port``) accepts a connection; with ``expect``, the
  server's banner must contain it.
- ``dns``: the name resolves through the loop's ``getaddrinfo`` (the system resolver);
  with ``expect``, one of the addresses must equal it.
- ``icmp``: an echo reply within the timeout, through an unprivileged ping socket, a raw
  socket (CAP_NET_RAW) or the ``ping`` binary, whichever this process may use.  If none
  is available the icmp probes are skipped, reported once in the log and in
  :meth:`ProbeCollector.states`, and emit nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import shutil
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit

import aiohttp

from watcher.collectors.base import EventSink
from watcher.collectors.schedule import Job, Scheduler
from watcher.config.inventory import Inventory, Probe
from watcher.model import Event, utcnow

__all__ = [
    "SOURCE",
    "IcmpMethod",
    "ProbeCollector",
    "ProbeError",
    "ProbeState",
    "ProbeTarget",
    "icmp_method",
]

log = logging.getLogger(__name__)

SOURCE = "probe"
ALERTNAME = "ProbeFailed"
MAX_BODY = 1 << 20
MAX_BANNER = 4096

IcmpMethod = Literal["dgram", "raw", "ping"]


class ProbeError(Exception):
    """One attempt failed; the message is the error text the event carries."""


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """One probe of one site, with the labels its events carry."""

    client: str
    site: str
    probe: Probe

    @property
    def key(self) -> str:
        return f"{self.site} {self.probe.type} {self.probe.target}"

    def labels(self) -> dict[str, str]:
        return {"alertname": ALERTNAME, "client": self.client, "site": self.site,
                "instance": self.probe.target, "probe_type": self.probe.type}


@dataclass(slots=True)
class ProbeState:
    """What the collector knows about one target (for the API); ``up`` is None before the first run."""

    target: ProbeTarget
    up: bool | None = None
    failing_since: datetime | None = None
    last_checked: datetime | None = None
    last_latency: float | None = None
    last_error: str | None = None
    attempts: int = 0
    skipped: str | None = None


def icmp_method() -> IcmpMethod | None:
    """The way this process can send ICMP echo requests, or None.

    An unprivileged ping socket needs the process's group in
    ``net.ipv4.ping_group_range``; a raw socket needs CAP_NET_RAW; the ``ping`` binary is
    usually setuid or has the capability itself.
    """
    candidates: tuple[tuple[int, IcmpMethod], ...] = ((socket.SOCK_DGRAM, "dgram"), (socket.SOCK_RAW, "raw"))
    for kind, method in candidates:
        try:
            socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP).close()
        except OSError:
            continue
        return method
    return "ping" if shutil.which("ping") else None


class ProbeCollector:
    """Runs the probes of every site in ``inventory`` and hands their events to ``sink``.

    Wire it with ``collector.register(scheduler)`` (one job per probe, named
    ``probe <site> <type> <target>``), inside ``async with collector:`` so its HTTP
    session is closed at the end.  ``retry_delay`` is the pause between attempts of
    one run.  ``icmp`` forces a method (None disables icmp); by default it is detected.
    A caller may pass its own ``session`` (it is then not closed here).
    """

    def __init__(
        self,
        inventory: Inventory,
        sink: EventSink,
        *,
        retry_delay: float = 1.0,
        report_latency: bool = False,
        resolve_on_start: bool = True,
        icmp: IcmpMethod | Literal["auto"] | None = "auto",
        session: aiohttp.ClientSession | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sink = sink
        self.retry_delay = retry_delay
        self.report_latency = report_latency
        self._clock = clock
        self._session = session
        self._own_session = session is None
        self.resolve_on_start = resolve_on_start
        self._icmp: IcmpMethod | None = icmp_method() if icmp == "auto" else icmp
        self._seq = itertools.count(1)
        self._states: dict[str, ProbeState] = {}
        for site in inventory.sites.values():
            for probe in site.probes:
                target = ProbeTarget(site.client, site.id, probe)
                problem = _check_target(probe)
                if problem:
                    log.error("probe %s: %s; this probe is not run", target.key, problem)
                self._states.setdefault(target.key, ProbeState(target, skipped=problem))
        self._skip_icmp_if_impossible()

    @property
    def icmp(self) -> IcmpMethod | None:
        return self._icmp

    def targets(self) -> list[ProbeTarget]:
        """Every probe that can run (an icmp probe without an ICMP method counts as skipped)."""
        return [s.target for s in self._states.values() if s.skipped is None]

    def states(self) -> list[ProbeState]:
        return [replace(s) for s in self._states.values()]

    def register(self, scheduler: Scheduler) -> None:
        """Add one scheduler job per runnable probe, at the probe's interval."""
        for target in self.targets():
            p = target.probe
            budget = (p.retries + 1) * p.timeout + p.retries * self.retry_delay + 5.0
            scheduler.add(f"probe {target.key}", self._job(target), interval=p.interval, timeout=budget)

    async def __aenter__(self) -> ProbeCollector:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, target: ProbeTarget) -> None:
        """One scheduled run: try the target, update its state, emit what changed or persists."""
        state = self._states[target.key]
        if state.skipped:
            return
        loop = asyncio.get_running_loop()
        probe = target.probe
        first_failure: datetime | None = None
        error: str | None = None
        latency = 0.0
        attempts = 0
        for attempt in range(probe.retries + 1):
            if attempt:
                await asyncio.sleep(self.retry_delay)
            at = self._clock()
            started = loop.time()
            attempts += 1
            try:
                await self.check(probe)
            except ProbeError as exc:
                latency = loop.time() - started
                error = str(exc)
                first_failure = first_failure or at
                continue
            latency = loop.time() - started
            error = None
            break
        now = self._clock()
        state.last_checked = now
        state.last_latency = latency
        state.attempts = attempts
        if error is not None:
            await self._failed(state, first_failure or now, now, error, latency)
        else:
            await self._succeeded(state, now, latency)

    async def check(self, probe: Probe) -> None:
        """One attempt within ``probe.timeout``; raises ProbeError saying what failed."""
        try:
            async with asyncio.timeout(probe.timeout):
                if probe.type == "http":
                    await self._http(probe)
                elif probe.type == "tcp":
                    await _tcp(probe)
                elif probe.type == "dns":
                    await _dns(probe)
                elif probe.type == "icmp":
                    await self._ping(probe)
                else:
                    raise ProbeError(f"unknown probe type {probe.type!r}")
        except ProbeError:
            raise
        except TimeoutError as exc:
            raise ProbeError(f"no answer within {probe.timeout:g} s") from exc
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ProbeError(f"TLS certificate rejected: {exc.certificate_error}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ProbeError(_describe(exc)) from exc

    # ------------------------------------------------------------ state and events

    async def _failed(self, state: ProbeState, first: datetime, now: datetime, error: str,
                      latency: float) -> None:
        target = state.target
        if state.failing_since is None:
            state.failing_since = first
            log.info("probe %s failing: %s", target.key, error)
        state.up = False
        state.last_error = error
        annotations = {
            "summary": f"{target.probe.type} probe of {target.probe.target} (site {target.site}) fails",
            "error": error,
            "latency_seconds": f"{latency:.3f}",
            "attempts": str(state.attempts),
        }
        await self._sink([Event(labels=target.labels(), source=SOURCE, status="firing",
                                annotations=annotations, starts_at=state.failing_since,
                                observed_at=now)])

    async def _succeeded(self, state: ProbeState, now: datetime, latency: float) -> None:
        target = state.target
        events: list[Event] = []
        if state.failing_since is None and state.up is None and self.resolve_on_start:
            events.append(Event(
                labels=target.labels(), source=SOURCE, status="resolved",
                annotations={"summary": f"{target.probe.type} probe of {target.probe.target} "
                                        f"(site {target.site}) answers (first check since start)"},
                ends_at=now, observed_at=now))
        elif state.failing_since is not None:
            events.append(Event(
                labels=target.labels(), source=SOURCE, status="resolved",
                annotations={"summary": f"{target.probe.type} probe of {target.probe.target} "
                                        f"(site {target.site}) answers again",
                             "latency_seconds": f"{latency:.3f}"},
                starts_at=state.failing_since, ends_at=now, observed_at=now))
        if self.report_latency:
            labels = {k: v for k, v in target.labels().items() if k != "alertname"}
            events.append(Event(labels={"metric": "probe_duration_seconds", **labels}, source=SOURCE,
                                observed_at=now, value=latency))
        if events:
            await self._sink(events)
        if state.failing_since is not None:
            log.info("probe %s recovered (failing since %s)", target.key, state.failing_since.isoformat())
        state.failing_since = None
        state.up = True
        state.last_error = None

    def _job(self, target: ProbeTarget) -> Job:
        async def job() -> str | None:
            await self.run(target)
            state = self._states[target.key]
            return state.last_error or "failing" if state.up is False else None
        return job

    def _skip_icmp_if_impossible(self) -> None:
        """Mark the icmp probes skipped, with one log line, when this process cannot ping.

        Running them would report every such site as failing, which is worse than silence.
        """
        if self._icmp is not None:
            return
        skipped = [s for s in self._states.values() if s.target.probe.type == "icmp" and s.skipped is None]
        for s in skipped:
            s.skipped = "this process may not send ICMP (no ping socket, raw socket or ping binary)"
        if skipped:
            log.error("icmp probes skipped: this process may not send ICMP (net.ipv4.ping_group_range "
                      "excludes its group, no CAP_NET_RAW, no ping binary): %s",
                      ", ".join(s.target.key for s in skipped))

    # ------------------------------------------------------------ the probe kinds

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=0, force_close=True, use_dns_cache=False)
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": "watcher-probe"})
        return self._session

    async def _http(self, probe: Probe) -> None:
        async with self._client().get(probe.target, allow_redirects=True) as resp:
            if resp.status >= 400:
                raise ProbeError(f"HTTP {resp.status} {resp.reason or ''}".rstrip())
            if probe.expect is None:
                return
            body = await resp.content.read(MAX_BODY)
            try:
                text = body.decode(resp.charset or "utf-8", errors="replace")
            except LookupError:
                text = body.decode("utf-8", errors="replace")
            if probe.expect not in text:
                raise ProbeError(f"HTTP {resp.status} but the body lacks {probe.expect!r}")

    async def _ping(self, probe: Probe) -> None:
        if self._icmp is None:
            raise ProbeError("this process may not send ICMP")
        if self._icmp == "ping":
            await _ping_binary(probe.target, probe.timeout)
        else:
            await _ping_socket(probe.target, raw=self._icmp == "raw", seq=next(self._seq) & 0xFFFF)


def _check_target(probe: Probe) -> str | None:
    """Why this target cannot be probed as its type, or None; checked once, not at every run."""
    if probe.type == "http":
        parts = urlsplit(probe.target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return f"{probe.target!r} is not an http(s) URL"
        return None
    if probe.type == "tcp":
        try:
            host, _ = _host_port(probe.target)
        except ValueError as exc:
            return str(exc)
        return None if host else f"{probe.target!r} has no host"
    if probe.type in ("dns", "icmp"):
        return None if probe.target.strip() else "empty target"
    return f"unknown probe type {probe.type!r}"


def _host_port(target: str) -> tuple[str, int]:
    parts = urlsplit("//" + target)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{target!r}: bad port") from exc
    if port is None or not parts.hostname:
        raise ValueError(f"{target!r} is not host:port")
    return parts.hostname, port


async def _tcp(probe: Probe) -> None:
    host, port = _host_port(probe.target)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        if probe.expect is not None:
            seen = b""
            want = probe.expect.encode()
            while want not in seen and len(seen) < MAX_BANNER:
                chunk = await reader.read(MAX_BANNER)
                if not chunk:
                    raise ProbeError(f"connected, but the banner lacks {probe.expect!r}")
                seen += chunk
            if want not in seen:
                raise ProbeError(f"connected, but the banner lacks {probe.expect!r}")
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _dns(probe: Probe) -> None:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(probe.target, None, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ProbeError(f"cannot resolve {probe.target}: {exc.strerror or exc}") from exc
    addresses = {str(info[4][0]) for info in infos}
    if not addresses:
        raise ProbeError(f"{probe.target} resolves to no address")
    if probe.expect is not None and probe.expect not in addresses:
        raise ProbeError(f"{probe.target} resolves to {', '.join(sorted(addresses))}, not {probe.expect}")


async def _ping_socket(host: str, *, raw: bool, seq: int) -> None:
    """One echo request through a ping (or raw) socket; returns on the matching reply.

    The reply is matched by a random payload token: a ping socket rewrites the
    identifier, and a raw socket sees every ICMP packet the host receives.
    """
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ProbeError(f"cannot resolve {host}: {exc.strerror or exc}") from exc
    family, _, _, _, address = infos[0]
    v6 = family == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    request, reply = (128, 129) if v6 else (8, 0)
    token = os.urandom(16)
    ident = int.from_bytes(os.urandom(2), "big")
    header = struct.pack("!BBHHH", request, 0, 0, ident, seq)
    checksum = 0 if v6 else _inet_checksum(header + token)
    packet = struct.pack("!BBHHH", request, 0, checksum, ident, seq) + token
    sock = socket.socket(family, socket.SOCK_RAW if raw else socket.SOCK_DGRAM, proto)
    with sock:
        sock.setblocking(False)
        await loop.sock_sendto(sock, packet, address)
        while True:
            data = await loop.sock_recv(sock, 2048)
            if raw and not v6 and data:
                data = data[(data[0] & 0x0F) * 4:]
            if len(data) >= 8 + len(token) and data[0] == reply and data[8:8 + len(token)] == token:
                return


def _inet_checksum(data: bytes) -> int:
    """RFC 1071 checksum; IPv4 raw sockets need it (ping sockets and ICMPv6 get the kernel's)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


async def _ping_binary(host: str, wait_seconds: float) -> None:
    wait = max(1, int(wait_seconds + 0.999))
    proc = await asyncio.create_subprocess_exec(
        "ping", "-n", "-c", "1", "-W", str(wait), host,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        lines = [line for line in out.decode(errors="replace").splitlines() if line.strip()]
        raise ProbeError(f"ping: {lines[-1] if lines else f'exit status {proc.returncode}'}")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
