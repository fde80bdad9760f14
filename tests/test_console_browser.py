"""The agent console in a real browser: Debian's chromium driven by Playwright.

An agent signs in, a new office outage appears in the open list without a reload, the agent
opens it, sees who is affected with their contact and what happened to each notice, and
acknowledges it: the SLA clock stops and the ticket names the agent.  Screenshots of each
step are saved in the test's tmp folder and copied to tests/artifacts/ (ignored by git) for
review.  Nothing is downloaded: the browser is /usr/bin/chromium, installed by
scripts/system-deps.sh; a real SMTP server takes the mail of one person, while the other
people's mail server does not answer, so both "sent" and "retrying" show.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.proc import WatcherProcess
from tests.servers import SmtpServer, free_port, smtp_url
from watcher.api.console_auth import hash_password

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
PASSWORD = "correct horse battery"

pytestmark = pytest.mark.integration


def _playwright() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (make system-deps)")
    return sync_playwright


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[WatcherProcess, SmtpServer]]:
    smtp = SmtpServer().start()
    dead = free_port()  # nothing listens here: the other people's mail server is down
    inv = yaml.safe_load((ROOT / "inventory.yaml").read_text(encoding="utf-8"))
    for person in inv["clients"][0]["people"]:
        address = f"{person['id']}@acme.example"
        person["notify"] = [smtp_url(smtp, address)] if person["id"] == "jan.kowalski" else \
            [f"mailto://127.0.0.1:{dead}?from=watcher%40example.com&to={address.replace('@', '%40')}"]
    inv["clients"][0]["admins"] = [smtp_url(smtp, "admin@msp.example")]
    for site in inv["clients"][0]["sites"]:
        site["office_contact"]["notify"] = [smtp_url(smtp, "office@acme.example")]
    (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inv, allow_unicode=True), encoding="utf-8")
    shutil.copy(ROOT / "rules.yaml", tmp_path / "rules.yaml")
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text(yaml.safe_dump({
        "rules": "rules.yaml", "inventory": "inventory.yaml", "database": "sqlite:///w.db",
        "secret_key": "browser-test-secret", "engine_tick": "0.2s",
        "notify": {"retry_initial": "2s", "retry_max": "10s", "digest_window": "0s"},
        "console": {"users": [{"name": "anna", "display": "Anna Kowalczyk", "password_hash": hash_password(PASSWORD)}],
                    "language": "pl"},
    }), encoding="utf-8")
    w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
    w.start()
    try:
        yield w, smtp
    finally:
        w.stop()
        smtp.stop()


def test_an_agent_signs_in_sees_an_outage_arrive_opens_and_acknowledges_it(
        service: tuple[WatcherProcess, SmtpServer], tmp_path: Path) -> None:
    w, smtp = service
    sync_playwright = _playwright()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900}, timezone_id="Europe/Warsaw")
            page.set_default_timeout(30_000)

            # the console needs a signed-in agent: a wrong password is refused
            page.goto(w.url + "/")
            assert page.url.endswith("/console/login")
            assert "Zaloguj" in page.inner_text("h1")  # the console's default language (console.language)
            page.goto(w.url + "/console/login?lang=en")
            page.fill("input[name=name]", "anna")
            page.fill("input[name=password]", "wrong")
            page.select_option("select[name=lang]", "en")
            page.click("button[type=submit]")
            page.wait_for_selector("#msg:has-text('Wrong name or password')")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(w.url + "/")
            assert page.inner_text("#agent") == "Anna Kowalczyk"
            assert "No open tickets." in page.inner_text("#rows")
            page.evaluate("window.__notReloaded = true")
            page.screenshot(path=str(shots / "1-signed-in.png"), full_page=True)

            # an office goes offline: its router's uplink is down
            started = datetime.now(UTC)
            status, body = w.request("POST", "/api/v1/events", [
                {"source": "snmp", "labels": {"alertname": "LinkDown", "snmp_agent": "192.0.2.1", "ifIndex": "1"}},
                {"source": "prometheus", "labels": {"alertname": "InstanceDown", "host": "krk-printer01"}}])
            assert status == 200, body
            row = page.wait_for_selector("tr[data-ticket]")
            assert page.evaluate("window.__notReloaded") is True, "the new ticket came without a reload"
            text = row.inner_text()
            assert "ACME Sp. z o.o." in text and "Biuro Kraków" in text
            assert "Jan Kowalski" in text and "Ewa Nowak" in text and "John Smith" in text
            local = started.astimezone(__import__("zoneinfo").ZoneInfo("Europe/Warsaw"))
            assert local.strftime("%H:") in text and ("just now" in text or "min ago" in text)
            assert "left" in row.query_selector("td.clock").inner_text()
            page.screenshot(path=str(shots / "2-outage-arrived.png"), full_page=True)

            # open it: people, their contact, each notice's delivery state
            tid = row.get_attribute("data-ticket")
            page.click(f"tr[data-ticket='{tid}'] td:nth-child(1) a")
            page.wait_for_url(f"{w.url}/console/tickets/{tid}")
            smtp.wait_for(2, timeout=30)  # jan's "opened" and the office check arrive for real

            def states() -> str:
                page.reload()
                return page.inner_text("#people")

            deadline = datetime.now(UTC).timestamp() + 40
            people = states()
            while not ("sent" in people and "retrying" in people) and datetime.now(UTC).timestamp() < deadline:
                page.wait_for_timeout(1000)
                people = states()
            assert "Jan Kowalski" in people and "+48 601 100 201" in people and "opened: sent" in people
            assert "Ewa Nowak" in people and "opened: retrying" in people
            assert "InstanceDown" in page.inner_text("#symptoms")
            clock = page.inner_text("#clock")
            assert "left" in clock
            page.screenshot(path=str(shots / "3-ticket.png"), full_page=True)

            # acknowledge: the SLA clock stops and the ticket says who did it
            page.click("button[data-action=ack]")
            page.wait_for_selector("#clock.stopped")
            assert page.inner_text("#clock") == "acknowledged"
            assert "by Anna Kowalczyk" in page.inner_text("main")
            assert page.inner_text("#status") == "acknowledged"
            page.screenshot(path=str(shots / "4-acknowledged.png"), full_page=True)
            doc = w.request("GET", f"/api/v1/tickets/{tid}")[1]
            assert doc["status"] == "acknowledged" and doc["acknowledged_by"] == "Anna Kowalczyk"

            # the agent's language: Polish
            page.click("#lang")
            page.wait_for_selector("#clock:has-text('przyjęte')")
            page.goto(w.url + "/")
            assert "Otwarte zgłoszenia" in page.inner_text("h1")
            page.screenshot(path=str(shots / "5-polish-list.png"), full_page=True)

            # a write from another site is refused (no Origin of ours)
            other = browser.new_page()
            other.goto("data:text/html,<p>elsewhere</p>")
            refused = other.evaluate(
                "async (u) => { try { const r = await fetch(u + '/console/act', {method: 'POST', "
                "headers: {'Content-Type': 'application/json'}, body: '{\"action\": \"resolve\", "
                "\"ticket\": \"" + str(tid) + "\"}'}); return r.status; } catch (e) { return 'blocked'; } }", w.url)
            assert refused in (401, 403, "blocked")
            assert w.request("GET", f"/api/v1/tickets/{tid}")[1]["status"] == "acknowledged"
        finally:
            browser.close()
    ARTIFACTS.mkdir(exist_ok=True)
    for shot in sorted(shots.iterdir()):
        shutil.copy(shot, ARTIFACTS / f"console-{shot.name}")
    assert len(list(shots.iterdir())) == 5
