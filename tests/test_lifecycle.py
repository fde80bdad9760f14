"""The service's parts start in order and unwind in reverse: a part that fails to start leaves
nothing running behind it (no open store, no dispatcher task), and a clean stop stops them all."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from tests.servers import free_port
from tests.test_api import INVENTORY
from tests.test_e2e import fast_rules
from watcher import app as app_module
from watcher.config import Config, load_config
from watcher.notify.outbox import Dispatcher
from watcher.pipeline import EngineWorker, Ingestor
from watcher.runtime import RUNTIME
from watcher.store import Store


def _config(folder: Path) -> Config:
    (folder / "inventory.yaml").write_text(yaml.safe_dump(INVENTORY, allow_unicode=True))
    fast_rules(folder)
    (folder / "watcher.yaml").write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml", "database": "sqlite:///watcher.db",
        "listen": f"127.0.0.1:{free_port()}", "secret_key": "lifecycle-test-key", "engine_tick": "0.1s",
        "snmp": {"listen": "off"}}))
    return load_config(folder / "watcher.yaml")


def _record(monkeypatch: pytest.MonkeyPatch, calls: list[str], cls: type[Any], name: str, what: str) -> None:
    """Wrap ``cls.name`` so that ``calls`` says when it ran (the original still runs)."""
    original = getattr(cls, name)
    if asyncio.iscoroutinefunction(original):
        async def wrapped_async(self: Any, *args: Any, **kw: Any) -> Any:
            calls.append(what)
            return await original(self, *args, **kw)
        monkeypatch.setattr(cls, name, wrapped_async)
    else:
        def wrapped(self: Any, *args: Any, **kw: Any) -> Any:
            calls.append(what)
            return original(self, *args, **kw)
        monkeypatch.setattr(cls, name, wrapped)


def _record_stops(monkeypatch: pytest.MonkeyPatch, calls: list[str]) -> None:
    """Record the stops of the parts that hold something: tasks, the engine's lead, the store."""
    for cls, name, what in ((Dispatcher, "stop", "dispatcher"), (EngineWorker, "stop", "engine worker"),
                            (Ingestor, "stop", "ingestor"), (Store, "release_lead", "lead released"),
                            (Store, "close", "store")):
        _record(monkeypatch, calls, cls, name, what)


def _others() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()}


async def test_a_part_that_fails_to_start_stops_every_part_started_before_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    calls: list[str] = []
    _record(monkeypatch, calls, Store, "close", "store closed")
    _record(monkeypatch, calls, Dispatcher, "start", "dispatcher started")
    _record(monkeypatch, calls, Dispatcher, "stop", "dispatcher stopped")
    _record(monkeypatch, calls, Ingestor, "start", "ingestor started")

    async def cannot_start(self: EngineWorker) -> None:
        calls.append("engine worker failed")
        raise RuntimeError("the engine cannot start")

    monkeypatch.setattr(EngineWorker, "start", cannot_start)
    before = _others()
    with pytest.raises(RuntimeError, match="the engine cannot start"):
        await app_module._serve(config, announce=False)
    assert calls == ["dispatcher started", "engine worker failed", "dispatcher stopped", "store closed"]
    await asyncio.sleep(0)
    assert _others() - before == set(), "a task of a started part is still running"


async def test_collectors_that_fail_to_start_stop_the_engine_and_release_its_lead(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The last part failing unwinds all the others: the self-watch, the ingest writer, the
    engine (which gives up its lead, so another replica can take it) and the store."""
    config = _config(tmp_path)
    calls: list[str] = []
    _record_stops(monkeypatch, calls)

    def cannot_run(*args: Any) -> Any:
        raise OSError("collectors cannot start")

    monkeypatch.setattr(app_module, "run_collectors", cannot_run)
    before = _others()
    with pytest.raises(OSError, match="collectors cannot start"):
        await app_module._serve(config, announce=False)
    assert calls == ["ingestor", "engine worker", "lead released", "dispatcher", "store"]
    await asyncio.sleep(0)
    assert _others() - before == set(), "a task of a started part is still running"


async def test_a_stop_unwinds_every_part_in_reverse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = _config(tmp_path)
    calls: list[str] = []
    _record_stops(monkeypatch, calls)
    before = _others()
    app = app_module.build_app(config)
    runner = web.AppRunner(app)
    await runner.setup()
    rt = app[RUNTIME]
    await _until(lambda: rt.worker.leader, "the engine to lead")
    await runner.cleanup()
    assert calls == ["ingestor", "engine worker", "lead released", "dispatcher", "store"]
    assert not rt.worker.leader or rt.store._lead_fd is None
    await asyncio.sleep(0)
    assert _others() - before == set(), "a task of a stopped part is still running"


async def _until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
