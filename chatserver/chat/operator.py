"""Operator frames: hello, message, typing, read, status, history, close, transfer and the
supervisor's frames (handed to :mod:`chatserver.supervision.service`).
:data:`OPERATOR_HANDLERS` maps each frame type to its handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Final

from chatserver.chat.accounts import REVOKED_TEXT, check_token_account
from chatserver.chat.live import (
    HISTORY_PAGE,
    LiveOperator,
    LiveSession,
)
from chatserver.chat.queue import QueueUpdates
from chatserver.errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    NotAssigned,
    Revoked,
    Unauthorized,
    Unavailable,
    UnknownSession,
)
from chatserver.i18n.notices import Notice
from chatserver.operators import auth
from chatserver.protocol import Outgoing
from chatserver.store.base import OperatorRecord
from chatserver.supervision.service import SUPERVISOR_FRAMES, may_supervise
from chatserver.transport.connection import Connection
from chatserver.types import (
    OperatorId,
    OperatorStatus,
    Role,
    Sender,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class OperatorFrames(QueueUpdates):
    """Operator frames: hello, message, typing, read, status, history, close, transfer and the"""

    async def login(self, username: str, password: str) -> tuple[str, OperatorRecord]:
        record = await self.store.operator_by_username(username)
        ok = await asyncio.to_thread(
            auth.verify_password, record.password_hash if record else auth.dummy_hash(), password
        )
        if record is None or not ok or not record.active:
            raise Unauthorized("wrong username or password")
        assert self.tokens is not None
        return self.tokens.issue(record.operator_id, version=record.token_version), record

    async def operator_hello(self, conn: Connection, frame: dict[str, Any]) -> LiveOperator:
        assert self.tokens is not None
        if self.closing:
            raise Unavailable("the server is shutting down")
        operator_id, version = self.tokens.verify_versioned(frame["token"])
        # The account as stored (on any node it may have changed since op.record was
        # cached: its language, or a revocation); a revoked token goes no further.
        stored = check_token_account(await self.store.operator(operator_id), version)
        op = await self.live_operator(operator_id)
        if op is None:
            raise Unauthorized("unknown operator")
        op.record = stored
        op.token_version = version
        lang = stored.lang
        known = frame.get("sessions") or {}
        if not isinstance(known, dict):
            raise BadFrame("sessions must map session ids to seqs")
        previous = op.conn
        reconnect = op.grace_timer is not None or previous is not None
        if op.grace_timer is not None:
            op.grace_timer.cancel()
            op.grace_timer = None
        wanted = frame.get("status")
        if isinstance(wanted, str) and wanted in OperatorStatus.__members__.values():
            status = OperatorStatus(wanted)
        elif reconnect and op.status is not OperatorStatus.OFFLINE:
            status = op.status
        else:
            status = OperatorStatus.ONLINE
        await self.bus.subscribe(f"o:{operator_id}")
        # The store knows which chats are this operator's (on any node).
        records = await self.store.assigned_sessions(operator_id)
        lives = [await self.live_from_record(r) for r in records]
        await self.learn_visitor_presence(lives)
        queue = await self.queue_frame_body()
        # No await from here until welcome is queued: it must be the first frame,
        # and the operator becomes eligible for new chats only after it.
        op.conn = conn
        op.elsewhere = False
        if previous is not None:
            previous.close(4008)
        op.status = status
        lives = [self.rehold(live) for live in lives]
        op.chats |= {live.session_id for live in lives}
        resume: list[tuple[LiveSession, int]] = []
        refused: list[str] = []
        for session_id, last_seq in known.items():
            live = self.sessions.get(SessionId(str(session_id)))
            if live is None or live.session_id not in op.chats or not isinstance(last_seq, int):
                refused.append(str(session_id)[:64])
            else:
                conn.start_replay(live.session_id)
                resume.append((live, last_seq))
        conn.send_frame(
            {
                "type": "welcome",
                "operator": {
                    **op.record.public(),
                    "lang": lang,
                    "status": status.value,
                    "load": len(op.chats),
                },
                "chats": [
                    self.summary(self.sessions[s]) for s in sorted(op.chats) if s in self.sessions
                ],
                "queue": queue,
            }
        )
        for session_id in refused:
            conn.send_frame(UnknownSession(f"cannot resume {session_id}").to_frame())
        self.announce_operator(op)  # a node holding their grace timer stands down
        for live, last_seq in resume:
            await self.replay(conn, live, last_seq)
        with contextlib.suppress(ChatError):
            await self.presence_call(self.presence.set_status(operator_id, status))
        if status is OperatorStatus.OFFLINE:
            await self.requeue_operator_chats(
                op, Notice("operator_went_offline", {"name": op.record.name})
            )
        await self.dispatch()
        if may_supervise(op):
            try:
                await self.supervision.add(conn)  # the board, then its patches
            except Exception:  # the console asks again with a "board" frame
                log.exception(
                    "board for %s failed", operator_id, extra={"operator_id": operator_id}
                )
        # Open chats this operator was consulted on: back into their read-only view.
        for session_id in await self.store.consulted_open(operator_id):
            if session_id not in op.chats:
                with contextlib.suppress(ChatError):
                    await self.supervision.bring_in(op, session_id, None)
        return op

    def own_chat(self, op: LiveOperator, session_id: str) -> LiveSession:
        live = self.sessions.get(SessionId(session_id))
        if live is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        if live.chat.operator_id != op.operator_id or live.session_id not in op.chats:
            if (
                live.chat.state is SessionState.CLOSED
                and live.chat.previous_operator == op.operator_id
            ):
                raise ChatClosed("this chat has ended")
            raise NotAssigned("this chat is not assigned to you")
        if live.chat.state is SessionState.CLOSED:
            raise ChatClosed("this chat has ended")
        return live

    async def operator_frame(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        """Handle a checked frame (any type but hello) from operator ``op``."""
        if op.token_version != op.record.token_version or not op.record.active:
            raise Revoked(REVOKED_TEXT)  # closes the connection (4004)
        await OPERATOR_HANDLERS[frame["type"]](self, conn, op, frame)

    async def operator_supervise(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        """A supervisor's frame (board, watch, whisper, take over, reassign)."""
        await self.supervision.handle(conn, op, frame)

    async def operator_message(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        self.messages_in += 1
        cmid = frame["client_msg_id"]
        live = self.sessions.get(SessionId(frame["session_id"]))
        if live is not None and self.resend(live, conn, Sender.OPERATOR, cmid):
            return
        try:
            live = self.own_chat(op, frame["session_id"])
        except ChatError as exc:
            exc.ref = cmid
            raise
        if self.closing:
            raise Unavailable("the server is shutting down", ref=cmid)
        extra = await self.message_attachments(live, frame) if frame.get("attachments") else None
        if extra is not None:
            live = self.own_chat(op, frame["session_id"])  # still ours after the await?
            if self.resend(live, conn, Sender.OPERATOR, cmid):
                return
        self.post(
            live,
            Sender.OPERATOR,
            frame["text"],
            sender_id=op.operator_id,
            author=op.record.name,
            client_msg_id=cmid,
            origin=conn,
            extra=extra,
        )

    async def operator_typing(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        live = self.own_chat(op, frame["session_id"])
        self.send_visitors(
            live,
            Outgoing(
                {
                    "type": "typing",
                    "session_id": live.session_id,
                    "from": "operator",
                    "active": frame["active"],
                }
            ),
        )
        self.publish_note(live, {"k": "t", "from": "operator", "active": frame["active"]})

    async def operator_read(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        live = self.own_chat(op, frame["session_id"])
        if live.chat.mark_read(False, frame["seq"]):
            seq = live.chat.operator_read_seq
            self.store.submit_session_update(live.session_id, operator_read_seq=seq)
            self.send_visitors(
                live,
                Outgoing(
                    {
                        "type": "read",
                        "session_id": live.session_id,
                        "by": "operator",
                        "seq": seq,
                    }
                ),
            )
            self.publish_note(live, {"k": "r", "by": "operator", "seq": seq})

    async def operator_status(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        try:
            status = OperatorStatus(frame["status"])
        except ValueError:
            raise BadFrame("status must be online, away or offline") from None
        op.status = status
        await self.presence_call(self.presence.set_status(op.operator_id, status))
        if status is OperatorStatus.OFFLINE:
            await self.requeue_operator_chats(
                op, Notice("operator_went_offline", {"name": op.record.name})
            )
        self.send_status(op)
        self.queue_dirty = True
        await self.dispatch()

    async def operator_close_chat(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        live = self.own_chat(op, frame["session_id"])
        await self.close_chat(live, by=Sender.OPERATOR)

    async def operator_consult(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        await self.supervision.consult(
            conn, op, SessionId(frame["session_id"]), frame.get("operator_id"), frame["text"]
        )

    async def operator_notes(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        await self.supervision.send_notes(conn, op, SessionId(frame["session_id"]))

    async def operator_ping(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        conn.send_frame({"type": "pong"})

    async def operator_transfer(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        """Hand the chat to a colleague, a department or a support level (queued again)."""
        live = self.own_chat(op, frame["session_id"])
        target = frame.get("operator_id")
        level = frame.get("level")
        department = frame.get("department")
        if target is None and level is None and department is None:
            raise BadFrame("transfer: give operator_id, department or level")
        if level is not None and level not in (1, 2, 3):
            raise BadFrame("transfer: level must be 1, 2 or 3")
        target_name = None
        if target is not None:
            if target == op.operator_id:
                raise BadFrame("transfer: that is you")
            record = await self.store.operator(OperatorId(target))
            if record is None or not record.active:  # disabled or removed: no colleague
                raise BadFrame("transfer: no such operator")
            target_name = record.name
        if target_name is not None:
            notice = Notice("handover_to_operator", {"from": op.record.name, "to": target_name})
        elif level is not None and level > live.chat.level:
            notice = Notice("transfer_to_level", {"level": level})
        else:
            notice = Notice("transfer_to_colleague", {"from": op.record.name})
        await self.transfer(
            live,
            op.operator_id,
            notice,
            department=department,
            level=level,
            target=OperatorId(target) if target is not None else None,
        )

    async def operator_history(
        self, conn: Connection, op: LiveOperator, frame: dict[str, Any]
    ) -> None:
        session_id = SessionId(frame["session_id"])
        record = await self.store.session(session_id)
        allowed = record is not None and (
            op.operator_id in (record.operator_id, record.previous_operator)
            or op.record.role in (Role.SUPERVISOR, Role.ADMIN)
        )
        if not allowed:
            raise UnknownSession(f"no chat {session_id[:64]} for you")
        limit = min(max(1, frame.get("limit") or HISTORY_PAGE), 2000)
        rows = await self.store.messages_after(session_id, frame.get("after_seq") or 0, limit)
        conn.send_frame(
            {
                "type": "history",
                "session_id": session_id,
                "messages": [r.to_frame() for r in rows],
                "last_seq": rows[-1].seq if rows else (frame.get("after_seq") or 0),
            }
        )

    async def operator_gone(self, conn: Connection, op: LiveOperator) -> None:
        self.supervision.discard(conn)
        if op.conn is not conn:
            return  # replaced by a newer connection
        op.conn = None
        if op.elsewhere:
            # Back on another node already (its hello note came first): their chats
            # and their presence are that node's now.
            self.operator_elsewhere(op)
            return
        # Not eligible for new chats while away from the socket.
        with contextlib.suppress(ChatError):
            await self.presence_call(
                self.presence.set_status(op.operator_id, OperatorStatus.OFFLINE)
            )
        if op.chats or op.status is not OperatorStatus.OFFLINE:
            self.start_grace(op)
        for session_id in list(op.chats):
            live = self.sessions.get(session_id)
            if live is not None:
                self.evict_if_idle(live)


OperatorHandler = Callable[
    [OperatorFrames, Connection, LiveOperator, dict[str, Any]], Awaitable[None]
]

# Every frame an operator may send after hello, and its handler: the operator side of
# the protocol in one place (docs/protocol.md; the schemas are chatserver.protocol's).
OPERATOR_HANDLERS: Final[dict[str, OperatorHandler]] = {
    "message": OperatorFrames.operator_message,
    "typing": OperatorFrames.operator_typing,
    "read": OperatorFrames.operator_read,
    "status": OperatorFrames.operator_status,
    "history": OperatorFrames.operator_history,
    "close_chat": OperatorFrames.operator_close_chat,
    "transfer": OperatorFrames.operator_transfer,
    "consult": OperatorFrames.operator_consult,
    "notes": OperatorFrames.operator_notes,
    "ping": OperatorFrames.operator_ping,
    **{kind: OperatorFrames.operator_supervise for kind in SUPERVISOR_FRAMES},
}
