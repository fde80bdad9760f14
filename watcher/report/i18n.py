"""The report's words in Polish and English, with plural forms and dates from Babel.

Polish has three plural forms for whole numbers ("1 zgłoszenie", "2 zgłoszenia",
"5 zgłoszeń") and a fourth for fractions ("1,5 godziny"); Babel's CLDR plural rules pick
the form, so a count is never glued to the wrong noun.  Numbers and dates are formatted in
the report's locale (decimal comma and "listopad 2026" in Polish).
"""

from __future__ import annotations

from datetime import date, datetime, tzinfo

from babel import Locale
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_decimal

# noun -> language -> CLDR plural category -> word
NOUNS: dict[str, dict[str, dict[str, str]]] = {
    "ticket": {"pl": {"one": "zgłoszenie", "few": "zgłoszenia", "many": "zgłoszeń", "other": "zgłoszenia"},
               "en": {"one": "ticket", "other": "tickets"}},
    "outage": {"pl": {"one": "awaria", "few": "awarie", "many": "awarii", "other": "awarii"},
               "en": {"one": "outage", "other": "outages"}},
    "break": {"pl": {"one": "planowana przerwa", "few": "planowane przerwy", "many": "planowanych przerw",
                     "other": "planowanej przerwy"},
              "en": {"one": "planned break", "other": "planned breaks"}},
    "hour": {"pl": {"one": "godzina", "few": "godziny", "many": "godzin", "other": "godziny"},
             "en": {"one": "hour", "other": "hours"}},
    "minute": {"pl": {"one": "minuta", "few": "minuty", "many": "minut", "other": "minuty"},
               "en": {"one": "minute", "other": "minutes"}},
    "day": {"pl": {"one": "dzień", "few": "dni", "many": "dni", "other": "dnia"},
            "en": {"one": "day", "other": "days"}},
    "escalation": {"pl": {"one": "eskalacja", "few": "eskalacje", "many": "eskalacji", "other": "eskalacji"},
                   "en": {"one": "escalation", "other": "escalations"}},
    "person": {"pl": {"one": "osoba", "few": "osoby", "many": "osób", "other": "osoby"},
               "en": {"one": "person", "other": "people"}},
    "callback": {"pl": {"one": "oddzwonienie", "few": "oddzwonienia", "many": "oddzwonień",
                        "other": "oddzwonienia"},
                 "en": {"one": "callback", "other": "callbacks"}},
    "problem": {"pl": {"one": "problem", "few": "problemy", "many": "problemów", "other": "problemu"},
                "en": {"one": "problem", "other": "problems"}},
    "failure": {"pl": {"one": "nieudane logowanie", "few": "nieudane logowania", "many": "nieudanych logowań",
                       "other": "nieudanego logowania"},
                "en": {"one": "login failure", "other": "login failures"}},
    "bounce": {"pl": {"one": "zwrot poczty", "few": "zwroty poczty", "many": "zwrotów poczty",
                      "other": "zwrotu poczty"},
               "en": {"one": "bounce", "other": "bounces"}},
}


def locale(lang: str) -> Locale:
    return Locale.parse("pl_PL" if lang == "pl" else "en_GB")


def number(value: float, lang: str, digits: int = 1) -> str:
    """``1,5`` in Polish, ``1.5`` in English; whole numbers without decimals."""
    if float(value).is_integer():
        return format_decimal(int(value), locale=locale(lang), format="#,##0")
    return format_decimal(round(value, digits), locale=locale(lang), format="#,##0." + "#" * digits)


def plural(n: float, noun: str, lang: str, digits: int = 1) -> str:
    """``n`` with the noun in the right form: "1 zgłoszenie", "5 zgłoszeń", "1,5 godziny"."""
    forms = NOUNS[noun]["pl" if lang == "pl" else "en"]
    shown = round(n, digits)
    category = locale(lang).plural_form(int(shown) if float(shown).is_integer() else shown)
    return f"{number(shown, lang, digits)} {forms.get(category, forms['other'])}"


def month_name(month: str, lang: str) -> str:
    """``2026-11`` as "listopad 2026" or "November 2026"."""
    year, mon = (int(x) for x in month.split("-"))
    return format_skeleton("yMMMM", date(year, mon, 1), locale=locale(lang))


def short_month(month: str, lang: str) -> str:
    year, mon = (int(x) for x in month.split("-"))
    return format_skeleton("yMMM", date(year, mon, 1), locale=locale(lang))


def day(d: date | datetime, lang: str) -> str:
    """A date in long form: "15 grudnia 2026", "15 December 2026"."""
    return format_date(d, format="long", locale=locale(lang))


def stamp(t: datetime, lang: str, tz: tzinfo) -> str:
    """A moment in the client's time zone: "3 lis 2026, 09:30"."""
    return format_datetime(t, format="d MMM y, HH:mm", tzinfo=tz, locale=locale(lang))


def duration(minutes: float, lang: str) -> str:
    """``95`` minutes as "1 h 35 min" (the same symbols in both languages)."""
    total = round(minutes)
    hours, mins = divmod(total, 60)
    if hours and mins:
        return f"{hours} h {mins} min"
    return f"{hours} h" if hours else f"{mins} min"


# The report's fixed phrases; a key missing in one language is a test failure, not a gap.
TEXTS: dict[str, dict[str, str]] = {
    "title": {"pl": "Raport miesięczny", "en": "Monthly report"},
    "for": {"pl": "dla", "en": "for"},
    "tier": {"pl": "Pakiet SLA", "en": "SLA tier"},
    "made": {"pl": "Sporządzono", "en": "Prepared"},
    "glance": {"pl": "Miesiąc w skrócie", "en": "The month at a glance"},
    "opened": {"pl": "Otwarte zgłoszenia", "en": "Tickets opened"},
    "resolved": {"pl": "Rozwiązane zgłoszenia", "en": "Tickets resolved"},
    "sudden": {"pl": "Nagłe awarie", "en": "Sudden outages"},
    "planned": {"pl": "Planowane przerwy", "en": "Planned breaks"},
    "told": {"pl": "Osoby uprzedzone, zanim zadzwoniły", "en": "People told before they called"},
    "callbacks": {"pl": "Oddzwonienia wykonane", "en": "Callbacks made"},
    "callbacks_asked": {"pl": "z próśb o oddzwonienie", "en": "of callbacks asked for"},
    "by_category": {"pl": "Zgłoszenia według kategorii", "en": "Tickets by category"},
    "category": {"pl": "Kategoria", "en": "Category"},
    "count": {"pl": "Liczba", "en": "Count"},
    "sla": {"pl": "SLA według pakietu", "en": "SLA by tier"},
    "sla_intro": {"pl": "Czasy liczone w godzinach pracy klienta ({hours}).",
                  "en": "Times counted in the client's business hours ({hours})."},
    "measure": {"pl": "Miara", "en": "Measure"},
    "target": {"pl": "Cel", "en": "Target"},
    "met": {"pl": "Dotrzymane", "en": "Met"},
    "missed": {"pl": "Przekroczone", "en": "Missed"},
    "pending": {"pl": "W toku", "en": "Still running"},
    "helpdesk_reaction": {"pl": "Reakcja helpdesku", "en": "Helpdesk reaction"},
    "admin_reaction": {"pl": "Reakcja administratora", "en": "Administrator reaction"},
    "admin_resolution": {"pl": "Rozwiązanie przez administratora", "en": "Administrator resolution"},
    "missed_tickets": {"pl": "Zgłoszenia poza SLA", "en": "Tickets that missed the SLA"},
    "ticket": {"pl": "Zgłoszenie", "en": "Ticket"},
    "late_by": {"pl": "spóźnienie", "en": "late by"},
    "open_still": {"pl": "wciąż otwarte", "en": "still open"},
    "none_missed": {"pl": "Wszystkie terminy SLA dotrzymane.", "en": "Every SLA deadline was met."},
    "offices": {"pl": "Biura", "en": "Offices"},
    "office": {"pl": "Biuro", "en": "Office"},
    "outages": {"pl": "Awarie", "en": "Outages"},
    "downtime": {"pl": "Łączny przestój", "en": "Total downtime"},
    "longest": {"pl": "Najdłuższy przestój", "en": "Longest downtime"},
    "timeline": {"pl": "Przestoje w miesiącu (czerwone: awarie, szare: planowane)",
                 "en": "Downtime over the month (red: outages, grey: planned)"},
    "shares": {"pl": "Dyski sieciowe", "en": "Network shares"},
    "share": {"pl": "Udział", "en": "Share"},
    "used": {"pl": "Zajęte", "en": "Used"},
    "growth": {"pl": "Przyrost w miesiącu", "en": "Growth this month"},
    "full_on": {"pl": "Prognoza zapełnienia", "en": "Forecast full"},
    "never": {"pl": "nie grozi", "en": "not in sight"},
    "grew_most": {"pl": "Foldery, które urosły najbardziej", "en": "Folders that grew most"},
    "no_samples": {"pl": "Brak pomiarów zajętości w tym miesiącu.", "en": "No usage samples this month."},
    "mail": {"pl": "Poczta", "en": "Mail"},
    "mailbox": {"pl": "Skrzynka", "en": "Mailbox"},
    "incidents": {"pl": "Zgłoszenia", "en": "Incidents"},
    "quota": {"pl": "Problemy z limitem", "en": "Quota problems"},
    "logins": {"pl": "Nieudane logowania", "en": "Login failures"},
    "bounces": {"pl": "Zwroty poczty", "en": "Bounces"},
    "server_down": {"pl": "Awarie serwera poczty", "en": "Mail server outages"},
    "no_mail": {"pl": "Bez problemów z pocztą.", "en": "No mail problems."},
    "trend": {"pl": "Trend: ten miesiąc i trzy poprzednie", "en": "Trend: this month and the three before"},
    "month": {"pl": "Miesiąc", "en": "Month"},
    "tickets": {"pl": "Zgłoszenia", "en": "Tickets"},
    "sla_missed": {"pl": "Poza SLA", "en": "SLA missed"},
    "vs_before": {"pl": "Średnio w trzech poprzednich miesiącach: {avg}.",
                  "en": "On average in the three months before: {avg}."},
    "recommendations": {"pl": "Rekomendacje", "en": "Recommendations"},
    "because": {"pl": "Dlaczego", "en": "Why"},
    "figures": {"pl": "Dane", "en": "Figures"},
    "nothing_to_recommend": {"pl": "Dane z tego miesiąca nie wskazują zmian: utrzymujemy obecną konfigurację.",
                             "en": "This month's figures call for no change: we keep the current set-up."},
    "mail_subject": {"pl": "Raport miesięczny {month}: {client}", "en": "Monthly report {month}: {client}"},
    "mail_body": {"pl": "Dzień dobry {name},\n\nw załączniku raport z obsługi za {month}: zgłoszenia, "
                        "dotrzymanie SLA, przestoje biur, dyski, poczta i nasze rekomendacje.\n\n"
                        "Pozdrawiamy,\nHelpdesk",
                  "en": "Dear {name},\n\nattached is the service report for {month}: tickets, SLA, office "
                        "downtime, shares, mail and our recommendations.\n\nKind regards,\nThe helpdesk"},
}

CATEGORY_NAMES = {
    "pl": {"internet": "Internet w biurach", "disk": "Dyski sieciowe", "mail": "Poczta", "host": "Urządzenia",
           "other": "Inne"},
    "en": {"internet": "Office internet", "disk": "Network shares", "mail": "Mail", "host": "Devices",
           "other": "Other"},
}


def t(key: str, lang: str, **kw: str) -> str:
    text = TEXTS[key]["pl" if lang == "pl" else "en"]
    return text.format(**kw) if kw else text


def category(name: str, lang: str) -> str:
    return CATEGORY_NAMES["pl" if lang == "pl" else "en"].get(name, name)
