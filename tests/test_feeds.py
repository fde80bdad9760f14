"""Silent feeds and the heartbeat below the service: watcher.yaml's ``feeds:`` and
``heartbeat:`` parsed strictly (every mistake names file, line and key), ``FeedWatch`` on a
real store (SQLite and PostgreSQL) with an injected clock: one announcement per silence,
durable across restarts, shared by replicas; ``observe`` counts exactly the events a feed
names, whatever their labels (Hypothesis); the heartbeat through an Apprise URL to a real receiver."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT
from tests.servers import HttpReceiver
from watcher.config import Config, ConfigError, load_config
from watcher.config.rules import parse_matcher
from watcher.config.selfwatch import FeedConfig, HeartbeatConfig
from watcher.feeds import ALERTNAME, FeedWatch
from watcher.heartbeat import Heartbeat
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.pipeline import EngineWorker
from watcher.store import Store
from watcher.store import feeds as feed_table

WATCHER_YAML = """\
rules: {rules}
inventory: {inventory}
feeds:
  - name: acme-watchdog
    client: acme
    source: alertmanager
    match: {{alertname: Watchdog}}
    period: 60s
  - client: acme
    source: snmp
    period: 2m
heartbeat:
  url: https://hc-ping.example/0f1e
  interval: 30s
"""


def config_file(tmp_path: Path, text: str | None = None) -> Path:
    path = tmp_path / "watcher.yaml"
    path.write_text((text or WATCHER_YAML).format(rules=ROOT / "rules.yaml", inventory=ROOT / "inventory.yaml"))
    return path


def test_feeds_and_heartbeat_load_into_typed_config(tmp_path: Path) -> None:
    svc = load_config(config_file(tmp_path)).service
    watchdog, snmp = svc.feeds
    assert (watchdog.name, watchdog.client, watchdog.source, watchdog.period) == ("acme-watchdog", "acme",
                                                                                   "alertmanager", 60.0)
    assert watchdog.matches("alertmanager", {"alertname": "Watchdog"})
    assert not watchdog.matches("prometheus", {"alertname": "Watchdog"})
    assert (snmp.name, snmp.period) == ("acme/snmp", 120.0)
    assert snmp.matches("snmp", {"client": "acme", "alertname": "LinkUp"}), "default: any event of the client"
    assert not snmp.matches("snmp", {"client": "other"})
    assert svc.heartbeat is not None and (svc.heartbeat.interval, svc.heartbeat.method) == (30.0, "GET")
    assert "hc-ping" not in repr(svc.heartbeat), "the URL is a secret (it carries the check's key)"


def test_the_heartbeat_url_may_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HC_URL", "https://hc-ping.example/secret-uuid")
    path = config_file(tmp_path, WATCHER_YAML.replace("https://hc-ping.example/0f1e", "env:HC_URL"))
    hb = load_config(path).service.heartbeat
    assert hb is not None and hb.url == "https://hc-ping.example/secret-uuid"
    monkeypatch.delenv("HC_URL")
    with pytest.raises(ConfigError, match="environment variable HC_URL is not set"):
        load_config(path)


@pytest.mark.parametrize(("old", "new", "line", "key", "message"), [
    ("    period: 60s", "    period: soon", 8, "feeds[0].period", "expected a duration"),
    ("    period: 60s", "    periods: 60s", 8, "feeds[0].periods", "unknown key"),
    ("    source: snmp", "    name: acme-watchdog\n    source: snmp", 10,
     "feeds[1].name", "defined twice"),
    ("    match: {{alertname: Watchdog}}", '    match: {{alertname: "=~(Watch"}}', 7, "feeds[0].match.alertname",
     "invalid regular expression"),
    ("    client: acme\n    source: alertmanager", "    client: globex\n    source: alertmanager", 5,
     "feeds[0].client", "no client 'globex' in the inventory"),
    ("  url: https://hc-ping.example/0f1e", "  url: hc-ping.example", 13, "heartbeat.url", "expected an http(s)"),
    ("  interval: 30s", "  interval: 30s\n  method: PUT", 15, "heartbeat.method", "expected GET, POST or HEAD"),
    ("    period: 2m", "    period: 0s", 11, "feeds[1].period", "at least 1s"),
])
def test_feed_and_heartbeat_mistakes_name_file_line_and_key(tmp_path: Path, old: str, new: str, line: int,
                                                            key: str, message: str) -> None:
    assert old in WATCHER_YAML
    path = config_file(tmp_path, WATCHER_YAML.replace(old, new, 1))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert (err.value.file, err.value.line, err.value.key) == (str(path), line, key)
    assert message in err.value.message


# ---------------------------------------------------------------- FeedWatch on a real store


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


T0 = 1_800_000_000.0


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def make_watch(store: Store, clock: Clock, leader: bool = True) -> tuple[FeedWatch, list[Event]]:
    sent: list[Event] = []

    async def sink(events: list[Event]) -> None:
        sent.extend(events)

    return FeedWatch(demo_config(), store, Metrics(), lambda: leader, sink, clock=clock), sent


@functools.cache
def demo_config() -> Config:
    """The demo config (its inventory has client acme) with one Watchdog feed of 60 s."""
    cfg = load_config(ROOT / "watcher.yaml")
    feed = FeedConfig("acme-watchdog", "acme", 60.0, "alertmanager", (parse_matcher("alertname", "Watchdog"),))
    return replace(cfg, service=replace(cfg.service, feeds=(feed,)))


def watchdog(source: str = "alertmanager") -> list[Event]:
    return [Event({"alertname": "Watchdog", "severity": "none"}, source=source)]


async def test_one_announcement_per_silence_and_its_end(store: Store) -> None:
    clock = Clock(T0)
    watch, sent = make_watch(store, clock)
    watch.observe(watchdog() + watchdog("prometheus"), T0)
    watch._flush()
    await watch.check()
    clock.now = T0 + 59
    await watch.check()
    assert sent == [], "within its period a feed is not silent"
    clock.now = T0 + 61
    await watch.check()
    await watch.check()
    (firing,) = sent
    assert firing.status == "firing" and firing.labels["alertname"] == ALERTNAME
    assert (firing.labels["client"], firing.labels["feed"], firing.source) == ("acme", "acme-watchdog", "watcher")
    assert firing.starts_at is not None and firing.starts_at.timestamp() == T0, "blind since it last spoke"
    assert "blind since" in firing.annotations["summary"]
    assert feed_table.load(store)["acme-watchdog"][1] == T0

    clock.now = T0 + 90
    watch.observe(watchdog("prometheus"), T0 + 90)  # another source does not count
    await watch.check()
    assert len(sent) == 1
    watch.observe(watchdog(), T0 + 95)
    watch._flush()
    clock.now = T0 + 96
    await watch.check()
    resolved = sent[1]
    assert resolved.status == "resolved" and resolved.labels == firing.labels
    assert resolved.starts_at == firing.starts_at and resolved.ends_at is not None
    assert resolved.ends_at.timestamp() == T0 + 95
    assert feed_table.load(store)["acme-watchdog"] == (T0 + 95, None)


async def test_a_restart_remembers_the_announced_silence(store: Store) -> None:
    clock = Clock(T0)
    first, sent1 = make_watch(store, clock)
    first.observe(watchdog(), T0)
    first._flush()
    await first.check()
    clock.now = T0 + 100
    await first.check()
    (firing,) = sent1

    clock.now = T0 + 500  # watcher was down for a while
    second, sent2 = make_watch(store, clock)
    await second.check()
    await second.check()
    assert [e.occurrence_key for e in sent2] == [firing.occurrence_key], "re-announced once: a duplicate"
    second.observe(watchdog(), T0 + 510)
    clock.now = T0 + 511
    await second.check()
    assert [e.status for e in sent2] == ["firing", "resolved"]


async def test_replicas_share_what_they_saw_and_a_new_leader_waits_one_period(store: Store) -> None:
    clock = Clock(T0)
    follower, sent_f = make_watch(store, clock, leader=False)
    leader, sent_l = make_watch(store, clock)
    await leader.check()
    for t in range(0, 300, 30):  # the Watchdog reaches only the replica that does not lead
        clock.now = T0 + t
        follower.observe(watchdog(), T0 + t)
        follower._flush()
        await leader.check()
    assert sent_l == [] and sent_f == []
    clock.now = T0 + 270 + 61
    await leader.check()
    assert [e.starts_at.timestamp() for e in sent_l if e.starts_at] == [T0 + 270]


async def test_a_feed_never_heard_is_blind_since_watcher_began_to_watch(store: Store) -> None:
    clock = Clock(T0)
    watch, sent = make_watch(store, clock)
    await watch.check()
    clock.now = T0 + 61
    await watch.check()
    (firing,) = sent
    assert firing.starts_at is not None and firing.starts_at.timestamp() == T0


label_values = st.one_of(st.text(max_size=8), st.sampled_from(["Watchdog", "acme", "acme-krk", "krk-router"]))
labels = st.dictionaries(st.sampled_from(["alertname", "client", "site", "instance", "host", "snmp_agent"])
                         | st.text(max_size=8), label_values, min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(["alertmanager", "prometheus", "snmp", "watcher", ""]), labels),
                       max_size=5))
def test_observe_counts_exactly_the_matching_events(events: list[tuple[str, dict[str, str]]]) -> None:
    """Whatever labels senders put on events (binding fills in client and site from hosts,
    instances and agents), a feed counts an event exactly when its source and its matchers
    say so."""
    async def sink(events: list[Event]) -> None:
        return None

    watch = FeedWatch(demo_config(), cast(Store, None), Metrics(), lambda: True, sink, clock=Clock(T0))
    watch.observe([Event(lbl, source=src) for src, lbl in events], T0)
    counted = any(src == "alertmanager" and lbl.get("alertname") == "Watchdog" for src, lbl in events)
    assert ("acme-watchdog" in watch._seen) == counted


# ---------------------------------------------------------------- heartbeat


async def test_heartbeat_through_an_apprise_url_and_none_while_stalled(tmp_path: Path) -> None:
    """A stand-in for the engine worker (its leadership and last step are all the heartbeat
    reads; the e2e test stalls a real one); a real store and a real receiver."""
    store = Store(f"sqlite:///{tmp_path / 'w.db'}")
    with HttpReceiver() as hook:
        clock = Clock(T0)
        worker = SimpleNamespace(leader=True, last_step=T0)
        config = HeartbeatConfig(f"json://{hook.host}:{hook.port}/hb", stall_after=10)
        hb = Heartbeat(config, cast(EngineWorker, worker), store, Metrics(), clock=clock)
        try:
            await hb.beat()
            (body,) = await hook.await_for(1, timeout=20)
            assert body["title"] == "watcher heartbeat"
            clock.now = T0 + 11  # no batch for longer than stall_after
            await hb.beat()
            worker.leader, worker.last_step = False, T0 + 11  # another replica runs the engine
            await hb.beat()
            assert len(hook.requests) == 1
            worker.leader = True
            await hb.beat()
            await hook.await_for(2, timeout=20)
        finally:
            await hb.stop()
            store.close()
