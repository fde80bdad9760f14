"""rules.yaml: the correlation rules, parsed strictly into typed objects.

A rule is one of a few kinds, registered in one table (``watcher.rules.kinds.RULE_KINDS``,
one file per kind).  This module reads what every rule has (name, category, entity,
grouping, signals, symptoms, holds, who is told) and hands the rest of the rule to its
kind's ``parse``, which reads the kind's own keys into the kind's own config type (errors
name the file, line and key, as everywhere).  The kinds that ship:

* ``outage``: a state the signals put a group in (a site offline, a host down, a mailbox
  full).  Signals have a ``for`` hold before the ticket opens, a ``resolve_after`` hold
  before it resolves (a relapse inside it is the same incident), and optional
  ``all_probes`` (every probe of the site must fail), ``resolved_by`` (another alert that
  clears this one, as LinkUp clears LinkDown) and flap detection.
* ``threshold``: N occurrences of a signal within a window (three failed logins in ten
  minutes).
* ``forecast``: a trend over metric samples that predicts when a share is full.
* ``catchall``: alerts that no other rule names, by severity, one ticket per group.
* ``absence``: a signal that should keep coming has not been seen for ``period``.

``symptoms`` of a rule are signals that belong inside its ticket while it is active;
``symptom_of`` names the rules whose active incident explains this rule's signals, so that
they attach there instead of opening a ticket of their own (inhibition that keeps the
evidence).
"""

from __future__ import annotations

import functools
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

from watcher.config.regex import Pattern, RegexError, compile_regex
from watcher.config.yamlload import Reader, root_reader

ENTITY_KINDS = ("site", "host", "mailbox", "share", "client")
AFFECTS = ("none", "remote_people", "site_people", "mailbox_owner", "client_mailbox_people",
           "client_people", "person")
SEVERITIES = {"none": 0, "info": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True)
class Matcher:
    """One label matcher, Alertmanager style: ``=``, ``!=``, ``=~``, ``!~`` (anchored)."""

    label: str
    op: str
    value: str
    regex: Pattern | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


@functools.lru_cache(maxsize=4096)
def parse_matcher(label: str, spec: str) -> Matcher:
    """``value`` means equality; a leading ``=~``, ``!~``, ``!=`` or ``=`` picks the operator.

    Regexes are RE2 (linear time); one it cannot take raises RegexError.  Parsed matchers
    are cached, so a silence checked against every event compiles its pattern once."""
    for op in ("=~", "!~", "!=", "="):
        if spec.startswith(op):
            value = spec[len(op):].strip()
            break
    else:
        op, value = "=", spec
    regex = compile_regex(value) if op in ("=~", "!~") else None
    return Matcher(label, op, value, regex)


@dataclass(frozen=True)
class Signal:
    matchers: tuple[Matcher, ...]
    hold: float = 0.0
    all_probes: bool = False
    resolved_by: tuple[Matcher, ...] = ()
    resolved_same: tuple[str, ...] = ()
    expire_after: float | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class Flapping:
    changes: int
    window: float
    stable: float


@dataclass(frozen=True)
class Rule:
    """What every rule has; ``config`` is its kind's own settings (the kind's config type)."""

    name: str
    kind: str
    category: str
    entity: str
    group_by: tuple[str, ...]
    signals: tuple[Signal, ...]
    symptoms: tuple[Signal, ...] = ()
    symptom_of: tuple[str, ...] = ()
    resolve_after: float = 0.0
    affects: str = "none"
    office_check: bool = False
    escalate: bool = True
    flapping: Flapping | None = None
    title: dict[str, str] = field(default_factory=dict)
    config: object = None

    @cached_property
    def kept_labels(self) -> tuple[str, ...]:
        """Labels a group of this rule keeps beyond the usual ones: its ``group_by`` and
        every ``{label}`` its title names (so a title can show any label, as documented)."""
        named: list[str] = list(self.group_by)
        for text in self.title.values():
            try:
                named += [f for _, f, _, _ in string.Formatter().parse(text) if f and f.isidentifier()]
            except ValueError:
                continue
        return tuple(dict.fromkeys(named))


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]

    def by_name(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


def _matchers(r: Reader, key: str) -> tuple[Matcher, ...]:
    child = r.child(key)
    if child is None:
        r.fail(key, "required: a mapping of label: value (or =~regex, !=value, !~regex)")
    out = []
    for label in child.data:
        spec = child.text(label, required=True)
        try:
            out.append(parse_matcher(label, spec))
        except RegexError as exc:
            child.fail(label, f"bad regular expression: {exc}")
    return tuple(out)


def _signal(r: Reader) -> Signal:
    r.check_keys({"match", "for", "all_probes", "resolved_by", "expire_after"})
    resolved_by: tuple[Matcher, ...] = ()
    same: tuple[str, ...] = ()
    rb = r.child("resolved_by")
    if rb is not None:
        rb.check_keys({"match", "same"})
        resolved_by = _matchers(rb, "match")
        same = tuple(rb.str_list("same"))
    return Signal(_matchers(r, "match"), r.duration("for", 0.0), r.flag("all_probes", False),
                  resolved_by, same, r.duration("expire_after") if r.has("expire_after") else None)


def _title(r: Reader) -> dict[str, str]:
    if not r.has("title"):
        return {}
    raw = r.raw("title")
    if isinstance(raw, str):
        return {"pl": raw, "en": raw}
    child = r.child_or_fail("title")
    child.check_keys({"pl", "en"})
    return {k: child.text(k) for k in child.data}


class KindParser(Protocol):
    """What reading rules.yaml needs of a rule kind (a class of ``watcher.rules.kinds.RULE_KINDS``
    is one): the keys it adds to a rule, whether it needs signals, and the parser of its keys."""

    @property
    def keys(self) -> frozenset[str]: ...

    @property
    def needs_signals(self) -> bool: ...

    def parse(self, r: Reader, /) -> object: ...


COMMON_KEYS = frozenset({"name", "kind", "category", "entity", "group_by", "signals", "symptoms", "symptom_of",
                         "resolve_after", "affects", "office_check", "escalate", "flapping", "title", "description"})


def load_rules(path: Path, kinds: Mapping[str, KindParser] | None = None) -> Rules:
    """The rules of ``path``; each rule's own keys are read by its kind (``kinds``, by default
    the table of the kinds that ship: the one back arrow of config/, see tests/test_architecture.py)."""
    if kinds is None:
        from watcher.rules.kinds import RULE_KINDS  # the one table of kinds; each reads its keys with this module

        kinds = RULE_KINDS
    root = root_reader(path)
    root.check_keys({"rules"})
    rules: list[Rule] = []
    names: set[str] = set()
    for rr in root.items("rules"):
        name = rr.text("name", required=True)
        if name in names:
            rr.fail("name", f"duplicate rule name {name!r}")
        names.add(name)
        kind = rr.text("kind", "outage")
        if kind not in kinds:
            rr.fail("kind", f"expected one of {', '.join(kinds)}, got {kind!r}")
        spec = kinds[kind]
        rr.check_keys(COMMON_KEYS | spec.keys)
        entity = rr.text("entity", "client")
        if entity not in ENTITY_KINDS:
            rr.fail("entity", f"expected one of {', '.join(ENTITY_KINDS)}, got {entity!r}")
        affects = rr.text("affects", "none")
        if affects not in AFFECTS:
            rr.fail("affects", f"expected one of {', '.join(AFFECTS)}, got {affects!r}")
        signals = tuple(_signal(s) for s in rr.items("signals"))
        if spec.needs_signals and not signals:
            rr.fail("signals", "required: at least one signal")
        flapping = None
        fr = rr.child("flapping")
        if fr is not None:
            fr.check_keys({"changes", "window", "stable"})
            flapping = Flapping(fr.integer("changes", 6, minimum=2), fr.duration("window", 1800),
                                fr.duration("stable", 900))
        group_by = tuple(rr.str_list("group_by")) or (entity,)
        rules.append(Rule(
            name=name, kind=kind, category=rr.text("category", "other"), entity=entity, group_by=group_by,
            signals=signals, symptoms=tuple(_signal(s) for s in rr.items("symptoms")),
            symptom_of=tuple(rr.str_list("symptom_of")), resolve_after=rr.duration("resolve_after", 0.0),
            affects=affects, office_check=rr.flag("office_check", False), escalate=rr.flag("escalate", True),
            flapping=flapping, title=_title(rr), config=spec.parse(rr),
        ))
    for i, rule in enumerate(rules):
        for parent in rule.symptom_of:
            if parent not in names:
                item = next(x for j, x in enumerate(root.items("rules")) if j == i)
                item.fail("symptom_of", f"no rule named {parent!r}")
    return Rules(tuple(rules))
