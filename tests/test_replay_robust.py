"""``watcher replay`` never ends on what a line holds: a line it cannot read is reported on
stderr with its number and reason and skipped, a line whose handling fails is set aside as if
it had not been there, and only an unreadable file or configuration ends it non-zero.  Also
the checks at the edge that keep what the engine stores within bounds."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.test_engine import INVENTORY, ROOT
from watcher import replay as replay_mod
from watcher.collectors.formats import FORMATS
from watcher.config import load_config
from watcher.model import MAX_LABEL_VALUE, Event, EventError
from watcher.rules.engine import Engine

WATCHER = str(Path(sys.executable).parent / "watcher")
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _z(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _probe(instance: str, status: str, at: datetime, start: datetime = T0) -> dict[str, Any]:
    line = {"source": "probe", "status": status, "observed_at": _z(at), "starts_at": _z(start),
            "labels": {"alertname": "ProbeFailed", "client": "acme", "site": "krk", "instance": instance}}
    if status == "resolved":
        line["ends_at"] = _z(at)
    return line


def _outage() -> list[dict[str, Any]]:
    return [_probe("https://vpn.acme.example/", "firing", T0), _probe("203.0.113.10:443", "firing", T0),
            {"op": "callback", "at": _z(T0 + timedelta(minutes=5)), "person": "jan"},
            _probe("https://vpn.acme.example/", "firing", T0 + timedelta(minutes=10)),
            _probe("https://vpn.acme.example/", "resolved", T0 + timedelta(hours=1)),
            _probe("203.0.113.10:443", "resolved", T0 + timedelta(hours=1))]


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY)
    path = tmp_path / "watcher.yaml"
    path.write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: inventory.yaml\n")
    return path


def _run(config_path: Path, stream: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHER, "replay", "--config", str(config_path), str(stream)], capture_output=True,
                          text=True, timeout=120)


def test_bad_lines_are_reported_and_the_rest_is_replayed(config_path: Path, tmp_path: Path) -> None:
    good = _outage()
    clean = tmp_path / "clean.jsonl"
    clean.write_text("".join(json.dumps(x) + "\n" for x in good))
    bad_lines = [
        '{"labels": ',  # cut off
        json.dumps({"labels": {"metric": "share_used_bytes", "share": "x"}, "value": 10**30}),
        '{"labels": {"metric": "share_used_bytes"}, "value": 1e400}',  # JSON's infinity
        json.dumps({"labels": {"alertname": "X", "client": "acme"}, "starts_at": "9999-12-31T23:59:59Z"}),
        json.dumps({"op": "maintenance", "client": "acme", "starts_at": "soon", "ends_at": "later"}),
        json.dumps([1, 2, 3]),
        "\udcff not utf-8",
    ]
    noisy = [json.dumps(x) for x in good[:3]] + bad_lines + [
        json.dumps({"op": "callback", "at": _z(T0 + timedelta(minutes=6)), "person": "nobody"}),
        json.dumps({"op": "maintenance", "at": _z(T0), "client": "ghost", "starts_at": _z(T0),
                    "ends_at": _z(T0 + timedelta(hours=1))}),
        json.dumps({"labels": {"alertname": "DiskFull", "client": "newclient", "severity": "warning"},
                    "observed_at": _z(T0 + timedelta(minutes=7))}),
        # a sender's clock a century ahead must not fast-forward the stream
        json.dumps(_probe("https://vpn.acme.example/", "firing", T0 + timedelta(days=365 * 100))),
    ] + [json.dumps(x) for x in good[3:]]
    stream = tmp_path / "noisy.jsonl"
    stream.write_bytes("\n".join(noisy).encode("utf-8", "surrogateescape") + b"\n")
    a, b = _run(config_path, clean), _run(config_path, stream)
    assert a.returncode == 0 and b.returncode == 0, b.stderr
    clean_doc, noisy_doc = json.loads(a.stdout), json.loads(b.stdout)
    def outcome(doc: dict[str, Any]) -> list[dict[str, Any]]:  # the far-ahead re-send adds one event, no more
        return [{k: v for k, v in t.items() if k not in ("event_count", "timeline")} for t in doc["tickets"]]

    assert outcome(noisy_doc) == outcome(clean_doc), "the bad lines changed nothing"
    assert noisy_doc["notifications"] == clean_doc["notifications"]
    assert noisy_doc["stats"]["skipped_lines"] == 7
    for n in range(4, 11):
        assert f"noisy.jsonl:{n}: skipped, cannot be read:" in b.stderr, (n, b.stderr)
    assert "noisy.jsonl:11: callback op skipped: no person 'nobody'" in b.stderr
    assert "noisy.jsonl:12: maintenance op skipped: no client 'ghost'" in b.stderr
    assert "noisy.jsonl:14: its time" in b.stderr and "far from the stream" in b.stderr
    assert "7 lines skipped" in b.stderr
    assert {(u["label"], u["value"]) for u in noisy_doc["stats"]["unbound"]} == {("client", "newclient")}


def test_only_an_unreadable_file_or_config_ends_it(config_path: Path, tmp_path: Path) -> None:
    missing = _run(config_path, tmp_path / "nope.jsonl")
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr
    folder = _run(config_path, tmp_path)
    assert folder.returncode == 2 and "error:" in folder.stderr
    bad_cfg = tmp_path / "bad.yaml"
    bad_cfg.write_text("rules: nowhere.yaml\n")
    stream = tmp_path / "s.jsonl"
    stream.write_text("")
    assert _run(bad_cfg, stream).returncode == 2


@pytest.mark.parametrize("every", [3, 2000])
def test_a_line_whose_handling_fails_is_as_if_it_had_not_been_there(config_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     every: int) -> None:
    """The failure is injected (no input is known to make the engine raise any more): the
    engine's alert handling is wrapped to raise after it has done its work for one marked alert."""
    original = Engine._alert

    def alert(self: Engine, ev: Event, t: float) -> None:
        original(self, ev, t)
        if ev.alertname == "Poison":
            raise RuntimeError("injected")

    monkeypatch.setattr(Engine, "_alert", alert)
    monkeypatch.setattr(replay_mod, "CHECKPOINT_EVERY", every)
    config = load_config(config_path)
    good = _outage()
    poison = {"labels": {"alertname": "Poison", "client": "acme", "site": "krk", "severity": "critical"},
              "observed_at": _z(T0 + timedelta(minutes=4))}
    clean = replay_mod.replay(config, [json.dumps(x) for x in good])
    noisy = replay_mod.replay(config, [json.dumps(x) for x in [*good[:3], poison, *good[3:]]])
    assert noisy["tickets"] == clean["tickets"] and noisy["notifications"] == clean["notifications"]
    assert noisy["stats"]["set_aside_lines"] == 1 and len(clean["tickets"]) == 1


# ---------------------------------------------------------------- the edge


def test_values_times_and_labels_are_checked_at_the_edge() -> None:
    base = {"labels": {"metric": "share_used_bytes", "share": "s"}, "observed_at": "2026-11-02T08:00:00Z"}
    for value in (1e20, -1e19, 10**30):
        with pytest.raises(EventError, match="value"):
            Event.from_dict(base | {"value": value})
    assert Event.from_dict(base | {"value": 1e18}).value == 1e18
    for when in ("9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "2300-01-01T00:00:00Z"):
        with pytest.raises(EventError, match="observed_at"):
            Event.from_dict(base | {"observed_at": when})
    assert Event.from_dict(base | {"starts_at": "0001-01-01T00:00:00Z"}).starts_at is None
    with pytest.raises(EventError, match="label name"):
        Event.from_dict({"labels": {"a\nb": "x"}})
    ev = Event.from_dict({"labels": {"alertname": "A\x00B", "host": "h" * 5000}})
    assert ev.labels["alertname"] == "A\ufffdB" and len(ev.labels["host"]) == MAX_LABEL_VALUE
    # the other formats go through the same checks
    with pytest.raises(EventError, match=r"\[0\] startsAt|\[0\] starts_at"):
        FORMATS["prometheus"]([{"labels": {"alertname": "A"}, "startsAt": "2999-01-01T00:00:00Z"}],
                              T0)
    (am,) = FORMATS["prometheus"]([{"labels": {"alertname": "A", "x": "y" * 3000}}], T0)
    assert len(am.labels["x"]) == MAX_LABEL_VALUE
