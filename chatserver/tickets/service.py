"""Ticket actions: escalation from chat, the offline form, replies, changes, search.

:class:`TicketService` is what the HTTP API calls (and :mod:`chatserver.tickets.mail_in`
for inbound mail). Every action checks who may do it (a refusal is a
:class:`~chatserver.errors.ChatError` and changes nothing), appends its events through
:class:`~chatserver.tickets.store.TicketStore`, recomputes the SLA clocks and queues
the mail the requester gets. Its parts, one module each:

- :mod:`~chatserver.tickets.access`: who is asking and what they may open;
- :mod:`~chatserver.tickets.clocks`: SLA clocks and breaches (:attr:`TicketService.clocks`);
- :mod:`~chatserver.tickets.mail_out`: the outbox and its delivery (:attr:`TicketService.outbox`);
- :mod:`~chatserver.tickets.attachments`: uploads and downloads
  (:attr:`TicketService.attachments`);
- :mod:`~chatserver.tickets.operator_tools`: time, canned responses, visitor context
  (:attr:`TicketService.tools`);
- :mod:`~chatserver.tickets.fields`: checks of user input.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from chatserver.attachments.blobs import BlobStore
from chatserver.config import Settings
from chatserver.errors import BadFrame, ChatError, Forbidden, InvalidState, NotFound
from chatserver.i18n import mails
from chatserver.i18n.languages import LANGUAGES, pick
from chatserver.i18n.notices import Notice, notice_text
from chatserver.service_levels.calendar import load_sla_config
from chatserver.service_levels.clocks import ServiceLevels
from chatserver.store.base import SessionRecord, Store
from chatserver.tickets import model as T
from chatserver.tickets.access import OperatorActor, Principal, TicketAccess, VisitorActor
from chatserver.tickets.attachments import TicketAttachments
from chatserver.tickets.clocks import TicketClocks
from chatserver.tickets.fields import (
    MAX_REASON,
    MAX_SUBJECT,
    MAX_TEXT,
    clean_email,
    clean_line,
    clean_text,
)
from chatserver.tickets.mail_out import Outbox
from chatserver.tickets.operator_tools import OperatorTools
from chatserver.tickets.store import NewEvent, TicketRow, TicketStore
from chatserver.types import OperatorId, SessionState

log = logging.getLogger("chatserver.tickets.service")

__all__ = ["TicketService", "state_change"]


def state_change(before: T.TicketState, after: T.TicketState, reason: str) -> list[NewEvent]:
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
    """The ticket actions, and the parts above as attributes; one per node."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        records: TicketStore,
        files: BlobStore,
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
        self.access = TicketAccess(store, records)
        self.clocks = TicketClocks(records, self.levels)
        self.outbox = Outbox(settings, records, files)
        self.attachments = TicketAttachments(settings, store, records, files, self.access)
        self.tools = OperatorTools(store, records, self.levels, self.access)
        self._names: dict[str, str] = {}

    # ------------------------------------------------------------ as JSON
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
        """The ticket as the API returns it: assignee's name resolved, SLA clocks included."""
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
            "lang": row.lang,
            "sla": self.clocks.json(row),
        }

    async def customer_lang(self, lang: str | None, customer_id: str | None) -> str:
        """The language to write to a customer in: ``lang`` (of the chat or ticket),
        else the customer's, else the desk's default."""
        if lang in LANGUAGES:
            return lang
        customer = await self.records.customer(customer_id) if customer_id else None
        return pick((customer or {}).get("lang"), default=self.settings.default_language)

    @staticmethod
    def event_json(event: dict[str, Any]) -> dict[str, Any]:
        """A stored event as the API returns it (its stored fields, nothing internal)."""
        return {k: event[k] for k in ("n", "ts", "kind", "internal", "actor", "body", "hash")}

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
        session = await self.access.session_for_operator(who, session_id)
        fields = self._fields(body)
        subject = clean_line(body.get("subject"), "subject", MAX_SUBJECT)
        reason = clean_line(body.get("reason"), "reason", MAX_REASON, required=False) or None
        if await self.records.ticket_for_session(session.session_id) is not None:
            raise InvalidState("this chat is already a ticket")
        transcript = await self._transcript(session)
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
                lang=session.lang,
            )
        except sqlite3.IntegrityError:
            raise InvalidState("this chat is already a ticket") from None
        row = await self.clocks.refresh(row)
        ref = T.ref(row.number)
        if self.hub is not None:
            try:
                await self.hub.post_system(
                    session.session_id,
                    "escalated",
                    Notice("ticket_created", {"ticket": ref}),
                    operator_id=who.record.operator_id,
                    author=who.record.name,
                    extra={"ticket": ref},
                )
            except ChatError:
                log.warning("could not tell chat %s about ticket %s", session.session_id, ref)
        await self.outbox.confirm(row)
        log.info(
            "chat %s escalated to ticket %s by %s", session.session_id, ref, who.record.operator_id
        )
        return row

    async def _transcript(self, session: SessionRecord) -> list[NewEvent]:
        """The chat's messages as ticket events (notices in the customer's language)."""
        messages = await self.store.messages_after(session.session_id, 0, 100_000)
        # The server's notices read in the customer's language (docs/i18n.md); the
        # notice itself is kept too, so the console can show its reader's.
        lang = await self.customer_lang(session.lang, session.customer_id)
        return [
            NewEvent(
                "transcript",
                {"type": m.sender, "id": m.sender_id, "name": m.author},
                {
                    "from": m.sender,
                    "author": m.author,
                    "text": notice_text(m.text, m.extra, lang),
                    "ts": m.ts,
                    "event": m.event,
                    "attachments": (m.extra or {}).get("attachments") or [],
                    **{k: v for k, v in (m.extra or {}).items() if k == "notice"},
                },
            )
            for m in messages
        ]

    async def visitor_to_ticket(self, who: VisitorActor, body: dict[str, Any]) -> TicketRow:
        """A waiting visitor leaves their question as a ticket ("never stuck"): the
        transcript so far becomes the ticket, the answer comes by e-mail (``email``, else
        the one the chat knows), the chat is closed with a notice naming the ticket.

        Only the visitor's own chat (``session_id``, when given, must be it), only while
        it waits for an operator, only once; each refusal changes nothing.
        """
        session = who.session
        if body.get("session_id") not in (None, session.session_id):
            raise NotFound("no such chat")
        if session.state is not SessionState.WAITING:
            raise InvalidState("only a chat waiting for an operator can become a ticket")
        email = clean_email(body.get("email"), required=False) or session.visitor_email
        if not email:
            raise BadFrame("email is required: the answer comes by e-mail")
        if await self.records.ticket_for_session(session.session_id) is not None:
            raise InvalidState("this chat is already a ticket")
        transcript = await self._transcript(session)
        first = next((e.body["text"] for e in transcript if e.body["from"] == "visitor"), "")
        subject = " ".join(str(first).split())[:MAX_SUBJECT] or "Chat"
        try:
            department = T.parse_department(session.department or "technical")
        except BadFrame:
            department = "technical"
        actor = who.actor()
        try:
            row, _ = await self.records.create(
                subject=subject,
                priority=T.TicketPriority.NORMAL,
                department=department,
                level=T.parse_level(session.level),
                assignee=None,
                channel="chat",
                requester_name=session.visitor_name,
                requester_email=email,
                customer_id=session.customer_id,
                session_id=session.session_id,
                actor=actor,
                events=transcript,
                carry=await self.records.all_attachments_of(f"s:{session.session_id}"),
                plan=session.plan or await self.records.customer_plan(session.customer_id, email),
                lang=session.lang,
            )
        except sqlite3.IntegrityError:
            raise InvalidState("this chat is already a ticket") from None
        row = await self.clocks.refresh(row)
        if self.hub is not None:
            await self.hub.waiting_chat_to_ticket(session.session_id, T.ref(row.number))
        await self.outbox.confirm(row)
        log.info("waiting chat %s left as ticket %s", session.session_id, T.ref(row.number))
        return row

    async def create_offline(
        self,
        who: VisitorActor,
        body: dict[str, Any],
        admit: Callable[[str], Awaitable[None]] | None = None,
    ) -> TicketRow:
        """The widget's offline form: a ticket straight away, confirmed by mail.

        ``admit(email)``, when given, runs once every field is checked and before
        anything is stored (the HTTP layer's quotas); what it raises refuses the form.
        """
        email = clean_email(body.get("email"))
        name = clean_line(body.get("name"), "name", 100, required=False) or None
        subject = clean_line(body.get("subject"), "subject", MAX_SUBJECT)
        text = clean_text(body.get("text"), "text", MAX_TEXT)
        lang = body.get("lang")
        if lang is not None and lang not in LANGUAGES:
            raise BadFrame(f"lang must be one of {', '.join(LANGUAGES)}")
        atts = await self.attachments.referenced(
            f"s:{who.session.session_id}", body.get("attachments")
        )
        if admit is not None:
            await admit(email or "")  # required: never empty here
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
            lang=lang or who.session.lang,
        )
        row = await self.clocks.refresh(row)
        await self.outbox.confirm(row)
        return row

    async def search(
        self, who: OperatorActor, query: dict[str, str]
    ) -> tuple[list[TicketRow], int]:
        """Tickets matching the console's query, and how many match in all.

        ``query``: ``state`` (comma-separated), ``department``, ``level``, ``assignee``
        (an id, ``me`` or ``none``), ``limit`` (at most 200) and ``offset``.
        """
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
        """The ticket and its history; a visitor gets only the public events of their own."""
        if isinstance(who, VisitorActor):
            row = await self.access.visitor_ticket(who, number)
            return row, await self.records.events(row.number, internal=False)
        row = await self.access.ticket(number)
        return row, await self.records.events(row.number)

    async def reply(
        self, who: Principal, number: Any, body: dict[str, Any]
    ) -> tuple[TicketRow, dict[str, Any]]:
        """A public reply (mailed to the requester) or, for operators, an internal note."""
        row = await self.access.ticket_for(who, number)
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
        atts = await self.attachments.referenced(f"t:{row.number}", body.get("attachments"))
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
                events += state_change(current.state, after, "reply")
            return events

        row, stored = await self.records.mutate(row.number, mutation)
        row = await self.clocks.refresh(row)
        if not internal and not customer:
            await self.outbox.reply(row, text, atts)
        return row, stored[0]

    async def change(
        self, who: OperatorActor, number: Any, body: dict[str, Any]
    ) -> tuple[TicketRow, list[dict[str, Any]]]:
        """Change state, priority, level, department or assignee, each with its reason."""
        row = await self.access.ticket(number)
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
        row = await self.clocks.refresh(row)
        if any(e["kind"] == "state" and e["body"]["to"] == "feedback_needed" for e in stored):
            await self.outbox.feedback_needed(row, reason)
        return row, stored

    async def visitor_tickets(self, who: VisitorActor) -> list[TicketRow]:
        """The visitor's tickets: those of this chat and of their customer id."""
        rows, _ = await self.records.search(
            customer_id=who.session.customer_id,
            session_id=who.session.session_id,
            limit=200,
        )
        return rows

    async def mail_transcript(
        self,
        who: VisitorActor,
        body: dict[str, Any],
        admit: Callable[[str], Awaitable[None]] | None = None,
    ) -> str:
        """Mail the visitor the transcript of their chat; returns the address used.

        ``admit(email)``, when given, runs once the address is checked, before the mail
        is queued; what it raises refuses the request.
        """
        if not self.outbox.enabled:
            raise ChatError("e-mail is not set up on this server")
        email = clean_email(body.get("email"), required=False) or who.session.visitor_email
        if email is None:
            raise BadFrame("an e-mail address is needed")
        if admit is not None:
            await admit(email)
        messages = await self.store.messages_after(who.session.session_id, 0, 100_000)
        lang = await self.customer_lang(who.session.lang, who.session.customer_id)
        lines = [
            mails.transcript_line(
                lang,
                ts=m.ts / 1000,
                timezone=self.settings.board_timezone,
                author=None if m.sender == "system" else (m.author or m.sender),
                text=notice_text(m.text, m.extra, lang),
                attachments=[a["filename"] for a in (m.extra or {}).get("attachments") or []],
            )
            for m in messages
        ]
        await self.outbox.transcript(email, lines, lang)
        return email
