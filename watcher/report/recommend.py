"""Recommendations from the month's figures: a table of rules, each row a subject kind,
conditions on its figures, and the advice with its reason.

The built-in rows (``DEFAULT_RULES``) are the helpdesk's experience: an office with repeated
or long outages needs a backup link; a share forecast to fill within 60 days needs cleanup
or more space; repeated quota problems call for an archiving policy; repeated login
failures for password or MFA help; escalations concentrated in one category for a review of
that service.  watcher.yaml adds rows in the same form (``watcher.config.report``).

Evaluation is pure: ``Report`` in, ``Recommendation``s out, each carrying the figures that
met the rule's conditions, so the reader sees why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from watcher.config.inventory import Client
from watcher.config.report import Condition, RecommendationRule, ReportConfig
from watcher.report import i18n
from watcher.report.data import Recommendation, Report


def _rule(name: str, per: str, when: Sequence[str], match_any: bool, advice: dict[str, str],
          why: dict[str, str]) -> RecommendationRule:
    conditions = []
    for text in when:
        figure, op, value = text.split()
        conditions.append(Condition(figure, op, float(value)))
    return RecommendationRule(name, per, tuple(conditions), match_any, advice, why)


DEFAULT_RULES: tuple[RecommendationRule, ...] = (
    _rule("backup-link", "office", ["outages >= 2", "longest_hours >= 4"], True,
          {"en": "{name}: we recommend a backup internet link (LTE/5G) with automatic failover.",
           "pl": "{name}: rekomendujemy zapasowe łącze internetowe (LTE/5G) z automatycznym "
                 "przełączaniem."},
          {"en": "Repeated or long outages stop the office's work, and a second link keeps it online "
                 "while the first is repaired.",
           "pl": "Powtarzające się lub długie awarie zatrzymują pracę biura, a drugie łącze utrzymuje je "
                 "w sieci, gdy pierwsze jest naprawiane."}),
    _rule("share-space", "share", ["days_to_full <= 60"], False,
          {"en": "Share {name} will be full around {fill_date}: clean up or expand it, starting with the "
                 "folders that grew most ({folders}).",
           "pl": "Udział {name} zapełni się około {fill_date}: trzeba go uporządkować lub powiększyć, "
                 "zaczynając od folderów, które urosły najbardziej ({folders})."},
          {"en": "A full share stops everyone who saves to it, and cleanup takes time to agree on.",
           "pl": "Pełny udział zatrzymuje każdego, kto na nim zapisuje, a porządki wymagają czasu na "
                 "uzgodnienia."}),
    _rule("archiving-policy", "mailbox", ["quota >= 2"], False,
          {"en": "Mailbox {name}: we recommend an archiving policy (automatic archive of mail older "
                 "than a year).",
           "pl": "Skrzynka {name}: rekomendujemy zasady archiwizacji (automatyczne archiwum poczty "
                 "starszej niż rok)."},
          {"en": "A mailbox that keeps reaching its quota will soon refuse mail; archiving frees it for good.",
           "pl": "Skrzynka, która wciąż dochodzi do limitu, wkrótce zacznie odrzucać pocztę; archiwizacja "
                 "zwalnia miejsce na stałe."}),
    _rule("sign-in-help", "mailbox", ["login_failures >= 2"], False,
          {"en": "Mailbox {name}: we offer help with the password and multi-factor sign-in (MFA).",
           "pl": "Skrzynka {name}: proponujemy pomoc przy haśle i logowaniu dwuskładnikowym (MFA)."},
          {"en": "Repeated failed logins are either a forgotten password on a device or someone "
                 "guessing it, and both are fixed at the account.",
           "pl": "Powtarzające się nieudane logowania to zapomniane hasło na urządzeniu albo próby "
                 "odgadnięcia hasła; oba problemy rozwiązuje się na koncie."}),
    _rule("service-review", "category", ["escalations >= 2", "escalation_share >= 0.5"], False,
          {"en": "{name}: we propose a review of this service with your administrators.",
           "pl": "{name}: proponujemy przegląd tej usługi z Państwa administratorami."},
          {"en": "Most of the month's escalations came from this one service, so a fix there removes "
                 "most of the waiting.",
           "pl": "Większość eskalacji w miesiącu dotyczyła tej jednej usługi, więc poprawa w niej usunie "
                 "większość oczekiwania."}),
)


def rules_for(cfg: ReportConfig | None) -> tuple[RecommendationRule, ...]:
    """The table in force: the built-in rows (unless ``defaults: false``) and the configured ones."""
    if cfg is None:
        return DEFAULT_RULES
    return (DEFAULT_RULES if cfg.defaults else ()) + cfg.rules


Subject = tuple[str, str, dict[str, float | None], dict[str, str]]  # id, name, figures, words


def _offices(r: Report, client: Client, lang: str) -> Iterator[Subject]:
    for o in r.offices:
        yield o.id, o.name, {"outages": o.outages, "planned": o.planned,
                             "downtime_hours": round(o.downtime_minutes / 60, 1),
                             "longest_hours": round(o.longest_minutes / 60, 1)}, {}


def _shares(r: Report, client: Client, lang: str) -> Iterator[Subject]:
    for s in r.shares:
        folders = ", ".join(f + (f" ({p})" if p else "") for f, p, _ in s.folders) or "-"
        yield s.id, s.name, {
            "days_to_full": round(s.days_to_full, 1) if s.days_to_full is not None else None,
            "used_pct": round(s.used_pct, 1) if s.used_pct is not None else None,
            "growth_gb": round(s.growth_bytes / 1e9, 1) if s.growth_bytes is not None else None,
        }, {"folders": folders, "fill_date": i18n.day(s.fill_date.astimezone(client.timezone), lang)
            if s.fill_date else "-"}


def _mailboxes(r: Report, client: Client, lang: str) -> Iterator[Subject]:
    for b in r.mail.mailboxes:
        yield b.address, b.address, {"tickets": b.tickets, "quota": b.quota, "login_failures": b.login_failures,
                                     "bounces": b.bounces}, {"person": b.person or "-"}


def _categories(r: Report, client: Client, lang: str) -> Iterator[Subject]:
    escalated = r.escalated_by_category
    total = sum(escalated.values())
    for cat, n in r.by_category.items():
        e = escalated.get(cat, 0)
        yield cat, i18n.category(cat, lang), {"tickets": n, "escalations": e,
                                              "escalation_share": round(e / total, 2) if total else 0.0}, {}


def _client(r: Report, client: Client, lang: str) -> Iterator[Subject]:
    missed = (r.sla.helpdesk_reaction.missed + r.sla.admin_reaction.missed + r.sla.admin_resolution.missed
              if r.sla else 0)
    yield client.id, client.name, {"tickets": r.tickets, "escalations": r.escalated, "sla_missed": missed,
                                   "sudden_outages": r.sudden_outages, "callbacks": r.callbacks}, {}


SUBJECTS: dict[str, Callable[[Report, Client, str], Iterator[Subject]]] = {
    "office": _offices, "share": _shares, "mailbox": _mailboxes, "category": _categories, "client": _client,
}
"""Where each subject kind's figures come from: one explicit table, one entry per ``per``."""


class _Words(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fmt(value: float | None, lang: str) -> str:
    return "-" if value is None else i18n.number(value, lang)


def recommend(r: Report, client: Client, rules: Sequence[RecommendationRule]) -> list[Recommendation]:
    """Every (rule, subject) whose figures meet the rule, in table order, with those figures."""
    lang = r.language
    out: list[Recommendation] = []
    for rule in rules:
        for sid, name, figures, words in SUBJECTS[rule.per](r, client, lang):
            results = [c.holds(figures.get(c.figure)) for c in rule.when]
            if not (any(results) if rule.match_any else all(results)):
                continue
            shown: dict[str, Any] = {c.figure: figures.get(c.figure) for c in rule.when}
            text_vars = _Words({k: _fmt(v, lang) for k, v in figures.items()})
            text_vars.update(words, name=name, id=sid)
            advice = (rule.advice.get(lang) or next(iter(rule.advice.values()))).format_map(text_vars)
            why = (rule.why.get(lang) or next(iter(rule.why.values()))).format_map(text_vars)
            out.append(Recommendation(rule.name, rule.per, sid, name, advice, why,
                                      {k: v for k, v in shown.items() if v is not None}))
    return out
