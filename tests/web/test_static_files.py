"""Static files on a real server: compressed (gzip, brotli) bytes decode to the plain
file, one ETag answered 304, Cache-Control by URL (``?v=`` versioned: a year,
immutable; else no-cache), ``Vary: Accept-Encoding``, and the favicon."""

from __future__ import annotations

import gzip
import re
from typing import Any

import brotli  # type: ignore[import-untyped]
import httpx
import pytest

from chatserver.web.app import CONSOLE_DIR, WIDGET_DIR, minified_widget, widget_catalogs
from chatserver.web.static import (
    IMMUTABLE,
    REVALIDATE,
    _accepted,
    choose_encoding,
    encode,
    file_asset,
    not_modified,
)


def body_of(http: httpx.Client, path: str, encoding: str) -> tuple[httpx.Response, bytes]:
    request = http.build_request("GET", path, headers={"Accept-Encoding": encoding})
    response = http.send(request, stream=True)
    data = b"".join(response.iter_raw())
    response.close()
    return response, data


def decoded(coding: str | None, data: bytes) -> bytes:
    if coding == "gzip":
        return gzip.decompress(data)
    if coding == "br":
        return bytes(brotli.decompress(data))
    return data


@pytest.mark.parametrize("path", ["/widget.js", "/console/console.css", "/console/js/main.js"])
def test_each_encoding_decodes_to_the_plain_file(server: Any, path: str) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        plain, plain_body = body_of(http, path, "identity")
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        if path == "/widget.js":
            assert plain_body == minified_widget(language="de")[0]
        else:
            assert plain_body == (CONSOLE_DIR / path.removeprefix("/console/")).read_bytes()
        for accept, coding in [
            ("gzip", "gzip"),
            ("gzip, deflate, br", "br"),
            ("br;q=0, gzip", "gzip"),
            ("br", "br"),
            ("deflate", None),
        ]:
            response, data = body_of(http, path, accept)
            assert response.status_code == 200
            assert response.headers.get("content-encoding") == coding, accept
            assert "Accept-Encoding" in response.headers["vary"]
            assert response.headers["etag"] == plain.headers["etag"]
            assert decoded(coding, data) == plain_body, accept
            if coding:
                assert len(data) < len(plain_body)


def test_widget_js_is_small_compressed_and_cached_by_version(server: Any) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        response, data = body_of(http, "/widget.js", "br")
        assert len(data) < 16 * 1024
        etag = response.headers["etag"]
        assert response.headers["cache-control"] == REVALIDATE
        again = http.get("/widget.js", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == etag
        weak = http.get("/widget.js", headers={"If-None-Match": f'"x", W/{etag}'})
        assert weak.status_code == 304
        changed = http.get("/widget.js", headers={"If-None-Match": '"w-stale"'})
        assert changed.status_code == 200 and changed.content

        version = encode(changed.content, "application/javascript", etag).version
        fixed = http.get(f"/widget.js?v={version}")
        assert fixed.headers["cache-control"] == IMMUTABLE
        wrong = http.get("/widget.js?v=000000000000")
        assert wrong.status_code == 200 and wrong.headers["cache-control"] == REVALIDATE

        body, cat_version = widget_catalogs()["de"]
        catalog, data = body_of(http, f"/widget/i18n/de.json?v={cat_version}", "gzip")
        assert decoded(catalog.headers.get("content-encoding"), data) == body
        assert catalog.headers["cache-control"] == IMMUTABLE


def test_console_references_versioned_urls_cached_for_a_year(server: Any) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        index = http.get("/console/")
        assert index.status_code == 200
        assert index.headers["cache-control"] == REVALIDATE
        assert "default-src 'self'" in index.headers["content-security-policy"]
        refs = re.findall(r'(?:src|href)="([^"#]+\?v=[0-9a-f]{12})"', index.text)
        assert "console.css?v=" in index.text and "js/main.js?v=" in index.text
        assert len(refs) >= 5
        for ref in refs:
            got = http.get(f"/console/{ref}")
            assert got.status_code == 200, ref
            assert got.headers["cache-control"] == IMMUTABLE, ref
            assert got.content == (CONSOLE_DIR / ref.split("?")[0]).read_bytes()
            assert got.headers["content-security-policy"]
        # The same file without (or with an old) version: revalidated, 304 when unchanged.
        css = http.get("/console/console.css?v=0123456789ab")
        assert css.headers["cache-control"] == REVALIDATE
        etag = css.headers["etag"]
        assert http.get("/console/console.css", headers={"If-None-Match": etag}).status_code == 304
        index_again = http.get("/console/", headers={"If-None-Match": index.headers["etag"]})
        assert index_again.status_code == 304
        # Bad input changes nothing: missing files, escapes, a POST.
        assert http.get("/console/nope.js").status_code == 404
        assert http.get("/console/..%2Fpyproject.toml").status_code == 404
        assert http.post("/console/console.css").status_code == 405


def test_favicon(server: Any) -> None:
    with httpx.Client(base_url=server.http_url, timeout=10) as http:
        for path in ("/favicon.ico", "/favicon.svg"):
            icon = http.get(path)
            assert icon.status_code == 200
            assert icon.headers["content-type"].startswith("image/")
            assert icon.content == (WIDGET_DIR / "favicon.svg").read_bytes()
            assert (
                http.get(path, headers={"If-None-Match": icon.headers["etag"]}).status_code == 304
            )
        console = http.get("/console/").text
        demo = http.get("/").text
        assert 'rel="icon" href="/favicon.svg"' in console
        assert 'rel="icon" href="/favicon.svg"' in demo


def test_negotiation_rules() -> None:
    assert _accepted("gzip;q=0.5, br;q=0 , identity") == {"gzip", "identity"}
    assert _accepted("gzip;q=bogus, ,") == set()
    big = encode(b"x" * 1000, "text/css")
    assert choose_encoding("*", big) == "br"
    assert choose_encoding("", big) is None
    assert choose_encoding("GZIP", big) == "gzip"
    small = encode(b"tiny", "text/css")
    assert small.gzip is None and choose_encoding("br, gzip", small) is None
    image = encode(b"\x89PNG" * 200, "image/png")
    assert image.br is None
    assert encode(b"x" * 1000, "text/css") is big  # compressed once
    assert not_modified("*", big.etag) and not not_modified("", big.etag)
    page = file_asset(str(CONSOLE_DIR / "index.html"))
    assert file_asset(str(CONSOLE_DIR / "index.html")) is page
