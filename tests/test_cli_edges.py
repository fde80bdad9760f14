"""The command line's rough edges, as a user meets them: a busy port, a configuration with
several mistakes, ``--version``, help for every option, a closed pipe, replay lines that
carry no time.  Each runs the installed ``watcher`` command as a subprocess."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WATCHER = str(Path(sys.executable).parent / "watcher")


def run(*args: str, timeout: float = 60, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHER, *args], capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload, no-any-return]


def demo_copy(tmp_path: Path) -> Path:
    for name in ("watcher.yaml", "rules.yaml", "inventory.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path / "watcher.yaml"


def test_a_busy_port_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    cfg = demo_copy(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        out = run("serve", "--config", str(cfg), "--listen", f"127.0.0.1:{port}", "--snmp-listen", "off",
                  "--db", f"sqlite:///{tmp_path / 'w.db'}", "--log-level", "warning")
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert f"error: cannot listen on 127.0.0.1:{port}: address already in use" in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith("error:")]) == 1


def test_check_lists_every_error_in_one_run_and_suggests_the_key_meant(tmp_path: Path) -> None:
    cfg = demo_copy(tmp_path)
    inv = (tmp_path / "inventory.yaml").read_text()
    inv = inv.replace("    timezone: Europe/Warsaw", "    timezon: Europe/Warsaw", 1)
    inv = inv.replace("        remote: true\n", "        remtoe: true\n", 1)
    (tmp_path / "inventory.yaml").write_text(inv)
    rules = (tmp_path / "rules.yaml").read_text().replace("    resolve_after: 10m\n", "    resolve_afer: 10m\n", 1)
    (tmp_path / "rules.yaml").write_text(rules)
    cfg.write_text(cfg.read_text().replace("listen: 127.0.0.1:8080", "listne: 127.0.0.1:8080"))
    out = run("check", "--config", str(cfg))
    assert out.returncode == 2, out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 4, out.stderr
    assert any("watcher.yaml:" in e and "listne: unknown key; did you mean 'listen'?" in e for e in errors)
    assert any("inventory.yaml:7:" in e and "timezon: unknown key; did you mean 'timezone'?" in e for e in errors)
    assert any("inventory.yaml:" in e and "remtoe: unknown key; did you mean 'remote'?" in e for e in errors)
    assert any("rules.yaml:" in e and "resolve_afer: unknown key; did you mean 'resolve_after'?" in e for e in errors)
    assert out.stderr.strip().endswith("4 errors")


def test_check_of_the_shipped_demo_is_clean() -> None:
    out = run("check", "--config", str(ROOT / "watcher.yaml"))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok: ")


def test_version_and_help_for_every_option() -> None:
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("watcher ")
    top = run("--help").stdout
    for command in ("serve", "check", "replay", "report", "rules"):
        assert command in top
    for word in ("--log-level", "--log-format", "--version"):
        assert word in top
    for argv in (["--help"], ["serve", "--help"], ["check", "--help"], ["replay", "--help"], ["report", "--help"],
                 ["rules", "test", "--help"]):
        text = run(*argv).stdout
        options = [line.strip() for line in text.splitlines() if line.strip().startswith("-")
                   and not line.strip().startswith("-h")]
        for option in options:
            # argparse puts an option's help on its line, or on the next one when the option is long
            following = text.split(option, 1)[1].splitlines()
            said = (following[0] + (following[1] if len(following) > 1 else "")).strip()
            assert said, f"{' '.join(argv)}: {option} has no help"


def test_replay_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    line = {"labels": {"alertname": "InstanceDown", "host": "krk-nas01"}, "observed_at": "2026-11-02T08:00:00Z"}
    with stream.open("w") as f:
        for i in range(3000):
            f.write(json.dumps({**line, "labels": {**line["labels"], "n": str(i)},
                                "observed_at": f"2026-11-02T08:{i // 60 % 60:02d}:{i % 60:02d}Z"}) + "\n")
    proc = subprocess.run(f"{WATCHER} replay --config {ROOT / 'watcher.yaml'} {stream} | head -c 10",
                          shell=True, capture_output=True, text=True, timeout=120)
    assert len(proc.stdout) == 10
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_replay_warns_about_lines_without_time(tmp_path: Path) -> None:
    stream = tmp_path / "stream.jsonl"
    stream.write_text(
        json.dumps({"labels": {"alertname": "InstanceDown", "host": "krk-nas01"}}) + "\n"
        + json.dumps({"labels": {"alertname": "InstanceDown", "host": "krk-nas02"},
                      "observed_at": "2026-11-02T08:00:00Z"}) + "\n")
    out = run("replay", "--config", str(ROOT / "watcher.yaml"), str(stream))
    assert out.returncode == 0, out.stderr
    assert "skipped event InstanceDown: it carries no time" in out.stderr
    assert json.loads(out.stdout)["tickets"] == []
