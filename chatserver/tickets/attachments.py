"""Files in conversations: uploads into a chat or ticket, downloads, and who sees which.

The bytes live in a :class:`~chatserver.attachments.blobs.BlobStore` (a directory or
the database; type sniffed); the records in :class:`~chatserver.tickets.store.TicketStore`, each
owned by one conversation: ``s:<session id>`` for a chat, ``t:<number>`` for a ticket.
Attachments of a ticket's internal notes are never shown to the visitor.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable
from typing import Any

from chatserver.attachments.blobs import BlobStore, chunks_of
from chatserver.attachments.files import (
    AttachmentRecord,
    clean_filename,
    new_attachment_id,
    sniff,
)
from chatserver.config import Settings
from chatserver.errors import BadFrame, ChatClosed, NotFound, TooLarge
from chatserver.protocol import check_attachment_ids
from chatserver.store.base import Store
from chatserver.tickets.access import Principal, TicketAccess, VisitorActor
from chatserver.tickets.store import TicketRow, TicketStore
from chatserver.types import SessionId, SessionState

__all__ = ["TicketAttachments"]


class TicketAttachments:
    """Checks and stores uploads, hands out downloads; one per node."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        records: TicketStore,
        files: BlobStore,
        access: TicketAccess,
    ) -> None:
        self.settings = settings
        self.store = store
        self.records = records
        self.files = files
        self.access = access

    async def upload(
        self,
        who: Principal,
        data: bytes,
        filename: str | None,
        target: dict[str, Any],
        *,
        size: int | None = None,
        whole: AsyncIterable[bytes] | None = None,
    ) -> AttachmentRecord:
        """Check and store an uploaded file for a chat or ticket the uploader may use.

        ``target`` names the conversation: ``{"ticket": number}`` or, for operators,
        ``{"session_id": id}`` (a visitor always uploads into their own chat).
        ``data`` is the file; or, with ``whole`` (the file from its start, streamed
        into the blob store), its first ``files.SNIFF_BYTES`` at least and ``size`` its
        length.
        """
        total = len(data) if whole is None or size is None else size
        if total > self.settings.max_upload_bytes:
            raise TooLarge(f"the file is larger than {self.settings.max_upload_bytes} bytes")
        if not total:
            raise BadFrame("the file is empty")
        name = clean_filename(filename)
        kind = sniff(data, name)
        ticket_ref = target.get("ticket")
        if isinstance(who, VisitorActor):
            if ticket_ref:
                owner = f"t:{(await self.access.visitor_ticket(who, ticket_ref)).number}"
            else:
                if who.session.state is SessionState.CLOSED:
                    raise ChatClosed("this chat has ended")
                owner = f"s:{who.session.session_id}"
            uploaded_by = "visitor"
        else:
            if ticket_ref:
                owner = f"t:{(await self.access.ticket(ticket_ref)).number}"
            else:
                session = await self.access.session_for_operator(who, target.get("session_id"))
                if session.state is SessionState.CLOSED:
                    raise ChatClosed("this chat has ended")
                owner = f"s:{session.session_id}"
            uploaded_by = f"operator:{who.record.operator_id}"
        source = chunks_of(data) if whole is None else whole
        blob = await self.files.save(source, limit=self.settings.max_upload_bytes)
        if blob.size != total:
            await self.files.delete(blob.storage)
            raise BadFrame("the upload changed while it was stored")
        storage, digest = blob.storage, blob.sha256
        record = AttachmentRecord(
            new_attachment_id(),
            owner,
            name,
            kind.content_type,
            blob.size,
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
                if row is not None and self.access.visitor_owns(who.session, row):
                    # Attachments of internal notes stay internal.
                    if await self._public_attachment(row.number, attachment_id):
                        return record
            raise NotFound("no such attachment")
        if kind == "t":
            return record
        session = await self.store.session(SessionId(ident))
        if session is not None and self.access.operator_sees(who, session):
            return record
        raise NotFound("no such attachment")

    async def _public_attachment(self, number: int, attachment_id: str) -> bool:
        for event in await self.records.events(number, internal=False):
            for att in event["body"].get("attachments") or ():
                if att.get("id") == attachment_id:
                    return True
        return False

    async def referenced(self, owner: str, ids: Any) -> list[AttachmentRecord]:
        """The attachments a request names by id, all uploaded into ``owner`` before.

        ``ids`` comes from the request (None means none); an unknown id is NotFound.
        """
        if ids is None:
            return []
        ids = check_attachment_ids(ids)
        found = await self.records.attachments_of(owner, ids)
        if len(found) != len(ids):
            raise NotFound("unknown attachment: upload it into this conversation first")
        return found

    async def of_ticket(self, row: TicketRow, *, internal: bool) -> list[dict[str, Any]]:
        """The ticket's attachments as JSON; without ``internal``, only public ones."""
        records = await self.records.all_attachments_of(f"t:{row.number}")
        if internal:
            return [a.public() for a in records]
        public: set[str] = set()
        for event in await self.records.events(row.number, internal=False):
            public |= {a.get("id") for a in event["body"].get("attachments") or ()}
        return [a.public() for a in records if a.attachment_id in public]
