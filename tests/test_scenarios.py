"""The acceptance judge on the shared sample: replay exactly as the judge does, then score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED

SAMPLE = SHARED / "scenarios" / "sample"


@pytest.mark.skipif(not (SAMPLE / "stream.jsonl").exists(), reason="../shared/scenarios/sample is not there")
def test_sample_scenario_scores(tmp_path: Path) -> None:
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: {SAMPLE / 'inventory.yaml'}\n")
    out = subprocess.run([str(Path(sys.executable).parent / "watcher"), "replay", "--config", str(cfg),
                          str(SAMPLE / "stream.jsonl")], capture_output=True, text=True, timeout=600, check=True)
    (tmp_path / "out.json").write_text(out.stdout)
    doc = json.loads(out.stdout)
    assert set(doc) >= {"tickets", "notifications"}
    judged = subprocess.run([sys.executable, str(SHARED / "scenarios" / "score.py"), str(SAMPLE),
                             str(tmp_path / "out.json")], capture_output=True, text=True, timeout=300, check=True)
    figures = json.loads(judged.stdout.strip().splitlines()[-1])
    assert figures["error"] is None
    for key in ("incident_recall", "ticket_precision", "affected_precision", "affected_recall"):
        assert figures[key] >= 0.95, (key, figures, judged.stdout)
    for key in ("planned_correct", "callback_followups", "advice_correct"):
        assert figures[key] == 1.0, (key, figures)
    assert figures["escalation_precision"] >= 0.9 and figures["escalation_recall"] >= 0.9, figures
