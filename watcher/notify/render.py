"""Render a notice into a message: subject, plain text and HTML, in the reader's language.

Templates ship as package files ``watcher/templates/{language}/{kind}.subject.txt``,
``{kind}.txt`` and ``{kind}.html`` for every kind in ``watcher.model.NOTIFICATION_KINDS``
(opened, planned, advice, resolved, escalated, office_check), in Polish (``pl``) and
English (``en``).  Files whose name starts with ``_`` are shared pieces: ``_macros.txt``
(the phrases: where, what, greeting, signature), ``_layout.html`` (the HTML frame) and
``_html.html`` (a button).  Text templates import ``{lang}/_macros.txt``; HTML templates
import ``{lang}/_macros.html``, which (unless such a file exists) is the same source
compiled with autoescape, so the phrases are written once and escaped correctly in HTML.

Lookup, file by file: the person's language (``pl-PL`` tries ``pl-pl`` then ``pl``), then
English, then Polish; within each language the user's override directory (same layout) wins
over the shipped file.  So a user can reword one Polish subject and keep everything else.
One exception keeps an override from being silently ignored: when the plain text comes from
the override directory but the HTML does not, the message carries no HTML, because mail
clients show the HTML part and the user's words are in the text.

Templates run in Jinja2's immutable sandbox (an override directory is user input: no
attribute access to Python internals, no changing the caller's dicts), HTML files autoescaped, with ``StrictUndefined``
so that a misspelt variable is an error rather than an empty gap in a message.  Every
failure is raised as ``RenderError`` naming the template, its file and line.

The context the caller passes:

- ``ticket``: ``watcher.model.Ticket.to_dict()``: ``id``, ``client``, ``site``,
  ``entity`` ``{kind, id}``, ``category`` (internet, mail, host, disk, or another word),
  ``title``, ``status``, ``planned``, ``opened_at``, ``resolved_at``, ``sla``
  ``{tier, react_by, resolve_by, breached, ...}``, ``affected``, ``callbacks``,
  ``advice_to``, ``details``.  Details the templates use when present: for disk tickets
  ``folder``, ``folder_person``, ``share_name``, ``used_pct`` (0-100), ``days_to_full``,
  ``file_kinds`` (a list of words such as ``photos``, ``videos``, ``music``,
  ``archives``, ``disk_images``, ``installers``, ``documents``, ``backups``, or file
  extensions; or a mapping of those words to bytes, largest first); for mail tickets
  ``mailbox``; for host tickets ``host``; for planned outages ``maintenance``
  ``{reason, starts_at, ends_at}``.  Mail tickets whose entity kind is ``client`` are
  about the whole mail server, the others about one mailbox.
- ``person``: ``{id, name, language}``, or ``None`` for an office contact or admins.
- ``client``: ``{id, name}`` and optionally ``timezone`` (an IANA name such as
  ``Europe/Warsaw``): times are shown in it; without it, in UTC marked as such.
- ``site``: ``{id, name}`` or ``None``.
- ``links``: a dict with any of ``callback`` (the person asks to be called back when it
  is over), ``planned`` and ``failure`` (the office contact's two answers), ``ticket`` (the
  agent console, for admins).  Each is rendered only when present.
- ``now``: RFC 3339 time of rendering, so that "today at 09:15" is said relative to it.
- optional ``helpdesk``: ``{name, phone, email}`` for the signature and "call us" lines.

Filters the templates may use (all language-aware through the ``lang`` variable, which
``render`` sets to the language of the template being rendered): ``when`` ("today at
09:15", "2 November at 09:15"), ``stamp`` ("2026-11-02 09:15 CET", for admins), ``num``
(decimal comma in Polish), ``file_kinds`` (a natural list of file kinds), ``words`` ("a,
b and c"), ``quoted`` („…” in Polish, “…” in English), ``detail_lines`` (a ticket's details as
(label, text) pairs for administrators: sizes in GB, file kinds in words), ``gigabytes``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplatesNotFound,
    TemplateSyntaxError,
    pass_context,
    select_autoescape,
)
from jinja2.loaders import split_template_path
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEnvironment
from markupsafe import Markup

from watcher.model import EventError, OutboxKind, parse_time
from watcher.notify import readable

__all__ = ["FALLBACK_LANGUAGES", "TEMPLATES_DIR", "Message", "RenderError", "language_chain", "render"]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
FALLBACK_LANGUAGES: tuple[str, ...] = ("en", "pl")

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")


@dataclass(frozen=True, slots=True)
class Message:
    """A rendered notice.  ``html`` is None where no HTML template applies; ``attachments``
    are (file name, MIME type, content), such as the monthly report's PDF."""

    subject: str
    text: str
    html: str | None = None
    attachments: tuple[tuple[str, str, bytes], ...] = ()


class RenderError(Exception):
    """A template is missing or fails; the message names the template, file and line."""

    def __init__(self, message: str, *, template: str | None = None, filename: str | None = None,
                 lineno: int | None = None) -> None:
        super().__init__(message)
        self.template = template
        self.filename = filename
        self.lineno = lineno


def render(kind: OutboxKind, language: str, context: Mapping[str, Any],
           overrides_dir: Path | None = None) -> Message:
    """Render the subject, text and HTML of one notice ``kind`` for a reader of ``language``.

    Raises RenderError when a template is missing for every language tried, or fails.
    """
    if not _NAME.match(kind):
        raise RenderError(f"notice kind {kind!r} is not a template name (expected e.g. 'opened')")
    root = _override_root(overrides_dir)
    env = _environment(root)
    languages = language_chain(language)
    subject = _render_part(env, kind, "subject.txt", languages, context)
    text = _render_part(env, kind, "txt", languages, context)
    if subject is None or text is None:
        missing = f"{kind}.subject.txt" if subject is None else f"{kind}.txt"
        raise RenderError(
            f"no template {missing} for any of the languages {', '.join(languages)}",
            template=missing,
        )
    html = _render_part(env, kind, "html", languages, context)
    if html is not None and root is not None and _is_under(text.filename, root) \
            and not _is_under(html.filename, root):
        html = None
    return Message(
        subject=" ".join(subject.output.split()),
        text=_tidy_text(text.output),
        html=html.output.strip() + "\n" if html is not None else None,
    )


def language_chain(language: str) -> tuple[str, ...]:
    """The languages tried, in order: the reader's (full tag, then primary), English, Polish."""
    tag = (language or "").strip().lower().replace("_", "-")
    chain: list[str] = []
    if _LANGUAGE.match(tag):
        chain.append(tag)
        chain.append(tag.split("-", 1)[0])
    chain.extend(FALLBACK_LANGUAGES)
    return tuple(dict.fromkeys(chain))


@dataclass(frozen=True, slots=True)
class _Rendered:
    output: str
    filename: str | None


def _render_part(env: SandboxedEnvironment, kind: str, suffix: str, languages: Iterable[str],
                 context: Mapping[str, Any]) -> _Rendered | None:
    names = [f"{lang}/{kind}.{suffix}" for lang in languages]
    try:
        template = env.select_template(names)
    except TemplatesNotFound:
        return None
    except TemplateSyntaxError as exc:
        raise _error(exc, exc.name or names[0], exc.filename) from exc
    except TemplateError as exc:
        raise _error(exc, names[0], None) from exc
    name = template.name or names[0]
    try:
        output = template.render({**context, "lang": name.split("/", 1)[0]})
    except TemplateError as exc:
        raise _error(exc, name, template.filename) from exc
    return _Rendered(output, template.filename)


def _error(exc: TemplateError, name: str, filename: str | None) -> RenderError:
    where_file, lineno = filename, getattr(exc, "lineno", None)
    if isinstance(exc, TemplateSyntaxError):
        where_file = exc.filename or filename
    else:
        located = _template_frame(exc.__traceback__)
        if located is not None:
            where_file, lineno = located
    place = name
    if where_file:
        place += f" ({where_file}" + (f", line {lineno})" if lineno else ")")
    reason = exc.message or type(exc).__name__
    if isinstance(exc, TemplateNotFound) and not isinstance(exc, TemplatesNotFound):
        reason = f"template {exc.name!r} not found"
    return RenderError(f"template {place}: {type(exc).__name__}: {reason}",
                       template=name, filename=where_file, lineno=lineno)


def _template_frame(tb: TracebackType | None) -> tuple[str, int] | None:
    """The innermost traceback frame that Jinja2 rewrote to point into a template file."""
    found: tuple[str, int] | None = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".txt", ".html")):
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def _is_under(filename: str | None, root: Path) -> bool:
    return filename is not None and Path(filename).resolve().is_relative_to(root)


def _tidy_text(text: str) -> str:
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)) + "\n"


def _override_root(overrides_dir: Path | None) -> Path | None:
    if overrides_dir is None:
        return None
    root = Path(overrides_dir).expanduser().resolve()
    if not root.is_dir():
        raise RenderError(f"template override directory {root} does not exist or is not a directory")
    return root


class _Loader(BaseLoader):
    """Templates from the override directory first, then the package, file by file.

    Two things FileSystemLoader in a ChoiceLoader would get wrong:

    - A shipped template already compiled stays cached even after the user adds an override
      for it; here a template is out of date as soon as any file that would take precedence
      appears, so overrides are picked up without a restart.
    - Shared pieces must be compiled in the mode of the template that imports them: a macro
      compiled without autoescape but called from an HTML template returns its raw text marked
      safe.  So ``{lang}/_name.html``, when no such file exists, is ``{lang}/_name.txt``'s
      source compiled as HTML (autoescaped): one file of phrases serves both.
    """

    def __init__(self, roots: Sequence[Path]) -> None:
        self.roots = tuple(roots)

    def get_source(self, environment: Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        pieces = split_template_path(template)
        names = [pieces]
        if pieces[-1].startswith("_") and pieces[-1].endswith(".html"):
            names.append([*pieces[:-1], pieces[-1].removesuffix(".html") + ".txt"])
        candidates = [root.joinpath(*name) for name in names for root in self.roots]
        for index, path in enumerate(candidates):
            if not path.is_file():
                continue
            mtime = path.stat().st_mtime
            source = path.read_text(encoding="utf-8")
            shadows = candidates[:index]

            def uptodate(path: Path = path, mtime: float = mtime, shadows: list[Path] = shadows) -> bool:
                try:
                    return path.stat().st_mtime == mtime and not any(p.is_file() for p in shadows)
                except OSError:
                    return False

            return source, str(path), uptodate
        raise TemplateNotFound(template)


@lru_cache(maxsize=32)
def _environment(overrides_root: Path | None) -> SandboxedEnvironment:
    roots = [TEMPLATES_DIR] if overrides_root is None else [overrides_root, TEMPLATES_DIR]
    env = ImmutableSandboxedEnvironment(
        loader=_Loader(roots),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=True,
    )
    filters: dict[str, Callable[..., Any]] = {
        "when": _when,
        "stamp": _stamp,
        "num": _num,
        "file_kinds": _file_kinds,
        "words": _words,
        "quoted": _quoted,
        "detail_lines": _detail_lines,
        "gigabytes": _gigabytes,
    }
    env.filters.update(filters)
    return env


# ---------------------------------------------------------------- filters

_MONTHS = {
    "pl": ("stycznia", "lutego", "marca", "kwietnia", "maja", "czerwca", "lipca", "sierpnia",
           "września", "października", "listopada", "grudnia"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"),
}
_RELATIVE_DAYS = {
    "pl": {0: "dziś o {t}", -1: "wczoraj o {t}", 1: "jutro o {t}"},
    "en": {0: "today at {t}", -1: "yesterday at {t}", 1: "tomorrow at {t}"},
}
_ON_DATE = {"pl": "{d} o {t}", "en": "on {d} at {t}"}
_AND = {"pl": " i ", "en": " and "}

_FILE_KINDS: dict[str, tuple[str, str]] = {
    "photos": ("zdjęcia", "photos"),
    "videos": ("filmy", "videos"),
    "music": ("pliki muzyczne", "music files"),
    "audio": ("nagrania dźwiękowe", "audio recordings"),
    "archives": ("archiwa (ZIP, RAR i podobne)", "archives (ZIP, RAR and the like)"),
    "disk_images": ("obrazy płyt i dysków", "disk images"),
    "installers": ("pliki instalacyjne programów", "software installers"),
    "documents": ("dokumenty", "documents"),
    "spreadsheets": ("arkusze kalkulacyjne", "spreadsheets"),
    "backups": ("kopie zapasowe", "backups"),
    "mail_archives": ("archiwa poczty (PST)", "mail archives (PST)"),
    "temporary": ("pliki tymczasowe", "temporary files"),
}
_EXTENSIONS: dict[str, str] = {
    **dict.fromkeys(("jpg", "jpeg", "png", "heic", "heif", "gif", "bmp", "tif", "tiff", "raw", "cr2",
                     "nef", "arw", "dng", "webp"), "photos"),
    **dict.fromkeys(("mp4", "mov", "avi", "mkv", "wmv", "m4v", "mts", "3gp", "webm"), "videos"),
    **dict.fromkeys(("mp3", "flac", "m4a", "aac", "ogg", "wma"), "music"),
    **dict.fromkeys(("wav",), "audio"),
    **dict.fromkeys(("zip", "rar", "7z", "tar", "gz", "tgz"), "archives"),
    **dict.fromkeys(("iso", "img", "vhd", "vhdx", "vmdk"), "disk_images"),
    **dict.fromkeys(("exe", "msi", "dmg", "pkg"), "installers"),
    **dict.fromkeys(("pdf", "doc", "docx", "odt", "txt", "rtf"), "documents"),
    **dict.fromkeys(("xls", "xlsx", "ods", "csv"), "spreadsheets"),
    **dict.fromkeys(("bak", "bkf"), "backups"),
    **dict.fromkeys(("pst", "ost"), "mail_archives"),
    **dict.fromkeys(("tmp",), "temporary"),
}


def _lang(ctx: Context) -> str:
    lang = str(ctx.get("lang") or "en")
    return lang if lang in _MONTHS else "en"


def _zone(ctx: Context) -> tzinfo | None:
    """The client's time zone, or None where it is unknown (times are then shown in UTC)."""
    client = ctx.get("client")
    name = client.get("timezone") if isinstance(client, Mapping) else None
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _as_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_time(value)
    except EventError:
        return None


@pass_context
def _when(ctx: Context, value: Any) -> str:
    """A time as people say it: "today at 09:15", "on 2 November at 09:15" (client's zone)."""
    moment = _as_time(value)
    if moment is None:
        return str(value or "")
    lang, zone = _lang(ctx), _zone(ctx)
    local = moment.astimezone(zone or UTC)
    clock = local.strftime("%H:%M") + ("" if zone else " UTC")
    now = _as_time(ctx.get("now"))
    if now is not None:
        delta = (local.date() - now.astimezone(zone or UTC).date()).days
        if delta in _RELATIVE_DAYS[lang]:
            return _RELATIVE_DAYS[lang][delta].format(t=clock)
    date = f"{local.day} {_MONTHS[lang][local.month - 1]}"
    if now is None or now.astimezone(zone or UTC).year != local.year:
        date += f" {local.year}"
    return _ON_DATE[lang].format(d=date, t=clock)


@pass_context
def _stamp(ctx: Context, value: Any) -> str:
    """A precise time for admins: "2026-11-02 09:15 CET"."""
    moment = _as_time(value)
    if moment is None:
        return str(value) if value else "-"
    zone = _zone(ctx)
    local = moment.astimezone(zone or UTC)
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "UTC")


@pass_context
def _num(ctx: Context, value: Any) -> str:
    """A number for reading: whole from 10 up, one decimal below, decimal comma in Polish."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:.0f}" if abs(number) >= 10 else f"{number:.1f}".removesuffix(".0")
    return text.replace(".", ",") if _lang(ctx) == "pl" else text


@pass_context
def _words(ctx: Context, items: Any) -> str:
    """Items as a sentence list: "a, b i c" / "a, b and c"."""
    words = [str(i) for i in items] if isinstance(items, list | tuple) else [str(items)]
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + _AND[_lang(ctx)] + words[-1]


@pass_context
def _file_kinds(ctx: Context, kinds: Any) -> str:
    """File kinds (words like ``photos`` or extensions like ``jpg``) as a list in the language."""
    if isinstance(kinds, Mapping):
        ordered = sorted(kinds, key=lambda k: kinds[k] if isinstance(kinds[k], int | float) else 0,
                         reverse=True)
    elif isinstance(kinds, str):
        ordered = [kinds]
    else:
        ordered = list(kinds or [])
    index = 0 if _lang(ctx) == "pl" else 1
    seen: dict[str, None] = {}
    for raw in ordered:
        key = str(raw).strip().lower().lstrip(".")
        key = _EXTENSIONS.get(key, key)
        seen[_FILE_KINDS[key][index] if key in _FILE_KINDS else str(raw)] = None
    return _words(ctx, list(seen))


@pass_context
def _quoted(ctx: Context, value: Any) -> str:
    """Typographic quotes; in HTML the value is escaped once, whether or not it already was."""
    pattern = "„{}”" if _lang(ctx) == "pl" else "“{}”"
    if ctx.eval_ctx.autoescape:
        return Markup(pattern).format(value)
    return pattern.format(value)


@pass_context
def _detail_lines(ctx: Context, details: Any) -> list[tuple[str, str]]:
    """A ticket's details as (label, text) lines for administrators (see ``readable``)."""
    if not isinstance(details, Mapping):
        return []
    return readable.detail_lines(details, _lang(ctx), lambda kinds: _file_kinds(ctx, kinds))


@pass_context
def _gigabytes(ctx: Context, value: Any) -> str:
    """Bytes as GB (MB when small), decimal comma in Polish."""
    return readable.gigabytes(value, _lang(ctx))
