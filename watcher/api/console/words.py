"""The console's words in each language it speaks (``console_auth.LANGUAGES``: Polish and English).

One table per language, keyed alike, so that a template says ``w.acknowledge`` and a new
word is one row in each table; the pages and the SLA clock read them through ``words``.
"""

from __future__ import annotations

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "open_tickets": "Open tickets", "ticket": "ticket", "client": "client", "what": "what", "title": "title",
        "opened": "opened", "sla": "SLA reaction", "affected": "affected", "callbacks": "call back",
        "events": "events", "no_open": "No open tickets.", "acknowledge": "acknowledge", "resolve": "resolve",
        "mark_planned": "mark planned", "add_callback": "add to callback list", "planned": "planned",
        "acknowledged": "acknowledged", "escalated": "escalated", "late_by": "late by", "left": "left",
        "ago": "ago", "just_now": "just now", "min": "min", "h": "h", "call_owed": "call owed",
        "called": "called", "signed_in_as": "signed in as", "sign_out": "sign out", "sign_in": "Sign in",
        "name": "name", "password": "password", "wrong_login": "Wrong name or password.",
        "timeline": "Timeline", "symptoms": "Symptoms", "people": "Affected people", "contact": "contact",
        "delivery": "notices", "sent": "sent", "retrying": "retrying", "undelivered": "undelivered",
        "queued": "queued", "nobody": "nobody", "office": "office", "status": "status", "open": "open",
        "resolved": "resolved", "silences": "Silences and maintenance", "unbound": "Unbound events",
        "quarantine": "Quarantined items", "undelivered_notices": "Undelivered notices",
        "health": "Collector health", "tickets": "Tickets", "matchers": "matchers", "until": "until",
        "from": "from", "comment": "comment", "mute": "mute (open nothing)", "create": "create",
        "lift": "lift", "site": "office", "reason": "reason", "maintenances": "Maintenance windows",
        "none": "None.", "not_available": "Not available in this version of watcher.", "error": "error",
        "last_run": "last run", "last_error": "last error", "runs": "runs", "job": "job",
        "recipient": "recipient", "kind": "kind", "attempts": "attempts", "count": "count", "first": "first",
        "last": "last", "source": "source", "names": "names", "item": "item", "at": "at",
        "updated": "updated", "failing": "failing", "ok": "ok", "phone": "phone", "person": "person",
        "details": "details", "back": "all tickets", "office_answer": "office answered",
        "lift_needs_api": "Lifting needs the silence API (GET/DELETE /api/v1/silences).",
        "by": "by", "language": "język: polski", "callers": "callers", "notices_failing": "failing",
        "calls": "Calls to make", "call_now": "now", "who": "who", "best_time": "best time", "note": "note",
        "reached": "reached", "left_message": "left a message", "no_answer": "no answer", "failure": "failure",
        "escalate": "escalate", "escalate_why": "Escalate to the administrators: why can the helpdesk not solve it?",
        "with": "with", "react_by": "react by", "resolve_by": "resolve by", "missed": "missed",
        "reaction": "reaction", "resolution": "resolution", "and": "and", "no_calls": "No calls owed.",
    },
    "pl": {
        "open_tickets": "Otwarte zgłoszenia", "ticket": "zgłoszenie", "client": "klient", "what": "czego dotyczy",
        "title": "tytuł", "opened": "otwarte", "sla": "reakcja SLA", "affected": "dotknięci",
        "callbacks": "oddzwonić", "events": "zdarzenia", "no_open": "Brak otwartych zgłoszeń.",
        "acknowledge": "przyjmij", "resolve": "rozwiąż", "mark_planned": "oznacz jako planowane",
        "add_callback": "dodaj do oddzwonienia", "planned": "planowane", "acknowledged": "przyjęte",
        "escalated": "eskalowane", "late_by": "spóźnione o", "left": "zostało", "ago": "temu",
        "just_now": "przed chwilą", "min": "min", "h": "godz.", "call_owed": "trzeba zadzwonić",
        "called": "oddzwonione", "signed_in_as": "zalogowany:", "sign_out": "wyloguj", "sign_in": "Zaloguj",
        "name": "nazwa", "password": "hasło", "wrong_login": "Zła nazwa lub hasło.",
        "timeline": "Przebieg", "symptoms": "Objawy", "people": "Dotknięte osoby", "contact": "kontakt",
        "delivery": "powiadomienia", "sent": "wysłane", "retrying": "ponawiane", "undelivered": "niedostarczone",
        "queued": "w kolejce", "nobody": "nikt", "office": "biuro", "status": "stan", "open": "otwarte",
        "resolved": "rozwiązane", "silences": "Wyciszenia i prace planowe", "unbound": "Zdarzenia bez przypisania",
        "quarantine": "Odłożone elementy", "undelivered_notices": "Niedostarczone powiadomienia",
        "health": "Stan kolektorów", "tickets": "Zgłoszenia", "matchers": "etykiety", "until": "do",
        "from": "od", "comment": "komentarz", "mute": "wycisz (nie otwieraj)", "create": "utwórz",
        "lift": "zdejmij", "site": "biuro", "reason": "powód", "maintenances": "Prace planowe",
        "none": "Brak.", "not_available": "Niedostępne w tej wersji watchera.", "error": "błąd",
        "last_run": "ostatnio", "last_error": "ostatni błąd", "runs": "uruchomienia", "job": "zadanie",
        "recipient": "odbiorca", "kind": "rodzaj", "attempts": "próby", "count": "liczba", "first": "pierwsze",
        "last": "ostatnie", "source": "źródło", "names": "nazwy", "item": "element", "at": "kiedy",
        "updated": "odświeżono", "failing": "nie działa", "ok": "działa", "phone": "telefon", "person": "osoba",
        "details": "szczegóły", "back": "wszystkie zgłoszenia", "office_answer": "odpowiedź biura",
        "lift_needs_api": "Zdjęcie wymaga API wyciszeń (GET/DELETE /api/v1/silences).",
        "by": "przez", "language": "language: English", "callers": "dzwoniący", "notices_failing": "nieudane",
        "calls": "Telefony do wykonania", "call_now": "teraz", "who": "kto", "best_time": "najlepiej",
        "note": "notatka", "reached": "rozmowa", "left_message": "zostawiona wiadomość", "no_answer": "nie odbiera",
        "failure": "awaria", "escalate": "eskaluj",
        "escalate_why": "Eskalacja do administratorów: dlaczego helpdesk nie może tego rozwiązać?",
        "with": "u", "react_by": "reakcja do", "resolve_by": "rozwiązanie do", "missed": "przekroczone",
        "reaction": "reakcja", "resolution": "rozwiązanie", "and": "i", "no_calls": "Brak telefonów do wykonania.",
    },
}


def words(lang: str) -> dict[str, str]:
    """The words of ``lang``; English for a language the console does not speak."""
    return WORDS.get(lang, WORDS["en"])
