"""Upgrading keeps what matters: a database with the schema and the rows of watcher's first
release (Alembic revision 0001, rows recorded from that release's own code, see
tests/fixtures/upgrade/record_release1.py) is upgraded to the newest revision, whatever it
is, on SQLite and on PostgreSQL; the service started on it shows the open ticket with its
callback, delivers the notices that were owed, keeps the engine's pending hold and cursor,
and goes on from where the release stopped: the outage resolves, people are told, new
tickets continue the numbering, and nothing old is handled twice."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, text

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, free_port
from tests.test_e2e import fast_rules
from watcher.store import MIGRATIONS

FIXTURE = ROOT / "tests" / "fixtures" / "upgrade" / "release1.json"


def _alembic() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _when(value: Any) -> Any:
    """SQLite hands DateTime columns out as text; the first release wrote aware UTC times."""
    if not isinstance(value, str):
        return value
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def build_release1_database(url: str, tables: dict[str, list[dict[str, Any]]], now: float) -> None:
    """The first release's schema (its Alembic revision) holding the first release's rows."""
    engine = create_engine(url)
    cfg = _alembic()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    meta = MetaData()
    meta.reflect(engine)
    with engine.begin() as conn:
        for name, rows in tables.items():
            if not rows:
                continue
            if name == "tickets":
                rows = [dict(r, opened_at=_when(r["opened_at"]), resolved_at=_when(r["resolved_at"])) for r in rows]
            if name == "outbox":  # as if the release stopped a while ago: the retries are due
                rows = [dict(r, due_at=min(r["due_at"], now)) for r in rows]
            conn.execute(meta.tables[name].insert(), rows)
        if engine.dialect.name == "postgresql":  # the release's own inserts had moved the sequences
            for table, col in (("inbox", "seq"), ("outbox", "id")):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', '{col}'), "
                                  f"(SELECT max({col}) FROM {table}))"))
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0001"
    engine.dispose()


def channels(hook: HttpReceiver) -> dict[str, str]:
    return {k: f"json://{hook.host}:{hook.port}/{k}" for k in ("jan.kowalski", "ewa.smith", "olek.biuro", "admin",
                                                                 "office")}


def test_first_release_database_upgrades_and_the_service_goes_on(db_url: str, tmp_path: Path) -> None:
    fx = json.loads(FIXTURE.read_text())
    assert fx["alembic_revision"] == "0001"
    tables = fx["tables"]
    state = json.loads(tables["engine_state"][0]["state"])
    cursor = tables["engine_state"][0]["cursor"]
    (old,) = tables["tickets"]
    old_doc = json.loads(old["data"])
    build_release1_database(db_url, tables, time.time())

    engine = create_engine(db_url)  # the upgrade itself, as `watcher serve` runs it at start
    cfg = _alembic()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == \
            ScriptDirectory.from_config(cfg).get_current_head()
        assert conn.execute(text("SELECT epoch FROM engine_state")).scalar() == 0
    engine.dispose()

    with HttpReceiver() as hook:
        inv = json.loads(json.dumps(fx["inventory"]))
        text_inv = json.dumps(inv)
        for key, url in channels(hook).items():
            text_inv = text_inv.replace(f"NOTIFY:{key}", url)
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(json.loads(text_inv), allow_unicode=True))
        fast_rules(tmp_path)
        (tmp_path / "watcher.yaml").write_text(yaml.safe_dump({
            "rules": "rules.yaml", "inventory": "inventory.yaml", "database": db_url, "engine_tick": "0.2s",
            "secret_key": "upgrade-test-secret-0123456789", "notify": {"poll_interval": "0.2s",
                                                                      "retry_initial": "0.5s"}}))
        w = WatcherProcess(tmp_path / "watcher.yaml", free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            # the open ticket and its callback survived
            (tk,) = w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"]
            assert (tk["id"], tk["category"], tk["entity"], tk["opened_at"]) == (
                old["id"], "internet", {"kind": "site", "id": "acme-krk"}, old_doc["opened_at"])
            assert sorted(tk["affected"]) == ["ewa.smith", "jan.kowalski"]
            assert [c["person"] for c in tk["callbacks"]] == ["jan.kowalski"]

            # the notices the release owed (a failed attempt each) are delivered, once
            hook.wait_for(3, timeout=30)
            escalation_due = datetime.fromisoformat(old_doc["sla"]["react_by"].replace("Z", "+00:00")) \
                < datetime.now(UTC)
            time.sleep(2)
            paths = sorted(r["path"] for r in hook.requests)
            assert paths == sorted(["/jan.kowalski", "/ewa.smith", "/office"] + (["/admin"] if escalation_due else []))
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]
            states = {(n["to"], n["kind"]): (n["state"], n["attempts"]) for n in doc["notifications"]}
            assert states[("jan.kowalski", "opened")] == ("sent", 1), "its failed attempt before the upgrade is kept"

            # the engine's state: its cursor, its alerts and the hold still pending
            stats = w.request("GET", "/api/v1/stats")[1]["engine"]
            assert stats["cursor"] == cursor and stats["open_tickets"] == 1
            assert stats["alerts"] == len(state["alerts"])
            pending = [g for g in state["groups"] if g["state"] == "pending"]
            assert [g["gid"] for g in pending] == ["host-down|acme|waw-nas1"]

            # an old event re-sent is still a duplicate (the inbox and its unique key survived)
            probes = [json.loads(r["payload"]) for r in tables["inbox"] if r["kind"] == "event"
                      and json.loads(r["payload"])["labels"].get("alertname") == "ProbeFailed"]
            assert len(probes) == 2
            assert w.request("POST", "/api/v1/events", probes)[1]["duplicates"] == 2

            # and it goes on: the outage ends, people are told, the caller is still owed a call
            end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            resolved = [dict(p, status="resolved", ends_at=end, observed_at=None) for p in probes]
            assert w.request("POST", "/api/v1/events", resolved)[1]["accepted"] == 2
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]["status"] == "resolved",
                         what="the upgraded ticket resolved")
            hook.wait_for(len(paths) + 2, timeout=30)

            def told() -> set[tuple[str, str]]:
                doc = w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]
                return {(n["to"], n["kind"]) for n in doc["notifications"] if n["state"] == "sent"}

            w.wait_until(lambda: {("jan.kowalski", "resolved"), ("ewa.smith", "resolved")} <= told(),
                         what="the resolved notices delivered")
            assert sorted(r["path"] for r in hook.requests[len(paths):]) == ["/ewa.smith", "/jan.kowalski"]
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]
            assert [c["person"] for c in doc["callbacks"]] == ["jan.kowalski"]
            assert doc["callbacks"][0]["done_at"] is None, "the resolved notice is no call: still owed"

            # a new incident gets the next number; nothing of the old inbox was handled again
            new = {"labels": {"alertname": "HostOutOfDiskSpace", "host": "waw-nas1", "severity": "warning"}}
            assert w.request("POST", "/api/v1/events", [new])[1]["accepted"] == 1
            tickets = w.wait_until(lambda: [t for t in w.request("GET", "/api/v1/tickets")[1]["tickets"]
                                            if t["id"] != tk["id"]], what="a new ticket")
            assert [t["id"] for t in tickets] == [f"T-{state['next_id']:06d}"]
            assert tickets[0]["category"] == "disk" and tickets[0]["site"] == "acme-waw"
            time.sleep(1)
            assert len(w.request("GET", "/api/v1/tickets")[1]["tickets"]) == 2
        finally:
            w.stop()
