"""Ticket work: escalation, replies, changes, uploads, the visitor side and mail.

:class:`TicketService` is what the HTTP API and the mail channel call. It
checks who may do what (a refusal is a :class:`~chatserver.errors.ChatError`
and changes nothing), writes through :class:`~chatserver.store.tickets.TicketStore`
and queues mail in the store's outbox, which :meth:`TicketService.mail_loop`
delivers with retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any

from . import tickets as T
from .attachments import (
    AttachmentRecord,
    FileStore,
    clean_filename,
    new_attachment_id,
    sniff,
)
from .config import Settings
from .errors import (
    BadFrame,
    ChatClosed,
    ChatError,
    Forbidden,
    InvalidState,
    NotFound,
    TooLarge,
    UnsupportedType,
)
from .mail import (
    InboundMail,
    MailAttachment,
    Mailer,
    MailError,
    OutboundMail,
    make_message_id,
    parse_inbound,
)
from .protocol import check_attachment_ids
from .service_levels import ServiceLevels
from .sla import load_sla_config
from .store.base import OperatorRecord, SessionRecord
from .store.sqlite import SqliteStore
from .store.tickets import NewEvent, TicketRow, TicketStore
from .types import OperatorId, Role, SessionId, SessionState

log = logging.getLogger("chatserver.tickets")

MAX_SUBJECT = 200
MAX_TEXT = 20000
MAX_REASON = 500
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,252}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclasses.dataclass(frozen=True, slots=True)
class OperatorActor:
    record: OperatorRecord

    @property
    def supervises(self) -> bool:
        return self.record.role in (Role.SUPERVISOR.value, Role.ADMIN.value)

    def actor(self) -> dict[str, Any]:
        return {"type": "operator", "id": self.record.operator_id, "name": self.record.name}


@dataclasses.dataclass(frozen=True, slots=True)
class VisitorActor:
    session: SessionRecord

    def actor(self) -> dict[str, Any]:
        return {"type": "customer", "id": None, "name": self.session.visitor_name or "Visitor"}


Principal = OperatorActor | VisitorActor


def clean_text(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    """A user-supplied string: control characters removed, trimmed, length checked."""
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadFrame(f"{field} must be a string")
    text = _CONTROL.sub("", value).strip()
    if required and not text:
        raise BadFrame(f"{field} is empty")
    if len(text) > limit:
        raise BadFrame(f"{field} is longer than {limit} characters")
    return text


def clean_line(value: Any, field: str, limit: int, *, required: bool = True) -> str:
    """Like :func:`clean_text` but one line (subjects, names): line breaks become spaces."""
    text = clean_text(value, field, limit * 2, required=required)
    text = " ".join(text.split())
    if len(text) > limit:
        raise BadFrame(f"{field} is longer than {limit} characters")
    return text


def clean_email(value: Any, *, required: bool = True) -> str | None:
    if value in (None, "") and not required:
        return None
    if not isinstance(value, str) or not _EMAIL.match(value.strip()):
        raise BadFrame("email is not an e-mail address")
    return value.strip().lower()


def _mail_in(
    mail: InboundMail, atts: Sequence[AttachmentRecord], skipped: list[dict[str, str]]
) -> NewEvent:
    """The event of a customer's mail on a ticket."""
    return NewEvent(
        "mail_in",
        {"type": "customer", "id": None, "name": mail.sender_name or mail.sender},
        {
            "text": (mail.text.strip() or "(no text)")[:MAX_TEXT],
            "from": mail.sender,
            "subject": mail.subject,
            "message_id": mail.message_id,
            "attachments": [a.public() for a in atts],
            "skipped": skipped,
        },
    )


def _state_change(before: T.TicketState, after: T.TicketState, reason: str) -> list[NewEvent]:
    """The automatic state event a reply causes, if any."""
    if after is before:
        return []
    return [
        NewEvent(
            "state",
            {"type": "system", "id": None, "name": "chatserver"},
            {"from": before.value, "to": after.value, "reason": reason},
        )
    ]


def _plain(value: Any) -> Any:
    """Enum members as their values (for event bodies)."""
    return value.value if isinstance(value, (T.TicketState, T.TicketPriority)) else value


class TicketService:
    """Everything tickets and attachments; one per node."""

    def __init__(
        self,
        settings: Settings,
        store: SqliteStore,
        records: TicketStore,
        files: FileStore,
        hub: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.files = files
        self.hub = hub  # posts the "escalated" notice into chats
        self.levels: ServiceLevels = (
            hub.levels if hub is not None else ServiceLevels(load_sla_config(settings.sla_config))
        )
        # Called with the kind ("first_response", "resolution") of each recorded breach.
        self.on_breach: Callable[[str], None] | None = None
        self.mailer: Mailer | None = None
        if settings.smtp_host:
            self.mailer = Mailer(
                settings.smtp_host,
                settings.smtp_port,
                settings.mail_from,
                username=settings.smtp_username,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
                use_tls=settings.smtp_tls,
            )
        self.mail_domain = settings.mail_from.rsplit("@", 1)[-1]
        self._mail_wake = asyncio.Event()
        self._names: dict[str, str] = {}
        self.mail_sent = 0
        self.mail_failed = 0

    # ------------------------------------------------------------ helpers
    async def _operator_name(self, operator_id: str | None) -> str | None:
        if operator_id is None:
            return None
        name = self._names.get(operator_id)
        if name is None:
            record = await self.store.operator(OperatorId(operator_id))
            name = record.name if record is not None else "(removed operator)"
            self._names[operator_id] = name
        return name

    async def ticket_json(self, row: TicketRow) -> dict[str, Any]:
        name = await self._operator_name(row.assignee)
        return {
            "number": row.number,
            "ref": T.ref(row.number),
            "subject": row.subject,
            "state": row.state.value,
            "state_label": row.state.label,
            "priority": row.priority.value,
            "department": row.department,
            "level": row.level,
            "assignee": {"id": row.assignee, "name": name} if row.assignee else None,
            "channel": row.channel,
            "requester": {
                "name": row.requester_name,
                "email": row.requester_email,
                "customer_id": row.customer_id,
            },
            "session_id": row.session_id,
            "created_at": row.created_at,
            "updated_at": row.updated_at,
            "sla": self.sla_json(row),
        }

    def sla_json(self, row: TicketRow, now: float | None = None) -> dict[str, Any]:
        """Both clocks as the console shows them (it counts down to each ``due``)."""
        now = time.time() if now is None else now
        paused = row.paused_since is not None
        return {
            "plan": self.levels.plan(row.plan).name,
            "paused": paused,
            "breached": row.sla_breached.split(),
            "first_response": self.levels.describe(
                row.sla_first_due, row.sla_first_warn, row.first_response_at, now, paused
            ),
            "resolution": self.levels.describe(
                row.sla_resolution_due, row.sla_resolution_warn, row.resolved_at, now, paused
            ),
        }

    async def refresh_sla(self, row: TicketRow) -> TicketRow:
        """Recompute the ticket's clocks from its history; returns the updated row."""
        events = await self.records.events(row.number)
        clocks = self.levels.ticket_clocks(row.plan, row.created_at, row.channel, events)
        await self.records.set_sla(
            row.number,
            sla_first_due=clocks.first_due,
            sla_first_warn=clocks.first_warn,
            sla_resolution_due=clocks.resolution_due,
            sla_resolution_warn=clocks.resolution_warn,
            first_response_at=clocks.first_response_at,
            resolved_at=clocks.resolved_at,
            paused_since=clocks.paused_since,
        )
        fresh = await self.records.ticket(row.number)
        assert fresh is not None
        return fresh

    async def sla_loop(self, interval: float = 15.0) -> None:
        """Record breached clocks of tickets and chats, forever."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check_breaches()
            except Exception:
                log.exception("SLA check failed")

    async def check_breaches(self, now: float | None = None) -> list[tuple[str, str, float]]:
        found = await self.records.record_breaches(time.time() if now is None else now)
        for ref, kind, due in found:
            log.warning(
                "SLA %s breached for %s (due %s)",
                kind,
                ref,
                time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(due)),
            )
            if self.on_breach is not None:
                self.on_breach(kind)
        return found

    @staticmethod
    def event_json(event: dict[str, Any]) -> dict[str, Any]:
        return {k: event[k] for k in ("n", "ts", "kind", "internal", "actor", "body", "hash")}

    async def _ticket(self, number: Any) -> TicketRow:
        parsed = T.parse_number(str(number)) if isinstance(number, (str, int)) else None
        row = await self.records.ticket(parsed) if parsed is not None else None
        if row is None:
            raise NotFound("no such ticket")
        return row

    @staticmethod
    def _visitor_owns(session: SessionRecord, row: TicketRow) -> bool:
        if row.session_id == session.session_id:
            return True
        return session.customer_id is not None and row.customer_id == session.customer_id

    async def _visitor_ticket(self, who: VisitorActor, number: Any) -> TicketRow:
        row = await self._ticket(number)
        if not self._visitor_owns(who.session, row):
            raise NotFound("no such ticket")
        return row

    async def _session_for_operator(self, who: OperatorActor, session_id: Any) -> SessionRecord:
        if not isinstance(session_id, str) or not 0 < len(session_id) <= 64:
            raise BadFrame("session_id is missing")
        session = await self.store.session(SessionId(session_id))
        if session is None:
            raise NotFound("no such chat")
        mine = who.record.operator_id in (session.operator_id, session.previous_operator)
        if not (mine or who.supervises):
            raise NotFound("no such chat")
        return session

    async def _attachments(self, owner: str, ids: Any) -> list[AttachmentRecord]:
        if ids is None:
            return []
        ids = check_attachment_ids(ids)
        found = await self.records.attachments_of(owner, ids)
        if len(found) != len(ids):
            raise NotFound("unknown attachment: upload it into this conversation first")
        return found

    # -------------------------------------------------------- attachments
    async def upload(
        self, who: Principal, data: bytes, filename: str | None, target: dict[str, Any]
    ) -> AttachmentRecord:
        """Check and store an uploaded file for a chat or ticket the uploader may use."""
        if len(data) > self.settings.max_upload_bytes:
            raise TooLarge(f"the file is larger than {self.settings.max_upload_bytes} bytes")
        if not data:
            raise BadFrame("the file is empty")
        name = clean_filename(filename)
        kind = sniff(data, name)
        ticket_ref = target.get("ticket")
        if isinstance(who, VisitorActor):
            if ticket_ref:
                owner = f"t:{(await self._visitor_ticket(who, ticket_ref)).number}"
            else:
                if who.session.state is SessionState.CLOSED:
                    raise ChatClosed("this chat has ended")
                owner = f"s:{who.session.session_id}"
            uploaded_by = "visitor"
        else:
            if ticket_ref:
                owner = f"t:{(await self._ticket(ticket_ref)).number}"
            else:
                session = await self._session_for_operator(who, target.get("session_id"))
                if session.state is SessionState.CLOSED:
                    raise ChatClosed("this chat has ended")
                owner = f"s:{session.session_id}"
            uploaded_by = f"operator:{who.record.operator_id}"
        storage, digest = await asyncio.to_thread(self.files.put, data)
        record = AttachmentRecord(
            new_attachment_id(),
            owner,
            name,
            kind.content_type,
            len(data),
            digest,
            storage,
            uploaded_by,
            time.time(),
        )
        await self.records.add_attachment(record)
        return record

    async def download(self, who: Principal, attachment_id: str) -> AttachmentRecord:
        """The attachment if ``who`` takes part in its conversation, else ``NotFound``."""
        record = await self.records.attachment(attachment_id)
        if record is None:
            raise NotFound("no such attachment")
        kind, _, ident = record.owner.partition(":")
        if isinstance(who, VisitorActor):
            if kind == "s" and ident == who.session.session_id:
                return record
            if kind == "t":
                row = await self.records.ticket(int(ident))
                if row is not None and self._visitor_owns(who.session, row):
                    # Attachments of internal notes stay internal.
                    if await self._public_attachment(row.number, attachment_id):
                        return record
            raise NotFound("no such attachment")
        if kind == "t":
            return record
        session = await self.store.session(SessionId(ident))
        if session is not None and (
            who.supervises
            or who.record.operator_id in (session.operator_id, session.previous_operator)
        ):
            return record
        raise NotFound("no such attachment")

    async def _public_attachment(self, number: int, attachment_id: str) -> bool:
        for event in await self.records.events(number, internal=False):
            for att in event["body"].get("attachments") or ():
                if att.get("id") == attachment_id:
                    return True
        return False

    # ------------------------------------------------------------ tickets
    def _fields(self, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "department": T.parse_department(body.get("department", "technical")),
            "priority": T.parse_priority(body.get("priority", "normal")),
            "level": T.parse_level(body.get("level", 1)),
        }
        return out

    async def escalate(
        self, who: OperatorActor, session_id: str, body: dict[str, Any]
    ) -> TicketRow:
        """Turn a chat into a ticket: transcript and attachments copied in."""
        session = await self._session_for_operator(who, session_id)
        fields = self._fields(body)
        subject = clean_line(body.get("subject"), "subject", MAX_SUBJECT)
        reason = clean_line(body.get("reason"), "reason", MAX_REASON, required=False) or None
        if await self.records.ticket_for_session(session.session_id) is not None:
            raise InvalidState("this chat is already a ticket")
        messages = await self.store.messages_after(session.session_id, 0, 100_000)
        transcript = [
            NewEvent(
                "transcript",
                {"type": m.sender, "id": m.sender_id, "name": m.author},
                {
                    "from": m.sender,
                    "author": m.author,
                    "text": m.text,
                    "ts": m.ts,
                    "event": m.event,
                    "attachments": (m.extra or {}).get("attachments") or [],
                },
            )
            for m in messages
        ]
        carry = await self.records.all_attachments_of(f"s:{session.session_id}")
        try:
            row, _ = await self.records.create(
                subject=subject,
                priority=fields["priority"],
                department=fields["department"],
                level=fields["level"],
                assignee=who.record.operator_id,
                channel="chat",
                requester_name=session.visitor_name,
                requester_email=session.visitor_email,
                customer_id=session.customer_id,
                session_id=session.session_id,
                actor=who.actor(),
                events=transcript,
                carry=carry,
                reason=reason,
                plan=session.plan
                or await self.records.customer_plan(session.customer_id, session.visitor_email),
            )
        except sqlite3.IntegrityError:
            raise InvalidState("this chat is already a ticket") from None
        row = await self.refresh_sla(row)
        ref = T.ref(row.number)
        if self.hub is not None:
            try:
                await self.hub.post_system(
                    session.session_id,
                    "escalated",
                    f"Your request is now ticket {ref}. We will continue by e-mail"
                    " and you can follow it here.",
                    operator_id=who.record.operator_id,
                    author=who.record.name,
                    extra={"ticket": ref},
                )
            except ChatError:
                log.warning("could not tell chat %s about ticket %s", session.session_id, ref)
        await self._confirm(row)
        log.info(
            "chat %s escalated to ticket %s by %s", session.session_id, ref, who.record.operator_id
        )
        return row

    async def create_offline(self, who: VisitorActor, body: dict[str, Any]) -> TicketRow:
        """The widget's offline form: a ticket straight away, confirmed by mail."""
        email = clean_email(body.get("email"))
        name = clean_line(body.get("name"), "name", 100, required=False) or None
        subject = clean_line(body.get("subject"), "subject", MAX_SUBJECT)
        text = clean_text(body.get("text"), "text", MAX_TEXT)
        atts = await self._attachments(f"s:{who.session.session_id}", body.get("attachments"))
        event = NewEvent(
            "reply",
            {"type": "customer", "id": None, "name": name or email},
            {"text": text, "attachments": [a.public() for a in atts]},
        )
        row, _ = await self.records.create(
            subject=subject,
            priority=T.TicketPriority.NORMAL,
            department="technical",
            level=1,
            assignee=None,
            channel="form",
            requester_name=name,
            requester_email=email,
            customer_id=who.session.customer_id,
            session_id=who.session.session_id,
            actor={"type": "customer", "id": None, "name": name or email},
            events=[event],
            carry=atts,
            plan=who.session.plan
            or await self.records.customer_plan(who.session.customer_id, email),
        )
        row = await self.refresh_sla(row)
        await self._confirm(row)
        return row

    async def search(
        self, who: OperatorActor, query: dict[str, str]
    ) -> tuple[list[TicketRow], int]:
        states: list[str] = []
        if query.get("state"):
            states = [T.parse_state(s.strip()).value for s in query["state"].split(",")]
        department = T.parse_department(query["department"]) if query.get("department") else None
        level = None
        if query.get("level"):
            try:
                level = T.parse_level(int(query["level"]))
            except ValueError:
                raise BadFrame("level must be 1, 2 or 3") from None
        assignee = query.get("assignee") or None
        unassigned = assignee == "none"
        if assignee == "me":
            assignee = who.record.operator_id
        elif unassigned:
            assignee = None
        try:
            limit = min(int(query.get("limit", "50")), 200)
            offset = max(int(query.get("offset", "0")), 0)
        except ValueError:
            raise BadFrame("limit and offset must be numbers") from None
        if limit < 1:
            raise BadFrame("limit must be at least 1")
        return await self.records.search(
            states=states,
            department=department,
            level=level,
            assignee=assignee,
            unassigned=unassigned,
            limit=limit,
            offset=offset,
        )

    async def show(self, who: Principal, number: Any) -> tuple[TicketRow, list[dict[str, Any]]]:
        if isinstance(who, VisitorActor):
            row = await self._visitor_ticket(who, number)
            return row, await self.records.events(row.number, internal=False)
        row = await self._ticket(number)
        return row, await self.records.events(row.number)

    async def attachments_json(self, row: TicketRow, *, internal: bool) -> list[dict[str, Any]]:
        records = await self.records.all_attachments_of(f"t:{row.number}")
        if internal:
            return [a.public() for a in records]
        public: set[str] = set()
        for event in await self.records.events(row.number, internal=False):
            public |= {a.get("id") for a in event["body"].get("attachments") or ()}
        return [a.public() for a in records if a.attachment_id in public]

    async def reply(
        self, who: Principal, number: Any, body: dict[str, Any]
    ) -> tuple[TicketRow, dict[str, Any]]:
        """A public reply (mailed to the requester) or, for operators, an internal note."""
        row = (
            await self._visitor_ticket(who, number)
            if isinstance(who, VisitorActor)
            else await self._ticket(number)
        )
        text = clean_text(body.get("text"), "text", MAX_TEXT)
        internal = body.get("internal", False)
        if not isinstance(internal, bool):
            raise BadFrame("internal must be true or false")
        if isinstance(who, VisitorActor) and internal:
            raise Forbidden("customers cannot write internal notes")
        consult: dict[str, Any] | None = None
        if body.get("consult") is not None:
            if not internal:
                raise BadFrame("a consult is an internal note: set internal to true")
            target = body["consult"]
            colleague = (
                await self.store.operator(OperatorId(target)) if isinstance(target, str) else None
            )
            if colleague is None:
                raise BadFrame("consult: no such operator")
            consult = {"id": colleague.operator_id, "name": colleague.name}
        atts = await self._attachments(f"t:{row.number}", body.get("attachments"))
        customer = isinstance(who, VisitorActor)

        def mutation(current: TicketRow) -> list[NewEvent]:
            events = [
                NewEvent(
                    "note" if internal else "reply",
                    who.actor(),
                    {
                        "text": text,
                        "attachments": [a.public() for a in atts],
                        **({"consult": consult} if consult is not None else {}),
                    },
                    internal=internal,
                )
            ]
            if not internal:
                after = (
                    T.state_after_customer_reply(current.state)
                    if customer
                    else T.state_after_operator_reply(current.state)
                )
                events += _state_change(current.state, after, "reply")
            return events

        row, stored = await self.records.mutate(row.number, mutation)
        row = await self.refresh_sla(row)
        if not internal and not customer:
            await self._mail_reply(row, text, atts)
        return row, stored[0]

    async def change(
        self, who: OperatorActor, number: Any, body: dict[str, Any]
    ) -> tuple[TicketRow, list[dict[str, Any]]]:
        """Change state, priority, level, department or assignee, each with its reason."""
        row = await self._ticket(number)
        reason = clean_line(body.get("reason"), "reason", MAX_REASON, required=False) or None
        wanted: dict[str, Any] = {}
        if "state" in body:
            wanted["state"] = T.parse_state(body["state"])
        if "priority" in body:
            wanted["priority"] = T.parse_priority(body["priority"])
            if reason is None:
                raise BadFrame("a priority change needs a reason")
        if "level" in body:
            wanted["level"] = T.parse_level(body["level"])
        if "department" in body:
            wanted["department"] = T.parse_department(body["department"])
        if "assignee" in body:
            target = body["assignee"]
            if target is not None:
                if (
                    not isinstance(target, str)
                    or await self.store.operator(OperatorId(target)) is None
                ):
                    raise BadFrame("assignee is not an operator")
            wanted["assignee"] = target
        if not wanted:
            raise BadFrame("nothing to change: give state, priority, level, department or assignee")
        actor = who.actor()

        def mutation(current: TicketRow) -> list[NewEvent]:
            events: list[NewEvent] = []
            for field in ("state", "priority", "level", "department", "assignee"):
                if field not in wanted:
                    continue
                old = getattr(current, field)
                new = wanted[field]
                if field == "state":
                    T.check_transition(current.state, new)
                if old == new:
                    continue
                events.append(
                    NewEvent(
                        field, actor, {"from": _plain(old), "to": _plain(new), "reason": reason}
                    )
                )
            if not events:
                raise InvalidState("nothing changes")
            return events

        row, stored = await self.records.mutate(row.number, mutation)
        row = await self.refresh_sla(row)
        if any(e["kind"] == "state" and e["body"]["to"] == "feedback_needed" for e in stored):
            await self._mail_feedback(row, reason)
        return row, stored

    async def visitor_tickets(self, who: VisitorActor) -> list[TicketRow]:
        rows, _ = await self.records.search(
            customer_id=who.session.customer_id,
            session_id=who.session.session_id,
            limit=200,
        )
        return rows

    # --------------------------------------------------------------- mail out
    def _subject(self, row: TicketRow, prefix: str = "") -> str:
        return f"{prefix}[{T.ref(row.number)}] {row.subject}"

    async def _queue(
        self,
        row: TicketRow | None,
        to: str | None,
        subject: str,
        text: str,
        attachments: Sequence[AttachmentRecord] = (),
    ) -> None:
        """Put a mail in the outbox (sent by :meth:`mail_loop`); no-op without SMTP or address."""
        if self.mailer is None or not to:
            return
        refs: list[str] = []
        if row is not None:
            refs = [f"<ticket-{row.number}@{self.mail_domain}>"]
        await self.records.queue_mail(
            ticket=row.number if row is not None else None,
            to_addr=to,
            subject=subject,
            body=text,
            message_id=make_message_id(self.mail_domain),
            refs=refs,
            attachments=[a.attachment_id for a in attachments],
        )
        if row is not None:
            await self.records.remember_mail_id(refs[0], row.number)
        self._mail_wake.set()

    async def _confirm(self, row: TicketRow) -> None:
        ref = T.ref(row.number)
        greeting = f"Hello {row.requester_name}," if row.requester_name else "Hello,"
        await self._queue(
            row,
            row.requester_email,
            self._subject(row),
            f"{greeting}\n\nwe have received your request and opened ticket {ref}:\n"
            f"    {row.subject}\n\n"
            "Reply to this e-mail to add to it; keep the ticket number in the subject.\n\n"
            "Your support team\n",
        )

    async def _mail_reply(
        self, row: TicketRow, text: str, atts: Sequence[AttachmentRecord]
    ) -> None:
        await self._queue(
            row,
            row.requester_email,
            self._subject(row, "Re: "),
            f"{text}\n\n-- \nTicket {T.ref(row.number)}: reply to this e-mail to answer.\n",
            atts,
        )

    async def _mail_feedback(self, row: TicketRow, reason: str | None) -> None:
        why = f"\n\n{reason}" if reason else ""
        await self._queue(
            row,
            row.requester_email,
            self._subject(row, "Feedback needed: "),
            f"Hello,\n\nwe need information from you to go on with ticket {T.ref(row.number)}."
            f"{why}\n\nPlease reply to this e-mail.\n\nYour support team\n",
        )

    async def mail_transcript(self, who: VisitorActor, body: dict[str, Any]) -> str:
        """Mail the visitor the transcript of their chat; returns the address used."""
        if self.mailer is None:
            raise ChatError("e-mail is not set up on this server")
        email = clean_email(body.get("email"), required=False) or who.session.visitor_email
        if email is None:
            raise BadFrame("an e-mail address is needed")
        messages = await self.store.messages_after(who.session.session_id, 0, 100_000)
        lines = []
        for m in messages:
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(m.ts / 1000))
            who_said = "—" if m.sender == "system" else (m.author or m.sender)
            names = ", ".join(a["filename"] for a in (m.extra or {}).get("attachments") or [])
            extra = f" [attachments: {names}]" if names else ""
            lines.append(f"[{when} UTC] {who_said}: {m.text}{extra}")
        await self._queue(
            None,
            email,
            "Your chat transcript",
            "Here is the transcript of your chat:\n\n" + "\n".join(lines) + "\n",
        )
        return email

    async def mail_loop(self) -> None:
        """Deliver the outbox forever, retrying failed mails with backoff."""
        while True:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("mail delivery failed")
            self._mail_wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._mail_wake.wait(), 5.0)

    async def deliver_due(self) -> int:
        """Send every mail that is due; returns how many went out."""
        if self.mailer is None:
            return 0
        sent = 0
        for mail in await self.records.due_mail():
            atts: list[MailAttachment] = []
            for att_id in mail.attachments:
                record = await self.records.attachment(att_id)
                if record is not None:
                    data = await asyncio.to_thread(self.files.read, record.storage)
                    atts.append(MailAttachment(record.filename, record.content_type, data))
            out = OutboundMail(
                to=mail.to_addr,
                subject=mail.subject,
                text=mail.body,
                message_id=mail.message_id,
                references=tuple(mail.refs),
                attachments=tuple(atts),
            )
            try:
                await self.mailer.send(out)
            except MailError as exc:
                self.mail_failed += 1
                retry = min(self.settings.mail_retry_seconds * 2**mail.attempts, 6 * 3600)
                log.warning(
                    "mail %d to %s failed (%s); retry in %.0f s",
                    mail.mail_id,
                    mail.to_addr,
                    exc,
                    retry,
                )
                await self.records.mail_failed(mail.mail_id, str(exc), retry)
                continue
            self.mail_sent += 1
            sent += 1
            await self.records.mail_sent(mail.mail_id)
        return sent

    # ---------------------------------------------------------------- mail in
    async def ingest(self, raw: bytes, envelope_from: str | None = None) -> dict[str, Any]:
        """Take one inbound mail: a reply on its ticket, a new ticket, or held for review.

        Returns ``{"result": "reply"|"created"|"held", "ticket": number|None, "reason"?}``.
        Raises :class:`~chatserver.mail.MailError` for mail that cannot be read at all.
        """
        # Parsing is CPU-bound (and slow on big or hostile mail): off the event loop.
        mail = await asyncio.to_thread(parse_inbound, raw, max_bytes=self.settings.max_mail_bytes)
        if mail.auto_submitted or envelope_from == "":  # MAIL FROM:<> is a bounce
            return await self._hold(mail, raw, None, "automatic reply or bounce")
        number = await self.records.ticket_for_mail_ids(list(mail.references)[-20:])
        if number is None:
            number = mail.ticket_number
        if number is not None:
            row = await self.records.ticket(number)
            if row is None:
                return await self._hold(mail, raw, number, f"no ticket {T.ref(number)}")
            if (row.requester_email or "").lower() != mail.sender:
                return await self._hold(
                    mail, raw, number, f"{mail.sender} is not the requester of {T.ref(number)}"
                )
            atts, skipped = await self._mail_attachments(f"t:{number}", mail)
            event = _mail_in(mail, atts, skipped)

            def mutation(current: TicketRow) -> list[NewEvent]:
                after = T.state_after_customer_reply(current.state)
                return [event, *_state_change(current.state, after, "e-mail")]

            row, _ = await self.records.mutate(number, mutation)
            await self.refresh_sla(row)
            if mail.message_id:
                await self.records.remember_mail_id(mail.message_id, number)
            return {"result": "reply", "ticket": number}
        # A new request by mail.
        subject = " ".join(_CONTROL.sub("", mail.subject).split())[:MAX_SUBJECT] or "(no subject)"
        staged = await self._mail_attachments("mail", mail)
        atts, skipped = staged
        row, _ = await self.records.create(
            subject=subject,
            priority=T.TicketPriority.NORMAL,
            department="technical",
            level=1,
            assignee=None,
            channel="email",
            requester_name=mail.sender_name,
            requester_email=mail.sender,
            customer_id=None,
            session_id=None,
            actor={"type": "customer", "id": None, "name": mail.sender_name or mail.sender},
            events=[_mail_in(mail, atts, skipped)],
            adopt=atts,
            plan=await self.records.customer_plan(None, mail.sender),
        )
        row = await self.refresh_sla(row)
        if mail.message_id:
            await self.records.remember_mail_id(mail.message_id, row.number)
        await self._confirm(row)
        return {"result": "created", "ticket": row.number}

    async def _hold(
        self, mail: InboundMail, raw: bytes, number: int | None, reason: str
    ) -> dict[str, Any]:
        await self.records.hold_for_review(
            sender=mail.sender,
            subject=mail.subject,
            message_id=mail.message_id,
            ticket=number,
            reason=reason,
            raw=raw,
        )
        log.warning("mail from %s held for review: %s", mail.sender, reason)
        return {"result": "held", "ticket": number, "reason": reason}

    async def _mail_attachments(
        self, owner: str, mail: InboundMail
    ) -> tuple[list[AttachmentRecord], list[dict[str, str]]]:
        """Store a mail's acceptable attachments under ``owner``; list the refused ones."""
        stored: list[AttachmentRecord] = []
        skipped: list[dict[str, str]] = []
        for part in mail.attachments:
            name = clean_filename(part.filename)
            try:
                if len(part.data) > self.settings.max_upload_bytes:
                    raise TooLarge("larger than the upload limit")
                if not part.data:
                    raise BadFrame("empty")
                kind = sniff(part.data, name)
            except (TooLarge, UnsupportedType, BadFrame) as exc:
                skipped.append({"filename": name, "reason": exc.message})
                continue
            storage, digest = await asyncio.to_thread(self.files.put, part.data)
            record = AttachmentRecord(
                new_attachment_id(),
                owner,
                name,
                kind.content_type,
                len(part.data),
                digest,
                storage,
                f"mail:{mail.sender}",
                time.time(),
            )
            if owner != "mail":  # staged ones are copied into the new ticket instead
                await self.records.add_attachment(record)
            stored.append(record)
        return stored, skipped

    # ------------------------------------------------------- time, canned, context
    async def log_time(
        self,
        who: OperatorActor,
        body: dict[str, Any],
        *,
        ticket: Any = None,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        """Log worked time on a ticket or a chat (the console's chat timer posts here)."""
        seconds = body.get("seconds")
        if seconds is None and body.get("minutes") is not None:
            minutes = body["minutes"]
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
                raise BadFrame("minutes must be a number")
            seconds = round(minutes * 60)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= 86400:
            raise BadFrame("time must be between 1 second and 24 hours")
        note = clean_line(body.get("note"), "note", 300, required=False)
        customer_id: str | None
        number: int | None = None
        if ticket is not None:
            row = await self._ticket(ticket)
            number, customer_id, session_id = row.number, row.customer_id, None
        else:
            session = await self._session_for_operator(who, session_id)
            customer_id = session.customer_id
        entry_id = await self.records.add_time(
            operator_id=who.record.operator_id,
            customer_id=customer_id,
            ticket=number,
            session_id=session_id,
            seconds=seconds,
            note=note,
        )
        if number is not None:
            await self.records.mutate(
                number,
                lambda r: [
                    NewEvent("time", who.actor(), {"seconds": seconds, "note": note}, internal=True)
                ],
            )
        return {
            "id": entry_id,
            "seconds": seconds,
            "ticket": number,
            "session_id": session_id,
            "customer_id": customer_id,
        }

    async def canned(
        self, who: OperatorActor, department: str | None, session_id: str | None
    ) -> list[dict[str, Any]]:
        """Canned responses for ``department`` (and general ones), placeholders filled
        from the chat when ``session_id`` is given: {visitor_name}, {operator_name},
        {customer_id}, {plan}, {ticket}."""
        values = {
            "operator_name": who.record.name,
            "visitor_name": "",
            "customer_id": "",
            "plan": "",
            "ticket": "",
        }
        if session_id:
            session = await self._session_for_operator(who, session_id)
            values.update(
                visitor_name=session.visitor_name or "",
                customer_id=session.customer_id or "",
                plan=self.levels.plan(session.plan).name,
            )
            row = await self.records.ticket_for_session(session.session_id)
            if row is not None:
                values["ticket"] = T.ref(row.number)
        out = []
        for item in await self.records.canned(department):
            out.append({**item, "rendered": _fill(item["text"], values)})
        return out

    async def add_canned(self, who: OperatorActor, body: dict[str, Any]) -> dict[str, Any]:
        if not who.supervises:
            raise Forbidden("supervisors and admins manage canned responses")
        title = clean_line(body.get("title"), "title", 100)
        text = clean_text(body.get("text"), "text", 4000)
        department = body.get("department")
        if department is not None:
            department = clean_line(department, "department", 40)
        return await self.records.add_canned(department, title, text)

    async def context(self, who: OperatorActor, session_id: str) -> dict[str, Any]:
        """Who the visitor is: customer record, plan, past chats and tickets."""
        session = await self._session_for_operator(who, session_id)
        customer = await self.records.customer(session.customer_id) if session.customer_id else None
        past = await self.store.past_sessions(
            session.customer_id, session.visitor_email, exclude=session.session_id
        )
        rows: list[TicketRow] = []
        if session.customer_id:
            rows, _ = await self.records.search(customer_id=session.customer_id, limit=20)
        if session.visitor_email:
            more = await self.records.tickets_of_email(session.visitor_email)
            rows += [r for r in more if r.number not in {x.number for x in rows}]
        plan = self.levels.plan(session.plan or (customer or {}).get("plan"))
        return {
            "customer": customer,
            "customer_id": session.customer_id,
            "plan": {
                "name": plan.name,
                "phone": plan.phone,
                "personal_contact": plan.personal_contact,
                "first_response_hours": plan.first_response.total_seconds() / 3600,
            },
            "past_chats": [
                {
                    "session_id": p.session_id,
                    "created_at": p.created_at,
                    "state": p.state.value,
                    "operator_id": p.operator_id or p.previous_operator,
                    "kind": p.kind,
                }
                for p in past
            ],
            "tickets": [
                {
                    "ref": T.ref(r.number),
                    "number": r.number,
                    "subject": r.subject,
                    "state": r.state.value,
                    "created_at": r.created_at,
                }
                for r in rows
            ],
        }


_PLACEHOLDER = re.compile(r"\{(visitor_name|operator_name|customer_id|plan|ticket)\}")


def _fill(text: str, values: dict[str, str]) -> str:
    """Fill known placeholders; anything else in braces stays as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,30}$")


def clean_phone(value: Any) -> str:
    if not isinstance(value, str) or not _PHONE.match(value.strip()):
        raise BadFrame("phone must be a phone number (digits, spaces, +, -, /, parentheses)")
    return value.strip()
