"""Signed links: a genuine token verifies; anything altered, expired or misused does not."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from watcher.notify.links import LinkClaims, LinkError, sign, verify

SECRET = b"0123456789abcdef0123456789abcdef"
NOW = datetime(2026, 11, 2, 8, 20, tzinfo=UTC)
LATER = NOW + timedelta(days=2)


def token(**kw: object) -> str:
    args: dict[str, object] = {"action": "callback", "ticket_id": "T-000123", "person": "jan.kowalski",
                               "expires": LATER}
    args.update(kw)
    return sign(SECRET, **args)  # type: ignore[arg-type]


def test_round_trip_gives_back_the_claims() -> None:
    claims = verify(SECRET, token(), NOW)
    assert claims == LinkClaims(action="callback", ticket_id="T-000123", person="jan.kowalski",
                                expires=LATER, nonce=claims.nonce)
    assert len(claims.nonce) >= 16


def test_token_is_url_safe_and_each_has_its_own_nonce() -> None:
    first, second = token(), token()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", first)
    assert first != second
    assert verify(SECRET, first, NOW).nonce != verify(SECRET, second, NOW).nonce


def test_unicode_ids_and_office_recipients_survive() -> None:
    claims = verify(SECRET, token(person="office:acme-krk", ticket_id="T-ż1"), NOW)
    assert (claims.person, claims.ticket_id) == ("office:acme-krk", "T-ż1")


@pytest.mark.parametrize("part", [0, 1])
def test_any_changed_character_fails(part: int) -> None:
    good = token()
    pieces = good.split(".")
    text = pieces[part]
    for index in (0, len(text) // 2, len(text) - 2):
        flipped = "A" if text[index] != "A" else "B"
        pieces_bad = list(pieces)
        pieces_bad[part] = text[:index] + flipped + text[index + 1:]
        with pytest.raises(LinkError) as err:
            verify(SECRET, ".".join(pieces_bad), NOW)
        assert err.value.reason in ("signature", "malformed")


def test_a_payload_swapped_from_another_token_fails() -> None:
    jan, ewa = token(), token(person="ewa.nowak")
    forged = ewa.split(".")[0] + "." + jan.split(".")[1]
    with pytest.raises(LinkError) as err:
        verify(SECRET, forged, NOW)
    assert err.value.reason == "signature"


def test_another_secret_fails() -> None:
    with pytest.raises(LinkError) as err:
        verify(b"another secret", token(), NOW)
    assert err.value.reason == "signature"


def test_expired_fails_from_the_expiry_second_on() -> None:
    good = token(expires=NOW + timedelta(minutes=5))
    verify(SECRET, good, NOW + timedelta(minutes=4, seconds=59))
    for moment in (NOW + timedelta(minutes=5), NOW + timedelta(days=30)):
        with pytest.raises(LinkError) as err:
            verify(SECRET, good, moment)
        assert err.value.reason == "expired"


def test_another_person_ticket_or_action_fails() -> None:
    good = token()
    verify(SECRET, good, NOW, action="callback", ticket_id="T-000123", person="jan.kowalski")
    cases = {"person": {"person": "ewa.nowak"}, "ticket": {"ticket_id": "T-000124"},
             "action": {"action": "office_planned"}}
    for reason, expect in cases.items():
        with pytest.raises(LinkError) as err:
            verify(SECRET, good, NOW, **expect)
        assert err.value.reason == reason
        assert "jan.kowalski" in str(err.value) or "T-000123" in str(err.value) or "callback" in str(err.value)


@pytest.mark.parametrize("bad", ["", "nodot", "a.b.c", "###.###", ".", "eyJ9.", "ZZZ.ZZZ", "żółw.żółw"])
def test_malformed_tokens_fail_cleanly(bad: str) -> None:
    with pytest.raises(LinkError) as err:
        verify(SECRET, bad, NOW)
    assert err.value.reason in ("malformed", "signature")


def test_naive_times_are_utc() -> None:
    naive = token(expires=LATER.replace(tzinfo=None))
    assert verify(SECRET, naive, NOW.replace(tzinfo=None)).expires == LATER


def test_empty_secret_or_fields_are_refused() -> None:
    with pytest.raises(ValueError):
        sign(b"", "callback", "T-1", "jan", LATER)
    with pytest.raises(ValueError):
        sign(SECRET, "callback", "", "jan", LATER)
