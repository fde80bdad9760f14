"""A ticket's details as lines an administrator reads, not as the engine stores them.

The engine keeps details as data (bytes, ratios, word keys such as ``file_kinds``); an
escalation that printed them raw (``file_kinds: {'documents': 100000.0}``) made the reader
decode it.  ``detail_lines`` gives (label, text) pairs in Polish or English: sizes in GB,
file kinds in words, days to full, the top folders by growth with their owners.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_LABELS: dict[str, tuple[str, str]] = {
    "reason": ("Powód", "Reason"),
    "used_pct": ("Zajęte", "Used"),
    "used_bytes": ("Zajęte miejsce", "Space used"),
    "size_bytes": ("Pojemność", "Capacity"),
    "days_to_full": ("Zapełni się za", "Full in"),
    "share_name": ("Dysk sieciowy", "Share"),
    "share_growth_bytes": ("Przyrost dysku w oknie prognozy", "Share growth over the forecast window"),
    "top_folders": ("Foldery, które urosły najbardziej", "Folders that grew most"),
    "folder": ("Folder", "Folder"),
    "folder_person": ("Właściciel folderu", "Folder owner"),
    "folder_growth_bytes": ("Przyrost folderu", "Folder growth"),
    "file_kinds": ("Rodzaje plików", "Kinds of files"),
    "advice": ("Porada dla pracownika", "Advice to the person"),
    "mailbox": ("Skrzynka", "Mailbox"),
    "problem": ("Rodzaj problemu", "Kind of problem"),
    "host": ("Urządzenie", "Host"),
    "office_answer": ("Odpowiedź biura", "The office's answer"),
    "maintenance": ("Planowane prace", "Planned work"),
}
_SKIP = {"reported_size", "advice_policy", "advice_by", "escalation", "tasks", "bounced", "unreachable_by_mail"}
_ADVICE = {"sent": ("wysłana automatycznie", "sent automatically"),
           "confirm": ("czeka na potwierdzenie przyczyny w konsoli",
                       "waits for the cause to be confirmed in the console"),
           "confirmed": ("wysłana po potwierdzeniu", "sent after confirmation"),
           "dismissed": ("nie będzie wysłana", "will not be sent")}
_PROBLEMS = {"quota": ("skrzynka prawie pełna", "mailbox nearly full"),
             "login": ("nieudane logowania", "failed logins"),
             "bounce": ("wiadomości nie dochodzą", "messages bounce"),
             "server_down": ("serwer poczty nie działa", "mail server down")}
_ANSWERS = {"planned": ("planowana przerwa", "planned"), "failure": ("awaria", "failure"),
            "no_answer": ("nikt nie odebrał", "no answer")}


def gigabytes(value: Any, lang: str) -> str:
    """Bytes as GB with one decimal (decimal comma in Polish); small amounts in MB."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if abs(number) < 1e8:
        text = f"{number / 1e6:.1f} MB"
    else:
        text = f"{number / 1e9:.1f} GB"
    return text.replace(".", ",") if lang == "pl" else text


def detail_lines(details: Mapping[str, Any], lang: str,
                 file_kinds: Callable[[Any], str]) -> list[tuple[str, str]]:
    """(label, text) pairs for the details worth an administrator's reading, in a stable order."""
    pl = lang == "pl"
    i = 0 if pl else 1
    out: list[tuple[str, str]] = []
    order = [k for k in _LABELS if k in details] + sorted(k for k in details if k not in _LABELS)
    for key in order:
        value = details[key]
        if key in _SKIP or value is None or value == "" or value == [] or value == {}:
            continue
        label = _LABELS.get(key, (key.replace("_", " "), key.replace("_", " ")))[i]
        if key.endswith("_bytes"):
            text = gigabytes(value, lang)
        elif key == "used_pct":
            text = (f"{float(value):.1f}".replace(".", ",") if pl else f"{float(value):.1f}") + "%"
        elif key == "days_to_full":
            days = f"{float(value):.1f}"
            text = f"{days.replace('.', ',')} dni" if pl else f"{days} days"
        elif key == "file_kinds":
            text = file_kinds(value)
        elif key == "top_folders" and isinstance(value, list):
            parts = []
            for row in value:
                if not isinstance(row, Mapping):
                    continue
                owner = f" ({row['person']})" if row.get("person") else ""
                parts.append(f"{row.get('folder')}{owner} +{gigabytes(row.get('growth_bytes', 0), lang)}")
            text = "; ".join(parts)
        elif key == "advice":
            text = _ADVICE.get(str(value), (str(value), str(value)))[i]
        elif key == "problem":
            text = _PROBLEMS.get(str(value), (str(value), str(value)))[i]
        elif key == "office_answer":
            text = _ANSWERS.get(str(value), (str(value), str(value)))[i]
        elif isinstance(value, Mapping):
            text = ", ".join(f"{k}: {v}" for k, v in value.items() if v not in (None, ""))
        elif isinstance(value, list | tuple):
            text = ", ".join(str(v) for v in value)
        else:
            text = str(value)
        if text:
            out.append((label, text))
    return out
