"""The ``report:`` section of watcher.yaml: when the monthly report goes out, and the table
of recommendation rules an MSP extends.

A recommendation rule names the kind of subject it looks at (an office, a share, a mailbox,
a ticket category, or the client as a whole), conditions on that subject's monthly figures
written as ``figure >= number`` (no expressions, nothing evaluated), and the advice and the
one-sentence reason in each language::

    report:
      schedule: true          # send each client's report on its first working day
      catch_up: 7d            # a service that was down that day still sends within this
      recommendations:        # added to the built-in rules (defaults: false drops those)
        - name: ups-check
          per: office
          when: ["outages >= 3"]
          advice: {en: "Check the UPS of {name}.", pl: "Sprawdźmy UPS biura {name}."}
          why: {en: "Short repeated outages are often power.", pl: "Krótkie, częste przerwy to często zasilanie."}

Every figure a condition or a text may name is listed in ``FIGURES``; a typo is an error
with file, line and key, found when the file is loaded rather than on the 1st of the month.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

from watcher.config.yamlload import Reader

FIGURES: dict[str, tuple[str, ...]] = {
    "office": ("outages", "planned", "downtime_hours", "longest_hours"),
    "share": ("days_to_full", "used_pct", "growth_gb"),
    "mailbox": ("tickets", "quota", "login_failures", "bounces"),
    "category": ("tickets", "escalations", "escalation_share"),
    "client": ("tickets", "escalations", "sla_missed", "sudden_outages", "callbacks"),
}
"""The figures of each subject kind that rules may test (see ``watcher.report.recommend``)."""

TEXT_FIELDS: dict[str, tuple[str, ...]] = {
    "office": ("name", "id"), "share": ("name", "id", "folders", "fill_date"),
    "mailbox": ("name", "id", "person"), "category": ("name", "id"), "client": ("name", "id"),
}
"""Words besides the figures that advice and reason texts may use as ``{placeholder}``."""

OPS = (">=", "<=", ">", "<", "==")
_CONDITION = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|==|>|<)\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True)
class Condition:
    figure: str
    op: str
    value: float

    def holds(self, actual: float | None) -> bool:
        if actual is None:
            return False
        return {">=": actual >= self.value, "<=": actual <= self.value, ">": actual > self.value,
                "<": actual < self.value, "==": actual == self.value}[self.op]

    def __str__(self) -> str:
        return f"{self.figure} {self.op} {self.value:g}"


@dataclass(frozen=True)
class RecommendationRule:
    """One row of the table: for each subject of kind ``per`` whose figures meet ``when``
    (all conditions, or any with ``match: any``), the advice and its reason."""

    name: str
    per: str
    when: tuple[Condition, ...]
    match_any: bool
    advice: dict[str, str]
    why: dict[str, str]


@dataclass(frozen=True)
class ReportConfig:
    schedule: bool = False
    catch_up: float = 7 * 86400.0
    interval: float = 600.0
    defaults: bool = True
    rules: tuple[RecommendationRule, ...] = field(default_factory=tuple)


def _texts(r: Reader, key: str, allowed: set[str]) -> dict[str, str]:
    texts = r.str_map(key)
    if not texts:
        r.fail(key, "required: the text in each language, e.g. {en: ..., pl: ...}")
    for lang, text in texts.items():
        if lang not in ("pl", "en"):
            r.child_or_fail(key).fail(lang, "expected a language: pl or en")
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
        except ValueError as exc:
            r.child_or_fail(key).fail(lang, f"bad placeholder: {exc}")
        unknown = names - allowed
        if unknown:
            r.child_or_fail(key).fail(lang, f"unknown placeholder {{{sorted(unknown)[0]}}} "
                                            f"(known: {', '.join(sorted(allowed))})")
    return texts


def parse_rule(r: Reader) -> RecommendationRule:
    r.check_keys({"name", "per", "when", "match", "advice", "why"})
    name = r.text("name", required=True)
    per = r.text("per", required=True)
    if per not in FIGURES:
        r.fail("per", f"expected one of {', '.join(FIGURES)}, got {per!r}")
    conditions = []
    for text in r.str_list("when"):
        m = _CONDITION.match(text)
        if not m:
            r.fail("when", f"expected like 'outages >= 2', got {text!r}")
        if m.group(1) not in FIGURES[per]:
            r.fail("when", f"no figure {m.group(1)!r} for per: {per} (known: {', '.join(FIGURES[per])})")
        conditions.append(Condition(m.group(1), m.group(2), float(m.group(3))))
    if not conditions:
        r.fail("when", "required: at least one condition like 'outages >= 2'")
    match = r.text("match", "all")
    if match not in ("all", "any"):
        r.fail("match", "expected all or any")
    allowed = set(FIGURES[per]) | set(TEXT_FIELDS[per])
    return RecommendationRule(name, per, tuple(conditions), match == "any", _texts(r, "advice", allowed),
                              _texts(r, "why", allowed))


def load_report_config(r: Reader) -> ReportConfig:
    """The ``report:`` mapping of watcher.yaml (``r`` is its reader)."""
    r.check_keys({"schedule", "catch_up", "interval", "defaults", "recommendations"})
    rules = tuple(parse_rule(item) for item in r.items("recommendations"))
    names = [rule.name for rule in rules]
    for i, rule in enumerate(rules):
        if rule.name in names[:i]:
            r.fail("recommendations", f"two rules named {rule.name!r}")
    return ReportConfig(r.flag("schedule", False), r.duration("catch_up", 7 * 86400),
                        max(1.0, r.duration("interval", 600)), r.flag("defaults", True), rules)
