"""The monthly client report, read as its reader would: a replayed month of the shared sample
rendered to PDF, turned into text (``pdftotext``) and pages (``pdftoppm``), and its figures
checked against the tickets the replay produced, computed here independently."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, SHARED
from watcher import report
from watcher.config import ConfigError, load_config, load_inventory
from watcher.config.yamlload import Reader, root_reader
from watcher.model import parse_time
from watcher.report import i18n, render
from watcher.report.send import due_month, first_working_day

SAMPLE = SHARED / "scenarios" / "sample"
WATCHER = str(Path(sys.executable).parent / "watcher")
needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") or not shutil.which("pdftoppm"),
                                   reason="poppler-utils (pdftotext, pdftoppm) not installed: scripts/system-deps.sh")


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (SAMPLE / "stream.jsonl").exists():
        pytest.skip("../shared/scenarios/sample is not there")
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "watcher.yaml"
    cfg.write_text(f"rules: {ROOT / 'rules.yaml'}\ninventory: {SAMPLE / 'inventory.yaml'}\n")
    out = subprocess.run([WATCHER, "replay", "--config", str(cfg), str(SAMPLE / "stream.jsonl")],
                         capture_output=True, text=True, check=True, timeout=300)
    (tmp / "out.json").write_text(out.stdout)
    return tmp


def _tickets(replayed: Path, client: str) -> list[dict[str, Any]]:
    return [t for t in json.loads((replayed / "out.json").read_text())["tickets"] if t["client"] == client]


def _pdf(replayed: Path, client: str, tmp_path: Path) -> tuple[str, list[Path]]:
    pdf = tmp_path / f"{client}.pdf"
    subprocess.run([WATCHER, "report", "--config", str(replayed / "watcher.yaml"), "--client", client,
                    "--month", "2026-11", "--from-replay", str(replayed / "out.json"), "--stream",
                    str(SAMPLE / "stream.jsonl"), "--format", "pdf", "--output", str(pdf)],
                   check=True, capture_output=True, timeout=300)
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    return text, sorted(tmp_path.glob("page-*.png"))


def _minutes(a: str, b: str) -> float:
    return (parse_time(b) - parse_time(a)).total_seconds() / 60


def _section(text: str, start: str, end: str | None) -> str:
    tail = text[text.index(start):]
    return tail[:tail.index(end)] if end else tail


@needs_poppler
def test_pdf_of_a_replayed_month_shows_what_the_replay_produced(replayed: Path, tmp_path: Path) -> None:
    mine = _tickets(replayed, "tartan")
    inv = load_inventory(SAMPLE / "inventory.yaml")
    client = inv.clients["tartan"]
    text, pages = _pdf(replayed, "tartan", tmp_path)
    flat = re.sub(r"\s+", " ", text)

    assert "Monthly report: November 2026" in text and client.name in text and "SLA tier: Gold" in text
    for heading in ("The month at a glance", "SLA by tier", "Offices", "Network shares", "Mail",
                    "Trend: this month and the three before", "Recommendations"):
        assert heading in text, heading

    # tickets by category
    counts: dict[str, int] = {}
    for t in mine:
        counts[t["category"]] = counts.get(t["category"], 0) + 1
    glance = _section(text, "The month at a glance", "SLA by tier")
    for cat, n in counts.items():
        assert re.search(rf"^\s*{re.escape(i18n.category(cat, 'en'))}\s+{n}\s*$", glance, re.M), (cat, n, glance)

    # SLA: a ticket escalated by the engine is a missed helpdesk reaction, the others were met
    with_sla = [t for t in mine if not t["planned"] and t["sla"]["react_by"]]
    missed = [t for t in with_sla if t["sla"]["escalated_at"]]
    reacted = [t for t in with_sla if not t["sla"]["escalated_at"] and (t["acknowledged_at"] or t["resolved_at"])]
    row = re.search(r"Helpdesk reaction\s+4\s*h\s+(\d+)\s+(\d+)\s+(\d+)", text)
    assert row, text
    assert (int(row[1]), int(row[2])) == (len(reacted), len(missed)) and missed
    sla_part = _section(text, "Tickets that missed the SLA", "Offices")
    for t in missed:
        assert t["id"] in sla_part

    # offices by name: outages, total and longest downtime
    offices = _section(text, "Total downtime", "Network shares")
    for site in client.sites:
        downs = [_minutes(t["opened_at"], t["resolved_at"]) for t in mine
                 if t["category"] == "internet" and t["entity"]["id"] == site.id and not t["planned"]]
        total = i18n.duration(sum(downs), "en") if downs else "0 min"
        longest = i18n.duration(max(downs), "en") if downs else "0 min"
        assert re.search(rf"{re.escape(site.name)}\s+{len(downs)}\s+{total}\s+{longest}", offices), (site.name, offices)

    # recommendations name the office and the share that triggered them, with their figures
    recs = re.sub(r"\s+", " ", _section(text, "Recommendations", None))
    long_office = [s for s in client.sites if any(
        t["category"] == "internet" and t["entity"]["id"] == s.id and not t["planned"]
        and _minutes(t["opened_at"], t["resolved_at"]) >= 240 for t in mine)]
    assert long_office and all(f"{s.name}: we recommend a backup internet link" in recs for s in long_office)
    disk = [t for t in mine if t["category"] == "disk"]
    assert disk and all(f"Share {t['entity']['id']} will be full around" in recs for t in disk)
    assert all(t["details"]["folder"] in recs for t in disk), recs
    assert "days to full:" in recs and "Why:" in recs
    assert "Tickets opened" in flat

    # pages as images: more than one page, with the charts' colour on them
    from PIL import Image

    assert len(pages) >= 2
    coloured = 0
    for page in pages:
        with Image.open(page) as img:
            rgb = img.convert("RGB")
            coloured += sum(1 for r, g, b in rgb.getdata() if b > 150 and r < 80)  # the blue bars
    assert coloured > 200


@needs_poppler
def test_polish_report_counts_with_the_right_plural_forms(replayed: Path, tmp_path: Path) -> None:
    mine = _tickets(replayed, "orbita")
    text, _ = _pdf(replayed, "orbita", tmp_path)
    assert "Raport miesięczny: listopad 2026" in text
    outages = sum(1 for t in mine if t["category"] == "internet" and not t["planned"])
    assert outages == 2
    flat = re.sub(r"\s+", " ", text)
    assert "Biuro Wrocław: rekomendujemy zapasowe łącze" in flat
    assert "awarie: 2" in flat
    assert not re.search(r"\b1 zgłoszeń|\b2 zgłoszeń|\b5 zgłoszenia", flat)


@needs_poppler
def test_mail_section_counts_each_kind_of_mail_problem(replayed: Path, tmp_path: Path) -> None:
    mine = [t for t in _tickets(replayed, "granit") if t["category"] == "mail"]
    text, _ = _pdf(replayed, "granit", tmp_path)

    def kind(signal: str) -> int:
        return sum(1 for t in mine if t["entity"]["kind"] == "mailbox"
                   and any(e["what"].startswith(signal) for e in t["timeline"]))

    quota, logins = kind("MailboxQuotaNearlyFull"), kind("MailboxLoginFailed")
    servers = sum(1 for t in mine if t["entity"]["kind"] == "client")
    assert quota and logins
    assert re.search(rf"^\s*{len(mine)}\s+{quota}\s+{logins}\s+0\s+{servers}\s*$", text, re.M), text
    for t in mine:
        if t["entity"]["kind"] == "mailbox":
            assert t["entity"]["id"] in text


def test_report_build_and_commands(replayed: Path) -> None:
    tickets = json.loads((replayed / "out.json").read_text())["tickets"]
    inv = load_inventory(SAMPLE / "inventory.yaml")
    rep = report.build(tickets, inv.clients["quantis"], "2026-11")
    mine = [t for t in tickets if t["client"] == "quantis"]
    assert rep.tickets == len(mine) > 0
    assert sum(rep.by_category.values()) == rep.tickets
    assert rep.escalated == sum(1 for t in mine if t["sla"]["escalated_at"])
    assert set(rep.outage_minutes) == {t["entity"]["id"] for t in mine if t["category"] == "internet"}
    assert report.build(tickets, inv.clients["quantis"], "2026-10").tickets == 0
    cmd = [WATCHER, "report", "--config", str(replayed / "watcher.yaml"), "--client", "granit", "--month",
           "2026-11", "--from-replay", str(replayed / "out.json")]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert text.startswith("Raport miesięczny: listopad 2026\nGranit Sp. z o.o.")
    assert "Rekomendacje:" in text
    html = subprocess.run([*cmd, "--format", "html"], capture_output=True, text=True, check=True).stdout
    assert html.startswith("<!doctype html>") and html.count("<h1>") == 1 and "<li>" not in html
    assert "Biuro Łódź" in html and "data:image/svg+xml;base64," in html
    doc = json.loads(subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, check=True).stdout)
    assert doc["tickets"] == rep.tickets or doc["client_id"] == "granit"
    bad = subprocess.run([*cmd[:-4], "--month", "2026-13"], capture_output=True, text=True)
    assert bad.returncode == 2 and "YYYY-MM" in bad.stderr


def test_polish_plurals() -> None:
    assert [i18n.plural(n, "ticket", "pl") for n in (1, 2, 5, 12, 22, 25)] == [
        "1 zgłoszenie", "2 zgłoszenia", "5 zgłoszeń", "12 zgłoszeń", "22 zgłoszenia", "25 zgłoszeń"]
    assert i18n.plural(1.5, "hour", "pl") == "1,5 godziny"
    assert [i18n.plural(n, "ticket", "en") for n in (1, 2)] == ["1 ticket", "2 tickets"]
    assert i18n.month_name("2026-11", "pl") == "listopad 2026"


def test_first_working_day_in_the_clients_time_zone(tmp_path: Path) -> None:
    inv = tmp_path / "inventory.yaml"
    inv.write_text("clients:\n  - {id: acme, name: ACME, sla: gold, language: pl, timezone: Europe/Warsaw,\n"
                   "     business_hours: 'Mon-Fri 08:00-17:00', coordinator: {name: A, email: a@acme.example}}\n")
    client = load_inventory(inv).clients["acme"]
    # 1 November 2026 is a Sunday: the first working day is Monday the 2nd, 08:00 in Warsaw (07:00 UTC)
    assert first_working_day(client, 2026, 11) == datetime(2026, 11, 2, 7, 0, tzinfo=UTC)
    assert first_working_day(client, 2026, 12) == datetime(2026, 12, 1, 7, 0, tzinfo=UTC)
    opens = first_working_day(client, 2026, 11)
    assert due_month(client, opens - timedelta(seconds=1), 7 * 86400) is None
    assert due_month(client, opens, 7 * 86400) == "2026-10"
    assert due_month(client, opens + timedelta(days=8), 7 * 86400) is None
    assert due_month(client, datetime(2027, 1, 1, 7, 0, tzinfo=UTC), 86400) == "2026-12"  # a Friday
    # with Poland's public holidays, New Year's Day is closed: Monday 4 January
    inv.write_text(inv.read_text().replace("coordinator:", "holidays: PL, coordinator:"))
    polish = load_inventory(inv).clients["acme"]
    assert first_working_day(polish, 2027, 1) == datetime(2027, 1, 4, 7, 0, tzinfo=UTC)


def test_sla_follows_the_clocks_the_ticket_carries(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An agent's hand-over to the service team: the helpdesk reacted by handing over, the team's
    reaction and resolution deadlines are the ones the engine wrote on the ticket."""
    client = _acme(tmp_path_factory)
    doc = {"id": "T-000001", "client": "acme", "category": "hardware", "entity": {"kind": "host", "id": "pc1"},
           "title": "printer", "planned": False, "opened_at": "2026-11-03T08:00:00Z", "acknowledged_at": None,
           "resolved_at": "2026-11-05T12:00:00Z", "callbacks": [], "notifications": [], "timeline": [],
           "sla": {"tier": "platinum", "react_by": "2026-11-03T10:00:00Z", "resolve_by": "2026-11-04T15:00:00Z",
                   "escalated_at": "2026-11-03T08:30:00Z"},
           "escalation": {"to": "service", "by": "agent.kasia", "at": "2026-11-03T08:30:00Z",
                          "react_by": "2026-11-03T10:30:00Z", "resolve_by": "2026-11-04T15:00:00Z",
                          "reacted_at": "2026-11-03T09:00:00Z"}}
    rep = report.build([doc], client, "2026-11")
    assert rep.sla is not None
    assert (rep.sla.helpdesk_reaction.met, rep.sla.helpdesk_reaction.missed) == (1, 0)
    assert (rep.sla.admin_reaction.met, rep.sla.admin_reaction.missed) == (1, 0)
    assert (rep.sla.admin_resolution.met, rep.sla.admin_resolution.missed) == (0, 1)
    [miss] = rep.sla.missed
    assert miss.measure == "admin_resolution" and miss.late_minutes == 21 * 60


def _cfg(tmp_path: Path, report_yaml: str) -> Path:
    (tmp_path / "rules.yaml").write_text((ROOT / "rules.yaml").read_text())
    (tmp_path / "inventory.yaml").write_text((ROOT / "inventory.yaml").read_text())
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text("rules: rules.yaml\ninventory: inventory.yaml\nreport:\n" + report_yaml)
    return cfg


def test_recommendation_rules_from_configuration(tmp_path: Path, replayed: Path) -> None:
    cfg = _cfg(tmp_path, "  schedule: true\n  defaults: false\n  recommendations:\n"
                         "    - name: ups\n      per: office\n      when: ['outages >= 1']\n"
                         "      advice: {en: 'Check the UPS of {name} ({outages} outages).', pl: 'UPS {name}.'}\n"
                         "      why: {en: 'Short outages are often power.', pl: 'Zasilanie.'}\n")
    config = load_config(cfg)
    assert config.service.report.schedule and [r.name for r in config.service.report.rules] == ["ups"]
    tickets = json.loads((replayed / "out.json").read_text())["tickets"]
    client = load_inventory(SAMPLE / "inventory.yaml").clients["quantis"]
    rep = report.build(tickets, client, "2026-11", rules=report.recommend.rules_for(config.service.report))
    assert {r.rule for r in rep.recommendations} == {"ups"}
    assert {r.subject for r in rep.recommendations} == {t["entity"]["id"] for t in tickets
                                                        if t["client"] == "quantis" and t["category"] == "internet"}
    assert "Check the UPS of Wrocław office (1 outages)." in [r.advice for r in rep.recommendations]
    assert "outages: 1" in render.render_text(rep, client)


@pytest.mark.parametrize(("rule", "key", "message"), [
    ("{name: x, per: office, when: ['outage >= 1'], advice: {en: a}, why: {en: b}}", "when", "no figure 'outage'"),
    ("{name: x, per: office, when: ['outages => 1'], advice: {en: a}, why: {en: b}}", "when", "expected like"),
    ("{name: x, per: shelf, when: ['outages >= 1'], advice: {en: a}, why: {en: b}}", "per", "expected one of"),
    ("{name: x, per: share, when: ['days_to_full < 9'], advice: {en: '{folder}'}, why: {en: b}}", "advice.en",
     "unknown placeholder {folder}"),
    ("{name: x, per: share, when: ['days_to_full < 9'], advice: {de: a}, why: {en: b}}", "advice.de",
     "expected a language"),
    ("{name: x, per: share, when: ['days_to_full < 9'], advice: {en: a}, why: {en: b}, colour: red}", "colour",
     "unknown key"),
])
def test_bad_recommendation_rules_name_file_line_and_key(tmp_path: Path, rule: str, key: str, message: str) -> None:
    cfg = _cfg(tmp_path, f"  recommendations:\n    - {rule}\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    text = str(err.value)
    assert "watcher.yaml" in text and ":5:" in text and f"report.recommendations[0].{key}" in text, text
    assert message in text, text


@settings(max_examples=200, deadline=None)
@given(condition=st.text(max_size=30), advice=st.text(max_size=40))
def test_any_rule_text_is_accepted_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, condition: str,
                                                     advice: str) -> None:
    path = tmp_path_factory.mktemp("rule") / "watcher.yaml"
    path.write_text(json.dumps({"report": {"recommendations": [
        {"name": "x", "per": "mailbox", "when": [condition], "advice": {"en": advice}, "why": {"en": "b"}}]}}))
    root = root_reader(path)
    from watcher.config.report import load_report_config

    try:
        cfg = load_report_config(Reader(root.file, root.data["report"], "report"))
    except ConfigError:
        return
    rule = cfg.rules[0]
    assert rule.when and all(c.figure in ("tickets", "quota", "login_failures", "bounces") for c in rule.when)


_INV = """\
clients:
  - id: acme
    name: ACME
    sla: platinum
    language: pl
    timezone: Europe/Warsaw
    business_hours: "Mon-Fri 08:00-16:00"
    sites: [{id: krk, name: Biuro Kraków}, {id: waw, name: Biuro Warszawa}]
"""


_CLIENTS: dict[str, Any] = {}


def _acme(factory: pytest.TempPathFactory) -> Any:
    if "acme" not in _CLIENTS:
        path = factory.mktemp("inv") / "inventory.yaml"
        path.write_text(_INV)
        _CLIENTS["acme"] = load_inventory(path).clients["acme"]
    return _CLIENTS["acme"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30 * 24 * 60 - 1), st.integers(1, 3 * 24 * 60), st.booleans(),
                          st.sampled_from(["krk", "waw"]), st.sampled_from([None, "ack", "resolve", "both"]),
                          st.integers(0, 600)), max_size=12))
def test_figures_add_up_for_any_month_of_outages(tmp_path_factory: pytest.TempPathFactory,
                                                 spec: list[tuple[int, int, bool, str, str | None, int]]) -> None:
    client = _acme(tmp_path_factory)
    start = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)  # 1 November, 00:00 in Warsaw
    tickets = []
    for i, (offset, length, planned, site, done, react) in enumerate(spec):
        opened = start + timedelta(minutes=offset)
        ended = opened + timedelta(minutes=length)
        acked = opened + timedelta(minutes=react) if done in ("ack", "both") else None
        react_by = client.business_hours.add(opened, 2 * 3600)
        in_time = (acked and acked <= react_by) or (done in ("resolve", "both") and ended <= react_by)
        # the engine escalates at react_by what was not reacted to by then (the report is made later)
        escalated = None if planned or in_time else react_by
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        tickets.append({
            "id": f"T-{i:06d}", "client": "acme", "category": "internet", "entity": {"kind": "site", "id": site},
            "title": "x", "planned": planned, "opened_at": opened.strftime(fmt),
            "acknowledged_at": acked.strftime(fmt) if acked else None,
            "resolved_at": ended.strftime(fmt) if done in ("resolve", "both") else None,
            "sla": {"tier": "platinum", "react_by": None if planned else react_by.strftime(fmt),
                    "escalated_at": escalated.strftime(fmt) if escalated else None},
            "callbacks": [], "notifications": [], "timeline": []})
    rep = report.build(tickets, client, "2026-11", now=start + timedelta(days=40))
    assert rep.tickets == len(tickets) and rep.sudden_outages + rep.planned_outages == len(tickets)
    assert rep.sla is not None
    h = rep.sla.helpdesk_reaction
    assert h.met + h.missed + h.pending == sum(1 for t in tickets if not t["planned"])
    assert h.missed == sum(1 for t in tickets if t["sla"]["escalated_at"])
    assert sum(o.outages for o in rep.offices) == rep.sudden_outages
    for o in rep.offices:
        assert o.longest_minutes <= o.downtime_minutes + 1e-6
    text = render.render_text(rep, client)
    assert "Raport miesięczny: listopad 2026" in text
    assert not re.search(r"(?<![\d,])1 awarii|(?<![\d,])[5-9] awarie", text)
    assert all((r.rule, r.subject) in {("backup-link", "krk"), ("backup-link", "waw"), ("service-review", "internet")}
               for r in rep.recommendations)
    assert h.pending == 0
