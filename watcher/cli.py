"""The ``watcher`` command: serve, check, replay, rules test (CONTRACT section 7)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

from watcher.config import ConfigError, load_config
from watcher.model import Event, EventError, utcnow


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="watcher.yaml (default ./watcher.yaml, else ./rules.yaml "
                   "and ./inventory.yaml)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watcher", description=__doc__)
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service")
    _config_arg(serve)
    serve.add_argument("--listen", help="HOST:PORT (default from watcher.yaml, else 127.0.0.1:8080)")
    serve.add_argument("--db", help="database URL (sqlite:///path or postgresql+psycopg://...)")
    serve.add_argument("--snmp-listen", help="HOST:PORT for SNMP traps, or 'off'")
    serve.add_argument("--workers", type=int, help="worker processes taking requests (default 1)")
    check = sub.add_parser("check", help="validate the configuration files")
    _config_arg(check)
    rp = sub.add_parser("replay", help="run the engine on a recorded stream, print JSON")
    _config_arg(rp)
    rp.add_argument("stream", type=Path)
    rep = sub.add_parser("report", help="the monthly report for a client's IT coordinator")
    _config_arg(rep)
    rep.add_argument("--client", required=True)
    rep.add_argument("--month", required=True, help="YYYY-MM")
    rep.add_argument("--format", choices=("text", "html", "json"), default="text")
    rep.add_argument("--db", help="database URL (default from watcher.yaml)")
    rep.add_argument("--from-replay", type=Path, help="a `watcher replay` output instead of the database")
    rules = sub.add_parser("rules", help="rule tools")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    rt = rsub.add_parser("test", help="what the rules would do with one event, and why")
    _config_arg(rt)
    rt.add_argument("event", type=Path)
    from watcher import cli_helpdesk

    cli_helpdesk.add_parsers(sub, _config_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("alembic", "apprise"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        inv = config.inventory
        print(f"ok: {config.service.path}")
        print(f"  rules: {len(config.rules.rules)} from {config.service.rules_path}")
        print(f"  inventory: {len(inv.clients)} clients, {len(inv.sites)} sites, {len(inv.people)} people, "
              f"{len(inv.shares)} shares, {len(inv.mailboxes)} mailboxes from {config.service.inventory_path}")
        return 0
    if args.command == "replay":
        from watcher.replay import run

        if not args.stream.exists():
            print(f"error: {args.stream}: no such file", file=sys.stderr)
            return 2
        try:
            return run(config, args.stream, sys.stdout)
        except OSError as exc:
            print(f"error: {args.stream}: {exc}", file=sys.stderr)
            return 2
    if args.command == "rules":
        return _rules_test(config, args.event)
    if args.command == "report":
        return _report(config, args)
    from watcher import cli_helpdesk

    if args.command in cli_helpdesk.COMMANDS:
        return cli_helpdesk.run(config, args)
    if args.workers is not None and args.workers < 1:
        print("error: --workers: at least 1", file=sys.stderr)
        return 2
    metrics_dir = None
    if (args.workers or config.service.workers) > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # prometheus_client reads this when it is first imported, so it is set here, before
        # the service's modules load: every worker then writes its metrics where /metrics adds them up
        from watcher.workers import metrics_dir as new_metrics_dir

        metrics_dir = new_metrics_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from watcher.app import serve

    try:
        return serve(config, listen=args.listen, db=args.db, snmp_listen=args.snmp_listen, workers=args.workers)
    finally:
        if metrics_dir:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


def _report(config: object, args: argparse.Namespace) -> int:
    import dataclasses
    import re

    from watcher import report
    from watcher.config import Config

    assert isinstance(config, Config)
    client = config.inventory.clients.get(args.client)
    if client is None:
        print(f"error: no client {args.client!r} in {config.service.inventory_path}", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        print("error: --month: expected YYYY-MM", file=sys.stderr)
        return 2
    if args.from_replay:
        tickets = json.loads(args.from_replay.read_text(encoding="utf-8"))["tickets"]
    else:
        from watcher.store import Store

        store = Store(args.db or config.service.db_url)
        try:
            tickets = store.list_tickets(client=client.id, limit=1_000_000)
        finally:
            store.close()
    rep = report.build(tickets, client, args.month)
    if args.format == "json":
        print(json.dumps(dataclasses.asdict(rep), ensure_ascii=False, indent=2))
    elif args.format == "html":
        print(report.render_html(rep))
    else:
        print(report.render_text(rep), end="")
    return 0


def _rules_test(config: object, path: Path) -> int:
    from watcher.config import Config
    from watcher.rules import Engine

    assert isinstance(config, Config)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        items = raw if isinstance(raw, list) else [raw]
        events = [Event.from_dict(item, received_at=utcnow()) for item in items]
    except (OSError, ValueError, EventError) as exc:
        print(f"error: {path}: {exc}", file=sys.stderr)
        return 2
    engine = Engine(config.rules, config.inventory)
    out = [engine.explain(ev) for ev in events]
    print(json.dumps(out if len(out) > 1 else out[0], indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
