"""Zammad, GLPI, Jira Service Management and the signed webhook, on recorded exchanges.

These systems cannot run here (see tests/recorded.py), so each sink talks real HTTP to a
server that replays request/response pairs written from the system's public API
documentation; each fixture in tests/fixtures/sinks names the documentation and version.
The configuration goes through watcher.yaml's parser with the secrets in ``env:`` and
``file:`` form.  Then the queue itself: retries with backoff and the same idempotency key,
dead letters, the link stored once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.recorded import Recorded, load
from watcher.config import ConfigError, load_config
from watcher.config.secrets import secret_setting
from watcher.config.sinks import SinkBase, load_sinks
from watcher.config.yamlload import root_reader
from watcher.metrics import Metrics
from watcher.model import Ticket, utcnow
from watcher.sinks import SINKS, build_sink, plan, queue
from watcher.sinks.base import Draft
from watcher.sinks.worker import SinkService
from watcher.store import Store

DRAFT = Draft("T-000042", "[watcher T-000042] Brak dostępu do internetu: Biuro Kraków",
              "Co: internet (site acme-krk)\n", "acme")
SECRETS = {"WATCHER_TEST_ZAMMAD_TOKEN": "zammad-secret-token", "WATCHER_TEST_GLPI_APP_TOKEN": "glpi-app-token",
           "WATCHER_TEST_JIRA_TOKEN": "jira-api-token", "WATCHER_TEST_HOOK_SECRET": "hook-secret"}


def parse_system(tmp_path: Path, system: dict[str, Any], url: str) -> SinkBase:
    (tmp_path / "glpi-user-token").write_text("glpi-user-token\n")
    entry = {k: (v.replace("{tmp}", str(tmp_path)) if isinstance(v, str) else v) for k, v in system.items()}
    path = tmp_path / "sinks.yaml"
    path.write_text(yaml.safe_dump({"systems": [{**entry, "url": url}]}, allow_unicode=True))
    (cfg,) = load_sinks(root_reader(path), secret_setting).systems
    return cfg


@pytest.mark.parametrize("name", ["zammad", "glpi", "jira", "webhook"])
async def test_recorded_exchanges(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    fixture = load(name)
    assert fixture["docs"], "each recording names the documentation it was written from"
    async with Recorded(fixture["exchanges"]) as server, aiohttp.ClientSession() as session:
        url = server.url + ("/hook" if name == "webhook" else "")
        cfg = parse_system(tmp_path, fixture["system"], url)
        sink = build_sink(cfg, session)
        assert type(sink) is SINKS[fixture["system"]["kind"]]
        assert await sink.find("T-000042") is None
        ref = await sink.create(DRAFT, "7")
        assert server.errors == []
        assert (ref.id, ref.url) == (fixture["expect"]["ref"]["id"],
                                     fixture["expect"]["ref"]["url"].replace("{url}", server.url))
        ref = type(ref)(ref.id, ref.url, "T-000042")
        await sink.comment(ref, "Nowy sygnał (objaw): InstanceDown firing [nas1]", "8")
        await sink.resolve(ref, "Problem ustąpił.", "9")
        if "actions" in fixture["expect"]:
            actions, cursor = await sink.poll(fixture["expect"]["cursor_in"], 60)
            assert [[a.external_id, a.action, a.by] for a in actions] == fixture["expect"]["actions"]
            assert cursor == fixture["expect"]["cursor_out"]
        assert server.errors == []
        assert server.done, f"exchanges left: {fixture['exchanges'][server.pos:]}"
    if name == "webhook":
        for got in server.received:  # every call is signed with the shared secret
            ts = got["headers"]["X-Watcher-Timestamp"]
            mac = hmac.new(b"hook-secret", ts.encode() + b"." + got["body"], hashlib.sha256).hexdigest()
            assert got["headers"]["X-Watcher-Signature"] == "sha256=" + mac
            assert abs(int(ts) - time.time()) < 60


# ---------------------------------------------------------------- configuration


def test_every_kind_in_the_one_table_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    for name in ("zammad", "glpi", "jira", "webhook"):
        cfg = parse_system(tmp_path, load(name)["system"], "https://desk.example")
        assert isinstance(cfg, SINKS[cfg.kind].config_type)
        assert "secret-token" not in repr(cfg) and "hook-secret" not in repr(cfg), "secrets stay out of repr"
    assert set(SINKS) == {"rt", "zammad", "glpi", "jira", "webhook"}


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "rt", "kind": "otrs", "url": "https://x.example"}, "expected one of rt, zammad"),
    ({"name": "rt", "kind": "rt", "url": "ftp://x.example", "token": "t"}, "http:// or https://"),
    ({"name": "rt", "kind": "rt", "url": "https://x.example"}, "give token, or username and password"),
    ({"name": "rt", "kind": "rt", "url": "https://x.example", "token": "t", "queu": "x"}, "unknown key"),
    ({"name": "RT!", "kind": "rt", "url": "https://x.example", "token": "t"}, "lower-case"),
    ({"name": "rt", "kind": "rt", "url": "https://x.example", "token": "env:WATCHER_TEST_UNSET_VAR"},
     "WATCHER_TEST_UNSET_VAR is not set"),
    ({"name": "h", "kind": "webhook", "url": "https://x.example"}, "HMAC"),
    ({"name": "j", "kind": "jira", "url": "https://x.example", "email": "a@b", "api_token": "t"}, "service_desk"),
])
def test_bad_sink_configuration_is_refused_with_its_place(tmp_path: Path, entry: dict[str, Any],
                                                          message: str) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(yaml.safe_dump({"systems": [entry]}))
    with pytest.raises(ConfigError) as err:
        load_sinks(root_reader(path), secret_setting)
    assert message in str(err.value)
    assert "systems[0]" in str(err.value)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["name", "kind", "url", "clients", "poll", "timeout", "queue", "token",
                                        "username", "password", "custom_fields", "secret", "group", "customer",
                                        "entity", "service_desk", "request_type", "resolve_transition", "email",
                                        "api_token", "user_token"]),
                       st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none(),
                                 st.lists(st.text(max_size=5), max_size=2),
                                 st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)),
                       max_size=10))
def test_any_sink_entry_parses_or_says_what_is_wrong(tmp_path: Path, entry: dict[str, Any]) -> None:
    """Whatever an operator writes, the parser answers with a configuration or a ConfigError."""
    path = tmp_path / "fuzz.yaml"
    path.write_text(yaml.safe_dump({"systems": [entry]}))
    try:
        cfg = load_sinks(root_reader(path), secret_setting)
    except ConfigError:
        return
    (system,) = cfg.systems
    assert system.kind in SINKS and system.url.startswith("http")


def test_a_system_for_an_unknown_client_is_refused(tmp_path: Path) -> None:
    config_dir = write_watcher(tmp_path, "https://x.example", clients=["nobody"])
    with pytest.raises(ConfigError, match="no client 'nobody'"):
        load_config(config_dir)


# ---------------------------------------------------------------- the queue


def write_watcher(tmp_path: Path, url: str, clients: list[str] | None = None, db: str = "") -> Path:
    (tmp_path / "rules.yaml").write_text((ROOT / "rules.yaml").read_text())
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump({"clients": [{
        "id": "acme", "name": "ACME", "sla": "gold", "language": "en", "timezone": "UTC",
        "business_hours": "Mon-Sun 00:00-24:00", "admins": ["json://127.0.0.1:1/"],
        "sites": [{"id": "acme-krk", "name": "Krakow office"}],
        "people": [{"id": "jan", "name": "Jan", "site": "acme-krk", "remote": True, "phone": "+48 600 100 200",
                    "notify": ["json://127.0.0.1:1/"]}]}]}))
    path = tmp_path / "watcher.yaml"
    path.write_text(yaml.safe_dump({"database": db or f"sqlite:///{tmp_path / 'w.db'}", "sinks": {
        "retry_initial": "0.2s", "retry_max": "0.5s", "max_attempts": 3, "claim_lease": "1s",
        "systems": [{"name": "hook", "kind": "webhook", "url": url, "secret": "hook-secret",
                     **({"clients": clients} if clients else {})}]}}))
    return path


def ticket(status: str = "open") -> Ticket:
    tk = Ticket(id="T-000001", client="acme", category="internet", entity_kind="site", entity_id="acme-krk",
                title="Internet outage: Krakow office", opened_at=utcnow(), rule="site-internet",
                group_key="site-internet|acme-krk", site="acme-krk", affected=["jan"])
    tk.status = status  # type: ignore[assignment]
    return tk


def commit(store: Store, tk: Ticket, cfg: Any) -> None:
    now = time.time()
    jobs = plan.jobs_for([tk], cfg.service.sinks)
    store.commit_batch(0, {}, [tk], [], now, also=lambda conn: queue.enqueue(store, conn, jobs, now))


async def test_queue_retries_with_one_key_then_links_once_and_keeps_dead_letters(db_url: str, tmp_path: Path
                                                                                  ) -> None:
    exchanges = [
        {"step": "open, the receiver is down", "request": {"method": "POST", "path": "/hook"},
         "response": {"status": 503, "text": "busy"}},
        {"step": "open again", "request": {"method": "POST", "path": "/hook"},
         "response": {"status": 201, "json": {"id": "INC-1", "url": "https://desk.example/INC-1"}}},
        {"step": "resolve, refused for good", "request": {"method": "POST", "path": "/hook"},
         "response": {"status": 400, "json": {"error": "unknown ticket"}}},
    ]
    async with Recorded(exchanges) as server:
        config = load_config(write_watcher(tmp_path, server.url + "/hook", db=db_url))
        store = Store(config.service.db_url)
        metrics = Metrics()
        submitted: list[Any] = []

        async def submit(rows: list[Any]) -> list[int | None]:
            submitted.extend(rows)
            return [None] * len(rows)

        service = SinkService(config, store, metrics, submit, poll=False)
        await service.start()
        try:
            commit(store, ticket(), config)
            commit(store, ticket(), config)  # the same ticket written again owes nothing new
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and queue.get_link(store, "T-000001", "hook") is None:
                await _sleep()
            link = queue.get_link(store, "T-000001", "hook")
            assert link is not None and (link.external_id, link.url) == ("INC-1", "https://desk.example/INC-1")
            keys = [r["headers"]["Idempotency-Key"] for r in server.received]
            assert len(keys) == 2 and keys[0] == keys[1], "a retry carries the same idempotency key"

            commit(store, ticket("resolved"), config)
            while time.monotonic() < deadline and not queue.rows(store, "dead"):
                await _sleep()
            (dead,) = queue.rows(store, "dead")
            assert dead["action"] == "resolve" and "HTTP 400" in dead["last_error"]
            (state,) = queue.sync_state(store, "T-000001")
            assert state["state"] == "failed" and state["external_id"] == "INC-1" and state["dead"] == 1
            assert server.done and server.errors == []
            assert metrics.sink_calls.labels("hook", "open", "retry")._value.get() == 1
            assert metrics.sink_calls.labels("hook", "open", "ok")._value.get() == 1
            assert metrics.sink_calls.labels("hook", "resolve", "dead")._value.get() == 1
            body = json.loads(server.received[1]["body"])
            assert "Jan" in body["text"] and "+48 600 100 200" not in body["text"]  # Jan asked for no call
        finally:
            await service.stop()
            store.close()
    assert submitted == []


async def _sleep() -> None:
    import asyncio

    await asyncio.sleep(0.1)
