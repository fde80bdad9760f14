"""``watcher silences list|delete ID`` and ``watcher maintenances list|delete ID``: the
running service's silences and maintenance windows, through its HTTP API (so the engine
lifts them in order with everything else, whichever replica answers).

The service and the credential are found as for the helpdesk commands (watcher.cli_helpdesk):
``--url`` or ``listen`` of watcher.yaml; ``--token``, ``WATCHER_TOKEN`` or watcher.yaml's
``auth.api``/``auth.default``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
from collections.abc import Callable
from urllib.parse import quote

from watcher.cli_helpdesk import _request
from watcher.config import Config

COMMANDS = ("silences", "maintenances")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser],
                config_arg: Callable[[argparse.ArgumentParser], None]) -> None:
    for plural in COMMANDS:
        p = sub.add_parser(plural, help=f"list or lift the running service's {plural}")
        config_arg(p)
        p.add_argument("--url", help="the service (default http://LISTEN of watcher.yaml)")
        p.add_argument("--token", help="a bearer token for the API (default $WATCHER_TOKEN or watcher.yaml)")
        action = p.add_subparsers(dest="window_command", required=True)
        action.add_parser("list", help=f"the {plural} in force or to come, as JSON")
        delete = action.add_parser("delete", help="lift one now")
        delete.add_argument("id")


def run(config: Config, args: argparse.Namespace) -> int:
    path = f"/api/v1/{args.command}"
    method = "GET"
    if args.window_command == "delete":
        method, path = "DELETE", f"{path}/{quote(args.id, safe='')}"
    try:
        status, doc = _request(args, config, method, path)
    except urllib.error.URLError as exc:
        print(f"error: the service does not answer: {exc.reason}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"error: {method} {path}: {status} {(doc or {}).get('error', doc)}", file=sys.stderr)
        return 1
    print(json.dumps(doc, indent=2, ensure_ascii=False))
    return 0
