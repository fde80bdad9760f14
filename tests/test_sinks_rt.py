"""Tickets pushed to a real Request Tracker 5 and agents' steps there brought back, end to end.

``watcher serve`` runs as a subprocess against a real ``rt-server`` (Debian's
request-tracker5, see tests/rtserver.py), real SMTP and HTTP receivers behind Apprise,
on SQLite and on PostgreSQL.  The story: an outage opens one RT ticket whose body names the
affected people and the callback list with phone numbers; watcher is SIGKILLed right after
RT answered the create call (the fault hook) and, restarted, finds that ticket instead of
making a second one; a new symptom adds a comment; the agent takes the ticket in RT (the
SLA clock stops in watcher) and resolves it there, which resolves watcher's ticket and sends
the all-clear to everyone told and everyone on the callback list, once each.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.proc import WatcherProcess
from tests.rtserver import RtServer, rt_server
from tests.servers import HttpReceiver, SmtpServer, free_port
from tests.test_e2e import probe
from tests.test_e2e import write_config as e2e_config
from watcher.sinks.worker import FAULT_ENV

__all__ = ["rt_server"]


def write_config(tmp_path: Path, smtp: SmtpServer, http: HttpReceiver, db: str, rt: RtServer, queue: str) -> Path:
    """The end-to-end test's configuration, with phone numbers and the RT system added."""
    cfg = e2e_config(tmp_path, smtp, http, db)
    inv_path = tmp_path / "inventory.yaml"
    inventory = yaml.safe_load(inv_path.read_text())
    phones = {"jan.kowalski": "+48 600 100 200", "ewa.smith": "+48 600 300 400"}
    for person in inventory["clients"][0]["people"]:
        if person["id"] in phones:
            person["phone"] = phones[person["id"]]
    inv_path.write_text(yaml.safe_dump(inventory, allow_unicode=True))
    doc = yaml.safe_load(cfg.read_text())
    doc["sinks"] = {"retry_initial": "0.5s", "claim_lease": "3s", "poll_interval": "0.5s", "poll_overlap": "5s",
                    "systems": [{"name": "rt", "kind": "rt", "url": rt.url, "queue": queue, "username": "root",
                                 "password": "env:WATCHER_TEST_RT_PASSWORD", "requestor": "helpdesk@msp.example"}]}
    cfg.write_text(yaml.safe_dump(doc, allow_unicode=True))
    return cfg


def external(w: WatcherProcess, tid: str) -> dict[str, Any] | None:
    doc = w.request("GET", f"/api/v1/tickets/{tid}")[1]
    ext = [e for e in doc.get("external", []) if e["sink"] == "rt"]
    return ext[0] if ext else None


def test_outage_to_rt_and_back(db_url: str, tmp_path: Path, rt_server: RtServer,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    rt = rt_server
    queue = f"watcher-{uuid.uuid4().hex[:8]}"
    rt.create_queue(queue)
    monkeypatch.setenv("WATCHER_TEST_RT_PASSWORD", "password")
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = write_config(tmp_path, smtp, http, db_url, rt, queue)
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        monkeypatch.setenv(FAULT_ENV, "kill-after-create")
        w.start()
        monkeypatch.delenv(FAULT_ENV)
        try:
            # Jan calls the helpdesk before the ticket opens: he is on the callback list.
            status, _ = w.request("POST", "/api/v1/people/jan.kowalski/callbacks", {})
            assert status == 404
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            firing = [probe("https://vpn.acme.example/", "firing", start),
                      probe("203.0.113.10:443", "firing", start)]
            assert w.request("POST", "/api/v1/events", firing)[0] == 200

            # The RT ticket is created, and watcher dies before it records it.
            assert w.proc is not None
            assert w.proc.wait(60) == -9, "the fault hook SIGKILLs watcher right after RT's answer"
            assert len(rt.tickets(queue)) == 1
            w.start()
            tid = w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"][0]["id"]
            ext = w.wait_until(lambda: (e := external(w, tid)) and e["external_id"] and e["state"] == "synced"
                               and e, timeout=60, what="the RT ticket linked")
            (only,) = rt.tickets(queue)
            assert ext["external_id"] == str(only["id"]), "found again, not created again"
            assert ext["url"] == f"{rt.url}/Ticket/Display.html?id={only['id']}"
            assert only["Subject"].startswith(f"[watcher {tid}] ")
            assert "Biuro Kraków" in only["Subject"]
            status, page = w.request("GET", "/")
            assert status == 200 and f"rt #{only['id']}</a> <span class='ok'>synced" in page, page
            body = rt.texts(only["id"])[0]
            assert "Jan Kowalski, tel. +48 600 100 200" in body, body  # callback list, with the phone number
            for person in ("Ewa Smith", "Tom Hook"):
                assert person in body.split("Dotyczy:")[1].split("\n")[0], body
            assert "Powiadomieni:" in body and "Termin reakcji (SLA gold):" in body, body
            assert "Olek" not in body, "people in the office are not affected by the internet outage"

            # New evidence: a host at the site stops answering (a symptom of the outage).
            symptom = [{"source": "api", "labels": {"alertname": "InstanceDown", "client": "acme",
                                                    "site": "acme-krk", "host": "nas1"},
                        "starts_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}]
            assert w.request("POST", "/api/v1/events", symptom)[0] == 200
            w.wait_until(lambda: rt.comments(only["id"]) >= 1, timeout=60, what="a comment about the symptom")
            comment = rt.texts(only["id"])[-1]
            assert "Nowy sygnał" in comment and "nas1" in comment, comment

            # The agent takes the ticket in RT: watcher's SLA clock stops.
            assert rt.api("PUT", f"/ticket/{only['id']}/take", {})[0] == 200
            doc = w.wait_until(lambda: (d := w.request("GET", f"/api/v1/tickets/{tid}")[1])["status"]
                               == "acknowledged" and d, timeout=60, what="the ticket acknowledged from RT")
            assert doc["acknowledged_by"] == "rt:root"

            # The agent resolves it in RT: watcher resolves its ticket and sends the all-clear.
            smtp.wait_for(3, timeout=30)  # jan and ewa were told of the outage, the office was asked
            http.wait_for(1, timeout=30)  # tom, by json://
            assert rt.api("PUT", f"/ticket/{only['id']}", {"Status": "resolved"})[0] == 200
            doc = w.wait_until(lambda: (d := w.request("GET", f"/api/v1/tickets/{tid}")[1])["status"]
                               == "resolved" and d, timeout=60, what="the ticket resolved from RT")
            assert doc["resolved_by"] == "rt:root"
            smtp.wait_for(5, timeout=30)
            http.wait_for(2, timeout=30)
            w.wait_until(lambda: (e := external(w, tid)) and e["pending"] == 0, timeout=60,
                         what="watcher's resolution comment in RT")
            time.sleep(3)  # anything doubled (a second poll, a retried call) would arrive now
            counted = Counter(m["To"] for m in smtp.messages)
            assert counted == {"jan.kowalski@acme.example": 2, "ewa.smith@acme.example": 2,
                               "recepcja@acme.example": 1}, counted
            assert len(http.requests) == 2
            resolved = Counter(n["to"] for n in doc["notifications"] if n["kind"] == "resolved")
            assert resolved == {"jan.kowalski": 1, "ewa.smith": 1, "tom.hook": 1}, resolved
            (only,) = rt.tickets(queue)
            assert only["Status"] == "resolved"
            assert "Problem ustąpił" in rt.texts(only["id"])[-1]

            ext = external(w, tid)
            assert ext is not None and ext["state"] == "synced" and ext["dead"] == 0, ext
            status, metrics = w.request("GET", "/metrics")
            assert 'watcher_sink_calls_total{action="open",result="ok",sink="rt"} 1.0' in metrics, metrics
            assert 'watcher_sink_jobs{sink="rt",state="dead"} 0.0' in metrics
            assert 'watcher_sink_agent_steps_total{action="resolve",sink="rt"} 1.0' in metrics
        finally:
            w.stop()
