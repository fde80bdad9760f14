"""The monthly client report from real engine output (the shared sample replayed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHARED
from watcher import report
from watcher.config import load_inventory

SAMPLE = SHARED / "scenarios" / "sample"


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SAMPLE / "stream.jsonl").exists():
        pytest.skip("../shared/scenarios/sample is not there")
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "watcher.yaml"
    cfg.write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: {SAMPLE / 'inventory.yaml'}\n")
    out = subprocess.run([str(Path(sys.executable).parent / "watcher"), "replay", "--config", str(cfg),
                          str(SAMPLE / "stream.jsonl")], capture_output=True, text=True, check=True, timeout=300)
    (tmp / "out.json").write_text(out.stdout)
    return tmp


def test_report_counts_what_happened_to_the_client(replayed: Path) -> None:
    tickets = json.loads((replayed / "out.json").read_text())["tickets"]
    inv = load_inventory(SAMPLE / "inventory.yaml")
    rep = report.build(tickets, inv.clients["quantis"], "2026-11")
    mine = [t for t in tickets if t["client"] == "quantis"]
    assert rep.tickets == len(mine) > 0
    assert sum(rep.by_category.values()) == rep.tickets
    assert rep.escalated == sum(1 for t in mine if t["sla"]["escalated_at"])
    assert set(rep.outage_minutes) == {t["entity"]["id"] for t in mine if t["category"] == "internet"}
    assert rep.recommendations
    assert report.build(tickets, inv.clients["quantis"], "2026-10").tickets == 0


def test_report_command_in_polish_and_html(replayed: Path) -> None:
    cmd = [str(Path(sys.executable).parent / "watcher"), "report", "--config", str(replayed / "watcher.yaml"),
           "--client", "granit", "--month", "2026-11", "--from-replay", str(replayed / "out.json")]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert text.startswith("Raport miesięczny 2026-11: Granit")
    assert "Rekomendacje:" in text
    html = subprocess.run([*cmd, "--format", "html"], capture_output=True, text=True, check=True).stdout
    assert html.startswith("<!doctype html>") and "<h1>Raport miesięczny" in html
    bad = subprocess.run([*cmd[:-4], "--month", "2026-13"], capture_output=True, text=True)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr
