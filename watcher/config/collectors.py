"""Settings of watcher's own collectors: the ``collectors:`` and ``snmp:`` sections of watcher.yaml.

Parsed strictly here, once, into frozen typed objects, so that a collector is built from
settings that are known to be valid and a mistake is reported by ``watcher check`` with
its file, line and key.  The types are plain data (no sockets, no pysnmp): the collectors
in ``watcher.collectors`` import them, never the other way round.  The ``mail:`` section
has its own module (``watcher.config.mail``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from watcher.config.secrets import secret_setting
from watcher.config.yamlload import Reader

__all__ = ["AUTH_PROTOCOL_NAMES", "PRIV_PROTOCOL_NAMES", "AuthProtocol", "CertificateSettings", "CollectorsConfig",
           "PrivProtocol", "SnmpConfig", "SnmpDevice", "SnmpV3User", "load_collectors", "load_snmp",
           "parse_engine_id"]

AuthProtocol = Literal["SHA", "SHA256", "MD5"]
PrivProtocol = Literal["AES", "AES256", "DES"]
AUTH_PROTOCOL_NAMES: tuple[AuthProtocol, ...] = ("MD5", "SHA", "SHA256")
PRIV_PROTOCOL_NAMES: tuple[PrivProtocol, ...] = ("DES", "AES", "AES256")

# RFC 3414 2.6: pass phrases shorter than this give keys too weak to be allowed.
_MIN_KEY_LENGTH = 8


def parse_engine_id(value: str, what: str) -> bytes:
    """An snmpEngineID written in hex (``0x``, colons allowed) as bytes; ValueError naming ``what``."""
    text = value.strip().lower()
    text = text.removeprefix("0x").replace(":", "")
    try:
        raw = bytes.fromhex(text)
    except ValueError as exc:
        raise ValueError(f"{what}: {value!r} is not a hex string") from exc
    if not 5 <= len(raw) <= 32:
        raise ValueError(f"{what}: an SNMP engine ID has 5 to 32 octets, {value!r} has {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class SnmpV3User:
    """One USM user allowed to send v3 traps and informs.

    ``engine_id`` is the *sender's* snmpEngineID (hex).  A v3 trap is authenticated with
    keys localized to the sender's engine, so the receiver must know that engine ID in
    advance (net-snmp: ``snmptrap -e ENGINEID``).  Informs are authenticated against the
    receiver's own engine ID, which senders discover, so they need no ``engine_id``.
    """

    name: str
    auth_protocol: AuthProtocol | None = None
    auth_key: str | None = field(default=None, repr=False)
    priv_protocol: PrivProtocol | None = None
    priv_key: str | None = field(default=None, repr=False)
    engine_id: str | None = None

    def __post_init__(self) -> None:
        where = f"snmp v3 user {self.name!r}"
        if not self.name:
            raise ValueError("snmp v3 user: name must not be empty")
        if self.auth_protocol is not None and self.auth_protocol not in AUTH_PROTOCOL_NAMES:
            raise ValueError(f"{where}: auth_protocol must be one of {', '.join(AUTH_PROTOCOL_NAMES)}")
        if self.priv_protocol is not None and self.priv_protocol not in PRIV_PROTOCOL_NAMES:
            raise ValueError(f"{where}: priv_protocol must be one of {', '.join(PRIV_PROTOCOL_NAMES)}")
        if self.priv_protocol is not None and self.auth_protocol is None:
            raise ValueError(f"{where}: privacy needs authentication (set auth_protocol)")
        for proto, key, what in (
            (self.auth_protocol, self.auth_key, "auth_key"),
            (self.priv_protocol, self.priv_key, "priv_key"),
        ):
            if proto is not None and (key is None or len(key) < _MIN_KEY_LENGTH):
                raise ValueError(f"{where}: {what} must have at least {_MIN_KEY_LENGTH} characters")
        if self.engine_id is not None:
            parse_engine_id(self.engine_id, f"{where}: engine_id")

    @property
    def security_level(self) -> int:
        """RFC 3411 securityLevel the user's messages must at least have (1, 2 or 3)."""
        if self.priv_protocol is not None:
            return 3
        return 2 if self.auth_protocol is not None else 1



@dataclass(frozen=True, slots=True)
class SnmpDevice:
    """One device to poll.

    ``version`` is ``"2c"`` (with ``community``, hidden from ``repr``) or ``"3"`` (with
    ``v3_user``; its ``engine_id``, if set, is the *agent's* snmpEngineID and spares
    the discovery round trip).  ``site``/``client`` become labels of every event.
    ``host`` names the device in ``HostOutOfDiskSpace`` (default: the address).
    ``interfaces`` limits the watched interfaces to these ifIndex numbers (int) or
    ifDescr strings (every row with that ifDescr); by default every interface that is
    administratively up is watched.  ``storage_threshold`` is the used fraction of a
    fixed disk above which it fires.  ``timeout`` (seconds per request) and ``retries``
    decide how soon a silent device counts as unreachable: after
    ``timeout * (retries + 1)``.
    """

    address: str
    port: int = 161
    version: Literal["2c", "3"] = "2c"
    community: str | None = field(default="public", repr=False)
    v3_user: SnmpV3User | None = None
    site: str | None = None
    client: str | None = None
    host: str | None = None
    interfaces: tuple[int | str, ...] | None = None
    storage_threshold: float = 0.9
    timeout: float = 2.0
    retries: int = 1

    def __post_init__(self) -> None:
        where = f"snmp device {self.address!r}"
        if not self.address or not self.address.strip():
            raise ValueError("snmp device: address must not be empty")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 1 <= self.port <= 65535:
            raise ValueError(f"{where}: port {self.port!r} is not a UDP port number")
        if self.version not in ("2c", "3"):
            raise ValueError(f"{where}: version must be '2c' or '3', got {self.version!r}")
        if self.version == "2c" and not self.community:
            raise ValueError(f"{where}: SNMP v2c needs a community")
        if self.version == "3" and self.v3_user is None:
            raise ValueError(f"{where}: SNMP v3 needs a v3_user")
        if self.interfaces is not None:
            object.__setattr__(self, "interfaces", tuple(self.interfaces))  # a list from a caller is fine
            for entry in self.interfaces:
                if isinstance(entry, bool) or not isinstance(entry, int | str) or \
                        (isinstance(entry, int) and entry < 1) or (isinstance(entry, str) and not entry):
                    raise ValueError(f"{where}: interfaces: {entry!r} is neither an ifIndex (a positive "
                                     "integer) nor an ifDescr (a non-empty string)")
        threshold = self.storage_threshold
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 < threshold <= 1:
            raise ValueError(f"{where}: storage_threshold must be a fraction in (0, 1], got {threshold!r}")
        if isinstance(self.timeout, bool) or not isinstance(self.timeout, int | float) or self.timeout <= 0:
            raise ValueError(f"{where}: timeout must be a positive number of seconds")
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"{where}: retries must be a non-negative integer")

    @property
    def key(self) -> str:
        """``address:port`` (``[v6]:port``), unique within a poller; names its scheduler job."""
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    def labels(self) -> dict[str, str]:
        """The labels every event of this device carries."""
        labels = {"snmp_agent": self.address}
        if self.client:
            labels["client"] = self.client
        if self.site:
            labels["site"] = self.site
        return labels



@dataclass(frozen=True)
class CertificateSettings:
    """``collectors.certificates``: TLS expiry of the sites' https probes (watcher.collectors.certificates)."""

    warn_before: float = 21 * 86400.0
    interval: float = 6 * 3600.0
    timeout: float = 10.0


def _certificates(r: Reader | None) -> CertificateSettings | None:
    if r is None:
        return None
    r.check_keys({"warn_before", "interval", "timeout"})
    settings = CertificateSettings(r.duration("warn_before", 21 * 86400.0), r.duration("interval", 6 * 3600.0),
                                   r.duration("timeout", 10.0))
    for key in ("interval", "timeout"):
        if getattr(settings, key) < 0.1:
            r.fail(key, "must be at least 0.1s")
    return settings


@dataclass(frozen=True)
class CollectorsConfig:
    """watcher's own eyes; off unless watcher.yaml turns them on (they reach out to the network)."""

    probes: bool = False
    disk: bool = False
    disk_interval: float = 300.0
    max_concurrency: int = 32
    snmp_devices: tuple[SnmpDevice, ...] = ()
    snmp_interval: float = 60.0
    certificates: CertificateSettings | None = None


@dataclass(frozen=True)
class SnmpConfig:
    """The SNMP trap receiver: where it listens (None: off) and whom it believes."""

    listen: str | None = "127.0.0.1:1162"
    communities: tuple[str, ...] = field(default=("public",), repr=False)
    v3_users: tuple[SnmpV3User, ...] = ()
    rcvbuf: int = 4 * 1024 * 1024  # bytes of kernel receive buffer asked for the trap socket


_V3_KEYS = {"name", "auth_protocol", "auth_key", "priv_protocol", "priv_key", "engine_id"}


def _v3_user(ur: Reader) -> SnmpV3User | None:
    """One USM user; its keys may be ``env:``/``file:`` references.  None (the mistake recorded)
    when ``watcher check`` collects every error of the file."""
    ur.check_keys(_V3_KEYS)
    values = {k: (secret_setting(ur, k) if k.endswith("_key") else ur.text(k)) for k in ur.data}
    try:
        return SnmpV3User(**values)  # type: ignore[arg-type]  # the protocol names are checked by SnmpV3User
    except (TypeError, ValueError) as exc:
        return ur.soft(None, str(exc), None)


def _interfaces(r: Reader) -> tuple[int | str, ...] | None:
    value = r.raw("interfaces")
    if value is None:
        return None
    if not isinstance(value, list):
        r.fail("interfaces", "expected a list of ifIndex numbers or ifDescr names")
    return tuple(value)


def _snmp_device(r: Reader) -> SnmpDevice | None:
    """One polled SNMP device; its own validation errors are reported at its place in the file
    (and the device left out, when ``watcher check`` collects every error of the file)."""
    r.check_keys({"address", "port", "version", "community", "v3_user", "site", "client", "host", "interfaces",
                  "storage_threshold", "timeout", "retries"})
    ur = r.child("v3_user")
    user = _v3_user(ur) if ur is not None else None
    if ur is not None and user is None:
        return None
    version = r.text("version", "2c")
    if version not in ("2c", "3"):
        return r.soft("version", f"must be '2c' or '3', got {version!r}", None)
    try:
        return SnmpDevice(address=r.text("address", required=True), port=r.integer("port", 161),
                          version="3" if version == "3" else "2c",
                          community=secret_setting(r, "community") or "public", v3_user=user,
                          site=r.opt_str("site"), client=r.opt_str("client"), host=r.opt_str("host"),
                          interfaces=_interfaces(r), storage_threshold=r.number("storage_threshold", 0.9),
                          timeout=r.duration("timeout", 2.0), retries=r.integer("retries", 1, minimum=0))
    except (TypeError, ValueError) as exc:
        return r.soft(None, str(exc), None)


def load_collectors(r: Reader | None) -> CollectorsConfig:
    """The ``collectors:`` section (all off without it)."""
    if r is None:
        return CollectorsConfig()
    r.check_keys({"probes", "disk", "disk_interval", "max_concurrency", "snmp_devices", "snmp_interval",
                  "certificates"})
    probes, disk = r.flag("probes", False), r.flag("disk", False)
    disk_interval, max_concurrency = r.duration("disk_interval", 300), r.integer("max_concurrency", 32, minimum=1)
    devices = tuple(d for d in (_snmp_device(dr) for dr in r.items("snmp_devices")) if d is not None)
    return CollectorsConfig(probes, disk, disk_interval, max_concurrency, devices, r.duration("snmp_interval", 60),
                            _certificates(r.child("certificates")))


def load_snmp(r: Reader | None) -> SnmpConfig:
    """The ``snmp:`` section: the trap receiver (on 127.0.0.1:1162 without it; ``listen: off`` stops it)."""
    if r is None:
        return SnmpConfig()
    r.check_keys({"listen", "communities", "v3_users", "rcvbuf"})
    listen = r.text("listen", "127.0.0.1:1162")
    users = tuple(u for u in (_v3_user(ur) for ur in r.items("v3_users")) if u is not None)
    return SnmpConfig(None if listen == "off" else listen, tuple(r.str_list("communities")) or ("public",),
                      users, r.integer("rcvbuf", 4 * 1024 * 1024, minimum=4096))
