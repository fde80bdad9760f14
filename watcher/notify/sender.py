"""Deliver one rendered message to one person through Apprise, and say what happened.

A person's Apprise URLs are fallbacks, tried in order: the first that delivers wins, and the
``SendResult`` names its scheme as the channel (``mailto``, ``json``, ``msteams``...).  The
result answers the outbox's two questions, as Alertmanager's notifiers do: did it arrive,
and is it worth trying again later?

- An URL Apprise cannot parse (unknown scheme, missing parts, bad sender address) will not
  get better by waiting: ``retryable=False`` when every URL is like that.
- A delivery failure (server down, refused, 5xx, timeout) is ``retryable=True``.

Four Apprise behaviours this module deliberately works around:

- Throttle: an Apprise service object sleeps about 5.5 s between two sends by default
  (``request_rate_per_sec``).  Each service object here has that rate set to 0: pacing and
  retries are the outbox's job, and a burst of notices to many people must not take
  minutes.  Service objects are kept per URL and reused, one send at a time each (building
  one cost more than a send to a local receiver).
- Retries: Apprise retries only within one call; this module makes one attempt per URL
  and leaves backoff to the outbox, which also keeps the per-recipient delivery record.
- Socket timeouts: every Apprise service waits 4 s for an answer by default (its
  ``socket_read_timeout``, ``rto`` in the URL), whatever ``timeout`` the call is given.  A
  receiver slower than that would get the message and still count as failed, and get it
  again at each retry.  ``send`` gives each service its own ``timeout`` as connect and read
  timeout, unless the URL sets ``cto`` or ``rto`` itself.
- Secrets: Apprise URLs carry passwords and tokens, in the user part or the query string.
  Nothing here logs or returns an URL except as ``url(privacy=True)`` cut down to scheme
  and host by ``watcher.logs.redact_url``, or only its scheme when it cannot be parsed.
  Each failed attempt is a debug line; the outbox says once when a recipient's delivery
  starts failing and once when it works again.

Idempotency key: the outbox passes one per message (stable across retries and restarts).
Mail carries it as its ``Message-ID`` (``<KEY@watcher>``) and in ``X-Watcher-Notice``;
services with HTTP headers (``json://``, ``xml://``, ``form://``) get ``Idempotency-Key``
and ``X-Watcher-Notice``.  A receiver that deduplicates on them drops the repeat that a
crash between the send and its record can cause.  Apprise makes every mail's Message-ID
itself (``make_msgid`` in its email plugin); this module replaces that one function with
one that returns the key of the send in progress (a context variable, which Apprise
carries into its worker threads) and Apprise's own value otherwise.

HTML or text: the HTML body goes where it is the service's own format (mail, or any
service whose URL says ``format=html``); everywhere else the hand-written plain text goes,
which reads better than Apprise's conversion of the HTML.  Apprise's ``async_notify`` runs
the blocking network work in its own thread pool, so the event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apprise

from watcher.logs import redact_url
from watcher.notify.render import Message

__all__ = ["SendResult", "channel_of", "mask_url", "send"]

log = logging.getLogger(__name__)

_GRACE_SECONDS = 5.0
_HEADER_SCHEMES = frozenset({"json", "jsons", "xml", "xmls", "form", "forms"})
_MESSAGE_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("watcher_message_id", default=None)


def _install_message_id() -> None:
    """Let the send in progress choose the Message-ID of Apprise's mail (see the module doc)."""
    try:
        from apprise.plugins.email import base as email_base
    except ImportError:  # pragma: no cover - an Apprise without the email plugin
        return
    original: Any = getattr(email_base, "make_msgid")  # noqa: B009 (not re-exported by apprise)
    if getattr(original, "watcher", False):
        return

    def make_msgid(*args: Any, **kwargs: Any) -> str:
        chosen = _MESSAGE_ID.get()
        return chosen if chosen else str(original(*args, **kwargs))

    make_msgid.watcher = True  # type: ignore[attr-defined]
    setattr(email_base, "make_msgid", make_msgid)  # noqa: B010


_install_message_id()


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one ``send``.

    ``channel`` is the scheme of the URL that delivered (None when nothing did); ``error``
    lists each URL's failure, secrets masked.
    """

    ok: bool
    retryable: bool
    channel: str | None
    error: str | None


async def send(urls: Sequence[str], message: Message, *, timeout: float = 30,
               idempotency_key: str | None = None) -> SendResult:
    """Deliver ``message`` through the first of ``urls`` that works.

    ``idempotency_key``, when given, goes with the message where the channel can carry it.

    ``timeout`` bounds each URL's attempt, not the whole call: a channel that hangs must
    not use up the time its fallback needs.  The worst case is ``len(urls) * timeout``.
    """
    if not urls:
        return SendResult(ok=False, retryable=False, channel=None, error="no notification URLs")
    errors: list[str] = []
    retryable = False
    for url in urls:
        outcome = await _send_one(url, message, timeout, idempotency_key)
        if outcome.ok:
            if errors:
                log.info("delivered through fallback %s after: %s", outcome.channel, "; ".join(errors))
            return outcome
        retryable = retryable or outcome.retryable
        errors.append(outcome.error or "failed")
    return SendResult(ok=False, retryable=retryable, channel=None, error="; ".join(errors))


def channel_of(url: str) -> str | None:
    """The scheme of an Apprise URL (``mailto``, ``json``...), or None if it has none."""
    scheme, sep, _ = url.partition("://")
    scheme = scheme.strip().lower()
    return scheme if sep and scheme.replace("+", "").replace("-", "").isalnum() else None


def mask_url(url: str) -> str:
    """An URL safe to log: Apprise's own privacy form, or only its scheme if unparseable."""
    plugin: Any = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is not None:
        return redact_url(str(plugin.url(privacy=True)))
    return f"{channel_of(url) or 'unknown'}://..."


class _Service:
    """One Apprise URL made ready to send: its plugin (throttle off, timeouts set) in an
    ``Apprise`` of its own.

    Building these costs more than a send to a local receiver (Apprise's constructor looks
    its translations up on disk each time, the URL is parsed again), so they are kept and
    reused (``_take``/``_give``): one object serves one send at a time, and only what a send
    changes is reset before the next: the idempotency headers, back to the URL's own.
    """

    __slots__ = ("base_headers", "channel", "manager", "plugin", "prefers_html", "shown")

    def __init__(self, url: str, plugin: Any, timeout: float) -> None:
        plugin.request_rate_per_sec = 0
        _set_timeouts(plugin, url, timeout)
        self.plugin = plugin
        self.channel = channel_of(url)
        self.shown = redact_url(str(plugin.url(privacy=True)))
        self.prefers_html = _prefers_html(plugin)
        self.manager = apprise.Apprise(asset=_ASSET)
        self.manager.add(plugin)
        headers = getattr(plugin, "headers", None)
        self.base_headers = dict(headers) if isinstance(headers, dict) else None

    def mark(self, idempotency_key: str | None) -> None:
        """The headers of this send: the URL's own, plus the key when there is one."""
        headers = getattr(self.plugin, "headers", None)
        if not isinstance(headers, dict) or self.base_headers is None:
            return
        headers.clear()
        headers.update(self.base_headers)
        if idempotency_key:
            headers["X-Watcher-Notice"] = idempotency_key
            if self.channel in _HEADER_SCHEMES:
                headers["Idempotency-Key"] = idempotency_key


_ASSET = apprise.AppriseAsset(app_id="watcher", app_desc="watcher helpdesk notices")
_IDLE: OrderedDict[tuple[str, float], list[_Service]] = OrderedDict()
_IDLE_LOCK = threading.Lock()
_IDLE_URLS = 1024  # URLs whose services are kept (least recently used dropped first)
_IDLE_PER_URL = 8  # idle services kept per URL: the notifier's concurrency


def _take(url: str, timeout: float) -> _Service | None:
    """An idle service for ``url``, or a new one; None when Apprise cannot parse the URL."""
    with _IDLE_LOCK:  # event loops in other threads (tests, the report's sender) share the pool
        idle = _IDLE.get((url, timeout))
        if idle:
            _IDLE.move_to_end((url, timeout))
            return idle.pop()
    plugin: Any = apprise.Apprise.instantiate(url, asset=_ASSET, suppress_exceptions=True)
    return _Service(url, plugin, timeout) if plugin is not None else None


def _give(url: str, timeout: float, service: _Service) -> None:
    """Keep ``service`` for the next send to ``url`` (after its send has fully ended)."""
    with _IDLE_LOCK:
        idle = _IDLE.setdefault((url, timeout), [])
        _IDLE.move_to_end((url, timeout))
        if len(idle) < _IDLE_PER_URL:
            idle.append(service)
        while len(_IDLE) > _IDLE_URLS:
            _IDLE.popitem(last=False)


async def _send_one(url: str, message: Message, timeout: float, idempotency_key: str | None = None
                    ) -> SendResult:
    service = _take(url, timeout)
    if service is None:
        shown = f"{channel_of(url) or 'unknown'}://..."
        log.debug("not a valid Apprise URL: %s", shown)
        return SendResult(ok=False, retryable=False, channel=None,
                          error=f"{shown}: not a valid Apprise URL")
    outcome, finished = await _send_with(service, message, timeout, idempotency_key)
    if finished:  # a send cut off (timed out, cancelled) may still run in Apprise's thread: not reused
        _give(url, timeout, service)
    return outcome


async def _send_with(service: _Service, message: Message, timeout: float, idempotency_key: str | None
                     ) -> tuple[SendResult, bool]:
    """The outcome, and whether the send has ended (so ``service`` may serve the next one)."""
    channel, shown = service.channel, service.shown
    as_html = message.html is not None and service.prefers_html
    body = message.html if as_html and message.html is not None else message.text
    body_format = apprise.NotifyFormat.HTML if as_html else apprise.NotifyFormat.TEXT
    service.mark(idempotency_key)
    token = _MESSAGE_ID.set(f"<{idempotency_key}@watcher>") if idempotency_key else None
    extra: dict[str, Any] = {}
    if message.attachments:
        from apprise.attachment import memory

        in_memory: Any = memory.AttachMemory
        extra["attach"] = apprise.AppriseAttachment(
            [in_memory(content=data, name=name, mimetype=mime) for name, mime, data in message.attachments])
    try:
        async with asyncio.timeout(timeout + _GRACE_SECONDS):
            result = await service.manager.async_notify(body=body, title=message.subject,
                                                        body_format=body_format, timeout=timeout, **extra)
    except TimeoutError:
        log.debug("sending through %s timed out after %.1fs", shown, timeout)
        return SendResult(ok=False, retryable=True, channel=channel,
                          error=f"{shown}: timed out after {timeout:g}s"), False
    finally:
        if token is not None:
            _MESSAGE_ID.reset(token)
    try:
        if result:
            return SendResult(ok=True, retryable=False, channel=channel, error=None), True
        detail = _problem(result)
    finally:
        close = getattr(result, "close", None)
        if callable(close):
            close()
    log.debug("sending through %s failed: %s", shown, detail)
    return SendResult(ok=False, retryable=True, channel=channel, error=f"{shown}: {detail}"), True


def _set_timeouts(plugin: Any, url: str, timeout: float) -> None:
    """Give the service ``timeout`` to connect and to answer, where the URL does not choose.

    Mail plugins use the connect timeout as the SMTP session's socket timeout; web services
    pass both to ``requests``.
    """
    parsed = apprise.URLBase.parse_url(url, verify_host=False)  # type: ignore[no-untyped-call]
    chosen = set(parsed.get("qsd", {})) if isinstance(parsed, dict) else set()
    if "cto" not in chosen:
        plugin.socket_connect_timeout = float(timeout)
    if "rto" not in chosen:
        plugin.socket_read_timeout = float(timeout)


def _prefers_html(plugin: Any) -> bool:
    """True where HTML is what the service shows: its default format or the URL's choice."""
    resolve = getattr(plugin, "resolve_format", None)
    preferred = resolve(None) if callable(resolve) else plugin.notify_format
    if isinstance(preferred, list | tuple):
        preferred = preferred[0] if preferred else None
    return bool(preferred == apprise.NotifyFormat.HTML)


def _problem(result: Any) -> str:
    """The last warning Apprise recorded for this attempt (its messages carry no secrets)."""
    status = getattr(getattr(result, "status", None), "name", None)
    logs = getattr(result, "logs", None)
    entries: Iterable[Any] = logs() if callable(logs) else ()
    last = None
    for entry in entries:
        if getattr(entry, "level", "") in ("WARNING", "ERROR", "CRITICAL"):
            last = getattr(entry, "message", None)
    parts = [p for p in (f"status {status.lower()}" if status else None, last) if p]
    return ", ".join(parts) or "delivery failed"
