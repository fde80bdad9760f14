"""Mail tickets by problem, and channels that do not depend on a mail server that is down.

Every mail ticket used to get one generic text; the notice now says what to do, so the
engine names the problem in ``details.problem``: ``quota`` (a full mailbox: clean up or
archive), ``login`` (failed logins: a security warning and password help), ``bounce``
(which messages did not arrive: ``details.bounced``), ``server_down`` (the whole server).

A "mail server down" notice sent by e-mail to a mailbox on that server cannot arrive.
``independent_urls`` keeps a person's channels that do not go through the client's mail
domains (SMS, another address); a person with none is put on the call list instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:
    from watcher.config.inventory import Inventory
    from watcher.model import Event, Ticket
    from watcher.rules.groups import Bounce, Group

PROBLEMS = {"MailboxQuotaNearlyFull": "quota", "MailboxLoginFailed": "login", "MailDeliveryFailed": "bounce",
            "MailServerDown": "server_down"}
BOUNCES_KEPT = 10


def problem(tk: Ticket, labels: dict[str, str]) -> str | None:
    if tk.category != "mail":
        return None
    if tk.entity_kind == "client":
        return "server_down"
    return PROBLEMS.get(labels.get("alertname", ""))


def note_event(g: Group, ev: Event, tk: Ticket | None) -> None:
    """Keep what a bounce says (to whom, which subject), for the notice that names the messages."""
    if ev.labels.get("alertname") != "MailDeliveryFailed" or ev.status != "firing":
        return
    a = ev.annotations
    row = cast("Bounce", {k: a[k][:200] for k in ("recipient", "sender", "subject", "direction", "diagnostic")
                        if a.get(k)})
    if ev.starts_at is not None:
        row["at"] = ev.starts_at.isoformat().replace("+00:00", "Z")
    kept = g.detail.setdefault("bounced", [])
    if row and row not in kept and len(kept) < BOUNCES_KEPT:
        kept.append(row)
        if tk is not None:
            tk.details["bounced"] = list(kept)


def mail_domains(inv: Inventory, client: str) -> set[str]:
    c = inv.clients.get(client)
    if c is None:
        return set()
    return {m.address.rsplit("@", 1)[1].lower() for m in c.mailboxes} | {h.lower() for h in c.mail_hosts}


def _mail_target(url: str) -> str | None:
    """The address an Apprise mail URL sends to (``mailto://user@host`` or ``?to=``), else None."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mailto", "mailtos"):
        return None
    for part in parsed.query.split("&"):
        if part.startswith("to="):
            return unquote(part[3:]).split(",")[0]
    return f"{unquote(parsed.username or '')}@{parsed.hostname or ''}" if parsed.username else parsed.hostname


def independent_urls(urls: tuple[str, ...], domains: set[str]) -> tuple[str, ...]:
    """The URLs that do not deliver into one of ``domains`` (the mail server that is down)."""
    keep = []
    for url in urls:
        target = _mail_target(url)
        domain = target.rsplit("@", 1)[-1].lower() if target else None
        if domain is None or domain not in domains:
            keep.append(url)
    return tuple(keep)
