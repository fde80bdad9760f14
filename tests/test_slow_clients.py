"""Slow and garbage clients (issue 10, point 7), with raw sockets against the real things.

* HTTP (``watcher serve`` as a subprocess, ``header_timeout`` and ``body_timeout`` of 1 s):
  a connection that sends nothing, one that sends half its headers, one that trickles a
  header byte by byte, and one that sends its headers and stalls in the body are all closed
  by the server within a few seconds; a normal request on a fresh connection still works.
* SNMP (the trap receiver on this loop): garbage datagrams are counted as ``garbage`` and
  leave no traceback in the log; datagrams the kernel drops because the (deliberately
  tiny) receive buffer is full while the loop is busy show up in ``dropped``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.proc import WatcherProcess
from tests.servers import free_port
from tests.test_api import INVENTORY
from tests.test_e2e import fast_rules
from watcher.collectors.snmptrap import SnmpTrapConfig, SnmpTrapReceiver
from watcher.model import Event


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WatcherProcess]:
    folder = tmp_path_factory.mktemp("slow")
    (folder / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True))
    fast_rules(folder)
    cfg = folder / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml", "notify": {"enabled": False},
                                   "snmp": {"listen": "off"}, "header_timeout": "1s", "body_timeout": "1s"}))
    w = WatcherProcess(cfg, free_port(), folder / "watcher.log")
    w.start()
    try:
        yield w
    finally:
        w.stop()


def _closed_within(sock: socket.socket, limit: float, trickle: bytes = b"") -> float:
    """Seconds until the server closes ``sock`` (reading EOF or a reset); fails after ``limit``."""
    started = time.monotonic()
    sock.settimeout(0.2)
    pending = list(trickle)
    while time.monotonic() - started < limit:
        if pending:
            try:
                sock.send(bytes([pending.pop(0)]))
            except OSError:
                return time.monotonic() - started
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
        if data == b"" or b"408" in data[:20]:
            return time.monotonic() - started
    raise AssertionError(f"the server kept the connection open for {limit} s")


@pytest.mark.parametrize("sent, trickle", [
    (b"", b""),
    (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\n", b""),
    (b"", b"GET /api/v1/tickets HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200),
    (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
     b"Content-Length: 1000\r\n\r\n[{\"labels\":", b""),
], ids=["silent", "half-headers", "trickled-headers", "stalled-body"])
def test_half_open_connections_are_closed(service: WatcherProcess, sent: bytes, trickle: bytes) -> None:
    with socket.create_connection(("127.0.0.1", service.port)) as sock:
        if sent:
            sock.sendall(sent)
        took = _closed_within(sock, 8.0, trickle)
    assert took < 6.0
    status, body = service.request("GET", "/healthz")
    assert status == 200, body
    assert service.request("POST", "/api/v1/events", [{"source": "t", "labels": {
        "alertname": "Custom", "client": "acme"}, "starts_at": "2026-11-02T08:15:00Z"}])[0] == 200


async def _receiver(rcvbuf: int = 4 * 1024 * 1024) -> tuple[SnmpTrapReceiver, list[Event]]:
    got: list[Event] = []
    r = SnmpTrapReceiver(SnmpTrapConfig(host="127.0.0.1", port=0, communities=["public"], rcvbuf=rcvbuf),
                         lambda events: got.extend(events))
    await r.start()
    return r, got


async def test_garbage_datagrams_are_counted_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    r, got = await _receiver()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for payload in (b"garbage", b"\x00" * 10, bytes(range(256)), b"GET / HTTP/1.1\r\n\r\n") * 5:
                s.sendto(payload, r.address)
        for _ in range(50):
            await asyncio.sleep(0.05)
            if r.stats.garbage >= 20:
                break
        assert r.stats.garbage == 20 and r.stats.received == 0 and not got
        assert "Traceback" not in caplog.text and not [rec for rec in caplog.records if rec.exc_info]
    finally:
        await r.stop()


async def test_kernel_drops_are_counted(caplog: pytest.LogCaptureFixture) -> None:
    r, _got = await _receiver(rcvbuf=4096)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(500):  # the loop is not reading meanwhile: the tiny buffer overflows
                s.sendto(b"x" * 200, r.address)
        assert r.count_kernel_drops() > 0
        assert r.stats.dropped == r.stats.kernel_dropped > 0
        assert "kernel dropped" in caplog.text
    finally:
        await r.stop()


def test_a_trap_socket_gets_the_buffer_it_asked_for_or_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                               ) -> None:
    from watcher.collectors.snmpsocket import size_buffer

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = size_buffer(s, 1 << 30)
        assert got > 0
        if got < 1 << 30:
            assert "raise net.core.rmem_max" in caplog.text
