"""What every ticket system does for watcher, and the one HTTP call they all make.

A sink is stateless between calls: the queue (``watcher.sinks.queue``) remembers what was
done and retries what failed.  ``SinkError.retryable`` answers the queue's question, like
the notifier's: a refused connection, a timeout, a 5xx or a 429 may work later; a 4xx
(bad credentials, an unknown queue) will not, and goes to the dead letters at once.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import aiohttp

from watcher.config.sinks import SinkBase


class SinkError(Exception):
    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class ExternalRef:
    """A ticket in the external system: its id there and a link an agent can open."""

    id: str
    url: str
    ticket_id: str = ""  # watcher's ticket, when the sink needs to name it again


@dataclass(frozen=True)
class Draft:
    """A new external ticket: watcher's id (to find it again), subject and body."""

    ticket_id: str
    subject: str
    body: str
    client: str


@dataclass(frozen=True)
class AgentAction:
    """An agent's step in the external system, to be applied as if done in the console.

    ``stamp`` makes the operation idempotent: the same step seen by two polls is one
    operation (it is part of the inbox's occurrence key).
    """

    external_id: str
    action: str  # ack | resolve
    by: str
    stamp: str


C = TypeVar("C", bound=SinkBase, covariant=True)  # a Sink[RtConfig] is a Sink[SinkBase]


class Sink(ABC, Generic[C]):
    """One configured ticket system; ``config_type`` is the class its watcher.yaml entry parses to."""

    config_type: ClassVar[type[SinkBase]] = SinkBase

    def __init__(self, cfg: C, session: aiohttp.ClientSession) -> None:
        self.cfg = cfg
        self.session = session

    @property
    def name(self) -> str:
        return self.cfg.name

    @abstractmethod
    async def find(self, ticket_id: str) -> ExternalRef | None:
        """The external ticket made earlier for watcher's ``ticket_id``, if any (after a crash
        between the create call and its record, this is what prevents a second one)."""

    @abstractmethod
    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        """Open the external ticket.  ``idem`` (the queue job's id, the same on every retry)
        is sent where the system takes an idempotency key."""

    @abstractmethod
    async def comment(self, ref: ExternalRef, text: str, idem: str) -> None: ...

    @abstractmethod
    async def resolve(self, ref: ExternalRef, text: str, idem: str) -> None: ...

    async def poll(self, cursor: str | None, overlap: float) -> tuple[list[AgentAction], str | None]:
        """Agents' steps since ``cursor``, and the next cursor.  Systems that cannot be polled
        (the webhook) report nothing."""
        return [], cursor

    def headers(self) -> dict[str, str]:
        return {}

    def auth(self) -> aiohttp.BasicAuth | None:
        return None

    async def call(self, method: str, path: str, body: Any = None, *, params: dict[str, str] | None = None,
                   data: bytes | None = None, headers: dict[str, str] | None = None,
                   expect: tuple[int, ...] = (200, 201)) -> Any:
        """One request to the system; its JSON answer (None when empty), or SinkError."""
        url = path if path.startswith("http") else self.cfg.url + path
        hdrs = {"Accept": "application/json", **self.headers(), **(headers or {})}
        if body is not None:
            data = json.dumps(body, ensure_ascii=False).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            async with self.session.request(method, url, data=data, params=params, headers=hdrs, auth=self.auth(),
                                            timeout=aiohttp.ClientTimeout(total=self.cfg.timeout)) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise SinkError(f"{method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if status not in expect:
            snippet = raw[:300].decode("utf-8", "replace")
            raise SinkError(f"{method} {path}: HTTP {status}: {snippet}", retryable=status >= 500 or status == 429)
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SinkError(f"{method} {path}: the answer is not JSON", retryable=False) from exc
