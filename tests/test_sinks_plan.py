"""What a ticket owes the helpdesk systems (pure), the texts agents read there, and the
queue's order and once-only rule on a real store (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_sinks_recorded import ticket, write_watcher
from watcher.config import Config, load_config
from watcher.model import Callback, NotificationRecord, TimelineEntry
from watcher.sinks import plan, queue
from watcher.sinks.text import Texts
from watcher.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_watcher(tmp_path, "https://desk.example/hook"))


def test_a_new_ticket_owes_open_first_with_what_it_already_knows(config: Config) -> None:
    tk = ticket()
    tk.timeline.append(TimelineEntry(datetime.now(UTC), "ProbeFailed firing", "cause", "fp1"))
    tk.callbacks.append(Callback("jan", datetime.now(UTC)))
    jobs = plan.jobs_for([tk], config.service.sinks)
    assert [j["key"] for j in jobs] == ["open", "evidence:fp1", "callback:jan"]
    assert jobs[0]["payload"]["baseline"] == ["evidence:fp1", "callback:jan"]
    tk.status = "resolved"
    tk.flapping = True
    keys = [j["key"] for j in plan.jobs_for([tk], config.service.sinks)]
    assert keys == ["open", "evidence:fp1", "flapping", "callback:jan", "resolve"]


def test_a_system_serves_only_its_clients(tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    cfg = load_config(write_watcher(tmp_path / "other", "https://desk.example/hook", clients=["acme"]))
    tk = ticket()
    assert plan.jobs_for([tk], cfg.service.sinks)
    tk.client = "globex"
    assert plan.jobs_for([tk], cfg.service.sinks) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["symptom", "planned", "flapping", "escalate", "ack", "callback", "resolve"]),
                max_size=12))
def test_keys_are_unique_and_open_leads_resolve_ends(steps: list[str]) -> None:
    from watcher.config.sinks import SinksConfig, WebhookConfig

    cfg = SinksConfig((WebhookConfig("hook", "webhook", "https://x.example", secret="s"),))
    tk = ticket()
    now = datetime.now(UTC)
    for i, step in enumerate(steps):
        if step == "symptom":
            tk.timeline.append(TimelineEntry(now, "x", "symptom", f"fp{i % 3}"))
        elif step == "planned":
            tk.planned = True
        elif step == "flapping":
            tk.flapping = True
        elif step == "escalate":
            tk.escalated_at = now
        elif step == "ack":
            tk.acknowledged_at = now
        elif step == "callback":
            tk.callbacks.append(Callback(f"p{i % 2}", now))
        elif step == "resolve":
            tk.status = "resolved"
        keys = [j["key"] for j in plan.jobs_for([tk], cfg)]
        assert keys[0] == "open"
        assert ("resolve" in keys) == (tk.status == "resolved") and keys.count("resolve") <= 1
        assert keys[-1] == "resolve" or tk.status != "resolved"


def test_texts_in_the_client_language_with_phones_and_deadline(config: Config) -> None:
    tk = ticket()
    tk.react_by = tk.opened_at + timedelta(hours=4)
    tk.callbacks.append(Callback("jan", datetime.now(UTC)))
    tk.notifications = [NotificationRecord("jan", "opened", tk.opened_at)]
    t = Texts(config, tk)
    assert t.subject() == "[watcher T-000001] Internet outage: Krakow office"
    body = t.body()
    assert "Where: ACME, Krakow office" in body
    assert "Affected: Jan" in body and "Told: Jan" in body
    assert "Waiting for a call back: Jan, phone +48 600 100 200" in body
    assert f"React by (SLA standard): {tk.react_by.strftime('%Y-%m-%d %H:%M')} UTC" in body
    assert t.comment("callback:jan") == "Jan asks to be called back: +48 600 100 200."
    tk.status, tk.resolved_at, tk.resolved_by = "resolved", tk.opened_at, "rt:anna"
    tk.notifications.append(NotificationRecord("jan", "resolved", tk.opened_at))
    assert "The all-clear goes to: Jan" in Texts(config, tk).resolution()


def test_queue_keeps_each_fact_once_and_one_ticket_in_order(db_url: str, tmp_path: Path) -> None:
    cfg = load_config(write_watcher(tmp_path, "https://desk.example/hook", db=db_url))
    store = Store(cfg.service.db_url)
    try:
        tk = ticket()
        tk.timeline.append(TimelineEntry(datetime.now(UTC), "x", "symptom", "fp1"))
        now = time.time()
        for _ in range(2):
            jobs = plan.jobs_for([tk], cfg.service.sinks)
            store.commit_batch(0, {}, [tk], [], now, also=lambda conn, jobs=jobs: queue.enqueue(store, conn, jobs, now))
        assert len(queue.rows(store)) == 2, "written twice, owed once"
        (first,) = queue.claim(store, now, 10, 60)
        assert first.key == "open" and first.payload["baseline"] == ["evidence:fp1"]
        assert queue.claim(store, now, 10, 60) == [], "the comment waits for the open call"
        assert [j.key for j in queue.claim(store, now + 61, 10, 60)] == ["open"], "a stale claim is taken again"
        queue.link_and_finish(store, first.id, tk.id, "hook", "INC-1", "https://desk.example/INC-1",
                              first.payload["baseline"], now)
        (second,) = queue.claim(store, now, 10, 60)
        assert second.key == "evidence:fp1"
        link = queue.get_link(store, tk.id, "hook")
        assert link is not None and second.key in link.baseline
    finally:
        store.close()
