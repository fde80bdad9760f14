"""``watcher silences`` and ``watcher maintenances`` against a real ``watcher serve`` whose
API needs a bearer token: list, lift, and the errors a user sees."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from tests.proc import WATCHER, WatcherProcess
from tests.servers import free_port
from tests.test_api import INVENTORY
from tests.test_e2e import fast_rules

TOKEN = "cli-windows-token-4411"


def _cli(cfg: Path, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    if token:
        env["WATCHER_TOKEN"] = token
    return subprocess.run([WATCHER, args[0], "--config", str(cfg), *args[1:]], capture_output=True, text=True, env=env,
                          timeout=60)


def test_silences_and_maintenances_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True))
    fast_rules(tmp_path)
    port = free_port()
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml", "listen": f"127.0.0.1:{port}",
                                   "notify": {"enabled": False}, "snmp": {"listen": "off"},
                                   "auth": {"api": {"kind": "bearer", "token": TOKEN}}}))
    w = WatcherProcess(cfg, port, tmp_path / "watcher.log")
    w.start()
    try:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        ends = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body = w.request("POST", "/api/v1/silences", {"matchers": {"client": "acme"}, "ends_at": ends,
                                                              "mute": True, "comment": "oops"}, auth)
        assert status == 201, body
        sid = body["silence"]["id"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        status, body = w.request("POST", "/api/v1/maintenances", {"client": "acme", "starts_at": now,
                                                                  "ends_at": ends, "reason": "r"}, auth)
        assert status == 201, body
        mid = body["maintenance"]["id"]

        listed = _cli(cfg, "silences", "list")
        assert listed.returncode == 0, listed.stderr
        (silence,) = json.loads(listed.stdout)["silences"]
        assert silence["id"] == sid and silence["mute"] is True and silence["comment"] == "oops"

        refused = _cli(cfg, "silences", "--token", "wrong", "list")
        assert refused.returncode == 1 and "403" in refused.stderr and TOKEN not in refused.stderr

        lifted = _cli(cfg, "silences", "delete", sid)
        assert lifted.returncode == 0, lifted.stderr
        assert json.loads(_cli(cfg, "silences", "list").stdout) == {"silences": []}
        again = _cli(cfg, "silences", "delete", sid)
        assert again.returncode == 1 and "404" in again.stderr

        assert [m["id"] for m in json.loads(_cli(cfg, "maintenances", "list").stdout)["maintenances"]] == [mid]
        assert _cli(cfg, "maintenances", "delete", mid).returncode == 0
        assert json.loads(_cli(cfg, "maintenances", "list").stdout) == {"maintenances": []}
    finally:
        assert w.stop() == 0
    down = _cli(cfg, "silences", "list")
    assert down.returncode == 1 and "does not answer" in down.stderr
