"""The helpdesk's workflow in the engine, on virtual time: agent escalation and the teams'
clocks in business hours (with holidays), the call list across resolution, disk advice
only when one folder explains the growth, the office's answers, the login-failure window
that a poll's drift cannot dodge, and a restored state that goes on exactly as before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_engine import INVENTORY, PROBE1, PROBE2, ROOT, T0, Run
from watcher.config import ConfigError, load_inventory, load_rules
from watcher.model import Event, EventError, op_from_dict
from watcher.rules import Engine
from watcher.rules.mail import independent_urls


def outage(run: Run) -> str:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    run.advance(3)
    return next(iter(run.tickets))


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def test_agent_escalation_starts_the_admins_clocks_in_business_hours(run: Run) -> None:
    tid = outage(run)
    assert run.op(10, "escalate", ticket=tid, to="admins", reason="VPN config", by="ola")["tickets"] == [tid]
    esc = run.tickets[tid].escalation
    # gold: Administracja IT reacts in 4 h and resolves in 12 h of Mon-Fri 08-17 Warsaw
    # escalated Monday 09:10 local: react by 13:10, resolve by Tuesday 12:10 (8 h left on Monday)
    assert (esc["team"], esc["react_by"], esc["resolve_by"]) == (
        "Administracja IT", "2026-11-02T12:10:00Z", "2026-11-03T11:10:00Z")
    assert run.told("escalated") == {"admins"}
    run.advance(4 * 60 + 10)  # exactly at the reaction deadline
    assert run.told("reaction_missed") == {"admins"} and run.tickets[tid].escalation["reaction_missed"]
    assert "resolution_missed" not in {n.kind for n in run.notices}


def test_acknowledgement_meets_reaction_but_the_resolution_clock_runs_on(run: Run) -> None:
    tid = outage(run)
    run.op(10, "escalate", ticket=tid, to="service", reason="dysk do wymiany", by="ola")
    esc = run.tickets[tid].escalation
    assert esc["team"] == "Serwis IT" and esc["resolve_by"] == "2026-11-04T14:10:00Z"  # gold: 24 business h
    run.op(60, "ack", ticket=tid, by="serwis.adam")
    assert run.tickets[tid].status == "acknowledged" and run.tickets[tid].escalation["reacted_at"]
    run.advance(3 * 24 * 60)
    tk = run.tickets[tid]
    assert not tk.escalation["reaction_missed"] and tk.escalation["resolution_missed"]
    assert run.told("resolution_missed") == {"service"} and not run.told("reaction_missed")


def test_a_ticket_resolved_in_time_misses_nothing(run: Run) -> None:
    tid = outage(run)
    run.op(10, "escalate", ticket=tid, reason="x", by="ola")
    run.op(20, "ack", ticket=tid)
    run.op(30, "resolve", ticket=tid, by="ola")
    run.advance(5 * 24 * 60)
    assert not run.told("resolution_missed") and not run.told("reaction_missed")


def test_escalation_is_refused_without_a_known_team(run: Run) -> None:
    tid = outage(run)
    assert run.op(10, "escalate", ticket=tid, to="janitor", reason="x")["tickets"] == []
    assert run.op(10, "escalate", ticket="T-999999", reason="x")["tickets"] == []


def test_holiday_calendar_is_off_unless_the_client_names_one(tmp_path: Path) -> None:
    start = datetime(2026, 11, 10, 15, 0, tzinfo=UTC)  # Tuesday 16:00 in Warsaw; 11 Nov is a holiday
    plain = tmp_path / "plain.yaml"
    plain.write_text(INVENTORY)
    bh = load_inventory(plain).clients["acme"].business_hours
    assert bh.add(start, 2 * 3600) == datetime(2026, 11, 11, 8, 0, tzinfo=UTC)
    named = tmp_path / "pl.yaml"
    named.write_text(INVENTORY.replace("    admins:", "    holidays: PL\n    admins:", 1))
    bh = load_inventory(named).clients["acme"].business_hours
    assert bh.add(start, 2 * 3600) == datetime(2026, 11, 12, 8, 0, tzinfo=UTC)
    wrong = tmp_path / "xx.yaml"
    wrong.write_text(INVENTORY.replace("    admins:", "    holidays: XX\n    admins:", 1))
    with pytest.raises(ConfigError, match="holidays"):
        load_inventory(wrong)


def test_callbacks_outlive_the_ticket_until_the_call_is_recorded(run: Run) -> None:
    tid = outage(run)
    run.op(5, "callback", person="jan", phone="+48 600", preferred_time="rano", note="x" * 900)
    cb = run.tickets[tid].callbacks[0]
    assert (cb.phone, cb.preferred_time, len(cb.note or "")) == ("+48 600", "rano", 500)
    run.at(30, "resolved", start=0, **PROBE1)
    run.advance(45)
    assert run.tickets[tid].status == "resolved" and tid in run.engine.owed
    # the owed call survives a restart of the engine
    state = run.engine.snapshot()
    again = Engine(run.engine.rules, run.engine.inv, state)
    now = T0 + timedelta(minutes=50)
    call = op_from_dict({"op": "call", "ticket": tid, "outcome": "left_message"}, now)
    assert again.handle(call, now)["tickets"] == [tid]
    assert tid not in again.owed


def test_planned_answer_and_no_answer_keep_the_task_honest(run: Run) -> None:
    tid = outage(run)
    assert run.op(5, "office_answer", ticket=tid, answer="no_answer")["tickets"] == [], "no phone, no task"
    assert run.op(5, "office_answer", ticket=tid, answer="planned")["tickets"] == [tid]
    assert run.tickets[tid].planned and run.told("planned") == {"jan", "ewa"}
    assert not run.tickets[tid].escalation


def share_samples(run: Run, share_step: float, jan_step: float, ewa_step: float) -> None:
    for i in range(25):
        m = 15 * i
        run.sample(m, 880e9 + i * share_step, metric="share_used_bytes", share="projects")
        run.sample(m, 1e9 + i * jan_step, metric="folder_used_bytes", share="projects", folder="Jan")
        run.sample(m, 1e9 + i * ewa_step, metric="folder_used_bytes", share="projects", folder="Ewa")
    run.advance(25 * 15 + 60)


@pytest.mark.parametrize(("jan_step", "ewa_step", "advised"), [
    (1e9, 0.1e9, "jan"),  # Jan's folder explains 1/2 of the share's growth: advised at once
    (0.4e9, 0.3e9, None),  # no folder explains half: an administrator confirms first
    (25_000, 0.0, None),  # the replay of the issue: 0.5 MB against gigabytes
])
def test_advice_goes_out_only_when_one_folder_explains_half(run: Run, jan_step: float, ewa_step: float,
                                                            advised: str | None) -> None:
    share_samples(run, 2e9, jan_step, ewa_step)
    tk = next(t for t in run.tickets.values() if t.category == "disk")
    assert tk.advice_to == advised
    assert run.told("advice") == ({advised} if advised else set())
    assert run.told("disk_review") == {"admins"}
    assert tk.details["advice"] == ("sent" if advised else "confirm")
    if advised is None:
        assert run.op(24 * 60, "advice", ticket=tk.id, person="olek")["tickets"] == [], "no folder on the share"
        assert run.op(24 * 60, "advice", ticket=tk.id, person="ewa", by="admin")["tickets"] == [tk.id]
        assert run.told("advice") == {"ewa"} and tk.details["folder"] == "Ewa"


def test_a_client_can_ask_to_confirm_every_advice(tmp_path: Path) -> None:
    run = Run(tmp_path)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY.replace("    admins:", "    advice: confirm\n    admins:", 1))
    run.engine = Engine(load_rules(ROOT / "rules.yaml"), load_inventory(inv))
    share_samples(run, 2e9, 1.9e9, 0.0)
    assert not run.told("advice") and run.told("disk_review") == {"admins"}


def test_three_failed_logins_five_minutes_apart_with_drift_open_a_ticket(run: Run) -> None:
    box = {"alertname": "MailboxLoginFailed", "mailbox": "jan@acme.example"}
    for minutes in (0, 5 + 0.5 / 60, 10 + 1 / 60):
        run.at(minutes, **box)
    run.advance(15)
    tk = next(t for t in run.tickets.values() if t.rule == "mailbox-login")
    assert tk.details["problem"] == "login" and run.told("opened") == {"jan"}


def test_mail_server_down_puts_people_without_another_channel_on_the_call_list(run: Run) -> None:
    run.at(0, alertname="MailServerDown", client="acme")
    run.advance(1)
    tk = next(iter(run.tickets.values()))
    assert tk.details["problem"] == "server_down"
    assert {c.person for c in tk.callbacks if c.reason} == {"jan", "ewa"}
    assert independent_urls(("mailto://jan@acme.example", "sms://x/48600", "mailto://jan@gmail.example"),
                            {"acme.example"}) == ("sms://x/48600", "mailto://jan@gmail.example")


def test_a_restored_engine_fires_the_same_deadlines(tmp_path: Path) -> None:
    first, second = Run(tmp_path), Run(tmp_path)
    for r in (first, second):
        tid = outage(r)
        r.op(10, "escalate", ticket=tid, reason="x", by="ola")
    second.engine = Engine(second.engine.rules, second.engine.inv, second.engine.snapshot())
    for r in (first, second):
        r.advance(3 * 24 * 60)
    kinds = [[(n.to, n.kind, n.at) for n in r.notices if n.kind.endswith("_missed")] for r in (first, second)]
    assert kinds[0] == kinds[1] and len(kinds[0]) == 2


ARGS = st.dictionaries(st.sampled_from(["ticket", "person", "outcome", "note", "by", "to", "reason", "answer",
                                        "action", "phone", "preferred_time"]),
                       st.one_of(st.none(), st.text(max_size=600), st.integers(), st.booleans(),
                                 st.sampled_from(["T-000001", "jan", "reached", "admins", "failure", "confirm"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(["call", "escalate", "advice", "office_answer", "callback", "ack"]), args=ARGS)
def test_any_op_arguments_are_applied_or_refused_never_crash(run: Run, kind: str, args: dict[str, Any]) -> None:
    if not run.tickets:
        outage(run)
    now = T0 + timedelta(minutes=30)
    try:
        op = op_from_dict({"op": kind, **args}, now)
    except EventError:
        return  # refused where it is read, as the inbox and the replay refuse it
    result = run.engine.handle(op, now)
    assert isinstance(result, dict)
    run.engine.drain()
    state = run.engine.snapshot()
    Engine(run.engine.rules, run.engine.inv, state)  # and the state still restores
    for tk in run.engine.tickets.values():
        assert all(len(c.note or "") <= 500 for c in tk.callbacks)


def test_office_failure_goes_to_the_provider_and_the_admins_and_tells_the_staff(tmp_path: Path) -> None:
    run = Run(tmp_path)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY.replace(
        "        office_contact: {name: Recepcja, email: recepcja@acme.example}",
        "        office_contact: {name: Recepcja, phone: '+48 12 000 00 00', email: recepcja@acme.example}\n"
        "        provider_contact: {name: Dostawca, email: noc@isp.example}"))
    run.engine = Engine(load_rules(ROOT / "rules.yaml"), load_inventory(inv))
    tid = outage(run)
    task = run.tickets[tid].tasks[0]
    # opened Monday 09:02 Warsaw, inside business hours: the call is due now
    assert (task["phone"], task["due_at"]) == ("+48 12 000 00 00", "2026-11-02T08:02:00Z")
    assert run.op(5, "office_answer", ticket=tid, answer="no_answer", by="ola")["tickets"] == [tid]
    assert not run.tickets[tid].tasks[0]["done_at"] and len(run.tickets[tid].tasks[0]["attempts"]) == 1
    assert run.op(9, "office_answer", ticket=tid, answer="failure", by="ola")["tickets"] == [tid]
    assert run.told("escalated") == {"provider:krk", "admins"}
    assert run.told("failure_confirmed") == {"jan", "ewa"}
    assert run.tickets[tid].escalation["notify"] == "provider:krk"


def test_the_call_steps_keep_their_json_form(tmp_path: Path) -> None:
    """Office tasks, call attempts and the escalation are TypedDicts now: the stored JSON keeps
    its keys, in the order a database written before holds them, and restores as it was."""
    run = Run(tmp_path)
    inv = tmp_path / "inventory.yaml"
    inv.write_text(INVENTORY.replace(
        "        office_contact: {name: Recepcja, email: recepcja@acme.example}",
        "        office_contact: {name: Recepcja, phone: '+48 12 000 00 00', email: recepcja@acme.example}"))
    run.engine = Engine(load_rules(ROOT / "rules.yaml"), load_inventory(inv))
    tid = outage(run)
    run.op(5, "office_answer", ticket=tid, answer="no_answer", by="ola", note="busy")
    run.op(6, "office_answer", ticket=tid, answer="failure", by="ola", note="router dead")
    run.op(7, "callback", ticket=tid, person="jan")
    run.op(8, "call", ticket=tid, person="jan", outcome="no_answer", by="ola", note="voicemail")
    doc = run.tickets[tid].to_dict()
    (task,) = doc["tasks"]
    assert list(task) == ["id", "kind", "site", "site_name", "name", "phone", "what", "added_at", "due_at",
                          "done_at", "answer", "attempts", "by", "note"]
    assert (task["answer"], task["by"], task["note"]) == ("failure", "ola", "router dead")
    assert [list(a) for a in task["attempts"]] == [["at", "outcome", "by", "note"]]
    assert list(doc["escalation"]) == ["to", "team", "reason", "by", "at", "notify", "react_by", "resolve_by",
                                       "reacted_at", "reaction_missed", "resolution_missed"]
    (cb,) = [c for c in doc["callbacks"] if c["person"] == "jan"]
    assert cb["calls"] == [{"at": cb["calls"][0]["at"], "outcome": "no_answer", "by": "ola", "note": "voicemail"}]
    restored = Engine(run.engine.rules, run.engine.inv, run.engine.snapshot()).tickets[tid].to_dict()
    assert restored["tasks"] == doc["tasks"] and restored["escalation"] == doc["escalation"]


def test_bounces_name_the_messages_that_did_not_arrive(run: Run) -> None:
    box = {"alertname": "MailDeliveryFailed", "mailbox": "jan@acme.example", "client": "acme"}
    now = T0 + timedelta(minutes=1)
    run.engine.handle(Event(labels=box, starts_at=T0, observed_at=now,
                            annotations={"recipient": "biuro@klient.example", "subject": "Faktura 11/2026",
                                         "direction": "outbound"}), now)
    run.advance(5)
    tk = next(t for t in run.tickets.values() if t.rule == "mail-delivery")
    assert tk.details["problem"] == "bounce"
    assert tk.details["bounced"][0]["subject"] == "Faktura 11/2026"
