"""What a rule kind is: its own keys in rules.yaml, its own group state, and its answers to
the few questions the engine asks of every rule.

The engine (``watcher.rules.groups``, ``routing``, ``tickets``) runs one state machine for
every group (idle, pending, open, resolving, suppressed, closed) with holds, flapping,
symptoms and tickets; what differs between kinds is only what makes the condition true,
when a pending group is due, what a group keeps, and what its ticket says.  A kind is a
subclass of ``RuleKind`` answering those questions, registered in ``RULE_KINDS``
(``watcher/rules/kinds/__init__.py``); one instance serves one rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, cast

if TYPE_CHECKING:
    from watcher.config.inventory import Client
    from watcher.config.rules import Rule
    from watcher.config.yamlload import Reader
    from watcher.model import Event, Ticket
    from watcher.rules.engine import Engine
    from watcher.rules.groups import Group


class GroupState(Protocol):
    """A kind's own part of a group's state, stored with the group's row (its keys beside the
    common ones, as the row always had them)."""

    def to_row(self) -> dict[str, Any]: ...


@dataclass(slots=True)
class NoState:
    """The group state of a kind that keeps nothing of its own."""

    def to_row(self) -> dict[str, Any]:
        return {}


C = TypeVar("C", covariant=True)
S = TypeVar("S")


def state_of(g: Group, cls: type[S]) -> S:
    """The group's ``kind_state`` as its kind's own type."""
    state = g.kind_state
    assert isinstance(state, cls)
    return state


class RuleKind(Generic[C]):
    """One rule's behaviour; ``C`` is the kind's config type (``config``, made by ``parse``).
    The defaults are an outage's: the engine does all but say when the condition holds."""

    name: ClassVar[str]
    keys: ClassVar[frozenset[str]] = frozenset()  # the kind's own keys in rules.yaml
    needs_signals: ClassVar[bool] = True
    routed: ClassVar[bool] = True  # alerts reach it through its signals, symptoms and resolvers
    catches_the_rest: ClassVar[bool] = False  # it takes alerts no routed rule names
    opens_when_due: ClassVar[bool] = False  # a pending group opens at its due time, whatever the condition

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.config = cast(C, rule.config)  # made by this kind's ``parse`` (watcher.config.rules)

    @classmethod
    def parse(cls, r: Reader) -> C:
        """The kind's own config from its rule's keys (``r``: the rule, for file:line:key errors)."""
        return cast(C, None)

    # ------------------------------------------------------------ group state

    def new_state(self) -> GroupState:
        return NoState()

    def state_from_row(self, row: dict[str, Any]) -> GroupState:
        """The kind's state from a stored group row (rows of earlier releases hold every kind's keys)."""
        return NoState()

    def keep_when_idle(self, g: Group) -> bool:
        """Whether an idle group with no members is kept (it remembers something that matters)."""
        return False

    # ------------------------------------------------------------ routing

    def metrics(self) -> tuple[tuple[str, str], ...]:
        """(metric, role) of the metric samples the rule reads."""
        return ()

    def catches(self, labels: dict[str, str]) -> bool:
        """For a kind that ``catches_the_rest``: does it take this alert?"""
        return False

    def take_sample(self, engine: Engine, g: Group, role: str, ev: Event, labels: dict[str, str], value: float,
                    t: float) -> bool:
        """A metric sample for the group; True if the group's condition is to be evaluated."""
        return False

    # ------------------------------------------------------------ the condition and its holds

    def on_firing_member(self, g: Group, change: str, start: float, t: float) -> None:
        """A firing alert of the group was seen at ``t`` (``change``: new, occurrence or
        duplicate; ``start``: the occurrence's start)."""

    def condition(self, engine: Engine, g: Group, t: float) -> tuple[bool, float]:
        """Is the rule's condition true for the group, and since when?"""
        raise NotImplementedError

    def hold_due(self, g: Group, since: float, t: float) -> float:
        """When a pending group whose condition holds since ``since`` opens."""
        return max(t, since)

    def open_due(self, g: Group, t: float) -> float | None:
        """When an open group is to be looked at again (None: only when its alerts change)."""
        return None

    def idle_due(self, g: Group, t: float) -> float | None:
        """When a group that has just gone idle (its incident over) is to be looked at again
        though no event comes: a kind whose condition is made by time passing, not by alerts
        (None: only when an event comes)."""
        return None

    # ------------------------------------------------------------ its ticket

    def open_details(self, engine: Engine, g: Group, client: Client, details: dict[str, object]) -> str | None:
        """Fill the new ticket's kind-specific details; the person to advise, if any."""
        return None

    def on_open(self, engine: Engine, tk: Ticket, t: float) -> None:
        """After the ticket opened and its people were told."""
