"""The command line of CONTRACT section 7 that other tests do not cover: ``watcher rules test``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WATCHER = str(Path(sys.executable).parent / "watcher")


def rules_test(tmp_path: Path, event: object) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    return subprocess.run([WATCHER, "rules", "test", "--config", str(ROOT / "watcher.yaml"), str(path)],
                          capture_output=True, text=True, timeout=60)


def test_rules_test_explains_binding_role_and_hold(tmp_path: Path) -> None:
    out = rules_test(tmp_path, {"labels": {"alertname": "InstanceDown", "host": "krk-nas01"}})
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["bound_labels"]["site"] == "acme-krk" and doc["bound_labels"]["client"] == "acme"
    roles = {(m["rule"], m["role"]) for m in doc["matches"]}
    assert roles == {("site-internet", "symptom"), ("host-down", "signal")}
    host = next(m for m in doc["matches"] if m["rule"] == "host-down")
    assert host["hold_s"] == 300 and host["group"] == "host-down|acme|krk-nas01"


def test_rules_test_says_when_nothing_names_an_event(tmp_path: Path) -> None:
    out = rules_test(tmp_path, [{"labels": {"alertname": "PrinterTonerLow", "client": "acme", "severity": "info"}},
                                {"labels": {"alertname": "Mystery"}}])
    assert out.returncode == 0, out.stderr
    first, second = json.loads(out.stdout)
    assert first["matches"] == [] and first["outcome"].startswith("recorded only")
    assert "binds to no client" in second["outcome"]


def test_rules_test_rejects_a_bad_event(tmp_path: Path) -> None:
    out = rules_test(tmp_path, {"labels": {}})
    assert out.returncode == 2 and "labels" in out.stderr
