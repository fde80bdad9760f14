"""Rendering notices: every kind in both languages, overrides, the sandbox, clear errors."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from watcher.model import NOTIFICATION_KINDS
from watcher.notify.render import TEMPLATES_DIR, Message, RenderError, language_chain, render

CATEGORIES: dict[str, dict[str, Any]] = {
    "internet": {},
    "mailbox": {"category": "mail", "site": None, "entity": {"kind": "mailbox", "id": "jan.kowalski@acme.example"},
                "details": {"mailbox": "jan.kowalski@acme.example"}},
    "mailserver": {"category": "mail", "site": None, "entity": {"kind": "client", "id": "acme"}},
    "host": {"category": "host", "entity": {"kind": "host", "id": "krk-fs01"}},
    "disk": {"category": "disk", "entity": {"kind": "share", "id": "acme-projects"}, "advice_to": "jan.kowalski",
             "details": {"folder": "Jan", "folder_person": "jan.kowalski", "share_name": "Projekty",
                         "used_pct": 92.4, "days_to_full": 3.6, "file_kinds": ["photos", "videos"]}},
    "other": {"category": "BackupJobFailed", "entity": {"kind": "client", "id": "acme"}, "title": "BackupJobFailed"},
}


def context(category: str = "internet", *, person: bool = True, **ticket: Any) -> dict[str, Any]:
    t: dict[str, Any] = {
        "id": "T-000123", "client": "acme", "site": "acme-krk", "entity": {"kind": "site", "id": "acme-krk"},
        "category": "internet", "title": "Brak dostępu do internetu: Biuro Kraków", "status": "open",
        "planned": False, "flapping": False, "rule": "site-internet", "opened_at": "2026-11-02T08:17:00Z",
        "acknowledged_at": None, "acknowledged_by": None, "resolved_at": None, "resolved_by": None,
        "sla": {"tier": "gold", "react_by": "2026-11-02T12:17:00Z", "resolve_by": None, "breached": False,
                "escalated_at": None},
        "event_count": 37, "affected": ["jan.kowalski", "ewa.nowak"], "affected_why": {}, "advice_to": None,
        "details": {}, "callbacks": [{"person": "jan.kowalski", "added_at": "2026-11-02T08:20:00Z",
                                      "done_at": None, "how": None}],
        "notifications": [],
    }
    t.update(copy.deepcopy(CATEGORIES[category]))
    t.update(ticket)
    return {
        "ticket": t,
        "person": {"id": "jan.kowalski", "name": "Jan Kowalski", "language": "pl"} if person else None,
        "client": {"id": "acme", "name": "ACME Sp. z o.o.", "timezone": "Europe/Warsaw"},
        "site": {"id": "acme-krk", "name": "Biuro Kraków"} if t["site"] else None,
        "links": {"callback": "https://watcher.example/l/cb?t=a.b", "planned": "https://watcher.example/l/planned",
                  "failure": "https://watcher.example/l/failure"},
        "now": "2026-11-02T08:17:05Z",
    }


def test_shipped_templates_cover_every_kind_in_both_languages() -> None:
    for lang in ("pl", "en"):
        for kind in NOTIFICATION_KINDS:
            for suffix in ("subject.txt", "txt", "html"):
                assert (TEMPLATES_DIR / lang / f"{kind}.{suffix}").is_file(), f"{lang}/{kind}.{suffix}"


@pytest.mark.parametrize("lang", ["pl", "en"])
@pytest.mark.parametrize("kind", NOTIFICATION_KINDS)
@pytest.mark.parametrize("category", list(CATEGORIES))
def test_every_kind_renders_in_every_language(lang: str, kind: str, category: str) -> None:
    extra: dict[str, Any] = {}
    if kind == "resolved":
        extra = {"status": "resolved", "resolved_at": "2026-11-02T09:40:00Z"}
    if kind == "planned":
        extra = {"planned": True}
    message = render(kind, lang, context(category, person=kind not in ("office_check", "escalated"), **extra))
    assert isinstance(message, Message)
    assert message.subject and "\n" not in message.subject and message.subject == message.subject.strip()
    assert "T-000123" in message.text
    assert message.text.endswith("\n") and "\n\n\n" not in message.text
    assert "{{" not in message.text and "{%" not in message.text
    assert message.html is not None and f'<html lang="{lang}">' in message.html
    assert "T-000123" in message.html


def test_polish_reads_as_polish_with_diacritics() -> None:
    message = render("opened", "pl", context())
    assert message.subject == "Brak internetu w lokalizacji Biuro Kraków"
    assert message.text.startswith("Dzień dobry,\n\nnasz system monitorowania wykrył dziś o 09:17 ")
    assert "abyśmy zadzwonili po usunięciu usterki" in message.text
    assert "https://watcher.example/l/cb?t=a.b" in message.text
    assert "Ustalamy właśnie z biurem, czy to planowana przerwa, czy nagła awaria." in message.text
    assert "Pozdrawiamy\nHelpdesk IT" in message.text
    assert 'href="https://watcher.example/l/cb?t=a.b"' in (message.html or "")


def test_english_subject_says_what_and_where() -> None:
    assert render("opened", "en", context()).subject == "Internet outage at Biuro Kraków"
    assert render("resolved", "en", context()).subject == "Internet is back at Biuro Kraków"


def test_mail_wording_tells_one_mailbox_from_the_whole_server() -> None:
    mailbox = render("opened", "pl", context("mailbox"))
    server = render("opened", "pl", context("mailserver"))
    assert mailbox.subject == "Problem ze skrzynką pocztową jan.kowalski@acme.example"
    assert server.subject == "Awaria serwera poczty e-mail – ACME Sp. z o.o."
    assert "nie przepadają" in server.text
    assert render("resolved", "en", context("mailserver")).subject == "Mail is working again – ACME Sp. z o.o."


def test_advice_names_the_folder_and_the_kinds_of_files() -> None:
    message = render("advice", "pl", context("disk"))
    assert message.subject == "Prośba o sprawdzenie folderu „Jan” na dysku sieciowym Projekty"
    assert "jest już zajęty w 92%" in message.text
    assert "za około 4 dni" in message.text
    assert "najwięcej miejsca zajmują w nim zdjęcia i filmy" in message.text
    assert "przenieść poza dysk firmowy" in message.text
    english = render("advice", "en", context("disk", details={"folder": "Jan", "file_kinds": ["jpg", "MOV", "iso"],
                                                               "days_to_full": 0.8, "used_pct": 97}))
    assert "photos, videos and disk images" in english.text
    assert "within a day" in english.text and "fairly urgent" in english.text


def test_office_check_offers_both_answers() -> None:
    message = render("office_check", "pl", context(person=False))
    assert message.subject == "Brak internetu w lokalizacji Biuro Kraków: planowana przerwa czy awaria?"
    assert "https://watcher.example/l/planned" in message.text
    assert "https://watcher.example/l/failure" in message.text
    assert "Dzień dobry," in message.text
    html = message.html or ""
    assert html.count('href="https://watcher.example/l/planned"') == 2
    no_links = render("office_check", "en", {**context(person=False), "links": {}})
    assert "reply to this message" in no_links.text and "https://" not in no_links.text


def test_escalated_tells_admins_what_where_since_and_sla() -> None:
    message = render("escalated", "en", context(person=False))
    assert message.subject == "[T-000123] Escalation: Internet outage at Biuro Kraków (ACME Sp. z o.o.)"
    assert "Opened: 2026-11-02 09:17 CET" in message.text
    assert "React by: 2026-11-02 13:17 CET (SLA Gold)" in message.text
    assert "Callback requests (1): jan.kowalski" in message.text
    polish = render("escalated", "pl", context(person=False))
    assert "Reakcja wymagana do: 2026-11-02 13:17 CET (SLA Gold)" in polish.text


def test_resolved_confirms_the_callback_only_to_who_asked() -> None:
    asked = render("resolved", "pl", context(resolved_at="2026-11-02T09:40:00Z"))
    assert "przywrócony dziś o 10:40" in asked.text and "zadzwonimy" in asked.text
    other = context(resolved_at="2026-11-02T09:40:00Z")
    other["person"] = {"id": "ewa.nowak", "name": "Ewa Nowak", "language": "pl"}
    assert "zadzwonimy" not in render("resolved", "pl", other).text


def test_planned_notice_is_calm_and_gives_the_window() -> None:
    ctx = context(planned=True, details={"maintenance": {"reason": "wymiana routera",
                                                         "ends_at": "2026-11-02T13:00:00Z"}})
    message = render("planned", "pl", ctx)
    assert message.subject == "Planowana przerwa w dostępie do internetu – Biuro Kraków"
    assert "(wymiana routera)" in message.text and "zakończyć dziś o 14:00" in message.text
    assert "nie awaria" in message.text


def test_times_without_a_client_time_zone_say_utc() -> None:
    ctx = context()
    ctx["client"] = {"id": "acme", "name": "ACME"}
    ctx["now"] = "2026-12-24T10:00:00Z"
    assert "wykrył 2 listopada o 08:17 UTC" in render("opened", "pl", ctx).text
    assert "on 2 November at 08:17 UTC" in render("opened", "en", ctx).text


@pytest.mark.parametrize(("asked", "expected"), [("de", "en"), ("pl-PL", "pl"), ("EN_gb", "en"), ("", "en"),
                                                 ("../../etc", "en")])
def test_unknown_language_falls_back_to_english_then_polish(asked: str, expected: str) -> None:
    message = render("opened", asked, context())
    assert message.html is not None and f'lang="{expected}"' in message.html


def test_language_chain() -> None:
    assert language_chain("de") == ("de", "en", "pl")
    assert language_chain("pl-PL") == ("pl-pl", "pl", "en")
    assert language_chain("../x") == ("en", "pl")


def test_polish_is_the_last_resort(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "custom.subject.txt").write_text("Własny temat {{ ticket.id }}")
    (tmp_path / "pl" / "custom.txt").write_text("Treść")
    message = render("custom", "de", context(), overrides_dir=tmp_path)
    assert message == Message(subject="Własny temat T-000123", text="Treść\n", html=None)


def test_override_directory_wins_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "opened.subject.txt").write_text("Uwaga: {{ site.name }} bez internetu\n")
    message = render("opened", "pl", context(), overrides_dir=tmp_path)
    assert message.subject == "Uwaga: Biuro Kraków bez internetu"
    assert message.text == render("opened", "pl", context()).text
    assert message.html is not None
    english = render("opened", "en", context(), overrides_dir=tmp_path)
    assert english.subject == "Internet outage at Biuro Kraków"


def test_text_override_without_html_override_drops_the_shipped_html(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.txt").write_text("Our own words for {{ person.name }}.")
    message = render("opened", "en", context(), overrides_dir=tmp_path)
    assert message.text == "Our own words for Jan Kowalski.\n"
    assert message.html is None
    (tmp_path / "en" / "opened.html").write_text("<p>Own {{ person.name }}</p>")
    assert render("opened", "en", context(), overrides_dir=tmp_path).html == "<p>Own Jan Kowalski</p>\n"


def test_missing_override_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RenderError, match="does not exist"):
        render("opened", "pl", context(), overrides_dir=tmp_path / "nope")


def test_html_is_escaped_and_text_is_not(tmp_path: Path) -> None:
    ctx = context()
    ctx["site"] = {"id": "acme-krk", "name": "R&D <script>alert(1)</script>"}
    message = render("opened", "en", ctx)
    assert "R&D <script>" in message.text
    html = message.html or ""
    assert "<script>" not in html and "R&amp;D &lt;script&gt;" in html
    for kind in ("opened", "office_check", "resolved", "escalated"):
        other = context("other", title="<b>Disk & co</b>", person=kind != "office_check")
        other["site"] = ctx["site"]
        rendered = render(kind, "pl", other)
        assert "<b>Disk & co</b>" in rendered.subject
        assert "<b>" not in (rendered.html or "") and "&lt;b&gt;Disk &amp; co&lt;/b&gt;" in (rendered.html or "")
        assert "&lt;" not in rendered.text and "&amp;" not in rendered.text
    advice = context("disk")
    advice["ticket"]["details"].update(share_name="A&B <i>", folder="\"Jan\" & <Ewa>")
    rendered = render("advice", "en", advice)
    assert "“A&B <i>”" in rendered.text and "“A&amp;B &lt;i&gt;”" in (rendered.html or "")
    assert "&amp;amp;" not in (rendered.html or "") and "&lt;Ewa&gt;" in (rendered.html or "")


@pytest.mark.parametrize("source", [
    "{{ ticket.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ links.get.__globals__ }}",
    "{{ cycler.__init__.__globals__.os }}",
])
def test_sandbox_refuses_unsafe_attribute_access(tmp_path: Path, source: str) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.txt").write_text(f"Hello\n{source}\n")
    with pytest.raises(RenderError) as err:
        render("opened", "en", context(), overrides_dir=tmp_path)
    assert "en/opened.txt" in str(err.value)
    assert isinstance(err.value.__cause__, SecurityError | RenderError) or "unsafe" in str(err.value) \
        or "undefined" in str(err.value).lower()


def test_sandbox_error_is_a_security_error(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.txt").write_text("{{ ''.__class__ }}")
    with pytest.raises(RenderError) as err:
        render("opened", "en", context(), overrides_dir=tmp_path)
    assert isinstance(err.value.__cause__, SecurityError)
    assert "unsafe" in str(err.value)


def test_undefined_variable_names_template_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "opened.txt").write_text("Dzień dobry,\n\n{{ ticket.sitee }}\n")
    with pytest.raises(RenderError) as err:
        render("opened", "pl", context(), overrides_dir=tmp_path)
    message = str(err.value)
    assert "pl/opened.txt" in message and str(tmp_path) in message
    assert "line 3" in message and "sitee" in message
    assert (err.value.template, err.value.lineno) == ("pl/opened.txt", 3)


def test_missing_context_key_is_a_clear_error() -> None:
    ctx = context()
    del ctx["links"]
    with pytest.raises(RenderError, match=r"pl/opened\.txt.*'links' is undefined"):
        render("opened", "pl", ctx)


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.subject.txt").write_text("ok\n{% if %}\n")
    with pytest.raises(RenderError) as err:
        render("opened", "en", context(), overrides_dir=tmp_path)
    assert "en/opened.subject.txt" in str(err.value) and "line 2" in str(err.value)
    assert "TemplateSyntaxError" in str(err.value)


@pytest.mark.parametrize("kind", ["nonsense", "../etc/passwd", "Opened", ""])
def test_unknown_kind_is_an_error(kind: str) -> None:
    with pytest.raises(RenderError):
        render(kind, "pl", context())


def test_templates_cannot_change_the_callers_data(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.txt").write_text("{{ ticket.affected.clear() }}{{ ticket.details.update(x=1) }}")
    ctx = context()
    with pytest.raises(RenderError) as err:
        render("opened", "en", ctx, overrides_dir=tmp_path)
    assert isinstance(err.value.__cause__, SecurityError)
    assert ctx["ticket"]["affected"] == ["jan.kowalski", "ewa.nowak"] and ctx["ticket"]["details"] == {}


def test_an_override_added_while_running_is_picked_up(tmp_path: Path) -> None:
    assert render("opened", "en", context(), overrides_dir=tmp_path).subject == "Internet outage at Biuro Kraków"
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "opened.subject.txt").write_text("Offline: {{ site.name }}")
    assert render("opened", "en", context(), overrides_dir=tmp_path).subject == "Offline: Biuro Kraków"
