"""The shared types of the pipeline: events in, tickets and notifications out.

This module imports nothing else of the package, so every stage (collectors, rules,
store, notify, api) can depend on it without cycles.  Times are always timezone-aware
UTC ``datetime`` objects inside the program and RFC 3339 strings at the edges.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, Required, Self, TypedDict, cast, overload

Status = Literal["firing", "resolved"]
TicketStatus = Literal["open", "acknowledged", "resolved"]
NotificationKind = Literal["opened", "planned", "advice", "resolved", "escalated", "office_check",
                           "reaction_missed", "resolution_missed", "disk_review", "failure_confirmed"]
NOTIFICATION_KINDS: tuple[str, ...] = ("opened", "planned", "advice", "resolved", "escalated", "office_check",
                                       "reaction_missed", "resolution_missed", "disk_review",
                                       "failure_confirmed")
OutboxKind = NotificationKind | Literal["report"]
"""What an outbox row delivers: a ticket's notice, or a client's monthly report (watcher.report.send)."""


class EventError(ValueError):
    """An input that cannot become a normalized event; the message says what is wrong."""


# Bounds checked at the edge (``Event.check``), so that whatever the engine keeps can be stored
# and serialised on both backends: JSON integers of 64 bits, times Python can add hours to.
MAX_VALUE = 1e18  # a metric value (bytes of a share...): an exabyte, and an int64 after int()
MAX_LABELS = 128
MAX_LABEL_NAME = 256
MAX_LABEL_VALUE = 1024  # longer label values are cut (a sender's odd value must not cost the batch)
MAX_ANNOTATION = 16384
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)


def _clean(text: str, limit: int) -> str:
    """A label or annotation value as it is kept: at most ``limit`` characters and no NUL
    (PostgreSQL's text cannot hold one); other control characters are kept, escaped where shown."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


def _check_time(dt: datetime | None, what: str) -> datetime | None:
    if dt is None or dt.year == 1:  # Go's zero time means "not set"
        return None
    if not MIN_TIME <= dt <= MAX_TIME:
        raise EventError(f"{what}: {format_time(dt)} is outside 1970..2200")
    return dt


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(value: Any, what: str = "time") -> datetime:
    """An RFC 3339 string (``Z`` or an offset) as an aware UTC datetime.

    Raises EventError naming ``what`` for anything else, so ingest can answer 400.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value.strip():
        raise EventError(f"{what}: expected an RFC 3339 time string, got {value!r}")
    cached = _PARSED.get(value)
    if cached is not None:
        return cached
    try:
        # Fast path for the shape senders and format_time write ("...Z" or "+00:00", no
        # padding): fromisoformat reads "Z" itself and gives the UTC singleton, which is what
        # the general path below returns for the same text.
        dt = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        dt = _parse_time_text(value, what)
    else:
        if dt.tzinfo is not UTC:
            dt = _parse_time_text(value, what)
    if len(_PARSED) >= _TIME_CACHE:
        _PARSED.clear()
    _PARSED[value] = dt
    return dt


# A storm carries the same few time strings (one ``startsAt`` per alert rule, one receive
# time per request) thousands of times: parsing and formatting each once is a tenth of the
# ingest path's CPU.  Plain dicts cleared when full: bounded, and cheaper than an LRU.
# A load of new alerts brings a distinct time per alert instead, so the caches miss: each
# function has a fast path for UTC values that costs about half the general one.
_TIME_CACHE = 4096
_PARSED: dict[str, datetime] = {}
_FORMATTED: dict[datetime, str] = {}


def _parse_time_text(value: str, what: str) -> datetime:
    text = value.strip()
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return dt.astimezone(UTC)
    except OverflowError as exc:
        raise EventError(f"{what}: {value[:64]!r} is out of range") from exc
    except ValueError as exc:
        raise EventError(f"{what}: {value[:64]!r} is not an RFC 3339 time") from exc


@overload
def format_time(dt: datetime) -> str: ...
@overload
def format_time(dt: datetime | None) -> str | None: ...


def format_time(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, whole seconds unless there is a fraction."""
    if dt is None:
        return None
    text = _FORMATTED.get(dt)
    if text is None:
        if dt.tzinfo is UTC:
            # isoformat's "auto" timespec is seconds, or microseconds when there is a fraction
            text = dt.isoformat()[:-6] + "Z"
        else:
            text = _format_time_general(dt)
        if len(_FORMATTED) >= _TIME_CACHE:
            _FORMATTED.clear()
        _FORMATTED[dt] = text
    return text


def _format_time_general(dt: datetime) -> str:
    utc = dt.astimezone(UTC)
    # isoformat, not strftime: %Y does not zero-pad years before 1000, which parse_time refuses
    return utc.isoformat(timespec="microseconds" if utc.microsecond else "seconds").replace("+00:00", "Z")

def fingerprint(labels: dict[str, str]) -> str:
    """A stable identity of a label set: the same labels in any order give the same hash.

    Like Alertmanager, the identity is the sorted label set and nothing else, so a
    re-send or a second sender of the same alert is recognised as the same alert.
    """
    # The bytes are each key and value in UTF-8, each followed by 0xff, as earlier releases
    # hashed them (stored fingerprints stay valid).  One string encoded once is the cheapest
    # way to build them: U+DCFF becomes the byte 0xff under "surrogateescape", and a value
    # that holds a lone surrogate is hashed instead of raising.
    data = "".join([f"{k}\udcff{labels[k]}\udcff" for k in sorted(labels)])
    return hashlib.sha256(data.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@dataclass(slots=True)
class Event:
    """One normalized signal (docs/events.md)."""

    labels: dict[str, str]
    source: str = "api"
    status: Status = "firing"
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    observed_at: datetime | None = None
    value: float | None = None
    _fp: str | None = field(default=None, repr=False, compare=False)

    @property
    def fingerprint(self) -> str:
        if self._fp is None:
            self._fp = fingerprint(self.labels)
        return self._fp

    @property
    def alertname(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def start(self) -> datetime:
        """When this occurrence began: ``starts_at``, else when it was observed."""
        return self.starts_at or self.observed_at or utcnow()

    @property
    def occurrence_key(self) -> str:
        """Identity plus start plus status: a re-send of the same thing has the same key.

        Metric samples are keyed by their time too, so a re-sent sample is a duplicate.  A
        firing alert that carries an ``ends_at`` (Prometheus' push) is keyed with it: each
        re-send moves the end forward and must reach the engine, or the alert would expire.
        """
        start = format_time(self.starts_at or self.observed_at) or ""
        if self.value is not None:
            return f"{self.fingerprint}|{start}|v"
        end = format_time(self.ends_at) or ""
        return f"{self.fingerprint}|{start}|{self.status}|{end}"

    def check(self, labels_checked: bool = False) -> Event:
        """Bring the event within the bounds the engine and the store rely on, or raise
        EventError saying what is wrong: finite values within ±MAX_VALUE, times within
        1970..2200, label names that are short and printable, values cut to size, no NUL.
        (On the hot path of ingest and replay: the common case is a few comparisons.)"""
        value = self.value
        if value is not None and not -MAX_VALUE <= value <= MAX_VALUE:  # NaN fails every comparison
            raise EventError(f"value: {value!r} is not a finite number within ±{MAX_VALUE:g}")
        labels = self.labels
        if len(labels) > MAX_LABELS:
            raise EventError(f"labels: {len(labels)} labels, at most {MAX_LABELS}")
        clean = True
        for key, val in () if labels_checked else labels.items():
            if len(key) > MAX_LABEL_NAME or not key.isprintable():
                raise EventError(f"labels: a label name must be printable and at most {MAX_LABEL_NAME} "
                                 f"characters, got {key[:40]!r}")
            if len(val) > MAX_LABEL_VALUE or "\x00" in val:
                clean = False
        if not clean:
            self.labels = {k: _clean(v, MAX_LABEL_VALUE) for k, v in labels.items()}
            self._fp = None
        if self.annotations and any(len(v) > MAX_ANNOTATION or "\x00" in v for v in self.annotations.values()):
            self.annotations = {k[:MAX_LABEL_NAME]: _clean(v, MAX_ANNOTATION) for k, v in self.annotations.items()}
        for name in ("starts_at", "ends_at", "observed_at"):
            dt = getattr(self, name)
            if dt is not None and not MIN_TIME <= dt <= MAX_TIME:
                setattr(self, name, _check_time(dt, name))
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "starts_at": format_time(self.starts_at),
            "ends_at": format_time(self.ends_at),
            "observed_at": format_time(self.observed_at),
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, raw: Any, received_at: datetime | None = None) -> Event:
        """Validate one JSON object as a normalized event; EventError says what is wrong."""
        if not isinstance(raw, dict):
            raise EventError(f"an event must be a JSON object, got {type(raw).__name__}")
        unknown = set(raw) - {
            "source", "status", "labels", "annotations", "starts_at", "ends_at", "observed_at", "value",
            "generator_url", "fingerprint",
        }
        if unknown:
            raise EventError(f"unknown field(s): {', '.join(sorted(unknown))}")
        labels = raw.get("labels")
        if not isinstance(labels, dict) or not labels:
            raise EventError("labels: expected a non-empty object of strings")
        clean = len(labels) <= MAX_LABELS
        for key, val in labels.items():
            if not isinstance(key, str) or not key or not isinstance(val, str):
                raise EventError(f"labels.{key}: label values must be strings")
            if len(key) > MAX_LABEL_NAME or len(val) > MAX_LABEL_VALUE or "\x00" in val or not key.isprintable():
                clean = False  # check() says what is wrong, or cuts the value
        annotations = raw.get("annotations") or {}
        if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
            raise EventError("annotations: expected an object of strings")
        status = raw.get("status", "firing") or "firing"
        if status not in ("firing", "resolved"):
            raise EventError(f"status: expected 'firing' or 'resolved', got {status!r}")
        source = raw.get("source", "api") or "api"
        if not isinstance(source, str) or not source.isprintable() or len(source) > 64:
            raise EventError("source: expected a printable string of at most 64 characters")
        value = raw.get("value")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise EventError("value: expected a number or null")
        if isinstance(value, int) and abs(value) > MAX_VALUE:  # float() of a huge int would overflow
            raise EventError(f"value: {str(value)[:30]} is not a finite number within ±{MAX_VALUE:g}")
        starts = parse_time(raw["starts_at"], "starts_at") if raw.get("starts_at") else None
        ends = parse_time(raw["ends_at"], "ends_at") if raw.get("ends_at") else None
        observed = parse_time(raw["observed_at"], "observed_at") if raw.get("observed_at") else received_at
        return cls(
            labels=dict(labels),
            source=source,
            status="resolved" if status == "resolved" else "firing",
            annotations=dict(annotations),
            starts_at=starts,
            ends_at=ends,
            observed_at=observed,
            value=float(value) if value is not None else None,
        ).check(labels_checked=clean)


# ---------------------------------------------------------------- operations


@dataclass(frozen=True, slots=True, kw_only=True)
class OpBase:
    """What every operation carries: its kind, when it was made, and its JSON fields as received.

    Operations are an agent's or a stream's word to the engine (docs/replay.md).  They are
    made only by ``op_from_dict`` at the JSON edge (the API, the CLI, the console and the
    sinks write JSON to the inbox), so each kind's fields are typed once there and the engine
    reads attributes, not a dict.  ``raw`` keeps the fields as they came, so ``to_dict`` gives
    the JSON back unchanged (extra fields of a newer sender included).
    """

    kind: ClassVar[str]
    at: datetime
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return op_json(self.kind, self.at, self.raw)

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        """The op from its arguments, as ``op_from_dict`` checked them (``times``: its times parsed)."""
        raise NotImplementedError

    def moved(self, at: datetime) -> Self:
        """The same operation, made at ``at`` (the engine worker stamps an agent's op with its turn)."""
        return replace(self, at=at)


def _text(value: Any) -> str | None:
    """A free-text field as the engine reads it: None when absent, else its text."""
    return value if value is None or isinstance(value, str) else str(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Maintenance(OpBase):
    """A planned break of a client (or one of its sites): tickets opened inside it are planned."""

    kind: ClassVar[str] = "maintenance"
    client: str
    starts_at: datetime
    ends_at: datetime
    site: str | None = None
    reason: str | None = ""
    id: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, client=a["client"], site=a.get("site"), starts_at=times["starts_at"],
                   ends_at=times["ends_at"], reason=a.get("reason", ""), id=_text(a.get("id")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Silence(OpBase):
    """Alerts matching ``matchers`` open planned tickets (``mute``: open nothing) until ``ends_at``."""

    kind: ClassVar[str] = "silence"
    matchers: Mapping[str, str]
    ends_at: datetime
    starts_at: datetime | None = None
    comment: str | None = ""
    mute: bool = False
    id: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, matchers=dict(a["matchers"]), starts_at=times.get("starts_at"),
                   ends_at=times["ends_at"], comment=a.get("comment", ""), mute=bool(a.get("mute", False)),
                   id=_text(a.get("id")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Expire(OpBase):
    """A silence or maintenance lifted by hand (DELETE in the API)."""

    kind: ClassVar[str] = "expire"
    what: str | None = None
    id: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, what=_text(a.get("what")), id=_text(a.get("id")))


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackOp(OpBase):
    """A person asks to be called back (about ``ticket``, else every open ticket that affects them)."""

    kind: ClassVar[str] = "callback"
    person: str
    ticket: str | None = None
    note: str | None = None
    phone: str | None = None
    preferred_time: str | None = None
    reason: str | None = None
    again: bool = False

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, person=a["person"], ticket=a.get("ticket"), note=_text(a.get("note")),
                   phone=_text(a.get("phone")), preferred_time=_text(a.get("preferred_time")),
                   reason=_text(a.get("reason")), again=bool(a.get("again")))


@dataclass(frozen=True, slots=True, kw_only=True)
class _TicketStep(OpBase):
    """An agent's step on an open ticket that names only the ticket and the agent."""

    ticket: str
    by: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, ticket=a["ticket"], by=a.get("by"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(_TicketStep):
    kind: ClassVar[str] = "ack"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolve(_TicketStep):
    kind: ClassVar[str] = "resolve"


@dataclass(frozen=True, slots=True, kw_only=True)
class OfficeAnswer(OpBase):
    """The office's answer to "planned break or failure?" (``planned``, ``failure``, ``no_answer``)."""

    kind: ClassVar[str] = "office_answer"
    ticket: str
    answer: str
    by: str | None = None
    note: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, ticket=a["ticket"], answer=a["answer"], by=_text(a.get("by")),
                   note=_text(a.get("note")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(OpBase):
    """An agent's call recorded (outcome ``reached``, ``left_message`` or ``no_answer``)."""

    kind: ClassVar[str] = "call"
    ticket: str
    person: str | None = None
    outcome: str | None = None
    by: str | None = None
    note: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, ticket=a["ticket"], person=a.get("person"), outcome=_text(a.get("outcome")),
                   by=_text(a.get("by")), note=_text(a.get("note")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Escalate(OpBase):
    """An agent hands the ticket to a second line (``to``: ``admins`` or ``service``)."""

    kind: ClassVar[str] = "escalate"
    ticket: str
    to: str | None = None
    reason: str | None = None
    by: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, ticket=a["ticket"], to=a.get("to"), reason=_text(a.get("reason")),
                   by=_text(a.get("by")))


@dataclass(frozen=True, slots=True, kw_only=True)
class Advice(OpBase):
    """An administrator's word on a disk ticket's cause (``action``: ``confirm`` or ``dismiss``)."""

    kind: ClassVar[str] = "advice"
    ticket: str
    action: str | None = "confirm"
    person: str | None = None
    by: str | None = None

    @classmethod
    def from_args(cls, at: datetime, a: dict[str, Any], times: dict[str, datetime]) -> Self:
        return cls(at=at, raw=a, ticket=a["ticket"], action=_text(a.get("action", "confirm")),
                   person=a.get("person"), by=_text(a.get("by")))


Op = Maintenance | Silence | Expire | CallbackOp | Ack | Resolve | OfficeAnswer | Call | Escalate | Advice

OP_TYPES: dict[str, type[Op]] = {cls.kind: cls for cls in (
    Maintenance, Silence, CallbackOp, Ack, Resolve, OfficeAnswer, Call, Escalate, Advice, Expire)}
OP_KINDS: tuple[str, ...] = tuple(OP_TYPES)


# The arguments the engine reads of each op and the JSON types they may have (with None: may be
# absent or null); other fields are kept and ignored, so a newer sender's extra detail is no error.
_OP_ARGS: dict[str, dict[str, tuple[type, ...]]] = {
    "maintenance": {"client": (str,), "site": (str, type(None)), "starts_at": (str,), "ends_at": (str,),
                    "reason": (str, type(None))},
    "silence": {"matchers": (dict,), "starts_at": (str, type(None)), "ends_at": (str,),
                "comment": (str, type(None)), "mute": (bool, type(None))},
    "callback": {"person": (str,), "ticket": (str, type(None))},
    "ack": {"ticket": (str,), "by": (str, type(None))},
    "resolve": {"ticket": (str,), "by": (str, type(None))},
    "office_answer": {"ticket": (str,), "answer": (str,)},
    "call": {"ticket": (str,), "person": (str, type(None))},
    "escalate": {"ticket": (str,), "to": (str, type(None))},
    "advice": {"ticket": (str,), "person": (str, type(None))},
}


def op_from_dict(raw: Any, received_at: datetime | None = None) -> Op:
    """Validate one operation and type it; EventError says what is wrong (unknown kinds, fields,
    types, times).  Free-text fields the engine only shows or copies (``by``, ``note``...) are
    read as text whatever their JSON type, as they always were."""
    if not isinstance(raw, dict):
        raise EventError(f"an op must be a JSON object, got {type(raw).__name__}")
    kind = raw.get("op")
    if kind not in OP_KINDS:
        raise EventError(f"op: expected one of {', '.join(OP_KINDS)}, got {str(kind)[:40]!r}")
    at = _check_time(parse_time(raw["at"], "at"), "at") if raw.get("at") else None
    args = {k: v for k, v in raw.items() if k not in ("op", "at")}
    spec = _OP_ARGS.get(kind, {})
    for key, value in args.items():
        if key in spec and not isinstance(value, spec[key]):
            raise EventError(f"{kind}.{key}: expected {' or '.join(t.__name__ for t in spec[key])}")
    for key, types in spec.items():
        if type(None) not in types and key not in args and not (kind == "silence" and key == "matchers"):
            raise EventError(f"{kind}.{key}: required")
    times: dict[str, datetime] = {}
    for key in ("starts_at", "ends_at"):
        if isinstance(args.get(key), str):
            times[key] = parse_time(args[key], key)
            _check_time(times[key], key)
    matchers = args.get("matchers")
    if kind == "silence" and (not isinstance(matchers, dict) or not matchers or
                              not all(isinstance(v, str) for v in matchers.values())):
        raise EventError("silence.matchers: expected a non-empty object of label: matcher strings")
    return OP_TYPES[kind].from_args(at or received_at or utcnow(), args, times)


def op_json(kind: str, at: datetime, args: Mapping[str, Any]) -> dict[str, Any]:
    """An operation as the inbox keeps it: what the API, the sinks and the demo write, and
    ``op_from_dict`` reads back."""
    return {"op": kind, "at": format_time(at), **args}


# ---------------------------------------------------------------- tickets


def _opt_time(v: Any) -> datetime | None:
    return parse_time(v) if v else None


class CallAttempt(TypedDict, total=False):
    """One try at reaching someone by phone, as the ticket's JSON keeps it: a callback's
    ``calls`` and an office task's ``attempts``."""

    at: Required[str]  # RFC 3339
    outcome: Required[str]  # reached | left_message | no_answer
    by: str
    note: str


class Escalation(TypedDict, total=False):
    """A ticket's hand-over to a second line (watcher.rules.escalation), as its JSON keeps it,
    times as RFC 3339 strings; empty while the ticket is not escalated."""

    to: str  # admins | service
    team: str
    reason: str
    by: str
    at: str
    notify: str  # who is told: the team, or the site's provider
    react_by: str | None
    resolve_by: str | None
    reacted_at: str | None
    reacted_by: str
    reaction_missed: bool
    resolution_missed: bool


class OfficeTask(TypedDict, total=False):
    """A task on the call list (watcher.rules.office: call the office, is it planned or a
    failure?), as the ticket's JSON keeps it."""

    id: str
    kind: str  # call_office
    site: str
    site_name: str
    name: str
    phone: str
    what: str
    added_at: str
    due_at: str
    done_at: str | None
    answer: str | None
    by: str
    note: str
    attempts: list[CallAttempt]


@dataclass(slots=True)
class Callback:
    """A call owed to a person: it stays "to call" until an agent records a call that reached
    them (``done_at``, ``how="called"``); attempts that did not reach them are in ``calls``."""

    person: str
    added_at: datetime
    done_at: datetime | None = None
    how: str | None = None
    note: str | None = None
    phone: str | None = None
    preferred_time: str | None = None
    reason: str | None = None
    calls: list[CallAttempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"person": self.person, "added_at": format_time(self.added_at),
                             "done_at": format_time(self.done_at), "how": self.how}
        for key in ("note", "phone", "preferred_time", "reason"):
            value = getattr(self, key)
            if value:
                d[key] = value
        if self.calls:
            d["calls"] = [dict(c) for c in self.calls]
        return d

    @staticmethod
    def from_dict(c: dict[str, Any]) -> Callback:
        """The inverse of ``to_dict``."""
        done = c.get("done_at")
        return Callback(c["person"], parse_time(c["added_at"]), parse_time(done) if done else None, c.get("how"),
                        c.get("note"), c.get("phone"), c.get("preferred_time"), c.get("reason"),
                        [cast(CallAttempt, dict(x)) for x in c.get("calls", [])])


@dataclass(slots=True)
class NotificationRecord:
    """A notification owed or given, as the ticket lists it."""

    to: str
    kind: NotificationKind
    at: datetime
    channel: str | None = None
    sent_at: datetime | None = None
    state: str = "pending"

    def to_dict(self) -> dict[str, Any]:
        return {"to": self.to, "kind": self.kind, "at": format_time(self.at),
                "sent_at": format_time(self.sent_at), "channel": self.channel, "state": self.state}


@dataclass(slots=True)
class TimelineEntry:
    """One event (or engine step) that contributed to a ticket, for the agent's timeline."""

    at: datetime
    what: str
    role: str = "cause"  # cause | symptom | info
    fingerprint: str | None = None
    labels: dict[str, str] | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"at": format_time(self.at), "what": self.what, "role": self.role}
        if self.fingerprint:
            d["fingerprint"] = self.fingerprint
        if self.labels:
            d["labels"] = self.labels
        return d


@dataclass(slots=True)
class Ticket:
    """A ticket as the API shows it (docs/tickets.md), plus the engine's bookkeeping."""

    id: str
    client: str
    category: str
    entity_kind: str
    entity_id: str
    title: str
    opened_at: datetime
    rule: str
    group_key: str
    site: str | None = None
    status: TicketStatus = "open"
    planned: bool = False
    flapping: bool = False
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    sla_tier: str = "standard"
    react_by: datetime | None = None
    resolve_by: datetime | None = None
    breached: bool = False
    escalated_at: datetime | None = None
    event_count: int = 0
    affected: list[str] = field(default_factory=list)
    affected_why: dict[str, str] = field(default_factory=dict)
    advice_to: str | None = None
    details: dict[str, object] = field(default_factory=dict)  # per kind: readers check what they read
    callbacks: list[Callback] = field(default_factory=list)
    notifications: list[NotificationRecord] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    updated_at: datetime | None = None
    escalation: Escalation = field(default_factory=lambda: Escalation())
    tasks: list[OfficeTask] = field(default_factory=list)

    def to_dict(self, with_timeline: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "client": self.client,
            "site": self.site,
            "entity": {"kind": self.entity_kind, "id": self.entity_id},
            "category": self.category,
            "title": self.title,
            "status": self.status,
            "planned": self.planned,
            "flapping": self.flapping,
            "rule": self.rule,
            "group_key": self.group_key,
            "opened_at": format_time(self.opened_at),
            "acknowledged_at": format_time(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "resolved_at": format_time(self.resolved_at),
            "resolved_by": self.resolved_by,
            "sla": {
                "tier": self.sla_tier,
                "react_by": format_time(self.react_by),
                "resolve_by": format_time(self.resolve_by),
                "breached": self.breached,
                "escalated_at": format_time(self.escalated_at),
            },
            "event_count": self.event_count,
            "affected": list(self.affected),
            "affected_why": dict(self.affected_why),
            "advice_to": self.advice_to,
            "details": dict(self.details),
            "callbacks": [c.to_dict() for c in self.callbacks],
            "notifications": [n.to_dict() for n in self.notifications],
        }
        if self.escalation:
            d["escalation"] = dict(self.escalation)
        if self.tasks:
            d["tasks"] = [dict(x) for x in self.tasks]
        if with_timeline:
            d["timeline"] = [t.to_dict() for t in self.timeline]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Ticket:
        """The inverse of ``to_dict`` (the store, the outbox and the engine's snapshot use it)."""
        sla = d.get("sla") or {}
        return Ticket(
            id=d["id"], client=d["client"], category=d["category"], entity_kind=d["entity"]["kind"],
            entity_id=d["entity"]["id"], title=d.get("title", ""), opened_at=parse_time(d["opened_at"]),
            rule=d.get("rule", ""), group_key=d.get("group_key", ""), site=d.get("site"),
            status=d.get("status", "open"), planned=bool(d.get("planned")), flapping=bool(d.get("flapping")),
            acknowledged_at=_opt_time(d.get("acknowledged_at")), acknowledged_by=d.get("acknowledged_by"),
            resolved_at=_opt_time(d.get("resolved_at")), resolved_by=d.get("resolved_by"),
            sla_tier=sla.get("tier", "standard"), react_by=_opt_time(sla.get("react_by")),
            resolve_by=_opt_time(sla.get("resolve_by")), breached=bool(sla.get("breached")),
            escalated_at=_opt_time(sla.get("escalated_at")), event_count=int(d.get("event_count", 0)),
            affected=list(d.get("affected", [])), affected_why=dict(d.get("affected_why", {})),
            advice_to=d.get("advice_to"), details=dict(d.get("details", {})),
            callbacks=[Callback.from_dict(c) for c in d.get("callbacks", [])],
            notifications=[NotificationRecord(n["to"], n["kind"], parse_time(n.get("at") or n.get("queued_at")),
                                              n.get("channel"), _opt_time(n.get("sent_at")),
                                              n.get("state", "pending"))
                           for n in d.get("notifications", [])],
            timeline=[TimelineEntry(parse_time(e["at"]), e["what"], e.get("role", "cause"), e.get("fingerprint"),
                                    e.get("labels")) for e in d.get("timeline", [])],
            escalation=cast(Escalation, dict(d.get("escalation") or {})),
            tasks=[cast(OfficeTask, dict(x)) for x in d.get("tasks", [])],
        )


@dataclass(slots=True, frozen=True)
class Notice:
    """A notification the engine decided is owed: who, what kind, about which ticket, when.

    The notify stage turns it into rendered messages in the durable outbox.  The pair
    (ticket, to, kind) is unique: a person is never told the same thing twice.
    """

    ticket_id: str
    to: str
    kind: NotificationKind
    at: datetime

    @property
    def key(self) -> str:
        return f"{self.ticket_id}|{self.to}|{self.kind}"

    def to_dict(self) -> dict[str, Any]:
        return {"ticket": self.ticket_id, "to": self.to, "kind": self.kind, "at": format_time(self.at)}


@dataclass(slots=True)
class EngineDelta:
    """The engine's state as a store keeps it: ``doc``, the small rest of the state, whole;
    ``parts``, per kind of entry (``alerts``, ``groups``), the entries changed since the last
    delta by key, None for an entry that is gone.  A commit costs what changed."""

    doc: dict[str, Any]
    parts: dict[str, dict[str, Any]]
    whole: bool = False  # ``parts`` holds every entry: the stored ones not named are gone

