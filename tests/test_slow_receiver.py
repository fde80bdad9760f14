"""A receiver slower than Apprise's own 4-second socket timeout is given the time watcher is
configured to give: it gets the notice once, not once per retry.  Real HTTP receiver and a
real ``watcher serve``; nothing is mocked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.proc import WatcherProcess
from tests.servers import HttpReceiver, SmtpServer, free_port, json_url
from tests.test_e2e import site_down, write_config
from watcher.notify.render import Message
from watcher.notify.sender import send

MESSAGE = Message(subject="Brak internetu", text="Dzień dobry, nasz system wykrył brak internetu.\n", html=None)


async def test_a_six_second_receiver_is_a_delivery_not_a_timeout() -> None:
    with HttpReceiver() as http:
        http.delay = 6.0
        started = time.monotonic()
        result = await send([json_url(http)], MESSAGE, timeout=15)
        assert result.ok, result
        assert time.monotonic() - started >= 6.0
        assert len(http.requests) == 1


async def test_a_timeout_the_url_chooses_is_kept() -> None:
    with HttpReceiver() as http:
        http.delay = 3.0
        result = await send([json_url(http) + "?rto=1"], MESSAGE, timeout=15)
        assert not result.ok and result.retryable, result
        assert len(http.requests) == 1  # it arrived, but the URL asked for an answer within 1 s


async def test_a_receiver_slower_than_the_timeout_fails_retryably() -> None:
    with HttpReceiver() as http:
        http.delay = 4.0
        started = time.monotonic()
        result = await send([json_url(http)], MESSAGE, timeout=1.5)
        assert not result.ok and result.retryable, result
        assert time.monotonic() - started < 4.0, "the configured timeout, not the receiver, ends the attempt"


def test_a_six_second_webhook_receiver_gets_exactly_one_copy(tmp_path: Path) -> None:
    with SmtpServer() as smtp, HttpReceiver() as http:
        http.delay = 6.0  # tom.hook's json:// receiver
        cfg = write_config(tmp_path, smtp, http, f"sqlite:///{tmp_path / 'w.db'}")
        w = WatcherProcess(cfg, free_port(), tmp_path / "watcher.log")
        w.start()
        try:
            start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
            assert w.request("POST", "/api/v1/events", site_down(start))[0] == 200

            def sent_to_tom() -> list[dict[str, object]]:
                rows = w.request("GET", "/api/v1/outbox")[1]["outbox"]
                return [r for r in rows if r["recipient"] == "tom.hook" and r["state"] == "sent"]

            rows = w.wait_until(sent_to_tom, timeout=60, what="the slow receiver's notice marked sent")
            assert rows[0]["attempts"] == 0, rows  # no failed attempt before it
            time.sleep(8)  # with Apprise's 4 s read timeout a retry (0.5 s backoff) would have arrived by now
            assert len(http.requests) == 1, [r["path"] for r in http.requests]
            _, metrics = w.request("GET", "/metrics")
            assert 'watcher_notifications_total{kind="opened",result="retry"}' not in metrics
        finally:
            w.stop()
