"""HTTP API for attachments and tickets (see docs/http-api.md).

Handlers only translate HTTP to :class:`~chatserver.tickets.service.TicketService`
calls; every refusal is a :class:`~chatserver.errors.ChatError` turned into
``{"error", "message"}`` with its HTTP status.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from chatserver.attachments.blobs import CHUNK_BYTES
from chatserver.attachments.files import SNIFF_BYTES
from chatserver.errors import BadFrame, ChatError, Forbidden, RateLimited, Unauthorized
from chatserver.i18n.languages import LANGUAGES
from chatserver.operators import auth
from chatserver.tickets.access import OperatorActor, Principal, VisitorActor
from chatserver.tickets.fields import clean_line, clean_phone, clean_text
from chatserver.tickets.service import TicketService
from chatserver.types import Role
from chatserver.web import inputs, quotas, team

log = logging.getLogger("chatserver.web.api")

Handler = Callable[[Request], Awaitable[Response]]

ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _error(exc: ChatError) -> JSONResponse:
    headers = None
    if isinstance(exc, RateLimited) and exc.retry_after is not None:
        headers = {"Retry-After": str(max(1, exc.retry_after))}
    return JSONResponse({"error": exc.code, "message": exc.message}, exc.http_status, headers)


def api(handler: Handler) -> Handler:
    """Turn ChatErrors into JSON error responses."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ChatError as exc:
            return _error(exc)

    return wrapped


def _service(request: Request) -> TicketService:
    service: TicketService = request.app.state.tickets
    return service


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 2000:
        raise Unauthorized("an Authorization: Bearer token is required")
    return token.strip()


async def _operator(request: Request) -> OperatorActor:
    # A valid token of an active account, of its current token_version (not revoked).
    return OperatorActor(await request.app.state.hub.accounts.authenticate(_bearer(request)))


async def _visitor(request: Request) -> VisitorActor:
    hub = request.app.state.hub
    token = _bearer(request)
    session = await hub.store.session_by_token_hash(auth.token_hash(token))
    if session is None:
        raise Unauthorized("unknown session token")
    return VisitorActor(session)


async def _anyone(request: Request) -> Principal:
    token = _bearer(request)
    if auth.is_operator_token(token):
        return await _operator(request)
    return await _visitor(request)


async def _json(request: Request) -> dict[str, Any]:
    return await inputs.read_json(request)


# ---------------------------------------------------------------- attachments
@api
async def upload(request: Request) -> Response:
    who = await _anyone(request)
    service = _service(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadFrame("upload as multipart/form-data with a 'file' part")
    limit = service.settings.max_upload_bytes
    # Streamed: the multipart parser spools the file to disk past 1 MiB, and the blob
    # store takes it from there chunk by chunk; never the whole file in memory.
    bounded = inputs.bounded_request(request, limit + 64 * 1024)  # room for the framing
    try:
        form = await bounded.form(max_files=1, max_fields=5, max_part_size=1024)
    except ChatError:
        raise
    except Exception as exc:  # python-multipart / starlette parse errors
        raise BadFrame(f"the upload cannot be read: {str(exc)[:200]}") from None
    try:
        upload_file = form.get("file")
        if upload_file is None or isinstance(upload_file, str):
            raise BadFrame("the upload needs a 'file' part")
        head = await upload_file.read(SNIFF_BYTES)  # what the type check reads
        size = upload_file.size if upload_file.size is not None else len(head)
        await upload_file.seek(0)
        if isinstance(who, VisitorActor):
            await quotas.upload(request, who, size)
        target = {k: form.get(k) for k in ("session_id", "ticket") if isinstance(form.get(k), str)}
        record = await service.attachments.upload(
            who, head, upload_file.filename, target, size=size, whole=_chunks(upload_file)
        )
    finally:
        await form.close()
    return JSONResponse({**record.public(), "sha256": record.sha256}, status_code=201)


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_BYTES):
        yield chunk


@api
async def download(request: Request) -> Response:
    who = await _anyone(request)
    service = _service(request)
    record = await service.attachments.download(who, request.path_params["attachment_id"])
    # Streamed chunk by chunk; a missing file is NotFound here, before any byte is sent.
    chunks = await service.files.stream(record.storage)
    inline = request.query_params.get("inline") == "1" and record.is_image
    disposition = "inline" if inline else "attachment"
    ascii_name = record.filename.encode("ascii", "replace").decode().replace('"', "_")
    headers = {
        "Content-Disposition": (
            f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(record.filename)}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
        "Content-Security-Policy": ATTACHMENT_CSP,
        "Cross-Origin-Resource-Policy": "same-site",
    }
    return StreamingResponse(chunks, media_type=record.content_type, headers=headers)


# -------------------------------------------------------------- tickets (ops)
@api
async def escalate(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    row = await service.escalate(who, request.path_params["session_id"], await _json(request))
    return JSONResponse({"ticket": await service.ticket_json(row)}, status_code=201)


@api
async def list_tickets(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    rows, total = await service.search(who, _ticket_query(request))
    return JSONResponse({"tickets": [await service.ticket_json(r) for r in rows], "total": total})


# Query parameters of GET /api/tickets: typed and bounded before the service sees them.
MAX_OFFSET = 1_000_000_000


def _ticket_query(request: Request) -> dict[str, str]:
    query: dict[str, str] = {}
    for name in ("state", "department", "assignee"):
        value = inputs.query_str(request, name)
        if value is not None:
            query[name] = value
    level = inputs.query_int(request, "level", None, 1, 3)
    if level is not None:
        query["level"] = str(level)
    query["limit"] = str(inputs.query_int(request, "limit", 50, 1, 200))
    query["offset"] = str(inputs.query_int(request, "offset", 0, 0, MAX_OFFSET))
    return query


@api
async def show_ticket(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    row, events = await service.show(who, request.path_params["number"])
    return JSONResponse(
        {
            "ticket": await service.ticket_json(row),
            "events": [service.event_json(e) for e in events],
            "attachments": await service.attachments.of_ticket(row, internal=True),
        }
    )


@api
async def reply(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    row, event = await service.reply(who, request.path_params["number"], await _json(request))
    return JSONResponse(
        {"ticket": await service.ticket_json(row), "event": service.event_json(event)},
        status_code=201,
    )


@api
async def change(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    row, events = await service.change(who, request.path_params["number"], await _json(request))
    return JSONResponse(
        {
            "ticket": await service.ticket_json(row),
            "events": [service.event_json(e) for e in events],
        }
    )


@api
async def mail_review(request: Request) -> Response:
    who = await _operator(request)
    if who.record.role not in (Role.SUPERVISOR.value, Role.ADMIN.value):
        raise Forbidden("supervisors and admins only")
    held = await _service(request).records.review_mails()
    return JSONResponse(
        {
            "mails": [
                {
                    "id": m.review_id,
                    "received_at": m.received_at,
                    "from": m.sender,
                    "subject": m.subject,
                    "ticket": m.ticket,
                    "reason": m.reason,
                }
                for m in held
            ]
        }
    )


# ----------------------------------------------------------- tickets (visitor)
@api
async def visitor_tickets(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    rows = await service.visitor_tickets(who)
    return JSONResponse({"tickets": [_public_ticket(await service.ticket_json(r)) for r in rows]})


def _public_ticket(ticket: dict[str, Any]) -> dict[str, Any]:
    """What a customer sees of a ticket: no internal routing details."""
    keep = (
        "number",
        "ref",
        "subject",
        "state",
        "state_label",
        "channel",
        "created_at",
        "updated_at",
        "lang",  # the language the desk writes to the customer in (docs/i18n.md)
    )
    out = {k: ticket[k] for k in keep}
    out["assignee"] = {"name": ticket["assignee"]["name"]} if ticket["assignee"] else None
    return out


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    actor = event["actor"]
    body = dict(event["body"])
    for private in ("reason", "message_id") if event["kind"] == "state" else ("message_id",):
        body.pop(private, None)
    return {
        "n": event["n"],
        "ts": event["ts"],
        "kind": event["kind"],
        "actor": {"type": actor.get("type"), "name": actor.get("name")},
        "body": body,
    }


_PUBLIC_KINDS = {"created", "transcript", "reply", "mail_in", "state"}


@api
async def visitor_ticket(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    row, events = await service.show(who, request.path_params["number"])
    return JSONResponse(
        {
            "ticket": _public_ticket(await service.ticket_json(row)),
            "events": [_public_event(e) for e in events if e["kind"] in _PUBLIC_KINDS],
            "attachments": await service.attachments.of_ticket(row, internal=False),
        }
    )


@api
async def visitor_reply(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    body = await _json(request)
    await quotas.visitor_reply(request, who)
    row, event = await service.reply(who, request.path_params["number"], body)
    return JSONResponse(
        {"ticket": _public_ticket(await service.ticket_json(row)), "event": _public_event(event)},
        status_code=201,
    )


@api
async def offline_form(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    body = await _json(request)

    async def admit(email: str) -> None:
        await quotas.offline_form(request, who, email)

    row = await service.create_offline(who, body, admit)
    return JSONResponse({"ticket": _public_ticket(await service.ticket_json(row))}, 201)


@api
async def transcript(request: Request) -> Response:
    who = await _visitor(request)
    body = await _json(request)

    async def admit(email: str) -> None:
        await quotas.mail_to(request, email)

    email = await _service(request).mail_transcript(who, body, admit)
    return JSONResponse({"queued": True, "email": email}, status_code=202)


@api
async def callback_request(request: Request) -> Response:
    who = await _visitor(request)
    body = await _json(request)
    phone = clean_phone(body.get("phone"))
    times = clean_line(body.get("preferred_times"), "preferred_times", 200, required=False)
    note = clean_text(body.get("note"), "note", 1000, required=False)
    await quotas.callback(request, who)
    await request.app.state.hub.request_callback(who.session.session_id, phone, times, note)
    return JSONResponse({"queued": True, "phone": phone}, status_code=201)


@api
async def visitor_chat_ticket(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    body = await _json(request)
    row = await service.visitor_to_ticket(who, body)
    return JSONResponse({"ticket": _public_ticket(await service.ticket_json(row))}, 201)


@api
async def ticket_time(request: Request) -> Response:
    who = await _operator(request)
    entry = await _service(request).tools.log_time(
        who, await _json(request), ticket=request.path_params["number"]
    )
    return JSONResponse(entry, status_code=201)


@api
async def chat_time(request: Request) -> Response:
    who = await _operator(request)
    entry = await _service(request).tools.log_time(
        who, await _json(request), session_id=request.path_params["session_id"]
    )
    return JSONResponse(entry, status_code=201)


@api
async def canned_list(request: Request) -> Response:
    who = await _operator(request)
    department = inputs.query_str(request, "department", 64)
    session_id = inputs.query_str(request, "session_id", 64)
    lang = inputs.query_str(request, "lang", 8)
    q = inputs.query_str(request, "q", 100)
    items, chosen = await _service(request).tools.canned(who, department, session_id, lang, q)
    return JSONResponse({"canned": items, "lang": chosen})


@api
async def canned_add(request: Request) -> Response:
    who = await _operator(request)
    item = await _service(request).tools.add_canned(who, await _json(request))
    return JSONResponse(item, status_code=201)


@api
async def canned_edit(request: Request) -> Response:
    who = await _operator(request)
    canned_id = request.path_params["canned_id"]
    item = await _service(request).tools.edit_canned(who, canned_id, await _json(request))
    return JSONResponse(item)


@api
async def canned_delete(request: Request) -> Response:
    who = await _operator(request)
    await _service(request).tools.delete_canned(who, request.path_params["canned_id"])
    return Response(status_code=204)


@api
async def chat_context(request: Request) -> Response:
    who = await _operator(request)
    context = await _service(request).tools.context(who, request.path_params["session_id"])
    return JSONResponse(context)


@api
async def operators(request: Request) -> Response:
    """Colleagues to transfer to or consult: accounts with live status and load.

    Removed accounts never appear; disabled ones only for admins, who also see each
    account's admin fields (chatserver.web.team.admin_view: disabled, locked_until).
    """
    who = await _operator(request)
    admin = who.record.role == Role.ADMIN.value
    hub = request.app.state.hub
    slots: dict[str, Any] = {}
    try:
        slots = {s.operator_id: s for s in await hub.presence_call(hub.presence.operators())}
    except ChatError:
        pass  # presence down: accounts without live status
    out = []
    records = [
        r
        for r in await hub.store.operators()
        if r.removed_at is None and (admin or r.disabled_at is None)
    ]
    locks = await team.account_locks(request, records) if admin else {}
    for record in records:
        slot = slots.get(record.operator_id)
        shown = team.admin_view(record, locks.get(record.username)) if admin else {}
        out.append(
            {
                **record.public(),
                **shown,
                "status": slot.status.value if slot is not None else "offline",
                "load": slot.load if slot is not None else 0,
            }
        )
    return JSONResponse({"operators": out})


@api
async def preferences(request: Request) -> Response:
    """The signed-in operator's own settings: ``lang``, the console's language (or null)."""
    who = await _operator(request)
    body = await _json(request)
    if "lang" not in body:
        raise BadFrame("give lang")
    lang = body["lang"]
    if lang is not None and lang not in LANGUAGES:
        raise BadFrame(f"lang must be one of {', '.join(LANGUAGES)} or null")
    await request.app.state.hub.store.set_operator_lang(who.record.operator_id, lang)
    return JSONResponse({"lang": lang})


ROUTES = [
    Route("/api/me/preferences", preferences, methods=["PUT"]),
    Route("/api/attachments", upload, methods=["POST"]),
    Route("/api/attachments/{attachment_id}", download, methods=["GET"]),
    Route("/api/sessions/{session_id}/escalate", escalate, methods=["POST"]),
    Route("/api/tickets", list_tickets, methods=["GET"]),
    Route("/api/tickets/{number}", show_ticket, methods=["GET"]),
    Route("/api/tickets/{number}/replies", reply, methods=["POST"]),
    Route("/api/tickets/{number}/changes", change, methods=["POST"]),
    Route("/api/mail/review", mail_review, methods=["GET"]),
    Route("/api/visitor/tickets", visitor_tickets, methods=["GET"]),
    Route("/api/visitor/tickets/{number}", visitor_ticket, methods=["GET"]),
    Route("/api/visitor/tickets/{number}/replies", visitor_reply, methods=["POST"]),
    Route("/api/visitor/offline", offline_form, methods=["POST"]),
    Route("/api/visitor/transcript", transcript, methods=["POST"]),
    Route("/api/visitor/callback", callback_request, methods=["POST"]),
    Route("/api/visitor/chat-ticket", visitor_chat_ticket, methods=["POST"]),
    Route("/api/tickets/{number}/time", ticket_time, methods=["POST"]),
    Route("/api/sessions/{session_id}/time", chat_time, methods=["POST"]),
    Route("/api/sessions/{session_id}/context", chat_context, methods=["GET"]),
    Route("/api/operators", operators, methods=["GET"]),
    Route("/api/canned", canned_list, methods=["GET"]),
    Route("/api/canned", canned_add, methods=["POST"]),
    Route("/api/canned/{canned_id}", canned_edit, methods=["PATCH"]),
    Route("/api/canned/{canned_id}", canned_delete, methods=["DELETE"]),
]
