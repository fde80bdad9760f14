"""SNMP trap and inform receiver: UDP notifications in, normalized events out.

The receiver runs pysnmp's asyncio engine on the caller's event loop, so it shares the
loop (and the shutdown) with the HTTP API.  pysnmp does the protocol work: it checks the
community or the USM credentials, decrypts, and acknowledges informs.  This module only
turns an accepted notification into :class:`~watcher.model.Event` objects
(:func:`trap_to_events`, pure and testable without a network) and hands them, in order of
arrival, to the sink given at construction.

Messages pysnmp drops (unknown community, unknown v3 user, wrong digest, undecryptable
payload) never reach an application callback, so they are counted through pysnmp's
observer hooks (``rfc2576/rfc3412.prepareDataElements:sm-failure``) into
:class:`SnmpTrapStats`, which the service can export as metrics.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import ipaddress
import logging
import socket
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pyasn1.type.base import Asn1Item
from pysnmp.carrier.asyncio.dgram import udp, udp6
from pysnmp.entity import config as snmp_config
from pysnmp.entity import engine as snmp_engine
from pysnmp.entity.rfc3413 import ntfrcv
from pysnmp.proto import errind
from pysnmp.proto import rfc1902 as proto_types
from pysnmp.proto.secmod.rfc3414.priv import des as des_priv
from pysnmp.proto.secmod.rfc3826.priv import aes as aes_priv
from pysnmp.smi import builder as mib_builder
from pysnmp.smi import rfc1902 as smi_types
from pysnmp.smi import view as mib_view
from pysnmp.smi.error import SmiError

from watcher.collectors import snmpsocket
from watcher.collectors.base import EventSink
from watcher.config.collectors import AuthProtocol, PrivProtocol, SnmpV3User, parse_engine_id
from watcher.model import Event, utcnow

if TYPE_CHECKING:
    from watcher.collectors.schedule import Scheduler

__all__ = [
    "AuthProtocol",
    "EventSink",
    "PrivProtocol",
    "SnmpTrapConfig",
    "SnmpTrapReceiver",
    "SnmpTrapStats",
    "SnmpV3User",
    "build_mib_view",
    "trap_to_events",
]

log = logging.getLogger(__name__)


AUTH_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "MD5": snmp_config.USM_AUTH_HMAC96_MD5,
    "SHA": snmp_config.USM_AUTH_HMAC96_SHA,
    "SHA256": snmp_config.USM_AUTH_HMAC192_SHA256,
}
PRIV_PROTOCOLS: dict[str, tuple[int, ...]] = {
    "DES": snmp_config.USM_PRIV_CBC56_DES,
    "AES": snmp_config.USM_PRIV_CFB128_AES,
    "AES256": snmp_config.USM_PRIV_CFB256_AES,
}

@dataclass(slots=True)
class SnmpTrapConfig:
    """Where to listen and whom to believe.

    ``communities`` are hidden from ``repr`` because a v1/v2c community is the only
    secret those versions have.  ``engine_id`` fixes the receiver's own snmpEngineID
    (hex); without it pysnmp makes one up per start, which is fine for informs since
    senders discover it.  ``mib_dirs`` name folders of pysnmp-compiled MIB modules
    (``mibdump`` output) used to name the varbinds of vendor traps.
    """

    host: str = "127.0.0.1"
    port: int = 1162
    communities: list[str] = field(default_factory=lambda: ["public"], repr=False)
    v3_users: list[SnmpV3User] = field(default_factory=list)
    engine_id: str | None = None
    mib_dirs: list[str] = field(default_factory=list)
    rcvbuf: int = 4 * 1024 * 1024

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"snmp port: {self.port} is not a UDP port number")
        if not self.host:
            raise ValueError("snmp host: must not be empty")
        if any(not c for c in self.communities):
            raise ValueError("snmp communities: an empty community is not allowed")
        names = [u.name for u in self.v3_users]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"snmp v3 users: duplicate name(s) {', '.join(dupes)}")
        if self.engine_id is not None:
            parse_engine_id(self.engine_id, "snmp engine_id")


@dataclass(slots=True)
class SnmpTrapStats:
    """Counters of one receiver, monotonic for its lifetime (Prometheus counters).

    ``received``: notifications accepted and turned into events; ``rejected_community``:
    v1/v2c messages with a community not configured; ``rejected_v3``: v3 messages dropped
    for an unknown user or engine ID, a wrong digest, a decryption error or a security
    level below the user's (engine ID discovery probes are not rejections);
    ``sink_errors``: batches the sink raised on (those events are lost); ``dropped``:
    traps thrown away because the sink fell ``queue_size`` traps behind, plus datagrams the
    kernel dropped because the socket's buffer was full (``kernel_dropped``, read from
    /proc/net/udp); ``garbage``: datagrams that are not SNMP at all.
    """

    received: int = 0
    rejected_community: int = 0
    rejected_v3: int = 0
    sink_errors: int = 0
    dropped: int = 0
    kernel_dropped: int = 0
    garbage: int = 0


# ---------------------------------------------------------------- mapping

_SNMP_TRAPS = "1.3.6.1.6.3.1.1.5"
_COLD_START = f"{_SNMP_TRAPS}.1"
_WARM_START = f"{_SNMP_TRAPS}.2"
_LINK_DOWN = f"{_SNMP_TRAPS}.3"
_LINK_UP = f"{_SNMP_TRAPS}.4"
_AUTH_FAILURE = f"{_SNMP_TRAPS}.5"

_SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
_TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
_TRAP_ENTERPRISE = "1.3.6.1.6.3.1.1.4.3.0"
_TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
_TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"

_ALERTNAMES = {
    _COLD_START: "ColdStart",
    _WARM_START: "WarmStart",
    _LINK_DOWN: "LinkDown",
    _LINK_UP: "LinkUp",
    _AUTH_FAILURE: "AuthenticationFailure",
}

# Varbinds that describe the notification itself rather than the managed object; as
# labels they would split one alert into many identities (sysUpTime changes every time)
# or leak a secret (the community RFC 3584 copies into v1 traps).
_ENVELOPE = {_SYS_UPTIME, _TRAP_OID, _TRAP_ENTERPRISE, _TRAP_ADDRESS, _TRAP_COMMUNITY}

# pysnmp ships no IF-MIB (and Debian no IETF MIB sources), yet linkDown/linkUp carry
# IF-MIB objects; these few names keep the contract's labels right without a MIB file.
_IF_TABLE = "1.3.6.1.2.1.2.2.1"
_IFX_TABLE = "1.3.6.1.2.1.31.1.1.1"
_IF_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
              7: "lowerLayerDown"}
_IF_COLUMNS: dict[str, tuple[str, dict[int, str] | None]] = {
    f"{_IF_TABLE}.1": ("ifIndex", None),
    f"{_IF_TABLE}.2": ("ifDescr", None),
    f"{_IF_TABLE}.3": ("ifType", None),
    f"{_IF_TABLE}.4": ("ifMtu", None),
    f"{_IF_TABLE}.5": ("ifSpeed", None),
    f"{_IF_TABLE}.6": ("ifPhysAddress", None),
    f"{_IF_TABLE}.7": ("ifAdminStatus", {1: "up", 2: "down", 3: "testing"}),
    f"{_IF_TABLE}.8": ("ifOperStatus", _IF_STATUS),
    f"{_IF_TABLE}.9": ("ifLastChange", None),
    f"{_IFX_TABLE}.1": ("ifName", None),
    f"{_IFX_TABLE}.15": ("ifHighSpeed", None),
    f"{_IFX_TABLE}.18": ("ifAlias", None),
}
_KNOWN_TRAP_NAMES = {_LINK_DOWN: "IF-MIB::linkDown", _LINK_UP: "IF-MIB::linkUp"}

_PRINTABLE = set(string.printable) - set("\x0b\x0c")


@dataclass(slots=True)
class _Varbind:
    oid: str
    name: str | None
    index: str
    value: str


def _dotted(oid: Any) -> str:
    if isinstance(oid, str):
        return oid.strip().lstrip(".")
    if isinstance(oid, tuple):
        return ".".join(str(int(x)) for x in oid)
    if isinstance(oid, smi_types.ObjectIdentity):
        return str(oid.get_oid())
    return str(oid)


def _text(value: Any) -> str:
    """A label-friendly rendering: text stays text, binary becomes hex."""
    if isinstance(value, bytes | bytearray):
        try:
            decoded = bytes(value).decode().rstrip("\x00")
        except UnicodeDecodeError:
            return "0x" + bytes(value).hex()
        if all(ch in _PRINTABLE for ch in decoded):
            return decoded
        return "0x" + bytes(value).hex()
    if isinstance(value, proto_types.OctetString) and not isinstance(value, proto_types.IpAddress):
        return _text(value.asOctets())
    if isinstance(value, Asn1Item) and hasattr(value, "prettyPrint"):
        return str(value.prettyPrint())
    return str(value)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _resolve(oid: str, value: Any, view: mib_view.MibViewController | None) -> _Varbind:
    prefix, _, index = oid.rpartition(".")
    if prefix in _IF_COLUMNS:
        name, enum = _IF_COLUMNS[prefix]
        number = _int_or_none(value) if enum else None
        if number is not None and enum and number in enum:
            rendered = enum[number]
        elif name == "ifPhysAddress" and isinstance(value, bytes | proto_types.OctetString):
            raw = value.asOctets() if isinstance(value, proto_types.OctetString) else value
            rendered = ":".join(f"{b:02x}" for b in raw)
        else:
            rendered = _text(value)
        return _Varbind(oid, name, index, rendered)
    if view is not None:
        try:
            obj = smi_types.ObjectType(smi_types.ObjectIdentity(oid), value).resolve_with_mib(view)
            identity = obj[0]
            scalar, column = view.mibBuilder.import_symbols("SNMPv2-SMI", "MibScalar", "MibTableColumn")
            if isinstance(identity.get_mib_node(), scalar | column):
                _, symbol, indices = identity.get_mib_symbol()
                idx = ".".join(_text(i) for i in indices)
                return _Varbind(oid, str(symbol), idx, _text(obj[1]))
        except (SmiError, ValueError, TypeError):
            log.debug("snmp: cannot resolve %s with the MIBs at hand", oid, exc_info=True)
    return _Varbind(oid, None, "", _text(value))


def _trap_name(trap_oid: str, view: mib_view.MibViewController | None) -> str:
    if trap_oid in _KNOWN_TRAP_NAMES:
        return _KNOWN_TRAP_NAMES[trap_oid]
    if view is not None:
        try:
            identity = smi_types.ObjectIdentity(trap_oid).resolve_with_mib(view)
            module, symbol, indices = identity.get_mib_symbol()
            if not indices:
                return f"{module}::{symbol}"
        except (SmiError, ValueError, TypeError):
            log.debug("snmp: cannot name trap %s", trap_oid, exc_info=True)
    return trap_oid


def _agent_address(envelope: dict[str, Any], sender: str) -> str:
    """The originating agent: RFC 3584's snmpTrapAddress (v1 agent-addr) if usable."""
    raw = envelope.get(_TRAP_ADDRESS)
    if raw is not None:
        text = _text(raw)
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return sender
        if not addr.is_unspecified:
            return str(addr)
    return sender


def trap_to_events(
    varbinds: Sequence[tuple[object, object]],
    *,
    sender: str,
    received_at: datetime,
    snmp_version: str | None = None,
    mib: mib_view.MibViewController | None = None,
) -> list[Event]:
    """Map one notification's varbinds to normalized events (docs/events.md).

    ``varbinds`` are SNMPv2 notification varbinds (pysnmp converts v1 traps per RFC 3584):
    ``sysUpTime.0``, ``snmpTrapOID.0`` then the objects.  OIDs may be pysnmp objects,
    tuples or dotted strings; values pysnmp/pyasn1 objects or plain Python values.
    ``sender`` is the UDP source address, used unless a v1 agent-addr
    (``snmpTrapAddress.0``) names the agent.  Labels carry only what identifies the
    problem; the rest of the varbinds goes to annotations, so a repeat of the same trap
    is the same identity.
    """
    envelope: dict[str, Any] = {}
    objects: list[tuple[str, Any]] = []
    for oid, value in varbinds:
        dotted = _dotted(oid)
        if dotted in _ENVELOPE:
            envelope[dotted] = value
        else:
            objects.append((dotted, value))
    if _TRAP_OID not in envelope:
        log.warning("snmp: notification from %s without snmpTrapOID.0 ignored", sender)
        return []
    view = mib if mib is not None else build_mib_view()
    trap_oid = _dotted(envelope[_TRAP_OID])
    alertname = _ALERTNAMES.get(trap_oid, "SnmpTrap")
    agent = _agent_address(envelope, sender)
    trap_name = _trap_name(trap_oid, view)
    resolved = [_resolve(oid, value, view) for oid, value in objects]

    labels = {"alertname": alertname, "snmp_agent": agent}
    annotations = {"trap": trap_name}
    if snmp_version:
        annotations["snmp_version"] = snmp_version
    if _SYS_UPTIME in envelope:
        annotations["sysUpTime"] = _text(envelope[_SYS_UPTIME])
    if _TRAP_ENTERPRISE in envelope:
        annotations["enterprise"] = _dotted(envelope[_TRAP_ENTERPRISE])

    if alertname in ("LinkDown", "LinkUp"):
        _link_labels(resolved, labels, annotations)
        if_name = labels.get("ifDescr") or annotations.get("ifName")
        what = f"interface {labels.get('ifIndex', '?')}" + (f" ({if_name})" if if_name else "")
        state = "down" if alertname == "LinkDown" else "up"
        annotations["summary"] = f"SNMP agent {agent}: {what} is {state}"
    else:
        labels["trap_oid"] = trap_oid
        _object_labels(resolved, labels)
        summaries = {
            "ColdStart": f"SNMP agent {agent} restarted (coldStart)",
            "WarmStart": f"SNMP agent {agent} reinitialized (warmStart)",
            "AuthenticationFailure": f"SNMP agent {agent} saw a request that failed authentication",
        }
        annotations["summary"] = summaries.get(alertname, f"SNMP trap {trap_name} from {agent}")

    resolved_status = alertname == "LinkUp"
    return [
        Event(
            labels=labels,
            source="snmp",
            status="resolved" if resolved_status else "firing",
            annotations=annotations,
            starts_at=received_at,
            ends_at=received_at if resolved_status else None,
            observed_at=received_at,
        )
    ]


def _link_labels(resolved: list[_Varbind], labels: dict[str, str], annotations: dict[str, str]) -> None:
    """Contract labels of a linkDown/linkUp; the other varbinds become annotations."""
    for vb in resolved:
        if vb.name in ("ifIndex", "ifDescr", "ifOperStatus") and vb.name not in labels:
            labels[vb.name] = vb.value
        else:
            annotations.setdefault(vb.name or vb.oid, vb.value)
    if "ifIndex" not in labels:
        # RFC 2863 allows agents to omit ifIndex: the instance of any ifTable column says it.
        for vb in resolved:
            if vb.name and vb.oid.startswith((_IF_TABLE + ".", _IFX_TABLE + ".")) and vb.index.isdigit():
                labels["ifIndex"] = vb.index
                break


def _object_labels(resolved: list[_Varbind], labels: dict[str, str]) -> None:
    names = [vb.name for vb in resolved if vb.name]
    for vb in resolved:
        if vb.name is None:
            key = vb.oid
        elif names.count(vb.name) > 1 and vb.index:
            key = f"{vb.name}.{vb.index}"
        else:
            key = vb.name
        if key not in labels:
            labels[key] = vb.value


@functools.lru_cache(maxsize=8)
def build_mib_view(mib_dirs: tuple[str, ...] = ()) -> mib_view.MibViewController:
    """A MIB view over pysnmp's bundled MIBs plus compiled modules in ``mib_dirs``.

    Cached because loading MIB modules costs a fraction of a second, too slow per trap.
    """
    mibs = mib_builder.MibBuilder()
    if mib_dirs:
        mibs.add_mib_sources(*(mib_builder.DirMibSource(d) for d in mib_dirs))
    mibs.load_modules()
    return mib_view.MibViewController(mibs)


# ---------------------------------------------------------------- receiver

_VERSIONS = {0: "v1", 1: "v2c", 3: "v3"}
_IGNORED_V3_FAILURES = (errind.UnknownEngineID,)


class SnmpTrapReceiver:
    """Listens for SNMP notifications on UDP and feeds their events to ``sink``.

    Use ``async with SnmpTrapReceiver(cfg, sink):`` or ``await start()`` / ``await stop()``
    inside the running loop.  Events are delivered one trap per sink call, in arrival
    order, by a single worker task, so a slow sink delays but never reorders a linkDown
    and its linkUp.  Informs are acknowledged by pysnmp when they arrive, before the
    sink has stored them.  The sink is called once per trap; a sink that returns nothing
    instead of an awaitable (a plain function) is accepted too.
    """

    def __init__(
        self,
        config: SnmpTrapConfig,
        sink: EventSink,
        *,
        clock: Callable[[], datetime] = utcnow,
        queue_size: int = 10000,
    ) -> None:
        self.config = config
        self.stats = SnmpTrapStats()
        self._sink = sink
        self._clock = clock
        self._queue: asyncio.Queue[list[Event]] = asyncio.Queue(maxsize=queue_size)
        self._users = {u.name: u for u in config.v3_users}
        self._engine: snmp_engine.SnmpEngine | None = None
        self._receiver: ntfrcv.NotificationReceiver | None = None
        self._worker: asyncio.Task[None] | None = None
        self._address: tuple[str, int] | None = None
        self._mib: mib_view.MibViewController | None = None
        self._kernel: snmpsocket.KernelDrops | None = None
        self._kernel_base = 0
        self._watch: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port): the real port when the config asked for port 0."""
        if self._address is None:
            raise RuntimeError("the SNMP trap receiver is not started")
        return self._address

    @property
    def engine_id(self) -> str:
        """The receiver's snmpEngineID in hex, what v3 inform senders authenticate to."""
        if self._engine is None:
            raise RuntimeError("the SNMP trap receiver is not started")
        return bytes(self._engine.snmpEngineID.asOctets()).hex()

    def register(self, scheduler: Scheduler) -> None:
        """Nothing to schedule: the receiver is a listener (the Collector protocol's method)."""

    async def __aenter__(self) -> SnmpTrapReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Bind the UDP port and begin accepting; raises OSError if the port is taken."""
        if self._engine is not None:
            raise RuntimeError("the SNMP trap receiver is already started")
        cfg = self.config
        self._mib = build_mib_view(tuple(cfg.mib_dirs))
        sock = await self._bind(cfg.host, cfg.port)
        try:
            engine_id = (
                proto_types.OctetString(parse_engine_id(cfg.engine_id, "snmp engine_id"))
                if cfg.engine_id
                else None
            )
            engine = snmp_engine.SnmpEngine(snmpEngineID=engine_id)
            self._configure_security(engine)
            self._engine = engine
            snmpsocket.size_buffer(sock, cfg.rcvbuf)
            self._kernel = snmpsocket.KernelDrops(sock)
            self._kernel_base = self._kernel.read()
            if sock.family == socket.AF_INET6:
                transport: Any = snmpsocket.GuardedUdp6()
                transport.on_garbage, transport.parse_errors = self._on_garbage, self._parse_errors
                transport = transport.open_server_mode(sock=sock)
                snmp_config.add_transport(engine, udp6.DOMAIN_NAME, transport)
            else:
                transport = snmpsocket.GuardedUdp()
                transport.on_garbage, transport.parse_errors = self._on_garbage, self._parse_errors
                transport = transport.open_server_mode(sock=sock)
                snmp_config.add_transport(engine, udp.DOMAIN_NAME, transport)
            # open_server_mode only schedules the endpoint; wait so traps sent right
            # after start() are not lost.
            pending = getattr(transport, "_lport", None)
            if isinstance(pending, asyncio.Future):
                await pending
            engine.observer.register_observer(
                self._on_security_failure,
                "rfc2576.prepareDataElements:sm-failure",
                "rfc3412.prepareDataElements:sm-failure",
            )
            self._receiver = ntfrcv.NotificationReceiver(engine, self._on_notification)
        except BaseException:
            sock.close()
            self._teardown_engine()
            raise
        host, port = sock.getsockname()[:2]
        self._address = (host, port)
        self._worker = asyncio.create_task(self._deliver(), name="snmptrap-sink")
        self._watch = asyncio.create_task(self._watch_kernel(), name="snmptrap-kernel-drops")
        log.info("snmp: listening for traps on %s:%d (engine id %s)", host, port, self.engine_id)

    async def stop(self, drain_timeout: float = 10.0) -> None:
        """Stop listening, then give the sink up to ``drain_timeout`` s for queued traps."""
        if self._engine is None:
            return
        self._teardown_engine()
        if self._watch is not None:
            self._watch.cancel()
            await asyncio.gather(self._watch, return_exceptions=True)
            self._watch = None
        worker, self._worker = self._worker, None
        if worker is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout=drain_timeout)
        except TimeoutError:
            log.error("snmp: sink did not take %d queued trap(s) in time; they are lost",
                      self._queue.qsize())
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)

    def _teardown_engine(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        if self._receiver is not None:
            self._receiver.close(engine)
            self._receiver = None
        engine.observer.unregister_observer(self._on_security_failure)
        if engine.transport_dispatcher is not None:
            engine.close_dispatcher()

    @staticmethod
    async def _bind(host: str, port: int) -> socket.socket:
        """Bind ourselves so a taken port fails start() instead of a background task."""
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        if not infos:
            raise OSError(f"cannot resolve SNMP listen host {host!r}")
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind(addr)
        except BaseException:
            sock.close()
            raise
        return sock

    def _configure_security(self, engine: snmp_engine.SnmpEngine) -> None:
        needs_crypto = any(u.priv_protocol for u in self.config.v3_users)
        if needs_crypto and (aes_priv.PysnmpCryptoError or des_priv.PysnmpCryptoError):
            # Without it pysnmp accepts the config and then drops every encrypted trap.
            raise RuntimeError("SNMPv3 privacy (AES/DES) needs the 'cryptography' package (>= 43)")
        for i, community in enumerate(self.config.communities):
            snmp_config.add_v1_system(engine, f"watcher-c{i}", community)
        for user in self.config.v3_users:
            auth = AUTH_PROTOCOLS[user.auth_protocol] if user.auth_protocol else snmp_config.USM_AUTH_NONE
            priv = PRIV_PROTOCOLS[user.priv_protocol] if user.priv_protocol else snmp_config.USM_PRIV_NONE
            keys: dict[str, Any] = {"authProtocol": auth, "privProtocol": priv}
            if user.auth_key:
                keys["authKey"] = user.auth_key
            if user.priv_key:
                keys["privKey"] = user.priv_key
            # Our own engine ID: informs, where we are authoritative.
            snmp_config.add_v3_user(engine, user.name, **keys)
            if user.engine_id:
                sender = proto_types.OctetString(parse_engine_id(user.engine_id, "engine_id"))
                snmp_config.add_v3_user(engine, user.name, securityEngineId=sender, **keys)

    def _on_security_failure(
        self, engine: Any, execpoint: str, variables: dict[str, Any], ctx: Any
    ) -> None:
        status = variables.get("statusInformation") or {}
        indication = status.get("errorIndication") if hasattr(status, "get") else None
        peer = _peer_host(variables.get("transportAddress"))
        if execpoint.startswith("rfc2576."):
            self.stats.rejected_community += 1
            log.info("snmp: dropped a v1/v2c message from %s: %s", peer, indication)
            return
        if isinstance(indication, _IGNORED_V3_FAILURES):
            return
        self.stats.rejected_v3 += 1
        log.info("snmp: dropped a v3 message from %s: %s", peer, indication)

    def _on_notification(
        self,
        engine: Any,
        state_reference: Any,
        context_engine_id: Any,
        context_name: Any,
        varbinds: Sequence[tuple[Any, Any]],
        ctx: Any,
    ) -> None:
        received_at = self._clock()
        try:
            request = engine.observer.get_execution_context("rfc3412.receiveMessage:request")
        except KeyError:
            request = {}
        mp_model = request.get("messageProcessingModel")
        peer = _peer_host(request.get("transportAddress"))
        if mp_model == 3 and not self._v3_level_ok(request):
            return
        try:
            events = trap_to_events(
                varbinds,
                sender=peer,
                received_at=received_at,
                snmp_version=_VERSIONS.get(int(mp_model)) if mp_model is not None else None,
                mib=self._mib,
            )
        except Exception:
            log.exception("snmp: cannot map a trap from %s; it is dropped", peer)
            return
        if not events:
            return
        self.stats.received += 1
        try:
            self._queue.put_nowait(events)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            log.error("snmp: sink is %d traps behind; a trap from %s is dropped",
                      self._queue.maxsize, peer)

    def _on_garbage(self, address: Any, exc: BaseException | None) -> None:
        """A datagram pysnmp could not decode: counted, one debug line, no traceback."""
        self.stats.garbage += 1
        log.debug("snmp: not an SNMP message from %s (%s)", _peer_host(address),
                  type(exc).__name__ if exc else "unparseable")

    def _parse_errors(self) -> int:
        """pysnmp's own counts of datagrams it dropped as undecodable or of an unknown version."""
        if self._engine is None:
            return 0
        builder = self._engine.message_dispatcher.mib_instrum_controller.get_mib_builder()
        parse, versions = builder.import_symbols("__SNMPv2-MIB", "snmpInASNParseErrs", "snmpInBadVersions")
        return int(parse.syntax) + int(versions.syntax)

    def count_kernel_drops(self) -> int:
        """Add what the kernel dropped since the last look to ``dropped``; the new drops."""
        if self._kernel is None:
            return 0
        total = self._kernel.read() - self._kernel_base
        new = max(0, total - self.stats.kernel_dropped)
        if new:
            self.stats.kernel_dropped += new
            self.stats.dropped += new
            log.warning("snmp: the kernel dropped %d trap(s): the receive buffer was full", new)
        return new

    async def _watch_kernel(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            self.count_kernel_drops()

    def _v3_level_ok(self, request: dict[str, Any]) -> bool:
        """Refuse v3 traps below the user's configured security level.

        pysnmp checks the level only where it is authoritative (informs); for traps it
        would accept a noAuthNoPriv message that merely names a configured user.
        """
        name = _text(request.get("securityName", b""))
        user = self._users.get(name)
        level = _int_or_none(request.get("securityLevel")) or 0
        if user is not None and level >= user.security_level:
            return True
        self.stats.rejected_v3 += 1
        log.info("snmp: dropped a v3 trap from %s: user %r at security level %d",
                 _peer_host(request.get("transportAddress")), name, level)
        return False

    async def _deliver(self) -> None:
        while True:
            events = await self._queue.get()
            try:
                result = self._sink(events)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                self.stats.sink_errors += 1
                log.exception("snmp: the event sink failed; %d event(s) lost", len(events))
            finally:
                self._queue.task_done()


def _peer_host(address: Any) -> str:
    if isinstance(address, tuple) and address:
        return str(address[0])
    return "unknown"
