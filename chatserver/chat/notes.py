"""Notes from other nodes (shared deployments): messages, typing, reads, visitor info.

Each note kind maps to its handler in :data:`NOTE_HANDLERS`; a lost stretch of notes
(``on_resync``) refills every cached session from the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import msgpack

from chatserver.chat.grace import PresenceAndGrace
from chatserver.chat.live import LiveOperator, LiveSession
from chatserver.protocol import Outgoing
from chatserver.store.base import MessageRecord
from chatserver.types import (
    OperatorId,
    SessionId,
)

log = logging.getLogger("chatserver.chat.hub")


class BusNotes(PresenceAndGrace):
    """Notes from other nodes (shared deployments): messages, typing, reads, visitor info."""

    def on_note(self, channel: str, payload: bytes) -> None:
        """A note on ``channel``: ``queue``, ``s:<session>`` or ``o:<operator>``."""
        if channel == "queue":
            self.queue_dirty = True
            return
        try:
            note = msgpack.unpackb(payload, raw=False)
        except (ValueError, msgpack.UnpackException):
            log.warning("undecodable bus note on %s", channel)
            return
        if not isinstance(note, dict):
            log.warning("malformed bus note on %s", channel)
            return
        kind = note.get("k")
        if channel.startswith("s:"):
            live = self.sessions.get(SessionId(channel[2:]))
            handler = SESSION_NOTES.get(kind) if isinstance(kind, str) else None
            if live is not None and handler is not None:
                handler(self, live, note)
        elif channel.startswith("o:"):
            op = self.operators.get(OperatorId(channel[2:]))
            op_handler = OPERATOR_NOTES.get(kind) if isinstance(kind, str) else None
            connected = op is not None and (op.conn is not None or kind == "hello")
            if op is not None and connected and op_handler is not None:
                op_handler(self, op, note)

    def note_message(self, live: LiveSession, note: dict[str, Any]) -> None:
        """A message another node stored: deliver it here in seq order."""
        self.deliver(live, MessageRecord(*note["r"]))

    def note_typing(self, live: LiveSession, note: dict[str, Any]) -> None:
        out = Outgoing(
            {
                "type": "typing",
                "session_id": live.session_id,
                "from": note["from"],
                "active": note["active"],
            }
        )
        if note["from"] == "visitor":
            op_conn = self.operator_conn(live)
            if op_conn is not None:
                op_conn.send(out)
        else:
            self.send_visitors(live, out)

    def note_read(self, live: LiveSession, note: dict[str, Any]) -> None:
        by_visitor = note["by"] == "visitor"
        if live.chat.mark_read(by_visitor, note["seq"]):
            out = Outgoing(
                {
                    "type": "read",
                    "session_id": live.session_id,
                    "by": note["by"],
                    "seq": note["seq"],
                }
            )
            if by_visitor:
                op_conn = self.operator_conn(live)
                if op_conn is not None:
                    op_conn.send(out)
            else:
                self.send_visitors(live, out)

    def note_visitor(self, live: LiveSession, note: dict[str, Any]) -> None:
        """The visitor's details or connection changed on another node."""
        v = live.visitor
        for field in ("name", "email", "page_url", "user_agent", "lang"):
            if note.get(field) is not None:
                setattr(v, field, note[field])
        live.remote_visitor = bool(note.get("connected"))
        self.notify_visitor_presence(live, publish=False)

    def note_whisper(self, live: LiveSession, note: dict[str, Any]) -> None:
        """A supervisor's whisper: to operators only."""
        self.supervision.deliver_note(live, note["note"])

    def note_assigned(self, op: LiveOperator, note: dict[str, Any]) -> None:
        """A chat was assigned on another node to an operator connected here."""
        self.spawn(self.operator_got_chat(op, SessionId(note["sid"])))

    def note_hello(self, op: LiveOperator, note: dict[str, Any]) -> None:
        """The operator said hello on another node (handled with or without a
        connection here): a grace timer running here stands down."""
        if note.get("node") != self.node_id:
            self.operator_elsewhere(op)

    def note_consult(self, op: LiveOperator, note: dict[str, Any]) -> None:
        """An operator connected here was asked into a chat (consult)."""
        self.spawn(self.supervision.bring_in(op, SessionId(note["sid"]), note["by"]))

    async def on_resync(self) -> None:
        """The bus lost notes: refill every cached session from the store."""
        for live in list(self.sessions.values()):
            if not live.refilling:
                live.refilling = True
                self.spawn(self.refill(live))
        self.queue_dirty = True
        await self.reregister_presence()


# Notes on a session's channel (``s:<session id>``), by their ``k``.
SESSION_NOTES: Final[dict[str, Callable[[BusNotes, LiveSession, dict[str, Any]], None]]] = {
    "m": BusNotes.note_message,
    "t": BusNotes.note_typing,
    "r": BusNotes.note_read,
    "v": BusNotes.note_visitor,
    "n": BusNotes.note_whisper,
}
# Notes on an operator's channel (``o:<operator id>``), by their ``k``.
OPERATOR_NOTES: Final[dict[str, Callable[[BusNotes, LiveOperator, dict[str, Any]], None]]] = {
    "assigned": BusNotes.note_assigned,
    "consult": BusNotes.note_consult,
    "hello": BusNotes.note_hello,
}
