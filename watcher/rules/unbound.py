"""Events that bind to nothing in the inventory: work for the inventory's owner, not errors.

A feed often names things before the inventory does (a client added to Prometheus first, a
new SNMP agent, a typo in a label).  Such an event is kept in the inbox, opens no ticket and
is listed here, grouped by what it names, so that someone can add the missing entry; once
the inventory knows the name, later events bind normally.

The list is part of the engine's state (so the service and ``watcher replay`` show the same
thing and a restart keeps it) and is bounded: the least recently seen names go first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from watcher.config.inventory import Inventory

MAX_ENTRIES = 500
MAX_SHOWN = 200  # characters of a name kept: a huge label value must not bloat the state
SELECTORS = ("client", "site", "snmp_agent", "share", "mailbox")


def unknown_name(raw: dict[str, str], bound: dict[str, str], inv: Inventory) -> tuple[str, str] | None:
    """The first (label, value) of an event that names something the inventory lacks.

    ``raw`` is what the sender set, ``bound`` the labels after binding: a ``client`` found
    through a known site is fine even if the sender wrote another one.
    """
    client = bound.get("client")
    if client and client not in inv.clients:
        return "client", client
    site = raw.get("site")
    if site and site not in inv.sites:
        return "site", site
    agent = raw.get("snmp_agent")
    if agent and agent not in inv.by_snmp_agent and not bound.get("site"):
        return "snmp_agent", agent
    share = raw.get("share")
    if share and share not in inv.shares:
        return "share", share
    mailbox = raw.get("mailbox")
    if mailbox and mailbox not in inv.mailboxes and mailbox.lower() not in inv.mailboxes:
        return "mailbox", mailbox
    return None


def what_it_names(raw: dict[str, str]) -> tuple[str, str]:
    """For an event that names no selector at all: the label that best says what it is about."""
    for key in ("host", "instance", "target", "snmp_agent", "alertname", "metric"):
        if raw.get(key):
            return key, raw[key]
    key = min(raw) if raw else ""
    return key, raw.get(key, "")


@dataclass
class UnboundEntry:
    source: str
    key: str
    value: str
    count: int
    first: float
    last: float

    def to_row(self) -> list[Any]:
        return [self.source, self.key, self.value, self.count, self.first, self.last]


class UnboundLog:
    """Unbound events grouped by (source, label, value), with a count and first/last seen."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], UnboundEntry] = {}
        self.version = 0  # moves on every change, so a reader can tell when to copy the list

    def record(self, source: str, key: str, value: str, t: float) -> None:
        ident = (source[:64], key[:MAX_SHOWN], value[:MAX_SHOWN])
        e = self.entries.get(ident)
        if e is None:
            if len(self.entries) >= MAX_ENTRIES:
                oldest = min(self.entries.values(), key=lambda x: x.last)
                del self.entries[(oldest.source, oldest.key, oldest.value)]
            self.entries[ident] = UnboundEntry(*ident, 1, t, t)
        else:
            e.count += 1
            e.first = min(e.first, t)
            e.last = max(e.last, t)
        self.version += 1

    def rows(self) -> list[list[Any]]:
        """The entries as rows; safe to call from another thread than the engine's (the copy of
        the dict's values is taken in one step, so its growing meanwhile cannot break it)."""
        return [e.to_row() for e in list(self.entries.values())]

    def restore(self, rows: list[list[Any]]) -> None:
        for row in rows[-MAX_ENTRIES:]:
            e = UnboundEntry(str(row[0]), str(row[1]), str(row[2]), int(row[3]), float(row[4]), float(row[5]))
            self.entries[(e.source, e.key, e.value)] = e


__all__ = ["SELECTORS", "UnboundEntry", "UnboundLog", "unknown_name", "what_it_names"]
