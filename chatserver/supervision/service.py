"""Supervisor features of the hub: the live board and actions on any chat.

Part of the I/O shell (:mod:`chatserver.chat.hub`); the aggregation itself is pure
(:mod:`chatserver.supervision.board`).

**Board.** Every ``board_interval`` seconds, while a supervisor (role
supervisor or admin) is connected to this node, the node reads presence (every
node's operators and the shared queue) and the store (open chats, today's chat
timings, ticket SLA clocks), builds one snapshot, diffs it against the last one
and, if anything changed, sends the patch — encoded once — to each supervisor
here. A supervisor's console gets the full snapshot once (``board``) and
patches after it (``board_patch``). Without supervisors nothing is computed
but the queue's per-minute history sample.

**Actions** (operator WebSocket; supervisors and admins only):

- ``watch`` / ``unwatch``: read-only view of any open chat — its history
  replayed, then its live messages and notes. Takes no capacity.
- ``whisper``: a note on the chat's operators-only thread (``chat_notes``),
  delivered to the chat's operator and its watchers on every node, never to
  the visitor.
- ``take_over`` / ``reassign``: the chat moves to the supervisor or to another
  online operator with free capacity, by compare-and-set in the store plus a
  system message (``assigned`` for a waiting chat, ``reassigned`` for an
  assigned one), so every node applies the change in seq order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

import msgpack

from chatserver.chat.assignment import Assignment
from chatserver.chat.live import LiveOperator, LiveSession
from chatserver.chat.routing import QueueEntry
from chatserver.errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    ForbiddenAction,
    InvalidState,
    NotAssigned,
    NotFound,
    Unavailable,
    UnknownSession,
)
from chatserver.i18n.notices import Notice
from chatserver.protocol import Outgoing
from chatserver.store.base import OperatorRecord
from chatserver.supervision.board import (
    History,
    OperatorView,
    QueuedChat,
    build_board,
    diff,
    window_starts,
)
from chatserver.transport.connection import Connection
from chatserver.types import OperatorId, OperatorStatus, Role, SessionId, SessionState

log = logging.getLogger("chatserver.supervision.service")

SUPERVISOR_ROLES = frozenset({Role.SUPERVISOR.value, Role.ADMIN.value})
# Frames of the operator endpoint that only supervisors may send.
SUPERVISOR_FRAMES = frozenset({"board", "watch", "unwatch", "whisper", "take_over", "reassign"})
# Sessions created this long before midnight are searched for chats enqueued after it.
_ROWID_MARGIN = 3600.0
_ACCOUNTS_TTL = 60.0


def may_supervise(op: LiveOperator) -> bool:
    return op.record.role in SUPERVISOR_ROLES


class Supervision:
    """The board and the supervisor actions of one hub."""

    def __init__(self, hub: Assignment) -> None:
        self.hub = hub
        self.tz = ZoneInfo(hub.settings.board_timezone)
        self.interval = hub.settings.board_interval
        self.history = History()
        self.board: dict[str, Any] | None = None
        self.rev = 0
        self.computed_at = 0.0
        self.conns: set[Connection] = set()  # supervisor consoles here that have the board
        self.watching: dict[Connection, set[SessionId]] = {}
        self._lock = asyncio.Lock()
        self._accounts: dict[OperatorId, OperatorRecord] = {}
        self._accounts_at = 0.0
        self._day_rowid: tuple[float, int] | None = None
        self._oldest: float | None = None
        # The knowledge base's figures for a window (hour start, day start), set by the
        # app (chatserver.kb.service.KnowledgeBase.board_counts); None: zeros.
        self.kb_counts: Callable[[float, float], Awaitable[dict[str, int]]] | None = None
        hub.metrics.queue_longest_wait_seconds.set_function(self._longest_wait)

    # ------------------------------------------------------------------ board
    def _longest_wait(self) -> float:
        return 0.0 if self._oldest is None else max(0.0, self.hub.clock() - self._oldest)

    def observe_queue(self, entries: list[QueueEntry]) -> None:
        """A fresh queue snapshot: history point and queue gauges."""
        oldest = min((e.enqueued_at for e in entries), default=None)
        self._oldest = oldest
        now = self.hub.clock()
        self.history.record(now, len(entries), 0.0 if oldest is None else now - oldest)
        self.hub.metrics.queue_length.set(len(entries))

    async def run(self) -> None:
        """The board ticker (a hub task)."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                if self.conns:
                    await self.refresh()
                elif not self.history.has(self.hub.clock()):
                    entries = await self.hub.presence_call(self.hub.presence.queue_snapshot())
                    self.observe_queue(entries)
            except ChatError:
                continue  # presence unreachable: try again next tick
            except Exception:
                log.exception("board update failed")

    async def refresh(self) -> None:
        """Recompute the board and send what changed to every supervisor here."""
        async with self._lock:
            self._publish(await self._compute())

    def _publish(self, new: dict[str, Any]) -> None:
        old, self.board = self.board, new
        if old is None or not self.conns:
            return
        patch = diff(old, new)
        if patch is None:
            return
        self.rev += 1
        out = Outgoing({"type": "board_patch", "rev": self.rev, "patch": patch})
        for conn in self.conns:
            conn.send(out)

    async def add(self, conn: Connection) -> None:
        """Send the whole board to a supervisor's console; patches follow."""
        async with self._lock:
            if self.board is None or time.monotonic() - self.computed_at > self.interval:
                self._publish(await self._compute())
            assert self.board is not None
            if conn.closed:
                return
            conn.send_frame({"type": "board", "rev": self.rev, "board": self.board})
            self.conns.add(conn)

    def discard(self, conn: Connection) -> None:
        """A console closed: no more board, no more watching."""
        self.conns.discard(conn)
        for session_id in self.watching.pop(conn, ()):
            live = self.hub.sessions.get(session_id)
            if live is not None:
                live.watchers.discard(conn)
                self.hub.evict_if_idle(live)

    async def _operator_accounts(self, ids: set[OperatorId]) -> dict[OperatorId, OperatorRecord]:
        stale = time.monotonic() - self._accounts_at > _ACCOUNTS_TTL
        if stale or not ids <= self._accounts.keys():
            records = await self.hub.store.operators()
            self._accounts = {r.operator_id: r for r in records}
            self._accounts_at = time.monotonic()
        return self._accounts

    async def _first_rowid(self, day_start: float) -> int:
        if self._day_rowid is None or self._day_rowid[0] != day_start:
            rowid = await self.hub.store.first_session_rowid(day_start - _ROWID_MARGIN)
            self._day_rowid = (day_start, rowid)
        return self._day_rowid[1]

    async def _compute(self) -> dict[str, Any]:
        hub = self.hub
        slots = await hub.presence_call(hub.presence.operators())
        entries = await hub.presence_call(hub.presence.queue_snapshot())
        self.observe_queue(entries)
        accounts = await self._operator_accounts({s.operator_id for s in slots})
        now = hub.clock()
        hour_start, day_start = window_starts(now, self.tz)
        store = hub.store
        open_chats = await store.open_chats()
        stats = await store.chat_stats(day_start, await self._first_rowid(day_start))
        clocks = await store.ticket_sla_clocks()
        breaches = await store.sla_breaches_since(day_start)
        csat = await store.csat_since(day_start)
        kb = None
        if self.kb_counts is not None:
            try:
                kb = await self.kb_counts(hour_start, day_start)
            except Exception:
                log.exception("knowledge base figures for the board failed")
        operators = []
        for slot in slots:
            account = accounts.get(slot.operator_id)
            operators.append(
                OperatorView(
                    slot.operator_id,
                    account.name if account is not None else slot.operator_id,
                    account.role if account is not None else Role.OPERATOR.value,
                    slot.status.value,
                    slot.load,
                    slot.capacity,
                    tuple(slot.departments),
                )
            )
        queue = [
            QueuedChat(e.session_id, e.enqueued_at, e.department, e.level, e.priority.label)
            for e in entries
        ]
        board = build_board(
            now=now,
            tz=self.tz,
            operators=operators,
            queue=queue,
            open_chats=open_chats,
            chats=stats,
            sla=clocks,
            breaches_today=breaches,
            history=self.history,
            csat=csat,
            kb=kb,
        )
        self.computed_at = time.monotonic()
        return board

    # ----------------------------------------------------------------- frames
    async def handle(self, conn: Connection, op: LiveOperator, frame: dict[str, Any]) -> None:
        """A supervisor frame from ``op``'s console (refused for other roles)."""
        if not may_supervise(op):
            raise ForbiddenAction("supervisors and admins only")
        kind = frame["type"]
        if kind == "board":
            async with self._lock:
                self.conns.discard(conn)
            await self.add(conn)
        elif kind == "watch":
            await self.watch(conn, SessionId(frame["session_id"]))
        elif kind == "unwatch":
            self.unwatch(conn, SessionId(frame["session_id"]))
        elif kind == "whisper":
            await self.whisper(conn, op, SessionId(frame["session_id"]), frame["text"])
        elif kind == "take_over":
            await self.move(conn, op, SessionId(frame["session_id"]), None)
        elif kind == "reassign":
            await self.move(conn, op, SessionId(frame["session_id"]), frame["operator_id"])

    async def _open_live(self, session_id: SessionId) -> LiveSession:
        live = await self.hub.load_live(session_id)
        if live is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        if not live.chat.is_open:
            raise ChatClosed("this chat has ended")
        return self.hub.rehold(live)

    # --------------------------------------------------------------- watching
    async def watch(self, conn: Connection, session_id: SessionId) -> None:
        live = await self._open_live(session_id)
        # No await until start_replay: live messages are held from now on. The
        # whole history is replayed, even what this console has seen (its own
        # chat, an earlier watch): the watch view starts empty.
        live.watchers.add(conn)
        self.watching.setdefault(conn, set()).add(live.session_id)
        conn.forget(live.session_id)
        conn.start_replay(live.session_id)
        conn.send_frame(
            {
                "type": "watching",
                "chat": self.hub.summary(live),
                "operator": self.hub.chat_operator(live),
            }
        )
        await self.hub.replay(conn, live, 0)
        notes = await self.hub.store.notes(live.session_id)
        conn.send_frame({"type": "notes", "session_id": live.session_id, "notes": notes})

    def unwatch(self, conn: Connection, session_id: SessionId) -> None:
        """Stop watching (nothing happens if ``conn`` was not watching)."""
        watched = self.watching.get(conn)
        if watched is None or session_id not in watched:
            return
        watched.discard(session_id)
        if not watched:
            del self.watching[conn]
        live = self.hub.sessions.get(session_id)
        if live is not None:
            live.watchers.discard(conn)
            self.hub.evict_if_idle(live)

    # ---------------------------------------------------------------- notes
    async def whisper(
        self, conn: Connection, op: LiveOperator, session_id: SessionId, text: str
    ) -> None:
        live = await self._open_live(session_id)
        live = await self._post_note(conn, op, live, "whisper", text)
        self.hub.evict_if_idle(live)

    async def _post_note(
        self,
        conn: Connection,
        op: LiveOperator,
        live: LiveSession,
        kind: str,
        text: str,
        to: tuple[str, str] | None = None,
    ) -> LiveSession:
        """Store a note on the chat's operators-only thread, then deliver it to the chat's
        operator and watchers on every node (and ``conn``). Returns the cached session."""
        ts = self.hub.clock()
        try:
            await self.hub.store.submit_note(
                live.session_id, ts, kind, op.operator_id, op.record.name, text, to=to
            )
        except Exception as exc:
            log.error(
                "note for %s not stored: %s",
                live.session_id,
                exc,
                extra={"session_id": live.session_id, "operator_id": op.operator_id},
            )
            raise Unavailable("the note could not be stored") from exc
        note: dict[str, Any] = {
            "type": "note",
            "session_id": live.session_id,
            "kind": kind,
            "author": {"id": op.operator_id, "name": op.record.name},
            "text": text,
            "ts": int(ts * 1000),
        }
        if kind == "consult":
            note["to"] = {"id": to[0], "name": to[1]} if to is not None else None
        live = self.hub.rehold(live)
        self.deliver_note(live, note, also=conn)
        if self.hub.shared:
            payload = msgpack.packb({"k": "n", "note": note}, use_bin_type=True)
            self.hub.bus.publish(f"s:{live.session_id}", payload)
        return live

    def deliver_note(
        self, live: LiveSession, note: dict[str, Any], also: Connection | None = None
    ) -> None:
        """To the chat's operator and watchers on this node (and ``also``); never visitors."""
        out = Outgoing(note)
        targets = set(live.watchers)
        op_conn = self.hub.operator_conn(live)
        if op_conn is not None:
            targets.add(op_conn)
        if also is not None:
            targets.add(also)
        for target in targets:
            target.send(out)

    # ---------------------------------------------------------------- consults
    async def consult(
        self,
        conn: Connection,
        op: LiveOperator,
        session_id: SessionId,
        target: str | None,
        text: str,
    ) -> None:
        """A note on the chat's operators-only thread that asks (``target``) or answers a
        colleague: 3rd-level support consulted internally, never shown to the visitor."""
        live = await self._open_live(session_id)
        allowed = (
            live.chat.operator_id == op.operator_id
            or may_supervise(op)
            or await self.hub.store.consulted(live.session_id, op.operator_id)
        )
        if not allowed:
            raise NotAssigned("only the chat's operator and consulted colleagues may write here")
        colleague = None
        if target is not None:
            if target == op.operator_id:
                raise BadFrame("consult: that is you")
            colleague = await self.hub.store.operator(OperatorId(target))
            if colleague is None:
                raise BadFrame("consult: no such operator")
        to = (colleague.operator_id, colleague.name) if colleague is not None else None
        live = await self._post_note(conn, op, live, "consult", text, to)
        if colleague is not None:
            by = {"id": op.operator_id, "name": op.record.name}
            local = self.hub.operators.get(colleague.operator_id)
            if local is not None and local.conn is not None:
                await self.bring_in(local, live.session_id, by)
            elif self.hub.shared:
                self.hub.bus.publish(
                    f"o:{colleague.operator_id}",
                    msgpack.packb(
                        {"k": "consult", "sid": live.session_id, "by": by}, use_bin_type=True
                    ),
                )
        self.hub.evict_if_idle(live)

    async def bring_in(
        self, op: LiveOperator, session_id: SessionId, by: dict[str, Any] | None
    ) -> None:
        """Show a consulted colleague the chat read-only: ``consulted``, the history, the
        thread, then its live messages and notes (as a watcher). ``by`` is who asked
        (``None``: the colleague reconnected)."""
        conn = op.conn
        if conn is None:
            return
        live = await self._open_live(session_id)
        if conn in live.watchers:
            # Already watching (e.g. from the board): say so; no second replay.
            conn.send_frame(
                {
                    "type": "consulted",
                    "chat": self.hub.summary(live),
                    "operator": self.hub.chat_operator(live),
                    "by": by,
                    "replay": False,
                }
            )
            return
        # No await until start_replay: live messages are held from now on.
        live.watchers.add(conn)
        self.watching.setdefault(conn, set()).add(live.session_id)
        conn.start_replay(live.session_id)
        conn.send_frame(
            {
                "type": "consulted",
                "chat": self.hub.summary(live),
                "operator": self.hub.chat_operator(live),
                "by": by,
            }
        )
        await self.hub.replay(conn, live, 0)
        notes = await self.hub.store.notes(live.session_id)
        conn.send_frame({"type": "notes", "session_id": live.session_id, "notes": notes})

    async def send_notes(self, conn: Connection, op: LiveOperator, session_id: SessionId) -> None:
        """Answer a ``notes`` frame: the chat's thread, for its operators and supervisors."""
        record = await self.hub.store.session(session_id)
        allowed = record is not None and (
            op.operator_id in (record.operator_id, record.previous_operator)
            or may_supervise(op)
            or await self.hub.store.consulted(session_id, op.operator_id)
        )
        if not allowed:
            raise UnknownSession(f"no chat {session_id[:64]} for you")
        notes = await self.hub.store.notes(session_id)
        conn.send_frame({"type": "notes", "session_id": session_id, "notes": notes})

    # ------------------------------------------------------- take over, reassign
    async def _reserve(self, operator_id: OperatorId, *, need_online: bool) -> None:
        """Take one unit of ``operator_id``'s capacity, or refuse.

        Reserve, then check: two concurrent reservations that overfill the
        operator both see it and both let go, so capacity is never exceeded.
        """
        hub = self.hub
        slot = await hub.presence_call(hub.presence.operator(operator_id))
        if slot is None or (need_online and slot.status is not OperatorStatus.ONLINE):
            raise InvalidState("that operator is not online")
        if slot.load >= slot.capacity:
            raise InvalidState("that operator has no free capacity")
        await hub.presence_call(hub.presence.add_load(operator_id, 1))
        after = await hub.presence_call(hub.presence.operator(operator_id))
        if after is None or after.load > after.capacity:
            await self._release(operator_id)
            raise InvalidState("that operator has no free capacity")

    async def _release(self, operator_id: OperatorId) -> None:
        with contextlib.suppress(ChatError):
            await self.hub.presence_call(self.hub.presence.add_load(operator_id, -1))

    async def move(
        self,
        conn: Connection,
        supervisor: LiveOperator,
        session_id: SessionId,
        target_id: str | None,
    ) -> None:
        """``take_over`` (``target_id`` None: to the supervisor) or ``reassign``."""
        hub = self.hub
        record = await hub.store.session(session_id)
        if record is None:
            raise UnknownSession(f"no chat {session_id[:64]}")
        if record.state is SessionState.CLOSED:
            raise ChatClosed("this chat has ended")
        if record.state is SessionState.NEW:
            raise InvalidState("the visitor has not written yet")
        if target_id is None:
            target = supervisor
        else:
            found = await hub.live_operator(OperatorId(target_id))
            if found is None:
                raise NotFound(f"no operator {target_id[:64]}")
            target = found
        if record.state is SessionState.ASSIGNED and record.operator_id == target.operator_id:
            raise InvalidState("the chat is already with that operator")
        await self._reserve(target.operator_id, need_online=target_id is not None)
        try:
            if record.state is SessionState.WAITING:
                moved = await self._assign_waiting(
                    conn, session_id, target, take_over=target_id is None
                )
            else:
                assert record.operator_id is not None
                moved = await self._reassign(
                    conn, session_id, record.operator_id, target, take_over=target_id is None
                )
        except BaseException:
            await self._release(target.operator_id)
            raise
        if not moved:
            raise InvalidState("the chat changed meanwhile; try again")
        log.info(
            "chat %s moved to %s by %s",
            session_id,
            target.operator_id,
            supervisor.operator_id,
            extra={"session_id": session_id, "operator_id": supervisor.operator_id},
        )
        if target_id is not None:
            conn.send_frame(
                {
                    "type": "reassigned",
                    "session_id": session_id,
                    "operator": {"id": target.operator_id, "name": target.record.name},
                }
            )

    async def _assign_waiting(
        self, conn: Connection, session_id: SessionId, target: LiveOperator, *, take_over: bool
    ) -> bool:
        """Pick a waiting chat out of the queue for ``target`` (capacity reserved).

        Done exactly like a routed assignment (``Assignment.carry_out``), which lets go
        of the reservation if the chat closed meanwhile.
        """
        hub = self.hub
        if not await hub.presence_call(hub.presence.dequeue(session_id)):
            await self._release(target.operator_id)
            return False  # being assigned by routing right now
        hub.queue_changed()
        if take_over:
            self._stop_watching_to_own(conn, session_id)
        await hub.carry_out(session_id, target.operator_id)
        after = await hub.store.session(session_id)
        return (
            after is not None
            and after.state is SessionState.ASSIGNED
            and after.operator_id == target.operator_id
        )

    async def _reassign(
        self,
        conn: Connection,
        session_id: SessionId,
        previous: OperatorId,
        target: LiveOperator,
        *,
        take_over: bool,
    ) -> bool:
        hub = self.hub
        done = await hub.store.submit_transition(
            session_id,
            (SessionState.ASSIGNED,),
            expect_operator=previous,
            operator_id=target.operator_id,
            previous_operator=previous,
        )
        if done is None:
            await self._release(target.operator_id)
            return False
        try:
            await self._release(previous)
            live = await hub.load_live(session_id)
            if live is None:
                return True
            live = hub.rehold(live)
            if take_over:
                self._stop_watching_to_own(conn, session_id)
            name = target.record.name
            notice = Notice("chat_taken_over" if take_over else "chat_reassigned", {"name": name})
            # Every node applies "reassigned" in seq order: the old operator's console
            # gets chat_removed, the visitor the new name, the new operator the chat.
            await hub.system_message(
                live, "reassigned", notice, operator_id=target.operator_id, author=name
            )
            if target.conn is not None:
                await hub.operator_got_chat(target, session_id)
            elif hub.shared:
                payload = msgpack.packb({"k": "assigned", "sid": session_id}, use_bin_type=True)
                hub.bus.publish(f"o:{target.operator_id}", payload)
            else:
                target.chats.add(session_id)
            hub.evict_if_idle(live)
        except Exception:
            # The store has the move; the rest catches up (replay, resync).
            log.exception("after moving chat %s", session_id, extra={"session_id": session_id})
        return True

    def _stop_watching_to_own(self, conn: Connection, session_id: SessionId) -> None:
        """The supervisor takes the chat: their console gets it with its whole
        history, like any assigned chat, instead of as a watcher."""
        self.unwatch(conn, session_id)
        conn.forget(session_id)
