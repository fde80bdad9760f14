"""``make run`` shows itself: the command the Makefile's ``run`` target starts fills the
console with an office outage, a share ticket and a mailbox ticket within 60 seconds,
with no network needed (the demo plays its morning into the service's own inbox)."""

from __future__ import annotations

import re
import shlex
import sys
import time
from pathlib import Path

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import free_port


def make_run_command() -> list[str]:
    """The recipe of the Makefile's ``run`` target, with the venv's bin as this Python's."""
    text = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run:.*\n\t(.+)$", text, re.M)
    assert recipe is not None, "no run target in the Makefile"
    argv = shlex.split(recipe.group(1).replace("$(BIN)", str(Path(sys.executable).parent)))
    return argv


def test_make_run_shows_an_outage_a_share_and_a_mailbox_within_a_minute(tmp_path: Path) -> None:
    argv = make_run_command()
    assert argv[1:3] == ["serve", "--config"] and "--demo" in argv
    port = free_port()
    w = WatcherProcess(ROOT / "watcher.yaml", port, tmp_path / "watcher.log")
    w.extra = [a for a in argv[4:]]  # the run target's flags after --config FILE
    started = time.monotonic()
    w.start()
    try:
        def three() -> dict[str, list[str]] | None:
            status, body = w.request("GET", "/api/v1/tickets")
            if status != 200:
                return None
            by: dict[str, list[str]] = {}
            for tk in body["tickets"]:
                by.setdefault(tk["category"], []).append(tk["title"])
            return by if {"internet", "disk", "mail"} <= set(by) else None

        found = w.wait_until(three, timeout=60 - (time.monotonic() - started), what="the demo's three tickets")
        assert any("Biuro Kraków" in t for t in found["internet"])
        assert any("acme-projects" in t for t in found["disk"])
        assert any("ewa.nowak@acme.example" in t for t in found["mail"])
        assert time.monotonic() - started < 60
        log = (tmp_path / "watcher.log").read_text()
        assert "ticket opened: " in log and "Traceback" not in log
    finally:
        assert w.stop() == 0
