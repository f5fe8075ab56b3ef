"""Visitor frames: hello (create or resume a session), message, typing, read, info, rate,
another operator, close, ping. :data:`VISITOR_HANDLERS` maps each frame type to its
handler; the protocol's schemas (:mod:`chatserver.protocol`) have checked the frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Final

from chatserver.chat.assignment import Assignment
from chatserver.chat.live import (
    LiveSession,
    Visitor,
)
from chatserver.chat.sessions import ChatSession
from chatserver.errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    InvalidState,
    Unauthorized,
    Unavailable,
)
from chatserver.i18n.languages import LANGUAGES
from chatserver.i18n.notices import Notice
from chatserver.operators import auth
from chatserver.protocol import Outgoing
from chatserver.store.base import SessionRecord
from chatserver.transport.connection import Connection
from chatserver.types import (
    PLAN_PRIORITY,
    Priority,
    Sender,
    SessionId,
    SessionState,
)

log = logging.getLogger("chatserver.chat.hub")


class VisitorFrames(Assignment):
    """Visitor frames: hello (create or resume a session), message, typing, read, info, rate,"""

    async def visitor_hello(self, conn: Connection, frame: dict[str, Any]) -> LiveSession:
        """Create or resume a session; registers ``conn`` and replays what it missed."""
        token = frame.get("token")
        if self.closing:
            raise Unavailable("the server is shutting down")
        customer_id = plan = None
        if frame.get("identity"):
            customer_id, plan = auth.verify_identity(
                frame["identity"], self.settings.identity_secret
            )
            # The host site's name, e-mail and language prefill what the visitor did
            # not give (an unsupported language is left out).
            for field, limit in (("name", 100), ("email", 254), ("lang", 8)):
                value = frame["identity"].get(field)
                if not frame.get(field) and isinstance(value, str) and 0 < len(value) <= limit:
                    if field != "lang" or value in LANGUAGES:
                        frame[field] = value
        if token:
            live = await self.resume_session(token)
            live.offered = None  # a reloaded widget is offered its way out again
            new_token = token
            resumed = True
        else:
            new_token = auth.new_visitor_token()
            live = await self.create_session(new_token, frame)
            resumed = False
        # Info the visitor brought with it (a new page, a name).
        changes: dict[str, Any] = {}
        v = live.visitor
        for field, column in (
            ("name", "visitor_name"),
            ("email", "visitor_email"),
            ("page_url", "page_url"),
            ("user_agent", "user_agent"),
            ("lang", "lang"),
        ):
            value = frame.get(field)
            if value and value != getattr(v, field):
                setattr(v, field, value)
                changes[column] = value
        if customer_id is not None and (customer_id, plan) != (v.customer_id, v.plan):
            v.customer_id, v.plan = customer_id, plan
            changes.update(customer_id=customer_id, plan=plan)
            if live.chat.state is SessionState.NEW and plan is not None:
                live.chat.priority = PLAN_PRIORITY.get(plan, Priority.NORMAL)
                changes["priority"] = live.chat.priority
        if changes:  # (a new session's record lacks the identity until now)
            self.store.submit_session_update(live.session_id, **changes)
        if v.lang and v.customer_id is not None and {"lang", "customer_id"} & changes.keys():
            await self.store.set_customer_lang(v.customer_id, v.lang)  # their mails follow
        if live.abandon_timer is not None:
            live.abandon_timer.cancel()
            live.abandon_timer = None

        last_seq = frame.get("last_seq") or 0
        position = None
        if live.chat.state is SessionState.WAITING:
            with contextlib.suppress(ChatError):
                position = await self.presence_call(self.presence.position(live.session_id))
        # No await from here until welcome is queued: it must be the first frame.
        if resumed:
            conn.start_replay(live.session_id)
        was_connected = bool(live.conns)
        live.conns.add(conn)
        conn.send_frame(
            {
                "type": "welcome",
                "session_id": live.session_id,
                "token": new_token,
                "state": live.chat.state.value,
                "resumed": resumed,
                "last_seq": live.chat.last_seq,
                "operator": self.chat_operator(live),
                "queue_position": position,
                "visitor": v.public(),
                "read_seq": live.chat.operator_read_seq,
                "offline": self.offline,
                "callback_allowed": self.levels.plan(v.plan).phone,
                "kind": live.chat.kind,
            }
        )
        if resumed:
            await self.replay(conn, live, last_seq)
        if not was_connected or changes:
            self.notify_visitor_presence(live)
            with contextlib.suppress(ChatError):
                await self.presence_call(self.presence.visitor_seen(live.session_id, v.page_url))
        return live

    async def create_session(self, token: str, frame: dict[str, Any]) -> LiveSession:
        session_id = SessionId("s_" + secrets.token_urlsafe(12))
        now = self.clock()
        chat = ChatSession(session_id=session_id, created_at=now)
        visitor = Visitor(
            frame.get("name") or None,
            frame.get("email") or None,
            frame.get("page_url") or None,
            frame.get("user_agent") or None,
        )
        live = LiveSession(chat=chat, token_hash=auth.token_hash(token), visitor=visitor)
        record = SessionRecord(
            session_id,
            live.token_hash,
            SessionState.NEW,
            now,
            visitor_name=visitor.name,
            visitor_email=visitor.email,
            page_url=visitor.page_url,
            user_agent=visitor.user_agent,
        )
        self.hold(live)
        # The token must be durable before the client learns it.
        await self.store.submit_session(record)
        return live

    async def resume_session(self, token: str) -> LiveSession:
        hashed = auth.token_hash(token)
        session_id = self.by_token.get(hashed)
        if session_id is not None and session_id in self.sessions:
            return self.sessions[session_id]
        record = await self.store.session_by_token_hash(hashed)
        if record is None:
            raise Unauthorized("unknown session token")
        return await self.live_from_record(record)

    async def visitor_frame(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        """Handle a checked frame (any type but hello) from ``live``'s visitor."""
        await VISITOR_HANDLERS[frame["type"]](self, conn, live, frame)

    async def visitor_message(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        chat = live.chat
        self.messages_in += 1
        cmid = frame["client_msg_id"]
        if self.resend(live, conn, Sender.VISITOR, cmid):
            return
        if not chat.is_open:
            raise ChatClosed("this chat has ended; start a new one", ref=cmid)
        if self.closing:
            raise Unavailable("the server is shutting down", ref=cmid)
        extra = await self.message_attachments(live, frame) if frame.get("attachments") else None
        if extra is not None:
            live = self.rehold(live)
            if self.resend(live, conn, Sender.VISITOR, cmid):
                return
        self.post(
            live,
            Sender.VISITOR,
            frame["text"],
            sender_id=None,
            author=live.visitor.name or "Visitor",
            client_msg_id=cmid,
            origin=conn,
            extra=extra,
        )
        if chat.state is SessionState.NEW:
            live.preview = (frame["text"] or "📎 attachment")[:120]
            await self.start_waiting(live)

    async def visitor_typing(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        note = {"k": "t", "from": "visitor", "active": frame["active"]}
        op_conn = self.operator_conn(live)
        if op_conn is not None:
            op_conn.send_frame(
                {
                    "type": "typing",
                    "session_id": live.session_id,
                    "from": "visitor",
                    "active": frame["active"],
                }
            )
        self.publish_note(live, note)

    async def visitor_read(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        chat = live.chat
        if chat.mark_read(True, frame["seq"]):
            self.store.submit_session_update(
                live.session_id, visitor_read_seq=chat.visitor_read_seq
            )
            out = Outgoing(
                {
                    "type": "read",
                    "session_id": live.session_id,
                    "by": "visitor",
                    "seq": chat.visitor_read_seq,
                }
            )
            self.send_visitors(live, out, skip=conn)
            op_conn = self.operator_conn(live)
            if op_conn is not None:
                op_conn.send(out)
            self.publish_note(live, {"k": "r", "by": "visitor", "seq": chat.visitor_read_seq})

    async def visitor_info(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        changes: dict[str, Any] = {}
        for field, column in (
            ("name", "visitor_name"),
            ("email", "visitor_email"),
            ("page_url", "page_url"),
            ("lang", "lang"),
        ):
            value = frame.get(field)
            if value is not None and value != getattr(live.visitor, field):
                setattr(live.visitor, field, value or None)
                changes[column] = value or None
        if changes:
            self.store.submit_session_update(live.session_id, **changes)
            self.notify_visitor_presence(live)
        if changes.get("lang") and live.visitor.customer_id is not None:
            await self.store.set_customer_lang(live.visitor.customer_id, changes["lang"])

    async def visitor_rate(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        chat = live.chat
        score = frame["score"]
        if not 1 <= score <= 5:
            raise BadFrame("score must be 1 to 5")
        if chat.assigned_at is None and chat.previous_operator is None:
            raise InvalidState("there is nothing to rate before an operator has answered")
        comment = (frame.get("comment") or "").strip() or None
        await self.store.submit_session_update(
            live.session_id, csat_score=score, csat_comment=comment, csat_at=self.clock()
        )
        conn.send_frame({"type": "rated", "score": score})

    async def visitor_another_operator(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        chat = live.chat
        if chat.state is not SessionState.ASSIGNED or chat.operator_id is None:
            raise InvalidState("no operator is serving this chat")
        await self.transfer(
            live,
            chat.operator_id,
            Notice("another_operator_requested"),
            avoid=chat.operator_id,
        )

    async def visitor_close(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        chat = live.chat
        if chat.is_open:
            await self.close_chat(live, by=Sender.VISITOR)

    async def visitor_ping(
        self, conn: Connection, live: LiveSession, frame: dict[str, Any]
    ) -> None:
        conn.send_frame({"type": "pong"})

    async def visitor_gone(self, conn: Connection, live: LiveSession) -> None:
        live.conns.discard(conn)
        if live.conns:
            return
        if live.chat.state is SessionState.WAITING and self.settings.visitor_abandon_seconds > 0:
            loop = asyncio.get_running_loop()
            live.abandon_timer = loop.call_later(
                self.settings.visitor_abandon_seconds,
                lambda: self.spawn(self.abandon(live)),
            )
        self.notify_visitor_presence(live)
        self.evict_if_idle(live)
        with contextlib.suppress(ChatError):
            await self.presence_call(self.presence.visitor_left(live.session_id))

    async def abandon(self, live: LiveSession) -> None:
        live.abandon_timer = None
        if not live.conns and live.chat.state is SessionState.WAITING:
            await self.close_chat(live, by=Sender.SYSTEM, reason=Notice("visitor_left_unanswered"))


VisitorHandler = Callable[[VisitorFrames, Connection, LiveSession, dict[str, Any]], Awaitable[None]]

# Every frame a visitor may send after hello, and its handler: the visitor side of
# the protocol in one place (docs/protocol.md; the schemas are chatserver.protocol's).
VISITOR_HANDLERS: Final[dict[str, VisitorHandler]] = {
    "message": VisitorFrames.visitor_message,
    "typing": VisitorFrames.visitor_typing,
    "read": VisitorFrames.visitor_read,
    "info": VisitorFrames.visitor_info,
    "rate": VisitorFrames.visitor_rate,
    "another_operator": VisitorFrames.visitor_another_operator,
    "close": VisitorFrames.visitor_close,
    "ping": VisitorFrames.visitor_ping,
}
