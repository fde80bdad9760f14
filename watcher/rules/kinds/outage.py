"""``outage``: the signals put a group (a site, a host, a mailbox) into a problem state.

The condition is true while a signal's alerts fire, from the first one's start plus the
signal's ``for`` hold (with ``all_probes``: once every probe of the site fails, from the last
one to fail).  Resolve holds, flapping, symptoms and ``resolved_by`` are the engine's, shared
by every kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from watcher.rules.kinds.base import RuleKind

if TYPE_CHECKING:
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


class Outage(RuleKind[None]):
    name = "outage"

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        summaries = engine.summaries.of(g)
        best: float | None = None
        for i, sig in enumerate(self.rule.signals):
            agg = summaries.get(i)
            if agg is None or not agg.count:
                continue
            if sig.all_probes:
                site = engine.inv.sites.get(g.labels.get("site", ""))
                need = len(site.probes) if site and site.probes else 1
                if len(agg.instances) < need:
                    continue
                since = agg.last
            else:
                since = agg.first
            due = since + sig.hold
            best = due if best is None else min(best, due)
        if best is None:
            return False, t
        return True, best
