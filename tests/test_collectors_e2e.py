"""watcher's own eyes inside the running service: a local HTTP server and a TCP listener
that the test stops and starts again; a real folder that fills with photos."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from tests.proc import WatcherProcess
from tests.servers import SmtpServer, free_port, smtp_url
from tests.test_e2e import fast_rules


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"vpn portal ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Office:
    """The office's two probe targets: an HTTP server and a TCP listener on fixed ports."""

    def __init__(self) -> None:
        self.http_port, self.tcp_port = free_port(), free_port()
        self._http: ThreadingHTTPServer | None = None
        self._tcp: socket.socket | None = None
        self._threads: list[threading.Thread] = []

    def up(self) -> None:
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), _Ok)
        t = threading.Thread(target=self._http.serve_forever, daemon=True)
        t.start()
        self._tcp = socket.socket()
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.bind(("127.0.0.1", self.tcp_port))
        self._tcp.listen(16)
        tcp = self._tcp

        def accept() -> None:
            while True:
                try:
                    conn, _ = tcp.accept()
                    conn.close()
                except OSError:
                    return

        threading.Thread(target=accept, daemon=True).start()

    def down(self) -> None:
        if self._http:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._tcp:
            self._tcp.close()
            self._tcp = None


def test_probes_open_and_resolve_the_internet_ticket(tmp_path: Path) -> None:
    office = Office()
    office.up()
    with SmtpServer() as smtp:
        inventory = {"clients": [{
            "id": "acme", "name": "ACME", "sla": "gold", "language": "pl",
            "sites": [{"id": "acme-krk", "name": "Biuro Kraków", "probes": [
                {"type": "http", "target": f"http://127.0.0.1:{office.http_port}/", "interval": "0.5s",
                 "timeout": "0.5s", "retries": 0, "expect": "portal ok"},
                {"type": "tcp", "target": f"127.0.0.1:{office.tcp_port}", "interval": "0.5s", "timeout": "0.5s",
                 "retries": 0}]}],
            "people": [{"id": "jan", "name": "Jan", "site": "acme-krk", "remote": True,
                        "notify": [smtp_url(smtp, "jan@acme.example")]}],
        }]}
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        fast_rules(tmp_path)
        cfg = tmp_path / "watcher.yaml"
        cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml",
                                       "database": f"sqlite:///{tmp_path / 'w.db'}", "engine_tick": "0.2s",
                                       "notify": {"poll_interval": "0.2s"},
                                       "collectors": {"probes": True}}))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            time.sleep(2)
            assert w.request("GET", "/api/v1/tickets")[1]["tickets"] == [], "the office is up"
            office.down()
            tickets = w.wait_until(lambda: w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"],
                                   timeout=30, what="the internet ticket from the probes")
            assert (tickets[0]["category"], tickets[0]["entity"]["id"]) == ("internet", "acme-krk")
            smtp.wait_for(1, timeout=20)
            office.up()
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tickets[0]['id']}")[1]["status"] == "resolved",
                         timeout=30, what="the ticket resolved after recovery")
            smtp.wait_for(2, timeout=20)
            assert Counter(m["To"] for m in smtp.messages) == {"jan@acme.example": 2}
            _, metrics = w.request("GET", "/metrics")
            assert 'watcher_events_received_total{source="probe"}' in metrics
            assert "watcher_collector_up{job=" in metrics
            stats = w.request("GET", "/api/v1/stats")[1]
            assert len(stats["collectors"]) == 2 and all(h["runs"] > 0 for h in stats["collectors"].values())
        finally:
            w.stop()
            office.down()


def test_share_filling_with_photos_gives_one_disk_ticket_and_advice(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "Jan").mkdir(parents=True)
    (share / "Ewa").mkdir()
    (share / "Ewa" / "report.docx").write_bytes(b"x" * 100_000)
    with SmtpServer() as smtp:
        inventory = {"clients": [{
            "id": "acme", "name": "ACME", "sla": "gold", "language": "pl",
            "sites": [{"id": "acme-krk", "name": "Biuro Kraków"}],
            "people": [
                {"id": "jan", "name": "Jan", "site": "acme-krk", "notify": [smtp_url(smtp, "jan@acme.example")]},
                {"id": "ewa", "name": "Ewa", "site": "acme-krk", "notify": [smtp_url(smtp, "ewa@acme.example")]}],
            "shares": [{"id": "acme-projects", "site": "acme-krk", "path": str(share), "size_bytes": 200_000_000,
                        "folders": {"jan": "Jan", "ewa": "Ewa"}}],
        }]}
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        rules_path = fast_rules(tmp_path)
        doc = yaml.safe_load(rules_path.read_text())
        for rule in doc["rules"]:
            if rule["name"] == "share-filling":  # the same rule on a compressed time scale
                rule.update(window="20s", min_span="3s", resolve_after="1s")
                rule["signals"][0]["for"] = "0s"
        rules_path.write_text(yaml.safe_dump(doc))
        cfg = tmp_path / "watcher.yaml"
        cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml",
                                       "database": f"sqlite:///{tmp_path / 'w.db'}", "engine_tick": "0.2s",
                                       "notify": {"poll_interval": "0.2s"},
                                       "collectors": {"disk": True, "disk_interval": "0.5s"}}))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        stop = threading.Event()

        def fill() -> None:
            i = 0
            while not stop.is_set() and i < 400:
                (share / "Jan" / f"IMG_{i:04d}.jpg").write_bytes(b"\xff\xd8" + b"p" * 250_000)
                i += 1
                time.sleep(0.1)

        filler = threading.Thread(target=fill, daemon=True)
        try:
            time.sleep(3)  # a flat start
            filler.start()
            tickets = w.wait_until(lambda: w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"],
                                   timeout=60, what="the disk ticket")
            stop.set()
            filler.join()
            (tk,) = tickets
            assert (tk["category"], tk["entity"]) == ("disk", {"kind": "share", "id": "acme-projects"})
            assert tk["details"]["folder"] == "Jan" and tk["advice_to"] == "jan" and tk["affected"] == []
            mails = smtp.wait_for(1, timeout=20)
            assert [m["To"] for m in mails] == ["jan@acme.example"]
            assert "Jan" in str(mails[0]["Subject"]) or "Jan" in mails[0].get_body().get_content()
            for f in (share / "Jan").iterdir():  # Jan cleans up
                f.unlink()
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tk['id']}")[1]["status"] == "resolved",
                         timeout=60, what="the disk ticket resolved after the clean-up")
        finally:
            stop.set()
            w.stop()
