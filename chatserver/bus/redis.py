"""Redis pub/sub bus: notes between hub nodes, pipelined, with resync on reconnect.

Every note published during one event-loop tick (and while the previous flush
was in flight) goes to Redis in one pipelined round trip. When the subscriber
connection drops and comes back (a Redis restart, ``CLIENT KILL TYPE pubsub``),
notes may have been missed, so ``on_resync`` is called and the hub refills from
the store.

On the wire a note is ``{node}\t{sent}\n{payload}``: the publishing node (a
node skips its own notes, which Redis echoes) and the wall-clock time of the
flush that sent it, from which receivers measure the bus lag (``on_lag``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from chatserver.bus.base import OnNote, OnResync

log = logging.getLogger("chatserver.bus")


class _ResyncingPubSub(PubSub):
    """redis-py reconnects and resubscribes silently; we must know, to refill."""

    def __init__(self, pool: Any, on_reconnect: Callable[[], None]) -> None:
        super().__init__(pool, ignore_subscribe_messages=True)
        self._on_reconnect = on_reconnect
        self._connects = 0

    async def on_connect(self, connection: Any) -> None:
        await super().on_connect(connection)
        self._connects += 1
        if self._connects > 1:
            self._on_reconnect()


class RedisBus:
    """:class:`~chatserver.bus.base.Bus` on Redis pub/sub (channels ``{prefix}:{name}``)."""

    def __init__(self, redis: Redis, *, prefix: str = "cs", node_id: str = "node") -> None:
        self.redis = redis
        self.prefix = prefix + ":"
        # Notes carry their origin so a node skips its own (Redis echoes them).
        self._tag = node_id.replace("\n", " ").replace("\t", " ").encode() + b"\t"
        # Called with the seconds from a note's flush on another node to its arrival here.
        self.on_lag: Callable[[float], None] | None = None
        self._channels: set[str] = set()
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None
        self._outbox: list[tuple[str, bytes]] = []
        self._wake = asyncio.Event()
        self._on_note: OnNote | None = None
        self._on_resync: OnResync | None = None
        self._connected = False
        self._publish_ok = True
        self._closing = False
        self._tasks: set[asyncio.Future[None]] = set()
        self.round_trips = 0
        self.published = 0

    @property
    def healthy(self) -> bool:
        return self._connected and self._publish_ok

    async def start(self, on_note: OnNote, on_resync: OnResync) -> None:
        self._on_note = on_note
        self._on_resync = on_resync
        self._reader = asyncio.create_task(self._read_loop(), name="bus-reader")
        self._flusher = asyncio.create_task(self._flush_loop(), name="bus-flusher")

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        for task in (self._reader, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await task
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()

    # -- subscriptions -------------------------------------------------------
    async def subscribe(self, channel: str) -> None:
        if channel in self._channels:
            return
        self._channels.add(channel)
        if self._pubsub is not None and self._connected:
            # Best effort: a dropped connection (redis-py may then fail with any
            # error) resubscribes from ``_channels`` when it comes back.
            with contextlib.suppress(Exception):
                await self._pubsub.subscribe(self.prefix + channel)

    async def unsubscribe(self, channel: str) -> None:
        if channel not in self._channels:
            return
        self._channels.discard(channel)
        if self._pubsub is not None and self._connected:
            # Best effort: a dropped connection (redis-py may then fail with any
            # error) resubscribes from ``_channels`` when it comes back.
            with contextlib.suppress(Exception):
                await self._pubsub.unsubscribe(self.prefix + channel)

    async def _connect(self) -> None:
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()
        pubsub = _ResyncingPubSub(self.redis.connection_pool, self._reconnected)
        self._pubsub = pubsub
        # Always hold one channel so the connection exists and is read.
        wanted = set(self._channels)
        await pubsub.subscribe(self.prefix + "_node", *(self.prefix + c for c in wanted))
        # Channels (un)subscribed while that was in flight (not yet "connected",
        # so subscribe() only noted them): catch up now.
        while wanted != self._channels:
            added, removed = self._channels - wanted, wanted - self._channels
            wanted = set(self._channels)
            if added:
                await pubsub.subscribe(*(self.prefix + c for c in added))
            if removed:
                await pubsub.unsubscribe(*(self.prefix + c for c in removed))

    def _reconnected(self) -> None:
        if self._connected:
            log.warning("bus subscriber reconnected; resyncing")
            asyncio.get_running_loop().call_soon(self._schedule_resync)

    def _schedule_resync(self) -> None:
        if self._on_resync is not None and not self._closing:
            task = asyncio.ensure_future(self._on_resync())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read_loop(self) -> None:
        delay = 0.1
        first = True
        while not self._closing:
            try:
                await self._connect()
                self._connected = True
                # Redis answers again: publishing works too (no need to wait for a
                # note to prove it before reporting healthy).
                self._publish_ok = True
                if not first:
                    log.warning("bus reconnected; resyncing")
                    self._schedule_resync()
                first = False
                delay = 0.1
                prefix_len = len(self.prefix)
                while not self._closing:
                    message = await self._pubsub.get_message(timeout=1.0)
                    if message is None or message.get("type") != "message":
                        continue
                    channel = message["channel"]
                    if isinstance(channel, bytes):
                        channel = channel.decode()
                    data = message["data"]
                    if data.startswith(self._tag) or self._on_note is None:
                        continue
                    end = data.index(b"\n")
                    if self.on_lag is not None:
                        self._observe_lag(data, end)
                    self._on_note(channel[prefix_len:], data[end + 1 :])
            except (RedisError, OSError) as exc:
                if self._connected:
                    log.warning("bus lost Redis: %s", exc)
                self._connected = False
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _observe_lag(self, data: bytes, end: int) -> None:
        tab = data.rfind(b"\t", 0, end)
        if tab < 0 or self.on_lag is None:
            return  # a note without a send time (an older node)
        try:
            sent = float(data[tab + 1 : end])
        except ValueError:
            return
        self.on_lag(max(0.0, time.time() - sent))

    # -- publishing ------------------------------------------------------------
    def publish(self, channel: str, payload: bytes) -> None:
        self._outbox.append((self.prefix + channel, payload))
        self._wake.set()

    async def _flush_loop(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            while self._outbox:
                batch, self._outbox = self._outbox, []
                header = self._tag + b"%.6f\n" % time.time()
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for channel, payload in batch:
                            pipe.publish(channel, header + payload)
                        await pipe.execute()
                    self.round_trips += 1
                    self.published += len(batch)
                    self._publish_ok = True
                except (RedisError, OSError) as exc:
                    # Dropped: receivers refill from the store when they notice the gap.
                    if self._publish_ok:
                        log.warning("bus publish failed (%d notes dropped): %s", len(batch), exc)
                    self._publish_ok = False
