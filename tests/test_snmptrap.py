"""SNMP trap receiver: the varbind mapping on its own, then real net-snmp senders.

The integration tests run net-snmp's ``snmptrap`` as asyncio subprocesses so the
receiver keeps serving on the test's loop while the sender waits (an inform only
returns 0 once the receiver has acknowledged it).
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pysnmp.proto import rfc1902 as p

from watcher.collectors.snmptrap import (
    SnmpTrapConfig,
    SnmpTrapReceiver,
    SnmpV3User,
    trap_to_events,
)
from watcher.model import Event

T0 = datetime(2026, 11, 2, 8, 15, 0, tzinfo=UTC)

SYS_UPTIME = "1.3.6.1.2.1.1.3.0"
TRAP_OID = "1.3.6.1.6.3.1.1.4.1.0"
TRAP_ADDRESS = "1.3.6.1.6.3.18.1.3.0"
TRAP_COMMUNITY = "1.3.6.1.6.3.18.1.4.0"
TRAP_ENTERPRISE = "1.3.6.1.6.3.1.1.4.3.0"
COLD_START = "1.3.6.1.6.3.1.1.5.1"
WARM_START = "1.3.6.1.6.3.1.1.5.2"
LINK_DOWN = "1.3.6.1.6.3.1.1.5.3"
LINK_UP = "1.3.6.1.6.3.1.1.5.4"
AUTH_FAILURE = "1.3.6.1.6.3.1.1.5.5"
IF_INDEX = "1.3.6.1.2.1.2.2.1.1"
IF_DESCR = "1.3.6.1.2.1.2.2.1.2"
IF_ADMIN = "1.3.6.1.2.1.2.2.1.7"
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
SYS_NAME = "1.3.6.1.2.1.1.5.0"


Varbinds = list[tuple[object, object]]


def link_varbinds(trap: str, index: int, oper: int, descr: str | None = "Gi0/1") -> Varbinds:
    vbs: Varbinds = [
        (p.ObjectName(SYS_UPTIME), p.TimeTicks(12345)),
        (p.ObjectName(TRAP_OID), p.ObjectIdentifier(trap)),
        (p.ObjectName(f"{IF_INDEX}.{index}"), p.Integer(index)),
        (p.ObjectName(f"{IF_ADMIN}.{index}"), p.Integer(1)),
        (p.ObjectName(f"{IF_OPER}.{index}"), p.Integer(oper)),
    ]
    if descr is not None:
        vbs.append((p.ObjectName(f"{IF_DESCR}.{index}"), p.OctetString(descr)))
    return vbs


def one(events: list[Event]) -> Event:
    assert len(events) == 1
    return events[0]


# ---------------------------------------------------------------- mapping


def test_link_down_is_a_firing_link_down_with_contract_labels() -> None:
    ev = one(trap_to_events(link_varbinds(LINK_DOWN, 3, 2), sender="192.0.2.1", received_at=T0))
    assert ev.source == "snmp"
    assert ev.status == "firing"
    assert ev.labels == {
        "alertname": "LinkDown",
        "snmp_agent": "192.0.2.1",
        "ifIndex": "3",
        "ifDescr": "Gi0/1",
        "ifOperStatus": "down",
    }
    assert ev.starts_at == ev.observed_at == T0
    assert ev.ends_at is None
    assert ev.annotations["ifAdminStatus"] == "up"
    assert ev.annotations["trap"] == "IF-MIB::linkDown"
    assert "192.0.2.1" in ev.annotations["summary"]
    assert "Gi0/1" in ev.annotations["summary"]


def test_link_up_resolves_on_the_same_agent_and_interface() -> None:
    down = one(trap_to_events(link_varbinds(LINK_DOWN, 3, 2), sender="192.0.2.1", received_at=T0))
    up = one(trap_to_events(link_varbinds(LINK_UP, 3, 1), sender="192.0.2.1", received_at=T0))
    assert up.labels["alertname"] == "LinkUp"
    assert up.status == "resolved"
    assert up.ends_at == T0
    assert up.labels["ifOperStatus"] == "up"
    for key in ("snmp_agent", "ifIndex", "ifDescr"):
        assert up.labels[key] == down.labels[key]


def test_a_repeated_trap_is_the_same_identity_despite_sys_uptime() -> None:
    first = link_varbinds(LINK_DOWN, 3, 2)
    again = [(oid, p.TimeTicks(99999)) if str(oid) == SYS_UPTIME else (oid, v) for oid, v in first]
    a = one(trap_to_events(first, sender="192.0.2.1", received_at=T0))
    b = one(trap_to_events(again, sender="192.0.2.1", received_at=T0))
    assert a.fingerprint == b.fingerprint
    assert "sysUpTime" not in a.labels
    assert a.annotations["sysUpTime"] == "12345"


def test_if_index_comes_from_the_column_instance_when_not_sent() -> None:
    vbs = [(SYS_UPTIME, 1), (TRAP_OID, LINK_DOWN), (f"{IF_ADMIN}.7", 1), (f"{IF_OPER}.7", 7)]
    ev = one(trap_to_events(vbs, sender="192.0.2.1", received_at=T0))
    assert ev.labels["ifIndex"] == "7"
    assert ev.labels["ifOperStatus"] == "lowerLayerDown"
    assert "ifDescr" not in ev.labels


def test_v1_agent_address_names_the_agent_and_the_community_stays_secret() -> None:
    vbs = [
        (SYS_UPTIME, p.TimeTicks(5)),
        (TRAP_OID, p.ObjectIdentifier(LINK_DOWN)),
        (TRAP_ADDRESS, p.IpAddress("192.0.2.7")),
        (TRAP_COMMUNITY, p.OctetString("s3cret-community")),
        (TRAP_ENTERPRISE, p.ObjectIdentifier("1.3.6.1.4.1.9")),
        (f"{IF_INDEX}.2", p.Integer(2)),
    ]
    ev = one(trap_to_events(vbs, sender="10.9.9.9", received_at=T0, snmp_version="v1"))
    assert ev.labels["snmp_agent"] == "192.0.2.7"
    assert ev.annotations["enterprise"] == "1.3.6.1.4.1.9"
    assert ev.annotations["snmp_version"] == "v1"
    assert "s3cret-community" not in repr(ev.to_dict())


def test_an_unspecified_agent_address_falls_back_to_the_sender() -> None:
    vbs = [(TRAP_OID, COLD_START), (TRAP_ADDRESS, p.IpAddress("0.0.0.0"))]
    ev = one(trap_to_events(vbs, sender="192.0.2.50", received_at=T0))
    assert ev.labels["snmp_agent"] == "192.0.2.50"


@pytest.mark.parametrize(
    ("trap", "alertname"),
    [(COLD_START, "ColdStart"), (WARM_START, "WarmStart"), (AUTH_FAILURE, "AuthenticationFailure")],
)
def test_generic_traps_have_their_own_alertnames(trap: str, alertname: str) -> None:
    ev = one(trap_to_events([(SYS_UPTIME, 1), (TRAP_OID, trap)], sender="192.0.2.1", received_at=T0))
    assert ev.labels == {"alertname": alertname, "snmp_agent": "192.0.2.1", "trap_oid": trap}
    assert ev.status == "firing"
    assert ev.annotations["summary"]


def test_other_traps_carry_their_varbinds_named_by_the_mib_or_by_oid() -> None:
    vbs = [
        (p.ObjectName(SYS_UPTIME), p.TimeTicks(1)),
        (p.ObjectName(TRAP_OID), p.ObjectIdentifier("1.3.6.1.4.1.99999.0.4")),
        (p.ObjectName(SYS_NAME), p.OctetString("krk-rtr1")),
        (p.ObjectName("1.3.6.1.4.1.99999.1.2.0"), p.Integer(42)),
        (p.ObjectName("1.3.6.1.4.1.99999.1.3.0"), p.OctetString(b"\x00\xff\x10")),
    ]
    ev = one(trap_to_events(vbs, sender="192.0.2.1", received_at=T0))
    assert ev.labels == {
        "alertname": "SnmpTrap",
        "snmp_agent": "192.0.2.1",
        "trap_oid": "1.3.6.1.4.1.99999.0.4",
        "sysName": "krk-rtr1",
        "1.3.6.1.4.1.99999.1.2.0": "42",
        "1.3.6.1.4.1.99999.1.3.0": "0x00ff10",
    }
    assert "1.3.6.1.4.1.99999.0.4" in ev.annotations["summary"]


def test_a_notification_without_trap_oid_gives_no_event() -> None:
    assert trap_to_events([(SYS_UPTIME, 1)], sender="192.0.2.1", received_at=T0) == []


def test_config_hides_secrets_and_rejects_bad_values() -> None:
    user = SnmpV3User("ops", "SHA", "auth-secret-1", "AES", "priv-secret-1", engine_id="0x8000000001020304")
    cfg = SnmpTrapConfig(communities=["community-secret"], v3_users=[user])
    text = repr(cfg)
    for secret in ("auth-secret-1", "priv-secret-1", "community-secret"):
        assert secret not in text
    assert user.security_level == 3
    with pytest.raises(ValueError, match="privacy needs authentication"):
        SnmpV3User("ops", None, None, "AES", "priv-secret-1")
    with pytest.raises(ValueError, match="at least 8"):
        SnmpV3User("ops", "SHA", "short")
    with pytest.raises(ValueError, match="engine_id"):
        SnmpV3User("ops", "SHA", "auth-secret-1", engine_id="zz")
    with pytest.raises(ValueError, match="duplicate"):
        SnmpTrapConfig(v3_users=[user, user])
    with pytest.raises(ValueError, match="port"):
        SnmpTrapConfig(port=70000)


async def test_start_fails_when_the_port_is_taken() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        cfg = SnmpTrapConfig(port=taken.getsockname()[1])
        receiver = SnmpTrapReceiver(cfg, lambda events: None)
        with pytest.raises(OSError):
            await receiver.start()
        await receiver.stop()


# ---------------------------------------------------------------- with net-snmp

SNMPTRAP = "/usr/bin/snmptrap"
needs_snmptrap = pytest.mark.skipif(
    not os.path.exists(SNMPTRAP), reason="net-snmp's snmptrap (Debian package 'snmp') is not installed"
)

SENDER_ENGINE = "8000000001020304"
V3_USER = SnmpV3User("watcher", "SHA", "auth-pass-123", "AES", "priv-pass-123", engine_id=SENDER_ENGINE)
V3_ARGS = ["-u", "watcher", "-l", "authPriv", "-a", "SHA", "-A", "auth-pass-123",
           "-x", "AES", "-X", "priv-pass-123"]
LINK_DOWN_ARGS = ["", LINK_DOWN, f"{IF_INDEX}.3", "i", "3", f"{IF_ADMIN}.3", "i", "1",
                  f"{IF_OPER}.3", "i", "2", f"{IF_DESCR}.3", "s", "eth3"]
LINK_UP_ARGS = ["", LINK_UP, f"{IF_INDEX}.3", "i", "3", f"{IF_ADMIN}.3", "i", "1",
                f"{IF_OPER}.3", "i", "1", f"{IF_DESCR}.3", "s", "eth3"]


WAIT = 5.0


class Collector:
    """A sink that lets a test wait for a number of trap deliveries."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self._changed = asyncio.Event()

    async def __call__(self, events: list[Event]) -> None:
        self.batches.append(events)
        self._changed.set()

    @property
    def events(self) -> list[Event]:
        return [ev for batch in self.batches for ev in batch]

    async def wait_for(self, count: int) -> list[Event]:
        async with asyncio.timeout(WAIT):
            while len(self.batches) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.events


Sender = Callable[..., Awaitable[tuple[int, str]]]


@pytest.fixture
def snmp(tmp_path: Path) -> Sender:
    """Run a net-snmp command isolated from the user's and the system's config."""

    async def run(*args: str) -> tuple[int, str]:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(tmp_path),
            "SNMPCONFPATH": str(tmp_path),
            "SNMP_PERSISTENT_DIR": str(tmp_path / "persist"),
            "MIBS": "",
        }
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        async with asyncio.timeout(30):
            _, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, err.decode(errors="replace")

    return run


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[SnmpTrapReceiver, Collector, str]]:
    sink = Collector()
    cfg = SnmpTrapConfig(host="127.0.0.1", port=0, communities=["public"], v3_users=[V3_USER])
    async with SnmpTrapReceiver(cfg, sink) as rcv:
        host, port = rcv.address
        yield rcv, sink, f"udp:{host}:{port}"


Receiver = tuple[SnmpTrapReceiver, Collector, str]


def assert_link_pair(events: list[Event], agent: str) -> None:
    down, up = events
    assert (down.labels["alertname"], down.status) == ("LinkDown", "firing")
    assert (up.labels["alertname"], up.status) == ("LinkUp", "resolved")
    for ev in events:
        assert ev.source == "snmp"
        assert ev.labels["snmp_agent"] == agent
        assert ev.labels["ifIndex"] == "3"
        assert ev.labels["ifDescr"] == "eth3"
    assert down.labels["ifOperStatus"] == "down"
    assert up.labels["ifOperStatus"] == "up"


@pytest.mark.integration
@needs_snmptrap
async def test_v2c_link_down_then_up(receiver: Receiver, snmp: Sender) -> None:
    rcv, sink, target = receiver
    assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, *LINK_DOWN_ARGS))[0] == 0
    assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, *LINK_UP_ARGS))[0] == 0
    events = await sink.wait_for(2)
    assert_link_pair(events, "127.0.0.1")
    assert events[0].annotations["snmp_version"] == "v2c"
    assert rcv.stats.received == 2


@pytest.mark.integration
@needs_snmptrap
async def test_v3_auth_priv_link_down_then_up(receiver: Receiver, snmp: Sender) -> None:
    rcv, sink, target = receiver
    for args in (LINK_DOWN_ARGS, LINK_UP_ARGS):
        rc, err = await snmp(SNMPTRAP, "-v3", "-e", f"0x{SENDER_ENGINE}", *V3_ARGS, target, *args)
        assert rc == 0, err
    events = await sink.wait_for(2)
    assert_link_pair(events, "127.0.0.1")
    assert events[0].annotations["snmp_version"] == "v3"
    assert rcv.stats.rejected_v3 == 0


@pytest.mark.integration
@needs_snmptrap
async def test_informs_are_acknowledged_and_delivered(receiver: Receiver, snmp: Sender) -> None:
    rcv, sink, target = receiver
    rc, err = await snmp(SNMPTRAP, "-Ci", "-r", "1", "-v2c", "-c", "public", target, "", COLD_START)
    assert rc == 0, err
    # v3 informs authenticate to the receiver's engine ID, which snmptrap discovers.
    rc, err = await snmp(SNMPTRAP, "-Ci", "-r", "1", "-v3", *V3_ARGS, target, *LINK_DOWN_ARGS)
    assert rc == 0, err
    cold, down = await sink.wait_for(2)
    assert cold.labels["alertname"] == "ColdStart"
    assert down.labels["alertname"] == "LinkDown"
    assert rcv.stats.rejected_v3 == 0


@pytest.mark.integration
@needs_snmptrap
async def test_v1_trap_names_the_agent_address(receiver: Receiver, snmp: Sender) -> None:
    _, sink, target = receiver
    rc, err = await snmp(
        SNMPTRAP, "-v1", "-c", "public", target, "1.3.6.1.4.1.8072", "192.0.2.7", "2", "0", "",
        f"{IF_INDEX}.5", "i", "5", f"{IF_DESCR}.5", "s", "wan0",
    )
    assert rc == 0, err
    (ev,) = await sink.wait_for(1)
    assert ev.labels == {
        "alertname": "LinkDown", "snmp_agent": "192.0.2.7", "ifIndex": "5", "ifDescr": "wan0",
    }
    assert ev.annotations["snmp_version"] == "v1"
    assert "public" not in repr(ev.to_dict())


@pytest.mark.integration
@needs_snmptrap
async def test_wrong_community_is_dropped_and_counted(receiver: Receiver, snmp: Sender) -> None:
    rcv, sink, target = receiver
    assert (await snmp(SNMPTRAP, "-v2c", "-c", "guess", target, *LINK_DOWN_ARGS))[0] == 0
    # Datagrams are handled in arrival order: once this one is delivered, the bad one is done.
    assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, "", COLD_START))[0] == 0
    (ev,) = await sink.wait_for(1)
    assert ev.labels["alertname"] == "ColdStart"
    assert rcv.stats.received == 1
    assert rcv.stats.rejected_community == 1


@pytest.mark.integration
@needs_snmptrap
@pytest.mark.parametrize(
    "v3_args",
    [
        pytest.param(["-u", "watcher", "-l", "authPriv", "-a", "SHA", "-A", "wrong-auth-1",
                      "-x", "AES", "-X", "priv-pass-123"], id="wrong-auth-key"),
        pytest.param(["-u", "watcher", "-l", "authPriv", "-a", "SHA", "-A", "auth-pass-123",
                      "-x", "AES", "-X", "wrong-priv-1"], id="wrong-priv-key"),
        pytest.param(["-u", "stranger", "-l", "authPriv", "-a", "SHA", "-A", "auth-pass-123",
                      "-x", "AES", "-X", "priv-pass-123"], id="unknown-user"),
        pytest.param(["-u", "watcher", "-l", "noAuthNoPriv"], id="downgraded-to-noauth"),
    ],
)
async def test_bad_v3_traps_are_dropped_and_counted(
    receiver: Receiver, snmp: Sender, v3_args: list[str]
) -> None:
    rcv, sink, target = receiver
    rc, err = await snmp(SNMPTRAP, "-v3", "-e", f"0x{SENDER_ENGINE}", *v3_args, target, *LINK_DOWN_ARGS)
    assert rc == 0, err
    assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, "", COLD_START))[0] == 0
    (ev,) = await sink.wait_for(1)
    assert ev.labels["alertname"] == "ColdStart"
    assert rcv.stats.received == 1
    assert rcv.stats.rejected_v3 == 1


@pytest.mark.integration
@needs_snmptrap
async def test_a_failing_sink_is_counted_and_later_traps_still_arrive(snmp: Sender) -> None:
    delivered: list[Event] = []
    both = asyncio.Event()

    def flaky(events: list[Event]) -> None:
        delivered.extend(events)
        if len(delivered) == 2:
            both.set()
        if events[0].labels["alertname"] == "ColdStart":
            raise RuntimeError("database is down")

    cfg = SnmpTrapConfig(port=0)
    async with SnmpTrapReceiver(cfg, flaky) as rcv:
        target = "udp:{}:{}".format(*rcv.address)
        assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, "", COLD_START))[0] == 0
        assert (await snmp(SNMPTRAP, "-v2c", "-c", "public", target, "", WARM_START))[0] == 0
        async with asyncio.timeout(WAIT):
            await both.wait()
    assert rcv.stats.sink_errors == 1
    assert [ev.labels["alertname"] for ev in delivered] == ["ColdStart", "WarmStart"]

