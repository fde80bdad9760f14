"""Ingest authentication: bearer, basic and HMAC-signed requests."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watcher.api.auth import AuthResult, IngestAuth, check, sign

NOW = datetime(2026, 11, 2, 8, 16, tzinfo=UTC)
BODY = b'[{"labels": {"alertname": "ProbeFailed"}}]'
TOKEN = "tok-3f9a1c"
PASSWORD = "pa55-\u017c\u00f3\u0142w"
SECRET = "hmac-secret-77d2"

Tamper = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]

BEARER = IngestAuth(kind="bearer", token=TOKEN)
BASIC = IngestAuth(kind="basic", username="alertmanager", password=PASSWORD)
HMAC = IngestAuth(kind="hmac", secret=SECRET)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def assert_denied(result: AuthResult, status: int) -> None:
    assert not result.ok
    assert result.status == status
    for secret in (TOKEN, PASSWORD, SECRET):
        assert secret not in result.reason
    if status == 401:
        assert result.challenge
    else:
        assert result.challenge is None


def test_none_lets_everything_in() -> None:
    assert check(IngestAuth(), {}, BODY, NOW).ok


# ---------------------------------------------------------------- bearer


def test_bearer_accepts_the_token() -> None:
    result = check(BEARER, {"Authorization": f"Bearer {TOKEN}"}, BODY, NOW)
    assert result == AuthResult(ok=True, status=200, reason="ok")


def test_bearer_header_name_and_scheme_are_case_insensitive() -> None:
    assert check(BEARER, {"authorization": f"bearer  {TOKEN} "}, BODY, NOW).ok


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": ""}, {"Authorization": "Bearer"}, {"Authorization": f"Token {TOKEN}"},
     {"Authorization": basic("u", TOKEN)}],
)
def test_bearer_without_token_is_401(headers: dict[str, str]) -> None:
    result = check(BEARER, headers, BODY, NOW)
    assert_denied(result, 401)
    assert result.challenge == 'Bearer realm="watcher"'


@pytest.mark.parametrize(
    "presented", [TOKEN + "x", TOKEN[:-1], "\u017c\u00f3\u0142w", "\udcff", "a" * 10_000]
)
def test_bearer_wrong_token_is_403(presented: str) -> None:
    assert_denied(check(BEARER, {"Authorization": f"Bearer {presented}"}, BODY, NOW), 403)


# ---------------------------------------------------------------- basic


def test_basic_accepts_the_credentials() -> None:
    assert check(BASIC, {"Authorization": basic("alertmanager", PASSWORD)}, BODY, NOW).ok


@pytest.mark.parametrize(
    ("user", "password"), [("alertmanager", "wrong"), ("grafana", PASSWORD), ("", ""), ("alertmanager", "")]
)
def test_basic_wrong_credentials_are_403(user: str, password: str) -> None:
    assert_denied(check(BASIC, {"Authorization": basic(user, password)}, BODY, NOW), 403)


@pytest.mark.parametrize(
    "value",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"user:\xff\xfe").decode(),
        "Basic \u017c\u00f3\u0142w",
        f"Bearer {TOKEN}",
    ],
)
def test_basic_unreadable_credentials_are_401(value: str) -> None:
    result = check(BASIC, {"Authorization": value}, BODY, NOW)
    assert_denied(result, 401)
    assert result.challenge is not None and result.challenge.startswith("Basic ")


# ---------------------------------------------------------------- hmac


def test_hmac_accepts_a_signed_body() -> None:
    headers = sign(SECRET, BODY, NOW)
    assert headers["X-Watcher-Timestamp"] == str(int(NOW.timestamp()))
    assert headers["X-Watcher-Signature"].startswith("sha256=")
    assert check(HMAC, headers, BODY, NOW).ok


def test_hmac_signature_is_over_timestamp_dot_body() -> None:
    ts = 1793607300
    expected = hmac.new(SECRET.encode(), b"1793607300." + BODY, "sha256").hexdigest()
    assert sign(SECRET, BODY, ts)["X-Watcher-Signature"] == f"sha256={expected}"
    assert sign(SECRET.encode(), BODY, float(ts)) == sign(SECRET, BODY, ts)


def test_hmac_accepts_uppercase_hex_and_lowercase_header_names() -> None:
    headers = sign(SECRET, BODY, NOW)
    lowered = {
        "x-watcher-timestamp": headers["X-Watcher-Timestamp"],
        "x-watcher-signature": "SHA256=" + headers["X-Watcher-Signature"][7:].upper(),
    }
    assert check(HMAC, lowered, BODY, NOW).ok


@pytest.mark.parametrize("skew", [timedelta(seconds=-300), timedelta(seconds=300), timedelta(0)])
def test_hmac_accepts_within_the_window(skew: timedelta) -> None:
    assert check(HMAC, sign(SECRET, BODY, NOW + skew), BODY, NOW).ok


@pytest.mark.parametrize("skew", [timedelta(seconds=-301), timedelta(seconds=301), timedelta(days=-1)])
def test_hmac_stale_or_future_timestamp_is_401(skew: timedelta) -> None:
    result = check(HMAC, sign(SECRET, BODY, NOW + skew), BODY, NOW)
    assert_denied(result, 401)
    assert "window" in result.reason


def test_hmac_window_is_configurable() -> None:
    narrow = IngestAuth(kind="hmac", secret=SECRET, max_skew=10)
    assert not check(narrow, sign(SECRET, BODY, NOW - timedelta(seconds=11)), BODY, NOW).ok
    assert check(narrow, sign(SECRET, BODY, NOW - timedelta(seconds=10)), BODY, NOW).ok


def test_hmac_replay_with_a_fresh_timestamp_is_403() -> None:
    old = sign(SECRET, BODY, NOW - timedelta(hours=1))
    replayed = {**old, "X-Watcher-Timestamp": str(int(NOW.timestamp()))}
    assert_denied(check(HMAC, replayed, BODY, NOW), 403)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: (sign("other-secret", b, NOW), b),
        lambda h, b: ({**h, "X-Watcher-Signature": "sha256=" + "0" * 64}, b),
    ],
)
def test_hmac_wrong_signature_is_403(tamper: Tamper) -> None:
    headers, body = tamper(sign(SECRET, BODY, NOW), BODY)
    result = check(HMAC, headers, body, NOW)
    assert_denied(result, 403)
    assert result.reason == "invalid signature"


@pytest.mark.parametrize(
    "change",
    [
        {"X-Watcher-Timestamp": None},
        {"X-Watcher-Signature": None},
        {"X-Watcher-Timestamp": "yesterday"},
        {"X-Watcher-Timestamp": "-1793607300"},
        {"X-Watcher-Timestamp": "1" * 40},
        {"X-Watcher-Signature": "md5=abc"},
        {"X-Watcher-Signature": "sha256=xyz"},
        {"X-Watcher-Signature": "sha256=" + "\u00e9" * 64},
    ],
)
def test_hmac_missing_or_malformed_headers_are_401(change: dict[str, str | None]) -> None:
    headers: dict[str, str] = sign(SECRET, BODY, NOW)
    for key, value in change.items():
        if value is None:
            del headers[key]
        else:
            headers[key] = value
    assert_denied(check(HMAC, headers, BODY, NOW), 401)


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    original = hmac.compare_digest

    def recording(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return original(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    check(BEARER, {"Authorization": "Bearer nope"}, BODY, NOW)
    check(BASIC, {"Authorization": basic("x", "y")}, BODY, NOW)
    check(HMAC, sign("nope", BODY, NOW), BODY, NOW)
    assert len(calls) == 4


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize("config", [BEARER, BASIC, HMAC])
def test_repr_hides_secrets(config: IngestAuth) -> None:
    for shown in (repr(config), str(config), f"{config}", repr([config])):
        for secret in (TOKEN, PASSWORD, SECRET):
            assert secret not in shown
        assert config.kind in shown


def test_repr_shows_what_is_safe() -> None:
    assert repr(BASIC) == "IngestAuth(kind='basic', username='alertmanager', password='***')"
    assert repr(HMAC) == "IngestAuth(kind='hmac', secret='***', max_skew=300)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "bearer"}, "token: required"),
        ({"kind": "bearer", "token": ""}, "token: required"),
        ({"kind": "basic", "username": "u"}, "password: required"),
        ({"kind": "basic", "username": "a:b", "password": "p"}, "must not contain ':'"),
        ({"kind": "hmac"}, "secret: required"),
        ({"kind": "hmac", "secret": "s", "max_skew": 0}, "max_skew"),
        ({"kind": "hmac", "secret": "s", "max_skew": True}, "max_skew"),
        ({"kind": "oauth"}, "kind: expected one of none, bearer, basic, hmac"),
    ],
)
def test_config_is_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IngestAuth(**kwargs)


def test_from_dict() -> None:
    assert IngestAuth.from_dict(None) == IngestAuth()
    assert IngestAuth.from_dict({"kind": "hmac", "secret": SECRET, "max_skew": 60}) == IngestAuth(
        kind="hmac", secret=SECRET, max_skew=60
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("bearer", r"^ingest\.auth: expected a mapping"),
        ({"kind": "bearer", "tokn": TOKEN}, r"^ingest\.auth: unknown key\(s\): tokn"),
        ({"kind": "bearer"}, r"^ingest\.auth\.token: required"),
        ({"kind": "bearer", "token": 12345}, r"^ingest\.auth\.token: expected a string"),
        ({"kind": "jwt", "token": TOKEN}, r"^ingest\.auth\.kind: expected one of"),
    ],
)
def test_from_dict_errors_name_the_key_not_the_secret(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        IngestAuth.from_dict(raw, "ingest.auth")
    assert TOKEN not in str(info.value)
