"""Binding an event to the inventory: fill in client, site and owners from selectors.

Collectors send what they know (an SNMP agent address, a host name, a probe target, a
mailbox); the rules group by client and site.  Binding adds the missing labels from the
inventory's indexes so that every rule sees the same, complete label set.
"""

from __future__ import annotations

from urllib.parse import urlparse

from watcher.config.inventory import Inventory


def _host_of(instance: str) -> str | None:
    """The host part of a Prometheus ``instance`` (``host:port`` or a probe URL)."""
    if "://" in instance:
        return urlparse(instance).hostname
    if instance.startswith("["):
        return instance[1:].split("]", 1)[0]
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def bind(labels: dict[str, str], inv: Inventory) -> dict[str, str]:
    """The labels plus ``client``/``site``/``person`` found through the inventory.

    Labels the sender set win over what the inventory would say, except that a site
    always implies its own client.
    """
    b = dict(labels)
    if not b.get("host") and b.get("instance") and "metric" not in b:
        host = _host_of(b["instance"])
        if host:
            b["host"] = host
    site = b.get("site")
    if not site:
        agent = b.get("snmp_agent")
        if agent and agent in inv.by_snmp_agent:
            site = inv.by_snmp_agent[agent]
        elif b.get("host"):
            site = inv.site_of_host(b["host"])
        if not site:
            target = b.get("instance") or b.get("target")
            if target:
                site = inv.site_of_target(target)
                if not site and ":" in target:
                    site = inv.site_of_host(target.rsplit(":", 1)[0])
        if site:
            b["site"] = site
    mailbox = b.get("mailbox")
    if mailbox and mailbox in inv.mailboxes:
        mb = inv.mailboxes[mailbox]
        b.setdefault("client", mb.client)
        if mb.person:
            b.setdefault("person", mb.person)
    share = b.get("share")
    if share and share in inv.shares:
        sh = inv.shares[share]
        b.setdefault("client", sh.client)
        if sh.site:
            b.setdefault("site", sh.site)
        folder = b.get("folder")
        if folder:
            owner = sh.owner_of(folder)
            if owner:
                b.setdefault("folder_person", owner)
    if site and site in inv.sites:
        b["client"] = inv.sites[site].client
    if not b.get("client") and b.get("host") in inv.by_mail_host:
        b["client"] = inv.by_mail_host[b["host"]]
    person = b.get("person")
    if person and person in inv.people:
        b.setdefault("client", inv.people[person].client)
    return b
