"""What a node keeps in memory of a chat and an operator while they are connected here.

Plain data (no I/O): :class:`LiveSession` caches a session one of whose participants is
on this node, :class:`LiveOperator` an operator known here; the hub's modules
(:mod:`chatserver.chat.state` and the layers above it) read and change them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

import msgpack
from redis.exceptions import RedisError

from chatserver.chat.sessions import ChatSession
from chatserver.store.base import MessageRecord, OperatorRecord
from chatserver.transport.connection import Connection
from chatserver.types import (
    OperatorId,
    OperatorStatus,
    SessionId,
    SessionState,
)

HISTORY_PAGE = 500
OPEN_STATES = (SessionState.NEW, SessionState.WAITING, SessionState.ASSIGNED)
# Presence failures: the shared backend (Redis) is unreachable.
PRESENCE_ERRORS = (RedisError, OSError)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclasses.dataclass(slots=True)
class Visitor:
    name: str | None = None
    email: str | None = None
    page_url: str | None = None
    user_agent: str | None = None
    customer_id: str | None = None
    plan: str | None = None
    lang: str | None = None  # one of chatserver.i18n.LANGUAGES, or not given

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email}


@dataclasses.dataclass(slots=True, eq=False)
class LiveSession:
    """A session cached on this node while one of its participants is here."""

    chat: ChatSession
    token_hash: str
    visitor: Visitor
    enqueued_at: float | None = None
    conns: set[Connection] = dataclasses.field(default_factory=set)
    # client_key(sender, client_msg_id) -> seq of committed messages, and futures
    # of those still being committed: resends are answered from here.
    client_ids: dict[str, int] = dataclasses.field(default_factory=dict)
    inflight: dict[str, asyncio.Future[int]] = dataclasses.field(default_factory=dict)
    # Committed messages that arrived ahead of a gap, by seq, with their origin.
    held: dict[int, tuple[MessageRecord, Connection | None]] = dataclasses.field(
        default_factory=dict
    )
    refilling: bool = False
    abandon_timer: asyncio.TimerHandle | None = None
    preview: str | None = None  # the first visitor message, for the queue list
    remote_visitor: bool = False  # a visitor connection exists on another node
    chat_operator_name: str | None = None
    sla_first_due: float | None = None  # first-response due time (plan's business hours)
    sla_first_warn: float | None = None
    phone: str | None = None  # callback requests
    preferred_times: str | None = None
    # The last ``no_operator`` reason offered to the visitor (chat/queue.py).
    offered: str | None = None
    # Supervisors' consoles here watching the chat read-only (no capacity taken).
    watchers: set[Connection] = dataclasses.field(default_factory=set)
    # The chat's id (an attribute, not a property: read several times per message).
    session_id: SessionId = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.session_id = self.chat.session_id


@dataclasses.dataclass(slots=True, eq=False)
class LiveOperator:
    record: OperatorRecord
    status: OperatorStatus = OperatorStatus.OFFLINE
    conn: Connection | None = None
    chats: set[SessionId] = dataclasses.field(default_factory=set)
    grace_timer: asyncio.TimerHandle | None = None
    # The operator said hello on another node since their last hello here: that node
    # holds their chats now, this one neither re-queues them nor marks them offline.
    elsewhere: bool = False
    # The token version the current connection said hello with: frames are refused
    # once it differs from record.token_version (chatserver.chat.accounts).
    token_version: int = 0
    operator_id: OperatorId = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.operator_id = self.record.operator_id


def pack_note(note: dict[str, Any]) -> bytes:
    packed: bytes = msgpack.packb(note, use_bin_type=True)
    return packed


def record_row(record: MessageRecord) -> list[Any]:
    return [
        record.session_id,
        record.seq,
        record.ts,
        record.sender,
        record.sender_id,
        record.author,
        record.text,
        record.client_msg_id,
        record.event,
        record.extra,
    ]
