"""The UTC fast paths of ``format_time`` and ``parse_time`` give what the general code gives.

A load of new alerts brings a distinct time per alert, so the caches of ``watcher.model``
miss and the fast paths run; the general code (all that ran before the fast paths, and what
still runs for any other value) is the reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from watcher import model
from watcher.model import EventError, format_time, parse_time


def _format_before(dt: datetime) -> str:
    return model._format_time_general(dt)


def _parse_before(value: str) -> datetime | str:
    """The result of the general parse (the whole of parse_time before), or its error's message."""
    try:
        return model._parse_time_text(value, "time")
    except EventError as exc:
        return str(exc)


def _parse_now(value: str) -> datetime | str:
    model._PARSED.clear()
    try:
        return parse_time(value)
    except EventError as exc:
        return str(exc)


_ZONES = st.one_of(
    st.just(UTC),
    st.builds(lambda m: timezone(timedelta(minutes=m)), st.integers(-23 * 60 - 59, 23 * 60 + 59)),
    st.sampled_from([ZoneInfo("Europe/Warsaw"), ZoneInfo("America/New_York"), ZoneInfo("UTC")]),
)
_AWARE = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=_ZONES)


def _same(a: datetime | str, b: datetime | str) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return a == b and a.tzinfo is b.tzinfo and a.fold == b.fold and a.isoformat() == b.isoformat()
    return a == b


@settings(max_examples=500)
@given(_AWARE)
def test_format_time_is_the_general_format(dt: datetime) -> None:
    model._FORMATTED.clear()
    assert format_time(dt) == _format_before(dt)


@settings(max_examples=500)
@given(_AWARE, st.sampled_from(["Z", "z", "+00:00", "-00:00", "keep"]), st.sampled_from(["", " ", "\t", "\n"]))
def test_parse_time_of_written_times_is_the_general_parse(dt: datetime, zone: str, pad: str) -> None:
    text = dt.isoformat()
    if zone != "keep":
        text = dt.replace(tzinfo=None).isoformat() + zone
    for value in (text, pad + text, text + pad, text.replace("T", " ")):
        assert _same(_parse_now(value), _parse_before(value)), value


@settings(max_examples=500)
@given(st.text(alphabet="0123456789-:T .Zz+,_tW", min_size=1, max_size=32))
def test_parse_time_of_any_text_is_the_general_parse(value: str) -> None:
    if value.strip():
        assert _same(_parse_now(value), _parse_before(value)), value
