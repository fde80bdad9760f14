"""``threshold``: N occurrences of a signal within a window (three failed logins in ten minutes).

A new ``starts_at`` of the same alert is a new occurrence; a re-send of the same occurrence
is not.  The ticket stays open while its alerts fire and occurrences keep coming; ``quiet``
ends it when they stop.  The group keeps the occurrences' starts (``occurrences``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from watcher.rules.kinds.base import GroupState, RuleKind, state_of

if TYPE_CHECKING:
    from watcher.config.yamlload import Reader
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


@dataclass(frozen=True)
class ThresholdConfig:
    count: int = 1
    within: float = 600.0
    quiet: float = 1800.0


@dataclass(slots=True)
class Occurrences:
    """The starts of the occurrences seen within the window (or the quiet time)."""

    occurrences: list[float] = field(default_factory=list)

    def to_row(self) -> dict[str, Any]:
        return {"occurrences": self.occurrences}


class Threshold(RuleKind[ThresholdConfig]):
    name = "threshold"
    keys = frozenset({"count", "within", "quiet"})
    opens_when_due = True  # the count was reached: a burst that is over still opens its ticket

    @classmethod
    def parse(cls, r: Reader) -> ThresholdConfig:
        return ThresholdConfig(r.integer("count", 1, minimum=1), r.duration("within", 600), r.duration("quiet", 1800))

    def new_state(self) -> GroupState:
        return Occurrences()

    def state_from_row(self, row: dict[str, Any]) -> GroupState:
        return Occurrences(list(row.get("occurrences", [])))

    def keep_when_idle(self, g: Group) -> bool:
        return bool(state_of(g, Occurrences).occurrences)

    def on_firing_member(self, g: Group, change: str, start: float, t: float) -> None:
        if change in ("new", "occurrence"):
            state_of(g, Occurrences).occurrences.append(start)

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        cfg = self.config
        # a poll's drift (5 min + 0.5 s) must not push the third failure out of the window
        within = cfg.within + min(60.0, cfg.within / 10)
        state = state_of(g, Occurrences)
        state.occurrences = [o for o in state.occurrences if o >= t - max(within, cfg.quiet)]
        recent = [o for o in state.occurrences if o >= t - within]
        if g.state in ("open", "resolving"):
            last = max(state.occurrences) if state.occurrences else 0.0
            return bool(g.members) and t - last < cfg.quiet, t
        if len(recent) >= cfg.count:
            return True, sorted(recent)[-cfg.count]
        return False, t

    def hold_due(self, g: Group, since: float, t: float) -> float:
        hold = self.rule.signals[0].hold if self.rule.signals else 0.0
        return max(t, since + hold)

    def open_due(self, g: Group, t: float) -> float | None:
        seen = state_of(g, Occurrences).occurrences
        last = max(seen) if seen else t
        return last + self.config.quiet
