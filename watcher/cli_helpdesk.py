"""``watcher calls|call|escalate|office-answer|advice``: the agent's commands, over the running
service's JSON API (the same endpoints the console uses), so a change goes through the
inbox like any other operation and the CLI never touches the database behind the engine.

The service is found at ``--url`` (default: ``listen`` of watcher.yaml); the API credential
is taken from watcher.yaml (``auth.api`` or ``auth.default``: bearer or basic), or a bearer
token from ``--token`` / ``WATCHER_TOKEN``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from watcher.config import Config

COMMANDS = ("calls", "call", "escalate", "office-answer", "advice")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    def common(p: argparse.ArgumentParser) -> None:
        config_arg(p)
        p.add_argument("--url", help="the service (default http://LISTEN of watcher.yaml)")
        p.add_argument("--token", help="a bearer token for the API (default $WATCHER_TOKEN or watcher.yaml)")

    ls = sub.add_parser("calls", help="the call list: every call owed, resolved tickets included")
    common(ls)
    ls.add_argument("--client")
    ls.add_argument("--json", action="store_true", help="print the JSON rows")
    call = sub.add_parser("call", help="record a call to a person waiting for one")
    common(call)
    call.add_argument("ticket")
    call.add_argument("--person")
    call.add_argument("--outcome", choices=("reached", "left_message", "no_answer"), default="reached")
    call.add_argument("--note")
    call.add_argument("--by", default=os.environ.get("USER") or "agent")
    esc = sub.add_parser("escalate", help="hand a ticket to the administrators or the service team")
    common(esc)
    esc.add_argument("ticket")
    esc.add_argument("--to", choices=("admins", "service"))
    esc.add_argument("--reason", required=True)
    esc.add_argument("--by", default=os.environ.get("USER") or "agent")
    office = sub.add_parser("office-answer", help="record the office's answer to the call task")
    common(office)
    office.add_argument("ticket")
    office.add_argument("answer", choices=("planned", "failure", "no_answer"))
    office.add_argument("--note")
    office.add_argument("--by", default=os.environ.get("USER") or "agent")
    adv = sub.add_parser("advice", help="confirm the cause of a filling share (advise the owner) or dismiss it")
    common(adv)
    adv.add_argument("ticket")
    adv.add_argument("action", choices=("confirm", "dismiss"))
    adv.add_argument("--person")
    adv.add_argument("--by", default=os.environ.get("USER") or "admin")


def _auth_header(config: Config, token: str | None) -> dict[str, str]:
    token = token or os.environ.get("WATCHER_TOKEN")
    if token:
        return {"Authorization": f"Bearer {token}"}
    auth = config.service.auth.get("api") or config.service.auth.get("default")
    if auth is None:
        return {}
    if auth.kind == "bearer":
        return {"Authorization": f"Bearer {auth.token}"}
    if auth.kind == "basic":
        pair = base64.b64encode(f"{auth.username}:{auth.password}".encode()).decode()
        return {"Authorization": f"Basic {pair}"}
    return {}


def _request(args: argparse.Namespace, config: Config, method: str, path: str,
             body: dict[str, Any] | None = None) -> tuple[int, Any]:
    base = (args.url or f"http://{config.service.listen}").rstrip("/")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json", **_auth_header(config, args.token)})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, {"error": exc.reason}


def run(config: Config, args: argparse.Namespace) -> int:
    try:
        return _run(config, args)
    except urllib.error.URLError as exc:
        print(f"error: the service does not answer: {exc.reason}", file=sys.stderr)
        return 1


def _run(config: Config, args: argparse.Namespace) -> int:
    if args.command == "calls":
        query = f"?client={quote(args.client)}" if args.client else ""
        status, doc = _request(args, config, "GET", "/api/v1/calls" + query)
        if status != 200:
            print(f"error: {status}: {doc}", file=sys.stderr)
            return 1
        rows = doc["calls"]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
            return 0
        for r in rows:
            who = r["name"] or r["person"] or "?"
            extra = " · ".join(x for x in (r.get("preferred_time") and f"best: {r['preferred_time']}",
                                           r.get("note"), r.get("reason")) if x)
            print(f"{'NOW ' if r['call_now'] else '    '}{r['ticket']} [{r['ticket_status']}] {r['kind']}: {who} "
                  f"tel. {r.get('phone') or '-'} ({r.get('site_name') or r.get('site') or r['client']})"
                  + (f" · {extra}" if extra else ""))
        if not rows:
            print("no calls owed")
        return 0
    tid = quote(args.ticket, safe="")
    if args.command == "call":
        path, body = f"/api/v1/tickets/{tid}/calls", {"person": args.person, "outcome": args.outcome,
                                                     "note": args.note, "by": args.by}
    elif args.command == "escalate":
        path, body = f"/api/v1/tickets/{tid}/escalate", {"to": args.to, "reason": args.reason, "by": args.by}
    elif args.command == "office-answer":
        path, body = f"/api/v1/tickets/{tid}/office-answer", {"answer": args.answer, "note": args.note,
                                                             "by": args.by}
    else:
        path, body = f"/api/v1/tickets/{tid}/advice", {"action": args.action, "person": args.person, "by": args.by}
    status, doc = _request(args, config, "POST", path, {k: v for k, v in body.items() if v is not None})
    if status != 200:
        print(f"error: {status}: {(doc or {}).get('error', doc)}", file=sys.stderr)
        return 1
    print(json.dumps({"id": doc["id"], "status": doc["status"], "escalation": doc.get("escalation"),
                      "callbacks": doc.get("callbacks"), "tasks": doc.get("tasks")}, ensure_ascii=False, indent=2))
    return 0
