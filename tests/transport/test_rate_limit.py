"""The per-connection frame budget (Connection.allow) over a real socket, window after window.

The budget is CHATSERVER_RATE_LIMIT_PER_10S frames per 10-second window, counted from the
first frame after ``hello``. The window length is fixed, so this test spans three windows
(about 20 s): it waits for the server's window to have passed, as the server's clock and
ours are the same monotonic clock.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from chatserver.client import ClientError, VisitorClient

LIMIT = 5
WINDOW = 10.0  # Connection.allow: seconds per window


async def fill_window(v: VisitorClient, window: int) -> float:
    """Send LIMIT messages (all taken) and one more (refused, the socket stays open).

    Returns a time by which the server had started this window: the moment the first
    message's ack arrived (the window starts when the server reads that message).
    """
    started = 0.0
    for i in range(LIMIT):
        seq = await v.send(f"window {window}, message {i}", client_msg_id=f"w{window}-{i}")
        assert seq > 0
        if i == 0:
            started = time.monotonic()
    with pytest.raises(ClientError) as refused:
        await v.send("one too many", client_msg_id=f"w{window}-over")
    assert refused.value.code == "rate_limited"
    assert refused.value.frame["ref"] == f"w{window}-over"
    return started


async def wait_for_next_window(started: float) -> None:
    # No event marks the end of the server's window: wait until it has surely passed.
    await asyncio.sleep(max(0.0, started + WINDOW + 0.05 - time.monotonic()))


async def test_the_frame_budget_renews_every_window(make_server: Any) -> None:
    server = make_server(env={"CHATSERVER_RATE_LIMIT_PER_10S": str(LIMIT)})
    server.start()
    v = await server.visitor()
    try:
        for window in (1, 2, 3):
            started = await fill_window(v, window)
            if window < 3:
                await wait_for_next_window(started)
        assert not v.closed.is_set()
        # Every message within the budget was stored, one seq each, none of the refused.
        history = [f for f in v.seen("ack") if not f["duplicate"]]
        assert [f["client_msg_id"] for f in history] == [
            f"w{w}-{i}" for w in (1, 2, 3) for i in range(LIMIT)
        ]
        assert len({f["seq"] for f in history}) == 3 * LIMIT
    finally:
        await v.close()
