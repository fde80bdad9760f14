"""Configuration files as a user writes them: valid files load into typed objects, and every
mistake is a ConfigError that names the file, the line and the dotted key.

The broken files are a known-good file with one line replaced (``plant``), so each test
says exactly which line it broke and asserts that very line number in the error.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import ROOT, SHARED
from watcher.config import Config, ConfigError, Inventory, Rules, load_config, load_inventory, load_rules
from watcher.config.inventory import BusinessHours, Client, Person, Share, Site, parse_business_hours
from watcher.config.rules import Rule
from watcher.config.service import load_service
from watcher.rules.kinds.forecast import ForecastConfig
from watcher.rules.kinds.threshold import ThresholdConfig

WATCHER = str(Path(sys.executable).parent / "watcher")
WARSAW = ZoneInfo("Europe/Warsaw")

# A valid inventory; the numbers on the right are the file's line numbers.
INVENTORY = """\
clients:
  - id: acme
    name: ACME Sp. z o.o.
    sla: gold
    language: pl
    timezone: Europe/Warsaw
    business_hours: "Mon-Fri 08:00-17:00"
    coordinator: {name: Anna Nowak, email: anna.nowak@acme.example}
    admins: ["mailto://admin@msp.example"]
    sites:
      - id: acme-krk
        name: Biuro Kraków
        office_contact: {name: Recepcja, phone: "+48 12 000 00 00", email: recepcja@acme.example}
        probes:
          - {type: http, target: "https://vpn.acme.example/"}
          - {type: tcp, target: "203.0.113.10:443", interval: 15s}
        match: {snmp_agent: ["192.0.2.1"], host: "krk-.*"}
    people:
      - id: jan.kowalski
        name: Jan Kowalski
        site: acme-krk
        remote: true
        notify: ["mailto://jan.kowalski@acme.example"]
        language: pl
    shares:
      - id: acme-projects
        site: acme-krk
        path: /srv/shares/acme/projects
        size_bytes: 2000000000000
        folders:
          jan.kowalski: Jan
    mailboxes:
      - address: jan.kowalski@acme.example
        person: jan.kowalski
"""
#  1 clients:                      19 - id: jan.kowalski
#  2   - id: acme                  20   name: Jan Kowalski
#  4 sla: gold                     21   site: acme-krk
#  7 business_hours                22   remote: true
# 10 sites:                        25 shares:
# 11 - id: acme-krk                26 - id: acme-projects
# 13 office_contact                27   site: acme-krk
# 15/16 probes                     29   size_bytes
# 17 match                         31   jan.kowalski: Jan
# 18 people:                       33 - address / 34 person

# A second client appended after line 34 (its lines are 35 and on).
SECOND_CLIENT = """\
  - id: beta
    name: Beta Ltd
    language: en
    sites:
      - id: beta-waw
        name: Warsaw office
    people:
      - id: ewa.nowak
        name: Ewa Nowak
        site: beta-waw
"""
# 35 - id: beta, 39 - id: beta-waw, 42 - id: ewa.nowak, 44 site: beta-waw

RULES = """\
rules:
  - name: site-internet
    kind: outage
    category: internet
    entity: site
    group_by: [client, site]
    signals:
      - match: {alertname: "=~ProbeFailed|BlackboxProbeFailed"}
        all_probes: true
        for: 2m
    resolve_after: 10m
    affects: remote_people
  - name: other
    kind: catchall
    entity: client
    group_by: [client, alertname]
    min_severity: warning
"""
#  2 - name: site-internet   8 - match   10 for: 2m   11 resolve_after   13 - name: other


def plant(text: str, line: int, old: str, new: str) -> str:
    """``text`` with ``old`` replaced by ``new`` on line ``line`` (1-based), which must hold it."""
    lines = text.split("\n")
    assert old in lines[line - 1], f"line {line} is {lines[line - 1]!r}, not one with {old!r}"
    lines[line - 1] = lines[line - 1].replace(old, new)
    return "\n".join(lines)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def inventory_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path / "inventory.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_inventory(path)
    return info.value


def rules_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path / "rules.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    return info.value


def assert_points_at(err: ConfigError, path: Path, line: int, key: str) -> None:
    """The error names the file, the line and the dotted key, in its attributes and its text."""
    assert (err.file, err.line, err.key) == (str(path), line, key), str(err)
    assert str(err).startswith(f"{path}:{line}: {key}: "), str(err)


# ---------------------------------------------------------------- valid files


def test_the_test_inventory_is_valid(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "inventory.yaml", INVENTORY))
    assert isinstance(inv, Inventory)
    client = inv.clients["acme"]
    assert isinstance(client, Client)
    assert (client.name, client.sla, client.language, client.timezone) == ("ACME Sp. z o.o.", "gold", "pl", WARSAW)
    assert client.admins == ("mailto://admin@msp.example",)
    assert client.coordinator is not None and client.coordinator.email == "anna.nowak@acme.example"
    site = inv.sites["acme-krk"]
    assert isinstance(site, Site)
    assert site.client == "acme" and site.name == "Biuro Kraków"
    assert [(p.type, p.target, p.interval) for p in site.probes] == [
        ("http", "https://vpn.acme.example/", 30.0), ("tcp", "203.0.113.10:443", 15.0)]
    assert site.office_contact is not None and site.office_contact.phone == "+48 12 000 00 00"
    person = inv.people["jan.kowalski"]
    assert isinstance(person, Person)
    assert (person.client, person.site, person.remote, person.language) == ("acme", "acme-krk", True, "pl")
    assert person.notify == ("mailto://jan.kowalski@acme.example",)
    share = inv.shares["acme-projects"]
    assert isinstance(share, Share)
    assert share.size_bytes == 2_000_000_000_000 and share.owner_of("Jan") == "jan.kowalski"
    assert inv.mailboxes["jan.kowalski@acme.example"].person == "jan.kowalski"
    # the selectors that bind events without client/site labels
    assert inv.by_snmp_agent == {"192.0.2.1": "acme-krk"}
    assert inv.site_of_host("krk-fs01") == "acme-krk" and inv.site_of_host("waw-fs01") is None
    assert inv.site_of_target("https://vpn.acme.example/") == "acme-krk"
    assert [p.id for p in inv.remote_people("acme-krk")] == ["jan.kowalski"]


def test_defaults_fill_what_a_client_leaves_out(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "inventory.yaml", "clients:\n  - id: solo\n"))
    c = inv.clients["solo"]
    assert (c.name, c.sla, c.language, c.timezone) == ("solo", "standard", "pl", WARSAW)
    assert c.business_hours.text == "Mon-Fri 08:00-17:00"
    assert c.sites == () and c.people == () and c.admins == ()


def test_shipped_configuration_loads() -> None:
    cfg = load_config(ROOT / "watcher.yaml")
    assert isinstance(cfg, Config)
    assert cfg.service.rules_path == ROOT / "rules.yaml"
    assert cfg.service.inventory_path == ROOT / "inventory.yaml"
    assert cfg.service.listen == "127.0.0.1:8080"
    assert cfg.service.db_url == f"sqlite:///{ROOT / 'watcher.db'}"
    assert cfg.service.snmp.listen == "127.0.0.1:1162" and cfg.service.snmp.communities == ("public",)
    assert (cfg.service.notify.retry_initial, cfg.service.notify.retry_max) == (10.0, 600.0)
    assert isinstance(cfg.rules, Rules) and isinstance(cfg.inventory, Inventory)
    assert sorted(cfg.inventory.clients) == ["acme"]
    assert sorted(cfg.inventory.sites) == ["acme-krk", "acme-waw"]


def test_shipped_rules_load_into_typed_rules() -> None:
    rules = load_rules(ROOT / "rules.yaml")
    names = [r.name for r in rules.rules]
    assert names == ["site-internet", "host-down", "mail-server", "mailbox-login", "mailbox-quota",
                     "mail-delivery", "share-filling", "host-disk", "feed-silent", "other"]
    site = rules.by_name("site-internet")
    assert isinstance(site, Rule)
    assert (site.kind, site.category, site.entity, site.group_by) == ("outage", "internet", "site",
                                                                      ("client", "site"))
    assert site.resolve_after == 600.0 and site.office_check and site.affects == "remote_people"
    probe, link = site.signals
    assert probe.hold == 120.0 and probe.all_probes
    assert probe.matches({"alertname": "BlackboxProbeFailed"}) and not probe.matches({"alertname": "Probe"})
    assert link.resolved_same == ("snmp_agent", "ifIndex")
    assert site.flapping is not None and (site.flapping.changes, site.flapping.window) == (6, 1800.0)
    login = rules.by_name("mailbox-login")
    assert login is not None and isinstance(login.config, ThresholdConfig)
    assert (login.kind, login.config.count, login.config.within, login.config.quiet) == ("threshold", 3, 600.0, 1800.0)
    share = rules.by_name("share-filling")
    assert share is not None and isinstance(share.config, ForecastConfig)
    assert (share.kind, share.config.window, share.config.horizon, share.config.full_ratio) == (
        "forecast", 6 * 3600.0, 7 * 86400.0, 0.9)
    assert rules.by_name("host-down") is not None and rules.by_name("host-down").symptom_of == ("site-internet",)


def test_shipped_inventory_loads() -> None:
    inv = load_inventory(ROOT / "inventory.yaml")
    assert sorted(inv.people) == ["ewa.nowak", "jan.kowalski", "john.smith", "piotr.zielinski"]
    assert inv.people["john.smith"].language == "en"
    assert inv.people["piotr.zielinski"].language == "pl"  # the client's language by default
    assert inv.mailbox_people("acme") == ["ewa.nowak", "jan.kowalski", "john.smith"]


@pytest.mark.skipif(not (SHARED / "scenarios" / "sample" / "inventory.yaml").exists(),
                    reason="../shared/scenarios/sample is not beside this checkout")
def test_scenario_sample_inventory_loads() -> None:
    inv = load_inventory(SHARED / "scenarios" / "sample" / "inventory.yaml")
    assert len(inv.clients) == 10
    assert {"granit", "tartan", "kompas", "jantar", "nordis"} <= set(inv.clients)
    assert inv.clients["kompas"].sla == "platinum"
    assert inv.people["sophie.davies"].language == "en" and inv.people["sophie.davies"].client == "nordis"
    assert inv.shares["jantar-projects"].owner_of("Małgorzata2") == "malgorzata.sobczak"
    assert inv.site_of_host("tartan-gdn-fs01") == "tartan-gdn"


def test_minimal_watcher_yaml_is_valid_and_paths_resolve_beside_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "conf"
    (conf / "sub").mkdir(parents=True)
    write(conf / "sub" / "my-rules.yaml", RULES)
    write(conf / "inv.yaml", INVENTORY)
    write(conf / "watcher.yaml", "rules: sub/my-rules.yaml\ninventory: inv.yaml\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to watcher.yaml, not to the working directory
    cfg = load_config(Path("../conf/watcher.yaml"))
    assert cfg.service.rules_path == conf / "sub" / "my-rules.yaml"
    assert cfg.service.inventory_path == conf / "inv.yaml"
    assert [r.name for r in cfg.rules.rules] == ["site-internet", "other"]
    assert list(cfg.inventory.clients) == ["acme"]
    # every other key has its default
    s = cfg.service
    assert s.listen == "127.0.0.1:8080"
    assert s.db_url == f"sqlite:///{conf / 'watcher.db'}"
    assert s.auth == {} and s.notify.enabled and s.snmp.listen == "127.0.0.1:1162"
    assert s.max_body_bytes == 10 * 1024 * 1024


def test_relative_sqlite_database_resolves_beside_watcher_yaml(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", INVENTORY)
    cfg = write(tmp_path / "watcher.yaml", 'rules: rules.yaml\ninventory: inventory.yaml\n'
                'database: sqlite:///data/w.db\nsnmp: {listen: "off"}\nnotify: {enabled: false}\n')
    s = load_service(cfg)
    assert s.db_url == f"sqlite:///{tmp_path / 'data' / 'w.db'}"
    assert s.snmp.listen is None and not s.notify.enabled


def test_without_watcher_yaml_the_files_in_the_working_directory_are_used(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", INVENTORY)
    monkeypatch.chdir(tmp_path)
    cfg = load_config()
    assert cfg.service.rules_path == tmp_path / "rules.yaml"
    assert list(cfg.inventory.clients) == ["acme"]


# ---------------------------------------------------------------- inventory errors


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 22, "remote: true", "remote: true\n        mobile: true"))
    assert_points_at(err, tmp_path / "inventory.yaml", 23, "clients[0].people[0].mobile")
    assert "unknown key" in err.message


def test_unknown_key_in_a_nested_flow_mapping(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 13, "email: recepcja", "mail: recepcja"))
    assert_points_at(err, tmp_path / "inventory.yaml", 13, "clients[0].sites[0].office_contact.mail")


def test_unknown_top_level_key(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, INVENTORY + "clinets: []\n")
    assert_points_at(err, tmp_path / "inventory.yaml", 35, "clinets")


def test_wrong_type_of_a_flag(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 22, "remote: true", "remote: often"))
    assert_points_at(err, tmp_path / "inventory.yaml", 22, "clients[0].people[0].remote")
    assert "true or false" in err.message


def test_wrong_type_of_a_number(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 29, "2000000000000", "two terabytes"))
    assert_points_at(err, tmp_path / "inventory.yaml", 29, "clients[0].shares[0].size_bytes")


def test_wrong_type_a_string_where_a_mapping_belongs(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 17, '{snmp_agent: ["192.0.2.1"], host: "krk-.*"}', '"krk-.*"'))
    assert_points_at(err, tmp_path / "inventory.yaml", 17, "clients[0].sites[0].match")
    assert "mapping" in err.message


def test_wrong_type_a_mapping_where_a_list_belongs(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 33, "      - address:", "        address:"))
    assert_points_at(err, tmp_path / "inventory.yaml", 32, "clients[0].mailboxes")
    assert "list" in err.message


def test_wrong_value_of_an_enumeration(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 4, "sla: gold", "sla: diamond"))
    assert_points_at(err, tmp_path / "inventory.yaml", 4, "clients[0].sla")
    assert "standard, gold, platinum" in err.message


def test_missing_required_id(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 19, "- id: jan.kowalski", "- nick: jan.kowalski"))
    assert err.line == 19 and "clients[0].people[0]" in err.key


def test_duplicate_id_across_clients(tmp_path: Path) -> None:
    second = plant(SECOND_CLIENT, 8, "id: ewa.nowak", "id: jan.kowalski")
    err = inventory_error(tmp_path, INVENTORY + second)
    assert_points_at(err, tmp_path / "inventory.yaml", 42, "clients[1].people[0].id")
    assert "duplicate id 'jan.kowalski'" in err.message


def test_duplicate_id_across_kinds(tmp_path: Path) -> None:
    # a site may not take an id a person already has: an id names one thing
    second = plant(SECOND_CLIENT, 5, "id: beta-waw", "id: jan.kowalski")
    second = plant(second, 10, "site: beta-waw", "site: jan.kowalski")
    err = inventory_error(tmp_path, INVENTORY + second)
    assert_points_at(err, tmp_path / "inventory.yaml", 39, "clients[1].sites[0].id")


def test_the_second_client_alone_is_valid(tmp_path: Path) -> None:
    inv = load_inventory(write(tmp_path / "inventory.yaml", INVENTORY + SECOND_CLIENT))
    assert sorted(inv.people) == ["ewa.nowak", "jan.kowalski"]
    assert inv.people["ewa.nowak"].language == "en"


def test_person_on_a_site_that_does_not_exist(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 21, "site: acme-krk", "site: acme-gdn"))
    assert_points_at(err, tmp_path / "inventory.yaml", 21, "clients[0].people[0].site")
    assert "acme-gdn" in err.message


def test_person_on_a_site_of_another_client(tmp_path: Path) -> None:
    second = plant(SECOND_CLIENT, 10, "site: beta-waw", "site: acme-krk")
    err = inventory_error(tmp_path, INVENTORY + second)
    assert_points_at(err, tmp_path / "inventory.yaml", 44, "clients[1].people[0].site")


def test_share_on_a_site_that_does_not_exist(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 27, "site: acme-krk", "site: nowhere"))
    assert_points_at(err, tmp_path / "inventory.yaml", 27, "clients[0].shares[0].site")


def test_share_folder_owner_that_does_not_exist(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 31, "jan.kowalski: Jan", "jan.kowalsky: Jan"))
    assert_points_at(err, tmp_path / "inventory.yaml", 31, "clients[0].shares[0].folders.jan.kowalsky")
    assert "jan.kowalsky" in err.message


def test_mailbox_owner_that_does_not_exist(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 34, "person: jan.kowalski", "person: nobody"))
    assert_points_at(err, tmp_path / "inventory.yaml", 34, "clients[0].mailboxes[0].person")


def test_bad_host_regex(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 17, 'host: "krk-.*"', 'host: "krk-(.*"'))
    assert_points_at(err, tmp_path / "inventory.yaml", 17, "clients[0].sites[0].match.host")
    assert "regular expression" in err.message


def test_bad_probe_duration(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 16, "interval: 15s", "interval: 15 parsecs"))
    assert_points_at(err, tmp_path / "inventory.yaml", 16, "clients[0].sites[0].probes[1].interval")
    assert "duration" in err.message


@pytest.mark.parametrize("hours", ["Mon-Fri", "Mon-Fri 8-17", "Mon-Fry 08:00-17:00", "Mon-Fri 17:00-08:00",
                                   "Mon-Fri 08:00-25:00", "weekdays 08:00-17:00"])
def test_bad_business_hours(tmp_path: Path, hours: str) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 7, '"Mon-Fri 08:00-17:00"', f'"{hours}"'))
    assert_points_at(err, tmp_path / "inventory.yaml", 7, "clients[0].business_hours")
    assert hours in err.message


def test_bad_timezone(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 6, "Europe/Warsaw", "Europe/Cracow"))
    assert_points_at(err, tmp_path / "inventory.yaml", 6, "clients[0].timezone")


def test_notify_that_is_not_an_apprise_url(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 23, '"mailto://jan.kowalski@acme.example"',
                                          '"jan.kowalski@acme.example"'))
    assert_points_at(err, tmp_path / "inventory.yaml", 23, "clients[0].people[0].notify")


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    # an unclosed flow sequence on line 23: the parser notices it on the next line
    err = inventory_error(tmp_path, plant(INVENTORY, 23, '@acme.example"]', '@acme.example"'))
    assert err.file == str(tmp_path / "inventory.yaml")
    assert err.line == 24, str(err)
    assert str(err).startswith(f"{tmp_path / 'inventory.yaml'}:24: ")
    assert "YAML syntax" in str(err)


def test_yaml_bad_indentation_names_its_line(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 20, "        name: Jan", "       name: Jan"))
    assert (err.file, err.line) == (str(tmp_path / "inventory.yaml"), 20), str(err)


def test_yaml_duplicate_key_is_an_error(tmp_path: Path) -> None:
    err = inventory_error(tmp_path, plant(INVENTORY, 24, "language: pl", "language: pl\n        remote: false"))
    assert (err.file, err.line) == (str(tmp_path / "inventory.yaml"), 25), str(err)
    assert "remote" in str(err)


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert load_inventory(write(tmp_path / "inventory.yaml", "")).clients == {}
    err = inventory_error(tmp_path, "- just\n- a list\n")
    assert (err.file, err.line) == (str(tmp_path / "inventory.yaml"), 1)


# ---------------------------------------------------------------- rules errors


def test_rules_load(tmp_path: Path) -> None:
    rules = load_rules(write(tmp_path / "rules.yaml", RULES))
    assert [r.name for r in rules.rules] == ["site-internet", "other"]
    assert rules.rules[0].signals[0].hold == 120.0 and rules.rules[1].kind == "catchall"


def test_rules_bad_regex(tmp_path: Path) -> None:
    err = rules_error(tmp_path, plant(RULES, 8, '"=~ProbeFailed|BlackboxProbeFailed"', '"=~ProbeFailed|(Blackbox"'))
    assert_points_at(err, tmp_path / "rules.yaml", 8, "rules[0].signals[0].match.alertname")
    assert "regular expression" in err.message


@pytest.mark.parametrize("value", ["2 minutes", "-5m", "2mins", "soon", "true"])
def test_rules_bad_duration(tmp_path: Path, value: str) -> None:
    err = rules_error(tmp_path, plant(RULES, 10, "for: 2m", f"for: {value}"))
    assert_points_at(err, tmp_path / "rules.yaml", 10, "rules[0].signals[0].for")
    assert "duration" in err.message


def test_rules_bad_resolve_after(tmp_path: Path) -> None:
    err = rules_error(tmp_path, plant(RULES, 11, "resolve_after: 10m", "resolve_after: 10 min"))
    assert_points_at(err, tmp_path / "rules.yaml", 11, "rules[0].resolve_after")


def test_rules_unknown_key(tmp_path: Path) -> None:
    err = rules_error(tmp_path, plant(RULES, 9, "all_probes: true", "all_probe: true"))
    assert_points_at(err, tmp_path / "rules.yaml", 9, "rules[0].signals[0].all_probe")


def test_rules_wrong_type(tmp_path: Path) -> None:
    err = rules_error(tmp_path, plant(RULES, 9, "all_probes: true", "all_probes: 1"))
    assert_points_at(err, tmp_path / "rules.yaml", 9, "rules[0].signals[0].all_probes")


def test_rules_unknown_kind_and_duplicate_name(tmp_path: Path) -> None:
    err = rules_error(tmp_path, plant(RULES, 3, "kind: outage", "kind: outrage"))
    assert_points_at(err, tmp_path / "rules.yaml", 3, "rules[0].kind")
    err = rules_error(tmp_path, plant(RULES, 13, "name: other", "name: site-internet"))
    assert_points_at(err, tmp_path / "rules.yaml", 13, "rules[1].name")


def test_rules_symptom_of_an_unknown_rule(tmp_path: Path) -> None:
    err = rules_error(tmp_path, RULES + "    symptom_of: [site-internets]\n")
    assert_points_at(err, tmp_path / "rules.yaml", 18, "rules[1].symptom_of")


# ---------------------------------------------------------------- watcher.yaml errors


def service_error(tmp_path: Path, text: str) -> ConfigError:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", INVENTORY)
    path = write(tmp_path / "watcher.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value


def test_service_unknown_key(tmp_path: Path) -> None:
    err = service_error(tmp_path, "rules: rules.yaml\ninventory: inventory.yaml\ndatabse: sqlite:///x.db\n")
    assert_points_at(err, tmp_path / "watcher.yaml", 3, "databse")


def test_service_bad_duration(tmp_path: Path) -> None:
    err = service_error(tmp_path, "rules: rules.yaml\ninventory: inventory.yaml\nnotify:\n"
                                  "  enabled: true\n  retry_initial: quickly\n")
    assert_points_at(err, tmp_path / "watcher.yaml", 5, "notify.retry_initial")


def test_service_missing_rules_file(tmp_path: Path) -> None:
    err = service_error(tmp_path, "inventory: inventory.yaml\nrules: rulez.yaml\n")
    assert_points_at(err, tmp_path / "watcher.yaml", 2, "rules")
    assert "rulez.yaml" in err.message


def test_service_auth_needs_its_secret(tmp_path: Path) -> None:
    err = service_error(tmp_path, "rules: rules.yaml\ninventory: inventory.yaml\nauth:\n  events:\n"
                                  "    kind: bearer\n")
    assert err.line == 5 and err.key == "auth.events.token", str(err)


def test_every_secret_is_read_one_way_relative_to_the_config_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens, SNMP keys and mail passwords take the same env:/file: forms, and a relative file:
    path is relative to watcher.yaml's folder whatever the working directory."""
    (tmp_path / "secrets").mkdir()
    write(tmp_path / "secrets" / "token.txt", "tok-123\n")
    write(tmp_path / "secrets" / "snmp.yaml", "auth: auth-pass-123\n")
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", INVENTORY)
    path = write(tmp_path / "watcher.yaml", """\
rules: rules.yaml
inventory: inventory.yaml
auth: {events: {kind: bearer, token: "file:secrets/token.txt"}}
snmp: {v3_users: [{name: ops, auth_protocol: SHA, auth_key: "file:secrets/snmp.yaml#auth"}]}
collectors:
  snmp_devices: [{address: 192.0.2.1, community: "env:WATCHER_TEST_COMMUNITY"}]
""")
    monkeypatch.setenv("WATCHER_TEST_COMMUNITY", "c0mmunity")
    monkeypatch.chdir(tmp_path / "secrets")
    service = load_config(path).service
    assert service.auth["events"].token == "tok-123"
    assert service.snmp.v3_users[0].auth_key == "auth-pass-123"
    assert service.collectors.snmp_devices[0].community == "c0mmunity"
    write(path, "rules: rules.yaml\ninventory: inventory.yaml\nsnmp:\n  v3_users:\n"
                "    - {name: ops, auth_protocol: SHA, auth_key: \"file:secrets/snmp.yaml#priv\"}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert_points_at(info.value, path, 5, "snmp.v3_users[0].auth_key")
    assert "has no entry for 'priv'" in info.value.message and "auth-pass" not in str(info.value)


def test_collector_settings_report_every_mistake_at_its_place(tmp_path: Path) -> None:
    """`watcher check` lists each bad SNMP user, device and collector key in one run."""
    err = service_error(tmp_path, """\
rules: rules.yaml
inventory: inventory.yaml
snmp: {v3_users: [{name: ops, auth_protocol: SHA1}]}
collectors:
  certificates: {warn_befor: 2d}
  snmp_devices:
    - {address: 192.0.2.1, version: "1"}
    - {address: 192.0.2.2, storage_threshold: 3}
""")
    lines = str(err).splitlines()
    path = tmp_path / "watcher.yaml"
    assert lines == [
        f"{path}:3: snmp.v3_users[0]: snmp v3 user 'ops': auth_protocol must be one of MD5, SHA, SHA256",
        f"{path}:7: collectors.snmp_devices[0].version: must be '2c' or '3', got '1'",
        f"{path}:8: collectors.snmp_devices[1]: snmp device '192.0.2.2': storage_threshold must be a fraction "
        "in (0, 1], got 3.0",
        f"{path}:5: collectors.certificates.warn_befor: unknown key; did you mean 'warn_before'? "
        "(allowed: interval, timeout, warn_before)"]


def test_service_basic_auth_needs_a_username(tmp_path: Path) -> None:
    """`watcher check` must refuse what `watcher serve` cannot start with: basic auth without a username
    makes IngestAuth raise at startup, so the config loader has to reject it, naming the key."""
    err = service_error(tmp_path, "rules: rules.yaml\ninventory: inventory.yaml\nauth:\n  events:\n"
                                  "    kind: basic\n    password: s3cret\n")
    assert err.key == "auth.events.username" and err.line == 5, str(err)


def test_errors_in_named_files_name_those_files(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", plant(INVENTORY, 21, "site: acme-krk", "site: acme-gdn"))
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path / "watcher.yaml", "rules: rules.yaml\ninventory: inventory.yaml\n"))
    assert_points_at(info.value, tmp_path / "inventory.yaml", 21, "clients[0].people[0].site")


def test_a_missing_config_named_on_the_command_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.yaml")
    assert str(tmp_path / "nope.yaml") in str(info.value)


# ---------------------------------------------------------------- the command line


def run_watcher(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([WATCHER, *args], capture_output=True, text=True, timeout=timeout)


def test_check_prints_what_it_found() -> None:
    out = run_watcher("check", "--config", str(ROOT / "watcher.yaml"))
    assert out.returncode == 0, out.stderr
    assert f"ok: {ROOT / 'watcher.yaml'}" in out.stdout
    assert f"rules: 10 from {ROOT / 'rules.yaml'}" in out.stdout
    assert "1 clients, 2 sites, 4 people, 1 shares, 3 mailboxes" in out.stdout
    assert "  feeds: 1 (acme-prometheus)" in out.stdout


@pytest.mark.skipif(not (SHARED / "scenarios" / "sample" / "inventory.yaml").exists(),
                    reason="../shared/scenarios/sample is not beside this checkout")
def test_check_of_the_scenario_inventory(tmp_path: Path) -> None:
    cfg = write(tmp_path / "watcher.yaml", f"rules: {ROOT / 'rules.yaml'}\n"
                f"inventory: {SHARED / 'scenarios' / 'sample' / 'inventory.yaml'}\n")
    out = run_watcher("check", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert re.search(r"inventory: 10 clients, \d+ sites, \d+ people", out.stdout), out.stdout


def test_check_reports_file_line_and_key_and_fails(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", plant(INVENTORY, 22, "remote: true", "remote: often"))
    cfg = write(tmp_path / "watcher.yaml", "rules: rules.yaml\ninventory: inventory.yaml\n")
    out = run_watcher("check", "--config", str(cfg))
    assert out.returncode != 0
    assert f"{tmp_path / 'inventory.yaml'}:22: clients[0].people[0].remote: " in out.stderr, out.stderr
    assert "ok:" not in out.stdout


def test_check_reports_a_yaml_syntax_error(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", plant(RULES, 10, "for: 2m", "for: [2m"))
    write(tmp_path / "inventory.yaml", INVENTORY)
    cfg = write(tmp_path / "watcher.yaml", "rules: rules.yaml\ninventory: inventory.yaml\n")
    out = run_watcher("check", "--config", str(cfg))
    assert out.returncode != 0
    assert f"{tmp_path / 'rules.yaml'}:11: " in out.stderr, out.stderr


def test_serve_refuses_to_start_on_a_broken_file(tmp_path: Path) -> None:
    write(tmp_path / "rules.yaml", RULES)
    write(tmp_path / "inventory.yaml", plant(INVENTORY, 31, "jan.kowalski: Jan", "nobody: Jan"))
    cfg = write(tmp_path / "watcher.yaml", "rules: rules.yaml\ninventory: inventory.yaml\n"
                'snmp: {listen: "off"}\n')
    out = run_watcher("serve", "--config", str(cfg), "--listen", "127.0.0.1:0", "--snmp-listen", "off")
    assert out.returncode != 0
    assert f"{tmp_path / 'inventory.yaml'}:31: clients[0].shares[0].folders.nobody: " in out.stderr, out.stderr
    assert "watcher listening" not in out.stdout
    assert not (tmp_path / "watcher.db").exists(), "nothing is created for a configuration that is refused"


# ---------------------------------------------------------------- business hours


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def office_hours(text: str = "Mon-Fri 08:00-17:00") -> BusinessHours:
    bh = parse_business_hours(text, WARSAW)
    assert bh is not None
    return bh


def test_business_hours_parse() -> None:
    bh = office_hours("Mon,Wed 9:00-15:30")
    assert bh.days == frozenset({0, 2}) and (bh.start.hour, bh.end.hour, bh.end.minute) == (9, 15, 30)
    assert office_hours("Fri-Mon 08:00-12:00").days == frozenset({4, 5, 6, 0})
    assert office_hours("24/7").days == frozenset(range(7))


def test_business_hours_inside_one_day() -> None:
    # Tue 3 Nov 2026 09:00 CET (08:00 UTC) + 4 h -> 13:00 CET
    assert office_hours().add(utc(2026, 11, 3, 8), 4 * 3600) == utc(2026, 11, 3, 12)


def test_business_hours_across_a_day_boundary() -> None:
    # Tue 15:00 CET + 4 h: 2 h on Tuesday, 2 h from Wednesday 08:00 -> Wed 10:00 CET
    assert office_hours().add(utc(2026, 11, 3, 14), 4 * 3600) == utc(2026, 11, 4, 9)


def test_business_hours_before_opening_and_after_closing() -> None:
    bh = office_hours()
    assert bh.add(utc(2026, 11, 3, 5), 3600) == utc(2026, 11, 3, 8)  # 06:00 CET -> from 08:00: 09:00 CET
    assert bh.add(utc(2026, 11, 3, 19), 3600) == utc(2026, 11, 4, 8)  # 20:00 CET -> Wed 09:00 CET
    assert bh.add(utc(2026, 11, 3, 16), 9 * 3600) == utc(2026, 11, 4, 16)  # exactly one full day
    assert bh.add(utc(2026, 11, 3, 7), 9 * 3600) == utc(2026, 11, 3, 16)  # ends exactly at closing


def test_business_hours_across_a_weekend() -> None:
    # Fri 6 Nov 2026 16:00 CET + 2 h: 1 h Friday, 1 h Monday 9 Nov -> 09:00 CET
    assert office_hours().add(utc(2026, 11, 6, 15), 2 * 3600) == utc(2026, 11, 9, 8)
    # a Saturday start waits for Monday
    assert office_hours().add(utc(2026, 11, 7, 10), 6 * 3600) == utc(2026, 11, 9, 13)


def test_business_hours_across_the_weekend_of_the_october_dst_change() -> None:
    # Clocks go back on Sun 25 Oct 2026 (03:00 CEST -> 02:00 CET).
    # Fri 23 Oct 15:00 CEST (13:00 UTC) + 4 h: 2 h Friday, 2 h Monday -> Mon 26 Oct 10:00 CET = 09:00 UTC
    assert office_hours().add(utc(2026, 10, 23, 13), 4 * 3600) == utc(2026, 10, 26, 9)
    # Sat 24 Oct evening + 6 h (platinum after a gold wait) -> Mon 14:00 CET = 13:00 UTC
    assert office_hours().add(utc(2026, 10, 24, 18), 6 * 3600) == utc(2026, 10, 26, 13)


def test_business_hours_around_the_clock_across_the_dst_change() -> None:
    """24/7 business time is real elapsed time: 4 h after Sat 24 Oct 22:00 UTC (Sun 00:00 CEST) is Sun 02:00
    UTC, although the wall clock in Warsaw shows 03:00 CET then (the night has 25 hours)."""
    assert office_hours("24/7").add(utc(2026, 10, 24, 22), 4 * 3600) == utc(2026, 10, 25, 2)


def test_business_hours_around_the_clock_has_no_gap_at_midnight() -> None:
    assert office_hours("24/7").add(utc(2026, 11, 2, 12), 48 * 3600) == utc(2026, 11, 4, 12)


def test_business_hours_keep_the_callers_time_zone() -> None:
    begin = datetime(2026, 11, 3, 15, 0, tzinfo=WARSAW)
    got = office_hours().add(begin, 4 * 3600)
    assert got == datetime(2026, 11, 4, 10, 0, tzinfo=WARSAW) and got.tzinfo is WARSAW
    assert got - begin == timedelta(hours=19)


def test_sqlite_synchronous_must_be_full_or_normal(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    (tmp_path / "inventory.yaml").write_text("clients: []\n")
    cfg = tmp_path / "watcher.yaml"
    cfg.write_text("rules: rules.yaml\ninventory: inventory.yaml\nsqlite_synchronous: off\n")
    with pytest.raises(ConfigError) as err:
        load_config(cfg)
    assert err.value.line == 3 and err.value.key == "sqlite_synchronous", str(err.value)
