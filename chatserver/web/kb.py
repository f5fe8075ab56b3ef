"""The knowledge base's HTTP API (docs/http-api.md, "Knowledge base").

Handlers translate HTTP to :class:`~chatserver.kb.service.KnowledgeBase` calls; every
refusal is a :class:`~chatserver.errors.ChatError` turned into ``{"error", "message"}``
with its status. Search, articles and feedback serve visitors (no token, or a visitor's)
and operators (``Authorization: Bearer`` with an operator token: agents-only articles
too); ``/api/kb/manage/...`` needs an operator token, and writing a supervisor's or an
admin's.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatserver.errors import NotFound, Unauthorized
from chatserver.kb.model import Status
from chatserver.kb.service import KnowledgeBase, manage_json, revision_json
from chatserver.operators import auth
from chatserver.store.base import OperatorRecord
from chatserver.web import inputs, quotas
from chatserver.web.api import api

MAX_OFFSET = 1_000_000


def kb_of(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb
    return kb


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 2000:
        raise Unauthorized("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def viewer(request: Request) -> OperatorRecord | None:
    """The operator asking (a valid, current operator token), or ``None`` for a visitor
    (no token, or a visitor's session token). A bad operator token: 401."""
    token = _token(request)
    if token is None or not auth.is_operator_token(token):
        return None
    record: OperatorRecord = await request.app.state.hub.accounts.authenticate(token)
    return record


async def operator(request: Request) -> OperatorRecord:
    record = await viewer(request)
    if record is None:
        raise Unauthorized("an operator's Authorization: Bearer token is required")
    return record


def _source(request: Request) -> str | None:
    return inputs.query_str(request, "source", 20)


# ---------------------------------------------------------------- visitors, agents
@api
async def search(request: Request) -> Response:
    kb = kb_of(request)
    who = await viewer(request)
    results = await kb.search(
        inputs.query_str(request, "q", 200) or "",
        lang=inputs.query_str(request, "lang", 8),
        department=inputs.query_str(request, "department", 64),
        limit=inputs.query_int(request, "limit", 3, 1, 10) or 3,
        viewer=who,
        source=_source(request),
        # Visitors' searches are counted per address (operators' are not).
        admit=None if who is not None else lambda: quotas.kb_search(request),
    )
    return JSONResponse({"results": results})


@api
async def article(request: Request) -> Response:
    kb = kb_of(request)
    found, translations = await kb.read(
        request.path_params["lang"],
        request.path_params["slug"],
        await viewer(request),
        _source(request),
    )
    return JSONResponse(kb.article_json(found, translations))


async def _token_session(request: Request) -> str | None:
    """The chat session of a visitor's token in ``Authorization`` (``None``: no visitor
    token). A token no session has: 404, nothing counted."""
    token = _token(request)
    if token is None or auth.is_operator_token(token):
        return None
    session = await request.app.state.hub.store.session_by_token_hash(auth.token_hash(token))
    if session is None:
        raise NotFound("no chat session has this token: send your chat's token, or none")
    return str(session.session_id)


@api
async def feedback(request: Request) -> Response:
    kb = kb_of(request)
    who = await viewer(request)
    body = await inputs.read_json(request, 4096)
    await kb.feedback(
        request.path_params["lang"],
        request.path_params["slug"],
        body,
        who,
        token_session=await _token_session(request),
        admit=None if who is not None else lambda: quotas.kb_feedback(request),
    )
    return Response(status_code=204)


# ---------------------------------------------------------------- authoring
@api
async def manage_list(request: Request) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    articles, total = await kb.manage_list(
        who,
        q=inputs.query_str(request, "q", 200),
        lang=inputs.query_str(request, "lang", 8),
        status=inputs.query_str(request, "status", 20),
        limit=inputs.query_int(request, "limit", 50, 1, 200) or 50,
        offset=inputs.query_int(request, "offset", 0, 0, MAX_OFFSET) or 0,
    )
    return JSONResponse(
        {"articles": [manage_json(a, [], full=False) for a in articles], "total": total}
    )


@api
async def manage_create(request: Request) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    kb.author(who)
    created = await kb.create(who, await inputs.read_json(request))
    return JSONResponse(manage_json(created, await kb.group_of(created)), status_code=201)


@api
async def manage_show(request: Request) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    found = await kb.manage_article(who, request.path_params["article_id"])
    return JSONResponse(manage_json(found, await kb.group_of(found)))


@api
async def manage_edit(request: Request) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    kb.author(who)
    await kb.manage_article(who, request.path_params["article_id"])  # 404 before the body
    changed = await kb.edit(who, request.path_params["article_id"], await inputs.read_json(request))
    return JSONResponse(manage_json(changed, await kb.group_of(changed)))


async def _set_status(request: Request, status: Status) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    changed = await kb.set_status(who, request.path_params["article_id"], status)
    return JSONResponse(manage_json(changed, await kb.group_of(changed)))


@api
async def manage_publish(request: Request) -> Response:
    return await _set_status(request, Status.PUBLISHED)


@api
async def manage_unpublish(request: Request) -> Response:
    return await _set_status(request, Status.DRAFT)


@api
async def manage_revisions(request: Request) -> Response:
    who = await operator(request)
    revisions = await kb_of(request).revisions(who, request.path_params["article_id"])
    return JSONResponse({"revisions": [revision_json(r) for r in revisions]})


@api
async def manage_preview(request: Request) -> Response:
    who = await operator(request)
    kb = kb_of(request)
    kb.author(who)
    return JSONResponse({"html": kb.preview(who, await inputs.read_json(request))})


ROUTES = [
    Route("/api/kb/search", search, methods=["GET"]),
    Route("/api/kb/articles/{lang}/{slug}", article, methods=["GET"]),
    Route("/api/kb/articles/{lang}/{slug}/feedback", feedback, methods=["POST"]),
    Route("/api/kb/manage/articles", manage_list, methods=["GET"]),
    Route("/api/kb/manage/articles", manage_create, methods=["POST"]),
    Route("/api/kb/manage/articles/{article_id}", manage_show, methods=["GET"]),
    Route("/api/kb/manage/articles/{article_id}", manage_edit, methods=["PUT"]),
    Route("/api/kb/manage/articles/{article_id}/publish", manage_publish, methods=["POST"]),
    Route("/api/kb/manage/articles/{article_id}/unpublish", manage_unpublish, methods=["POST"]),
    Route("/api/kb/manage/articles/{article_id}/revisions", manage_revisions, methods=["GET"]),
    Route("/api/kb/manage/preview", manage_preview, methods=["POST"]),
]
