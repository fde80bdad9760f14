"""Storage through SQLAlchemy: SQLite (WAL) by default, PostgreSQL by URL.

The store is synchronous SQLAlchemy Core (the async service calls it in a worker thread):
a handful of statements on a few tables, each write path batched.  Every method is one
transaction, so what it writes is all there or none of it is.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine as SAEngine
from sqlalchemy import bindparam, create_engine, event, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.pool import QueuePool

from watcher.model import EngineDelta, Notice, OutboxKind, Ticket, format_time
from watcher.store.schema import engine_parts, engine_state, inbox, link_uses, notifiers, op_results, outbox, tickets
from watcher.store.status import EngineStatus, put_status
from watcher.store.windows import windowed


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


_SQLITE_APPEND = ("INSERT INTO inbox (kind, source, occ_key, received_at, payload) VALUES {} "
                  "ON CONFLICT (occ_key) DO NOTHING RETURNING seq, occ_key")
_PART_KEYS = ("alerts", "groups", "tickets")


def _part_key(kind: str, entry: Any) -> Any:
    """The key of one alert (a row whose first field is its fingerprint), group or ticket."""
    return entry[0] if kind == "alerts" else entry["gid"] if kind == "groups" else entry["id"]


ENGINE_LOCK = 0x77617463  # advisory lock ids on PostgreSQL ("watc", "watd")
INBOX_LOCK = 0x77617464
MIGRATE_LOCK = 0x77617465


class LostLeadership(Exception):
    """Another replica wrote the engine state since this one loaded it: reload, do not write."""

MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class InboxRow:
    kind: str  # event | op
    source: str
    occ_key: str
    received_at: float
    payload: str
    window_key: str = ""  # a retry of the same key within ``window`` seconds is a duplicate
    window: float = 0.0


@dataclass(frozen=True, slots=True)
class OutboxItem:
    id: int
    ticket_id: str
    recipient: str
    kind: OutboxKind
    attempts: int
    created_at: float


def _outbox_item(r: Sequence[Any]) -> OutboxItem:
    """An outbox row as the notifier takes it.  The kind is one this release or an earlier one
    wrote; a kind it does not know (a newer release's) goes on to the renderer, which finds no
    template for it and marks the row dead with that reason."""
    return OutboxItem(int(r[0]), r[1], r[2], cast(OutboxKind, r[3]), int(r[4]), float(r[5]))


def _sqlite_pragmas(dbapi_conn: Any, synchronous: str) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'FULL'}")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def migrate(engine: SAEngine) -> None:
    """Bring the schema to the newest Alembic revision (run at every start)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        # replicas or workers starting together migrate one after the other
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATE_LOCK})
        elif engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Store:
    """All persistence of the service.  Thread-safe; SQLite writes are serialised."""

    def __init__(self, url: str, sqlite_synchronous: str = "full") -> None:
        """``sqlite_synchronous``: ``full`` (default) fsyncs every commit, so a 2xx survives a
        power loss; ``normal`` survives a crash of watcher or of the OS process but may lose the
        last commits on a power loss, and is faster."""
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            # A pool that keeps connections open: closing the last connection of a WAL database
            # checkpoints and deletes the WAL, which costs fsyncs on every transaction.
            self.engine = create_engine(url, poolclass=QueuePool, pool_size=4, max_overflow=4,
                                        connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", lambda conn, _rec: _sqlite_pragmas(conn, sqlite_synchronous))
        else:
            self.engine = create_engine(url, pool_size=5, max_overflow=5, pool_pre_ping=True)
        self._write_lock = threading.Lock() if self.is_sqlite else None
        self._lead_conn: Connection | None = None
        self._lead_fd: int | None = None
        self._lead_checked = 0.0
        migrate(self.engine)

    def close(self) -> None:
        self._drop_lead()
        self.engine.dispose()

    def _begin(self) -> Any:
        return self.engine.begin()

    def _insert(self, table: Any) -> Any:
        return (sqlite.insert if self.is_sqlite else postgresql.insert)(table)

    class _Locked:
        def __init__(self, store: Store) -> None:
            self.store = store

        def __enter__(self) -> Connection:
            if self.store._write_lock:
                self.store._write_lock.acquire()
            self._ctx = self.store.engine.begin()
            try:
                conn = self._ctx.__enter__()
                if self.store.is_sqlite:
                    # Take the write lock up front: another process's write between this
                    # transaction's first read and its first write would otherwise fail it.
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                return conn
            except BaseException:
                if self.store._write_lock:
                    self.store._write_lock.release()
                raise

        def __exit__(self, *exc: Any) -> None:
            try:
                self._ctx.__exit__(*exc)
            finally:
                if self.store._write_lock:
                    self.store._write_lock.release()

    def write(self) -> Store._Locked:
        return Store._Locked(self)

    # ------------------------------------------------------------ inbox

    def append(self, rows: Sequence[InboxRow]) -> list[int | None]:
        """Store rows in one transaction; the seq of each new row, None for a duplicate."""
        if not rows:
            return []
        stmt = self._insert(inbox).on_conflict_do_nothing(index_elements=["occ_key"]).returning(
            inbox.c.seq, inbox.c.occ_key)
        with self.write() as conn:
            if not self.is_sqlite:
                # Commits in seq order: the engine reads the inbox by seq, so a lower seq must
                # never become visible after a higher one (concurrent replicas would race).
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": INBOX_LOCK})
            keys = [r.occ_key for r in rows]
            if any(r.window_key for r in rows):
                windowed(conn, self._insert, rows, keys)
            got: dict[str, int] = {}
            if self.is_sqlite:
                # One multi-row INSERT per chunk through the driver: the same statement that
                # SQLAlchemy would build, without its per-row parameter processing, which was
                # a tenth of the ingest path's CPU under a storm.
                for chunk in range(0, len(rows), 500):
                    part = rows[chunk:chunk + 500]
                    sql = _SQLITE_APPEND.format(", ".join(["(?, ?, ?, ?, ?)"] * len(part)))
                    flat = [v for r, key in zip(part, keys[chunk:chunk + 500], strict=True)
                            for v in (r.kind, r.source, key, r.received_at, r.payload)]
                    for seq, key in conn.exec_driver_sql(sql, tuple(flat)).all():
                        got[key] = seq
            else:
                params = [{"kind": r.kind, "source": r.source, "occ_key": key, "received_at": r.received_at,
                           "payload": r.payload} for r, key in zip(rows, keys, strict=True)]
                for chunk in range(0, len(params), 500):
                    for seq, key in conn.execute(stmt, params[chunk:chunk + 500]).all():
                        got[key] = seq
        out: list[int | None] = []
        for key in keys:
            out.append(got.pop(key, None))
        return out

    def read_inbox(self, after: int, limit: int) -> list[tuple[int, str, float, str]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(inbox.c.seq, inbox.c.kind, inbox.c.received_at, inbox.c.payload)
                                .where(inbox.c.seq > after).order_by(inbox.c.seq).limit(limit)).all()
        return [(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    def inbox_max(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.coalesce(func.max(inbox.c.seq), 0))).scalar_one())

    # ------------------------------------------------------------ engine batches

    def load_engine(self, name: str = "main") -> tuple[int, dict[str, Any] | None]:
        cursor, state, _ = self.load_engine_epoch(name)
        return cursor, state

    def load_engine_epoch(self, name: str = "main") -> tuple[int, dict[str, Any] | None, int]:
        """(cursor, state, epoch): the epoch fences later writes (see commit_batch).

        The state is whole again: its alerts and groups, kept as rows of their own, are put
        back in the lists an engine restores from."""
        cursor, state, epoch, _ = self.load_engine_state(name)
        return cursor, state, epoch

    def load_engine_state(self, name: str = "main") -> tuple[int, dict[str, Any] | None, int, bool]:
        """``load_engine_epoch`` plus whether the stored document still holds its alerts or
        groups inline (written whole, e.g. by an earlier release): the next commit must then
        write them all as rows before deltas can follow."""
        with self.engine.connect() as conn:
            row = conn.execute(select(engine_state.c.cursor, engine_state.c.state, engine_state.c.epoch)
                               .where(engine_state.c.name == name)).first()
            if row is None:
                return 0, None, 0, False
            state = orjson.loads(row[1])
            inline = any(state.get(kind) for kind in _PART_KEYS)
            parts = conn.execute(select(engine_parts.c.kind, engine_parts.c.data)
                                 .where(engine_parts.c.name == name).order_by(engine_parts.c.kind,
                                                                              engine_parts.c.key))
            for kind, data in parts:
                state.setdefault(kind, []).append(orjson.loads(data))
        return int(row[0]), state, int(row[2]), inline

    def engine_doc(self, name: str = "main") -> dict[str, Any]:
        """The engine's state as its leader last committed it, without the alerts, groups and
        tickets kept as rows of their own: its silences, maintenances and counters, cheap
        enough to read for a page from any worker or replica."""
        with self.engine.connect() as conn:
            row = conn.execute(select(engine_state.c.state).where(engine_state.c.name == name)).first()
        doc: dict[str, Any] = orjson.loads(row[0]) if row is not None else {}
        return doc

    def commit_batch(self, cursor: int, state: dict[str, Any] | EngineDelta, changed: Sequence[Ticket],
                     notices: Sequence[Notice], now: float, name: str = "main",
                     op_answers: dict[int, dict[str, Any]] | None = None, epoch: int | None = None,
                     notice_delay: float = 0.0, status: EngineStatus | None = None,
                     also: Callable[[Connection], None] | None = None) -> int:
        """The engine's progress, the tickets it changed and the notices it owes: all or nothing.

        With ``epoch`` (what ``load_engine_epoch`` or the previous commit returned), the write
        happens only if no other replica wrote since; otherwise LostLeadership is raised and
        nothing is written.  Returns the new epoch.  ``status`` (the leader's figures) is
        published in the same transaction, so readers never see it ahead of the tickets.
        ``also`` writes more in the same transaction (the calls owed to helpdesk ticket systems).

        ``state`` is the engine's whole state (its alerts and groups replace the stored ones)
        or an ``EngineDelta`` (only the entries it names are written or deleted).
        """
        if isinstance(state, dict):
            whole = True
            rest = {k: v for k, v in state.items() if k not in _PART_KEYS or not v}
            parts = {kind: {str(_part_key(kind, entry)): entry for entry in state[kind]}
                     for kind in _PART_KEYS if isinstance(state.get(kind), list)}
        else:
            whole, rest, parts = state.whole, state.doc, state.parts
        with self.write() as conn:
            self._write_parts(conn, name, parts, whole)
            state = rest
            new_epoch = (epoch or 0) + 1
            if epoch is None:
                up = self._insert(engine_state).values(name=name, cursor=cursor, state=_dumps(state),
                                                        updated_at=now, epoch=new_epoch)
                conn.execute(up.on_conflict_do_update(index_elements=["name"], set_={
                    "cursor": up.excluded.cursor, "state": up.excluded.state,
                    "updated_at": up.excluded.updated_at, "epoch": engine_state.c.epoch + 1}))
            elif epoch == 0 and conn.execute(select(engine_state.c.name).where(engine_state.c.name == name)
                                             ).first() is None:
                conn.execute(engine_state.insert().values(name=name, cursor=cursor, state=_dumps(state),
                                                          updated_at=now, epoch=new_epoch))
            else:
                done = conn.execute(update(engine_state).where(
                    (engine_state.c.name == name) & (engine_state.c.epoch == epoch)).values(
                    cursor=cursor, state=_dumps(state), updated_at=now, epoch=new_epoch))
                if done.rowcount != 1:
                    raise LostLeadership(f"engine state {name!r} moved past epoch {epoch}")
            if status is not None:
                put_status(self, conn, replace(status, epoch=new_epoch), name)
            if op_answers:
                conn.execute(self._insert(op_results).on_conflict_do_nothing(index_elements=["seq"]),
                             [{"seq": seq, "result": _dumps(res), "created_at": now}
                              for seq, res in op_answers.items()])
            if changed:
                ins = self._insert(tickets)
                conn.execute(ins.on_conflict_do_update(index_elements=["id"], set_={
                    c: getattr(ins.excluded, c) for c in ("status", "resolved_at", "updated_at", "data")}),
                    [{"id": tk.id, "client": tk.client, "site": tk.site, "category": tk.category,
                      "status": tk.status, "opened_at": tk.opened_at, "resolved_at": tk.resolved_at,
                      "updated_at": now, "data": _dumps(tk.to_dict())}
                     for tk in changed])
            if notices:
                conn.execute(self._insert(outbox).on_conflict_do_nothing(
                    index_elements=["ticket_id", "recipient", "kind"]),
                    [{"ticket_id": n.ticket_id, "recipient": n.to, "kind": n.kind, "created_at": now,
                      "due_at": now + notice_delay, "attempts": 0, "state": "pending"} for n in notices])
            if also is not None:
                also(conn)
        return new_epoch

    def _write_parts(self, conn: Connection, name: str, parts: dict[str, dict[str, Any]], whole: bool) -> None:
        if whole:
            conn.execute(engine_parts.delete().where(engine_parts.c.name == name))
        for kind, entries in parts.items():
            gone = [key for key, entry in entries.items() if entry is None]
            for chunk in range(0, len(gone), 500):
                conn.execute(engine_parts.delete().where(
                    (engine_parts.c.name == name) & (engine_parts.c.kind == kind)
                    & engine_parts.c.key.in_(gone[chunk:chunk + 500])))
            rows = [{"name": name, "kind": kind, "key": key, "data": _dumps(entry)}
                    for key, entry in entries.items() if entry is not None]
            if not rows:
                continue
            if whole:
                conn.execute(engine_parts.insert(), rows)
            else:
                ins = self._insert(engine_parts)
                conn.execute(ins.on_conflict_do_update(index_elements=["name", "kind", "key"],
                                                       set_={"data": ins.excluded.data}), rows)

    def op_result(self, seq: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(op_results.c.result).where(op_results.c.seq == seq)).first()
        return orjson.loads(row[0]) if row is not None else None

    def try_lead(self) -> bool:
        """Take (or keep) the engine's leadership: a PostgreSQL session advisory lock held on a
        connection of its own; for SQLite, an exclusive lock on a file beside the database
        (the worker processes of one host share it)."""
        if self.is_sqlite:
            return self._lead_file()
        if self._lead_conn is not None:
            if time.monotonic() - self._lead_checked < 1.0:
                return True
            try:
                self._lead_conn.execute(text("SELECT 1"))
                self._lead_checked = time.monotonic()
                return True
            except Exception:
                self._drop_lead()
        conn = self.engine.connect()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ENGINE_LOCK}).scalar())
            conn.commit()
        except Exception:
            conn.close()
            raise
        if got:
            self._lead_conn = conn
            self._lead_checked = time.monotonic()
        else:
            conn.close()
        return got

    def _lead_file(self) -> bool:
        if self._lead_fd is not None:
            return True
        path = self.url.split("///", 1)[-1]
        if not path or path == ":memory:":
            return True
        fd = os.open(path + ".engine-lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lead_fd = fd
        return True

    def release_lead(self) -> None:
        """Give up the engine's leadership now (on stop), so another replica can take it at once."""
        self._drop_lead()

    def _drop_lead(self) -> None:
        if self._lead_fd is not None:
            os.close(self._lead_fd)  # closing releases the lock
            self._lead_fd = None
        if self._lead_conn is not None:
            try:
                self._lead_conn.invalidate()
                self._lead_conn.close()
            except Exception:
                pass
            self._lead_conn = None

    # ------------------------------------------------------------ tickets

    def list_tickets(self, status: str | None = None, client: str | None = None, since: datetime | None = None,
                     limit: int = 500, offset: int = 0) -> list[dict[str, Any]]:
        q = select(tickets.c.data).order_by(tickets.c.opened_at.desc(), tickets.c.id.desc())
        if status:
            q = q.where(tickets.c.status == status)
        if client:
            q = q.where(tickets.c.client == client)
        if since:
            q = q.where(tickets.c.opened_at >= since.astimezone(UTC))
        with self.engine.connect() as conn:
            rows = conn.execute(q.limit(limit).offset(offset)).all()
            docs = [orjson.loads(r[0]) for r in rows]
            self._merge_outbox(conn, docs)
        return docs

    def ticket(self, ticket_id: str) -> Ticket | None:
        """The ticket as the engine last wrote it, typed (the notifier and the helpdesk sinks
        read it; the API shows ``get_ticket``, which adds each notice's delivery state)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets.c.data).where(tickets.c.id == ticket_id)).first()
        return Ticket.from_dict(orjson.loads(row[0])) if row is not None else None

    def get_ticket(self, ticket_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(tickets.c.data).where(tickets.c.id == ticket_id)).first()
            if row is None:
                return None
            docs: list[dict[str, Any]] = [orjson.loads(row[0])]
            self._merge_outbox(conn, docs)
        return docs[0]

    def _merge_outbox(self, conn: Connection, docs: list[dict[str, Any]]) -> None:
        """Show each ticket's notifications as the outbox knows them (sent, failed, pending)."""
        if not docs:
            return
        ids = [d["id"] for d in docs]
        rows = conn.execute(select(outbox.c.ticket_id, outbox.c.recipient, outbox.c.kind, outbox.c.state,
                                   outbox.c.sent_at, outbox.c.channel, outbox.c.attempts, outbox.c.last_error)
                            .where(outbox.c.ticket_id.in_(ids))).all()
        by = {(r[0], r[1], r[2]): r for r in rows}
        for d in docs:
            for n in d.get("notifications", []):
                r = by.get((d["id"], n["to"], n["kind"]))
                if r is not None:
                    n["state"] = r[3]
                    n["sent_at"] = format_time(datetime.fromtimestamp(r[4], UTC)) if r[4] else None
                    n["channel"] = r[5]
                    n["attempts"] = r[6]
                    if r[7]:
                        n["error"] = r[7]
            owed = {n["to"] for n in d.get("notifications", [])
                    if n["kind"] == "resolved" and n.get("state") == "dead"}
            for cb in d.get("callbacks", []):
                if cb["person"] in owed:
                    cb["how"] = "call owed: notice could not be delivered"

    # ------------------------------------------------------------ outbox

    def _claimable(self, now: float, lease: float) -> Any:
        """Rows a notifier may take: pending and due, or claimed by a notifier that is known dead
        (no heartbeat row any more, see watcher.store.keys), or claimed longer than ``lease`` ago."""
        live = select(notifiers.c.id)
        return ((outbox.c.state == "pending") & (outbox.c.due_at <= now)) | \
               ((outbox.c.state == "sending") & ((outbox.c.claimed_at < now - lease) |
                                                 (outbox.c.claimed_by.is_not(None) & outbox.c.claimed_by.not_in(live))))

    def claim_due(self, now: float, limit: int, lease: float = 120.0, owner: str | None = None) -> list[OutboxItem]:
        """Take up to ``limit`` notices that are due; a claim older than ``lease`` is retaken."""
        with self.write() as conn:
            q = select(outbox.c.id, outbox.c.ticket_id, outbox.c.recipient, outbox.c.kind, outbox.c.attempts,
                       outbox.c.created_at).where(self._claimable(now, lease)).order_by(outbox.c.due_at).limit(limit)
            if not self.is_sqlite:
                q = q.with_for_update(skip_locked=True)
            rows = conn.execute(q).all()
            if rows:
                conn.execute(update(outbox).where(outbox.c.id.in_([r[0] for r in rows]))
                             .values(state="sending", claimed_at=now, claimed_by=owner))
        return [_outbox_item(r) for r in rows]

    def due(self, now: float, limit: int, lease: float = 120.0, skip: Sequence[int] = ()) -> list[OutboxItem]:
        """The notices a notifier could take now, without taking them (``claim`` does, just
        before the send)."""
        q = select(outbox.c.id, outbox.c.ticket_id, outbox.c.recipient, outbox.c.kind, outbox.c.attempts,
                   outbox.c.created_at).where(self._claimable(now, lease))
        if skip:
            q = q.where(outbox.c.id.not_in(list(skip)))
        with self.engine.connect() as conn:
            rows = conn.execute(q.order_by(outbox.c.due_at).limit(limit)).all()
        return [_outbox_item(r) for r in rows]

    def claim(self, ids: Sequence[int], now: float, owner: str, lease: float = 120.0) -> list[int]:
        """Claim those of ``ids`` that are still claimable; the ids this notifier now owns."""
        if not ids:
            return []
        with self.write() as conn:
            got = conn.execute(update(outbox).where(outbox.c.id.in_(list(ids)) & self._claimable(now, lease))
                               .values(state="sending", claimed_at=now, claimed_by=owner)
                               .returning(outbox.c.id)).all()
        return [int(r[0]) for r in got]

    def next_due(self) -> float | None:
        """When the earliest pending notice falls due (so the notifier can sleep until then)."""
        with self.engine.connect() as conn:
            value = conn.execute(select(func.min(outbox.c.due_at)).where(outbox.c.state == "pending")).scalar()
        return float(value) if value is not None else None

    def mark_sent(self, item_id: int, channel: str | None, now: float) -> None:
        with self.write() as conn:
            conn.execute(update(outbox).where(outbox.c.id == item_id).values(
                state="sent", sent_at=now, channel=channel, last_error=None))

    def record_outcomes(self, sent: Sequence[tuple[int, str | None, float]],
                        failed: Sequence[tuple[int, str, float | None]]) -> None:
        """Many deliveries' outcomes in one transaction: (id, channel, sent_at) for each sent
        row, (id, error, next_due) for each failed one (``next_due`` None: dead).

        A storm of notices finishes hundreds of sends a second; one commit (one fsync) per
        outcome would hold the write lock that ingest needs more than ingest does.
        """
        if not sent and not failed:
            return
        with self.write() as conn:
            if sent:
                conn.execute(update(outbox).where(outbox.c.id == bindparam("oid")).values(
                    state="sent", sent_at=bindparam("at"), channel=bindparam("ch"), last_error=None),
                    [{"oid": i, "ch": ch, "at": at} for i, ch, at in sent])
            for item_id, error, next_due in failed:
                conn.execute(update(outbox).where(outbox.c.id == item_id).values(
                    state="pending" if next_due is not None else "dead", attempts=outbox.c.attempts + 1,
                    last_error=error[:2000], due_at=next_due if next_due is not None else outbox.c.due_at))

    def mark_failed(self, item_id: int, error: str, next_due: float | None) -> None:
        """Retry at ``next_due``, or give up (state ``dead``) when it is None."""
        with self.write() as conn:
            conn.execute(update(outbox).where(outbox.c.id == item_id).values(
                state="pending" if next_due is not None else "dead", attempts=outbox.c.attempts + 1,
                last_error=error[:2000], due_at=next_due if next_due is not None else outbox.c.due_at))

    def outbox_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(outbox.c.state, func.count()).group_by(outbox.c.state)).all()
        return {str(r[0]): int(r[1]) for r in rows}

    def outbox_rows(self, state: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        q = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
        if state:
            q = q.where(outbox.c.state == state)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q).all()]

    def sent_recently(self, recipient: str, since: float) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(
                (outbox.c.recipient == recipient) & (outbox.c.state == "sent") & (outbox.c.sent_at >= since)
            )).scalar_one())

    # ------------------------------------------------------------ signed links

    def use_link(self, nonce: str, now: float) -> bool:
        """Record a link's nonce; False if it was used before (links work once)."""
        with self.write() as conn:
            got = conn.execute(self._insert(link_uses).on_conflict_do_nothing(index_elements=["nonce"])
                               .returning(link_uses.c.nonce), [{"nonce": nonce, "used_at": now}]).all()
        return bool(got)
