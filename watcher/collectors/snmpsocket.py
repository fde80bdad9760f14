"""The SNMP trap socket's own troubles: a buffer sized for bursts, drops the kernel made,
and datagrams that are not SNMP at all.

* Receive buffer: a trap storm (a switch stack rebooting) arrives faster than one Python
  loop reads.  ``size_buffer`` asks for ``rcvbuf`` bytes (``SO_RCVBUFFORCE`` when watcher
  may, else ``SO_RCVBUF``, which the kernel caps at ``net.core.rmem_max``) and says what it
  got, so an operator knows whether to raise the sysctl.
* Kernel drops: datagrams that did not fit in the buffer never reach watcher, so nothing in
  the process can count them.  Linux counts them per socket in ``/proc/net/udp`` (and
  ``udp6``), in the ``drops`` column of the row whose inode is the socket's; ``KernelDrops``
  reads that counter, and the receiver adds what it grew by to its ``dropped`` counter.
* Garbage: pysnmp raises from inside its datagram callback on some datagrams it cannot
  decode, and asyncio prints the whole traceback for every such packet (a port scan floods
  the log); others it drops quietly, counting them in its own ``snmpInASNParseErrs`` and
  ``snmpInBadVersions``.  ``GuardedUdp`` runs the callback itself and reports both kinds as
  garbage (``parse_errors`` reads pysnmp's counters around the call), one debug line each.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from pysnmp.carrier.asyncio.dgram import udp, udp6

log = logging.getLogger(__name__)

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


def size_buffer(sock: socket.socket, wanted: int) -> int:
    """Ask for a receive buffer of ``wanted`` bytes; the size the kernel gave (it reports twice
    what it reserves for payload, as documented in socket(7))."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, wanted)
    except OSError:  # not privileged: SO_RCVBUF, capped at net.core.rmem_max
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, wanted)
        except OSError as exc:
            log.warning("snmp: cannot size the receive buffer: %s", exc)
    got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
    if got < wanted:
        log.warning("snmp: receive buffer is %d bytes, %d asked for (raise net.core.rmem_max); "
                    "bursts beyond it are dropped by the kernel and counted", got, wanted)
    return int(got)


class KernelDrops:
    """The kernel's count of datagrams it dropped for one socket (Linux; 0 elsewhere)."""

    def __init__(self, sock: socket.socket) -> None:
        self.inode = os.fstat(sock.fileno()).st_ino
        self.table = "/proc/net/udp6" if sock.family == socket.AF_INET6 else "/proc/net/udp"

    def read(self) -> int:
        try:
            with open(self.table, encoding="ascii") as fh:
                next(fh, None)  # the header
                for line in fh:
                    fields = line.split()
                    if len(fields) >= 13 and fields[9] == str(self.inode):
                        return int(fields[-1])
        except (OSError, ValueError):
            return 0
        return 0


def _guard(cls: type[Any]) -> type[Any]:
    class Guarded(cls):  # type: ignore[valid-type,misc]
        """pysnmp's UDP transport, with the datagram callback run under a guard."""

        on_garbage: Callable[[Any, BaseException | None], None] | None = None
        parse_errors: Callable[[], int] | None = None

        def datagram_received(self, datagram: bytes, transportAddress: Any) -> None:
            self.loop.call_soon(self._guarded, transportAddress, datagram)

        def _guarded(self, address: Any, datagram: bytes) -> None:
            before = self.parse_errors() if self.parse_errors is not None else 0
            try:
                self._callback_function(self, address, datagram)
            except Exception as exc:
                if self.on_garbage is not None:
                    self.on_garbage(address, exc)
                return
            if self.parse_errors is not None and self.on_garbage is not None and self.parse_errors() > before:
                self.on_garbage(address, None)

    Guarded.__name__ = f"Guarded{cls.__name__}"
    return Guarded


GuardedUdp = _guard(udp.UdpAsyncioTransport)
GuardedUdp6 = _guard(udp6.Udp6AsyncioTransport)
