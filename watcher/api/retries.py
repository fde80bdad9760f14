"""Retries that must not count twice: ``Idempotency-Key`` and bodies without ``starts_at`` on
the ingest paths, and replayed HMAC signatures.

* ``Idempotency-Key: <1-255 printable ASCII>`` on an ingest request makes each of its events
  the same occurrence as the same event of an earlier request with the same key, for 24
  hours: a client that retries after a lost answer stores nothing twice.  The key is
  combined with the event itself, so a different body under a reused key is not lost.
* An event without ``starts_at`` (its start is when watcher first sees it) is keyed by its
  content for ``ingest_retry_window`` (default 2 minutes): the same body posted again in
  that window is the same occurrence, not a new one.  After the window it is new (a
  threshold rule counts it).
* A signed (HMAC) request is accepted once: its signature is remembered, in the store so
  that every replica agrees, until its timestamp leaves the validity window, and a second
  use inside the window is refused with 401.

The keys are made here; the store applies the windows inside its ingest transaction
(watcher.store.windows).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime

import orjson

from watcher.api.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, IngestAuth
from watcher.model import Event
from watcher.store import Store, keys

IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_WINDOW = 24 * 3600.0


def retry_windows(headers: Mapping[str, str], path: str, events: Sequence[Event], window: float
                  ) -> list[tuple[str, float]]:
    """``(window_key, seconds)`` per event; ``("", 0)`` where the event's own key suffices.

    Raises ValueError (a 400 for the client) for a malformed ``Idempotency-Key``."""
    idem = headers.get(IDEMPOTENCY_HEADER)
    if idem is not None and not (1 <= len(idem) <= 255 and idem.isascii() and idem.isprintable()):
        raise ValueError(f"{IDEMPOTENCY_HEADER}: expected 1 to 255 printable ASCII characters")
    out: list[tuple[str, float]] = []
    for ev in events:
        if idem is None and (ev.starts_at is not None or window <= 0):
            out.append(("", 0.0))
            continue
        doc = ev.to_dict()
        doc.pop("observed_at", None)
        digest = hashlib.sha256(path.encode() + b"\x00" + orjson.dumps(doc, option=orjson.OPT_SORT_KEYS))
        if idem is not None:
            digest.update(b"\x00idem\x00" + idem.encode())
            out.append((digest.hexdigest(), IDEMPOTENCY_WINDOW))
        else:
            out.append((digest.hexdigest(), window))
    return out


async def first_use(store: Store, auth: IngestAuth, headers: Mapping[str, str], now: datetime) -> bool:
    """Remember the signature of an accepted signed request; False when it was seen before."""
    signature = (headers.get(SIGNATURE_HEADER) or "").strip().lower()
    timestamp = int((headers.get(TIMESTAMP_HEADER) or "0").strip())
    expires = float(timestamp + auth.max_skew + 1)
    key = hashlib.sha256(signature.encode()).hexdigest()
    return await asyncio.to_thread(keys.first_use_of_signature, store, key, expires, now.timestamp())
