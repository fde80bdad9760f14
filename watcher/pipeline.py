"""The live pipeline between the HTTP edge and the store: group-committed ingest and the
engine worker.

* ``Ingestor``: requests hand it rows and wait; one writer task commits everything that
  queued up meanwhile in one transaction, so a burst of requests costs one fsync, and a
  request is answered only once its rows are durable.
* ``EngineWorker``: reads the inbox in order, feeds the engine (the same code as replay)
  on the wall clock, and commits the engine's state, the changed tickets and the notices
  owed in one transaction.  On a restart it continues from the stored state and cursor.

One item that fails (an event, an op, a timer) never stops the others: it is recorded in
the quarantine with its reason and skipped, and the engine is reloaded from the store and
runs again from the last commit without it, so nothing the failing item half-did remains
(see ``watcher.guard``).  A commit that fails is traced to its item the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from watcher import guard
from watcher.config import Config
from watcher.live import Live
from watcher.logs import TicketLog
from watcher.metrics import Metrics
from watcher.model import Event, EventError, Op, op_from_dict
from watcher.rules import Engine
from watcher.rules.engine import TimerError
from watcher.status import StatusPublisher
from watcher.store import InboxRow, Store
from watcher.store import quarantine as qstore
from watcher.store.status import publish_status
from watcher.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class RecentKeys:
    """Occurrence keys this process has seen committed, newest kept, bounded.

    A monitoring storm is mostly re-sends of alerts already stored (Prometheus repeats every
    firing alert each evaluation); recognising them here answers them without serialising
    them or asking the database, which is what makes re-sends cheap.  Only a cache: a key
    not found here is still deduplicated by the inbox's unique index, so a miss (another
    worker's rows, a restart, an evicted key) costs time, never correctness.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._old: set[str] = set()
        self._new: set[str] = set()

    def __contains__(self, key: object) -> bool:
        return key in self._new or key in self._old

    def add_all(self, keys: Iterable[str]) -> None:
        self._new.update(keys)
        if len(self._new) >= self.limit:  # two generations: the older half is dropped at once
            self._old, self._new = self._new, set()


class EngineIntake(Protocol):
    """What the Ingestor tells the engine worker after each commit (``EngineWorker`` is one)."""

    def prime(self, seqs: list[int | None], events: Sequence[Event]) -> None:
        """Events just committed as these seqs (None: a duplicate), already parsed."""

    def wake(self) -> None:
        """New rows are in the inbox."""


_Pending = tuple[list[InboxRow], asyncio.Future[list[int | None]], Sequence[Event] | None]


class Ingestor:
    """Group commit of inbox rows.

    Data flows one way: after each commit the Ingestor hands the events it stored to the
    engine's ``intake`` (so the engine skips decoding them again) and wakes it; the request
    that submitted them is answered after that.
    """

    def __init__(self, store: Store, intake: EngineIntake, max_batch: int = 20000) -> None:
        self.store = store
        self.intake = intake
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.committed = RecentKeys()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self, timeout: float = 2.0) -> None:
        if self._task:
            with contextlib.suppress(TimeoutError):  # a store that hangs must not hold up the stop
                await asyncio.wait_for(self._queue.join(), timeout)
            await cancel_and_wait(self._task)

    async def submit(self, rows: list[InboxRow], events: Sequence[Event] | None = None) -> list[int | None]:
        """Store rows durably; the seq of each new row, None for duplicates.

        ``events``, when given, are the parsed events of ``rows`` (one each, in order): the
        engine's intake gets them with their seqs once they are committed.
        """
        fut: asyncio.Future[list[int | None]] = asyncio.get_running_loop().create_future()
        await self._queue.put((rows, fut, events))
        return await fut

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            batch = [first]
            size = len(first[0])
            while not self._queue.empty() and size < self.max_batch:
                item = self._queue.get_nowait()
                batch.append(item)
                size += len(item[0])
            rows = [r for b in batch for r in b[0]]
            try:
                seqs = await asyncio.to_thread(self.store.append, rows)
            except Exception as exc:  # the store is down: every waiting request gets the error
                log.error("ingest write failed: %s", exc)
                for _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                    self._queue.task_done()
                continue
            self.committed.add_all(r.occ_key for r in rows if r.kind == "event")
            pos = 0
            for b_rows, fut, events in batch:
                got = seqs[pos:pos + len(b_rows)]
                if events is not None:
                    self.intake.prime(got, events)
                if not fut.done():
                    fut.set_result(got)
                pos += len(b_rows)
            self.intake.wake()
            for _ in batch:
                self._queue.task_done()


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class EngineWorker:
    """The one consumer of the inbox: the engine, its state and its outputs in the store."""

    def __init__(self, config: Config | Live, store: Store, metrics: Metrics, on_notices: Callable[[], None],
                 tick: float = 1.0, batch: int = 5000, clock: Callable[[], float] = time.time) -> None:
        self.live = Live.of(config)
        self.store = store
        self.metrics = metrics
        self.on_notices = on_notices
        self.tick = tick
        self.batch = batch
        self.clock = clock
        self.engine: Engine
        self.cursor = 0
        self.epoch = 0
        self.leader = False
        self._wake = asyncio.Event()
        self._waiters: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._engine_config: Config | None = None  # the configuration the engine was built with
        self._results: dict[int, dict[str, Any]] = {}
        self._seen_open: set[str] = set()
        self._unwritten: dict[str, Any] = {}
        self._primed: dict[int, Event] = {}
        self._primed_lock = threading.Lock()  # prime() runs on the event loop, _step in a thread
        self.guard = guard.Guard()
        self._unwritten_rows = 0
        self._write_whole = False
        self._last_commit = 0.0
        self.commit_interval = 2.0
        self.ticket_log = TicketLog()
        self.status = StatusPublisher(clock=clock)
        self.last_step = 0.0  # clock() at the end of the last batch that went through (a stall stops it)

    @property
    def config(self) -> Config:
        """The configuration in force (a reload swaps it; the next batch rebuilds the engine)."""
        return self.live.config

    async def start(self) -> None:
        await asyncio.to_thread(self._load)
        self._task = asyncio.create_task(self._run(), name="engine-worker")

    def _load(self) -> None:
        self.cursor, state, self.epoch, inline = self.store.load_engine_state()
        with self._primed_lock:
            self._primed.clear()
        self._unwritten.clear()
        self._unwritten_rows = 0
        cfg = self.config
        self.engine = Engine(cfg.rules, cfg.inventory, state)
        self._engine_config = cfg
        self.ticket_log.prime(self.engine.tickets.values())
        self._write_whole = inline
        self.guard.loaded(self.engine, *qstore.skipped_after(self.store, self.cursor))

    async def stop(self, timeout: float = 3.0) -> None:
        """Commit what was handled and stop, within ``timeout`` whatever the engine is doing.

        A batch still running in its thread after that is abandoned: its commit is fenced by
        the epoch, so it cannot overwrite the work of a replica that leads next."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                log.error("the engine did not stop within %g s; abandoning its batch", timeout)
                await cancel_and_wait(self._task)
            except asyncio.CancelledError:
                pass

    def wake(self) -> None:
        self._wake.set()

    def prime(self, seqs: list[int | None], events: Sequence[Event]) -> None:
        """Events this process just stored, already parsed (the Ingestor hands them over after
        each commit): the engine skips decoding them again.  Only a cache: rows from other
        replicas, or after a restart, are decoded."""
        with self._primed_lock:
            if len(self._primed) > 100_000:
                return
            for seq, ev in zip(seqs, events, strict=True):
                if seq is not None and seq > self.cursor:
                    self._primed[seq] = ev

    async def wait_for(self, seq: int, timeout: float = 30.0) -> dict[str, Any]:
        """The engine's result for the inbox row ``seq`` (an op), once it is committed.

        The leader answers from memory; on another replica the answer is read from the
        store, where the leader wrote it in the same transaction as the op's effects.
        """
        if seq <= self.cursor:
            if seq in self._results:
                return self._results.pop(seq)
            return await asyncio.to_thread(self.store.op_result, seq) or {}
        fut = self._waiters.get(seq)
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._waiters[seq] = fut
        self._wake.set()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(fut), 0.25)
            except TimeoutError:
                stored = await asyncio.to_thread(self.store.op_result, seq)
                if stored is not None:
                    self._waiters.pop(seq, None)
                    return stored
                if time.monotonic() > deadline:
                    self._waiters.pop(seq, None)
                    raise

    async def _run(self) -> None:
        while True:
            if not await self._lead():
                if self._stopping:
                    return
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=max(self.tick, 0.5))
                continue
            try:
                busy = await asyncio.to_thread(self._guarded_step)
            except Exception as exc:
                self.guard.failed(self.clock())
                if self._stopping:
                    return
                log.error("engine batch failed (%s: %s); reloading the engine state from the store",
                          exc.__class__.__name__, exc)
                await asyncio.sleep(1.0)
                try:
                    await asyncio.to_thread(self._load)
                except Exception:
                    log.exception("cannot reload the engine state")
                continue
            self.guard.succeeded(self.clock())
            self._settle_waiters()
            if self._stopping and (not busy or not self._unwritten_rows):
                return  # the inbox is durable: whoever leads next handles the rest
            if busy:
                continue
            due = self.engine.next_due()
            delay = self.tick
            if due is not None:
                delay = min(delay, max(0.0, due.timestamp() - self.clock()))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.005))

    async def _lead(self) -> bool:
        """Only one replica runs the engine: the one holding the store's leadership."""
        try:
            lead = await asyncio.to_thread(self.store.try_lead)
        except Exception as exc:
            if self.leader:
                log.error("lost the store while leading the engine: %s", exc)
            self.leader = False
            return False
        if lead and not self.leader:
            await asyncio.to_thread(self._load)
            self.status.lead()
            log.info("this replica runs the engine (inbox cursor %d)", self.cursor)
        elif not lead and self.leader:
            log.warning("another replica runs the engine now")
        self.leader = lead
        return lead

    def _settle_waiters(self) -> None:
        for seq in [s for s in self._waiters if s <= self.cursor]:
            fut = self._waiters.pop(seq)
            if not fut.done():
                fut.set_result(self._results.pop(seq, {}))

    def _guarded_step(self) -> bool:
        """One batch; an item that failed is set aside and the batch runs again without it."""
        try:
            return self._step()
        except guard.SetAside:
            self._load()
            return True
        except guard.CommitFailed as exc:
            self._load()
            self.guard.trace_until = exc.last
            log.error("engine commit failed (%s); handling rows %d..%d one at a time to find the one that "
                      "causes it", exc, self.cursor + 1, exc.last)
            return True

    def _set_aside(self, seq: int, kind: str, reason: str, payload: str) -> None:
        """Record a failing item in the quarantine (its own transaction) and skip it from now on."""
        log.error("inbox row %d (%s) set aside: %s", seq, kind, reason)
        qstore.add(self.store, qstore.Quarantined(seq, kind, reason, payload), self.clock())
        self.guard.skip[seq] = reason
        self.metrics.quarantined_items.inc()

    def _set_aside_timer(self, exc: TimerError | None, ident: str = "", reason: str = "") -> None:
        if exc is not None:
            ident, reason = exc.ident, str(exc)
        log.error("engine timer set aside at inbox row %d: %s", self.cursor, reason)
        qstore.add(self.store, qstore.Quarantined(self.cursor, "timer", reason, ident), self.clock())
        self.guard.skip_timer(self.engine, ident)
        self.metrics.quarantined_items.inc()

    def _sink_jobs(self, changed: list[Any]) -> Callable[[Any], None] | None:
        """The calls the written tickets owe the helpdesk systems, stored with them."""
        if not changed or self.config.service.sinks is None:
            return None
        from watcher.sinks import plan, queue

        jobs = plan.jobs_for(changed, self.config.service.sinks)
        now = self.clock()
        return lambda conn: queue.enqueue(self.store, conn, jobs, now)

    def _step(self) -> bool:
        """One batch: returns True when it handled inbox rows (there may be more)."""
        started = time.perf_counter()
        cfg = self.config
        if cfg is not self._engine_config:  # reloaded: new rules and inventory from this batch on
            state = self.engine.snapshot()
            self.engine = Engine(cfg.rules, cfg.inventory, state)
            self._engine_config = cfg
            self._write_whole = True  # a rule that is gone drops its groups: rewrite them all
        tracing = self.guard.tracing(self.cursor)
        rows = self.store.read_inbox(self.cursor, 1 if tracing else self.batch)
        engine = self.engine
        results: dict[int, dict[str, Any]] = {}
        last = self.cursor
        for seq, kind, received_at, payload in rows:
            last = seq
            with self._primed_lock:
                item: Event | Op | None = self._primed.pop(seq, None)
            if seq in self.guard.skip:
                if kind == "op":
                    results[seq] = {"error": f"set aside: {self.guard.skip[seq]}"}
                continue
            if item is None:
                try:
                    raw = orjson.loads(payload)
                    item = op_from_dict(raw) if kind == "op" else Event.from_dict(raw)
                except (ValueError, EventError) as exc:
                    self._set_aside(seq, kind, f"cannot be read: {exc}", payload)
                    if kind == "op":
                        results[seq] = {"error": f"set aside: cannot be read: {exc}"}
                    continue
            now = _dt(max(received_at, engine.clock))
            if isinstance(item, Op) and seq in self._waiters:
                item = item.moved(now)
            try:
                results[seq] = engine.handle(item, now)
            except TimerError as exc:
                self._set_aside_timer(exc)
                raise guard.SetAside from exc
            except Exception as exc:  # contained to this row: set aside, and the batch runs again without it
                self._set_aside(seq, kind, guard.reason(exc), payload)
                raise guard.SetAside from exc
        if rows:
            with self._primed_lock:
                for stale in [k for k in self._primed if k <= last]:  # primed after this step read them
                    self._primed.pop(stale, None)
        try:
            engine.advance(_dt(max(self.clock(), engine.clock)))
        except TimerError as exc:
            self._set_aside_timer(exc)
            raise guard.SetAside from exc
        changes = engine.drain()
        answers = {seq: res for seq, res in results.items() if res}
        for tk in changes.tickets:
            self._unwritten[tk.id] = tk
        self._unwritten_rows += len(rows)
        # Material changes (a ticket opened or resolved, a notice owed, an agent's answer) are
        # written at once; more evidence on open tickets waits up to commit_interval, because
        # after a crash the engine replays the inbox from the stored cursor and restores it.
        due = self._unwritten_rows and (self.clock() - self._last_commit >= self.commit_interval
                                        or self._unwritten_rows >= 20_000)
        status = self.status.row(engine, last, self.epoch)
        if changes.material or changes.notices or answers or due or tracing or \
                (self._stopping and self._unwritten_rows):
            try:
                self.epoch = self.store.commit_batch(last, engine.delta(self._write_whole, self._unwritten),
                                                     list(self._unwritten.values()),
                                                     changes.notices, self.clock(), op_answers=answers,
                                                     epoch=self.epoch,
                                                     notice_delay=self.config.service.notify.digest_window,
                                                     status=status,
                                                     also=self._sink_jobs(list(self._unwritten.values())))
            except Exception as exc:
                if guard.is_infrastructure(exc):
                    raise
                if rows and not tracing:
                    raise guard.CommitFailed(last, exc) from exc
                if rows:
                    seq, kind, _, payload = rows[0]
                    self._set_aside(seq, kind, f"its result cannot be stored: {guard.reason(exc)}", payload)
                    raise guard.SetAside from exc
                if changes.fired:  # no row in this step: the timers it fired made the state unstorable
                    for ident in changes.fired:
                        self._set_aside_timer(None, ident, f"its result cannot be stored: {guard.reason(exc)}")
                    raise guard.SetAside from exc
                raise
            self.status.written(replace(status, epoch=self.epoch))
            self._unwritten.clear()
            self._unwritten_rows = 0
            self._write_whole = False
            self._last_commit = self.clock()
            self.guard.forget_before(last)
        elif self.status.due(status):
            publish_status(self.store, status)
            self.status.written(status)
        self._results.update(answers)
        while len(self._results) > 10_000:
            self._results.pop(next(iter(self._results)))
        self.cursor = last
        self.ticket_log.observe(changes.tickets)
        for tk in changes.tickets:
            if tk.status == "resolved" and tk.id in self._seen_open:
                self.metrics.tickets_resolved.labels(tk.category).inc()
                self._seen_open.discard(tk.id)
            elif tk.status != "resolved" and tk.id not in self._seen_open:
                self.metrics.tickets_opened.labels(tk.category).inc()
                self._seen_open.add(tk.id)
        self.guard.publish(engine)
        if changes.notices:
            self.on_notices()
        if rows or changes.tickets:
            self.metrics.engine_batch_seconds.observe(time.perf_counter() - started)
        self.last_step = self.clock()
        return bool(rows)
