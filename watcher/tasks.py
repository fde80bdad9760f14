"""Stopping background tasks within a bound, whatever they are doing."""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def cancel_and_wait(task: asyncio.Task[None], timeout: float = 2.0) -> None:
    """Cancel a task and wait for it, but never longer than ``timeout``.

    The cancel is repeated: on Python 3.11 ``asyncio.wait_for`` can swallow a cancellation
    that arrives as its inner wait completes, and a loop built on it then runs on; a stop
    must end whatever the task is doing (the inbox is durable, so what it leaves is redone
    by whoever leads next)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not task.done():
        task.cancel()
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            log.error("task %s did not stop within %g s; left behind", task.get_name(), timeout)
            return
        await asyncio.wait({task}, timeout=min(0.1, left))
    if not task.cancelled() and task.exception() is not None:
        log.error("task %s ended with %r", task.get_name(), task.exception())
