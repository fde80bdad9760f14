"""Replay of recorded request/response pairs, for ticket systems that cannot run here.

Zammad, GLPI and Jira Service Management are not in Debian and need services of their own
(Elasticsearch, a PHP stack, Atlassian's cloud), so their tests use exchanges written from
each system's public API documentation (the fixture names the documentation and its
version).  The server answers the exchanges in order over real HTTP and checks that each
request is the one recorded: method, path, the recorded query parameters (or patterns, in
``query_re``, for values that depend on the time) and headers, and
the JSON body exactly.  Anything else is answered 599 and listed in ``errors``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from tests.servers import free_port

FIXTURES = Path(__file__).parent / "fixtures" / "sinks"


def load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((FIXTURES / f"{name}.yaml").read_text(encoding="utf-8"))
    return doc


class Recorded:
    def __init__(self, exchanges: list[dict[str, Any]]) -> None:
        self.exchanges = exchanges
        self.pos = 0
        self.errors: list[str] = []
        self.received: list[dict[str, Any]] = []
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Recorded:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def done(self) -> bool:
        return self.pos == len(self.exchanges)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        got = {"method": request.method, "path": request.path, "query": dict(request.query),
               "headers": dict(request.headers), "body": raw}
        self.received.append(got)
        if self.pos >= len(self.exchanges):
            self.errors.append(f"unexpected request {request.method} {request.path_qs}")
            return web.Response(status=599)
        exchange = self.exchanges[self.pos]
        self.pos += 1
        want = exchange["request"]
        problems = []
        if (request.method, request.path) != (want["method"], want["path"]):
            problems.append(f"{request.method} {request.path} instead of {want['method']} {want['path']}")
        for key, value in (want.get("query") or {}).items():
            if request.query.get(key) != str(value):
                problems.append(f"query {key}={request.query.get(key)!r}, recorded {value!r}")
        for key, pattern in (want.get("query_re") or {}).items():
            if not re.fullmatch(pattern, request.query.get(key, "")):
                problems.append(f"query {key}={request.query.get(key)!r} does not match {pattern!r}")
        for key, value in (want.get("headers") or {}).items():
            if request.headers.get(key) != value:
                problems.append(f"header {key}: {request.headers.get(key)!r}, recorded {value!r}")
        if "json" in want:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            if body != want["json"]:
                problems.append(f"body {body!r}, recorded {want['json']!r}")
        if "form" in want:
            form = {k: v for k, v in (await request.post()).items()}
            if form != want["form"]:
                problems.append(f"form {form!r}, recorded {want['form']!r}")
        if problems:
            self.errors.append(f"exchange {self.pos} ({exchange.get('step')}): " + "; ".join(problems))
            return web.Response(status=599, text="; ".join(problems))
        answer = exchange["response"]
        if "json" in answer:
            return web.json_response(answer["json"], status=answer["status"])
        return web.Response(status=answer["status"], text=answer.get("text", ""))
