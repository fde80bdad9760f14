"""SNMP polling of configured devices: watcher's own eyes on routers, switches and servers.

Traps tell only what an agent chooses to send, over lossy UDP; polling asks.  Each
configured :class:`SnmpDevice` is read with pysnmp's asyncio high-level API
(``bulk_cmd`` GETBULK walks, v2c or v3 USM) and the answers become normalized events:

- IF-MIB ``ifTable`` (``ifDescr``, ``ifAdminStatus``, ``ifOperStatus``): a watched
  interface that is administratively up and operationally ``down``, ``lowerLayerDown``
  or ``notPresent`` gives a firing ``LinkDown``
  ``{alertname, snmp_agent, ifIndex, ifDescr}`` with ``starts_at`` = the poll that
  first saw it down, re-sent with that same start on every poll while it stays down (the
  engine sees duplicates, and a restarted engine the same occurrence).  When it is up
  again (or administratively down, or gone from the table) the same labels are sent
  resolved, together with a resolved ``LinkUp`` with the same ``snmp_agent``/``ifIndex``,
  so that the shipped rule's ``resolved_by`` also closes a ``LinkDown`` that came from a
  trap whose ``linkUp`` was lost.  An interface that stays up emits nothing.  ``testing``
  and ``unknown`` keep the previous state; ``dormant`` counts as up.
- HOST-RESOURCES-MIB ``hrStorageTable``, fixed disks only: every poll emits a sample
  ``{metric: host_storage_used_bytes, snmp_agent, storage}`` (value = used bytes,
  annotation ``size_bytes``), and a disk over the device's ``storage_threshold`` (used /
  size) is a firing ``HostOutOfDiskSpace`` ``{alertname, snmp_agent, host, mountpoint,
  severity: warning}``, resolved when it is back at or under it.  ``host`` (the device's
  ``host``, else its address) is there because the shipped ``host-disk`` rule groups by
  it.
- a device that does not answer (timeout; also a wrong v3 key, which net-snmp answers
  with a report or not at all) is a firing ``SnmpDeviceUnreachable`` ``{alertname,
  snmp_agent, severity: warning}``, resolved when it answers again.  Its link and disk
  states are kept as they were, neither re-sent nor resolved, while it is unreachable.
  The change is logged once each way, never per failed poll.

Every event carries the device's ``site``/``client`` labels when configured; without
them the engine binds ``snmp_agent`` through the inventory's ``match.snmp_agent``.

``resolve_on_start`` (default on, as for the probes): the first successful poll of a
device after the poller is built also sends the resolved form of everything that is fine
(``SnmpDeviceUnreachable``, ``LinkDown``/``LinkUp`` of each watched interface that is up,
``HostOutOfDiskSpace`` of each disk under the threshold), because a previous process may
have stopped while one of them was firing.

Devices are frozen settings (``watcher.config.collectors``); :meth:`SnmpPoller.update`
swaps one for a changed copy (same address and port), which takes effect at its next poll
and keeps what the poller knows of the device.  All v2c devices share one pysnmp engine,
v3 devices one per credential set (see ``SnmpPoller._engine``).  pysnmp remembers a v3
agent's snmpEngineID for 5 minutes, so an agent that comes back with a new one (a
replaced or factory-reset device, or an agent that does not persist it) stays
unreachable until that entry expires; a restart that keeps the ID recovers at once.

Wiring: build one :class:`SnmpPoller` with all devices, ``poller.register(scheduler,
interval=60)`` (one job per device, which hands its events to the sink) and close it
with ``async with poller:`` or ``await poller.aclose()``.  ``await poller.poll()`` polls
every device once with bounded concurrency and returns the events instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pysnmp.error import PySnmpError
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    Udp6TransportTarget,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
)
from pysnmp.proto import rfc1902 as proto_types
from pysnmp.proto import rfc1905
from pysnmp.proto.secmod.rfc3414.priv import des as des_priv
from pysnmp.proto.secmod.rfc3826.priv import aes as aes_priv

from watcher.collectors.base import EventSink
from watcher.collectors.schedule import Job, Scheduler
from watcher.collectors.snmptrap import AUTH_PROTOCOLS, PRIV_PROTOCOLS
from watcher.config.collectors import SnmpDevice
from watcher.model import Event, utcnow

__all__ = [
    "SOURCE",
    "DeviceSnapshot",
    "InterfaceRow",
    "SnmpDevice",
    "SnmpDeviceStatus",
    "SnmpPollError",
    "SnmpPoller",
    "StorageRow",
]

log = logging.getLogger(__name__)

SOURCE = "snmp_poll"

# IF-MIB ifTable columns
_IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
_IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
_IF_OPER = "1.3.6.1.2.1.2.2.1.8"
# HOST-RESOURCES-MIB hrStorageTable columns
_HR_TYPE = "1.3.6.1.2.1.25.2.3.1.2"
_HR_DESCR = "1.3.6.1.2.1.25.2.3.1.3"
_HR_UNITS = "1.3.6.1.2.1.25.2.3.1.4"
_HR_SIZE = "1.3.6.1.2.1.25.2.3.1.5"
_HR_USED = "1.3.6.1.2.1.25.2.3.1.6"
_HR_FIXED_DISK = "1.3.6.1.2.1.25.2.1.4"

_ADMIN_NAMES = {1: "up", 2: "down", 3: "testing"}
_OPER_NAMES = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
               7: "lowerLayerDown"}
_OPER_DOWN = frozenset({2, 6, 7})
_OPER_UP = frozenset({1, 5})


_EXCEPTIONS = (rfc1905.EndOfMibView, rfc1905.NoSuchObject, rfc1905.NoSuchInstance, proto_types.Null)


# ---------------------------------------------------------------- configuration


# ---------------------------------------------------------------- what a poll reads


@dataclass(slots=True, frozen=True)
class InterfaceRow:
    index: int
    descr: str
    admin: int | None
    oper: int | None


@dataclass(slots=True, frozen=True)
class StorageRow:
    index: int
    descr: str
    units: int
    size: int
    used: int

    @property
    def size_bytes(self) -> int:
        return self.size * self.units

    @property
    def used_bytes(self) -> int:
        return self.used * self.units


@dataclass(slots=True)
class DeviceSnapshot:
    """One successful read of a device.  A table is None when the agent refused it
    (an errorStatus such as genErr): its states are then left as they were."""

    interfaces: list[InterfaceRow] | None
    storage: list[StorageRow] | None
    errors: dict[str, str] = field(default_factory=dict)


class SnmpPollError(Exception):
    """The device did not answer usably (timeout, authentication, transport)."""


class _TableError(Exception):
    pass


# ---------------------------------------------------------------- state


@dataclass(slots=True)
class _Firing:
    labels: dict[str, str]
    since: datetime


@dataclass(slots=True)
class _DeviceState:
    polls: int = 0
    succeeded_once: bool = False
    unreachable_since: datetime | None = None
    last_poll: datetime | None = None
    last_success: datetime | None = None
    last_error: str | None = None
    links: dict[int, _Firing] = field(default_factory=dict)
    disks: dict[str, _Firing] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    table_errors: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True, frozen=True)
class SnmpDeviceStatus:
    """What the API and /metrics can show about one device; a copy, safe to keep.

    ``reachable`` is None before the first poll.
    """

    key: str
    address: str
    reachable: bool | None
    unreachable_since: datetime | None
    last_poll: datetime | None
    last_success: datetime | None
    last_error: str | None
    links_down: tuple[int, ...]
    disks_over: tuple[str, ...]


# ---------------------------------------------------------------- poller


class SnmpPoller:
    """Polls ``devices`` and turns what they say into events (see the module doc).

    ``sink`` receives each device's events after each scheduled run (``register``);
    ``poll()``/``poll_device()`` return them instead and need no sink.
    ``max_concurrency`` bounds how many devices ``poll()`` reads at once.
    ``max_repetitions`` is the GETBULK size; ``max_rows`` caps the rows read from one
    table of one device (a runaway agent).  ``clock`` is for tests.
    """

    def __init__(
        self,
        devices: Iterable[SnmpDevice],
        sink: EventSink | None = None,
        *,
        interval: float = 60.0,
        max_concurrency: int = 16,
        max_repetitions: int = 25,
        max_rows: int = 10_000,
        resolve_on_start: bool = True,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_repetitions < 1:
            raise ValueError("max_repetitions must be at least 1")
        self._devices: dict[str, SnmpDevice] = {}
        for device in devices:
            if device.key in self._devices:
                raise ValueError(f"snmp device {device.key} is configured twice")
            self._devices[device.key] = device
        needs_crypto = any(d.version == "3" and d.v3_user is not None and d.v3_user.priv_protocol
                           for d in self._devices.values())
        if needs_crypto and (aes_priv.PysnmpCryptoError or des_priv.PysnmpCryptoError):
            raise RuntimeError("SNMPv3 privacy (AES/DES) needs the 'cryptography' package (>= 43)")
        self._sink = sink
        self.interval = interval
        self.max_concurrency = max_concurrency
        self.max_repetitions = max_repetitions
        self.max_rows = max_rows
        self.resolve_on_start = resolve_on_start
        self._clock = clock
        self._states = {key: _DeviceState() for key in self._devices}
        self._locks: dict[str, asyncio.Lock] = {}
        self._engines: dict[tuple[Any, ...], SnmpEngine] = {}

    # ------------------------------------------------------------ public API

    @property
    def devices(self) -> list[SnmpDevice]:
        return list(self._devices.values())

    def status(self) -> list[SnmpDeviceStatus]:
        out = []
        for key, device in self._devices.items():
            st = self._states[key]
            reachable = None if st.polls == 0 else st.unreachable_since is None
            out.append(SnmpDeviceStatus(
                key=key, address=device.address, reachable=reachable,
                unreachable_since=st.unreachable_since, last_poll=st.last_poll,
                last_success=st.last_success, last_error=st.last_error,
                links_down=tuple(sorted(st.links)), disks_over=tuple(sorted(st.disks))))
        return out

    def update(self, device: SnmpDevice) -> None:
        """Poll ``device`` (a changed copy of a configured one: same address and port) from now on,
        keeping its state, so a changed threshold resolves what it no longer fires."""
        if device.key not in self._devices:
            raise KeyError(f"snmp device {device.key} is not polled here")
        self._devices[device.key] = device

    def register(self, scheduler: Scheduler, *, interval: float | None = None, timeout: float | None = None) -> None:
        """Add one scheduler job per device (named ``snmp poll ADDRESS:PORT``) feeding the sink,
        every ``interval`` (default: the one given at construction)."""
        if self._sink is None:
            raise RuntimeError("SnmpPoller.register needs a sink")
        for device in self._devices.values():
            scheduler.add(f"snmp poll {device.key}", self._job(device), interval=interval or self.interval,
                          timeout=timeout)

    async def __aenter__(self) -> SnmpPoller:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the SNMP engines' sockets; a later poll opens new ones."""
        engines, self._engines = self._engines, {}
        for engine in engines.values():
            try:
                engine.close_dispatcher()
            except Exception:
                log.debug("snmp poll: closing an SNMP engine failed", exc_info=True)

    async def poll(self) -> list[Event]:
        """Poll every device once (at most ``max_concurrency`` at a time); all their events.

        A device whose poll fails unexpectedly (a bug, not an unreachable device) is
        logged and skipped, so it cannot hide the others.
        """
        sem = asyncio.Semaphore(self.max_concurrency)

        async def one(device: SnmpDevice) -> list[Event]:
            async with sem:
                return await self.poll_device(device)

        devices = list(self._devices.values())
        results = await asyncio.gather(*(one(d) for d in devices), return_exceptions=True)
        events: list[Event] = []
        for device, result in zip(devices, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                log.error("snmp poll %s failed: %s", device.key, result, exc_info=result)
                continue
            events.extend(result)
        return events

    async def poll_device(self, device: SnmpDevice | str) -> list[Event]:
        """Poll one device (or its key) once, update its state, return what to emit."""
        key = device if isinstance(device, str) else device.key
        dev = self._devices[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            try:
                snapshot: DeviceSnapshot | SnmpPollError = await self.fetch(dev)
            except SnmpPollError as exc:
                snapshot = exc
            return self._apply(dev, self._states[key], snapshot, self._clock())

    async def fetch(self, device: SnmpDevice) -> DeviceSnapshot:
        """Read the device's ifTable and fixed disks; SnmpPollError if it does not answer."""
        engine = self._engine(device)
        auth = _auth_data(device)
        try:
            if _is_ipv6(device.address):
                target: Any = await Udp6TransportTarget.create(
                    (device.address, device.port), timeout=device.timeout, retries=device.retries)
            else:
                target = await UdpTransportTarget.create(
                    (device.address, device.port), timeout=device.timeout, retries=device.retries)
        except PySnmpError as exc:
            raise SnmpPollError(str(exc)) from exc
        errors: dict[str, str] = {}
        interfaces: list[InterfaceRow] | None = None
        storage: list[StorageRow] | None = None
        try:
            rows = await self._walk(device, engine, auth, target, (_IF_DESCR, _IF_ADMIN, _IF_OPER))
            interfaces = _interfaces(rows)
        except _TableError as exc:
            errors["ifTable"] = str(exc)
        try:
            rows = await self._walk(device, engine, auth, target, (_HR_TYPE, _HR_DESCR, _HR_UNITS, _HR_SIZE,
                                                                   _HR_USED))
            storage = _fixed_disks(rows)
        except _TableError as exc:
            errors["hrStorageTable"] = str(exc)
        return DeviceSnapshot(interfaces, storage, errors)

    # ------------------------------------------------------------ SNMP

    def _engine(self, device: SnmpDevice) -> SnmpEngine:
        """A shared engine per credential set.

        pysnmp keys its USM user table by user name (and engine ID, which is only known
        after discovery), so two devices with the same user name but different keys
        cannot share an engine; devices with the same credentials, and all v2c devices,
        can.  Creating an engine costs ~0.1 s of CPU, so they are kept until aclose().
        """
        user = device.v3_user
        if device.version == "2c" or user is None:
            key: tuple[Any, ...] = ("v2c",)
        else:
            key = ("v3", user.name, user.auth_protocol, user.auth_key, user.priv_protocol, user.priv_key,
                   user.engine_id)
        engine = self._engines.get(key)
        if engine is None:
            engine = SnmpEngine()
            self._engines[key] = engine
        return engine

    async def _walk(self, device: SnmpDevice, engine: SnmpEngine, auth: Any, target: Any,
                    columns: Sequence[str]) -> dict[int, dict[str, Any]]:
        """GETBULK-walk several columns of one table side by side: ``{index: {column: value}}``.

        A column ends at the first OID outside it, an exception value (endOfMibView),
        or an OID that does not increase (a broken agent).  Only single-integer
        indexes are kept (ifTable and hrStorageTable have those).
        """
        prefixes = {col: proto_types.ObjectName(col) for col in columns}
        cursors: dict[str, proto_types.ObjectName] = dict(prefixes)
        rows: dict[int, dict[str, Any]] = {}
        seen = 0
        while cursors:
            active = list(cursors)
            error_indication, error_status, error_index, varbinds = await bulk_cmd(
                engine, auth, target, ContextData(), 0, self.max_repetitions,
                *(ObjectType(ObjectIdentity(cursors[col])) for col in active),
                lookupMib=False,
            )
            if error_indication:
                raise SnmpPollError(str(error_indication))
            if int(error_status):
                where = ""
                if error_index and 0 < int(error_index) <= len(varbinds):
                    where = f" at {varbinds[int(error_index) - 1][0]}"
                text = error_status.prettyPrint() if hasattr(error_status, "prettyPrint") else str(error_status)
                raise _TableError(f"{text}{where}")
            if not varbinds:
                break
            finished: set[str] = set()
            for i, (name, value) in enumerate(varbinds):
                col = active[i % len(active)]
                if col in finished:
                    continue
                prefix = prefixes[col]
                if isinstance(value, _EXCEPTIONS) or not prefix.isPrefixOf(name) or len(name) <= len(prefix) \
                        or not name > cursors[col]:
                    finished.add(col)
                    continue
                cursors[col] = name
                seen += 1
                suffix = tuple(name[len(prefix):])
                if len(suffix) == 1:
                    rows.setdefault(int(suffix[0]), {})[col] = value
            for col in finished:
                del cursors[col]
            if seen >= self.max_rows * len(columns):
                log.warning("snmp poll %s: more than %d rows under %s; the rest is not read",
                            device.key, self.max_rows, columns[0].rsplit(".", 1)[0])
                break
        return rows

    # ------------------------------------------------------------ state and events

    def _apply(self, device: SnmpDevice, st: _DeviceState, result: DeviceSnapshot | SnmpPollError,
               now: datetime) -> list[Event]:
        st.polls += 1
        st.last_poll = now
        base = device.labels()
        if isinstance(result, SnmpPollError):
            return self._unreachable(device, st, base, str(result) or type(result).__name__, now)
        events: list[Event] = []
        first = not st.succeeded_once
        unreachable = {"alertname": "SnmpDeviceUnreachable", **base, "severity": "warning"}
        if st.unreachable_since is not None:
            log.info("snmp poll %s: device answers again (unreachable since %s)", device.key,
                     st.unreachable_since.isoformat())
            events.append(Event(labels=unreachable, source=SOURCE, status="resolved",
                                annotations={"summary": f"SNMP agent {device.address} answers again"},
                                starts_at=st.unreachable_since, ends_at=now, observed_at=now))
        elif first and self.resolve_on_start:
            events.append(Event(labels=unreachable, source=SOURCE, status="resolved",
                                annotations={"summary": f"SNMP agent {device.address} answers "
                                                        "(first poll since start)"},
                                ends_at=now, observed_at=now))
        st.unreachable_since = None
        st.last_error = None
        st.last_success = now
        st.succeeded_once = True
        self._table_errors(device, st, result.errors)
        if result.interfaces is not None:
            events.extend(self._links(device, st, base, result.interfaces, now, first))
        if result.storage is not None:
            events.extend(self._disks(device, st, base, result.storage, now, first))
        return events

    def _unreachable(self, device: SnmpDevice, st: _DeviceState, base: dict[str, str], error: str,
                     now: datetime) -> list[Event]:
        if st.unreachable_since is None:
            st.unreachable_since = now
            log.warning("snmp poll %s: device unreachable: %s (logged again when it answers)",
                        device.key, error)
        else:
            log.debug("snmp poll %s: still unreachable: %s", device.key, error)
        st.last_error = error
        labels = {"alertname": "SnmpDeviceUnreachable", **base, "severity": "warning"}
        return [Event(labels=labels, source=SOURCE, status="firing",
                      annotations={"summary": f"SNMP agent {device.address} does not answer", "error": error},
                      starts_at=st.unreachable_since, observed_at=now)]

    def _table_errors(self, device: SnmpDevice, st: _DeviceState, errors: dict[str, str]) -> None:
        for table, error in errors.items():
            if st.table_errors.get(table) != error:
                log.warning("snmp poll %s: the agent refuses %s: %s (its states are kept)", device.key,
                            table, error)
        for table in set(st.table_errors) - set(errors):
            log.info("snmp poll %s: %s readable again", device.key, table)
        st.table_errors = dict(errors)

    def _watched(self, device: SnmpDevice, st: _DeviceState, rows: list[InterfaceRow]) -> list[InterfaceRow]:
        if device.interfaces is None:
            return [r for r in rows if r.admin == 1]
        chosen: dict[int, InterfaceRow] = {}
        missing: set[str] = set()
        for want in device.interfaces:
            if isinstance(want, int):
                found = [r for r in rows if r.index == want]
            else:
                found = [r for r in rows if r.descr == want]
            if not found:
                missing.add(str(want))
            for r in found:
                chosen[r.index] = r
        for name in sorted(missing - st.missing):
            log.warning("snmp poll %s: configured interface %r is not in the agent's ifTable", device.key, name)
        for name in sorted(st.missing - missing):
            log.info("snmp poll %s: configured interface %r found", device.key, name)
        st.missing = missing
        return sorted(chosen.values(), key=lambda r: r.index)

    def _links(self, device: SnmpDevice, st: _DeviceState, base: dict[str, str], rows: list[InterfaceRow],
               now: datetime, first: bool) -> list[Event]:
        events: list[Event] = []
        watched = self._watched(device, st, rows)
        present = {r.index for r in watched}
        for row in watched:
            name = f"interface {row.index} ({row.descr})" if row.descr else f"interface {row.index}"
            status = {"ifOperStatus": _OPER_NAMES.get(row.oper or 0, str(row.oper)),
                      "ifAdminStatus": _ADMIN_NAMES.get(row.admin or 0, str(row.admin))}
            down = row.admin == 1 and row.oper in _OPER_DOWN
            up = row.admin != 1 or row.oper in _OPER_UP
            firing = st.links.get(row.index)
            if down or (firing is not None and not up):  # testing/unknown: still down
                if firing is None:
                    labels = {"alertname": "LinkDown", **base, "ifIndex": str(row.index), "ifDescr": row.descr}
                    firing = st.links[row.index] = _Firing(labels, now)
                    log.info("snmp poll %s: %s is %s", device.key, name, status["ifOperStatus"])
                events.append(Event(labels=dict(firing.labels), source=SOURCE, status="firing",
                                    annotations={"summary": f"SNMP agent {device.address}: {name} is down"
                                                 if down else f"SNMP agent {device.address}: {name} was down, "
                                                 f"now {status['ifOperStatus']}",
                                                 **status},
                                    starts_at=firing.since, observed_at=now))
            elif up and firing is not None:
                del st.links[row.index]
                log.info("snmp poll %s: %s is up again", device.key, name)
                events.extend(_link_up(device, firing.labels, firing.since, now,
                                       f"SNMP agent {device.address}: {name} is up again", status))
            elif up and first and self.resolve_on_start:
                labels = {"alertname": "LinkDown", **base, "ifIndex": str(row.index), "ifDescr": row.descr}
                events.extend(_link_up(device, labels, None, now,
                                       f"SNMP agent {device.address}: {name} is up (first poll since start)",
                                       status))
        for index in [i for i in st.links if i not in present]:
            firing = st.links.pop(index)
            log.info("snmp poll %s: interface %d is no longer watched (admin down or gone)", device.key, index)
            events.extend(_link_up(device, firing.labels, firing.since, now,
                                   f"SNMP agent {device.address}: interface {index} is no longer watched "
                                   "(administratively down or removed)", {}))
        return events

    def _disks(self, device: SnmpDevice, st: _DeviceState, base: dict[str, str], rows: list[StorageRow],
               now: datetime, first: bool) -> list[Event]:
        events: list[Event] = []
        threshold = device.storage_threshold
        host = device.host or device.address
        present: set[str] = set()
        for row in rows:
            if row.descr in present:
                continue  # the same mount listed twice; the first row counts
            present.add(row.descr)
            size, used = row.size_bytes, row.used_bytes
            events.append(Event(labels={"metric": "host_storage_used_bytes", **base, "storage": row.descr},
                                source=SOURCE, annotations={"size_bytes": str(size)}, observed_at=now,
                                value=float(used)))
            if size <= 0:
                continue
            ratio = used / size
            firing = st.disks.get(row.descr)
            labels = {"alertname": "HostOutOfDiskSpace", **base, "host": host, "mountpoint": row.descr,
                      "severity": "warning"}
            annotations = {"used_bytes": str(used), "size_bytes": str(size), "used_ratio": f"{ratio:.4f}",
                           "threshold": f"{threshold:g}"}
            if ratio > threshold:
                if firing is None:
                    firing = st.disks[row.descr] = _Firing(labels, now)
                    log.info("snmp poll %s: %s is %.0f %% full", device.key, row.descr, ratio * 100)
                events.append(Event(labels=dict(firing.labels), source=SOURCE, status="firing",
                                    annotations={"summary": f"{row.descr} on {host} is {ratio:.0%} full "
                                                            f"(threshold {threshold:.0%})", **annotations},
                                    starts_at=firing.since, observed_at=now))
            elif firing is not None:
                del st.disks[row.descr]
                log.info("snmp poll %s: %s is back under the threshold (%.0f %%)", device.key, row.descr,
                         ratio * 100)
                events.append(Event(labels=dict(firing.labels), source=SOURCE, status="resolved",
                                    annotations={"summary": f"{row.descr} on {host} is {ratio:.0%} full, "
                                                            f"under the threshold again", **annotations},
                                    starts_at=firing.since, ends_at=now, observed_at=now))
            elif first and self.resolve_on_start:
                events.append(Event(labels=labels, source=SOURCE, status="resolved",
                                    annotations={"summary": f"{row.descr} on {host} is {ratio:.0%} full "
                                                            "(first poll since start)", **annotations},
                                    ends_at=now, observed_at=now))
        for descr in [d for d in st.disks if d not in present]:
            firing = st.disks.pop(descr)
            log.info("snmp poll %s: %s is no longer reported", device.key, descr)
            events.append(Event(labels=dict(firing.labels), source=SOURCE, status="resolved",
                                annotations={"summary": f"{descr} on {host} is no longer reported by the agent"},
                                starts_at=firing.since, ends_at=now, observed_at=now))
        return events

    def _job(self, device: SnmpDevice) -> Job:
        sink = self._sink
        assert sink is not None

        async def job() -> None:
            events = await self.poll_device(device)
            if events:
                await sink(events)
        return job


# ---------------------------------------------------------------- helpers


def _link_up(device: SnmpDevice, labels: dict[str, str], since: datetime | None, now: datetime, summary: str,
             status: dict[str, str]) -> list[Event]:
    """A resolved LinkDown with the firing labels, and a LinkUp for trap-born LinkDowns."""
    up = {"alertname": "LinkUp", **{k: v for k, v in labels.items() if k != "alertname"}}
    annotations = {"summary": summary, **status}
    return [
        Event(labels=dict(labels), source=SOURCE, status="resolved", annotations=annotations,
              starts_at=since, ends_at=now, observed_at=now),
        Event(labels=up, source=SOURCE, status="resolved", annotations=dict(annotations),
              starts_at=now, ends_at=now, observed_at=now),
    ]


def _community_index(community: str) -> str:
    """A stable, distinct LCD row name per community (pysnmp's default uses hash())."""
    return "watcher-" + hashlib.sha256(community.encode()).hexdigest()[:16]


def _auth_data(device: SnmpDevice) -> CommunityData | UsmUserData:
    if device.version == "2c":
        assert device.community is not None
        return CommunityData(_community_index(device.community), device.community, mpModel=1)
    user = device.v3_user
    assert user is not None
    kwargs: dict[str, Any] = {}
    if user.auth_protocol:
        kwargs["authKey"] = user.auth_key
        kwargs["authProtocol"] = AUTH_PROTOCOLS[user.auth_protocol]
    if user.priv_protocol:
        kwargs["privKey"] = user.priv_key
        kwargs["privProtocol"] = PRIV_PROTOCOLS[user.priv_protocol]
    if user.engine_id:
        raw = user.engine_id.strip().lower().removeprefix("0x").replace(":", "")
        kwargs["securityEngineId"] = proto_types.OctetString(hexValue=raw)
    return UsmUserData(user.name, **kwargs)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unsigned(value: Any) -> int:
    """hrStorage columns are Integer32; agents that overflow them report negatives."""
    number = _int(value) or 0
    return number + (1 << 32) if number < 0 else number


def _text(value: Any) -> str:
    if isinstance(value, proto_types.OctetString):
        raw = bytes(value.asOctets())
    elif isinstance(value, bytes | bytearray):
        raw = bytes(value)
    else:
        return "" if value is None else str(value)
    return raw.decode("utf-8", errors="replace").rstrip("\x00").strip()


def _interfaces(rows: dict[int, dict[str, Any]]) -> list[InterfaceRow]:
    return [InterfaceRow(index, _text(cols.get(_IF_DESCR)), _int(cols.get(_IF_ADMIN)), _int(cols.get(_IF_OPER)))
            for index, cols in sorted(rows.items())]


def _fixed_disks(rows: dict[int, dict[str, Any]]) -> list[StorageRow]:
    disks = []
    for index, cols in sorted(rows.items()):
        kind = cols.get(_HR_TYPE)
        if kind is None or str(kind) != _HR_FIXED_DISK:
            continue
        units = _unsigned(cols.get(_HR_UNITS))
        disks.append(StorageRow(index, _text(cols.get(_HR_DESCR)) or f"storage {index}", units,
                                _unsigned(cols.get(_HR_SIZE)), _unsigned(cols.get(_HR_USED))))
    return disks


def _is_ipv6(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False
