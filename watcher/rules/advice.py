"""Disk advice to the right person, with an administrator in the loop.

A share filling up is the helpdesk's and the administrator's to explain: only when one
person's folder explains at least half of the share's growth over the forecast window is
the cause clear enough for the educational notice to go to that person on its own.
Otherwise (a share that grew 12 GB while the top folder grew 0.5 MB), or when the client
asks for it (``advice: confirm`` in the inventory), the ticket waits for an administrator
to confirm the cause in the console (``advice`` op) before anyone is advised.

Either way the administrators get a readable summary when the ticket opens
(``disk_review``): the folders that grew most, in GB, with their owners, the kinds of
files, the days to full.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.rules.forecast import Trend

if TYPE_CHECKING:
    from watcher.config.inventory import Share
    from watcher.model import Advice as AdviceOp
    from watcher.model import Ticket
    from watcher.rules.engine import Engine

EXPLAINS = 0.5  # the share of the share's growth one folder must explain
TOP = 3


def folder_growth(g: Trend) -> list[tuple[str, float]]:
    """Folders by growth over the window, largest first (only those that grew)."""
    out = [(name, pts[-1][1] - pts[0][1]) for name, pts in g.folders.items() if len(pts) >= 2]
    return sorted([x for x in out if x[1] > 0], key=lambda x: (-x[1], x[0]))


def share_growth(g: Trend) -> float:
    return g.series[-1][1] - g.series[0][1] if len(g.series) >= 2 else 0.0


def decide(g: Trend, share: Share | None, policy: str, details: dict[str, object]) -> str | None:
    """Fill the disk details of a new ticket; the person to advise now, or None to ask first."""
    grown = folder_growth(g)
    total = share_growth(g)
    details["share_growth_bytes"] = int(total)
    if policy == "confirm":
        details["advice_policy"] = "confirm"
    if grown:
        details["top_folders"] = [{"folder": name, "person": share.owner_of(name) if share else None,
                                   "growth_bytes": int(growth)} for name, growth in grown[:TOP]]
    if not grown or share is None:
        details["advice"] = "confirm" if grown else "none"
        return None
    folder, growth = grown[0]
    details["folder"] = folder
    details["folder_growth_bytes"] = int(growth)
    if folder in g.folder_kinds:
        details["file_kinds"] = g.folder_kinds[folder]
    owner = share.owner_of(folder)
    if owner:
        details["folder_person"] = owner
    explains = total > 0 and growth >= EXPLAINS * total
    if owner and explains and policy != "confirm":
        details["advice"] = "sent"
        return owner
    details["advice"] = "confirm"
    return None


def on_op(engine: Engine, tk: Ticket, op: AdviceOp, t: float) -> bool:
    """An administrator's word on the cause: ``confirm`` (advise the person) or ``dismiss``."""
    action = op.action
    if tk.category != "disk" or tk.details.get("advice") in ("sent", "confirmed"):
        return False
    by = (op.by or "admin")[:100]
    if action == "dismiss":
        tk.details["advice"] = "dismissed"
        tk.details["advice_by"] = by
        return True
    if action != "confirm":
        return False
    person = op.person or tk.details.get("folder_person")
    share = engine.inv.shares.get(tk.entity_id)
    if not isinstance(person, str) or person not in engine.inv.people or \
            (share is not None and person not in share.folders):
        return False
    if share is not None:
        tk.details["folder"] = share.folders[person]
        tk.details["folder_person"] = person
        rows = tk.details.get("top_folders", [])
        grown = {row["folder"]: row for row in rows} if isinstance(rows, list) else {}
        if share.folders[person] in grown:
            tk.details["folder_growth_bytes"] = grown[share.folders[person]]["growth_bytes"]
        g = engine.groups.get(tk.group_key)
        kept = g.kind_state if g is not None else None
        if isinstance(kept, Trend) and share.folders[person] in kept.folder_kinds:
            tk.details["file_kinds"] = kept.folder_kinds[share.folders[person]]
    tk.details["advice"] = "confirmed"
    tk.details["advice_by"] = by
    tk.advice_to = person
    engine.notify(tk, person, "advice", t)
    return True
