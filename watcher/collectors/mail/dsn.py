"""Delivery status notifications (RFC 3464) as data: a bounce in, who failed and why out.

Pure and apart from the checks, because it is the part of the mail collector most worth
testing on recorded messages (fixtures of Postfix, Exchange...) and the one most likely to
meet malformed input: MTAs differ in header case, address forms, folding and truncation.
The collector reads the bounces; this module only parses them.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

__all__ = ["DeliveryReport", "DsnRecipient", "parse_dsn"]


@dataclass(frozen=True)
class DsnRecipient:
    """The per-recipient fields of a DSN (RFC 3464 section 2.3); addresses lower-cased."""

    final_recipient: str
    action: str
    status: str
    original_recipient: str | None = None
    diagnostic_code: str | None = None
    remote_mta: str | None = None
    last_attempt: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.action == "failed"


@dataclass(frozen=True)
class DeliveryReport:
    """One delivery status notification: per-message fields, recipients, and who sent the original."""

    recipients: tuple[DsnRecipient, ...]
    message_id: str | None = None
    date: datetime | None = None
    arrival_date: datetime | None = None
    reporting_mta: str | None = None
    envelope_id: str | None = None
    senders: tuple[str, ...] = ()
    original_subject: str | None = None
    original_message_id: str | None = None

    @property
    def failed(self) -> list[DsnRecipient]:
        return [r for r in self.recipients if r.failed]

    @property
    def occurred_at(self) -> datetime | None:
        """When the reported message arrived (``Arrival-Date``), else the bounce's ``Date``."""
        return self.arrival_date or self.date


_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def parse_dsn(raw: bytes | str | Message) -> DeliveryReport | None:
    """An RFC 3464 report (``multipart/report; report-type=delivery-status``), or None if it is not one.

    Tolerant as MTAs are not: header case, ``rfc822;addr`` with or without a space,
    ``<addr>``, a status with a comment after it, folded diagnostic codes and a report
    truncated after its delivery-status part all parse.
    """
    if isinstance(raw, Message):
        msg = raw
    elif isinstance(raw, bytes):
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    else:
        msg = email.message_from_string(raw, policy=email.policy.compat32)
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "") or "").lower() != "delivery-status":
        return None
    status_part: Message | None = None
    returned: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status") and status_part is None:
            status_part = part
        elif ctype in ("text/rfc822-headers", "message/rfc822", "message/global",
                       "message/global-headers") and returned is None:
            returned = _returned_headers(part)
    if status_part is None:
        return None
    blocks = _status_blocks(status_part)
    if not blocks:
        return None
    per_message, per_recipient = blocks[0], blocks[1:]
    recipients: list[DsnRecipient] = []
    for block in per_recipient:
        final = _address_field(block.get("Final-Recipient"))
        action = str(block.get("Action", "") or "").strip().lower().split()[0:1]
        if not final or not action:
            continue
        sm = _STATUS.search(str(block.get("Status", "") or ""))
        recipients.append(DsnRecipient(
            final_recipient=final,
            action=action[0],
            status=".".join(sm.groups()) if sm else "",
            original_recipient=_address_field(block.get("Original-Recipient")) or None,
            diagnostic_code=_unfold(block.get("Diagnostic-Code")),
            remote_mta=_typed_value(block.get("Remote-MTA")),
            last_attempt=_date(block.get("Last-Attempt-Date")),
        ))
    if not recipients:
        return None
    senders: list[str] = []
    for value in (per_message.get("X-Postfix-Sender"), per_message.get("X-Original-Sender")):
        addr = _address_field(value)
        if addr:
            senders.append(addr)
    if returned is not None:
        for name in ("From", "Sender", "Return-Path"):
            senders.extend(a for a in _addresses(returned.get_all(name, [])) if a)
    senders.extend(a for a in _addresses(msg.get_all("To", [])) if a)
    return DeliveryReport(
        recipients=tuple(recipients),
        message_id=_unfold(msg.get("Message-ID")),
        date=_date(msg.get("Date")),
        arrival_date=_date(per_message.get("Arrival-Date")),
        reporting_mta=_typed_value(per_message.get("Reporting-MTA")),
        envelope_id=_unfold(per_message.get("Original-Envelope-Id")),
        senders=tuple(dict.fromkeys(senders)),
        original_subject=_unfold(returned.get("Subject")) if returned is not None else None,
        original_message_id=_unfold(returned.get("Message-ID")) if returned is not None else None,
    )


def _status_blocks(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        return list(payload)
    # A transfer-encoded or otherwise unparsed delivery-status body: split the blocks ourselves.
    body = part.get_payload(decode=True)
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(payload)
    text = text.replace("\r\n", "\n")
    return [email.message_from_string(chunk.strip("\n") + "\n", policy=email.policy.compat32)
            for chunk in re.split(r"\n\s*\n", text) if chunk.strip()]


def _returned_headers(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    body = part.get_payload(decode=True)
    if isinstance(body, bytes) and body:
        return email.message_from_bytes(body, policy=email.policy.compat32)
    return None


def _unfold(value: object) -> str | None:
    if value is None:
        return None
    text = re.sub(r"\s*\r?\n\s+", " ", str(value)).strip()
    return text or None


def _typed_value(value: object) -> str | None:
    """``dns; mx.example`` -> ``mx.example``."""
    text = _unfold(value)
    if text is None:
        return None
    return text.split(";", 1)[1].strip() if ";" in text else text


def _address_field(value: object) -> str:
    """``rfc822; <Jan@Acme.example>`` -> ``jan@acme.example``; other address types as written."""
    text = _typed_value(value)
    if not text:
        return ""
    text = text.strip().strip("<>").strip()
    return text.lower()


def _addresses(values: Sequence[object]) -> list[str]:
    return [addr.strip().strip("<>").lower() for _, addr in getaddresses([str(v) for v in values]) if addr]


def _date(value: object) -> datetime | None:
    text = _unfold(value)
    if not text:
        return None
    try:
        dt = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)
