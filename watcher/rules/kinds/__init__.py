"""The rule kinds, in one table: a kind's name in rules.yaml -> its class (one file each).

Adding a kind is one file here (its config type, group state and answers, see
``base.RuleKind``), one row below, and its test; README.md ("Adding a rule kind") walks
through ``absence``.
"""

from watcher.rules.kinds.absence import Absence
from watcher.rules.kinds.base import GroupState, NoState, RuleKind
from watcher.rules.kinds.catchall import Catchall
from watcher.rules.kinds.forecast import Forecast
from watcher.rules.kinds.outage import Outage
from watcher.rules.kinds.threshold import Threshold

RULE_KINDS: dict[str, type[RuleKind[object]]] = {
    "outage": Outage,
    "threshold": Threshold,
    "forecast": Forecast,
    "catchall": Catchall,
    "absence": Absence,
}

__all__ = ["RULE_KINDS", "GroupState", "NoState", "RuleKind"]
