"""The visitor widget stays small: served minified, at most 15 KiB gzipped."""

from __future__ import annotations

import gzip
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from chatserver.app import WIDGET_DIR, minified_widget

BUDGET = 15 * 1024  # bytes, gzip -9


def test_minified_widget_fits_the_budget() -> None:
    body, _ = minified_widget()
    raw = (WIDGET_DIR / "widget.js").read_bytes()
    assert len(body) < len(raw)
    size = len(gzip.compress(body, 9))
    assert size <= BUDGET, f"widget is {size} bytes gzipped (budget {BUDGET})"


def test_minified_widget_never_uses_inner_html() -> None:
    body, _ = minified_widget()
    text = body.decode()
    # The widget builds its DOM with createElement/textContent only.
    assert "innerHTML" not in text
    assert "outerHTML" not in text
    assert "insertAdjacentHTML" not in text
    assert not re.search(r"document\.write", text)
    # Still the whole widget: the entry point and the safety header are gone, the code is not.
    assert "ChatserverWidget" in text
    assert "/ws/visitor" in text


def test_minified_widget_is_cached_and_follows_the_file(tmp_path: Path) -> None:
    src = tmp_path / "widget.js"
    src.write_text("// comment\nvar  a = 1 ;\n", encoding="utf-8")
    first, etag1 = minified_widget(src)
    assert first == b"var a=1;"
    again, etag2 = minified_widget(src)
    assert again is first and etag2 == etag1
    src.write_text("var b = 2;\n", encoding="utf-8")
    stat = src.stat()
    os.utime(src, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed, etag3 = minified_widget(src)
    assert changed == b"var b=2;"
    assert etag3 != etag1


def test_served_widget_is_the_minified_one(server: object) -> None:
    url = server.http_url + "/widget.js"  # type: ignore[attr-defined]
    response = httpx.get(url)
    assert response.status_code == 200
    body, etag = minified_widget()
    assert response.content == body
    assert response.headers["etag"] == etag
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "public, max-age=300"
    cached = httpx.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_minified_widget_parses(tmp_path: Path) -> None:
    import subprocess

    body, _ = minified_widget()
    path = tmp_path / "widget.min.js"
    path.write_bytes(body)
    subprocess.run(["node", "--check", str(path)], check=True)
