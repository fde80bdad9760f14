"""Logs for people, and collector health that tells the truth.

- one INFO line per ticket opened, marked planned, escalated, acknowledged or resolved,
  taken from what the engine really does with real events (no mocks);
- delivery targets shown without secrets or query strings;
- JSON logs, one object per line;
- a probe whose target does not answer is ``failing`` in the scheduler's health (what stats,
  metrics and the console show), and ``ok`` again when it answers.
"""

from __future__ import annotations

import json
import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.test_probes import Sink, free_port, inventory, until
from watcher.collectors.probes import ProbeCollector
from watcher.collectors.schedule import Scheduler
from watcher.config import load_config
from watcher.config.inventory import Probe
from watcher.logs import JsonFormatter, TicketLog, redact_url
from watcher.model import Event, Op, op_from_dict
from watcher.rules import Engine

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Warsaw


def test_one_line_per_ticket_transition(caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(ROOT / "watcher.yaml")
    engine = Engine(config.rules, config.inventory)
    tlog = TicketLog()

    def step(item: Event | Op, at: datetime) -> None:
        engine.handle(item, at)
        tlog.observe(engine.drain().tickets)

    with caplog.at_level(logging.INFO, logger="watcher.tickets"):
        down = Event(labels={"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "ifIndex": "1"}, starts_at=T0,
                     observed_at=T0)
        step(down, T0)
        step(Event(labels={"alertname": "InstanceDown", "host": "krk-printer01"}, starts_at=T0, observed_at=T0),
             T0 + timedelta(seconds=5))  # evidence: no line
        tid = next(iter(engine.tickets))
        step(op_from_dict({"op": "ack", "ticket": tid, "by": "Anna"}, T0), T0 + timedelta(minutes=1))
        step(op_from_dict({"op": "office_answer", "ticket": tid, "answer": "planned"}, T0), T0 + timedelta(minutes=2))
        step(Event(labels={"alertname": "InstanceDown", "host": "krk-printer01"}, status="resolved",
                   observed_at=T0), T0 + timedelta(minutes=2, seconds=30))
        step(op_from_dict({"op": "resolve", "ticket": tid, "by": "Anna"}, T0), T0 + timedelta(minutes=3))
        waw = Event(labels={"alertname": "LinkDown", "snmp_agent": "192.0.2.2", "ifIndex": "1"}, starts_at=T0,
                    observed_at=T0)
        step(waw, T0 + timedelta(minutes=4))
        engine.advance(T0 + timedelta(hours=5))  # Gold: 4 business hours to react
        tlog.observe(engine.drain().tickets)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 6, lines
    assert lines[0].startswith(f"ticket opened: {tid} [internet] acme site acme-krk: ") and "3 affected" in lines[0]
    assert lines[1].startswith(f"ticket acknowledged by Anna: {tid}")
    assert lines[2].startswith(f"ticket marked planned: {tid}")
    assert lines[3].startswith(f"ticket resolved by Anna: {tid}")
    assert lines[4].startswith("ticket opened: ") and "acme-waw" in lines[4]
    assert lines[5].startswith("ticket escalated to the admins: ") and "acme-waw" in lines[5]
    again = TicketLog()
    again.prime(engine.tickets.values())
    caplog.clear()
    again.observe(engine.tickets.values())
    assert caplog.records == [], "a restart does not announce the tickets again"


@given(user=st.text(alphabet="abcxyz.", min_size=1, max_size=8),
       secret=st.text(alphabet="ABCDEFGHJK0123456789", min_size=8, max_size=20),
       token=st.text(alphabet="QRSTUVWXYZ0123456789", min_size=8, max_size=20))
def test_redacted_targets_keep_no_secret(user: str, secret: str, token: str) -> None:
    for url in (f"mailtos://{user}:{secret}@smtp.example:465/?to=x@y.example&key={token}",
                f"json://{user}:{secret}@hooks.example/path/{token}?apikey={token}",
                f"https://hooks.example/services/{token}#{token}"):
        shown = redact_url(url)
        assert secret not in shown and token not in shown
        assert "hooks.example" in shown or "smtp.example:465" in shown


def test_json_logs_are_one_object_per_line() -> None:
    record = logging.LogRecord("watcher.tickets", logging.INFO, __file__, 1, "ticket opened: %s", ("T-1",), None)
    record.ticket = "T-1"
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "ticket opened: T-1" and out["ticket"] == "T-1" and out["level"] == "INFO"
    assert out["time"].endswith("Z")


async def test_a_probe_that_fails_shows_failing_and_recovers() -> None:
    port = free_port()
    target = f"127.0.0.1:{port}"
    sink = Sink()
    inv = inventory(Probe("tcp", target, interval=0.2, timeout=0.5, retries=0))
    async with ProbeCollector(inv, sink) as probes, Scheduler(max_jitter=0) as scheduler:
        probes.register(scheduler)
        name = next(iter(scheduler.names()))

        def health() -> dict[str, object]:
            return scheduler.health()[name].to_dict()

        await until(lambda: health()["runs"] >= 1)
        h = health()
        assert h["up"] is False and h["status"] == "failing" and h["errors"] == 0
        assert "refused" in str(h["failing"]).lower() or "connect" in str(h["failing"]).lower()
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", port))
            listener.listen(8)
            await until(lambda: health()["status"] == "ok")
        assert health()["up"] is True and health()["failing"] is None
    assert sink.of("firing") and sink.of("resolved")
