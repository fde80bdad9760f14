"""The monthly report goes to the coordinator once: two schedulers (two replicas of the
service on one database) race on the client's first working day, a real SMTP server
(aiosmtpd) receives the mail, and the PDF attached is the report."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.servers import SmtpServer, smtp_url
from watcher.api import reports as reports_page
from watcher.config import load_config
from watcher.metrics import Metrics
from watcher.model import Event, Ticket
from watcher.notify.outbox import Dispatcher
from watcher.report import send
from watcher.store import InboxRow, Store

INVENTORY = """\
clients:
  - id: acme
    name: ACME Sp. z o.o.
    sla: gold
    language: en
    timezone: Europe/Warsaw
    business_hours: "Mon-Fri 08:00-17:00"
    coordinator: {{name: Anna Nowak, notify: ["{url}"]}}
    sites:
      - {{id: acme-krk, name: Krakow office}}
    shares:
      - {{id: acme-projects, site: acme-krk, size_bytes: 1000000000000}}
"""


def _config(tmp_path: Path, smtp: SmtpServer, db: str) -> Path:
    (tmp_path / "inventory.yaml").write_text(INVENTORY.format(url=smtp_url(smtp, "anna.nowak@acme.example")))
    (tmp_path / "rules.yaml").write_text((ROOT / "rules.yaml").read_text())
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(f"rules: rules.yaml\ninventory: inventory.yaml\ndatabase: {db}\n"
                   "notify: {retry_initial: 0.2s, poll_interval: 0.1s}\nreport: {schedule: true}\n")
    return cfg


def _outage(store: Store) -> None:
    opened = datetime(2026, 11, 17, 9, 0, tzinfo=UTC)
    tk = Ticket(id="T-000001", client="acme", category="internet", entity_kind="site", entity_id="acme-krk",
                title="Internet outage: Krakow office", opened_at=opened, rule="site-internet", group_key="g",
                site="acme-krk", status="resolved", resolved_at=opened + timedelta(hours=5, minutes=10),
                sla_tier="gold", react_by=opened + timedelta(hours=4))
    store.commit_batch(0, {}, [tk], [], opened.timestamp())
    # the disk collector's samples as the inbox keeps them: +10 GB a day, Photos growing most
    rows = []
    for day in range(10, 31):
        at = datetime(2026, 11, day, 12, 0, tzinfo=UTC)
        for folder, value in ((None, 500e9 + (day - 10) * 10e9), ("Photos", 100e9 + (day - 10) * 8e9),
                              ("Docs", 50e9 + (day - 10) * 1e9)):
            labels = {"metric": "folder_used_bytes" if folder else "share_used_bytes", "share": "acme-projects"}
            if folder:
                labels["folder"] = folder
            ev = Event(labels=labels, source="disk", observed_at=at, starts_at=at, value=value)
            rows.append(InboxRow("event", "disk", ev.occurrence_key + str(day), at.timestamp(),
                                 json.dumps(ev.to_dict())))
    store.append(rows)


def test_two_schedulers_racing_send_one_mail_with_the_pdf(tmp_path: Path, db_url: str) -> None:
    with SmtpServer() as smtp:
        config = load_config(_config(tmp_path, smtp, db_url))
        stores = [Store(db_url), Store(db_url)]  # two replicas on one database
        try:
            _outage(stores[0])
            client = config.inventory.clients["acme"]
            now = send.first_working_day(client, 2026, 12) + timedelta(minutes=5)
            assert send.run_once(stores[0], config, now - timedelta(minutes=10)) == []  # not yet: before opening
            results: list[list[tuple[str, str, int]]] = [[], []]
            start = threading.Barrier(2)

            def replica(i: int) -> None:
                start.wait()
                results[i] = send.run_once(stores[i], config, now)

            threads = [threading.Thread(target=replica, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(120)
            made = results[0] + results[1]
            assert [(c, m) for c, m, _ in made] == [("acme", "2026-11")], results
            assert send.run_once(stores[1], config, now + timedelta(hours=3)) == []  # a restart later that day

            async def deliver() -> None:
                dispatcher = Dispatcher(config, stores[1], Metrics(), b"k", report_mail=send.prepare_mail)
                await dispatcher.start()
                try:
                    await asyncio.to_thread(smtp.wait_for, 1, 60)
                    await asyncio.sleep(1.5)  # a second mail would come now
                finally:
                    await dispatcher.stop()

            asyncio.run(deliver())
            assert len(smtp.messages) == 1
            mail = smtp.messages[0]
            assert mail["To"] == "anna.nowak@acme.example"
            assert mail["Subject"] == "Monthly report November 2026: ACME Sp. z o.o."
            pdfs = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
            assert [p.get_filename() for p in pdfs] == ["report-acme-2026-11.pdf"]
            body = pdfs[0].get_content()
            assert body.startswith(b"%PDF-")
            if shutil.which("pdftotext"):
                (tmp_path / "got.pdf").write_bytes(body)
                text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "got.pdf"), "-"], capture_output=True,
                                      text=True, check=True).stdout
                assert "Monthly report: November 2026" in text
                assert "Krakow office" in text and "5 h 10 min" in text
                flat = " ".join(text.split())
                assert "Krakow office: we recommend a backup internet link" in flat
                # 700 GB of 1 TB on 30 November, +10 GB a day: full in 30 days
                assert "Share acme-projects will be full around 30 December 2026" in flat, flat
                assert "Photos: +160 GB" in flat and "70 % (700 GB)" in flat
                assert "the folders that grew most (Photos, Docs)" in flat

            listed = send.listing(stores[0])
            assert [(r["client"], r["month"], r["mail"]) for r in listed] == [("acme", "2026-11", "sent")]
            page = reports_page.render(listed)
            assert f"/reports/{listed[0]['id']}.pdf" in page and "sent" in page
            got = send.pdf_of(stores[0], listed[0]["id"])
            assert got is not None and got[2] == body
        finally:
            for s in stores:
                s.close()


def test_report_send_command_queues_once(tmp_path: Path) -> None:
    import sys

    with SmtpServer() as smtp:
        db = f"sqlite:///{tmp_path / 'w.db'}"
        cfg = _config(tmp_path, smtp, db)
        store = Store(db)
        _outage(store)
        store.close()
        cmd = [str(Path(sys.executable).parent / "watcher"), "report", "--config", str(cfg), "--client", "acme",
               "--month", "2026-11", "--send"]
        first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0 and "queued" in first.stderr, first.stderr
        again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0 and "not sent again" in again.stderr, again.stderr
        store = Store(db)
        try:
            rows = [r for r in store.outbox_rows() if r["kind"] == "report"]
            assert [(r["recipient"], r["state"]) for r in rows] == [("coordinator", "pending")]
        finally:
            store.close()


@pytest.mark.parametrize("month", ["2026-11"])
def test_report_pages_over_http(tmp_path: Path, month: str) -> None:
    """The API's PDF and the console's list, through the running application."""
    from aiohttp.test_utils import TestClient, TestServer

    from watcher.app import build_app

    with SmtpServer() as smtp:
        db = f"sqlite:///{tmp_path / 'w.db'}"
        config = load_config(_config(tmp_path, smtp, db))
        store = Store(db)
        _outage(store)
        store.close()

        async def run() -> None:
            async with TestClient(TestServer(build_app(config))) as http:
                r = await http.get(f"/api/v1/reports/acme?month={month}&format=pdf")
                assert r.status == 200 and (await r.read()).startswith(b"%PDF-")
                r = await http.get(f"/api/v1/reports/acme?month={month}&format=json")
                doc = await r.json()
                assert doc["tickets"] == 1 and doc["outage_minutes"] == {"acme-krk": 310.0}
                page = await (await http.get("/reports")).text()
                assert "Monthly reports" in page
                assert (await http.get("/reports/999.pdf")).status == 404
                index = await (await http.get("/")).text()
                assert 'href="/reports"' in index

        asyncio.run(run())
