"""The inventory (docs/inventory.md): who and what the helpdesk looks after.

Parsed once, strictly, into frozen dataclasses with lookup indexes, so that binding an
event to its client and site, or finding who a ticket affects, is a dict look-up on the
hot path and never a scan of the YAML.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from pathlib import Path
from urllib.parse import urlparse
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from watcher.config.regex import Pattern, RegexError, compile_regex
from watcher.config.yamlload import ConfigError, Reader, root_reader

SLA_TIERS = ("standard", "gold", "platinum")
LANGUAGES = ("pl", "en")
_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@dataclass(frozen=True)
class Contact:
    name: str
    email: str | None = None
    phone: str | None = None
    notify: tuple[str, ...] = ()

    def urls(self) -> tuple[str, ...]:
        if self.notify:
            return self.notify
        return (f"mailto://{self.email}",) if self.email else ()


@dataclass(frozen=True)
class BusinessHours:
    """Weekly opening hours in a time zone; SLA clocks run only inside them."""

    days: frozenset[int]
    start: time
    end: time
    tz: ZoneInfo
    text: str
    holidays: Container[date] | None = None  # a ``holidays`` calendar (``date in it``): closed all day

    def closed(self, day: date) -> bool:
        return self.holidays is not None and day in self.holidays

    def add(self, begin: datetime, seconds: float) -> datetime:
        """The moment ``seconds`` of business time after ``begin`` (aware datetimes).

        Counted in UTC between the opening and closing moments of each business day, so a
        daylight-saving change inside the interval is neither gained nor lost.
        """
        start = begin.astimezone(UTC)
        day = begin.astimezone(self.tz).date()
        remaining = seconds
        for _ in range(366 * 2):
            if day.weekday() in self.days and not self.closed(day):
                opens = datetime.combine(day, self.start, self.tz).astimezone(UTC)
                closes = (datetime.combine(day + timedelta(days=1), time(0), self.tz) if self.end == time.max
                          else datetime.combine(day, self.end, self.tz)).astimezone(UTC)
                cur = max(start, opens)
                if cur < closes:
                    avail = (closes - cur).total_seconds()
                    if remaining <= avail:
                        return (cur + timedelta(seconds=remaining)).astimezone(begin.tzinfo)
                    remaining -= avail
            day += timedelta(days=1)
        return begin + timedelta(seconds=seconds)


def with_holidays(bh: BusinessHours, code: str, fail: Callable[[str], object]) -> BusinessHours:
    """``bh`` closed on the public holidays of ``code`` (``PL``, or ``DE-BY`` with a subdivision),
    from the maintained ``holidays`` library; ``fail(why)`` for a code it does not know."""
    import dataclasses

    import holidays as holiday_lib

    country, _, subdiv = code.strip().upper().partition("-")
    try:
        calendar = holiday_lib.country_holidays(country, subdiv=subdiv or None)
    except NotImplementedError:
        fail(f"no public-holiday calendar {code!r} (expected a country code such as PL)")
        raise
    return dataclasses.replace(bh, holidays=calendar)


def parse_business_hours(text: str, tz: ZoneInfo) -> BusinessHours | None:
    """``Mon-Fri 08:00-17:00`` or ``Mon,Wed 9:00-15:00`` or ``24/7``."""
    t = text.strip().lower()
    if t in ("24/7", "always"):
        return BusinessHours(frozenset(range(7)), time(0), time.max, tz, text)
    m = re.fullmatch(r"([a-z,\-\s]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", t)
    if not m:
        return None
    days: set[int] = set()
    for part in m.group(1).replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            if a[:3] not in _DAYS or b[:3] not in _DAYS:
                return None
            i, j = _DAYS.index(a[:3]), _DAYS.index(b[:3])
            days.update(range(i, j + 1) if i <= j else [*range(i, 7), *range(0, j + 1)])
        elif part[:3] in _DAYS:
            days.add(_DAYS.index(part[:3]))
        else:
            return None
    h1, m1, h2, m2 = (int(m.group(k)) for k in (2, 3, 4, 5))
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        return None
    end = time.max if h2 == 24 else time(h2, m2)
    if time(h1, m1) >= end:
        return None
    return BusinessHours(frozenset(days), time(h1, m1), end, tz, text)


@dataclass(frozen=True)
class Probe:
    type: str
    target: str
    interval: float = 30.0
    timeout: float = 10.0
    retries: int = 1
    expect: str | None = None


@dataclass(frozen=True)
class Site:
    id: str
    client: str
    name: str
    office_contact: Contact | None
    probes: tuple[Probe, ...]
    snmp_agents: tuple[str, ...]
    host_pattern: Pattern | None
    provider_contact: Contact | None = None


@dataclass(frozen=True)
class Person:
    id: str
    client: str
    name: str
    site: str | None
    remote: bool
    notify: tuple[str, ...]
    language: str
    email: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class Share:
    id: str
    client: str
    site: str | None
    name: str
    path: str | None
    size_bytes: int | None
    folders: dict[str, str]  # person id -> folder name

    def owner_of(self, folder: str) -> str | None:
        for person, name in self.folders.items():
            if name == folder:
                return person
        return None


@dataclass(frozen=True)
class Mailbox:
    address: str
    client: str
    person: str | None


@dataclass(frozen=True)
class Client:
    id: str
    name: str
    sla: str
    language: str
    timezone: ZoneInfo
    business_hours: BusinessHours
    coordinator: Contact | None
    admins: tuple[str, ...]
    sites: tuple[Site, ...]
    people: tuple[Person, ...]
    shares: tuple[Share, ...]
    mailboxes: tuple[Mailbox, ...]
    mail_hosts: tuple[str, ...] = ()
    advice: str = "auto"  # "confirm": disk advice waits for an administrator (rules/advice.py)
    service: tuple[str, ...] = ()  # the service team's Apprise URLs ("Serwis IT"); empty: the admins
    holidays: str | None = None  # a public-holiday calendar, e.g. "PL" (off unless named)
    # a contract whose teams' clocks differ from the tier's table: team -> (react s, resolve s)
    escalation_clocks: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class Inventory:
    clients: dict[str, Client] = field(default_factory=dict)
    sites: dict[str, Site] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    shares: dict[str, Share] = field(default_factory=dict)
    mailboxes: dict[str, Mailbox] = field(default_factory=dict)
    by_snmp_agent: dict[str, str] = field(default_factory=dict)
    by_probe_target: dict[str, str] = field(default_factory=dict)
    host_patterns: list[tuple[Pattern, str]] = field(default_factory=list)
    by_mail_host: dict[str, str] = field(default_factory=dict)
    _host_cache: dict[str, str | None] = field(default_factory=dict)

    def site_of_host(self, host: str) -> str | None:
        if host in self._host_cache:
            return self._host_cache[host]
        found = None
        for pattern, site in self.host_patterns:
            if pattern.fullmatch(host):
                found = site
                break
        if len(self._host_cache) < 100_000:
            self._host_cache[host] = found
        return found

    def site_of_target(self, target: str) -> str | None:
        if target in self.by_probe_target:
            return self.by_probe_target[target]
        host = urlparse(target).hostname if "://" in target else target.rsplit(":", 1)[0]
        return self.by_probe_target.get(host or "")

    def remote_people(self, site: str) -> list[Person]:
        return [p for p in self.people.values() if p.site == site and p.remote]

    def mailbox_people(self, client: str) -> list[str]:
        c = self.clients.get(client)
        if not c:
            return []
        return sorted({m.person for m in c.mailboxes if m.person})


def _contact(r: Reader | None) -> Contact | None:
    if r is None:
        return None
    r.check_keys({"name", "email", "phone", "notify"})
    return Contact(name=r.text("name", required=True), email=r.opt_str("email"),
                   phone=r.opt_str("phone"), notify=tuple(r.str_list("notify")))


def _apprise_list(r: Reader, key: str) -> tuple[str, ...]:
    urls = r.str_list(key)
    for url in urls:
        if "://" not in url:
            r.fail(key, f"{url!r} is not an Apprise URL (scheme://...)")
    return tuple(urls)


def load_inventory(path: Path) -> Inventory:
    """Parse and cross-check the inventory; every error names file, line and key."""
    root = root_reader(path)
    root.check_keys({"clients"})
    inv = Inventory()
    seen: dict[str, str] = {}
    pending_sites: list[tuple[Reader, str, str | None]] = []

    def claim(r: Reader, key: str, ident: str, what: str) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@+\-]*", ident):
            r.fail(key, f"{ident!r} is not a valid id (letters, digits, . _ - @ +)")
        if ident in seen:
            r.fail(key, f"duplicate id {ident!r} (already a {seen[ident]})")
        seen[ident] = what

    for cr in root.items("clients"):
        cr.check_keys({"id", "name", "sla", "language", "timezone", "business_hours", "coordinator",
                       "admins", "sites", "people", "shares", "mailboxes", "mail_hosts", "advice", "service",
                       "holidays", "escalation_clocks"})
        cid = cr.text("id", required=True)
        claim(cr, "id", cid, "client")
        sla = cr.text("sla", "standard").lower()
        if sla not in SLA_TIERS:
            cr.fail("sla", f"expected one of {', '.join(SLA_TIERS)}, got {sla!r}")
        lang = cr.text("language", "pl").lower()
        if lang not in LANGUAGES:
            cr.fail("language", f"expected one of {', '.join(LANGUAGES)}, got {lang!r}")
        tzname = cr.text("timezone", "Europe/Warsaw")
        try:
            tz = ZoneInfo(tzname)
        except (ZoneInfoNotFoundError, ValueError):
            cr.fail("timezone", f"unknown time zone {tzname!r}")
        bh_text = cr.text("business_hours", "Mon-Fri 08:00-17:00")
        bh = parse_business_hours(bh_text, tz)
        if bh is None:
            cr.fail("business_hours", f"expected like 'Mon-Fri 08:00-17:00' or '24/7', got {bh_text!r}")
        holiday_code = cr.opt_str("holidays")
        if holiday_code:
            bh = with_holidays(bh, holiday_code, partial(cr.fail, "holidays"))
        clocks: dict[str, tuple[float, float]] = {}
        er = cr.child("escalation_clocks")
        if er is not None:
            er.check_keys({"admins", "service"})
            for team in ("admins", "service"):
                tr = er.child(team)
                if tr is not None:
                    tr.check_keys({"react", "resolve"})
                    clocks[team] = (tr.duration("react"), tr.duration("resolve"))
        advice = cr.text("advice", "auto").lower()
        if advice not in ("auto", "confirm"):
            cr.fail("advice", f"expected auto or confirm, got {advice!r}")
        sites: list[Site] = []
        for sr in cr.items("sites"):
            sr.check_keys({"id", "name", "office_contact", "probes", "match", "provider_contact"})
            sid = sr.text("id", required=True)
            claim(sr, "id", sid, "site")
            probes = []
            for pr in sr.items("probes"):
                pr.check_keys({"type", "target", "interval", "timeout", "retries", "expect"})
                ptype = pr.text("type", required=True)
                if ptype not in ("http", "tcp", "dns", "icmp"):
                    pr.fail("type", f"expected http, tcp, dns or icmp, got {ptype!r}")
                probes.append(Probe(ptype, pr.text("target", required=True), pr.duration("interval", 30),
                                    pr.duration("timeout", 10), pr.integer("retries", 1, minimum=0),
                                    pr.opt_str("expect")))
            agents: tuple[str, ...] = ()
            pattern = None
            mr = sr.child("match")
            if mr is not None:
                mr.check_keys({"snmp_agent", "host"})
                agents = tuple(mr.str_list("snmp_agent"))
                host = mr.opt_str("host")
                if host:
                    try:
                        pattern = compile_regex(host)
                    except RegexError as exc:
                        mr.fail("host", f"bad regular expression: {exc}")
            site = Site(sid, cid, sr.text("name", sid), _contact(sr.child("office_contact")),
                        tuple(probes), agents, pattern, _contact(sr.child("provider_contact")))
            sites.append(site)
            inv.sites[sid] = site
            for agent in agents:
                if agent in inv.by_snmp_agent:
                    mr.fail("snmp_agent", f"{agent} already belongs to site {inv.by_snmp_agent[agent]}") \
                        if mr else None
                inv.by_snmp_agent[agent] = sid
            for p in probes:
                inv.by_probe_target[p.target] = sid
                host_only = urlparse(p.target).hostname if "://" in p.target else p.target.rsplit(":", 1)[0]
                if host_only:
                    inv.by_probe_target.setdefault(host_only, sid)
            if pattern is not None:
                inv.host_patterns.append((pattern, sid))
        people: list[Person] = []
        for pr in cr.items("people"):
            pr.check_keys({"id", "name", "site", "remote", "notify", "language", "email", "phone"})
            pid = pr.text("id", required=True)
            claim(pr, "id", pid, "person")
            plang = pr.text("language", lang).lower()
            if plang not in LANGUAGES:
                pr.fail("language", f"expected one of {', '.join(LANGUAGES)}, got {plang!r}")
            site_id = pr.opt_str("site")
            pending_sites.append((pr, "site", site_id))
            person = Person(pid, cid, pr.text("name", pid), site_id, pr.flag("remote", False),
                            _apprise_list(pr, "notify"), plang, pr.opt_str("email"), pr.opt_str("phone"))
            people.append(person)
            inv.people[pid] = person
        shares: list[Share] = []
        for shr in cr.items("shares"):
            shr.check_keys({"id", "name", "site", "path", "size_bytes", "folders"})
            shid = shr.text("id", required=True)
            claim(shr, "id", shid, "share")
            site_id = shr.opt_str("site")
            pending_sites.append((shr, "site", site_id))
            size = shr.integer("size_bytes", minimum=1) if shr.has("size_bytes") else None
            folders = shr.str_map("folders")
            share = Share(shid, cid, site_id, shr.text("name", shid), shr.opt_str("path"), size, folders)
            shares.append(share)
            inv.shares[shid] = share
            for person_id in folders:
                if person_id not in inv.people or inv.people[person_id].client != cid:
                    fr = shr.child_or_fail("folders")
                    fr.fail(person_id, f"no person {person_id!r} in client {cid!r}")
        mailboxes: list[Mailbox] = []
        for mr2 in cr.items("mailboxes"):
            mr2.check_keys({"address", "person"})
            addr = mr2.text("address", required=True)
            if "@" not in addr:
                mr2.fail("address", f"{addr!r} is not a mail address")
            if addr in inv.mailboxes:
                mr2.fail("address", f"duplicate mailbox {addr!r}")
            owner = mr2.opt_str("person")
            if owner is not None and (owner not in inv.people or inv.people[owner].client != cid):
                mr2.fail("person", f"no person {owner!r} in client {cid!r}")
            mb = Mailbox(addr, cid, owner)
            mailboxes.append(mb)
            inv.mailboxes[addr] = mb
        client = Client(cid, cr.text("name", cid), sla, lang, tz, bh, _contact(cr.child("coordinator")),
                        _apprise_list(cr, "admins"), tuple(sites), tuple(people), tuple(shares),
                        tuple(mailboxes), tuple(cr.str_list("mail_hosts")), advice, _apprise_list(cr, "service"),
                        holiday_code, clocks)
        inv.clients[cid] = client
        for host in client.mail_hosts:
            inv.by_mail_host[host] = cid
        for r, key, site_id in pending_sites:
            if site_id is not None and (site_id not in inv.sites or inv.sites[site_id].client != cid):
                r.fail(key, f"no site {site_id!r} in client {cid!r}")
        pending_sites.clear()
    if not isinstance(root.raw("clients", []), list):
        raise ConfigError(str(path), root.data.line, "clients", "expected a list")
    return inv
