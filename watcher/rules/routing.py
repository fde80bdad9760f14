"""Routing: which rules name an alert, in which role, and which group of each it joins.

An alert reaches a rule as a ``signal`` (it makes the condition), a ``symptom`` (evidence
inside the rule's active ticket) or a ``resolver`` (it clears a signal, as LinkUp clears
LinkDown); an alert no routed rule names goes to the first rule that catches the rest
(``catchall``); a metric sample goes to the rules that read its metric.  Which kinds take
part in which way is the kind's to say (``watcher.rules.kinds``).  Routes are cached per
fingerprint: an alert re-sent every minute is matched against the rules once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watcher.rules.binding import bind
from watcher.rules.groups import ACTIVE

if TYPE_CHECKING:
    from watcher.config.rules import Rule, Rules
    from watcher.model import Event
    from watcher.rules.engine import Engine
    from watcher.rules.kinds import RuleKind

Route = tuple["Rule", str, int]  # rule, role (signal | symptom | resolver), signal index (-1: none)
ROUTE_CACHE = 200_000


class Router:
    def __init__(self, rules: Rules, kinds: dict[str, RuleKind[object]]) -> None:
        self.rules = rules
        self.kinds = kinds
        self._routes: dict[str, list[Route]] = {}
        self._route_lists: dict[tuple[tuple[str, str, int], ...], list[Route]] = {}
        self._metric_rules: dict[str, list[tuple[Rule, str]]] = {}
        for r in rules.rules:
            for metric, role in kinds[r.name].metrics():
                self._metric_rules.setdefault(metric, []).append((r, role))

    def route(self, fp: str, labels: dict[str, str]) -> list[Route]:
        cached = self._routes.get(fp)
        if cached is not None:
            return cached
        routes: list[Route] = []
        for rule in self.rules.rules:
            if not self.kinds[rule.name].routed:
                continue
            for i, sig in enumerate(rule.signals):
                if sig.matches(labels):
                    routes.append((rule, "signal", i))
                    break
            else:
                for sym in rule.symptoms:
                    if sym.matches(labels):
                        routes.append((rule, "symptom", -1))
                        break
                else:
                    for i, sig in enumerate(rule.signals):
                        if sig.resolved_by and all(m.matches(labels) for m in sig.resolved_by):
                            routes.append((rule, "resolver", i))
        if not routes:
            for rule in self.rules.rules:
                kind = self.kinds[rule.name]
                if kind.catches_the_rest and kind.catches(labels):
                    routes.append((rule, "signal", 0))
                    break
        if len(self._routes) > ROUTE_CACHE:
            self._routes.clear()
        # Most alerts route alike (every probe of every office): one shared list per distinct
        # routing keeps the cache at a pointer per alert instead of a list each.
        routes = self._route_lists.setdefault(tuple((r.name, role, i) for r, role, i in routes), routes)
        self._routes[fp] = routes
        return routes

    def metric_routes(self, metric: str) -> list[tuple[Rule, str]]:
        """(rule, role) of the rules that read samples of ``metric``."""
        return self._metric_rules.get(metric, [])

    @staticmethod
    def gid(rule: Rule, labels: dict[str, str]) -> str | None:
        """The group key of ``labels`` under ``rule``; None when a ``group_by`` label (or the
        client) is missing: such an event joins no group of the rule."""
        parts = []
        for k in rule.group_by:
            v = labels.get(k)
            if not v:
                return None
            parts.append(v)
        if not labels.get("client"):
            return None
        return rule.name + "|" + "|".join(parts)


def explain(engine: Engine, event: Event) -> dict[str, Any]:
    """What the rules would do with this event, and why (for ``watcher rules test``)."""
    router = engine.router
    labels = bind(event.labels, engine.inv)
    out: dict[str, Any] = {"bound_labels": labels, "fingerprint": event.fingerprint, "matches": []}
    if event.value is not None and labels.get("metric"):
        for rule, role in router.metric_routes(labels["metric"]):
            out["matches"].append({"rule": rule.name, "role": f"series ({role})", "group": router.gid(rule, labels)})
        return out
    for rule, role, idx in router.route(event.fingerprint, labels):
        gid = router.gid(rule, labels)
        g = engine.groups.get(gid) if gid else None
        entry: dict[str, Any] = {"rule": rule.name, "kind": rule.kind, "role": role, "group": gid,
                                 "group_state": g.state if g else "idle"}
        if role == "signal" and idx >= 0:
            sig = rule.signals[idx]
            entry["hold_s"] = sig.hold
            if sig.all_probes:
                entry["needs"] = "every probe of the site failing"
        for parent in rule.symptom_of:
            pg = engine.groups.get(router.gid(engine.rule_of[parent], labels) or "")
            if pg and pg.state in ACTIVE:
                entry["suppressed_by"] = f"{parent} ({pg.state}, ticket {pg.ticket})"
        out["matches"].append(entry)
    if not out["matches"]:
        out["outcome"] = "recorded only: no rule names it" + (
            "" if labels.get("client") else " (and it binds to no client)")
    return out
