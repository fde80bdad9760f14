"""A real Request Tracker 5 for the tests: Debian's ``request-tracker5`` with ``rt5-db-sqlite``
(installed by scripts/system-deps.sh), started as its standalone ``rt-server --port PORT``.

The package's database (made by dbconfig-common when the package was installed) is copied
into the test's folder, and RT reads a configuration folder of the test's own
(``RT_SITE_CONFIG_DIR``: WebPath '', WebDomain 127.0.0.1, the copied database), so the
system's RT is neither used nor changed.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers import free_port

RT_SERVER = Path("/usr/share/request-tracker5/libexec/rt-server")
RT_DB = Path("/var/lib/dbconfig-common/sqlite3/request-tracker5/rtdb")
ROOT_AUTH = "Basic " + base64.b64encode(b"root:password").decode()


def rt_available() -> str | None:
    """None when RT can run here, else why not (the tests skip with that reason)."""
    if not RT_SERVER.exists():
        return "request-tracker5 is not installed (bash scripts/system-deps.sh installs it)"
    if not os.access(RT_DB, os.R_OK):
        return f"RT's initial SQLite database {RT_DB} is missing or unreadable (rt5-db-sqlite)"
    return None


class RtServer:
    def __init__(self, workdir: Path, timezone: str = "UTC") -> None:
        self.workdir = workdir
        self.timezone = timezone
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> RtServer:
        conf = self.workdir / "RT_SiteConfig.d"
        conf.mkdir(parents=True, exist_ok=True)
        db = self.workdir / "rtdb"
        shutil.copyfile(RT_DB, db)
        (conf / "50-watcher-test.pm").write_text(f"""
Set($rtname, 'watcher-test');
Set($Organization, 'watcher-test');
Set($Timezone, '{self.timezone}');
Set($DatabaseType, 'SQLite');
Set($DatabaseName, '{db}');
Set($WebPath, '');
Set($WebDomain, '127.0.0.1');
Set($WebPort, {self.port});
Set($WebBaseURL, 'http://127.0.0.1:{self.port}');
Set($LogToSyslog, undef);
Set($LogToSTDERR, 'warning');
Set($MailCommand, 'testfile');
1;
""")
        log = (self.workdir / "rt.log").open("ab")
        self.proc = subprocess.Popen([str(RT_SERVER), "--port", str(self.port)], cwd=self.workdir, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "RT_SITE_CONFIG_DIR": str(conf)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rt-server exited: {(self.workdir / 'rt.log').read_text()[-3000:]}")
            try:
                if self.api("GET", "/queues/all")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"rt-server did not answer: {(self.workdir / 'rt.log').read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # its own session: the server and its children
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def api(self, method: str, path: str, body: Any = None, form: dict[str, str] | None = None) -> tuple[int, Any]:
        """A REST 2.0 call as root (the agent of these tests)."""
        headers = {"Authorization": ROOT_AUTH}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        req = urllib.request.Request(f"{self.url}/REST/2.0{path}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                raw, status = resp.read(), resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw.strip() else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_queue(self, name: str) -> None:
        status, got = self.api("POST", "/queue", {"Name": name})
        assert status == 201, got

    def tickets(self, queue: str) -> list[dict[str, Any]]:
        status, got = self.api("POST", "/tickets", form={"query": f"Queue = '{queue}'",
                                                         "fields": "Subject,Status,Owner"})
        assert status == 200, got
        return list(got["items"])

    def texts(self, ticket_id: str) -> list[str]:
        """The text/plain contents of the ticket's attachments: its body, then the comments."""
        status, got = self.api("GET", f"/ticket/{ticket_id}/attachments?fields=Content,ContentType&per_page=100")
        assert status == 200, got
        out = []
        for item in got["items"]:
            if item.get("ContentType") == "text/plain" and item.get("Content"):
                out.append(str(item["Content"]))  # RT 5.0.3 (Debian 12) gives text contents as text
        return out

    def comments(self, ticket_id: str) -> int:
        status, got = self.api("GET", f"/ticket/{ticket_id}/history?fields=Type&per_page=100")
        assert status == 200, got
        return sum(1 for t in got["items"] if t.get("Type") == "Comment")


@pytest.fixture(scope="module")
def rt_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    why = rt_available()
    if why:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    # RT west of UTC: a poll whose dates RT read in its own time zone would miss hours of changes
    server = RtServer(tmp_path_factory.mktemp("rt"), timezone="America/New_York").start()
    try:
        yield server
    finally:
        server.stop()
