"""The store on SQLite and on PostgreSQL, for real (the ``db_url`` fixture runs each test on both).

What the rest of the service relies on: the inbox stores an occurrence once and hands rows
out in order; an engine batch is all there or none of it; a notice is owed once per
(ticket, recipient, kind) and moves pending -> sending -> sent, or retries until dead; a
signed link works once; and two writers at once lose nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from watcher.model import Callback, Notice, NotificationRecord, Ticket
from watcher.store import InboxRow, Store
from watcher.store.schema import inbox, outbox, tickets

T0 = 1_790_000_000.0  # a fixed "now" for the outbox clock (2026-09-21)
OPENED = datetime(2026, 11, 2, 8, 17, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    try:
        yield s
    finally:
        s.close()


def row(key: str, payload: str | None = None, kind: str = "event") -> InboxRow:
    return InboxRow(kind, "test", key, T0, payload if payload is not None else f'{{"key": "{key}"}}')


def ticket(tid: str = "T-000001", status: str = "open", client: str = "acme", category: Any = "internet",
           opened_at: datetime = OPENED) -> Ticket:
    return Ticket(id=tid, client=client, category=category, entity_kind="site", entity_id="acme-krk",
                  title="Brak dostępu do internetu: Biuro Kraków", opened_at=opened_at, rule="site-internet",
                  group_key=f"site-internet|{client}|acme-krk", site="acme-krk", status=status,  # type: ignore[arg-type]
                  affected=["jan.kowalski"])


def notice(tid: str = "T-000001", to: str = "jan.kowalski", kind: str = "opened") -> Notice:
    return Notice(tid, to, kind, OPENED)


def count(s: Store, table: Any) -> int:
    with s.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# ---------------------------------------------------------------- inbox


def test_append_returns_a_seq_per_new_row_in_order(store: Store) -> None:
    seqs = store.append([row("a"), row("b"), row("c")])
    assert all(isinstance(s, int) for s in seqs)
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    assert store.inbox_max() == seqs[-1]
    assert store.append([]) == []


def test_append_dedups_across_batches(store: Store) -> None:
    first = store.append([row("a"), row("b")])
    again = store.append([row("b", '{"resent": true}'), row("c"), row("a")])
    assert again[0] is None and again[2] is None
    assert isinstance(again[1], int) and again[1] > max(s for s in first if s is not None)
    assert count(store, inbox) == 3
    # the first copy is kept: a re-send never rewrites what was stored
    payloads = {p for _seq, _kind, _at, p in store.read_inbox(0, 10)}
    assert '{"resent": true}' not in payloads


def test_append_dedups_within_one_batch(store: Store) -> None:
    seqs = store.append([row("x"), row("y"), row("x"), row("x")])
    assert isinstance(seqs[0], int) and isinstance(seqs[1], int)
    assert seqs[2:] == [None, None]
    assert count(store, inbox) == 2


def test_append_of_a_large_batch_with_duplicates_across_its_chunks(store: Store) -> None:
    keys = [f"k{i}" for i in range(1200)]
    rows = [row(k) for k in keys] + [row("k5"), row("k700"), row("k1199")]
    seqs = store.append(rows)
    assert len(seqs) == 1203
    assert seqs[1200:] == [None, None, None]
    assert len({s for s in seqs[:1200]}) == 1200 and None not in seqs[:1200]
    assert count(store, inbox) == 1200


def test_read_inbox_in_order_from_a_cursor(store: Store) -> None:
    seqs = store.append([row(f"e{i}") for i in range(5)] + [row("op1", '{"op": "ack"}', kind="op")])
    got = store.read_inbox(0, 3)
    assert [g[0] for g in got] == seqs[:3]
    assert [g[3] for g in got] == ['{"key": "e0"}', '{"key": "e1"}', '{"key": "e2"}']
    assert all(g[1] == "event" and g[2] == T0 for g in got)
    rest = store.read_inbox(got[-1][0], 100)
    assert [g[0] for g in rest] == seqs[3:]
    assert rest[-1][1:] == ("op", T0, '{"op": "ack"}')
    assert store.read_inbox(seqs[-1], 100) == []
    later = store.append([row("e9")])
    assert [g[0] for g in store.read_inbox(seqs[-1], 100)] == later


def test_fresh_store_is_empty(store: Store) -> None:
    assert store.inbox_max() == 0
    assert store.read_inbox(0, 10) == []
    assert store.load_engine() == (0, None)
    assert store.outbox_counts() == {}
    assert store.list_tickets() == []
    assert store.get_ticket("T-000001") is None


# ---------------------------------------------------------------- engine batches


def test_engine_state_round_trip(store: Store) -> None:
    state = {"version": 1, "clock": 1.5, "alerts": [["fp", {"site": "acme-krk"}, "firing"]], "name": "Łódź"}
    store.commit_batch(7, state, [], [], T0)
    assert store.load_engine() == (7, state)
    assert store.engine_doc() == {"version": 1, "clock": 1.5, "name": "Łódź"}  # without the rows kept apart
    store.commit_batch(9, {"version": 1, "clock": 2.0}, [], [], T0 + 1)
    assert store.load_engine() == (9, {"version": 1, "clock": 2.0})
    assert store.load_engine("replica-2") == (0, None)  # engines are kept apart by name
    assert store.engine_doc("replica-2") == {}


def test_commit_batch_writes_tickets_and_notices(store: Store) -> None:
    tk = ticket()
    store.commit_batch(3, {"v": 1}, [tk], [notice(), notice(to="office:acme-krk", kind="office_check")], T0)
    doc = store.get_ticket("T-000001")
    assert doc is not None
    assert (doc["status"], doc["client"], doc["title"]) == ("open", "acme", "Brak dostępu do internetu: Biuro Kraków")
    assert store.outbox_counts() == {"pending": 2}
    # a later batch updates the same ticket in place
    tk.status = "acknowledged"
    tk.acknowledged_at = OPENED + timedelta(minutes=5)
    store.commit_batch(4, {"v": 2}, [tk], [], T0 + 1)
    doc = store.get_ticket("T-000001")
    assert doc is not None and doc["status"] == "acknowledged" and doc["acknowledged_at"] == "2026-11-02T08:22:00Z"
    assert count(store, tickets) == 1
    # typed, as the notifier and the helpdesk sinks read it: the ticket the engine wrote
    assert store.ticket("T-000001") == tk and store.ticket("T-000404") is None
    due = {(i.kind, i.recipient) for i in store.due(T0 + 2, 10)}
    assert due == {("opened", "jan.kowalski"), ("office_check", "office:acme-krk")}


def test_commit_batch_is_atomic(store: Store) -> None:
    """A ticket row that violates the schema (no category) fails the batch: the engine's cursor and
    state, the other ticket and the notice of that batch are all absent afterwards."""
    store.commit_batch(5, {"v": "before"}, [ticket("T-000001")], [], T0)
    bad = ticket("T-000003", category=None)
    with pytest.raises(Exception, match=r"(?i)null|category"):
        store.commit_batch(6, {"v": "after"}, [ticket("T-000002"), bad], [notice("T-000002")], T0 + 1)
    assert store.load_engine() == (5, {"v": "before"})
    assert store.get_ticket("T-000002") is None and store.get_ticket("T-000003") is None
    assert store.outbox_counts() == {}
    assert count(store, tickets) == 1
    # and the store still works after the failed transaction
    store.commit_batch(6, {"v": "after"}, [ticket("T-000002")], [notice("T-000002")], T0 + 2)
    assert store.load_engine() == (6, {"v": "after"})
    assert store.outbox_counts() == {"pending": 1}


def test_commit_batch_is_atomic_when_the_last_statement_fails(store: Store,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the outbox insert, the last statement of the transaction."""
    real = store._insert

    def failing_insert(table: Any) -> Any:
        if table is outbox:
            raise RuntimeError("disk full")
        return real(table)

    monkeypatch.setattr(store, "_insert", failing_insert)
    with pytest.raises(RuntimeError, match="disk full"):
        store.commit_batch(11, {"v": 1}, [ticket()], [notice()], T0)
    monkeypatch.undo()
    assert store.load_engine() == (0, None)
    assert store.get_ticket("T-000001") is None
    assert store.outbox_counts() == {}


def test_list_tickets_filters(store: Store) -> None:
    store.commit_batch(1, {}, [
        ticket("T-000001", opened_at=OPENED),
        ticket("T-000002", status="resolved", opened_at=OPENED + timedelta(hours=1)),
        ticket("T-000003", client="beta", opened_at=OPENED + timedelta(hours=2)),
    ], [], T0)
    assert [d["id"] for d in store.list_tickets()] == ["T-000003", "T-000002", "T-000001"]  # newest first
    assert [d["id"] for d in store.list_tickets(status="open")] == ["T-000003", "T-000001"]
    assert [d["id"] for d in store.list_tickets(client="acme")] == ["T-000002", "T-000001"]
    assert [d["id"] for d in store.list_tickets(since=OPENED + timedelta(minutes=30))] == ["T-000003", "T-000002"]
    assert [d["id"] for d in store.list_tickets(limit=1, offset=1)] == ["T-000002"]


def test_list_tickets_since_in_any_time_zone(store: Store, db_url: str, request: pytest.FixtureRequest) -> None:
    """``since`` is an aware datetime: 10:00 in Warsaw (CET) is 09:00 UTC, after T-000001 (08:17 UTC)
    and before T-000002 (09:17 UTC)."""
    store.commit_batch(1, {}, [
        ticket("T-000001", opened_at=OPENED),
        ticket("T-000002", opened_at=OPENED + timedelta(hours=1)),
        ticket("T-000003", opened_at=OPENED + timedelta(hours=2)),
    ], [], T0)
    since = datetime(2026, 11, 2, 10, 0, tzinfo=ZoneInfo("Europe/Warsaw"))
    assert [d["id"] for d in store.list_tickets(since=since)] == ["T-000003", "T-000002"]


# ---------------------------------------------------------------- outbox


def test_a_notice_is_owed_once_however_often_it_is_committed(store: Store) -> None:
    tk = ticket()
    store.commit_batch(1, {}, [tk], [notice(), notice()], T0)  # twice in one batch
    store.commit_batch(2, {}, [tk], [notice()], T0 + 1)  # and again later (a restart, a replica)
    store.commit_batch(3, {}, [], [notice(kind="resolved"), notice(to="ewa.nowak")], T0 + 2)
    rows = store.outbox_rows()
    assert sorted((r["recipient"], r["kind"]) for r in rows) == [
        ("ewa.nowak", "opened"), ("jan.kowalski", "opened"), ("jan.kowalski", "resolved")]
    # even after it was sent, the same notice is not owed again
    (item,) = [i for i in store.claim_due(T0, 10) if (i.recipient, i.kind) == ("jan.kowalski", "opened")][:1]
    store.mark_sent(item.id, "mailto", T0 + 3)
    store.commit_batch(4, {}, [], [notice()], T0 + 4)
    assert count(store, outbox) == 3
    assert [r["state"] for r in store.outbox_rows() if r["id"] == item.id] == ["sent"]


def test_claim_due_mark_sent(store: Store) -> None:
    store.commit_batch(1, {}, [ticket()], [notice(), notice(to="ewa.nowak")], T0)
    assert store.claim_due(T0 - 1, 10) == []  # not due yet
    items = store.claim_due(T0, 10)
    assert sorted(i.recipient for i in items) == ["ewa.nowak", "jan.kowalski"]
    assert all(i.ticket_id == "T-000001" and i.kind == "opened" and i.attempts == 0 for i in items)
    assert store.outbox_counts() == {"sending": 2}
    assert store.claim_due(T0 + 1, 10) == []  # claimed: nobody else takes them
    store.mark_sent(items[0].id, "mailto", T0 + 2)
    assert store.outbox_counts() == {"sending": 1, "sent": 1}
    assert store.sent_recently(items[0].recipient, T0) == 1
    assert store.sent_recently(items[0].recipient, T0 + 3) == 0


def test_claim_respects_the_limit(store: Store) -> None:
    store.commit_batch(1, {}, [ticket()], [notice(to=f"p{i}") for i in range(5)], T0)
    assert len(store.claim_due(T0, 2)) == 2
    assert len(store.claim_due(T0, 10)) == 3
    assert store.claim_due(T0, 10) == []


def test_mark_failed_retries_then_dies(store: Store) -> None:
    store.commit_batch(1, {}, [ticket()], [notice()], T0)
    (item,) = store.claim_due(T0, 10)
    store.mark_failed(item.id, "SMTP 451 try later", T0 + 10)
    assert store.outbox_counts() == {"pending": 1}
    assert store.claim_due(T0 + 5, 10) == []  # not before its retry time
    (again,) = store.claim_due(T0 + 10, 10)
    assert again.id == item.id and again.attempts == 1
    store.mark_failed(again.id, "SMTP 550 no such user " + "x" * 5000, None)
    assert store.outbox_counts() == {"dead": 1}
    assert store.claim_due(T0 + 10_000, 10) == []  # dead is final
    (r,) = store.outbox_rows("dead")
    assert r["attempts"] == 2 and r["last_error"].startswith("SMTP 550") and len(r["last_error"]) == 2000


def test_a_claim_older_than_the_lease_is_retaken(store: Store) -> None:
    store.commit_batch(1, {}, [ticket()], [notice()], T0)
    (item,) = store.claim_due(T0, 10, lease=60)
    assert store.claim_due(T0 + 59, 10, lease=60) == []  # the sender may still be at it
    (retaken,) = store.claim_due(T0 + 61, 10, lease=60)  # it died: another sender takes it over
    assert retaken.id == item.id
    assert store.outbox_counts() == {"sending": 1}
    store.mark_sent(retaken.id, "mailto", T0 + 62)
    assert store.claim_due(T0 + 1000, 10, lease=60) == []


def test_ticket_documents_show_the_outbox_state(store: Store) -> None:
    tk = ticket()
    tk.notifications.append(NotificationRecord("jan.kowalski", "opened", OPENED))
    tk.notifications.append(NotificationRecord("jan.kowalski", "resolved", OPENED))
    tk.callbacks.append(Callback("jan.kowalski", OPENED))
    store.commit_batch(1, {}, [tk], [notice(), notice(kind="resolved")], T0)
    items = {i.kind: i for i in store.claim_due(T0, 10)}
    store.mark_sent(items["opened"].id, "mailto", T0 + 1)
    store.mark_failed(items["resolved"].id, "refused", None)
    doc = store.get_ticket("T-000001")
    assert doc is not None
    by_kind = {n["kind"]: n for n in doc["notifications"]}
    assert by_kind["opened"]["state"] == "sent" and by_kind["opened"]["channel"] == "mailto"
    assert by_kind["opened"]["sent_at"] == datetime.fromtimestamp(T0 + 1, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert by_kind["resolved"]["state"] == "dead" and by_kind["resolved"]["error"] == "refused"
    assert doc["callbacks"][0]["how"] == "call owed: notice could not be delivered"


# ---------------------------------------------------------------- links


def test_a_link_works_once(store: Store) -> None:
    assert store.use_link("nonce-1", T0) is True
    assert store.use_link("nonce-1", T0 + 1) is False
    assert store.use_link("nonce-2", T0 + 2) is True


# ---------------------------------------------------------------- concurrency and migrations


def test_two_threads_appending_at_once_lose_nothing(db_url: str) -> None:
    """Two writers (two Store objects, as two replicas would have) append at once; half of the keys
    both of them send (a second sender of the same alerts).  Every key is stored exactly once and
    exactly one writer gets its seq."""
    stores = [Store(db_url), Store(db_url)]
    results: list[list[tuple[str, int | None]]] = [[], []]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def writer(n: int) -> None:
        try:
            start.wait()
            for batch in range(40):
                shared = [f"both-{batch}-{i}" for i in range(5)]
                if n:
                    shared.reverse()  # the second sender lists them in another order
                keys = [f"w{n}-{batch}-{i}" for i in range(5)] + shared
                seqs = stores[n].append([row(k) for k in keys])
                results[n].extend(zip(keys, seqs, strict=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors
        assert count(stores[0], inbox) == 2 * 40 * 5 + 40 * 5
        got = [(k, s) for r in results for k, s in r]
        new = [s for _k, s in got if s is not None]
        assert len(new) == len(set(new)) == 600  # each stored row handed out once
        for key in {k for k, _s in got if k.startswith("both-")}:
            assert sum(1 for k, s in got if k == key and s is not None) == 1, key
        assert all(s is not None for k, s in got if k.startswith("w"))
        seqs = [s for s, *_ in stores[1].read_inbox(0, 10_000)]
        assert sorted(seqs) == sorted(new)
    finally:
        for s in stores:
            s.close()


def test_one_store_shared_by_threads(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for batch in range(30):
                store.append([row(f"t{n}-{batch}-{i}") for i in range(4)])
                store.commit_batch(batch, {"n": n}, [], [notice(f"T-{n}", to=f"p{batch}")], T0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert count(store, inbox) == 4 * 30 * 4
    assert store.outbox_counts() == {"pending": 4 * 30}


def test_migrations_run_twice(db_url: str) -> None:
    first = Store(db_url)
    try:
        first.append([row("kept")])
        first.commit_batch(1, {"v": 1}, [ticket()], [notice()], T0)
    finally:
        first.close()
    second = Store(db_url)  # runs the migrations again on the same database
    try:
        assert second.append([row("kept")]) == [None]
        assert second.load_engine() == (1, {"v": 1})
        assert second.get_ticket("T-000001") is not None
        assert second.outbox_counts() == {"pending": 1}
    finally:
        second.close()
    third = Store(db_url)
    third.close()


def test_sqlite_synchronous_setting(tmp_path: Path) -> None:
    """FULL (2) by default, so a 2xx survives a power loss; NORMAL (1) when configured."""
    from sqlalchemy import text

    for setting, expected in (("full", 2), ("normal", 1)):
        s = Store(f"sqlite:///{tmp_path / setting}.db", setting)
        try:
            with s.engine.connect() as conn:
                assert conn.execute(text("PRAGMA synchronous")).scalar() == expected
        finally:
            s.close()
