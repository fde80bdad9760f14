"""A plain signed webhook: every step of a ticket as one JSON POST to the configured URL.

The body is ``{"event": "open"|"comment"|"resolve", "ticket_id", "subject", "text",
"external_id", "ticket"}``.  It is signed like the webhooks watcher itself accepts
(``X-Watcher-Timestamp`` and ``X-Watcher-Signature: sha256=<HMAC-SHA256 of
"<timestamp>.<body>">`` with the shared secret), and ``Idempotency-Key`` carries the queue
job's id, which stays the same on every retry, so the receiver can drop repeats.  On
``open`` the receiver may answer ``{"id": ..., "url": ...}`` to name its ticket.
"""

from __future__ import annotations

import json
import time
from typing import Any

from watcher.api.auth import sign
from watcher.config.sinks import WebhookConfig
from watcher.sinks.base import Draft, ExternalRef, Sink


class WebhookSink(Sink[WebhookConfig]):
    config_type = WebhookConfig

    async def _post(self, event: str, ticket_id: str, subject: str, text: str, external_id: str | None,
                    idem: str) -> Any:
        body = json.dumps({"event": event, "ticket_id": ticket_id, "subject": subject, "text": text,
                           "external_id": external_id}, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": f"watcher-{self.name}-{idem}",
                   **sign(self.cfg.secret, body, time.time())}
        return await self.call("POST", self.cfg.url, data=body, headers=headers, expect=(200, 201, 202, 204))

    async def find(self, ticket_id: str) -> ExternalRef | None:
        return None  # nothing to ask; the idempotency key lets the receiver drop a repeated open

    async def create(self, draft: Draft, idem: str) -> ExternalRef:
        got = await self._post("open", draft.ticket_id, draft.subject, draft.body, None, idem)
        if isinstance(got, dict) and got.get("id"):
            return ExternalRef(str(got["id"]), str(got.get("url") or ""))
        return ExternalRef(draft.ticket_id, "")

    async def comment(self, ref: ExternalRef, text: str, idem: str) -> None:
        await self._post("comment", ref.ticket_id, "", text, ref.id, idem)

    async def resolve(self, ref: ExternalRef, text: str, idem: str) -> None:
        await self._post("resolve", ref.ticket_id, "", text, ref.id, idem)
