"""Small shared facts that replicas of one database must agree on, kept in the store.

* The link key: when ``secret_key`` is not configured, the first process to start makes a
  random one and every later process (restarts, other replicas) reads the same one.  It is
  inserted if absent and then read, so two processes starting together end up with one key.
* HMAC signatures already accepted: a signed request replayed inside its validity window is
  refused, whichever replica it reaches.
* Heartbeats of the notifying processes: a claim on an outbox row whose owner stopped
  beating, or whose process is gone from this host, is taken again at once.
"""

from __future__ import annotations

import os
import secrets as _random
import socket
from collections.abc import Callable

from sqlalchemy import delete, select, update

from watcher.store import Store
from watcher.store.schema import notifiers, secrets, seen_signatures

LINK_KEY = "link_key"


def shared_secret(store: Store, name: str, make: Callable[[], str] = lambda: _random.token_urlsafe(48),
                  now: float = 0.0) -> str:
    """The value stored under ``name``, made by ``make`` (once, by whoever comes first)."""
    with store.write() as conn:
        conn.execute(store._insert(secrets).on_conflict_do_nothing(index_elements=["name"]),
                     [{"name": name, "value": make(), "created_at": now}])
        value = conn.execute(select(secrets.c.value).where(secrets.c.name == name)).scalar_one()
    return str(value)


def link_key(store: Store, now: float) -> bytes:
    """The key that signs links when none is configured: random, made once per database."""
    return shared_secret(store, LINK_KEY, now=now).encode()


def first_use_of_signature(store: Store, signature: str, expires_at: float, now: float) -> bool:
    """Record an accepted HMAC signature; False if it was seen before and has not expired.

    Expired entries are deleted in the same transaction, so the table holds at most the
    signatures of one validity window.
    """
    with store.write() as conn:
        conn.execute(delete(seen_signatures).where(seen_signatures.c.expires_at < now))
        got = conn.execute(store._insert(seen_signatures).on_conflict_do_nothing(index_elements=["signature"])
                           .returning(seen_signatures.c.signature),
                           [{"signature": signature, "expires_at": expires_at}]).all()
    return bool(got)


def heartbeat(store: Store, owner: str, now: float) -> None:
    """Say that the notifier ``owner`` (this process) is alive."""
    with store.write() as conn:
        done = conn.execute(update(notifiers).where(notifiers.c.id == owner).values(heartbeat_at=now))
        if done.rowcount == 0:
            conn.execute(store._insert(notifiers).on_conflict_do_nothing(index_elements=["id"]),
                         [{"id": owner, "host": socket.gethostname()[:255], "pid": os.getpid(),
                           "heartbeat_at": now}])


def forget_notifier(store: Store, owner: str) -> None:
    """A notifier that stops cleanly leaves no claims behind; its row goes with it."""
    with store.write() as conn:
        conn.execute(delete(notifiers).where(notifiers.c.id == owner))


def bury_dead_notifiers(store: Store, stale_before: float) -> int:
    """Forget notifiers known dead: their process is gone from this host, or their heartbeat
    is older than ``stale_before``.  Their claims become claimable at once.  Returns how many."""
    host = socket.gethostname()[:255]
    with store.engine.connect() as conn:
        rows = conn.execute(select(notifiers.c.id, notifiers.c.host, notifiers.c.pid,
                                   notifiers.c.heartbeat_at)).all()
    dead = [r[0] for r in rows if r[3] < stale_before or (r[1] == host and not _alive(int(r[2])))]
    if dead:
        with store.write() as conn:
            conn.execute(delete(notifiers).where(notifiers.c.id.in_(dead)))
    return len(dead)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
