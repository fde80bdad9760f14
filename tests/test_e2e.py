"""The walking skeleton end to end, with real parts: ``watcher serve`` as a subprocess, a
real SMTP server and HTTP receiver behind Apprise, a SIGKILL in the middle, on SQLite and
on PostgreSQL; then the same stream through ``watcher replay`` gives the same ticket."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port, json_url, smtp_url


def fast_rules(tmp_path: Path) -> Path:
    """The shipped rules with holds shortened (tests shorten timers through configuration)."""
    doc = yaml.safe_load((ROOT / "rules.yaml").read_text())
    for rule in doc["rules"]:
        for sig in rule.get("signals", []):
            if "for" in sig:
                sig["for"] = "1s" if sig["for"] not in ("0s", 0) else "0s"
        if "resolve_after" in rule:
            rule["resolve_after"] = "1s"
    out = tmp_path / "rules.yaml"
    out.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return out


def write_config(tmp_path: Path, smtp: SmtpServer, http: HttpReceiver, db: str) -> Path:
    inventory = {"clients": [{
        "id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "pl",
        "timezone": "Europe/Warsaw", "business_hours": "Mon-Fri 08:00-17:00",
        "admins": [smtp_url(smtp, "admin@msp.example")],
        "sites": [{"id": "acme-krk", "name": "Biuro Kraków",
                   "office_contact": {"name": "Recepcja", "notify": [smtp_url(smtp, "recepcja@acme.example")]},
                   "probes": [{"type": "http", "target": "https://vpn.acme.example/"},
                              {"type": "tcp", "target": "203.0.113.10:443"}]}],
        "people": [
            {"id": "jan.kowalski", "name": "Jan Kowalski", "site": "acme-krk", "remote": True,
             "language": "pl", "notify": [smtp_url(smtp, "jan.kowalski@acme.example")]},
            {"id": "ewa.smith", "name": "Ewa Smith", "site": "acme-krk", "remote": True, "language": "en",
             "notify": [smtp_url(smtp, "ewa.smith@acme.example")]},
            {"id": "tom.hook", "name": "Tom Hook", "site": "acme-krk", "remote": True, "language": "en",
             "notify": [json_url(http)]},
            {"id": "olek.biuro", "name": "Olek", "site": "acme-krk", "remote": False,
             "notify": [smtp_url(smtp, "olek@acme.example")]},
        ],
    }]}
    return service_config(tmp_path, inventory, db)


def service_config(tmp_path: Path, inventory: dict[str, Any], db: str) -> Path:
    """watcher.yaml, the inventory and the fast rules in ``tmp_path``, for a test service."""
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory, allow_unicode=True))
    fast_rules(tmp_path)
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml", "database": db,
        "public_url": "http://127.0.0.1:1", "secret_key": "test-secret-key-0123456789",
        "engine_tick": "0.2s", "notify": {"retry_initial": "0.5s", "poll_interval": "0.2s"},
    }))
    return cfg


def probe(instance: str, status: str, start: datetime, end: datetime | None = None) -> dict[str, Any]:
    return {"source": "probe", "status": status,
            "labels": {"alertname": "ProbeFailed", "client": "acme", "site": "acme-krk", "instance": instance},
            "starts_at": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "ends_at": end.strftime("%Y-%m-%dT%H:%M:%SZ") if end else None}


def site_down(start: datetime) -> list[dict[str, Any]]:
    """Both probes of the ACME Kraków office failing since ``start``: one internet ticket."""
    return [probe("https://vpn.acme.example/", "firing", start), probe("203.0.113.10:443", "firing", start)]


def mails(smtp: SmtpServer) -> Counter[tuple[str, str]]:
    """(recipient, first word of subject) for every mail received."""
    return Counter((m["To"], str(m["Subject"])) for m in smtp.messages)


@pytest.mark.parametrize(("backend", "workers"), [("sqlite", 1), ("postgresql", 1), ("sqlite", 2), ("postgresql", 2)])
def test_outage_signal_to_ticket_to_people_and_back(backend: str, workers: int, tmp_path: Path,
                                                    request: pytest.FixtureRequest) -> None:
    db = f"sqlite:///{tmp_path / 'watcher.db'}" if backend == "sqlite" else request.getfixturevalue("pg_url")
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, db)
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log", extra=["--workers", str(workers)])
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            firing = [probe("https://vpn.acme.example/", "firing", start),
                      probe("203.0.113.10:443", "firing", start)]
            status, body = w.request("POST", "/api/v1/events", firing)
            assert status == 200 and body["accepted"] == 2, body
            status, body = w.request("POST", "/api/v1/events", firing)  # a re-send
            assert status == 200 and body["accepted"] == 0 and body["duplicates"] == 2, body

            tickets = w.wait_until(lambda: w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"],
                                   what="an open ticket")
            assert len(tickets) == 1
            tk = tickets[0]
            assert (tk["category"], tk["entity"], tk["client"]) == ("internet",
                                                                     {"kind": "site", "id": "acme-krk"}, "acme")
            assert sorted(tk["affected"]) == ["ewa.smith", "jan.kowalski", "tom.hook"]

            smtp.wait_for(3, timeout=30)  # jan + ewa opened, the office check
            http.wait_for(1, timeout=30)  # tom via json://
            by_to = {m["To"]: m for m in smtp.messages}
            assert "jan.kowalski@acme.example" in by_to and "ewa.smith@acme.example" in by_to
            assert "olek@acme.example" not in by_to, "people in the office are not told"
            assert "internet" in str(by_to["jan.kowalski@acme.example"]["Subject"]).lower()
            assert "Biuro Kraków" in str(by_to["jan.kowalski@acme.example"]["Subject"])
            assert "Internet" in str(by_to["ewa.smith@acme.example"]["Subject"])
            assert "recepcja@acme.example" in by_to

            status, page = w.request("GET", "/")
            assert status == 200 and tk["id"] in page and " zostało" in page, "the console (Polish by default) " \
                "shows the SLA clock"
            status, body = w.request("POST", "/api/v1/people/jan.kowalski/callbacks", {})
            assert status == 200 and body["tickets"] == [tk["id"]], body
            status, body = w.request("POST", "/api/v1/people/olek.biuro/callbacks", {})
            assert status == 404, body

            w.kill()  # SIGKILL: nothing accepted may be lost
            w.start()
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]
            assert [c["person"] for c in doc["callbacks"]] == ["jan.kowalski"]

            end = datetime.now(UTC).replace(microsecond=0)
            resolved = [probe("https://vpn.acme.example/", "resolved", start, end),
                        probe("203.0.113.10:443", "resolved", start, end)]
            assert w.request("POST", "/api/v1/events", resolved)[0] == 200
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]["status"] == "resolved",
                         what="the ticket resolved")
            smtp.wait_for(5, timeout=30)
            http.wait_for(2, timeout=30)
            import time

            time.sleep(2)  # anything doubled would arrive now
            counted = Counter(m["To"] for m in smtp.messages)
            assert counted == {"jan.kowalski@acme.example": 2, "ewa.smith@acme.example": 2,
                               "recepcja@acme.example": 1}, counted
            assert len(http.requests) == 2
            doc = w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]
            assert doc["callbacks"][0]["done_at"] is None, "the resolved notice is no call: still owed"
            kinds = Counter((n["to"], n["kind"], n["state"]) for n in doc["notifications"])
            assert kinds[("jan.kowalski", "resolved", "sent")] == 1
            assert kinds[("tom.hook", "opened", "sent")] == 1

            status, metrics = w.request("GET", "/metrics")
            assert status == 200 and 'watcher_events_received_total{source="probe"} 2.0' in metrics
        finally:
            w.stop()

    # The same path replayed gives the same ticket.
    stream = tmp_path / "stream.jsonl"
    lines = [dict(e, observed_at=e["starts_at"]) for e in firing]
    lines.append({"op": "callback", "at": (start + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "person": "jan.kowalski"})
    lines += [dict(e, observed_at=e["ends_at"]) for e in resolved]
    stream.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    out = subprocess.run([str(Path(sys.executable).parent / "watcher"), "replay", "--config", str(cfg),
                          str(stream)], capture_output=True, text=True, check=True, timeout=120)
    replayed = json.loads(out.stdout)
    (rt,) = replayed["tickets"]
    assert (rt["category"], rt["entity"], sorted(rt["affected"])) == (doc["category"], doc["entity"],
                                                                       sorted(doc["affected"]))
    live_notes = {(n["to"], n["kind"]) for n in doc["notifications"]}
    replay_notes = {(n["to"], n["kind"]) for n in replayed["notifications"]}
    assert replay_notes - {(p, "resolved") for p in ["jan.kowalski"]} <= live_notes
    assert {(p, k) for p, k in live_notes if k != "resolved"} == {(p, k) for p, k in replay_notes
                                                                  if k != "resolved"}
