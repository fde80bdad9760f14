"""watcher.yaml's ``feeds:`` and ``heartbeat:``: who watches the watcher.

A *feed* is a source whose silence is itself an incident: the ``Watchdog`` alert that a
Prometheus setup sends forever, the traps of an SNMP agent, the samples of a collector.
It names the client whose monitoring goes blind, which events count as the feed speaking
(the event's ``source`` and Alertmanager-style matchers on its labels, bound to the
inventory) and how long a silence may last.  The *heartbeat* is the other direction: a
URL that watcher pings while its engine is healthy, for an outside dead man's switch.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from watcher.config.rules import Matcher, parse_matcher
from watcher.config.yamlload import ConfigError, Reader

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,127}$")


@dataclass(frozen=True)
class FeedConfig:
    """One expected source: events that match it are the feed speaking."""

    name: str
    client: str
    period: float
    source: str | None = None
    matchers: tuple[Matcher, ...] = ()
    file: str = field(default="", compare=False)
    line: int | None = field(default=None, compare=False)
    key: str = field(default="", compare=False)

    def matches(self, source: str, labels: dict[str, str]) -> bool:
        if self.source is not None and source != self.source:
            return False
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class HeartbeatConfig:
    """Ping ``url`` every ``interval`` while the engine is healthy (leading, a step within
    ``stall_after``, the database answering).  An ``http(s)://`` URL gets a plain request
    with ``method``; any other URL is an Apprise URL and gets a short notification."""

    url: str = field(repr=False)
    interval: float = 60.0
    stall_after: float = 60.0
    method: str = "GET"
    timeout: float = 10.0


def load_feeds(r: Reader) -> tuple[FeedConfig, ...]:
    """The ``feeds:`` list; names are unique, periods positive, matchers valid."""
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for fr in r.items("feeds"):
        fr.check_keys({"name", "client", "source", "match", "period"})
        client = fr.text("client", required=True)
        source = fr.opt_str("source")
        name = fr.text("name", f"{client}/{source or 'any'}")
        if not _NAME.match(name):
            fr.fail("name", "expected letters, digits and _.:/- (at most 128)")
        if name in seen:
            fr.fail("name", f"feed {name!r} is defined twice (give each feed its own name)")
        seen.add(name)
        period = fr.duration("period")
        if period < 1:
            fr.fail("period", "must be at least 1s")
        spec = fr.str_map("match") if fr.has("match") else {"client": client}
        matchers = []
        for label, value in spec.items():
            try:
                matchers.append(parse_matcher(label, value))
            except re.error as exc:
                fr.child_or_fail("match").fail(label, f"invalid regular expression: {exc}")
        line, path = fr.where("client")
        feeds.append(FeedConfig(name, client, period, source, tuple(matchers), fr.file, line, path))
    return tuple(feeds)


def load_heartbeat(r: Reader, secret: Callable[[Reader, str], str]) -> HeartbeatConfig | None:
    """``heartbeat:``; its URL usually carries the check's key, so it may be ``env:NAME`` or
    ``file:PATH`` (``secret`` resolves those)."""
    hr = r.child("heartbeat")
    if hr is None:
        return None
    hr.check_keys({"url", "interval", "stall_after", "method", "timeout"})
    hr.text("url", required=True)
    url = secret(hr, "url")
    if "://" not in url:
        hr.fail("url", "expected an http(s):// URL or an Apprise URL (scheme://...)")
    method = hr.text("method", "GET").upper()
    if method not in ("GET", "POST", "HEAD"):
        hr.fail("method", "expected GET, POST or HEAD")
    cfg = HeartbeatConfig(url, hr.duration("interval", 60), hr.duration("stall_after", 60), method,
                          hr.duration("timeout", 10))
    for key in ("interval", "stall_after", "timeout"):
        if getattr(cfg, key) < 0.1:
            hr.fail(key, "must be at least 0.1s")
    return cfg


def check_feed_clients(feeds: tuple[FeedConfig, ...], clients: Collection[str]) -> None:
    """Every feed names a client of the inventory (its ticket belongs to that client)."""
    for f in feeds:
        if f.client not in clients:
            raise ConfigError(f.file, f.line, f.key,
                              f"no client {f.client!r} in the inventory")
