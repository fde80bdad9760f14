"""The rule engine on virtual time: holds, grouping, symptoms, flapping, thresholds,
forecasts, maintenance, escalation and callbacks, with the shipped rules.yaml."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from watcher.config import load_inventory, load_rules
from watcher.model import Event, Notice, Ticket, op_from_dict
from watcher.rules import Engine

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday, 09:00 in Warsaw

INVENTORY = """
clients:
  - id: acme
    name: ACME
    sla: gold
    language: pl
    timezone: Europe/Warsaw
    business_hours: "Mon-Fri 08:00-17:00"
    admins: ["mailto://admin@msp.example"]
    mail_hosts: [mail01]
    sites:
      - id: krk
        name: Biuro Kraków
        office_contact: {name: Recepcja, email: recepcja@acme.example}
        probes:
          - {type: http, target: "https://vpn.acme.example/"}
          - {type: tcp, target: "203.0.113.10:443"}
        match: {snmp_agent: ["192.0.2.1"], host: "krk-.*"}
    people:
      - {id: jan, name: Jan, site: krk, remote: true, notify: ["mailto://jan@acme.example"]}
      - {id: ewa, name: Ewa, site: krk, remote: true, notify: ["mailto://ewa@acme.example"], language: en}
      - {id: olek, name: Olek, site: krk, remote: false, notify: ["mailto://olek@acme.example"]}
    shares:
      - id: projects
        site: krk
        size_bytes: 1000000000000
        folders: {jan: Jan, ewa: Ewa}
    mailboxes:
      - {address: jan@acme.example, person: jan}
      - {address: ewa@acme.example, person: ewa}
"""


class Run:
    """Feed events at virtual times; collect tickets and notices as replay does."""

    def __init__(self, tmp_path: Path) -> None:
        inv = tmp_path / "inventory.yaml"
        inv.write_text(INVENTORY)
        self.engine = Engine(load_rules(ROOT / "rules.yaml"), load_inventory(inv))
        self.tickets: dict[str, Ticket] = {}
        self.notices: list[Notice] = []

    def _collect(self) -> None:
        ch = self.engine.drain()
        for tk in ch.tickets:
            self.tickets[tk.id] = tk
        self.notices.extend(ch.notices)

    def at(self, minutes: float, status: str = "firing", start: float | None = None, **labels: str) -> None:
        now = T0 + timedelta(minutes=minutes)
        starts = T0 + timedelta(minutes=start if start is not None else minutes)
        self.engine.handle(Event(labels=labels, status=status, starts_at=starts, observed_at=now), now)
        self._collect()

    def sample(self, minutes: float, value: float, **labels: str) -> None:
        now = T0 + timedelta(minutes=minutes)
        self.engine.handle(Event(labels=labels, value=value, starts_at=now, observed_at=now), now)
        self._collect()

    def op(self, minutes: float, kind: str, **args: Any) -> dict[str, Any]:
        now = T0 + timedelta(minutes=minutes)
        result = self.engine.handle(op_from_dict({"op": kind, **args}, now), now)
        self._collect()
        return result

    def advance(self, minutes: float) -> None:
        self.engine.advance(T0 + timedelta(minutes=minutes))
        self._collect()

    def told(self, kind: str) -> set[str]:
        return {n.to for n in self.notices if n.kind == kind}


PROBE1 = {"alertname": "ProbeFailed", "client": "acme", "site": "krk", "instance": "https://vpn.acme.example/"}
PROBE2 = {"alertname": "ProbeFailed", "client": "acme", "site": "krk", "instance": "203.0.113.10:443"}


@pytest.fixture
def run(tmp_path: Path) -> Run:
    return Run(tmp_path)


def test_all_probes_failing_for_two_minutes_open_one_internet_ticket(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0.5, **PROBE2)
    run.advance(2.4)
    assert run.tickets == {}, "the hold of two minutes has not passed yet"
    run.advance(2.6)  # the hold expires with no further signal
    (tk,) = run.tickets.values()
    assert (tk.category, tk.entity_kind, tk.entity_id) == ("internet", "site", "krk")
    assert tk.opened_at == T0 + timedelta(minutes=2.5)
    assert tk.affected == ["ewa", "jan"], "only the remote people of the site"
    assert run.told("opened") == {"ewa", "jan"}
    assert run.told("office_check") == {"office:krk"}


def test_one_probe_failing_briefly_is_no_ticket(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0.8, "resolved", start=0, **PROBE1)
    run.advance(30)
    assert run.tickets == {}


def test_only_some_probes_failing_is_no_ticket(run: Run) -> None:
    run.at(0, **PROBE1)
    run.advance(30)
    assert run.tickets == {}


def test_hosts_behind_a_down_site_are_symptoms_not_tickets(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    for i, host in enumerate(["krk-nas01", "krk-sw01", "krk-dc01"]):
        run.at(1 + i, alertname="InstanceDown", host=host, severity="critical")
    run.advance(20)
    assert [t.category for t in run.tickets.values()] == ["internet"]
    tk = next(iter(run.tickets.values()))
    assert any(e.role == "symptom" and "InstanceDown" in e.what for e in tk.timeline)


def test_lone_host_down_is_a_host_ticket_with_nobody_affected(run: Run) -> None:
    run.at(0, alertname="InstanceDown", host="krk-pbx01", severity="critical")
    run.advance(4.9)
    assert run.tickets == {}
    run.advance(5)
    (tk,) = run.tickets.values()
    assert (tk.category, tk.entity_kind, tk.entity_id, tk.affected) == ("host", "host", "krk-pbx01", [])
    assert run.notices == []


def test_flapping_link_is_one_ticket_resolved_after_it_is_stable(run: Run) -> None:
    link = {"snmp_agent": "192.0.2.1", "ifIndex": "7", "ifDescr": "Gi0/0"}
    for i in range(8):
        run.at(i * 3, alertname="LinkDown", **link)
        run.at(i * 3 + 1, "resolved", alertname="LinkUp", **link)
    run.advance(30)
    assert len(run.tickets) == 1
    tk = next(iter(run.tickets.values()))
    assert tk.flapping and tk.status == "open"
    run.advance(90)
    assert tk.status == "resolved"
    assert run.told("resolved") == {"ewa", "jan"}
    assert len([n for n in run.notices if n.kind == "opened"]) == 2, "told once each, not once per flap"


def test_relapse_within_ten_minutes_is_the_same_incident(run: Run) -> None:
    link = {"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "ifIndex": "7"}
    run.at(0, **link)
    run.at(20, "resolved", alertname="LinkUp", snmp_agent="192.0.2.1", ifIndex="7")
    run.at(27, start=27, **link)
    run.at(40, "resolved", alertname="LinkUp", snmp_agent="192.0.2.1", ifIndex="7")
    run.advance(60)
    assert len(run.tickets) == 1
    run.at(120, start=120, **link)
    assert len(run.tickets) == 2, "down again long after recovery is a new incident"


def test_resends_and_second_sender_are_duplicates(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    for m in range(1, 30, 3):
        run.at(m, start=0, **PROBE1)
        run.at(m + 0.01, start=0, **PROBE1)
    run.advance(40)
    assert len(run.tickets) == 1
    assert len(run.told("opened")) == 2


def test_callbacks_get_resolved_notice_and_stay_owed_until_the_call(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    run.advance(3)
    assert run.op(5, "callback", person="jan")["tickets"]
    assert run.op(5, "callback", person="olek")["tickets"] == [], "olek is not affected"
    run.at(30, "resolved", start=0, **PROBE1)
    run.advance(45)
    tk = next(iter(run.tickets.values()))
    assert tk.status == "resolved"
    assert tk.callbacks[0].person == "jan" and tk.callbacks[0].done_at is None, "the notice is no call"
    resolved = [n for n in run.notices if n.kind == "resolved"]
    assert sorted(n.to for n in resolved) == ["ewa", "jan"], "each exactly once"
    assert run.op(50, "call", ticket=tk.id, person="jan", outcome="no_answer")["tickets"] == [tk.id]
    assert tk.callbacks[0].done_at is None and tk.callbacks[0].calls[0]["outcome"] == "no_answer"
    assert run.op(55, "call", ticket=tk.id, person="jan", outcome="reached", note="ok", by="ag")["tickets"]
    assert tk.callbacks[0].how == "called" and tk.callbacks[0].calls[1]["note"] == "ok"
    assert run.op(56, "call", ticket=tk.id, person="jan")["tickets"] == [], "nothing owed any more"


def test_maintenance_gives_planned_ticket_without_opened_or_escalation(run: Run) -> None:
    run.op(0, "maintenance", client="acme", site="krk", starts_at="2026-11-02T08:30:00Z",
           ends_at="2026-11-02T18:00:00Z", reason="router swap")
    run.at(40, **PROBE1)
    run.at(40, **PROBE2)
    run.advance(600)
    (tk,) = run.tickets.values()
    assert tk.planned
    assert run.told("planned") == {"ewa", "jan"}
    assert run.told("opened") == set() and run.told("escalated") == set() and run.told("office_check") == set()


def test_unreacted_ticket_escalates_after_business_hours_reaction_time(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    run.advance(2 + 4 * 60 - 1)
    assert run.told("escalated") == set()
    run.advance(2 + 4 * 60 + 1)  # gold: 4 h of business time from 09:02 Warsaw
    assert run.told("escalated") == {"admins"}


def test_acknowledged_ticket_does_not_escalate(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    run.advance(3)
    tid = next(iter(run.tickets))
    run.op(10, "ack", ticket=tid, by="agent1")
    run.advance(600)
    assert run.told("escalated") == set()
    assert run.tickets[tid].status == "acknowledged"


def test_escalation_clock_counts_only_business_hours(run: Run) -> None:
    # opened Monday 16:00 Warsaw: 1 h left that day, 3 h more from Tuesday 08:00 -> 11:00
    run.at(7 * 60, **PROBE1)
    run.at(7 * 60, **PROBE2)
    run.advance(7 * 60 + 3)
    tk = next(iter(run.tickets.values()))
    assert tk.react_by is not None
    assert tk.react_by.astimezone(UTC) == datetime(2026, 11, 3, 10, 2, tzinfo=UTC)


def test_three_login_failures_in_ten_minutes_is_a_mail_ticket(run: Run) -> None:
    mb = {"alertname": "MailboxLoginFailed", "mailbox": "jan@acme.example"}
    run.at(0, **mb)
    run.at(0.5, start=0, **mb)  # a re-send of the same occurrence
    run.at(3, **mb)
    run.advance(20)
    assert run.tickets == {}, "two occurrences are not three"
    run.at(21, **mb)
    run.at(22, **mb)
    run.advance(23.9)
    assert run.tickets == {}, "0, 3, 21, 22: never three within ten minutes"
    run.at(24, **mb)
    run.advance(30)
    (tk,) = run.tickets.values()
    assert (tk.category, tk.entity_kind, tk.entity_id, tk.affected) == ("mail", "mailbox", "jan@acme.example",
                                                                       ["jan"])


def test_mail_server_down_is_one_client_ticket_and_mailboxes_are_symptoms(run: Run) -> None:
    run.at(0, alertname="MailServerDown", client="acme", host="mail01", severity="critical")
    for m in range(1, 20, 2):
        for box in ("jan@acme.example", "ewa@acme.example"):
            run.at(m, alertname="MailboxLoginFailed", mailbox=box)
    run.advance(30)
    (tk,) = run.tickets.values()
    assert (tk.entity_kind, tk.entity_id) == ("client", "acme")
    assert run.told("opened") == {"jan", "ewa"}


def test_share_forecast_names_the_folder_that_grew_and_advises_its_owner(run: Run) -> None:
    size = 1_000_000_000_000
    for i in range(48):  # 12 h of samples every 15 min; Jan's folder grows 3 GB per sample
        m = i * 15
        run.sample(m, 0.5 * size + i * 3e9, metric="share_used_bytes", share="projects")
        run.sample(m, 1e11 + i * 3e9, metric="folder_used_bytes", share="projects", folder="Jan")
        run.sample(m, 2e11, metric="folder_used_bytes", share="projects", folder="Ewa")
    (tk,) = run.tickets.values()
    assert (tk.category, tk.entity_kind, tk.entity_id) == ("disk", "share", "projects")
    assert tk.details["folder"] == "Jan" and tk.advice_to == "jan"
    assert run.told("advice") == {"jan"} and run.told("opened") == set() and tk.affected == []


def test_one_off_jump_that_is_cleaned_up_is_no_ticket(run: Run) -> None:
    size = 1_000_000_000_000
    for i in range(60):
        value = 0.5 * size + (0.1 * size if 20 <= i < 26 else 0)
        run.sample(i * 15, value, metric="share_used_bytes", share="projects")
    assert run.tickets == {}


def test_share_over_ninety_percent_is_a_ticket(run: Run) -> None:
    for i in range(8):
        run.sample(i * 15, 0.95e12, metric="share_used_bytes", share="projects")
    assert [t.category for t in run.tickets.values()] == ["disk"]


def test_info_alerts_are_recorded_warning_ones_become_other_tickets(run: Run) -> None:
    run.at(0, alertname="PrinterTonerLow", client="acme", severity="info")
    run.advance(10)
    assert run.tickets == {}
    run.at(11, alertname="BackupFailed", client="acme", severity="warning")
    run.at(12, alertname="BackupFailed", client="acme", host="x", severity="warning")
    run.advance(15)
    (tk,) = run.tickets.values()
    assert (tk.category, tk.client) == ("other", "acme")


def test_prometheus_push_expires_at_ends_at_unless_resent(run: Run) -> None:
    now = T0
    ev = Event(labels={"alertname": "InstanceDown", "host": "krk-pbx01"}, starts_at=now,
               ends_at=now + timedelta(minutes=4), observed_at=now)
    run.engine.handle(ev, now)
    run.advance(10)
    assert run.tickets == {}, "expired at ends_at before the 5 minute hold"


def test_state_survives_snapshot_and_restore(run: Run, tmp_path: Path) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    state = run.engine.snapshot()
    import json

    state = json.loads(json.dumps(state))
    again = Engine(run.engine.rules, run.engine.inv, state)
    again.advance(T0 + timedelta(minutes=3))
    ch = again.drain()
    assert [t.category for t in ch.tickets] == ["internet"], "the pending hold continued after restore"


def test_instance_down_with_only_an_instance_label_binds_by_host_pattern(run: Run) -> None:
    run.at(0, alertname="InstanceDown", instance="krk-pbx01:9100", job="node", severity="critical")
    run.advance(6)
    (tk,) = run.tickets.values()
    assert (tk.category, tk.client, tk.site, tk.entity_id) == ("host", "acme", "krk", "krk-pbx01")


def test_mail_server_known_by_host_binds_to_its_client(run: Run) -> None:
    run.at(0, alertname="MailServerDown", host="mail01", severity="critical")
    (tk,) = run.tickets.values()
    assert (tk.client, tk.entity_kind) == ("acme", "client")


def test_silence_by_labels_makes_the_ticket_planned(run: Run) -> None:
    run.op(0, "silence", matchers={"host": "=~krk-pbx.*"}, ends_at="2026-11-02T12:00:00Z", comment="PBX upgrade")
    run.at(1, alertname="InstanceDown", host="krk-pbx01", severity="critical")
    run.advance(600)
    (tk,) = run.tickets.values()
    assert tk.planned and run.told("escalated") == set()


def test_muting_silence_records_but_opens_nothing(run: Run) -> None:
    run.op(0, "silence", matchers={"alertname": "InstanceDown"}, ends_at="2026-11-02T12:00:00Z", mute=True)
    run.at(1, alertname="InstanceDown", host="krk-pbx01", severity="critical")
    run.advance(30)
    assert run.tickets == {} and run.engine.silenced == 1


def test_a_caller_faster_than_the_hold_is_on_the_callback_list(run: Run) -> None:
    run.at(0, **PROBE1)
    run.at(0, **PROBE2)
    assert run.op(1, "callback", person="jan")["tickets"] == []
    run.advance(3)
    (tk,) = run.tickets.values()
    assert [c.person for c in tk.callbacks] == ["jan"]


def test_blackbox_probes_bind_to_the_site_by_their_target(run: Run) -> None:
    for target in ("https://vpn.acme.example/", "203.0.113.10:443"):
        run.at(0, alertname="BlackboxProbeFailed", instance=target, job="blackbox", severity="critical")
    run.advance(3)
    (tk,) = run.tickets.values()
    assert (tk.category, tk.client, tk.entity_id) == ("internet", "acme", "krk")


def test_link_down_resolved_by_its_own_resolved_event(run: Run) -> None:
    link = {"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "ifIndex": "3"}
    run.at(0, **link)
    run.at(5, "resolved", start=0, **link)
    run.advance(30)
    (tk,) = run.tickets.values()
    assert tk.status == "resolved" and tk.resolved_at == T0 + timedelta(minutes=15)


def test_alerts_no_rule_names_are_forgotten_once_quiet(run: Run) -> None:
    run.at(0, alertname="ColdStart", snmp_agent="192.0.2.1")  # a trap that never resolves
    run.at(1, **PROBE1)
    run.advance(24 * 60)
    run.engine.snapshot()
    names = {a.labels.get("alertname") for a in run.engine.alerts.values()}
    assert names == {"ProbeFailed"}, "the routed alert stays while it fires; the unrouted one is gone"
