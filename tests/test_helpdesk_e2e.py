"""The helpdesk's way of working, end to end on a running ``watcher serve`` with a real SMTP
server: the call list, the office call task, an agent's escalation with the team's clocks,
disk advice that waits for an administrator, and mailbox notices by problem.

Nothing is mocked: notices are real mails read back from the SMTP server, every change
goes through the HTTP API (and the CLI) into the service's inbox.
"""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port, json_url, smtp_url, text_body
from tests.test_e2e import probe, service_config

WATCHER = str(Path(sys.executable).parent / "watcher")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def config(tmp_path: Path, smtp: SmtpServer, db: str, **client: Any) -> Path:
    inventory = {"clients": [{
        "id": "acme", "name": "ACME Sp. z o.o.", "sla": "gold", "language": "pl",
        "timezone": "Europe/Warsaw", "business_hours": "24/7",
        "admins": [smtp_url(smtp, "admin@msp.example")],
        "sites": [{"id": "acme-krk", "name": "Biuro Kraków",
                   "office_contact": {"name": "Recepcja", "phone": "+48 12 000 00 00",
                                      "notify": [smtp_url(smtp, "recepcja@acme.example")]},
                   "probes": [{"type": "http", "target": "https://vpn.acme.example/"},
                              {"type": "tcp", "target": "203.0.113.10:443"}]}],
        "people": [
            {"id": "jan.kowalski", "name": "Jan Kowalski", "site": "acme-krk", "remote": True,
             "phone": "+48 600 100 200", "notify": [smtp_url(smtp, "jan.kowalski@acme.example")]},
            {"id": "ewa.nowak", "name": "Ewa Nowak", "site": "acme-krk", "remote": True,
             "notify": [smtp_url(smtp, "ewa.nowak@acme.example")]},
        ],
        "shares": [{"id": "acme-projects", "name": "Projekty", "site": "acme-krk", "size_bytes": 1_000_000_000_000,
                    "folders": {"jan.kowalski": "Jan", "ewa.nowak": "Ewa"}}],
        "mailboxes": [{"address": "jan.kowalski@acme.example", "person": "jan.kowalski"}],
        **client,
    }]}
    return service_config(tmp_path, inventory, db)


def mail_to(smtp: SmtpServer, address: str, subject_part: str) -> list[Any]:
    return [m for m in smtp.messages if m["To"] == address and subject_part in str(m["Subject"])]


def cli(cfg: Path, w: WatcherProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHER, args[0], "--config", str(cfg), "--url", w.url, *args[1:]],
                          capture_output=True, text=True, timeout=60)


def test_outage_call_task_failure_escalates_and_callers_stay_on_the_call_list(tmp_path: Path,
                                                                               db_url: str) -> None:
    with SmtpServer() as smtp, HttpReceiver() as gateway:
        cfg = config(tmp_path, smtp, db_url)
        doc = yaml.safe_load(cfg.read_text())  # an SMS gateway (here an HTTP receiver) for the office
        doc["notify"]["sms_url"] = f"json://{gateway.host}:{gateway.port}/sms/{{phone}}"
        cfg.write_text(yaml.safe_dump(doc))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            w.request("POST", "/api/v1/events", [probe("https://vpn.acme.example/", "firing", start),
                                                 probe("203.0.113.10:443", "firing", start)])
            tk = w.wait_until(lambda: (w.request("GET", "/api/v1/tickets")[1]["tickets"] or [None])[0],
                              what="the outage ticket")
            tid = tk["id"]
            # the office check is a call task with the office's phone; the e-mail still goes
            assert tk["tasks"][0]["kind"] == "call_office" and tk["tasks"][0]["phone"] == "+48 12 000 00 00"
            rows = w.request("GET", "/api/v1/calls")[1]["calls"]
            assert [(r["kind"], r["phone"], r["name"]) for r in rows] == [("call_office", "+48 12 000 00 00",
                                                                           "Recepcja")]
            # the office reads the answer links by SMS: its internet is down
            gateway.wait_for(1, timeout=30)
            (sms,) = gateway.requests
            assert sms["path"] == "/sms/+48120000000" and "/l/" in str(sms["body"])
            assert not mail_to(smtp, "recepcja@acme.example", ""), "SMS first, the mail only if it fails"
            # a caller asks to be called, with another number and a time
            status, doc = w.request("POST", f"/api/v1/tickets/{tid}/callbacks",
                                    {"person": "jan.kowalski", "phone": "+48 601 000 000",
                                     "preferred_time": "po 15:00", "note": "pracuje z domu"})
            assert status == 200, doc
            # the office answers "failure" on the phone: escalated to the administrators, staff told
            status, doc = w.request("POST", f"/api/v1/tickets/{tid}/office-answer",
                                    {"answer": "failure", "by": "agent.anna", "note": "router nie świeci"})
            assert status == 200, doc
            assert doc["escalation"]["team"] == "Administracja IT" and doc["escalation"]["react_by"]
            assert doc["tasks"][0]["answer"] == "failure" and doc["tasks"][0]["done_at"]
            smtp.wait_for(1, timeout=30)
            w.wait_until(lambda: mail_to(smtp, "admin@msp.example", "Eskalacja"), what="the escalation mail")
            w.wait_until(lambda: mail_to(smtp, "ewa.nowak@acme.example", "Potwierdzona awaria"),
                         what="the remote staff told of the confirmed failure")
            escalation = text_body(mail_to(smtp, "admin@msp.example", "Eskalacja")[0])
            assert "Administracja IT" in escalation and "agent.anna" in escalation
            assert "router nie świeci" in escalation and "Odpowiedź biura: awaria" in escalation
            # fixed: the resolved notice is no call; the caller stays on the call list
            end = datetime.now(UTC).replace(microsecond=0)
            w.request("POST", "/api/v1/events", [probe("https://vpn.acme.example/", "resolved", start, end),
                                                 probe("203.0.113.10:443", "resolved", start, end)])
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tid}")[1]["status"] == "resolved",
                         what="resolution")
            rows = w.request("GET", "/api/v1/calls")[1]["calls"]
            assert [(r["person"], r["phone"], r["preferred_time"], r["ticket_status"], r["call_now"])
                    for r in rows] == [("jan.kowalski", "+48 601 000 000", "po 15:00", "resolved", True)]
            listed = cli(cfg, w, "calls")
            assert listed.returncode == 0 and "Jan Kowalski tel. +48 601 000 000" in listed.stdout, listed
            page = w.request("GET", "/")[1]
            assert "Telefony do wykonania" in page and "+48 601 000 000" in page  # the console is Polish by default
            # the agent calls: no answer first (still on the list), then reached (off the list)
            done = cli(cfg, w, "call", tid, "--person", "jan.kowalski", "--outcome", "no_answer")
            assert done.returncode == 0, done.stderr
            assert len(w.request("GET", "/api/v1/calls")[1]["calls"]) == 1
            done = cli(cfg, w, "call", tid, "--person", "jan.kowalski", "--note", "wszystko działa", "--by", "ola")
            assert done.returncode == 0, done.stderr
            assert w.request("GET", "/api/v1/calls")[1]["calls"] == []
            cb = w.request("GET", f"/api/v1/tickets/{tid}")[1]["callbacks"][0]
            assert cb["how"] == "called" and [c["outcome"] for c in cb["calls"]] == ["no_answer", "reached"]
            again = cli(cfg, w, "call", tid, "--person", "jan.kowalski")
            assert again.returncode == 1 and "409" in again.stderr
        finally:
            w.stop()


def test_escalation_clocks_disk_confirmation_and_mailbox_notices(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        cfg = config(tmp_path, smtp, f"sqlite:///{tmp_path / 'w.db'}",
                     escalation_clocks={"admins": {"react": "2s", "resolve": "5s"}})
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            now = datetime.now(UTC).replace(microsecond=0)
            # a share that grew 150 GB while the folders grew half a megabyte
            samples = []
            for i in range(21):
                at = iso(now - timedelta(minutes=15 * (20 - i)))
                samples.append({"labels": {"metric": "share_used_bytes", "share": "acme-projects"},
                                "value": 800e9 + i * 7.5e9, "observed_at": at})
                samples.append({"labels": {"metric": "folder_used_bytes", "share": "acme-projects", "folder": "Jan"},
                                "value": 1e9 + i * 25_000, "observed_at": at,
                                "annotations": {"file_kinds": '{"photos": 900000000}'}})
            # a full mailbox, and failed logins every five minutes with a poll's drift
            samples.append({"labels": {"alertname": "MailboxQuotaNearlyFull", "mailbox": "jan.kowalski@acme.example",
                                       "severity": "warning"}, "starts_at": iso(now)})
            for k, back in enumerate((600.5, 300.2, 0.0)):
                samples.append({"labels": {"alertname": "MailboxLoginFailed", "mailbox": "jan.kowalski@acme.example"},
                                "starts_at": (now - timedelta(seconds=back)).isoformat().replace("+00:00", "Z"),
                                "annotations": {"consecutive_failures": str(k + 1)}})
            assert w.request("POST", "/api/v1/events", samples)[0] == 200

            def by_category() -> dict[str, Any]:
                docs = w.request("GET", "/api/v1/tickets")[1]["tickets"]
                return {(d["category"], d["details"].get("problem")): d for d in docs}

            found = w.wait_until(lambda: len(by_category()) == 3 and by_category(), what="three tickets")
            disk = found[("disk", None)]
            assert disk["details"]["advice"] == "confirm" and disk["advice_to"] is None
            # the administrators get a readable summary and nobody is advised yet
            review = w.wait_until(lambda: mail_to(smtp, "admin@msp.example", "przegląd"), what="disk review")
            text = text_body(review[0])
            assert "cały dysk: +150,0 GB" in text and "„Jan” (jan.kowalski): +0,5 MB" in text
            assert "Nikt nie dostał jeszcze porady" in text
            quota = w.wait_until(lambda: mail_to(smtp, "jan.kowalski@acme.example", "prawie pełna"), what="quota")
            assert "Prosimy o porządki w poczcie" in text_body(quota[0])
            login = w.wait_until(lambda: mail_to(smtp, "jan.kowalski@acme.example", "Nieudane logowania"),
                                 what="the failed-logins notice (three failures, 0.5 s of drift)")
            assert "zmienić hasło" in text_body(login[0])
            assert not mail_to(smtp, "jan.kowalski@acme.example", "Prośba o sprawdzenie")
            # an administrator confirms the cause: Jan is advised
            status, doc = w.request("POST", f"/api/v1/tickets/{disk['id']}/advice",
                                    {"action": "confirm", "person": "jan.kowalski", "by": "admin.piotr"})
            assert status == 200 and doc["advice_to"] == "jan.kowalski", doc
            w.wait_until(lambda: mail_to(smtp, "jan.kowalski@acme.example", "Prośba o sprawdzenie"),
                         what="the advice after confirmation")

            # an agent escalates the full mailbox; acknowledgement meets the reaction clock,
            # the resolution clock runs on and its miss is flagged and mailed
            qid = found[("mail", "quota")]["id"]
            status, doc = w.request("POST", f"/api/v1/tickets/{qid}/escalate",
                                    {"to": "admins", "reason": "limit skrzynki do zmiany na serwerze", "by": "ola"})
            assert status == 200, doc
            esc = doc["escalation"]
            assert esc["team"] == "Administracja IT" and esc["react_by"] < esc["resolve_by"]
            assert w.request("POST", f"/api/v1/tickets/{qid}/ack", {"by": "admin.piotr"})[0] == 200
            missed = w.wait_until(lambda: mail_to(smtp, "admin@msp.example", "Minął czas usunięcia"), timeout=30,
                                  what="the missed resolution deadline")
            assert qid in str(missed[0]["Subject"])
            doc = w.request("GET", f"/api/v1/tickets/{qid}")[1]
            assert doc["escalation"]["reacted_at"] and not doc["escalation"]["reaction_missed"]
            assert doc["escalation"]["resolution_missed"] is True
            assert not mail_to(smtp, "admin@msp.example", "Minął czas reakcji")
        finally:
            w.stop()


def test_mail_server_down_is_not_announced_into_the_server_that_is_down(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        cfg = config(tmp_path, smtp, f"sqlite:///{tmp_path / 'w.db'}")
        inv = yaml.safe_load((tmp_path / "inventory.yaml").read_text())
        ewa = inv["clients"][0]["people"][1]
        ewa["notify"] = [smtp_url(smtp, "ewa.nowak@acme.example"), json_url(http)]  # and a channel elsewhere
        inv["clients"][0]["mailboxes"].append({"address": "ewa.nowak@acme.example", "person": "ewa.nowak"})
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inv, allow_unicode=True))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            w.request("POST", "/api/v1/events", [{"labels": {"alertname": "MailServerDown", "client": "acme",
                                                             "severity": "critical"}}])
            http.wait_for(1, timeout=30)  # Ewa hears of it through the other channel
            dead = w.wait_until(lambda: w.request("GET", "/api/v1/outbox?state=dead")[1]["outbox"],
                                what="Jan's notice given up on")
            assert [(d["recipient"], d["kind"]) for d in dead] == [("jan.kowalski", "opened")]
            assert "call list" in dead[0]["last_error"]
            time.sleep(1)
            assert not [m for m in smtp.messages if "acme.example" in str(m["To"])], "nothing into the dead server"
            rows = w.request("GET", "/api/v1/calls")[1]["calls"]
            assert [(r["person"], r["phone"]) for r in rows] == [("jan.kowalski", "+48 600 100 200")]
            assert "mail server down" in rows[0]["reason"]
        finally:
            w.stop()
