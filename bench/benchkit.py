"""Shared pieces of the benchmark scripts: servers to start and stop, the load client, tables.

Everything here talks to 127.0.0.1 only and cleans up what it starts: a ``watcher serve``
subprocess (``WatcherServer``), a throwaway PostgreSQL database (``PostgresDatabase``), an
in-process HTTP receiver that timestamps what it gets (``Receiver``) and a do-nothing HTTP
server in its own process that measures what the load client alone can do (``NullServer``).

The load client (``run_load``) is aiohttp with one keep-alive connection per concurrent
worker; request bodies are serialised before the clock starts, so the client spends its
time on the wire, not in ``json.dumps``.  A run stops at whichever comes first: the bodies
run out or its time is up (requests in flight then still finish and count).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import psutil
import yaml
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
WATCHER_BIN = ROOT / ".venv" / "bin" / "watcher"
RULES = ROOT / "rules.yaml"
PG_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def stop_on_sigterm() -> None:
    """SIGTERM ends a benchmark like Ctrl-C does: through its cleanup (servers stopped, folders removed)."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def machine() -> str:
    """CPUs and load average: the benchmarks share the machine with whatever else runs on it."""
    one, five, _ = os.getloadavg()
    return f"cpus={os.cpu_count()} load average 1m={one:.2f} 5m={five:.2f}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rfc3339(ts: float) -> str:
    """RFC 3339 UTC with milliseconds, as senders write it."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100.0 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table: numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(_is_number(r[i]) for r in rows) if rows else False for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True))

    out = [line(list(headers)), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in cells)
    return "\n".join(s.rstrip() for s in out)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v != v:  # NaN
            return "-"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.0f}"
        if abs(v) >= 10:
            return f"{v:.1f}"
        return f"{v:.2f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


# ---------------------------------------------------------------- processes


class Process:
    """A subprocess this benchmark started, logged to a file, stopped by its own pid only."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.argv = argv
        self.log = log
        self._logf = log.open("ab")
        self.proc = subprocess.Popen(argv, stdout=self._logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process (and its threads) so far."""
        try:
            t = self.ps.cpu_times()
        except psutil.Error:
            return float("nan")
        return float(t.user + t.system)

    def rss_mb(self) -> float:
        try:
            return float(self.ps.memory_info().rss) / 1e6
        except psutil.Error:
            return float("nan")

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-n:])

    def check_alive(self, what: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
            return self.proc.returncode
        finally:
            self._logf.close()


def wait_for_log(proc: Process, needle: str, what: str, timeout: float = 60.0) -> str:
    """The first log line that contains ``needle``; raises if the process dies or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive(what)
        for line in proc.log_text().splitlines():
            if needle in line:
                return line
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not start within {timeout:g}s:\n{proc.tail()}")


def wait_http_ok(proc: Process, url: str, what: str, timeout: float = 60.0) -> None:
    """Poll ``url`` until it answers 200 (the process must stay alive meanwhile)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc.check_alive(what)
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready at {url} within {timeout:g}s:\n{proc.tail()}")


# ---------------------------------------------------------------- databases


class PostgresDatabase:
    """A fresh database on the local PostgreSQL, dropped on exit."""

    def __init__(self) -> None:
        self.name = f"watcher_bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.url = PG_URL.format(name=self.name)

    def __enter__(self) -> Self:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def query(db_url: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows from the service's database, read directly (not through the service)."""
    if db_url.startswith("sqlite:///"):
        path = db_url[len("sqlite:///"):]
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()
    import psycopg

    dbname = db_url.rsplit("/", 1)[-1]
    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={dbname}") as pconn:
        return [tuple(r) for r in pconn.execute(sql).fetchall()]


def count_rows(db_url: str, sql: str) -> int:
    """One integer from the service's database (``SELECT count(*) ...``)."""
    return int(query(db_url, sql)[0][0])


@contextlib.contextmanager
def database(kind: str, workdir: Path) -> Iterator[str]:
    """A database URL for one run: SQLite in ``workdir`` or a throwaway PostgreSQL database."""
    if kind == "sqlite":
        yield f"sqlite:///{workdir / 'watcher.db'}"
    elif kind == "postgresql":
        with PostgresDatabase() as pg:
            yield pg.url
    else:
        raise SystemExit(f"--db: expected sqlite or postgresql, got {kind!r}")


# ---------------------------------------------------------------- watcher


def shortened_rules(dest: Path) -> Path:
    """A copy of the shipped rules.yaml with no hold on site-internet's ProbeFailed signal."""
    doc = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    changed = 0
    for rule in doc["rules"]:
        if rule.get("name") != "site-internet":
            continue
        for sig in rule.get("signals", []):
            if "ProbeFailed" in str(sig.get("match", {}).get("alertname", "")):
                sig["for"] = "0s"
                changed += 1
    if changed != 1:
        raise RuntimeError(f"{RULES}: expected one ProbeFailed signal in rule site-internet, found {changed}")
    dest.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


@dataclass
class BenchInventory:
    """A generated inventory: ``clients`` x ``sites_per_client`` sites, one remote person per site."""

    doc: dict[str, Any]
    sites: list[dict[str, Any]] = field(default_factory=list)  # {id, client, person, probes: [targets]}


def generate_inventory(n_sites: int, notify_base: str | None, sites_per_client: int = 4) -> BenchInventory:
    """Sites with two probes each and one remote person; with ``notify_base`` every contact
    (person, office, coordinator, admins) is ``json://`` to ``notify_base``/n/NAME, so each
    notice can be told apart at the receiver by its path."""
    def urls(name: str) -> list[str]:
        return [f"{notify_base}/n/{name}"] if notify_base else [f"mailto://{name}@bench.example"]

    clients: list[dict[str, Any]] = []
    sites: list[dict[str, Any]] = []
    for c in range((n_sites + sites_per_client - 1) // sites_per_client):
        cid = f"bc{c:03d}"
        client: dict[str, Any] = {
            "id": cid, "name": f"Bench Client {c}", "sla": "gold", "language": "pl" if c % 2 == 0 else "en",
            "timezone": "Europe/Warsaw", "business_hours": "Mon-Fri 08:00-17:00",
            "coordinator": {"name": f"Coordinator {c}", "notify": urls(f"coord-{cid}")},
            "admins": urls(f"admins-{cid}"), "sites": [], "people": [],
        }
        for s in range(sites_per_client):
            if len(sites) >= n_sites:
                break
            sid = f"{cid}-s{s:02d}"
            n = len(sites)
            probes = [f"https://vpn.{sid}.bench.example/", f"198.18.{n // 250}.{n % 250 + 1}:443"]
            client["sites"].append({
                "id": sid, "name": f"Office {sid}",
                "office_contact": {"name": f"Reception {sid}", "notify": urls(f"office-{sid}")},
                "probes": [{"type": "http", "target": probes[0]}, {"type": "tcp", "target": probes[1]}],
                "match": {"host": f"{sid}-.*"},
            })
            pid = f"p-{sid}"
            client["people"].append({"id": pid, "name": f"Person {sid}", "site": sid, "remote": True,
                                     "notify": urls(pid), "language": client["language"]})
            sites.append({"id": sid, "client": cid, "person": pid, "probes": probes})
        clients.append(client)
    return BenchInventory({"clients": clients}, sites)


class WatcherServer:
    """``watcher serve`` in a subprocess on a port the OS picks, with its own config folder."""

    def __init__(self, workdir: Path, rules: Path, inventory: Path, db_url: str,
                 extra_config: dict[str, Any] | None = None) -> None:
        self.workdir = workdir
        self.db_url = db_url
        cfg: dict[str, Any] = {"rules": str(rules), "inventory": str(inventory), "database": db_url,
                               "secret_key": "bench-" + uuid.uuid4().hex, "snmp": {"listen": "off"}}
        cfg.update(extra_config or {})
        self.config = workdir / "watcher.yaml"
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        self.proc: Process | None = None
        self.url = ""

    def start(self) -> None:
        """Start and wait for "watcher listening on" (blocking: from async code use ``async with``)."""
        self.proc = Process([str(WATCHER_BIN), "serve", "--config", str(self.config), "--listen", "127.0.0.1:0",
                             "--db", self.db_url, "--snmp-listen", "off"], self.workdir / "watcher.log")
        try:
            line = wait_for_log(self.proc, "watcher listening on http://", "watcher serve")
        except BaseException:
            self.proc.stop()
            raise
        self.url = line.split("watcher listening on ", 1)[1].strip().rstrip("/")

    def stop(self) -> None:
        if self.proc is not None:
            code = self.proc.stop()
            if code not in (0, None):
                print(f"warning: watcher exited with {code}; log tail:\n{self.proc.tail()}", file=sys.stderr)

    async def __aenter__(self) -> Self:
        # In a thread, so that an in-process Receiver keeps answering while watcher starts
        # and stops (its notifier may be delivering to it right then).
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await asyncio.to_thread(self.stop)

    async def inbox_lag(self, session: aiohttp.ClientSession) -> float:
        """``watcher_inbox_lag`` from /metrics: stored rows the engine has not handled yet."""
        async with session.get(self.url + "/metrics") as resp:
            text = await resp.text()
        for line in text.splitlines():
            if line.startswith("watcher_inbox_lag "):
                return float(line.split()[1])
        return float("nan")

    async def wait_engine(self, session: aiohttp.ClientSession, timeout: float = 300.0) -> float:
        """Seconds until the engine has handled every stored row (NaN on timeout)."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if await self.inbox_lag(session) == 0:
                return time.perf_counter() - started
            await asyncio.sleep(0.05)
        return float("nan")


@contextlib.contextmanager
def workdir(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder for configs, databases and logs; removed afterwards unless ``keep``."""
    if keep:
        path = Path(tempfile.mkdtemp(prefix=prefix))
        print(f"keeping configs and logs in {path}", file=sys.stderr)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as d:
        yield Path(d)


# ---------------------------------------------------------------- receiver (in process)


class Receiver:
    """An HTTP server in this process that notes when each POST arrives (``perf_counter``),
    by its path; ``wait(path)`` waits for the first POST to that path."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = {}
        self.bodies: dict[str, list[bytes]] = {}
        self._events: dict[str, asyncio.Event] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.count = 0

    def _event(self, path: str) -> asyncio.Event:
        ev = self._events.get(path)
        if ev is None:
            ev = self._events[path] = asyncio.Event()
        return ev

    async def _handle(self, request: web.Request) -> web.Response:
        t = time.perf_counter()
        path = request.path
        body = await request.read()
        self.arrivals.setdefault(path, []).append(t)
        self.bodies.setdefault(path, []).append(body)
        self.count += 1
        self._event(path).set()
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.stop()

    async def wait(self, path: str, timeout: float) -> float | None:
        """The arrival time of the first POST to ``path``, or None after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event(path).wait(), timeout)
        got = self.arrivals.get(path)
        return got[0] if got else None


class NullServer:
    """A do-nothing ``POST`` endpoint in a process of its own: the load client's ceiling."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.proc: Process | None = None
        self.url = ""

    def __enter__(self) -> Self:
        port = free_port()
        self.proc = Process([sys.executable, __file__, "--null-server", str(port)], self.workdir / "null.log")
        try:
            wait_for_log(self.proc, "null server listening", "null server")
        except BaseException:
            self.proc.stop()
            raise
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None:
            self.proc.stop()


def _null_server_main(port: int) -> None:
    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handle)
    print("null server listening", flush=True)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# ---------------------------------------------------------------- load client


@dataclass
class LoadResult:
    requests: int = 0
    ok: int = 0
    failed: int = 0
    events: int = 0  # events in requests answered 2xx
    accepted: int = 0  # what the server said it stored (watcher), else = events
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # process name -> CPU % of one core
    client_cpu: float = float("nan")  # this process (the load client), % of one core

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("nan")

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000.0


def accepted_from_watcher(status: int, body: bytes, n_events: int) -> int:
    """Events a watcher 2xx says it stored (new, not duplicates)."""
    return int(json.loads(body).get("accepted", 0))


async def run_load(session: aiohttp.ClientSession, url: str, bodies: Sequence[tuple[bytes, int]], concurrency: int,
                   max_seconds: float, accepted_of: Callable[[int, bytes, int], int] | None = None,
                   watch: dict[str, Process] | None = None) -> LoadResult:
    """POST ``bodies`` (serialised JSON, events in it) with ``concurrency`` workers.

    Stops when the bodies run out or ``max_seconds`` have passed; ``watch`` names processes
    whose CPU use over the run is reported (percent of one core).
    """
    res = LoadResult()
    nxt = 0
    headers = {"Content-Type": "application/json"}
    cpu0 = {name: p.cpu_seconds() for name, p in (watch or {}).items()}
    me = psutil.Process()
    me0 = sum(me.cpu_times()[:2])
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        nonlocal nxt
        while nxt < len(bodies) and time.perf_counter() < deadline:
            body, n = bodies[nxt]
            nxt += 1
            t0 = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    raw = await resp.read()
                    status = resp.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                res.requests += 1
                res.failed += 1
                key = type(exc).__name__
                res.errors[key] = res.errors.get(key, 0) + 1
                continue
            res.latencies.append(time.perf_counter() - t0)
            res.requests += 1
            if 200 <= status < 300:
                res.ok += 1
                res.events += n
                res.accepted += accepted_of(status, raw, n) if accepted_of else n
            else:
                res.failed += 1
                key = f"HTTP {status}: {raw[:120].decode(errors='replace')}"
                res.errors[key] = res.errors.get(key, 0) + 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    res.seconds = time.perf_counter() - started
    for name, p in (watch or {}).items():
        res.cpu[name] = 100.0 * (p.cpu_seconds() - cpu0[name]) / res.seconds
    res.client_cpu = 100.0 * (sum(me.cpu_times()[:2]) - me0) / res.seconds
    return res


def client_session(concurrency: int) -> aiohttp.ClientSession:
    """Keep-alive connections, one per worker; 60 s bound on any one request."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency),
                                 timeout=aiohttp.ClientTimeout(total=60))


def parse_list(text: str) -> list[int]:
    """``"1,10,100"`` -> ``[1, 10, 100]``."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise SystemExit(f"expected a comma-separated list of numbers, got {text!r}") from exc
    if not out or min(out) < 1:
        raise SystemExit(f"expected positive numbers, got {text!r}")
    return out


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "--null-server":
    _null_server_main(int(sys.argv[2]))
