"""Every Polish template, for every notice kind and every kind of ticket, read as a client reads it.

The list of forbidden phrasings holds wordings a Polish client noticed (and forms a
template bug produces: a Python value in the text, a decimal point, an English fallback);
the required forms are what each kind of message must say.  A new template or kind is
covered as soon as it is added to ``NOTIFICATION_KINDS``, because the test walks them all.
"""

from __future__ import annotations

import html as htmllib
import re
from typing import Any

import pytest

from tests.test_notify_render import CATEGORIES, context
from watcher.model import NOTIFICATION_KINDS
from watcher.notify.render import render

# Wordings that must never reach a client again, with why.
FORBIDDEN: dict[str, str] = {
    "mamy do Państwa oddzwonić": "nobody has called them: offer the call instead",
    "oddzwonić, wystarczy": "the callback offer says 'abyśmy zadzwonili'",
    "nic nie wiemy o": "the office's answer reads 'To awaria – nie wiemy o żadnej planowanej przerwie'",
    "albo nic nie wiemy": "see above",
    "zajęty już w": "word order: 'jest już zajęty w'",
    "urósł": "a folder 'się powiększył', it does not grow like a child",
    "wydłużają ich tworzenie": "'wydłużają tworzenie kopii i przywracanie danych'",
    "odtwarzanie danych": "data is 'przywracane' from backups",
    "Powiadom mnie": "the mail says 'Proszę o telefon': the page must say the same",
    "Tell me": "English in a Polish message",
    "Thank you": "English in a Polish message",
    "None": "a Python None leaked into the text",
    "{'": "a Python dict leaked into the text",
    "['": "a Python list leaked into the text",
    "{{": "an unrendered template expression",
    "{%": "an unrendered template statement",
    " państwa": "the polite 'Państwo' is capitalised",
    " państwo": "the polite 'Państwo' is capitalised",
    "  ": "a double space",
    " %": "Polish writes '92%' without a space",
    " ,": "a space before a comma",
    " .": "a space before a full stop",
    "file_kinds": "raw detail keys are not for readers",
    "100000.0": "a raw byte count",
}
_DECIMAL_POINT = re.compile(r"\d\.\d")  # 92.4 instead of 92,4 (dates are written 2026-11-02)

ADMIN_KINDS = ("office_check", "escalated", "reaction_missed", "resolution_missed", "disk_review")
PROBLEMS = {"quota": "MailboxQuotaNearlyFull", "login": "MailboxLoginFailed", "bounce": "MailDeliveryFailed"}


def _visible(html: str) -> str:
    """The words of an HTML message as a reader sees them (tags dropped, entities decoded)."""
    text = re.sub(r"<(style|head)[^>]*>.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"</?(strong|em|b|i|span|a)\b[^>]*>", "", text)  # inline: no gap
    text = re.sub(r"<[^>]+>", " ", text)
    return " ".join(htmllib.unescape(text).split())


def _cases() -> list[tuple[str, str, dict[str, Any]]]:
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for kind in NOTIFICATION_KINDS:
        for category in CATEGORIES:
            extra: dict[str, Any] = {}
            if kind == "resolved":
                extra = {"status": "resolved", "resolved_at": "2026-11-02T09:40:00Z"}
            if kind == "planned":
                extra = {"planned": True}
            cases.append((kind, category, extra))
            if category == "mailbox":
                for problem in PROBLEMS:
                    details = {**CATEGORIES["mailbox"]["details"], "problem": problem,
                               "bounced": [{"to": "biuro@klient.example", "subject": "Faktura 11/2026"}]}
                    cases.append((kind, f"mailbox-{problem}", {**extra, "details": details}))
    return cases


@pytest.mark.parametrize(("kind", "category", "extra"), _cases(),
                         ids=[f"{k}-{c}" for k, c, _ in _cases()])
def test_polish_template_has_no_forbidden_phrasing(kind: str, category: str, extra: dict[str, Any]) -> None:
    base = category.split("-", 1)[0]
    person = kind not in ADMIN_KINDS
    ctx = context(base, person=person, **extra)
    message = render(kind, "pl", ctx)
    for part, text in (("subject", message.subject), ("text", message.text),
                       ("html", _visible(message.html or ""))):
        for phrase, why in FORBIDDEN.items():
            assert phrase not in text, f"{kind}/{category} {part}: {phrase!r} ({why})\n{text}"
        for line in text.splitlines():
            if "http" not in line and "@" not in line:
                assert not _DECIMAL_POINT.search(line), f"{kind}/{category} {part}: decimal point in {line!r}"
    assert "T-000123" in message.text
    if person:
        assert message.text.startswith("Dzień dobry,\n\n"), f"{kind}/{category}: a client is greeted"
        assert "Pozdrawiamy" in message.text


@pytest.mark.parametrize("kind", ["opened", "planned"])
def test_callback_offer_is_worded_as_an_offer(kind: str) -> None:
    """Both notices people get while it is broken carry the same offer, in the same words."""
    message = render(kind, "pl", context(planned=kind == "planned"))
    assert "Jeśli chcą Państwo, abyśmy zadzwonili po" in message.text
    assert "https://watcher.example/l/cb?t=a.b" in message.text
    assert "Proszę o telefon" in _visible(message.html or "")


def test_office_check_failure_answer_reads_naturally() -> None:
    message = render("office_check", "pl", context(person=False))
    assert "To awaria – nie wiemy o żadnej planowanej przerwie:" in message.text
    assert "To awaria – nie wiemy o żadnej planowanej przerwie" in _visible(message.html or "")


def test_advice_wording() -> None:
    text = render("advice", "pl", context("disk")).text
    assert "jest już zajęty w 92%" in text
    assert "najbardziej się powiększył właśnie ten folder" in text
    assert "wydłużają tworzenie kopii i przywracanie danych" in text


def test_each_mailbox_problem_says_what_to_do() -> None:
    def opened(problem: str) -> str:
        details = {"mailbox": "jan.kowalski@acme.example", "problem": problem,
                   "bounced": [{"recipient": "biuro@klient.example", "subject": "Faktura 11/2026",
                                "direction": "outbound"}]}
        message = render("opened", "pl", context("mailbox", details=details))
        return message.subject + "\n" + message.text

    quota = opened("quota")
    assert "Skrzynka pocztowa jan.kowalski@acme.example jest prawie pełna" in quota
    assert "Prosimy o porządki w poczcie" in quota and "archiwum" in quota
    login = opened("login")
    assert "Nieudane logowania do skrzynki" in login and "zmienić hasło" in login
    bounce = opened("bounce")
    assert "- „Faktura 11/2026” do biuro@klient.example" in bounce
    assert len({quota, login, bounce}) == 3


def test_escalation_reads_as_words_not_data() -> None:
    details = {"share_name": "Projekty", "used_pct": 92.4, "days_to_full": 3.6,
               "file_kinds": {"documents": 100000.0}, "share_growth_bytes": 12_000_000_000,
               "top_folders": [{"folder": "Jan", "person": "jan.kowalski", "growth_bytes": 500_000}]}
    ctx = context("disk", person=False, details=details,
                  escalation={"team": "Administracja IT", "by": "ola", "reason": "nie da się zdalnie",
                              "react_by": "2026-11-02T12:00:00Z", "resolve_by": "2026-11-03T12:00:00Z"})
    text = render("escalated", "pl", ctx).text
    assert "Rodzaje plików: dokumenty" in text
    assert "Przyrost dysku w oknie prognozy: 12,0 GB" in text
    assert "Jan (jan.kowalski) +0,5 MB" in text
    assert "Przekazane do: Administracja IT (przekazał: ola)" in text and "Powód: nie da się zdalnie" in text
    review = render("disk_review", "pl", ctx).text
    assert "Nikt nie dostał jeszcze porady" in review and "+12,0 GB" in review


def test_mailbox_advice_offers_no_call_after_a_repair() -> None:
    """A full mailbox or a password is the person's own step: no "call me when it is fixed"."""
    for problem in ("quota", "login", "bounce"):
        details = {"mailbox": "jan.kowalski@acme.example", "problem": problem}
        assert "abyśmy zadzwonili" not in render("opened", "pl", context("mailbox", details=details)).text
