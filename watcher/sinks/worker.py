"""Working the sink queue, and learning from the systems what their agents did.

``SinkService`` runs two kinds of loops in the service:

* the caller: claims due jobs (``watcher.sinks.queue.claim``), makes the call, and records
  the outcome: done, retry with exponential backoff, or dead.  Before it creates an external
  ticket it looks one up by watcher's id, so a crash between the create call and its record
  (the window a SIGKILL can hit) does not make a second ticket.
* a poller per system that can be polled: reads the changes since its stored cursor and
  hands the agents' steps to the engine as the same operations the console sends (``ack``,
  ``resolve``), through the durable inbox.  The occurrence key names the system, the
  external ticket and the step, so a step read twice is one operation, and the all-clear
  notices of a resolution go out once each.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from watcher.config import Config
from watcher.config.sinks import SinkBase, SinksConfig
from watcher.live import Live
from watcher.metrics import Metrics
from watcher.model import op_json, utcnow
from watcher.sinks import build_sink, queue
from watcher.sinks.base import Draft, ExternalRef, Sink, SinkError
from watcher.sinks.text import Texts
from watcher.store import InboxRow, Store

log = logging.getLogger(__name__)

FAULT_ENV = "WATCHER_SINK_FAULT"  # "kill-after-create": tests only, see _after_create


def _after_create() -> None:
    """Fault injection for the crash test: die by SIGKILL right after an external ticket was
    created and before watcher recorded it.  Nothing sets the variable outside the tests."""
    if os.environ.get(FAULT_ENV) == "kill-after-create":
        os.kill(os.getpid(), signal.SIGKILL)


class SinkService:
    def __init__(self, config: Config | Live, store: Store, metrics: Metrics,
                 submit: Callable[[list[InboxRow]], Awaitable[list[int | None]]],
                 clock: Callable[[], float] = time.time, poll: bool = True) -> None:
        self.live = Live.of(config)
        self.store = store
        self.metrics = metrics
        self.submit = submit
        self.clock = clock
        self.do_poll = poll
        self.sinks: dict[str, Sink[SinkBase]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._stopping = False

    @property
    def config(self) -> Config:
        """The configuration in force (read at each use: a reload swaps it)."""
        return self.live.config

    @property
    def cfg(self) -> SinksConfig:
        sinks = self.config.service.sinks
        if sinks is None:  # app.py starts this service only for a watcher.yaml with a sinks: section
            raise RuntimeError("watcher.yaml has no sinks: section")
        return sinks

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        for system in self.cfg.systems:
            self.sinks[system.name] = build_sink(system, self._session)
        self._tasks.append(asyncio.create_task(self._run(), name="sink-caller"))
        if self.do_poll:
            for sink in self.sinks.values():
                if sink.cfg.poll:
                    self._tasks.append(asyncio.create_task(self._poll_loop(sink), name=f"sink-poll-{sink.name}"))

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            if task.get_name().startswith("sink-poll-"):
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                try:
                    await asyncio.wait_for(task, timeout=30)
                except TimeoutError:
                    task.cancel()
        if self._session is not None:
            await self._session.close()

    def wake(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------ calls

    async def _run(self) -> None:
        while not self._stopping:
            try:
                jobs = await asyncio.to_thread(queue.claim, self.store, self.clock(), 16, self.cfg.claim_lease)
            except Exception as exc:
                log.error("sink queue unavailable: %s", exc)
                jobs = []
            if jobs:
                # one ticket's jobs are never claimed together (claim takes the first of each)
                await asyncio.gather(*(self._work(job) for job in jobs))
                continue
            timeout = 1.0
            with contextlib.suppress(Exception):
                upcoming = await asyncio.to_thread(queue.next_due, self.store)
                if upcoming is not None:
                    timeout = min(timeout, max(0.0, upcoming - self.clock()) + 0.001)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    def _backoff(self, attempts: int) -> float:
        return float(min(self.cfg.retry_max, self.cfg.retry_initial * (2 ** max(0, attempts))))

    async def _work(self, job: queue.Job) -> None:
        sink = self.sinks.get(job.sink)
        if sink is None:
            await asyncio.to_thread(queue.fail, self.store, job.id, f"no system {job.sink!r} configured", None)
            self._count(job, "dead")
            return
        try:
            note = await self._call(sink, job)
        except SinkError as exc:
            give_up = not exc.retryable or job.attempts + 1 >= self.cfg.max_attempts
            due = None if give_up else self.clock() + self._backoff(job.attempts)
            await asyncio.to_thread(queue.fail, self.store, job.id, str(exc), due)
            self._count(job, "dead" if give_up else "retry")
            log.warning("%s %s for %s failed%s: %s", job.sink, job.key, job.ticket_id,
                        "" if give_up else ", will retry", exc)
            return
        except Exception as exc:  # a bug must not stop the queue: the job waits and is retried
            log.exception("%s %s for %s failed unexpectedly", job.sink, job.key, job.ticket_id)
            await asyncio.to_thread(queue.fail, self.store, job.id, f"internal error: {exc}",
                                    self.clock() + self._backoff(job.attempts))
            self._count(job, "retry")
            return
        if note != "linked":
            await asyncio.to_thread(queue.finish, self.store, job.id, self.clock(), note)
        self._count(job, "ok" if note in (None, "linked") else "skipped")

    def _count(self, job: queue.Job, result: str) -> None:
        self.metrics.sink_calls.labels(job.sink, job.action, result).inc()

    async def _call(self, sink: Sink[SinkBase], job: queue.Job) -> str | None:
        """Make the job's call; returns None, "linked" (the job was closed with the link) or why
        no call was needed."""
        tk = await asyncio.to_thread(self.store.ticket, job.ticket_id)
        if tk is None:
            raise SinkError("ticket not found", retryable=False)
        texts = Texts(self.config, tk)
        link = await asyncio.to_thread(queue.get_link, self.store, job.ticket_id, job.sink)
        if job.action == "open":
            if link is not None:
                return "already linked"
            ref = await sink.find(job.ticket_id)
            if ref is None:
                ref = await sink.create(Draft(job.ticket_id, texts.subject(), texts.body(), tk.client), str(job.id))
                _after_create()
                log.info("%s ticket %s opened for %s", sink.name, ref.id, job.ticket_id)
            else:
                log.info("%s ticket %s already existed for %s: linked, not created again", sink.name, ref.id,
                         job.ticket_id)
            await asyncio.to_thread(queue.link_and_finish, self.store, job.id, job.ticket_id, job.sink, ref.id,
                                    ref.url, list(job.payload.get("baseline") or []), self.clock())
            return "linked"
        if link is None:
            raise SinkError("no external ticket (its creation failed; see the dead letters)", retryable=False)
        ref = ExternalRef(link.external_id, link.url, job.ticket_id)
        if job.action == "resolve":
            await sink.resolve(ref, texts.resolution(), str(job.id))
            return None
        if job.key in link.baseline:
            return "in the ticket's first text"
        if job.key == "ack" and (tk.acknowledged_by or "").startswith(f"{sink.name}:"):
            return "acknowledged in this system"
        await sink.comment(ref, texts.comment(job.key), str(job.id))
        return None

    # ------------------------------------------------------------ agents' steps

    async def _poll_loop(self, sink: Sink[SinkBase]) -> None:
        while not self._stopping:
            try:
                await self.poll_once(sink)
            except SinkError as exc:
                self.metrics.sink_poll_errors.labels(sink.name).inc()
                log.warning("polling %s failed: %s", sink.name, exc)
            except Exception:
                self.metrics.sink_poll_errors.labels(sink.name).inc()
                log.exception("polling %s failed", sink.name)
            await asyncio.sleep(self.cfg.poll_interval)

    async def poll_once(self, sink: Sink[SinkBase]) -> int:
        """Read one batch of changes; returns how many operations were handed to the engine."""
        cursor = await asyncio.to_thread(queue.get_cursor, self.store, sink.name)
        actions, new_cursor = await sink.poll(cursor, self.cfg.poll_overlap)
        links = await asyncio.to_thread(queue.links_of_sink, self.store, sink.name,
                                        sorted({a.external_id for a in actions}))
        rows: list[InboxRow] = []
        now = self.clock()
        for action in actions:
            link = links.get(action.external_id)
            if link is None:
                continue  # not one of watcher's tickets
            op = op_json(action.action, utcnow(), {"ticket": link.ticket_id, "by": action.by})
            key = f"op|sink|{sink.name}|{action.external_id}|{action.action}|{action.stamp}"
            rows.append(InboxRow("op", "sink", key, now, orjson.dumps(op).decode()))
            if link.external_status != action.stamp:
                await asyncio.to_thread(queue.set_external_status, self.store, link.ticket_id, sink.name,
                                        action.stamp, now)
        if rows:
            seqs = await self.submit(rows)
            for row, seq in zip(rows, seqs, strict=True):
                if seq is not None:
                    self.metrics.sink_agent_steps.labels(sink.name, row.occ_key.split("|")[4]).inc()
                    log.info("%s: %s", sink.name, row.payload)
        if new_cursor and new_cursor != cursor:
            await asyncio.to_thread(queue.set_cursor, self.store, sink.name, new_cursor, self.clock())
        return sum(1 for _ in rows)
