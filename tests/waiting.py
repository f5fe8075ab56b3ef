"""Wait for a condition, not for a time.

A fixed ``sleep`` before an assertion is either too short on a loaded machine
(the test flakes) or too long everywhere (the suite crawls). These helpers poll
the condition itself until it holds or a deadline passes, and then fail saying
what was awaited and what was last seen::

    await eventually(lambda: bus.published == 1000, message="all notes flushed")
    health = await eventually(fetch_health_if_ok)  # returns the truthy value

``predicate`` may be a plain callable or return an awaitable (``eventually``
awaits it). The deadline is a safety net, never the thing being measured.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


def _failure(message: str, timeout: float, last: object) -> AssertionError:
    what = message or "condition"
    return AssertionError(f"{what} not met within {timeout} s (last value: {last!r})")


async def eventually(
    predicate: Callable[[], T | Awaitable[T]],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(message, timeout, value)
        await asyncio.sleep(interval)


def eventually_sync(
    predicate: Callable[[], T],
    *,
    timeout: float = 5.0,
    interval: float = 0.02,
    message: str = "",
) -> T:
    """:func:`eventually` for code without an event loop (threads, subprocesses)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise _failure(message, timeout, value)
        time.sleep(interval)
