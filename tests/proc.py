"""Run ``watcher serve`` as a real subprocess, the way users and the e2e tests do."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

WATCHER = str(Path(sys.executable).parent / "watcher")


class WatcherProcess:
    def __init__(self, config: Path, port: int, log: Path, extra: list[str] | None = None) -> None:
        self.config, self.port, self.log = config, port, log
        self.extra = extra or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        logf = self.log.open("ab")
        self.proc = subprocess.Popen(
            [WATCHER, "serve", "--config", str(self.config), "--listen", f"127.0.0.1:{self.port}",
             "--snmp-listen", "off", *self.extra],
            stdout=logf, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"watcher exited with {self.proc.returncode}:\n{self.log.read_text()}")
            if b"watcher listening on" in self.log.read_bytes()[offset:]:  # a byte offset: logs are UTF-8
                return
            time.sleep(0.1)
        raise TimeoutError(f"watcher did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL the service; with worker processes, wait until they are gone from the port."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    pass
            except OSError:
                return
            time.sleep(0.1)
        raise TimeoutError("the killed service's workers still answer on its port")

    def stop(self) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise

    def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                ) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode(errors="replace")

    def wait_until(self, predicate: Any, timeout: float = 30, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            last = predicate()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; last: {last!r}\n--- log ---\n{self.log.read_text()}")
