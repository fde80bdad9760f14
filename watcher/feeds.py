"""Silent feeds are incidents: a source that stops speaking becomes an event like any other.

The worst failure of a monitoring system is the quiet one: Prometheus stops sending, a trap
receiver's firewall changes, a probe scheduler wedges, and every dashboard stays green.
``FeedWatch`` knows the sources watcher.yaml expects (``feeds:``) and when each last spoke.
When one is silent past its period it puts a ``WatcherFeedSilent`` event (firing) into the
inbox, and a resolved one when the source speaks again; the shipped rule ``feed-silent``
turns them into a ticket for the MSP's own team that affects nobody at the client.  The
rules engine stays the only place that decides about tickets: this module only reports.

* Every process watches its own ingest (``observe``, called by the HTTP edge and the
  collectors' sink with every event received, re-sends included: a duplicate still shows
  that its sender is alive) and writes what it saw to the ``feeds`` table, so replicas and
  restarts share one view.
* Only the replica that runs the engine judges silences and announces them, recording each
  announced silence in the same table before the event (and clearing it after the resolved
  event): a restart neither forgets an open incident nor announces it twice (the events'
  occurrence keys make a repeated announcement a duplicate).
* Right after it starts leading, a feed gets its full period before it counts as silent:
  watcher itself being down is not the source's silence (Prometheus re-sends on its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from watcher.config import Config
from watcher.config.rules import Matcher
from watcher.config.selfwatch import FeedConfig
from watcher.metrics import Metrics
from watcher.model import Event
from watcher.rules.binding import bind
from watcher.store import Store
from watcher.store import feeds as feed_table
from watcher.tasks import cancel_and_wait

log = logging.getLogger(__name__)

ALERTNAME = "WatcherFeedSilent"
_BOUND_LABELS = frozenset({"client", "site", "host", "person", "folder_person"})  # labels binding may add
SOURCE = "watcher"  # the source of the events this module makes (never counted as a feed speaking)


def _fmt_duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


class FeedWatch:
    """Last-seen times of the expected sources, and their silences as events."""

    def __init__(self, config: Config, store: Store, metrics: Metrics, is_leader: Callable[[], bool],
                 sink: Callable[[list[Event]], Awaitable[None]], clock: Callable[[], float] = time.time,
                 interval: float | None = None, current: Callable[[], Config] | None = None) -> None:
        self.config = config
        self.current = current or (lambda: config)  # the config in force (a reload swaps it)
        self.store = store
        self.metrics = metrics
        self.is_leader = is_leader
        self.sink = sink
        self.clock = clock
        self._interval = interval
        self.feeds: tuple[FeedConfig, ...] = ()
        self.interval = 5.0
        self._by_source: dict[str, list[FeedConfig]] = {}
        self._any: list[FeedConfig] = []
        self._unbound: dict[str, list[Matcher]] = {}
        self._use(config.service.feeds)
        self._expected_since: dict[str, float] = {}  # feeds a reload added: when they became expected
        self._gone: dict[str, FeedConfig] = {}  # feeds a reload removed, whose silence is still announced
        self._seen: dict[str, float] = {}  # what this process saw, not yet written
        self._latest: dict[str, float] = {}  # the newest time this process knows of, per feed
        self._announced: dict[str, float] = {}  # feed -> the "since" of its announced silence
        self._lead_since: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def _use(self, feeds: tuple[FeedConfig, ...]) -> None:
        """Index ``feeds`` by source, and pace the rounds by the shortest period."""
        self.feeds = feeds
        shortest = min((f.period for f in feeds), default=60.0)
        self.interval = self._interval if self._interval is not None else min(5.0, max(0.2, shortest / 5))
        self._by_source, self._any, self._unbound = {}, [], {}
        for f in feeds:
            (self._by_source.setdefault(f.source, []) if f.source is not None else self._any).append(f)
            self._unbound[f.name] = [m for m in f.matchers if m.label not in _BOUND_LABELS]

    def _follow(self) -> None:
        """Take the ``feeds:`` section a reload brought.  A feed it adds gets its whole period
        from now before it can be silent; one it removes is no longer expected, and its
        announced silence ends at the leader's next round (``check``)."""
        feeds = self.current().service.feeds
        if feeds is self.feeds:
            return
        if feeds != self.feeds:
            now = self.clock()
            old = {f.name: f for f in self.feeds}
            names = {f.name for f in feeds}
            for f in feeds:
                if f.name not in old:
                    self._expected_since[f.name] = now
                self._gone.pop(f.name, None)
            for name, f in old.items():
                if name not in names:
                    self._gone[name] = f
                    self._expected_since.pop(name, None)
                    self.metrics.feed_silent.labels(f.name, f.client).set(0)
            log.info("feeds reloaded: %d expected", len(feeds))
        self._use(feeds)

    # ------------------------------------------------------------ ingest side

    def observe(self, events: list[Event], received_at: float) -> None:
        """Note the feeds that these events, just received (re-sends included), show speaking."""
        self._follow()
        if not self.feeds:
            return
        spoke = False
        for ev in events:
            if ev.source == SOURCE:
                continue
            candidates = self._by_source.get(ev.source, [])
            if self._any:
                candidates = candidates + self._any
            # matchers on labels that binding never adds are checked before binding (cheap)
            candidates = [f for f in candidates if all(m.matches(ev.labels) for m in self._unbound[f.name])]
            if not candidates:
                continue
            bound = bind(ev.labels, self.current().inventory)
            for f in candidates:
                if f.matches(ev.source, bound) and received_at > self._latest.get(f.name, 0.0):
                    self._seen[f.name] = self._latest[f.name] = received_at
                    spoke = spoke or f.name in self._announced
        if spoke:
            self._wake.set()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Run the rounds; with no feeds expected they only look for a reload that adds some."""
        self._task = asyncio.create_task(self._run(), name="feed-watch")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._flush)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            self._follow()
            if not self.feeds and not self._gone and not self._seen:
                continue
            try:
                await asyncio.to_thread(self._flush)
                if self.is_leader():
                    await self.check()
                elif self._lead_since is not None:  # no longer leading: the new leader reports
                    self._lead_since = None
                    for f in self.feeds:
                        self.metrics.feed_silent.labels(f.name, f.client).set(0)
                if self._failing:
                    log.info("feed watch works again")
                    self._failing = False
            except Exception as exc:  # the store is away: try again at the next round, log once
                if not self._failing:
                    log.error("feed watch cannot reach the store: %s", exc)
                    self._failing = True
                self._lead_since = None

    def _flush(self) -> None:
        seen, self._seen = self._seen, {}
        try:
            feed_table.record_seen(self.store, seen, self.clock())
        except Exception:
            for name, ts in seen.items():  # keep them for the next try
                self._seen[name] = max(ts, self._seen.get(name, 0.0))
            raise

    # ------------------------------------------------------------ the leader's judgement

    async def check(self) -> None:
        """Announce the feeds that went silent and resolve those that spoke again."""
        now = self.clock()
        stored = await asyncio.to_thread(feed_table.load, self.store)
        if self._lead_since is None:
            self._lead_since = now
            self._announced = {name: since for name, (_, since) in stored.items() if since is not None}
            again = [self._event(f, "firing", self._announced[f.name], now)
                     for f in self.feeds if f.name in self._announced]
            if again:  # an announcement a crash may have cut short; a duplicate otherwise
                await self.sink(again)
        for name, gone in list(self._gone.items()):  # no longer expected: its silence ends now
            since = self._announced.pop(name, None)
            if since is not None:
                await self.sink([self._event(gone, "resolved", since, now)])
                await asyncio.to_thread(feed_table.set_silent, self.store, name, None, now)
                log.info("feed %s of client %s is no longer expected", name, gone.client)
            del self._gone[name]
        for f in self.feeds:
            last_db = stored.get(f.name, (None, None))[0]
            last = max((t for t in (last_db, self._latest.get(f.name)) if t is not None), default=None)
            if last is not None:
                self._latest[f.name] = last
                self.metrics.feed_last_seen.labels(f.name).set(last)
            since = self._announced.get(f.name)
            if since is not None:
                if last is not None and last > since:
                    await self.sink([self._event(f, "resolved", since, last)])
                    await asyncio.to_thread(feed_table.set_silent, self.store, f.name, None, now)
                    del self._announced[f.name]
                    log.info("feed %s of client %s speaks again", f.name, f.client)
            elif now - max(last or 0.0, self._lead_since, self._expected_since.get(f.name, 0.0)) > f.period:
                since = last if last is not None else max(self._lead_since, self._expected_since.get(f.name, 0.0))
                await asyncio.to_thread(feed_table.set_silent, self.store, f.name, since, now)
                self._announced[f.name] = since
                await self.sink([self._event(f, "firing", since, now)])
                log.warning("feed %s of client %s is silent since %s", f.name, f.client, self._since_text(f, since))
            self.metrics.feed_silent.labels(f.name, f.client).set(1 if f.name in self._announced else 0)

    def _since_text(self, f: FeedConfig, since: float) -> str:
        client = self.current().inventory.clients.get(f.client)
        tz = client.timezone if client is not None else UTC
        return datetime.fromtimestamp(since, tz).strftime("%Y-%m-%d %H:%M %Z")

    def _event(self, f: FeedConfig, status: str, since: float, at: float) -> Event:
        """The event of one silence: the same labels and start for its firing and its end, so
        the engine sees one alert, and a re-announcement is the same occurrence."""
        client = self.current().inventory.clients.get(f.client)
        text = self._since_text(f, since)
        what = f"source {f.source}" if f.source else "any source"
        summary = (f"monitoring of client {client.name if client else f.client} is blind since {text}: "
                   f"feed {f.name} ({what}) silent for longer than {_fmt_duration(f.period)}")
        return Event(
            labels={"alertname": ALERTNAME, "client": f.client, "feed": f.name, "source": f.source or "any",
                    "since": text, "severity": "critical"},
            source=SOURCE, status="resolved" if status == "resolved" else "firing",
            annotations={"summary": summary}, starts_at=datetime.fromtimestamp(since, UTC),
            ends_at=datetime.fromtimestamp(at, UTC) if status == "resolved" else None,
            observed_at=datetime.fromtimestamp(at, UTC))
