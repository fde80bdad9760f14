"""SNMP traps into the running service: net-snmp's snmptrap sends linkDown/linkUp from the
site's router address; the internet ticket opens and resolves; a wrong community is refused
and counted on /metrics."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.proc import WatcherProcess
from tests.servers import SmtpServer, free_port, smtp_url
from tests.test_e2e import fast_rules

SNMPTRAP = shutil.which("snmptrap")
LINK_DOWN, LINK_UP = "1.3.6.1.6.3.1.1.5.3", "1.3.6.1.6.3.1.1.5.4"


def trap(port: int, oid: str, community: str = "s3cret") -> None:
    assert SNMPTRAP is not None
    subprocess.run([SNMPTRAP, "-v", "2c", "-c", community, f"udp:127.0.0.1:{port}", "", oid,
                    "1.3.6.1.2.1.2.2.1.1.3", "i", "3", "1.3.6.1.2.1.2.2.1.2.3", "s", "GigabitEthernet0/1"],
                   check=True, timeout=20, capture_output=True)


@pytest.mark.skipif(SNMPTRAP is None, reason="net-snmp's snmptrap is not installed (Debian package snmp)")
def test_link_down_trap_opens_and_link_up_resolves_the_site_ticket(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        inventory = {"clients": [{
            "id": "acme", "name": "ACME", "sla": "gold",
            "sites": [{"id": "acme-krk", "name": "Biuro Kraków", "match": {"snmp_agent": ["127.0.0.1"]}}],
            "people": [{"id": "jan", "name": "Jan", "site": "acme-krk", "remote": True,
                        "notify": [smtp_url(smtp, "jan@acme.example")]}],
        }]}
        (tmp_path / "inventory.yaml").write_text(yaml.safe_dump(inventory))
        fast_rules(tmp_path)
        snmp_port = free_port()
        cfg = tmp_path / "watcher.yaml"
        cfg.write_text(yaml.safe_dump({"rules": "rules.yaml", "inventory": "inventory.yaml",
                                       "database": f"sqlite:///{tmp_path / 'w.db'}", "engine_tick": "0.2s",
                                       "notify": {"poll_interval": "0.2s"},
                                       "snmp": {"listen": f"127.0.0.1:{snmp_port}", "communities": ["s3cret"]}}))
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log",
                           extra=["--snmp-listen", f"127.0.0.1:{snmp_port}"])
        w.start()
        try:
            trap(snmp_port, LINK_DOWN, community="public")  # wrong community: refused, counted
            w.wait_until(lambda: 'watcher_snmp_traps{outcome="rejected_community"} 1.0'
                         in w.request("GET", "/metrics")[1], what="the refused trap counted")
            assert w.request("GET", "/api/v1/tickets")[1]["tickets"] == []
            trap(snmp_port, LINK_DOWN)
            tickets = w.wait_until(lambda: w.request("GET", "/api/v1/tickets?status=open")[1]["tickets"],
                                   what="the internet ticket from the trap")
            assert (tickets[0]["category"], tickets[0]["entity"]["id"]) == ("internet", "acme-krk")
            smtp.wait_for(1, timeout=20)
            trap(snmp_port, LINK_UP)
            w.wait_until(lambda: w.request("GET", f"/api/v1/tickets/{tickets[0]['id']}")[1]["status"] == "resolved",
                         what="the ticket resolved by linkUp")
            assert "s3cret" not in w.log.read_text(), "a community is a secret: never logged"
        finally:
            w.stop()
