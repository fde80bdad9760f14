"""watcher: monitoring signals in, helpdesk tickets and notices out.

Commands: serve, check, replay, report, rules test (README, "Command line").
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from watcher.config import ConfigError, load_config
from watcher.model import Event, EventError, utcnow


def _config_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=None, help="watcher.yaml (default ./watcher.yaml, else ./rules.yaml "
                   "and ./inventory.yaml)")


def _log_args(p: argparse.ArgumentParser, top: bool) -> None:
    p.add_argument("--log-level", default="INFO" if top else argparse.SUPPRESS,
                   choices=("DEBUG", "INFO", "WARNING", "ERROR"), type=str.upper,
                   help="how much to log on stderr (default INFO: one line per ticket opened, escalated, planned "
                   "or resolved, and per delivery target down or back)")
    p.add_argument("--log-format", default="text" if top else argparse.SUPPRESS, choices=("text", "json"),
                   help="text for people (default), json for a log shipper (one object per line)")


def _version() -> str:
    try:
        return version("watcher")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree without installing
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="watcher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"watcher {_version()}")
    _log_args(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add = sub.add_parser

    def add_parser(name: str, **kw: Any) -> argparse.ArgumentParser:
        p = _add(name, **kw)
        _log_args(p, top=False)  # `watcher serve --log-level debug` works as well as before the command
        return p

    sub.add_parser = add_parser  # type: ignore[method-assign]
    serve = sub.add_parser("serve", help="run the service")
    _config_arg(serve)
    serve.add_argument("--listen", help="HOST:PORT (default from watcher.yaml, else 127.0.0.1:8080)")
    serve.add_argument("--db", help="database URL (sqlite:///path or postgresql+psycopg://...)")
    serve.add_argument("--snmp-listen", help="HOST:PORT for SNMP traps, or 'off'")
    serve.add_argument("--workers", type=int, help="worker processes taking requests (default 1)")
    serve.add_argument("--demo", action="store_true",
                       help="play a scripted morning (an office offline, a share filling, a mailbox over quota, "
                       "an office answering 'planned') into the service, on a fresh temporary database unless "
                       "--db is given")
    check = sub.add_parser("check", help="validate the configuration files, listing every error")
    _config_arg(check)
    rp = sub.add_parser("replay", help="run the engine on a recorded stream, print JSON")
    _config_arg(rp)
    rp.add_argument("stream", type=Path, help="a JSON-lines file of events and operations (docs/replay.md)")
    rep = sub.add_parser("report", help="the monthly report for a client's IT coordinator")
    _config_arg(rep)
    rep.add_argument("--client", required=True, help="the client's id in the inventory")
    rep.add_argument("--month", required=True, help="YYYY-MM")
    rep.add_argument("--format", choices=("text", "html", "json", "pdf"), default="text")
    rep.add_argument("--output", "-o", type=Path, help="write to this file (a PDF needs one)")
    rep.add_argument("--db", help="database URL (default from watcher.yaml)")
    rep.add_argument("--from-replay", type=Path, help="a `watcher replay` output instead of the database")
    rep.add_argument("--stream", type=Path, help="with --from-replay: the replayed stream, for share usage")
    rep.add_argument("--send", action="store_true",
                     help="store the report and queue its mail to the coordinator (once per client and month)")
    sub.add_parser("hash-password", help="read a password on stdin, print its Argon2 hash for console: users: "
                   "in watcher.yaml")
    rules = sub.add_parser("rules", help="rule tools")
    rsub = rules.add_subparsers(dest="rules_command", required=True)
    rt = rsub.add_parser("test", help="what the rules would do with one event, and why")
    _config_arg(rt)
    rt.add_argument("event", type=Path, help="a JSON file with one normalized event or a list of them")
    from watcher import cli_helpdesk

    cli_helpdesk.add_parsers(sub, _config_arg)
    from watcher import cli_windows

    cli_windows.add_parsers(sub, _config_arg)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from watcher.logs import setup

    setup(args.log_level, args.log_format)
    try:
        return _main(args)
    except BrokenPipeError:
        # the reader went away (`watcher replay ... | head`): not an error of ours; stdout is
        # pointed at /dev/null so that the interpreter's final flush does not complain again
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(args: argparse.Namespace) -> int:
    if args.command == "hash-password":
        from watcher.api.console_auth import hash_password

        if sys.stdin.isatty():
            import getpass

            password = getpass.getpass("password: ")
        else:
            password = sys.stdin.readline().rstrip("\n")
        if not password:
            print("error: an empty password", file=sys.stderr)
            return 2
        print(hash_password(password))
        return 0
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        errors = getattr(exc, "errors", [exc])
        for err in errors:
            print(f"error: {err}", file=sys.stderr)
        if len(errors) > 1:
            print(f"{len(errors)} errors", file=sys.stderr)
        return 2
    if args.command == "check":
        inv = config.inventory
        print(f"ok: {config.service.path}")
        print(f"  rules: {len(config.rules.rules)} from {config.service.rules_path}")
        print(f"  inventory: {len(inv.clients)} clients, {len(inv.sites)} sites, {len(inv.people)} people, "
              f"{len(inv.shares)} shares, {len(inv.mailboxes)} mailboxes from {config.service.inventory_path}")
        if config.service.feeds:
            print(f"  feeds: {len(config.service.feeds)} ({', '.join(f.name for f in config.service.feeds)})")
        if config.service.heartbeat:
            print(f"  heartbeat: every {config.service.heartbeat.interval:g}s while the engine is healthy")
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
    from watcher import cli_helpdesk, cli_windows

    if args.command in cli_windows.COMMANDS:
        return cli_windows.run(config, args)

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

    demo_dir = None
    if args.demo:
        from watcher import demo

        config, demo_dir = demo.prepare(config, args.db)
    listen = args.listen or config.service.listen
    try:
        return serve(config, listen=args.listen, db=None if args.demo else args.db, snmp_listen=args.snmp_listen,
                     workers=None if args.demo else args.workers, demo=args.demo)
    except OSError as exc:
        if exc.errno in (errno.EADDRINUSE, errno.EACCES, errno.EADDRNOTAVAIL):
            print(f"error: cannot listen on {listen}: {os.strerror(exc.errno or 0).lower()} "
                  "(another watcher running? choose another with --listen HOST:PORT)", file=sys.stderr)
            return 2
        raise
    finally:
        import shutil

        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if demo_dir:
            shutil.rmtree(demo_dir, ignore_errors=True)


def _report(config: object, args: argparse.Namespace) -> int:
    import re

    from watcher.config import Config
    from watcher.report import build, recommend, render, samples_from_events

    assert isinstance(config, Config)
    client = config.inventory.clients.get(args.client)
    if client is None:
        print(f"error: no client {args.client!r} in {config.service.inventory_path}", file=sys.stderr)
        return 2
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        print("error: --month: expected YYYY-MM", file=sys.stderr)
        return 2
    if args.format == "pdf" and not args.output:
        print("error: --format pdf needs --output FILE", file=sys.stderr)
        return 2
    if args.send and args.from_replay:
        print("error: --send works on the database, not on --from-replay", file=sys.stderr)
        return 2
    if args.from_replay:
        tickets = json.loads(args.from_replay.read_text(encoding="utf-8"))["tickets"]
        samples = []
        if args.stream:
            with args.stream.open(encoding="utf-8") as fh:
                samples = samples_from_events(json.loads(line) for line in fh if '_used_bytes"' in line)
        rep = build(tickets, client, args.month, samples, rules=recommend.rules_for(config.service.report))
        html = render.render_html(rep, client) if args.format in ("html", "pdf") else ""
        pdf = render.render_pdf(rep, client, html) if args.format == "pdf" else b""
    else:
        from watcher.report import send
        from watcher.store import Store

        store = Store(args.db or config.service.db_url)
        try:
            if args.send and send.exists(store, client.id, args.month):
                print(f"report {args.month} for {client.id}: already made and sent before; not sent again",
                      file=sys.stderr)
                return 0
            made = send.make(store, config, client, args.month, utcnow(), pdf=args.send or args.format == "pdf",
                             html=args.send or args.format in ("html", "pdf"))
            rep, html, pdf = made.report, made.html, made.pdf
            if args.send:
                if client.coordinator is None:
                    print(f"error: client {client.id!r} has no coordinator to send to", file=sys.stderr)
                    return 2
                got = send.save(store, client, args.month, made, time.time())
                print(f"report {args.month} for {client.id}: " + (
                    f"stored as R-{got}, its mail to the coordinator is queued (the service delivers it)"
                    if got is not None else "already made and sent before; not sent again"), file=sys.stderr)
        finally:
            store.close()
    if args.format == "json":
        out: str | bytes = render.render_json(rep) + "\n"
    elif args.format == "html":
        out = html
    elif args.format == "pdf":
        out = pdf
    else:
        out = render.render_text(rep, client)
    if args.output:
        if isinstance(out, bytes):
            args.output.write_bytes(out)
        else:
            args.output.write_text(out, encoding="utf-8")
    elif not args.send or args.format != "text":
        print(out if isinstance(out, str) else "", end="")
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
