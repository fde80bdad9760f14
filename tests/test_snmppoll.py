"""SNMP poller: device config, then polls of a real net-snmp ``snmpd`` started by the tests.

The agent serves this machine's own ifTable and hrStorageTable.  To make a link go
down without privileges, its config overrides ``ifOperStatus`` of the loopback
interface with a writable value (``override -rw``) that the tests SET over a community
allowed to write that one column.  A wrong community or v3 key, and an agent that is
stopped and started again, stand in for an unreachable device.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    Integer,
    ObjectIdentifier,
    ObjectIdentity,
    ObjectType,
    OctetString,
    SnmpEngine,
    UdpTransportTarget,
    set_cmd,
)

from watcher.collectors.schedule import Scheduler
from watcher.collectors.snmppoll import (
    DeviceSnapshot,
    InterfaceRow,
    SnmpDevice,
    SnmpPoller,
    SnmpPollError,
    StorageRow,
)
from watcher.collectors.snmptrap import SnmpV3User
from watcher.model import Event

SNMPD = shutil.which("snmpd") or "/usr/sbin/snmpd"
needs_snmpd = pytest.mark.skipif(not os.path.exists(SNMPD),
                                 reason="net-snmp's snmpd (Debian package 'snmpd') is not installed")

T0 = datetime(2026, 11, 2, 8, 0, 0, tzinfo=UTC)
IF_OPER = "1.3.6.1.2.1.2.2.1.8"
RW_COMMUNITY = "watcher-test-rw"
V3_USER = SnmpV3User("watcher", "SHA", "auth-pass-123", "AES", "priv-pass-123")
LO_INDEX = socket.if_nametoindex("lo")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Snmpd:
    """net-snmp's agent on 127.0.0.1:PORT, isolated from /etc/snmp and /var/lib/snmp.

    The endpoint is given once, by ``agentAddress`` (naming it on the command line too
    makes snmpd open it twice and exit).
    """

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.conf = workdir / "snmpd.conf"
        self.log = workdir / "snmpd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "persist").mkdir(exist_ok=True)
        self.conf.write_text(
            f"agentAddress udp:127.0.0.1:{port}\n"
            "rocommunity public 127.0.0.1\n"
            f"rwcommunity {RW_COMMUNITY} 127.0.0.1 {IF_OPER}\n"
            f'createUser {V3_USER.name} SHA "{V3_USER.auth_key}" AES "{V3_USER.priv_key}"\n'
            f"rouser {V3_USER.name} authpriv\n"
            f"override -rw {IF_OPER}.{LO_INDEX} integer 1\n"
            "dontLogTCPWrappersConnects yes\n"
            # -C skips the persistent file too, so without this each start would make up
            # a new snmpEngineID, as a replaced device does (see the poller's docstring).
            "engineID watcher-test-agent\n"
        )

    def start(self) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.workdir),
            "SNMPCONFPATH": str(self.workdir),
            "SNMP_PERSISTENT_DIR": str(self.workdir / "persist"),
            "MIBS": "",
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [SNMPD, "-f", "-Lo", "-C", "-c", str(self.conf), "-p", str(self.workdir / "snmpd.pid")],
                stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = self.log.read_bytes()[offset:].decode(errors="replace")
            if "NET-SNMP version" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"snmpd exited with {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"snmpd did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def snmpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snmpd]:
    if not os.path.exists(SNMPD):
        pytest.skip("net-snmp's snmpd is not installed")
    agent = Snmpd(tmp_path_factory.mktemp("snmpd"), free_udp_port())
    agent.start()
    yield agent
    agent.stop()


async def set_lo_oper(agent: Snmpd, value: int) -> None:
    """SET the loopback's (overridden) ifOperStatus: 1 up, 2 down."""
    engine = SnmpEngine()
    try:
        target = await UdpTransportTarget.create(("127.0.0.1", agent.port), timeout=2, retries=1)
        err, status, _, _ = await set_cmd(engine, CommunityData(RW_COMMUNITY, mpModel=1), target, ContextData(),
                                          ObjectType(ObjectIdentity(f"{IF_OPER}.{LO_INDEX}"), Integer(value)))
        assert err is None and int(status) == 0, (err, status)
    finally:
        engine.close_dispatcher()


@pytest.fixture
async def lo_up(snmpd: Snmpd) -> AsyncIterator[Snmpd]:
    await set_lo_oper(snmpd, 1)
    yield snmpd
    await set_lo_oper(snmpd, 1)


def v2c(agent: Snmpd, **kw: object) -> SnmpDevice:
    return SnmpDevice("127.0.0.1", agent.port, timeout=kw.pop("timeout", 1.0), retries=0, **kw)  # type: ignore[arg-type]


def v3(agent: Snmpd, user: SnmpV3User = V3_USER, **kw: object) -> SnmpDevice:
    return SnmpDevice("127.0.0.1", agent.port, version="3", v3_user=user, community=None,
                      timeout=kw.pop("timeout", 1.0), retries=0, **kw)  # type: ignore[arg-type]


def named(events: list[Event], alertname: str) -> list[Event]:
    return [e for e in events if e.labels.get("alertname") == alertname]


def samples(events: list[Event]) -> dict[str, Event]:
    return {e.labels["storage"]: e for e in events if e.labels.get("metric") == "host_storage_used_bytes"}


# ---------------------------------------------------------------- configuration


def test_device_defaults_and_repr_hide_the_community() -> None:
    dev = SnmpDevice("192.0.2.1", community="s3cret-community")
    assert (dev.port, dev.version, dev.storage_threshold, dev.interfaces) == (161, "2c", 0.9, None)
    assert dev.key == "192.0.2.1:161"
    assert "s3cret" not in repr(dev)
    assert SnmpDevice("2001:db8::1", port=1161).key == "[2001:db8::1]:1161"
    v3dev = SnmpDevice("192.0.2.2", version="3", v3_user=V3_USER, site="acme-krk", client="acme")
    assert "auth-pass" not in repr(v3dev) and "priv-pass" not in repr(v3dev)
    assert v3dev.labels() == {"snmp_agent": "192.0.2.2", "client": "acme", "site": "acme-krk"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"address": ""}, "address"),
    ({"port": 0}, "port"),
    ({"version": "1"}, "version"),
    ({"version": "3"}, "v3_user"),
    ({"community": ""}, "community"),
    ({"storage_threshold": 0}, "storage_threshold"),
    ({"storage_threshold": 1.5}, "storage_threshold"),
    ({"interfaces": [0]}, "interfaces"),
    ({"interfaces": [""]}, "interfaces"),
    ({"interfaces": [True]}, "interfaces"),
    ({"timeout": 0}, "timeout"),
    ({"retries": -1}, "retries"),
])
def test_device_rejects_bad_config(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"address": "192.0.2.1", **kwargs}
    with pytest.raises(ValueError, match=message):
        SnmpDevice(**args)  # type: ignore[arg-type]


def test_poller_rejects_a_device_configured_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        SnmpPoller([SnmpDevice("192.0.2.1"), SnmpDevice("192.0.2.1", community="other")])


# ---------------------------------------------------------------- state machine (no network)


class FakeAgent:
    """Stands in for ``SnmpPoller.fetch``: returns what the test sets."""

    def __init__(self) -> None:
        self.result: DeviceSnapshot | SnmpPollError = DeviceSnapshot([], [])

    def interfaces(self, *rows: tuple[int, str, int, int]) -> None:
        self.result = DeviceSnapshot([InterfaceRow(*r) for r in rows], [])

    async def __call__(self, device: SnmpDevice) -> DeviceSnapshot:
        if isinstance(self.result, SnmpPollError):
            raise self.result
        return self.result


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> tuple[SnmpPoller, FakeAgent, Clock]:
    clock, agent = Clock(), FakeAgent()
    poller = SnmpPoller([SnmpDevice("192.0.2.1", site="acme-krk", client="acme")], resolve_on_start=False,
                        clock=clock)
    monkeypatch.setattr(poller, "fetch", agent)
    return poller, agent, clock


async def test_link_state_machine(fake: tuple[SnmpPoller, FakeAgent, Clock]) -> None:
    poller, agent, clock = fake
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 1, 1), (4, "Gi0/2", 2, 2))
    assert await poller.poll() == []
    down_at = clock.advance(60)
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 1, 7), (4, "Gi0/2", 2, 2))
    [ev] = await poller.poll()
    labels = {"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "client": "acme", "site": "acme-krk",
              "ifIndex": "3", "ifDescr": "Gi0/1"}
    assert (ev.status, ev.labels, ev.starts_at) == ("firing", labels, down_at)
    assert ev.annotations["ifOperStatus"] == "lowerLayerDown"
    # testing/unknown say nothing new: the link stays down with its first start
    clock.advance(60)
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 1, 4))
    [again] = await poller.poll()
    assert (again.status, again.fingerprint, again.starts_at) == ("firing", ev.fingerprint, down_at)
    up_at = clock.advance(60)
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 1, 1))
    resolved, link_up = await poller.poll()
    assert (resolved.status, resolved.labels, resolved.ends_at) == ("resolved", labels, up_at)
    assert link_up.status == "resolved"
    assert link_up.labels == {**labels, "alertname": "LinkUp"}
    assert await poller.poll() == []
    # admin down is deliberate: no alert; a firing link that disappears is resolved
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 2, 2))
    assert await poller.poll() == []
    agent.interfaces((1, "lo", 1, 1), (3, "Gi0/1", 1, 2))
    assert [e.status for e in await poller.poll()] == ["firing"]
    agent.interfaces((1, "lo", 1, 1))
    assert [(e.labels["alertname"], e.status) for e in await poller.poll()] == [
        ("LinkDown", "resolved"), ("LinkUp", "resolved")]
    assert poller.status()[0].links_down == ()


async def test_unreachable_keeps_link_state_and_logs_once(
        fake: tuple[SnmpPoller, FakeAgent, Clock], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="watcher.collectors.snmppoll")
    poller, agent, clock = fake
    agent.interfaces((3, "Gi0/1", 1, 2))
    [down] = await poller.poll()
    lost_at = clock.advance(60)
    agent.result = SnmpPollError("No SNMP response received before timeout")
    first = await poller.poll()
    clock.advance(60)
    second = await poller.poll()
    for events in (first, second):
        [ev] = events
        assert ev.labels == {"alertname": "SnmpDeviceUnreachable", "snmp_agent": "192.0.2.1",
                             "client": "acme", "site": "acme-krk", "severity": "warning"}
        assert (ev.status, ev.starts_at) == ("firing", lost_at)
    assert poller.status()[0].reachable is False
    back_at = clock.advance(60)
    agent.interfaces((3, "Gi0/1", 1, 2))
    resolved, still_down = await poller.poll()
    assert (resolved.labels["alertname"], resolved.status, resolved.ends_at) == (
        "SnmpDeviceUnreachable", "resolved", back_at)
    assert (still_down.fingerprint, still_down.starts_at) == (down.fingerprint, down.starts_at)
    changes = [r.levelname for r in caplog.records if r.levelno >= logging.INFO
               and ("unreachable" in r.getMessage() or "answers again" in r.getMessage())]
    assert changes == ["WARNING", "INFO"]  # once each way, not per failed poll


async def test_disk_threshold(fake: tuple[SnmpPoller, FakeAgent, Clock]) -> None:
    poller, agent, clock = fake
    agent.result = DeviceSnapshot([], [StorageRow(36, "/", 4096, 1000, 950)])
    since = clock.advance(60)
    sample, alert = await poller.poll()
    assert sample.labels == {"metric": "host_storage_used_bytes", "snmp_agent": "192.0.2.1", "client": "acme",
                             "site": "acme-krk", "storage": "/"}
    assert (sample.value, sample.annotations["size_bytes"]) == (950 * 4096, str(1000 * 4096))
    assert alert.labels == {"alertname": "HostOutOfDiskSpace", "snmp_agent": "192.0.2.1", "client": "acme",
                            "site": "acme-krk", "host": "192.0.2.1", "mountpoint": "/", "severity": "warning"}
    assert (alert.status, alert.starts_at, alert.value) == ("firing", since, None)
    clock.advance(60)
    _, again = await poller.poll()
    assert (again.status, again.fingerprint, again.starts_at) == ("firing", alert.fingerprint, since)
    agent.result = DeviceSnapshot([], [StorageRow(36, "/", 4096, 1000, 900)])  # exactly 90 %: not over
    _, resolved = await poller.poll()
    assert (resolved.status, resolved.fingerprint, resolved.starts_at) == ("resolved", alert.fingerprint, since)
    assert len(await poller.poll()) == 1  # the sample only
    # a refused table keeps its states; a disk no longer listed is resolved
    agent.result = DeviceSnapshot([], [StorageRow(36, "/", 4096, 1000, 999)])
    assert [e.status for e in await poller.poll()] == ["firing", "firing"]
    agent.result = DeviceSnapshot([], None, {"hrStorageTable": "genErr"})
    assert await poller.poll() == []
    assert poller.status()[0].disks_over == ("/",)
    agent.result = DeviceSnapshot([], [])
    [gone] = await poller.poll()
    assert (gone.labels["alertname"], gone.status) == ("HostOutOfDiskSpace", "resolved")


async def test_storage_table_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only fixed disks count; Integer32 columns an agent overflowed are read as unsigned."""
    hr = "1.3.6.1.2.1.25.2.3.1"
    rows = {
        1: {f"{hr}.2": ObjectIdentifier("1.3.6.1.2.1.25.2.1.2"), f"{hr}.3": OctetString("Physical memory"),
            f"{hr}.4": Integer(1024), f"{hr}.5": Integer(1000), f"{hr}.6": Integer(990)},
        31: {f"{hr}.2": ObjectIdentifier("1.3.6.1.2.1.25.2.1.4"),
             f"{hr}.3": OctetString("C:\\ Label:  Serial Number 1a2b"),
             f"{hr}.4": Integer(4096), f"{hr}.5": Integer(-2), f"{hr}.6": Integer(100)},
    }

    async def walk(device: SnmpDevice, engine: object, auth: object, target: object,
                   columns: tuple[str, ...]) -> dict[int, dict[str, object]]:
        return rows if columns[0].startswith(hr) else {}

    async with SnmpPoller([SnmpDevice("127.0.0.1", 9)], resolve_on_start=False) as poller:
        monkeypatch.setattr(poller, "_walk", walk)
        snapshot = await poller.fetch(poller.devices[0])
    assert snapshot.interfaces == []
    assert snapshot.storage == [StorageRow(31, "C:\\ Label:  Serial Number 1a2b", 4096, (1 << 32) - 2, 100)]


# ---------------------------------------------------------------- against snmpd


@pytest.mark.integration
@needs_snmpd
async def test_v2c_poll_reads_interfaces_and_the_fixed_disks(lo_up: Snmpd) -> None:
    clock = Clock()
    async with SnmpPoller([v2c(lo_up)], resolve_on_start=False, clock=clock) as poller:
        events = await poller.poll()
        [status] = poller.status()
    assert status.reachable is True
    assert [e for e in events if "alertname" in e.labels] == []  # all up, nothing over 90 %
    disks = samples(events)
    assert disks, "snmpd reports no fixed disk on this machine"
    for ev in disks.values():
        assert ev.source == "snmp_poll" and ev.observed_at == clock.now
        assert ev.labels["snmp_agent"] == "127.0.0.1"
        assert ev.value is not None and 0 <= ev.value <= int(ev.annotations["size_bytes"])
    if "/" in disks:  # the agent reads the same file system as statvfs does
        st = os.statvfs("/")
        size = st.f_blocks * st.f_frsize
        assert abs(int(disks["/"].annotations["size_bytes"]) - size) <= 0.01 * size


@pytest.mark.integration
@needs_snmpd
@pytest.mark.parametrize("version", ["2c", "3"])
async def test_loopback_going_down_and_up(lo_up: Snmpd, version: str) -> None:
    clock = Clock()
    device = v2c(lo_up) if version == "2c" else v3(lo_up)
    async with SnmpPoller([device], resolve_on_start=False, clock=clock) as poller:
        assert named(await poller.poll(), "LinkDown") == []
        await set_lo_oper(lo_up, 2)
        down_at = clock.advance(30)
        [down] = named(await poller.poll(), "LinkDown")
        assert down.status == "firing"
        assert down.labels == {"alertname": "LinkDown", "snmp_agent": "127.0.0.1",
                               "ifIndex": str(LO_INDEX), "ifDescr": "lo"}
        assert down.starts_at == down_at
        clock.advance(30)
        [again] = named(await poller.poll(), "LinkDown")
        assert (again.status, again.fingerprint, again.starts_at) == ("firing", down.fingerprint, down_at)
        assert poller.status()[0].links_down == (LO_INDEX,)
        await set_lo_oper(lo_up, 1)
        up_at = clock.advance(30)
        events = await poller.poll()
        [resolved] = named(events, "LinkDown")
        assert (resolved.status, resolved.labels, resolved.ends_at) == ("resolved", down.labels, up_at)
        [link_up] = named(events, "LinkUp")
        assert (link_up.status, link_up.labels["ifIndex"]) == ("resolved", str(LO_INDEX))
        assert [e for e in await poller.poll() if "alertname" in e.labels] == []


@pytest.mark.integration
@needs_snmpd
async def test_explicit_interfaces_by_descr_and_index(lo_up: Snmpd, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="watcher.collectors.snmppoll")
    device = v2c(lo_up, interfaces=["lo", LO_INDEX, "no-such-if0"])
    async with SnmpPoller([device], resolve_on_start=False) as poller:
        await set_lo_oper(lo_up, 2)
        await poller.poll()
        [down] = named(await poller.poll(), "LinkDown")
    assert down.labels["ifDescr"] == "lo"  # listed twice, watched once
    assert [r.getMessage() for r in caplog.records].count(
        "snmp poll " + device.key + ": configured interface 'no-such-if0' is not in the agent's ifTable") == 1


@pytest.mark.integration
@needs_snmpd
async def test_disk_over_threshold_fires_and_resolves(lo_up: Snmpd) -> None:
    clock = Clock()
    device = v3(lo_up, storage_threshold=1e-9, host="srv-1")
    async with SnmpPoller([device], resolve_on_start=False, clock=clock) as poller:
        events = await poller.poll()
        used = {name for name, ev in samples(events).items() if ev.value}
        if not used:
            pytest.skip("no fixed disk with used bytes here")
        firing = {e.labels["mountpoint"]: e for e in named(events, "HostOutOfDiskSpace")}
        assert set(firing) == used
        for mount, ev in firing.items():
            assert ev.status == "firing" and ev.starts_at == T0
            assert ev.labels == {"alertname": "HostOutOfDiskSpace", "snmp_agent": "127.0.0.1", "host": "srv-1",
                                 "mountpoint": mount, "severity": "warning"}
        poller.update(replace(device, storage_threshold=1.0))
        clock.advance(60)
        resolved = {e.labels["mountpoint"]: e for e in named(await poller.poll(), "HostOutOfDiskSpace")}
        assert set(resolved) == used
        assert all(e.status == "resolved" and e.fingerprint == firing[m].fingerprint for m, e in resolved.items())


@pytest.mark.integration
@needs_snmpd
async def test_resolve_on_start_sends_what_is_fine(lo_up: Snmpd) -> None:
    async with SnmpPoller([v2c(lo_up, storage_threshold=1.0)]) as poller:
        first = await poller.poll()
        second = await poller.poll()
    assert [e.status for e in named(first, "SnmpDeviceUnreachable")] == ["resolved"]
    lo = [e for e in named(first, "LinkDown") if e.labels["ifDescr"] == "lo"]
    assert [e.status for e in lo] == ["resolved"]
    assert {e.labels["mountpoint"] for e in named(first, "HostOutOfDiskSpace")} == set(samples(first))
    assert [e for e in second if "alertname" in e.labels] == []


@pytest.mark.integration
@needs_snmpd
@pytest.mark.parametrize("credentials", ["community", "auth_key", "priv_key"])
async def test_wrong_credentials_are_an_unreachable_device(
        snmpd: Snmpd, credentials: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="watcher.collectors.snmppoll")
    if credentials == "community":
        device = v2c(snmpd, community="not-public", timeout=0.3)
    elif credentials == "auth_key":
        device = v3(snmpd, SnmpV3User("watcher", "SHA", "wrong-auth-key", "AES", "priv-pass-123"), timeout=0.3)
    else:
        device = v3(snmpd, SnmpV3User("watcher", "SHA", "auth-pass-123", "AES", "wrong-priv-key"), timeout=0.3)
    async with SnmpPoller([device], resolve_on_start=False) as poller:
        first = await poller.poll()
        second = await poller.poll()
    for events in (first, second):
        [ev] = events
        assert ev.labels == {"alertname": "SnmpDeviceUnreachable", "snmp_agent": "127.0.0.1",
                             "severity": "warning"}
        assert ev.status == "firing" and ev.annotations["error"]
    assert first[0].starts_at == second[0].starts_at
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


@pytest.mark.integration
@needs_snmpd
async def test_agent_stopped_and_restarted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="watcher.collectors.snmppoll")
    agent = Snmpd(tmp_path, free_udp_port())
    agent.start()
    clock = Clock()
    try:
        async with SnmpPoller([v3(agent, timeout=0.3)], resolve_on_start=False, clock=clock) as poller:
            assert named(await poller.poll(), "SnmpDeviceUnreachable") == []
            agent.stop()
            lost_at = clock.advance(60)
            [lost] = named(await poller.poll(), "SnmpDeviceUnreachable")
            assert (lost.status, lost.starts_at) == ("firing", lost_at)
            agent.start()  # same engine ID, engine time from 0 again
            back_at = clock.advance(60)
            events = await poller.poll()
            [back] = named(events, "SnmpDeviceUnreachable")
            assert (back.status, back.starts_at, back.ends_at) == ("resolved", lost_at, back_at)
            assert samples(events)
    finally:
        agent.stop()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("device unreachable" in m for m in messages) == 1
    assert sum("answers again" in m for m in messages) == 1


@pytest.mark.integration
@needs_snmpd
async def test_poll_all_devices_and_scheduler_wiring(lo_up: Snmpd) -> None:
    dead = SnmpDevice("127.0.0.1", free_udp_port(), timeout=0.3, retries=0, site="acme-krk")
    devices = [v2c(lo_up), SnmpDevice("localhost", lo_up.port, version="3", v3_user=V3_USER, retries=0), dead]
    batches: list[list[Event]] = []
    got = asyncio.Event()

    async def sink(events: list[Event]) -> None:
        batches.append(events)
        if len(batches) == len(devices):
            got.set()

    async with SnmpPoller(devices, sink, max_concurrency=2, resolve_on_start=False) as poller:
        events = await poller.poll()
        assert {e.labels["snmp_agent"] for e in events if "metric" in e.labels} == {"127.0.0.1", "localhost"}
        [unreachable] = named(events, "SnmpDeviceUnreachable")
        assert unreachable.labels["site"] == "acme-krk"
        assert {s.key: s.reachable for s in poller.status()} == {
            devices[0].key: True, devices[1].key: True, dead.key: False}
        async with Scheduler(max_jitter=0) as scheduler:
            poller.register(scheduler, interval=60)
            assert sorted(scheduler.names()) == sorted(f"snmp poll {d.key}" for d in devices)
            async with asyncio.timeout(10):
                await got.wait()
    agents = {ev.labels["snmp_agent"] for batch in batches for ev in batch}
    assert agents == {"127.0.0.1", "localhost"}
