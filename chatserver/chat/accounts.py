"""Operator accounts on a running node: admin actions, revocation, the account watch.

Revoking an operator's tokens means adding 1 to ``operators.token_version`` in the
store: every token carries the version it was issued with, and every HTTP request and
every operator hello compares it with the stored one. Open sockets are closed by the
node holding them, with ``revoked`` (close code 4004), within one second, by two paths:

- the acting node publishes a note on the ``accounts`` bus channel, which every node
  subscribes to; a node receiving it reloads that account and applies it at once;
- every node compares its view of the accounts with the store every
  ``account_check_interval`` seconds (:meth:`Accounts.watch`), which catches changes made
  by the CLI (no bus there) and notes the bus lost.

Disabling, removing, a new password or a new role also re-queue the operator's chats at
the front, like a lost operator's; a logout only closes the sockets (the chats get the
usual grace period, see :mod:`chatserver.chat.grace`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, Final

import msgpack

from chatserver.chat.assignment import Assignment
from chatserver.chat.live import LiveOperator, pack_note
from chatserver.errors import (
    BadFrame,
    ChatError,
    Forbidden,
    InvalidState,
    NotFound,
    Revoked,
)
from chatserver.i18n.notices import Notice
from chatserver.operators import auth, fields
from chatserver.store.base import OperatorRecord
from chatserver.types import OperatorId, OperatorStatus, Role

log = logging.getLogger("chatserver.chat.accounts")

ACCOUNTS_CHANNEL: Final = "accounts"
REVOKED_TEXT = "Your access was revoked; please log in again."


def _shape(record: OperatorRecord) -> tuple[Any, ...]:
    """What a node caches of an account and must refresh when it changes."""
    return (
        record.name,
        record.role,
        record.departments,
        record.capacity,
        record.levels,
        record.token_version,
        record.active,
        record.password_hash,
    )


def check_token_account(record: OperatorRecord | None, version: int) -> OperatorRecord:
    """The account of a verified token of ``version``, if the token is still valid:
    :class:`Revoked` when its version is old or the account disabled or removed."""
    if record is None or record.removed_at is not None:
        raise Revoked("this account no longer exists")
    if record.disabled_at is not None:
        raise Revoked("this account is disabled")
    if version != record.token_version:
        raise Revoked("this token was revoked; log in again")
    return record


class Accounts:
    """One node's view of operator accounts (``hub.accounts``)."""

    def __init__(self, hub: Assignment) -> None:
        self.hub = hub
        self.known: dict[OperatorId, tuple[Any, ...]] = {}
        self.seeded = False
        self.changes: int | None = None  # the store's operators_changes() last read

    # ------------------------------------------------------------ tokens
    async def authenticate(self, token: str) -> OperatorRecord:
        """The account a token belongs to; :class:`Revoked` when its version is
        old or the account is disabled or removed, :class:`Unauthorized` if forged."""
        assert self.hub.tokens is not None
        operator_id, version = self.hub.tokens.verify_versioned(token)
        return check_token_account(await self.hub.store.operator(operator_id), version)

    async def logout(self, token: str) -> OperatorRecord:
        """Revoke every token of the token's account (all its consoles sign out)."""
        record = await self.authenticate(token)
        updated = await self.hub.store.update_operator(record.operator_id, revoke=True)
        assert updated is not None
        await self.changed(updated, requeue=False)
        return updated

    # ------------------------------------------------------ admin actions
    @staticmethod
    def require_admin(actor: OperatorRecord) -> None:
        if actor.role != Role.ADMIN.value:
            raise Forbidden("admins only")

    async def target(self, operator_id: str) -> OperatorRecord:
        """An account that exists and is not removed, else :class:`NotFound`."""
        record = await self.hub.store.operator(OperatorId(operator_id[:100]))
        if record is None or record.removed_at is not None:
            raise NotFound("no such operator")
        return record

    async def guard_last_admin(self, record: OperatorRecord) -> None:
        """Refuse an action that would leave no active admin."""
        if record.role != Role.ADMIN.value or not record.active:
            return
        admins = [
            r
            for r in await self.hub.store.operators()
            if r.role == Role.ADMIN.value and r.active and r.operator_id != record.operator_id
        ]
        if not admins:
            raise InvalidState("this is the last active admin")

    async def create(self, actor: OperatorRecord, body: dict[str, Any]) -> OperatorRecord:
        self.require_admin(actor)
        unknown = sorted(set(body) - {"username", "password", *fields.CHANGEABLE})
        if unknown:
            raise BadFrame(f"unknown field(s): {', '.join(unknown)}")
        try:
            username = fields.clean_username(body.get("username"))
            password = fields.clean_password(body.get("password"))
            rest = {k: body[k] for k in fields.CHANGEABLE if k in body}
            values = fields.clean_changes(rest) if rest else {}
        except ValueError as exc:
            raise BadFrame(str(exc)) from None
        record = OperatorRecord(
            operator_id=OperatorId("o_" + secrets.token_hex(6)),
            username=username,
            name=values.get("name", username),
            password_hash=await asyncio.to_thread(auth.hash_password, password),
            role=values.get("role", Role.OPERATOR.value),
            departments=values.get("departments", ()),
            capacity=values.get("capacity", self.hub.settings.default_capacity),
            created_at=time.time(),
            levels=values.get("levels", (1,)),
        )
        try:
            await self.hub.store.add_operator(record)
        except ValueError:
            raise InvalidState(f"the username {username!r} is taken") from None
        log.info(
            "operator %s created by %s",
            username,
            actor.username,
            extra={"operator_id": record.operator_id, "by": actor.operator_id},
        )
        return record

    async def change(
        self, actor: OperatorRecord, operator_id: str, body: dict[str, Any]
    ) -> OperatorRecord:
        """Change name, role, departments, levels or capacity; a new role revokes."""
        self.require_admin(actor)
        record = await self.target(operator_id)
        try:
            values = fields.clean_changes(body)
        except ValueError as exc:
            raise BadFrame(str(exc)) from None
        new_role = "role" in values and values["role"] != record.role
        if new_role:
            if record.operator_id == actor.operator_id:
                raise InvalidState("you cannot change your own role")
            await self.guard_last_admin(record)
        updated = await self.hub.store.update_operator(
            record.operator_id, revoke=new_role, **values
        )
        assert updated is not None
        await self.changed(updated, requeue=new_role)
        return updated

    async def set_password(
        self, actor: OperatorRecord, operator_id: str, body: dict[str, Any]
    ) -> OperatorRecord:
        self.require_admin(actor)
        record = await self.target(operator_id)
        if set(body) != {"password"}:
            raise BadFrame("give exactly password")
        try:
            password = fields.clean_password(body["password"])
        except ValueError as exc:
            raise BadFrame(str(exc)) from None
        password_hash = await asyncio.to_thread(auth.hash_password, password)
        updated = await self.hub.store.update_operator(
            record.operator_id, revoke=True, password_hash=password_hash
        )
        assert updated is not None
        await self.changed(updated, requeue=True)
        return updated

    async def disable(self, actor: OperatorRecord, operator_id: str) -> OperatorRecord:
        return await self._deactivate(actor, operator_id, "disabled_at")

    async def remove(self, actor: OperatorRecord, operator_id: str) -> OperatorRecord:
        return await self._deactivate(actor, operator_id, "removed_at")

    async def _deactivate(
        self, actor: OperatorRecord, operator_id: str, column: str
    ) -> OperatorRecord:
        self.require_admin(actor)
        record = await self.target(operator_id)
        if record.operator_id == actor.operator_id:
            raise InvalidState("you cannot disable or remove your own account")
        await self.guard_last_admin(record)
        updated = await self.hub.store.update_operator(
            record.operator_id, revoke=True, **{column: time.time()}
        )
        assert updated is not None
        await self.changed(updated, requeue=True)
        return updated

    async def enable(self, actor: OperatorRecord, operator_id: str) -> OperatorRecord:
        self.require_admin(actor)
        record = await self.target(operator_id)
        updated = await self.hub.store.update_operator(record.operator_id, disabled_at=None)
        assert updated is not None
        await self.changed(updated, requeue=False)
        return updated

    # ------------------------------------------------------------ applying
    async def changed(self, record: OperatorRecord, *, requeue: bool) -> None:
        """After this node changed ``record`` in the store: tell every node, apply here."""
        self.hub.bus.publish(
            ACCOUNTS_CHANNEL, pack_note({"id": record.operator_id, "q": requeue})
        )
        await self.apply(record, requeue=requeue, acting=True)

    def on_note(self, payload: bytes) -> None:
        """A note on :data:`ACCOUNTS_CHANNEL` from another node."""
        try:
            note = msgpack.unpackb(payload, raw=False)
            operator_id = OperatorId(str(note["id"]))
            requeue = bool(note.get("q"))
        except (ValueError, TypeError, KeyError, msgpack.UnpackException):
            log.warning("malformed accounts note")
            return
        self.hub.spawn(self.reload(operator_id, requeue))

    async def reload(self, operator_id: OperatorId, requeue: bool) -> None:
        record = await self.hub.store.operator(operator_id)
        if record is not None:
            await self.apply(record, requeue=requeue, acting=False)

    async def watch(self) -> None:
        """Every ``account_check_interval``: apply accounts changed in the store."""
        while True:
            try:
                await self.check()
            except Exception:
                log.exception("account check failed")
            await asyncio.sleep(self.hub.settings.account_check_interval)

    async def check(self) -> None:
        # One number each time; every operator only once it moved (read before the
        # operators, so a change made in between is seen the next time).
        changes = await self.hub.store.operators_changes()
        if self.seeded and changes == self.changes:
            return
        records = await self.hub.store.operators()
        self.changes = changes
        if not self.seeded:
            self.known = {r.operator_id: _shape(r) for r in records}
            self.seeded = True
            return
        for record in records:
            before = self.known.get(record.operator_id)
            if before is not None and before != _shape(record):
                # A new role or password and disabling or removing re-queue the
                # chats; a logout (only the version changed) does not.
                requeue = (
                    not record.active
                    or before[1] != record.role
                    or before[7] != record.password_hash
                )
                await self.apply(record, requeue=requeue, acting=False)
            self.known[record.operator_id] = _shape(record)

    async def apply(self, record: OperatorRecord, *, requeue: bool, acting: bool) -> None:
        """Bring this node in line with ``record``: refresh the cached account,
        close a socket whose token is no longer valid, re-queue chats if asked."""
        before = self.known.get(record.operator_id)
        self.known[record.operator_id] = _shape(record)
        if before == _shape(record) and not acting:
            return  # applied already (the note and the watch both saw it)
        hub = self.hub
        op = hub.operators.get(record.operator_id)
        if op is not None:
            op.record = record
            if record.active:
                with contextlib.suppress(ChatError):
                    await hub.presence_call(
                        hub.presence.register_operator(
                            record.operator_id,
                            capacity=record.capacity,
                            departments=record.departments,
                            levels=record.levels,
                        )
                    )
        revoked = op is not None and (
            op.token_version != record.token_version or not record.active
        )
        if op is not None and revoked and op.conn is not None:
            self.close_revoked(op, offline=requeue)
        if requeue:
            await self.requeue_chats(record, op)

    def close_revoked(self, op: LiveOperator, *, offline: bool) -> None:
        conn = op.conn
        assert conn is not None
        log.info(
            "closing revoked operator %s",
            op.operator_id,
            extra={"operator_id": op.operator_id},
        )
        conn.send_frame(Revoked(REVOKED_TEXT).to_frame())
        conn.close(Revoked.close_code)
        if offline:
            # The chats are re-queued here, not after a grace period.
            op.conn = None
            op.status = OperatorStatus.OFFLINE
            self.hub.supervision.discard(conn)
            if op.grace_timer is not None:
                op.grace_timer.cancel()
                op.grace_timer = None

    async def requeue_chats(self, record: OperatorRecord, op: LiveOperator | None) -> None:
        """Re-queue the operator's chats, here if the operator is connected here or
        nowhere (presence says offline); a node holding them does it itself."""
        hub = self.hub
        if op is not None and op.conn is None:
            with contextlib.suppress(ChatError):
                await hub.presence_call(
                    hub.presence.set_status(record.operator_id, OperatorStatus.OFFLINE)
                )
            op.chats.clear()
            if op.grace_timer is not None:
                op.grace_timer.cancel()
                op.grace_timer = None
        elif op is None:
            slot = None
            with contextlib.suppress(ChatError):
                slot = await hub.presence_call(hub.presence.operator(record.operator_id))
            if slot is not None and slot.status is not OperatorStatus.OFFLINE:
                return  # connected on another node, which re-queues when it closes them
        # What visitors are told is what they are told of a lost operator.
        notice = Notice("operator_lost_connection", {"name": record.name})
        for session in await hub.store.assigned_sessions(record.operator_id):
            await hub.requeue(record.operator_id, session.session_id, notice)
        await hub.dispatch()
