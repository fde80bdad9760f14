"""The shortcuts of the hot paths give what the plain code gives.

- A delta's ticket reuses the JSON form of timeline entries it made before: each delta's
  ticket must equal ``to_dict()`` of the ticket then, also after a restore.
- The router remembers each regex's answer per label value: the routes must be those the
  matchers themselves give.
- The notifier's claims go in batches: each caller gets its own ids, and only those still
  claimable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.test_engine_state import _engine
from tests.test_engine_state import store as store  # the fixture: a Store on each test database
from tests.test_store import notice, ticket
from watcher.model import Event
from watcher.notify.outbox import ClaimWriter
from watcher.store import Store, keys

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _link_down(i: int) -> Event:
    return Event(labels={"alertname": "LinkDown", "client": "acme", "site": "krk", "snmp_agent": "192.0.2.1",
                         "ifIndex": str(i)}, source="api", starts_at=T0, observed_at=T0)


def test_a_delta_ticket_is_to_dict_of_the_ticket_delta_after_delta(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    seen = 0
    for i in range(40):
        engine.handle(_link_down(i), T0 + timedelta(seconds=i))
        if i % 7 == 3:
            delta = engine.delta(tickets=list(engine.tickets))
            for tid, doc in delta.parts["tickets"].items():
                assert doc == engine.tickets[tid].to_dict()
                seen = max(seen, len(doc["timeline"]))
    assert seen > 10, "the ticket's timeline grew between deltas"
    again = _engine(tmp_path, engine.snapshot(prune=False))  # a restore: new entry objects
    again.handle(_link_down(99), T0 + timedelta(seconds=99))
    delta = again.delta(tickets=list(again.tickets))
    assert delta.parts["tickets"] and all(doc == again.tickets[tid].to_dict()
                                          for tid, doc in delta.parts["tickets"].items())


def test_routes_are_what_the_matchers_say(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    router = engine.router
    names = ["ProbeFailed", "BlackboxProbeFailed", "ProbeFailedX", "InstanceDown", "HostDown", "LinkDown", ""]
    for round_ in range(2):  # the second round answers from the memo
        for n, name in enumerate(names):
            labels = {"alertname": name, "client": "acme", "site": "krk", "instance": f"i{n}"}
            got = [(r.name, role, i) for r, role, i in router.route(f"fp{round_}-{n}", labels)]
            expected = []
            for rule in engine.rules.rules:
                if not engine.kinds[rule.name].routed:
                    continue
                hit = next((i for i, s in enumerate(rule.signals) if s.matches(labels)), None)
                if hit is not None:
                    expected.append((rule.name, "signal", hit))
                elif any(s.matches(labels) for s in rule.symptoms):
                    expected.append((rule.name, "symptom", -1))
                else:
                    expected += [(rule.name, "resolver", i) for i, s in enumerate(rule.signals)
                                 if s.resolved_by and all(m.matches(labels) for m in s.resolved_by)]
            if expected:
                assert got == expected, name
            else:  # the rule that catches the rest, if any
                assert len(got) <= 1 and all(role == "signal" for _, role, _ in got), name


def test_batched_claims_give_each_caller_its_own(store: Store) -> None:
    store.commit_batch(1, {}, [ticket()], [notice(to=f"p{i}") for i in range(6)], 0.0)
    ids = sorted(i.id for i in store.due(1.0, 10))
    assert len(ids) == 6
    for owner in ("me", "other"):
        keys.heartbeat(store, owner, 1.0)

    async def go() -> tuple[list[set[int]], set[int]]:
        mine = ClaimWriter(store, "me", lambda: 1.0)
        other = ClaimWriter(store, "other", lambda: 1.0)
        got = await asyncio.gather(mine.claim(ids[0:2], 60.0), mine.claim(ids[2:4], 60.0),
                                   mine.claim(ids[4:5], 60.0))
        return list(got), await other.claim(ids, 60.0)

    got, others = asyncio.run(go())
    assert got == [set(ids[0:2]), set(ids[2:4]), set(ids[4:5])]
    assert others == {ids[5]}, "a row claimed by a live notifier is not claimed again"
