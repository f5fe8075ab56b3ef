"""HTTP API for attachments and tickets (see docs/http-api.md).

Handlers only translate HTTP to :class:`~chatserver.ticketing.TicketService`
calls; every refusal is a :class:`~chatserver.errors.ChatError` turned into
``{"error", "message"}`` with its HTTP status.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import auth
from .errors import BadFrame, ChatError, Forbidden, TooLarge, Unauthorized
from .ticketing import (
    OperatorActor,
    Principal,
    TicketService,
    VisitorActor,
    clean_line,
    clean_phone,
    clean_text,
)
from .types import Role

log = logging.getLogger("chatserver.api")

Handler = Callable[[Request], Awaitable[Response]]

ATTACHMENT_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def _error(exc: ChatError) -> JSONResponse:
    return JSONResponse({"error": exc.code, "message": exc.message}, exc.http_status)


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
    hub = request.app.state.hub
    operator_id = hub.tokens.verify(_bearer(request))
    record = await hub.store.operator(operator_id)
    if record is None:
        raise Unauthorized("unknown operator")
    return OperatorActor(record)


async def _visitor(request: Request) -> VisitorActor:
    hub = request.app.state.hub
    token = _bearer(request)
    session = await hub.store.session_by_token_hash(auth.token_hash(token))
    if session is None:
        raise Unauthorized("unknown session token")
    return VisitorActor(session)


async def _anyone(request: Request) -> Principal:
    token = _bearer(request)
    if token.count(".") == 2:
        return await _operator(request)
    return await _visitor(request)


async def _json(request: Request) -> dict[str, Any]:
    body = await _limited_body(request, 256 * 1024)
    try:
        data = json.loads(body)
    except ValueError:
        raise BadFrame("the body must be JSON") from None
    if not isinstance(data, dict):
        raise BadFrame("the body must be a JSON object")
    return data


async def _limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise TooLarge(f"the request is larger than {limit} bytes")
        except ValueError:
            raise BadFrame("bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # later reads (form parsing) use what was read
    return body


# ---------------------------------------------------------------- attachments
@api
async def upload(request: Request) -> Response:
    who = await _anyone(request)
    service = _service(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadFrame("upload as multipart/form-data with a 'file' part")
    limit = service.settings.max_upload_bytes
    await _limited_body(request, limit + 64 * 1024)  # room for the multipart framing
    try:
        form = await request.form(max_files=1, max_fields=5, max_part_size=1024)
    except ChatError:
        raise
    except Exception as exc:  # python-multipart / starlette parse errors
        raise BadFrame(f"the upload cannot be read: {str(exc)[:200]}") from None
    try:
        upload_file = form.get("file")
        if upload_file is None or isinstance(upload_file, str):
            raise BadFrame("the upload needs a 'file' part")
        data = await upload_file.read()
        target = {k: form.get(k) for k in ("session_id", "ticket") if isinstance(form.get(k), str)}
        record = await service.upload(who, data, upload_file.filename, target)
    finally:
        await form.close()
    return JSONResponse({**record.public(), "sha256": record.sha256}, status_code=201)


@api
async def download(request: Request) -> Response:
    who = await _anyone(request)
    service = _service(request)
    record = await service.download(who, request.path_params["attachment_id"])
    data = await asyncio.to_thread(service.files.read, record.storage)
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
    return Response(data, media_type=record.content_type, headers=headers)


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
    rows, total = await service.search(who, dict(request.query_params))
    return JSONResponse({"tickets": [await service.ticket_json(r) for r in rows], "total": total})


@api
async def show_ticket(request: Request) -> Response:
    who = await _operator(request)
    service = _service(request)
    row, events = await service.show(who, request.path_params["number"])
    return JSONResponse(
        {
            "ticket": await service.ticket_json(row),
            "events": [service.event_json(e) for e in events],
            "attachments": await service.attachments_json(row, internal=True),
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
            "attachments": await service.attachments_json(row, internal=False),
        }
    )


@api
async def visitor_reply(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    row, event = await service.reply(who, request.path_params["number"], await _json(request))
    return JSONResponse(
        {"ticket": _public_ticket(await service.ticket_json(row)), "event": _public_event(event)},
        status_code=201,
    )


@api
async def offline_form(request: Request) -> Response:
    who = await _visitor(request)
    service = _service(request)
    row = await service.create_offline(who, await _json(request))
    return JSONResponse({"ticket": _public_ticket(await service.ticket_json(row))}, 201)


@api
async def transcript(request: Request) -> Response:
    who = await _visitor(request)
    email = await _service(request).mail_transcript(who, await _json(request))
    return JSONResponse({"queued": True, "email": email}, status_code=202)


@api
async def callback_request(request: Request) -> Response:
    who = await _visitor(request)
    body = await _json(request)
    phone = clean_phone(body.get("phone"))
    times = clean_line(body.get("preferred_times"), "preferred_times", 200, required=False)
    note = clean_text(body.get("note"), "note", 1000, required=False)
    await request.app.state.hub.request_callback(who.session.session_id, phone, times, note)
    return JSONResponse({"queued": True, "phone": phone}, status_code=201)


@api
async def ticket_time(request: Request) -> Response:
    who = await _operator(request)
    entry = await _service(request).log_time(
        who, await _json(request), ticket=request.path_params["number"]
    )
    return JSONResponse(entry, status_code=201)


@api
async def chat_time(request: Request) -> Response:
    who = await _operator(request)
    entry = await _service(request).log_time(
        who, await _json(request), session_id=request.path_params["session_id"]
    )
    return JSONResponse(entry, status_code=201)


@api
async def canned_list(request: Request) -> Response:
    who = await _operator(request)
    q = request.query_params
    items = await _service(request).canned(
        who, q.get("department") or None, q.get("session_id") or None
    )
    return JSONResponse({"canned": items})


@api
async def canned_add(request: Request) -> Response:
    who = await _operator(request)
    item = await _service(request).add_canned(who, await _json(request))
    return JSONResponse(item, status_code=201)


@api
async def chat_context(request: Request) -> Response:
    who = await _operator(request)
    return JSONResponse(await _service(request).context(who, request.path_params["session_id"]))


@api
async def operators(request: Request) -> Response:
    """Colleagues to transfer to or consult: accounts with live status and load."""
    await _operator(request)
    hub = request.app.state.hub
    slots: dict[str, Any] = {}
    try:
        slots = {s.operator_id: s for s in await hub._presence(hub.presence.operators())}
    except ChatError:
        pass  # presence down: accounts without live status
    out = []
    for record in await hub.store.operators():
        slot = slots.get(record.operator_id)
        out.append(
            {
                **record.public(),
                "status": slot.status.value if slot is not None else "offline",
                "load": slot.load if slot is not None else 0,
            }
        )
    return JSONResponse({"operators": out})


ROUTES = [
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
    Route("/api/tickets/{number}/time", ticket_time, methods=["POST"]),
    Route("/api/sessions/{session_id}/time", chat_time, methods=["POST"]),
    Route("/api/sessions/{session_id}/context", chat_context, methods=["GET"]),
    Route("/api/operators", operators, methods=["GET"]),
    Route("/api/canned", canned_list, methods=["GET"]),
    Route("/api/canned", canned_add, methods=["POST"]),
]
