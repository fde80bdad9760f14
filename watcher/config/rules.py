"""rules.yaml: the correlation rules, parsed strictly into typed objects.

A rule is one of a few kinds, registered in ``RULE_KINDS``:

* ``outage``: a state the signals put a group in (a site offline, a host down, a mailbox
  full).  Signals have a ``for`` hold before the ticket opens, a ``resolve_after`` hold
  before it resolves (a relapse inside it is the same incident), and optional
  ``all_probes`` (every probe of the site must fail), ``resolved_by`` (another alert that
  clears this one, as LinkUp clears LinkDown) and flap detection.
* ``threshold``: N occurrences of a signal within a window (three failed logins in ten
  minutes).
* ``forecast``: a trend over metric samples that predicts when a share is full.
* ``catchall``: alerts that no other rule names, by severity, one ticket per group.

``symptoms`` of a rule are signals that belong inside its ticket while it is active;
``symptom_of`` names the rules whose active incident explains this rule's signals, so that
they attach there instead of opening a ticket of their own (inhibition that keeps the
evidence).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from watcher.config.yamlload import Reader, root_reader

RULE_KINDS = ("outage", "threshold", "forecast", "catchall")
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
    regex: re.Pattern[str] | None = None

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        found = self.regex.fullmatch(actual) is not None
        return found if self.op == "=~" else not found


def parse_matcher(label: str, spec: str) -> Matcher:
    """``value`` means equality; a leading ``=~``, ``!~``, ``!=`` or ``=`` picks the operator."""
    for op in ("=~", "!~", "!=", "="):
        if spec.startswith(op):
            value = spec[len(op):].strip()
            break
    else:
        op, value = "=", spec
    regex = re.compile(value) if op in ("=~", "!~") else None
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
    # threshold
    count: int = 1
    within: float = 600.0
    quiet: float = 1800.0
    # forecast
    metric: str = ""
    folder_metric: str = ""
    window: float = 6 * 3600.0
    horizon: float = 7 * 86400.0
    full_ratio: float = 0.9
    min_span: float = 3 * 3600.0
    min_growth_ratio: float = 0.002
    # catchall
    min_severity: str = "warning"

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
        except (re.error, OverflowError, RecursionError) as exc:
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


def load_rules(path: Path) -> Rules:
    root = root_reader(path)
    root.check_keys({"rules"})
    rules: list[Rule] = []
    names: set[str] = set()
    for rr in root.items("rules"):
        rr.check_keys({"name", "kind", "category", "entity", "group_by", "signals", "symptoms", "symptom_of",
                       "resolve_after", "affects", "office_check", "escalate", "flapping", "title",
                       "count", "within", "quiet", "metric", "folder_metric", "window", "horizon",
                       "full_ratio", "min_span", "min_growth_ratio", "min_severity", "description"})
        name = rr.text("name", required=True)
        if name in names:
            rr.fail("name", f"duplicate rule name {name!r}")
        names.add(name)
        kind = rr.text("kind", "outage")
        if kind not in RULE_KINDS:
            rr.fail("kind", f"expected one of {', '.join(RULE_KINDS)}, got {kind!r}")
        entity = rr.text("entity", "client")
        if entity not in ENTITY_KINDS:
            rr.fail("entity", f"expected one of {', '.join(ENTITY_KINDS)}, got {entity!r}")
        affects = rr.text("affects", "none")
        if affects not in AFFECTS:
            rr.fail("affects", f"expected one of {', '.join(AFFECTS)}, got {affects!r}")
        signals = tuple(_signal(s) for s in rr.items("signals"))
        if kind != "catchall" and kind != "forecast" and not signals:
            rr.fail("signals", "required: at least one signal")
        flapping = None
        fr = rr.child("flapping")
        if fr is not None:
            fr.check_keys({"changes", "window", "stable"})
            flapping = Flapping(fr.integer("changes", 6, minimum=2), fr.duration("window", 1800),
                                fr.duration("stable", 900))
        min_sev = rr.text("min_severity", "warning")
        if min_sev not in SEVERITIES:
            rr.fail("min_severity", f"expected one of {', '.join(SEVERITIES)}")
        metric = rr.text("metric", "")
        if kind == "forecast" and not metric:
            rr.fail("metric", "required for a forecast rule")
        group_by = tuple(rr.str_list("group_by")) or (entity,)
        rules.append(Rule(
            name=name, kind=kind, category=rr.text("category", "other"), entity=entity, group_by=group_by,
            signals=signals, symptoms=tuple(_signal(s) for s in rr.items("symptoms")),
            symptom_of=tuple(rr.str_list("symptom_of")), resolve_after=rr.duration("resolve_after", 0.0),
            affects=affects, office_check=rr.flag("office_check", False), escalate=rr.flag("escalate", True),
            flapping=flapping, title=_title(rr), count=rr.integer("count", 1, minimum=1),
            within=rr.duration("within", 600), quiet=rr.duration("quiet", 1800), metric=metric,
            folder_metric=rr.text("folder_metric", ""), window=rr.duration("window", 6 * 3600),
            horizon=rr.duration("horizon", 7 * 86400), full_ratio=rr.number("full_ratio", 0.9),
            min_span=rr.duration("min_span", 3 * 3600), min_growth_ratio=rr.number("min_growth_ratio", 0.002),
            min_severity=min_sev,
        ))
    for i, rule in enumerate(rules):
        for parent in rule.symptom_of:
            if parent not in names:
                item = next(x for j, x in enumerate(root.items("rules")) if j == i)
                item.fail("symptom_of", f"no rule named {parent!r}")
    return Rules(tuple(rules))
