"""Hot reload: a broken new file is rejected with its error, the old configuration stays; a
valid one is swapped in whole, and the collectors run on its inventory."""

from __future__ import annotations

import asyncio
import copy
import signal
import socket
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_api import INVENTORY, Api, app_in
from tests.test_e2e import write_config
from watcher.config import ConfigError
from watcher.feeds import ALERTNAME
from watcher.store import feeds as feed_table


def test_reload_rejects_broken_rules_and_keeps_serving(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            rules = tmp_path / "rules.yaml"
            good = rules.read_text()
            doc = yaml.safe_load(good)
            doc["rules"].append({"name": "broken", "kind": "outage", "colour": "red"})
            broken = yaml.safe_dump(doc, allow_unicode=True)
            rules.write_text(broken)
            status, body = w.request("POST", "/api/v1/reload", {})
            assert status == 400, body
            assert "rules.yaml" in body["error"] and "colour" in body["error"], body
            line = next(i for i, text in enumerate(broken.splitlines(), 1) if "colour" in text)
            assert f":{line}:" in body["error"], body

            assert w.proc is not None
            w.proc.send_signal(signal.SIGHUP)  # the same through SIGHUP: logged, old config stays
            w.wait_until(lambda: "reload rejected" in w.log.read_text(), what="the SIGHUP reload to be rejected")
            status, _ = w.request("POST", "/api/v1/events", [{"labels": {"alertname": "LinkDown",
                                                                        "client": "acme", "site": "acme-krk"}}])
            assert status == 200
            w.wait_until(lambda: w.request("GET", "/api/v1/tickets")[1]["tickets"], what="a ticket")

            rules.write_text(good)
            status, body = w.request("POST", "/api/v1/reload", {})
            assert status == 200, body
        finally:
            w.stop()


async def _office(hits: list[str]) -> TestServer:
    """An office's portal that answers the probes (and counts them)."""
    async def portal(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(text="portal ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", portal)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_reload_starts_probing_a_site_the_new_inventory_adds(tmp_path: Path) -> None:
    hits: list[str] = []
    async with AsyncExitStack() as stack:
        office = await _office(hits)
        stack.push_async_callback(office.close)
        api: Api = await app_in(tmp_path, stack, collectors={"probes": True})
        rt = api.rt
        old, old_collectors = rt.config, rt.collectors
        assert old_collectors is not None
        inventory = copy.deepcopy(INVENTORY)
        inventory["clients"][1]["sites"].append({"id": "beta-gdn", "name": "Gdańsk office", "probes": [
            {"type": "http", "target": f"http://127.0.0.1:{office.port}/beta", "interval": "0.5s",
             "timeout": "0.5s", "retries": 0, "expect": "portal ok"}]})
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True))

        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        new = rt.config
        assert new is not old and new.inventory.sites["beta-gdn"].probes
        assert new.service == old.service, "the service settings stay as started"
        # one reference swapped: every part reads the same configuration
        assert rt.worker.config is new and rt.live.config is new
        assert rt.collectors is not None and rt.collectors is not old_collectors
        await api.wait_for(lambda: _true(bool(hits)), "the new site's probe to reach its office")
        assert set(hits) == {"/beta"}
        # the engine took the new inventory: an event about the new office binds to it
        status, body = await api.post("/api/v1/events", [{"labels": {"alertname": "Custom", "client": "beta",
                                                                     "site": "beta-gdn"}}])
        assert status == 200, body
        head = api.stored()
        await api.wait_for(lambda: _true(rt.worker.cursor >= head), "the engine to handle the event")
        assert (await api.get("/api/v1/unbound"))[1]["events"] == 0

        # new rules alone: swapped in, and the collectors go on (they remember which probes fail)
        running = rt.collectors
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules.read_text().replace("name: other\n", "name: everything-else\n"))
        again = await rt.reload()
        assert rt.config is again and "everything-else" in {r.name for r in again.rules.rules}
        assert rt.collectors is running


async def test_a_broken_file_changes_nothing(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        api: Api = await app_in(tmp_path, stack, collectors={"probes": True})
        rt = api.rt
        await api.wait_for(lambda: _true(rt.worker.leader), "the engine to lead")
        old, old_collectors, engine = rt.config, rt.collectors, rt.worker.engine
        inventory = copy.deepcopy(INVENTORY)
        inventory["clients"][1]["sites"][0]["colour"] = "red"
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True))

        with pytest.raises(ConfigError, match="colour"):
            await rt.reload()
        status, body = await api.post("/api/v1/reload", {})
        assert status == 400 and "inventory.yaml" in body["error"] and "colour" in body["error"], body
        assert rt.config is old and rt.worker.config is old
        assert rt.collectors is old_collectors, "the collectors were not restarted"
        await asyncio.sleep(0.3)  # a few engine batches
        assert rt.worker.engine is engine, "the engine was rebuilt"


async def _true(value: bool) -> bool:
    return value


async def test_a_reload_applies_the_feeds_section(tmp_path: Path) -> None:
    """``feeds:`` is read again with the rules and the inventory: a feed it adds is watched
    (silent after its period, counted from the reload), one it removes is no longer expected
    and its announced silence ends; the collectors are not restarted for either."""
    async with AsyncExitStack() as stack:
        api: Api = await app_in(tmp_path, stack, collectors={"probes": True})
        rt = api.rt
        await api.wait_for(lambda: _true(rt.worker.leader), "the engine to lead")
        collectors = rt.collectors
        assert rt.config.service.feeds == ()
        service = tmp_path / "watcher.yaml"
        started = yaml.safe_load(service.read_text())
        feed = {"name": "beta-watchdog", "client": "beta", "source": "alertmanager", "period": "1s"}
        service.write_text(yaml.safe_dump({**started, "feeds": [feed]}))

        reloaded_at = time.time()
        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        assert [f.name for f in rt.config.service.feeds] == ["beta-watchdog"]
        assert rt.collectors is collectors, "a feeds change restarts no collector"
        assert rt.config.service.listen == "127.0.0.1:8080" and rt.config.service.db_url.endswith("watcher.db")

        async def silent() -> bool:
            return (await api.metric("watcher_feed_silent", client="beta", feed="beta-watchdog")) == 1.0

        await api.wait_for(silent, "the new feed to be announced silent")
        announced = (await asyncio.to_thread(feed_table.load, rt.store))["beta-watchdog"][1]
        assert announced is not None and announced >= reloaded_at, "silent since the reload, not since the start"

        service.write_text(yaml.safe_dump(started))  # the feed is no longer expected
        await rt.reload()
        assert rt.config.service.feeds == () and rt.collectors is collectors

        async def ended() -> bool:
            return (await asyncio.to_thread(feed_table.load, rt.store))["beta-watchdog"][1] is None

        await api.wait_for(ended, "the removed feed's silence to end")
        assert (await api.metric("watcher_feed_silent", client="beta", feed="beta-watchdog")) == 0.0
        rows = await asyncio.to_thread(rt.store.read_inbox, 0, 1000)
        silences = [e for e in (orjson.loads(payload) for _, _, _, payload in rows)
                    if e["labels"].get("alertname") == ALERTNAME]
        assert [(e["labels"]["feed"], e["status"]) for e in silences] == [("beta-watchdog", "firing"),
                                                                          ("beta-watchdog", "resolved")], silences


def _office_inventory(port: int) -> dict[str, Any]:
    """INVENTORY plus a site whose one probe asks a local office's portal every half second."""
    inventory = copy.deepcopy(INVENTORY)
    inventory["clients"][1]["sites"].append({"id": "beta-gdn", "name": "Gdańsk office", "probes": [
        {"type": "http", "target": f"http://127.0.0.1:{port}/beta", "interval": "0.5s",
         "timeout": "0.5s", "retries": 0, "expect": "portal ok"}]})
    return inventory


async def _probe_events(api: Api) -> list[dict[str, Any]]:
    """The events the probes stored for the office site, oldest first."""
    rows = await asyncio.to_thread(api.rt.store.read_inbox, 0, 10_000)
    events = [orjson.loads(payload) for _, _, _, payload in rows]
    return [e for e in events if e["labels"].get("site") == "beta-gdn"]


async def test_a_reload_turns_a_collector_on_and_off(tmp_path: Path) -> None:
    """``collectors:`` is read again: turning the probes on starts them (their jobs in
    /api/v1/stats, their events from a real local portal), turning them off stops them; a
    rules-only reload in between restarts nothing."""
    hits: list[str] = []
    async with AsyncExitStack() as stack:
        office = await _office(hits)
        stack.push_async_callback(office.close)
        api: Api = await app_in(tmp_path, stack)
        rt = api.rt
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(_office_inventory(office.port), allow_unicode=True))
        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        assert (await api.get("/api/v1/stats"))[1]["collectors"] == {}, "the probes are off"

        service = tmp_path / "watcher.yaml"
        started = yaml.safe_load(service.read_text())
        service.write_text(yaml.safe_dump({**started, "collectors": {"probes": True}}))
        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        assert rt.config.service.collectors.probes
        jobs = (await api.get("/api/v1/stats"))[1]["collectors"]
        assert any("beta-gdn" in name for name in jobs), jobs
        await api.wait_for(lambda: _true(bool(hits)), "the probe to reach the office")

        async def stored() -> bool:
            return bool(await _probe_events(api))

        await api.wait_for(stored, "the probe's events in the inbox")
        assert {e["source"] for e in await _probe_events(api)} == {"probe"}

        running = rt.collectors
        rules = tmp_path / "rules.yaml"
        rules.write_text(rules.read_text().replace("name: other\n", "name: everything-else\n"))
        await rt.reload()
        assert rt.collectors is running, "new rules alone restart no collector"

        service.write_text(yaml.safe_dump(started))  # the probes off again
        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        assert not rt.config.service.collectors.probes
        assert (await api.get("/api/v1/stats"))[1]["collectors"] == {}
        count = len(hits)
        await asyncio.sleep(1.2)  # more than two probe intervals
        assert len(hits) == count, "the probe still runs"


async def test_a_bad_collectors_value_changes_nothing(tmp_path: Path) -> None:
    async with AsyncExitStack() as stack:
        api: Api = await app_in(tmp_path, stack, collectors={"probes": True})
        rt = api.rt
        old, old_collectors = rt.config, rt.collectors
        service = tmp_path / "watcher.yaml"
        doc = yaml.safe_load(service.read_text())
        doc["collectors"] = {"probes": False, "disk": True, "disk_interval": "often"}
        text = yaml.safe_dump(doc)
        service.write_text(text)
        status, body = await api.post("/api/v1/reload", {})
        assert status == 400, body
        line = next(i for i, t in enumerate(text.splitlines(), 1) if "disk_interval" in t)
        assert f"watcher.yaml:{line}:" in body["error"] and "disk_interval" in body["error"], body
        assert rt.config is old and rt.collectors is old_collectors
        assert rt.config.service.collectors.probes and not rt.config.service.collectors.disk


async def test_a_trap_address_that_cannot_be_bound_fails_the_reload(tmp_path: Path) -> None:
    """A reload that moves the SNMP trap listener to a taken port is refused; the collectors
    run on as before (started again on the old configuration)."""
    hits: list[str] = []
    async with AsyncExitStack() as stack:
        office = await _office(hits)
        stack.push_async_callback(office.close)
        api: Api = await app_in(tmp_path, stack, collectors={"probes": True})
        rt = api.rt
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(_office_inventory(office.port), allow_unicode=True))
        assert (await api.post("/api/v1/reload", {}))[0] == 200
        old = rt.config
        taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stack.callback(taken.close)
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        service = tmp_path / "watcher.yaml"
        doc = yaml.safe_load(service.read_text())
        service.write_text(yaml.safe_dump({**doc, "snmp": {"listen": f"127.0.0.1:{port}"}}))

        status, body = await api.post("/api/v1/reload", {})
        assert status == 400, body
        assert rt.config is old and rt.config.service.snmp.listen is None
        assert rt.collectors is not None and "snmp_traps" not in rt.collectors.started
        jobs = (await api.get("/api/v1/stats"))[1]["collectors"]
        assert any("beta-gdn" in name for name in jobs), jobs
        count = len(hits)
        await api.wait_for(lambda: _true(len(hits) > count), "the old probes to go on")

        taken.close()  # the port free: the same reload now starts the listener
        status, body = await api.post("/api/v1/reload", {})
        assert status == 200, body
        assert rt.collectors is not None and "snmp_traps" in rt.collectors.started
