"""Real servers for tests that deliver notices: a local SMTP server and an HTTP receiver.

Both run in their own thread with their own event loop or socket server, so the same
object works from sync tests and from async tests (their loop is never blocked by the
server, and ``wait_for`` has an async twin ``await_for``).  Both are context managers.

Apprise URLs that reach them (checked to deliver for real by tests/test_notify_send.py):

- ``mailto://127.0.0.1:PORT?from=watcher@example.com&to=ADDR``: plain SMTP, no TLS, no
  login (``mailto`` is Apprise's insecure scheme; ``mailtos`` would start TLS);
- ``json://127.0.0.1:PORT/PATH``: a JSON POST of ``{"version", "title", "message",
  "attachments", "type"}``.

``smtp_url`` and ``json_url`` build them.  Import as ``from tests.servers import ...``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar
from urllib.parse import quote

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class _Inbox(Generic[T]):
    """A thread-safe list that tests can wait on."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._items: list[T] = []
        self._changed = threading.Condition()

    def add(self, item: T) -> None:
        with self._changed:
            self._items.append(item)
            self._changed.notify_all()

    def snapshot(self) -> list[T]:
        with self._changed:
            return list(self._items)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def wait_for(self, n: int, timeout: float) -> list[T]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"expected {n} {self._what} within {timeout}s, got {len(self._items)}")
                self._changed.wait(left)
            return list(self._items)


# ---------------------------------------------------------------- SMTP


class _SmtpHandler:
    def __init__(self, inbox: _Inbox[EmailMessage]) -> None:
        self._inbox = inbox

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        message["X-MailFrom"] = envelope.mail_from or ""
        message["X-RcptTo"] = ", ".join(envelope.rcpt_tos)
        self._inbox.add(message)
        return "250 Message accepted for delivery"


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 that keeps every message it receives.

    ``messages`` are ``email.message.EmailMessage`` objects (parsed with the default policy,
    so headers are decoded: ``msg["Subject"]`` is the real subject), with the envelope added
    as ``X-MailFrom`` and ``X-RcptTo`` headers.  ``text_body``/``html_body`` read the parts.
    ``stop()`` and ``start()`` again on the same port simulate a mail server that is down.
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._inbox: _Inbox[EmailMessage] = _Inbox("mail message(s)")
        self._controller: Controller | None = None

    def start(self) -> Self:
        if self._controller is None:
            controller = Controller(_SmtpHandler(self._inbox), hostname=self.host, port=self.port,
                                    ready_timeout=10)
            controller.start()
            self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            controller, self._controller = self._controller, None
            controller.stop()

    @property
    def running(self) -> bool:
        return self._controller is not None

    @property
    def messages(self) -> list[EmailMessage]:
        return self._inbox.snapshot()

    def clear(self) -> None:
        self._inbox.clear()

    def wait_for(self, n: int = 1, timeout: float = 10) -> list[EmailMessage]:
        """Block until at least ``n`` messages arrived; TimeoutError otherwise."""
        return self._inbox.wait_for(n, timeout)

    async def await_for(self, n: int = 1, timeout: float = 10) -> list[EmailMessage]:
        return await asyncio.to_thread(self._inbox.wait_for, n, timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def text_body(message: EmailMessage) -> str:
    """The plain-text part of a message (the whole body when it is not multipart), with ``\\n`` lines."""
    part = message.get_body(preferencelist=("plain",))
    return "" if part is None else _lines(part.get_content())


def html_body(message: EmailMessage) -> str | None:
    """The HTML part of a message, or None when it has none."""
    part = message.get_body(preferencelist=("html",))
    return None if part is None else _lines(part.get_content())


def _lines(content: object) -> str:
    return str(content).replace("\r\n", "\n")


# ---------------------------------------------------------------- HTTP


class HttpReceiver:
    """A tiny HTTP server on 127.0.0.1 that keeps the JSON bodies POSTed to it.

    ``requests`` are ``{"path", "headers", "body"}`` dicts (``body`` parsed JSON, or the
    raw text when it is not JSON); ``bodies`` are only the bodies.  ``status`` is the answer
    it gives (set it to 500 to play a failing notifier: those requests are still recorded
    in ``requests`` but not in ``bodies``, which holds what was accepted).  ``stop()`` and
    ``start()`` again on the same port play a notifier that is down.  ``delay`` seconds pass
    between reading a request and answering it (a slow receiver: the body is already in).
    """

    def __init__(self, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self.status = 200
        self.delay = 0.0
        self._requests: _Inbox[dict[str, Any]] = _Inbox("HTTP request(s)")
        self._accepted: _Inbox[Any] = _Inbox("accepted JSON bodies")
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is None:
            server = ThreadingHTTPServer((self.host, self.port), self._handler_class())
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"http-receiver-{self.port}", daemon=True)
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            server.shutdown()
            server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
                self._thread = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._requests.snapshot()

    @property
    def bodies(self) -> list[Any]:
        return self._accepted.snapshot()

    def clear(self) -> None:
        self._requests.clear()
        self._accepted.clear()

    def wait_for(self, n: int = 1, timeout: float = 10) -> list[Any]:
        """Block until at least ``n`` bodies were accepted; TimeoutError otherwise."""
        return self._accepted.wait_for(n, timeout)

    async def await_for(self, n: int = 1, timeout: float = 10) -> list[Any]:
        return await asyncio.to_thread(self._accepted.wait_for, n, timeout)

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                status = receiver.status
                receiver._requests.add({"path": self.path, "headers": dict(self.headers.items()),
                                        "body": body, "status": status})
                if 200 <= status < 300:
                    receiver._accepted.add(body)
                payload = b'{"ok": true}' if status < 300 else b'{"error": "simulated failure"}'
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_PUT = do_POST
            do_GET = do_POST  # a ping with no body (a dead man's switch URL): body ""

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler


# ---------------------------------------------------------------- Apprise URLs


def smtp_url(server: SmtpServer, to_addr: str, from_addr: str = "watcher@example.com") -> str:
    """An Apprise URL that delivers to ``to_addr`` through ``server``: plain SMTP, no TLS or login."""
    return f"mailto://{server.host}:{server.port}?from={quote(from_addr)}&to={quote(to_addr)}"


def json_url(receiver: HttpReceiver, path: str = "/notify") -> str:
    """An Apprise URL that POSTs the notice as JSON to ``receiver`` at ``path``."""
    return f"json://{receiver.host}:{receiver.port}{path}"


def wait_until(predicate: Callable[[], bool], timeout: float = 10, interval: float = 0.02) -> None:
    """Poll ``predicate`` until it is true; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
