"""``watcher silences list|delete ID`` and ``watcher maintenances list|delete ID``: the
running service's silences and maintenance windows, through its HTTP API (so the engine
lifts them in order with everything else, whichever replica answers).

The service is found at ``--url`` or at ``listen`` of watcher.yaml.  A credential, when the
API needs one, comes from the environment, never the command line (where ``ps`` shows it):
``WATCHER_TOKEN`` (bearer) or ``WATCHER_USER`` and ``WATCHER_PASSWORD`` (basic).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from watcher.config import Config


def add_parsers(sub: Any, config_arg: Any) -> None:
    for plural in ("silences", "maintenances"):
        p = sub.add_parser(plural, help=f"list or lift the running service's {plural}")
        config_arg(p)
        p.add_argument("--url", help="the service's base URL (default: http://LISTEN of watcher.yaml)")
        action = p.add_subparsers(dest="window_command", required=True)
        action.add_parser("list", help=f"the {plural} in force or to come, as JSON")
        delete = action.add_parser("delete", help="lift one now")
        delete.add_argument("id")


def _headers() -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if os.environ.get("WATCHER_TOKEN"):
        headers["Authorization"] = f"Bearer {os.environ['WATCHER_TOKEN']}"
    elif os.environ.get("WATCHER_USER"):
        pair = f"{os.environ['WATCHER_USER']}:{os.environ.get('WATCHER_PASSWORD', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    return headers


def run(config: Config, args: argparse.Namespace) -> int:
    base = (args.url or f"http://{config.service.listen}").rstrip("/")
    path = f"/api/v1/{args.command}"
    if args.window_command == "delete":
        method, path = "DELETE", f"{path}/{quote(args.id, safe='')}"
    else:
        method = "GET"
    req = urllib.request.Request(base + path, method=method, headers=_headers())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body: Any = json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except ValueError:
            message = exc.reason
        print(f"error: {method} {path}: {exc.code} {message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot reach watcher at {base}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0
