"""Who a ticket affects, computed in one place and explained.

The helpdesk tells exactly these people (``opened``/``planned``) and nobody else, so the
reason for each is kept on the ticket ("remote, site acme-krk") for the agent to see.
"""

from __future__ import annotations

from watcher.config.inventory import Inventory


def affected(how: str, labels: dict[str, str], inv: Inventory) -> dict[str, str]:
    """person id -> why, for the rule's ``affects`` mode and the group's bound labels."""
    out: dict[str, str] = {}
    site, client = labels.get("site"), labels.get("client")
    if how == "remote_people" and site:
        for p in inv.remote_people(site):
            out[p.id] = f"remote, site {site}"
    elif how == "site_people" and site:
        for p in inv.people.values():
            if p.site == site:
                out[p.id] = f"{'remote' if p.remote else 'works'} at site {site}"
    elif how == "mailbox_owner":
        person = labels.get("person")
        mailbox = labels.get("mailbox")
        if person and person in inv.people:
            out[person] = f"owner of mailbox {mailbox}" if mailbox else "the person concerned"
    elif how == "client_mailbox_people" and client:
        for pid in inv.mailbox_people(client):
            out[pid] = f"has a mailbox of client {client}"
    elif how == "client_people" and client and client in inv.clients:
        for p in inv.clients[client].people:
            out[p.id] = f"works for client {client}"
    elif how == "person":
        person = labels.get("person")
        if person and person in inv.people:
            out[person] = "the person concerned"
    return dict(sorted(out.items()))
