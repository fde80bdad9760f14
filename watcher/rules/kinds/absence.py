"""``absence``: a ticket when a signal that should keep coming has not been seen for ``period``.

For the things whose news is silence: a nightly backup that reports its success, a job's
heartbeat, a sensor that pushes every few minutes.  Each group (its ``group_by`` labels, as
for any rule) remembers when its signal was last seen; once ``period`` passes without it,
the group's ticket opens (at that moment, by a timer: no event has to come), and the next
sighting resolves it (after ``resolve_after``, as for any rule).  A group exists from its
first sighting: a source that never reported is not missed here.

```yaml
- name: backup-missing
  kind: absence
  category: backup
  entity: host
  group_by: [client, host]
  signals: [{match: {alertname: BackupSucceeded}}]
  period: 26h
```
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from watcher.model import format_time
from watcher.rules.kinds.base import GroupState, RuleKind, state_of

if TYPE_CHECKING:
    from watcher.config.inventory import Client
    from watcher.config.yamlload import Reader
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


@dataclass(frozen=True)
class AbsenceConfig:
    period: float


@dataclass(slots=True)
class LastSeen:
    last_seen: float | None = None

    def to_row(self) -> dict[str, Any]:
        return {"last_seen": self.last_seen}


class Absence(RuleKind[AbsenceConfig]):
    name = "absence"
    keys = frozenset({"period"})

    @classmethod
    def parse(cls, r: Reader) -> AbsenceConfig:
        period = r.duration("period", 0.0)
        if period <= 0:
            r.fail("period", "required for an absence rule: how long the signal may stay away (e.g. 26h)")
        return AbsenceConfig(period)

    def new_state(self) -> GroupState:
        return LastSeen()

    def state_from_row(self, row: dict[str, Any]) -> GroupState:
        return LastSeen(row.get("last_seen"))

    def keep_when_idle(self, g: Group) -> bool:
        return True  # it remembers when the signal was last seen

    def on_firing_member(self, g: Group, change: str, start: float, t: float) -> None:
        state_of(g, LastSeen).last_seen = t  # a re-send counts: the source is alive

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        """While no incident is open the group waits (pending) for the silence to last
        ``period``; once open, the problem lasts as long as the silence does."""
        last = state_of(g, LastSeen).last_seen
        if last is None:
            return False, t
        silent_from = last + self.config.period
        if g.state in ("open", "resolving", "closed"):
            return t >= silent_from, t
        return True, silent_from

    def idle_due(self, g: Group, t: float) -> float | None:
        return t  # wait for the next silence straight away, not for the next sighting

    def open_details(self, engine: Engine, g: Group, client: Client, details: dict[str, object]) -> str | None:
        last = state_of(g, LastSeen).last_seen
        if last is not None:
            details["last_seen"] = format_time(datetime.fromtimestamp(last, UTC))
        details["period_s"] = self.config.period
        return None
