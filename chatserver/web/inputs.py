"""Reading what an HTTP request brings: the one JSON body reader and typed query parameters.

Every JSON endpoint reads its body with :func:`read_json` and every query parameter with
:func:`query_int` or :func:`query_str`: a body that is too large, not JSON, not an object,
or nested deeper than :data:`MAX_DEPTH`, and a query value of the wrong type or out of
bounds, raise :class:`~chatserver.errors.BadRequest` (HTTP 400, code ``bad_request``) or
:class:`~chatserver.errors.TooLarge` (413) with a message naming what is wrong. Nothing
the client sends makes these raise anything else.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import Message

from chatserver.errors import BadRequest, TooLarge

__all__ = [
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "bounded_request",
    "check_depth",
    "limited_body",
    "parse_json_object",
    "query_int",
    "query_str",
    "read_json",
]

# A JSON request body: at most this many bytes ...
MAX_BODY_BYTES = 256 * 1024
# ... and at most this many nested arrays or objects (the outer object counts as 1).
MAX_DEPTH = 32


async def limited_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it grows past ``limit``.

    Keeps what was read on the request, so later reads (form parsing) use it.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        digits = declared.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
            raise BadRequest("bad Content-Length")
        if int(declared) > limit:
            raise TooLarge(f"the request is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request is larger than {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body
    return body


def bounded_request(request: Request, limit: int) -> Request:
    """``request`` whose body, read as a stream (``form()`` spools files to disk), raises
    :class:`TooLarge` as soon as it grows past ``limit`` (a declared Content-Length
    over it: at once). For uploads, which must not be held in memory whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        digits = declared.strip()
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 20:
            raise BadRequest("bad Content-Length")
        if int(declared) > limit:
            raise TooLarge(f"the request is larger than {limit} bytes")
    size = 0
    receive = request.receive

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limit:
                raise TooLarge(f"the request is larger than {limit} bytes")
        return message

    return Request(request.scope, counted)


def check_depth(value: Any, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`BadRequest` if ``value`` nests arrays/objects deeper than ``limit``.

    Iterative: no recursion, whatever the depth.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            raise BadRequest(f"the JSON body is nested deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def parse_json_object(body: bytes, depth: int = MAX_DEPTH) -> dict[str, Any]:
    """``body`` as a JSON object, or :class:`BadRequest` saying why not.

    orjson refuses nesting past 1024 levels (and lone surrogates, NaN) by itself, without
    recursion; :func:`check_depth` then holds the body to ``depth``.
    """
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):
            raise BadRequest(f"the JSON body is nested deeper than {depth} levels") from None
        raise BadRequest("the body must be JSON (UTF-8)") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    check_depth(data, depth)
    return data


async def read_json(request: Request, limit: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object body: at most ``limit`` bytes and :data:`MAX_DEPTH` deep."""
    return parse_json_object(await limited_body(request, limit))


def query_int(request: Request, name: str, default: int | None, lo: int, hi: int) -> int | None:
    """Query parameter ``name`` as an int in ``[lo, hi]``; ``default`` when absent or empty."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise BadRequest(f"{name} must be a whole number between {lo} and {hi}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be a whole number between {lo} and {hi}")
    return value


def query_str(request: Request, name: str, max_len: int = 200) -> str | None:
    """Query parameter ``name`` (``None`` when absent or empty), at most ``max_len`` characters
    and without control characters."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if len(raw) > max_len:
        raise BadRequest(f"{name} is longer than {max_len} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise BadRequest(f"{name} has control characters")
    return raw
