"""Delivery through Apprise to real local servers: SMTP (aiosmtpd) and an HTTP JSON receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.servers import HttpReceiver, SmtpServer, free_port, html_body, json_url, smtp_url, text_body
from watcher.notify.render import Message
from watcher.notify.sender import SendResult, channel_of, mask_url, send

MESSAGE = Message(
    subject="Brak internetu w lokalizacji Biuro Kraków",
    text="Dzień dobry,\n\nnasz system wykrył brak internetu. Zażółć gęślą jaźń.\nhttps://w.example/l/cb\n",
    html="<p>Dzień dobry,</p><p><strong>Zażółć gęślą jaźń</strong></p>",
)


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


async def test_mail_arrives_with_subject_html_and_text(smtp: SmtpServer) -> None:
    result = await send([smtp_url(smtp, "jan.kowalski@acme.example")], MESSAGE)
    assert result == SendResult(ok=True, retryable=False, channel="mailto", error=None)
    [mail] = await smtp.await_for(1)
    assert mail["Subject"] == MESSAGE.subject
    assert mail["To"] == "jan.kowalski@acme.example"
    assert mail["From"] == "watcher@example.com"
    assert mail["X-RcptTo"] == "jan.kowalski@acme.example"
    assert "<strong>Zażółć gęślą jaźń</strong>" in (html_body(mail) or "")
    assert "Zażółć gęślą jaźń" in text_body(mail)


async def test_mail_without_html_is_the_plain_text(smtp: SmtpServer) -> None:
    plain = Message(subject=MESSAGE.subject, text=MESSAGE.text, html=None)
    assert (await send([smtp_url(smtp, "ewa@acme.example")], plain)).ok
    [mail] = await smtp.await_for(1)
    assert html_body(mail) is None
    assert text_body(mail).strip() == MESSAGE.text.strip()


async def test_json_receiver_gets_title_and_the_text_body(http: HttpReceiver) -> None:
    result = await send([json_url(http, "/hooks/helpdesk")], MESSAGE)
    assert result == SendResult(ok=True, retryable=False, channel="json", error=None)
    [body] = await http.await_for(1)
    assert body["title"] == MESSAGE.subject
    assert body["message"] == MESSAGE.text.rstrip("\n")
    assert http.requests[0]["path"] == "/hooks/helpdesk"


async def test_falls_back_to_the_second_url_when_the_first_is_down(smtp: SmtpServer, http: HttpReceiver) -> None:
    http.stop()
    result = await send([json_url(http), smtp_url(smtp, "jan@acme.example")], MESSAGE)
    assert result.ok and result.channel == "mailto"
    assert len(await smtp.await_for(1)) == 1
    assert http.requests == []


async def test_first_url_that_works_wins_and_the_rest_are_not_tried(smtp: SmtpServer, http: HttpReceiver) -> None:
    result = await send([json_url(http), smtp_url(smtp, "jan@acme.example")], MESSAGE)
    assert result.channel == "json"
    await http.await_for(1)
    await asyncio.sleep(0.2)
    assert smtp.messages == []


async def test_a_down_receiver_is_retryable_and_the_secret_is_not_shown(http: HttpReceiver) -> None:
    http.stop()
    url = f"json://watcher:s3cr3t-pass@127.0.0.1:{http.port}/notify"
    result = await send([url], MESSAGE)
    assert (result.ok, result.retryable, result.channel) == (False, True, None)
    assert result.error and "s3cr3t-pass" not in result.error and "json://" in result.error
    http.start()
    assert (await send([url], MESSAGE)).ok
    assert (await http.await_for(1))[0]["title"] == MESSAGE.subject


async def test_a_mail_server_that_is_down_is_retryable(caplog: pytest.LogCaptureFixture) -> None:
    url = f"mailto://helpdesk:pa55word@127.0.0.1:{free_port()}?from=watcher@example.com&to=jan@acme.example"
    result = await send([url], MESSAGE, timeout=10)
    assert (result.ok, result.retryable) == (False, True)
    assert "pa55word" not in (result.error or "")
    assert "pa55word" not in caplog.text


async def test_an_answer_500_is_retryable(http: HttpReceiver) -> None:
    http.status = 500
    result = await send([json_url(http)], MESSAGE)
    assert (result.ok, result.retryable) == (False, True)
    assert len(http.requests) == 1 and http.bodies == []
    http.status = 200
    assert (await send([json_url(http)], MESSAGE)).ok


@pytest.mark.parametrize("garbage", ["garbage", "nosuchscheme://x/y", "mailto://", "json://", ""])
async def test_an_invalid_url_is_not_retryable(garbage: str) -> None:
    result = await send([garbage], MESSAGE)
    assert (result.ok, result.retryable, result.channel) == (False, False, None)
    assert result.error and "not a valid Apprise URL" in result.error


async def test_invalid_and_down_together_are_retryable(http: HttpReceiver) -> None:
    http.stop()
    result = await send(["garbage", json_url(http)], MESSAGE)
    assert (result.ok, result.retryable) == (False, True)
    assert result.error and result.error.count(";") == 1


async def test_an_invalid_first_url_falls_back(http: HttpReceiver) -> None:
    assert (await send(["garbage", json_url(http)], MESSAGE)).channel == "json"


async def test_no_urls_is_not_retryable() -> None:
    assert await send([], MESSAGE) == SendResult(ok=False, retryable=False, channel=None,
                                                 error="no notification URLs")


async def test_a_burst_of_20_is_fast_so_the_throttle_is_off(smtp: SmtpServer, http: HttpReceiver) -> None:
    started = time.monotonic()
    for i in range(10):
        assert (await send([smtp_url(smtp, f"person{i}@acme.example")], MESSAGE)).ok
    results = await asyncio.gather(*(send([json_url(http)], MESSAGE) for _ in range(10)))
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert len(await smtp.await_for(10)) == 10 and len(await http.await_for(10)) == 10
    assert elapsed < 3, f"20 sends took {elapsed:.1f}s: is Apprise's throttle still on?"


async def test_a_message_with_several_recipients_is_fast(smtp: SmtpServer) -> None:
    url = f"mailto://127.0.0.1:{smtp.port}?from=watcher@example.com&to=a@acme.example,b@acme.example,c@acme.example"
    started = time.monotonic()
    assert (await send([url], MESSAGE)).ok
    assert len(await smtp.await_for(3)) == 3
    assert time.monotonic() - started < 3


def test_servers_work_from_sync_code(smtp: SmtpServer) -> None:
    assert asyncio.run(send([smtp_url(smtp, "sync@acme.example")], MESSAGE)).ok
    assert smtp.wait_for(1, timeout=5)[0]["To"] == "sync@acme.example"
    with pytest.raises(TimeoutError, match="expected 2 mail"):
        smtp.wait_for(2, timeout=0.2)


def test_smtp_server_can_go_down_and_come_back() -> None:
    with SmtpServer() as server:
        url = smtp_url(server, "jan@acme.example")
        server.stop()
        assert not server.running
        assert asyncio.run(send([url], MESSAGE, timeout=5)).retryable
        server.start()
        assert asyncio.run(send([url], MESSAGE)).ok
        assert len(server.wait_for(1)) == 1


def test_channel_and_masking() -> None:
    assert channel_of("mailtos://user:pw@example.com") == "mailtos"
    assert channel_of("garbage") is None
    masked = mask_url("json://user:topsecret@127.0.0.1:8080/x")
    assert "topsecret" not in masked and masked.startswith("json://user:")
    assert mask_url("nonsense://user:topsecret@x") == "nonsense://..."
