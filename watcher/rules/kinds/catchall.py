"""``catchall``: alerts no other rule names become one ticket per group when their
``severity`` is at least ``min_severity``; below it they are only recorded (and counted)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from watcher.config.rules import SEVERITIES
from watcher.rules.kinds.base import RuleKind

if TYPE_CHECKING:
    from watcher.config.rules import Rule
    from watcher.config.yamlload import Reader
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


@dataclass(frozen=True)
class CatchallConfig:
    min_severity: str = "warning"


class Catchall(RuleKind[CatchallConfig]):
    name = "catchall"
    keys = frozenset({"min_severity"})
    needs_signals = False
    routed = False
    catches_the_rest = True

    def __init__(self, rule: Rule) -> None:
        super().__init__(rule)
        self.min_level = SEVERITIES[self.config.min_severity]

    @classmethod
    def parse(cls, r: Reader) -> CatchallConfig:
        min_sev = r.text("min_severity", "warning")
        if min_sev not in SEVERITIES:
            r.fail("min_severity", f"expected one of {', '.join(SEVERITIES)}")
        return CatchallConfig(min_sev)

    def catches(self, labels: dict[str, str]) -> bool:
        return SEVERITIES.get(labels.get("severity", "none"), 0) >= self.min_level and \
            (not self.rule.signals or any(s.matches(labels) for s in self.rule.signals))

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        agg = engine.summaries.of(g).get(0)
        return (True, agg.first) if agg and agg.count else (False, t)
