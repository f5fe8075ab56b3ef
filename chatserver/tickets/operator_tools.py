"""What an operator uses beside a conversation: time logging, canned responses, context.

Time entries and canned responses are stored by
:class:`~chatserver.tickets.store.TicketStore`; the context gathers what is known
about a chat's visitor (customer record, plan, past chats and tickets).
"""

from __future__ import annotations

import re
from typing import Any

from chatserver.errors import BadFrame, Forbidden, NotFound
from chatserver.i18n.languages import LANGUAGES
from chatserver.service_levels.clocks import ServiceLevels
from chatserver.store.base import Store
from chatserver.tickets import model as T
from chatserver.tickets.access import OperatorActor, TicketAccess
from chatserver.tickets.fields import clean_line, clean_text
from chatserver.tickets.store import NewEvent, TicketRow, TicketStore

__all__ = ["OperatorTools"]

_PLACEHOLDER = re.compile(r"\{(visitor_name|operator_name|customer_id|plan|ticket)\}")


_SHORTCUT = re.compile(r"[\w-]{1,30}")


def _canned_fields(body: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    """The checked fields of a canned response's body (``partial``: only those given);
    bad values are ``BadFrame`` (other fields are ignored)."""
    out: dict[str, Any] = {}
    if not partial or "title" in body:
        out["title"] = clean_line(body.get("title"), "title", 100)
    if not partial or "text" in body:
        out["text"] = clean_text(body.get("text"), "text", 4000)
    if not partial or "shortcut" in body:
        shortcut = body.get("shortcut")
        if shortcut is not None and shortcut != "":
            if not isinstance(shortcut, str):
                raise BadFrame("shortcut must be a string")
            shortcut = shortcut.strip().removeprefix("/").lower()
            if not _SHORTCUT.fullmatch(shortcut):
                raise BadFrame("shortcut must be 1 to 30 letters, digits, - or _")
        out["shortcut"] = shortcut or None
    if not partial or "lang" in body:
        lang = body.get("lang")
        if lang is not None and lang not in LANGUAGES:
            raise BadFrame(f"lang must be one of {', '.join(LANGUAGES)} or null")
        out["lang"] = lang
    if not partial or "department" in body:
        department = body.get("department")
        if department is not None:
            department = clean_line(department, "department", 40)
        out["department"] = department
    return out


def _fill(text: str, values: dict[str, str]) -> str:
    """Fill known placeholders; anything else in braces stays as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


class OperatorTools:
    """Time logging, canned responses and visitor context for operators; one per node."""

    def __init__(
        self,
        store: Store,
        records: TicketStore,
        levels: ServiceLevels,
        access: TicketAccess,
    ) -> None:
        self.store = store
        self.records = records
        self.levels = levels
        self.access = access

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
            if not 0 < minutes <= 1440:  # also refuses inf and nan before they reach round()
                raise BadFrame("time must be between 1 second and 24 hours")
            seconds = round(minutes * 60)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 0 < seconds <= 86400:
            raise BadFrame("time must be between 1 second and 24 hours")
        note = clean_line(body.get("note"), "note", 300, required=False)
        customer_id: str | None
        number: int | None = None
        if ticket is not None:
            row = await self.access.ticket(ticket)
            number, customer_id, session_id = row.number, row.customer_id, None
        else:
            session = await self.access.session_for_operator(who, session_id)
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
        self,
        who: OperatorActor,
        department: str | None,
        session_id: str | None,
        lang: str | None = None,
        q: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Canned responses for ``department`` (and general ones), placeholders filled
        from the chat when ``session_id`` is given: {visitor_name}, {operator_name},
        {customer_id}, {plan}, {ticket}. Only those in ``lang`` (one of LANGUAGES, else
        ``BadFrame``) and those for every language; without ``lang``, the chat's
        language when the chat has one (else every language). The team's and the
        operator's own personal ones; with ``q``, those whose title, shortcut or text
        contains it. Each says whether it is ``personal`` and ``editable`` by ``who``.
        Returns the responses and the language they were chosen for (None: every
        language)."""
        if lang is not None and lang not in LANGUAGES:
            raise BadFrame(f"lang must be one of {', '.join(LANGUAGES)}")
        values = {
            "operator_name": who.record.name,
            "visitor_name": "",
            "customer_id": "",
            "plan": "",
            "ticket": "",
        }
        if session_id:
            session = await self.access.session_for_operator(who, session_id)
            values.update(
                visitor_name=session.visitor_name or "",
                customer_id=session.customer_id or "",
                plan=self.levels.plan(session.plan).name,
            )
            row = await self.records.ticket_for_session(session.session_id)
            if row is not None:
                values["ticket"] = T.ref(row.number)
            if lang is None:
                lang = session.lang
        out = []
        viewer = who.record.operator_id
        for item in await self.records.canned(department, lang, viewer=viewer, q=q):
            out.append({**item, **self._rights(who, item), "rendered": _fill(item["text"], values)})
        return out, lang

    @staticmethod
    def _rights(who: OperatorActor, item: dict[str, Any]) -> dict[str, Any]:
        personal = item.get("owner") is not None
        mine = item.get("owner") == who.record.operator_id
        return {"personal": personal, "editable": mine if personal else who.supervises}

    async def add_canned(self, who: OperatorActor, body: dict[str, Any]) -> dict[str, Any]:
        """Add a canned response: ``personal`` true (every operator; the default for
        agents) is seen by its author only; team responses (the default for supervisors
        and admins; ``personal`` false from an agent is ``Forbidden``) by everyone. No
        department: for every one. Bad fields are ``BadFrame`` and store nothing."""
        personal = body.get("personal", not who.supervises)
        if not isinstance(personal, bool):
            raise BadFrame("personal must be true or false")
        if not personal and not who.supervises:
            raise Forbidden("supervisors and admins manage the team's canned responses")
        fields = _canned_fields(body, partial=False)
        item = await self.records.add_canned(
            fields["department"],
            fields["title"],
            fields["text"],
            fields["lang"],
            owner=who.record.operator_id if personal else None,
            shortcut=fields["shortcut"],
        )
        return {**item, **self._rights(who, item)}

    async def _editable(self, who: OperatorActor, canned_id: str) -> dict[str, Any]:
        """The response if ``who`` may change it: another's personal one or no such id
        is ``NotFound``; a team one for an agent is ``Forbidden``."""
        if not canned_id.isdigit() or len(canned_id) > 15:
            raise NotFound("no such canned response")
        item = await self.records.canned_one(int(canned_id))
        if item is None or item["owner"] not in (None, who.record.operator_id):
            raise NotFound("no such canned response")
        if item["owner"] is None and not who.supervises:
            raise Forbidden("supervisors and admins manage the team's canned responses")
        return item

    async def edit_canned(
        self, who: OperatorActor, canned_id: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Change some of title, text, shortcut, lang, department (own personal ones;
        team ones for supervisors and admins); bad fields change nothing."""
        item = await self._editable(who, canned_id)
        changes = _canned_fields(body, partial=True)
        if not changes:
            raise BadFrame("give at least one of title, text, shortcut, lang, department")
        updated = await self.records.update_canned(item["id"], changes)
        if updated is None:
            raise NotFound("no such canned response")
        return {**updated, **self._rights(who, updated)}

    async def delete_canned(self, who: OperatorActor, canned_id: str) -> None:
        """Delete a canned response (the same rights as editing)."""
        item = await self._editable(who, canned_id)
        if not await self.records.delete_canned(item["id"]):
            raise NotFound("no such canned response")

    async def context(self, who: OperatorActor, session_id: str) -> dict[str, Any]:
        """Who the visitor is: customer record, plan, past chats and tickets."""
        session = await self.access.session_for_operator(who, session_id)
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
            # The chat's language (else the customer's; None: not known): the console
            # offers canned responses in it (docs/i18n.md).
            "lang": session.lang or (customer or {}).get("lang"),
            # Display names by language of the plan and of the departments.
            "department_names": {d: dict(n) for d, n in self.levels.config.departments.items()},
            "plan": {
                "name": plan.name,
                "names": dict(plan.names),
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
