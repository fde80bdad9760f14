"""What ships in deploy/prometheus/ works: the alerting rules on watcher's own metrics pass
``promtool check rules`` and their unit tests (``promtool test rules``, Debian's prometheus
package), every query of the Grafana dashboard is valid PromQL, and every metric name the
rules and the dashboard use is one that a running ``watcher serve`` really exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, free_port
from tests.test_selfwatch_e2e import write_config

DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "watcher.rules.yml"
DASHBOARD = DEPLOY / "watcher-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not installed (Debian package prometheus)")

# made by Prometheus for every scrape target, not by watcher
PROMETHEUS_OWN = {"up"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan", "atan2"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label
    matchers, ranges, grouping clauses, functions, keywords and numbers are taken away."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])[A-Za-z_:][A-Za-z0-9_:]*", e):
        if e[m.end():].lstrip().startswith("(") or m.group(0) in _KEYWORDS:
            continue
        names.add(m.group(0))
    return names


def rule_exprs() -> list[str]:
    doc = yaml.safe_load(RULES.read_text())
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [v["query"].split("(", 1)[1].rsplit(",", 1)[0] for v in doc["templating"]["list"]
              if v["type"] == "query"]  # label_values(SELECTOR, label)
    return exprs


def exported_names(exposition: str) -> set[str]:
    """Every name a Prometheus scrape of this text can return: each declared family with the
    series its type implies, and every sample's name."""
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            suffixes = {"counter": ["", "_created"], "histogram": ["_bucket", "_sum", "_count", "_created"],
                        "summary": ["", "_sum", "_count", "_created"]}.get(kind, [""])
            names |= {name + s for s in suffixes}
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_metric_name_extraction() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, path) (rate(watcher_ingest_seconds_bucket{job="w", path=~"a|b"}'
            '[5m]))) > 1e3 and on (instance) watcher_engine_leader == 1 unless absent(up{job="x"})'
            ' or time() - foo:bar offset 5m')
    assert metric_names(expr) == {"watcher_ingest_seconds_bucket", "watcher_engine_leader", "up", "foo:bar"}
    assert {"watcher_inbox_lag", "watcher_engine_heartbeat_timestamp_seconds", "watcher_notifications_total",
            "up"} <= set().union(*map(metric_names, rule_exprs()))


@needs_promtool
def test_promtool_checks_and_unit_tests_the_shipped_rules() -> None:
    assert PROMTOOL is not None
    check = subprocess.run([PROMTOOL, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 13 rules found" in check.stdout
    unit = subprocess.run([PROMTOOL, "test", "rules", "watcher.rules.test.yml"], cwd=DEPLOY, capture_output=True,
                          text=True, timeout=120)
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query of the dashboard (as a recording rule); Grafana's template
    variables sit inside label values, where any text is valid."""
    assert PROMTOOL is not None
    exprs = dashboard_exprs()
    assert len(exprs) > 20
    doc = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query{i}", "expr": e}
                                                      for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(doc))
    out = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_metric_the_rules_and_dashboard_use_is_exported(tmp_path: Path) -> None:
    with HttpReceiver() as hc:
        cfg = write_config(tmp_path, f"sqlite:///{tmp_path / 'w.db'}",
                           feeds=[{"name": "acme-watchdog", "client": "acme", "match": {"alertname": "Watchdog"},
                                   "period": "1h"}],
                           heartbeat={"url": hc.url("/ping"), "interval": "0.2s"})
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            assert w.request("POST", "/api/v1/events", [{"labels": {"alertname": "Watchdog", "client": "acme"}}])[0] \
                == 200
            hc.wait_for(1, timeout=20)
            exposition = w.request("GET", "/metrics")[1]
        finally:
            w.stop()
    exported = exported_names(exposition)
    assert 'watcher_events_received_total{source="api"} 1.0' in exposition
    for what, exprs in (("rules", rule_exprs()), ("dashboard", dashboard_exprs())):
        used = set().union(*map(metric_names, exprs))
        assert len(used) > 10
        missing = sorted(used - exported - PROMETHEUS_OWN)
        assert not missing, f"the {what} use metrics that /metrics does not export: {missing}"
