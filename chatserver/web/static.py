"""Static files as served: compressed once, with ``ETag``, ``Cache-Control`` and 304s.

Every body served through :func:`respond` is compressed once per content (gzip, and
brotli), the compressed bytes kept in memory keyed by the body's hash; a request gets
brotli when its ``Accept-Encoding`` allows ``br``, else gzip when it allows ``gzip``,
else the plain bytes. All encodings share one strong ``ETag`` (the hash of the plain
body); responses carry ``Vary: Accept-Encoding`` so caches keep them apart.

Caching: a *versioned* URL (``?v=<version>`` equal to the content's version, see
:attr:`Encoded.version`) never changes and is cached for a year (``immutable``); any
other URL gets ``no-cache``: the browser keeps it but revalidates with
``If-None-Match`` each time, answered ``304`` while unchanged.

:class:`ConsoleFiles` serves the operator console this way; its HTML pages reference
their stylesheets, scripts and icons with ``?v=<version>`` added.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
from dataclasses import dataclass
from typing import Any

import brotli  # type: ignore[import-untyped]
from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Smaller bodies are sent as they are (compression would not pay).
MIN_COMPRESS = 256
COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "application/javascript",
    ".mjs": "application/javascript",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
# A stylesheet, script or icon an HTML page references by a relative path.
_HTML_REF = re.compile(r'((?:src|href)=")([^":#?]+\.(?:js|css|svg|ico))(")')


@dataclass(frozen=True)
class Encoded:
    """One body and its compressed forms (``None``: not worth compressing)."""

    body: bytes
    media_type: str
    etag: str
    version: str
    gzip: bytes | None
    br: bytes | None


_ENCODED: dict[tuple[str, str], Encoded] = {}
_ENCODED_MAX = 512


def encode(body: bytes, media_type: str, etag: str | None = None) -> Encoded:
    """``body`` with its gzip and brotli forms, computed once per content (cached by
    its hash; the cache is emptied when it holds more than 512 bodies). ``etag``
    defaults to the quoted hash."""
    digest = hashlib.sha256(body).hexdigest()
    key = (digest, media_type)
    found = _ENCODED.get(key)
    if found is not None and (etag is None or found.etag == etag):
        return found
    packed = len(body) >= MIN_COMPRESS and media_type.startswith(COMPRESSIBLE)
    encoded = Encoded(
        body=body,
        media_type=media_type,
        etag=etag or f'"{digest[:32]}"',
        version=digest[:12],
        gzip=gzip.compress(body, 9, mtime=0) if packed else None,
        br=bytes(brotli.compress(body, quality=11)) if packed else None,
    )
    if len(_ENCODED) >= _ENCODED_MAX:
        _ENCODED.clear()
    _ENCODED[key] = encoded
    return encoded


def _accepted(accept_encoding: str) -> set[str]:
    """The codings ``Accept-Encoding`` allows (``q=0`` excluded; ``*`` kept as is)."""
    allowed = set()
    for part in accept_encoding.split(","):
        name, _, params = part.strip().partition(";")
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    continue
            except ValueError:
                continue
        if name.strip():
            allowed.add(name.strip().lower())
    return allowed


def choose_encoding(accept_encoding: str, encoded: Encoded) -> str | None:
    """``"br"``, ``"gzip"`` or ``None`` (the plain body) for this request."""
    if encoded.gzip is None:
        return None
    allowed = _accepted(accept_encoding)
    if encoded.br is not None and ("br" in allowed or "*" in allowed):
        return "br"
    if "gzip" in allowed or "*" in allowed:
        return "gzip"
    return None


def not_modified(if_none_match: str, etag: str) -> bool:
    """Whether ``If-None-Match`` names ``etag`` (weakly compared, as RFC 9110 asks)."""
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def respond(
    headers: Headers,
    encoded: Encoded,
    cache_control: str,
    extra: dict[str, str] | None = None,
    method: str = "GET",
) -> Response:
    """The response to a GET (or HEAD) for ``encoded``: 304 when ``If-None-Match``
    names its ETag, else the body in the best encoding the client accepts."""
    out = {
        "ETag": encoded.etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
        **(extra or {}),
    }
    if not_modified(headers.get("if-none-match", ""), encoded.etag):
        return Response(status_code=304, headers=out)
    coding = choose_encoding(headers.get("accept-encoding", ""), encoded)
    body = encoded.body
    if coding == "br" and encoded.br is not None:
        body = encoded.br
    elif coding == "gzip" and encoded.gzip is not None:
        body = encoded.gzip
    if coding:
        out["Content-Encoding"] = coding
    response = Response(body, media_type=encoded.media_type, headers=out)
    if method == "HEAD":
        response.body = b""
    return response


def cache_control_for(query_version: str | None, encoded: Encoded) -> str:
    """A year for the versioned URL of this content, else revalidate each time."""
    return IMMUTABLE if query_version == encoded.version else REVALIDATE


_FILES: dict[str, tuple[tuple[int, int], Encoded, tuple[tuple[str, str], ...]]] = {}


def file_asset(full_path: str) -> Encoded:
    """A file's :class:`Encoded` form, read and compressed again only when its mtime
    or size changes. In an HTML file, each relative reference to a ``.js``, ``.css``,
    ``.svg`` or ``.ico`` file that exists gets ``?v=<its version>`` (and the page is
    rebuilt when one of them changes)."""
    st = os.stat(full_path)
    key = (st.st_mtime_ns, st.st_size)
    cached = _FILES.get(full_path)
    if cached is not None and cached[0] == key:
        if all(file_asset(dep).version == version for dep, version in cached[2]):
            return cached[1]
    with open(full_path, "rb") as handle:
        body = handle.read()
    suffix = os.path.splitext(full_path)[1].lower()
    deps: list[tuple[str, str]] = []
    if suffix == ".html":
        folder = os.path.dirname(full_path)

        def version(match: re.Match[str]) -> str:
            dep = os.path.normpath(os.path.join(folder, match.group(2)))
            if not dep.startswith(folder + os.sep) or not os.path.isfile(dep):
                return match.group(0)
            dep_version = file_asset(dep).version
            deps.append((dep, dep_version))
            return f"{match.group(1)}{match.group(2)}?v={dep_version}{match.group(3)}"

        body = _HTML_REF.sub(version, body.decode("utf-8")).encode("utf-8")
    media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
    encoded = encode(body, media_type)
    _FILES[full_path] = (key, encoded, tuple(deps))
    return encoded


class CompressedFiles(StaticFiles):
    """Starlette's static files, each served through :func:`respond`: compressed,
    with ETag, 304s and :func:`cache_control_for` (``?v=`` versioned URLs)."""

    extra_headers: dict[str, str] = {}

    def file_response(
        self, full_path: Any, stat_result: os.stat_result, scope: Any, status_code: int = 200
    ) -> Response:
        if status_code != 200:
            return super().file_response(full_path, stat_result, scope, status_code)
        headers = Headers(scope=scope)
        encoded = file_asset(str(full_path))
        query = scope.get("query_string", b"").decode("latin-1")
        version = next((part[2:] for part in query.split("&") if part.startswith("v=")), None)
        return respond(
            headers,
            encoded,
            cache_control_for(version, encoded),
            dict(self.extra_headers),
            scope.get("method", "GET"),
        )
