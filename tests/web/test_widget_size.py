"""The visitor widget stays small: served minified, with one language's catalog
inlined (the site default, any of LANGUAGES), at most 18 KiB gzipped. The other
languages come as cached catalogs.

The served code is the checked-in terser build (widget/dist/widget.min.js, `make
widget`): it must be built from the current widget.js, and rebuilding it with the
pinned terser must give the same bytes. A missing or stale build falls back to rjsmin
with one warning."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from chatserver.i18n.languages import LANGUAGES
from chatserver.web.app import I18N_MARK, WIDGET_DIR, minified_widget, widget_catalogs
from chatserver.web.widget_build import BUILD_HEADER, build_path, widget_code

BUDGET = 18 * 1024  # bytes, gzip -9: the served file, one language inlined
CODE_BUDGET = 18 * 1024  # the same without a catalog
CATALOG_BUDGET = 2560  # one catalog on its own (/widget/i18n/<lang>.json)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_minified_widget_fits_the_budget(lang: str) -> None:
    body, _ = minified_widget(language=lang)
    raw = (WIDGET_DIR / "widget.js").read_bytes()
    assert len(body) < len(raw)
    size = len(gzip.compress(body, 9))
    assert size <= BUDGET, f"widget with {lang} is {size} bytes gzipped (budget {BUDGET})"
    code = body.replace(json_inlined(body), b"0")
    size = len(gzip.compress(code, 9))
    assert size <= CODE_BUDGET, f"widget code is {size} bytes gzipped (budget {CODE_BUDGET})"
    catalog, _ = widget_catalogs()[lang]
    size = len(gzip.compress(catalog, 9))
    assert size <= CATALOG_BUDGET, f"{lang} catalog is {size} bytes gzipped"


def json_inlined(body: bytes) -> bytes:
    """The language data the server wrote over the marker (widget.js, "Language")."""
    assert I18N_MARK not in body
    start = body.index(b'{"d":')
    text = body[start:].decode()
    _, end = json.JSONDecoder().raw_decode(text)
    return text[:end].encode()


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
    body, etag = minified_widget(language="de")  # the default CHATSERVER_DEFAULT_LANGUAGE
    assert response.content == body
    assert response.headers["etag"] == etag
    assert response.headers["content-type"].startswith("application/javascript")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-cache"  # revalidated by ETag
    cached = httpx.get(url, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_minified_widget_parses(tmp_path: Path) -> None:
    body, _ = minified_widget()
    path = tmp_path / "widget.min.js"
    path.write_bytes(body)
    subprocess.run(["node", "--check", str(path)], check=True)
    # The build as checked in, header line included.
    subprocess.run(["node", "--check", str(build_path(WIDGET_DIR / "widget.js"))], check=True)


# ------------------------------------------------------------ the terser build
SOURCE = WIDGET_DIR / "widget.js"
# What `make widget` reads: copied to a temporary folder to rebuild there.
BUILD_INPUTS = ("widget.js", "build.mjs", "package.json", "package-lock.json")


def test_served_widget_is_the_checked_in_build() -> None:
    """The build's header names the SHA-256 of the current widget.js (else `make
    widget`), and the server serves that build, the header left out."""
    built = build_path(SOURCE).read_bytes()
    header = BUILD_HEADER.match(built)
    assert header is not None, built[:200]
    assert header[1].decode() == hashlib.sha256(SOURCE.read_bytes()).hexdigest(), (
        "widget/dist/widget.min.js was built from another widget.js: run `make widget`"
    )
    code, terser = widget_code(SOURCE)
    assert terser
    assert code == built[header.end() :].rstrip(b"\n")
    assert code.count(b'"@@CHATSERVER_I18N@@"') == 1  # the marker survives terser
    body, _ = minified_widget(language="fr")
    assert body.startswith(code[:200])


def test_rebuilding_the_widget_gives_the_checked_in_bytes(tmp_path: Path) -> None:
    """`make widget` in a copy of widget/ (npm ci from the lockfile, then build.mjs)
    writes exactly the checked-in dist/widget.min.js. Needs node and npm (`make
    system-deps`): fails, never skips, without them."""
    for tool in ("node", "npm"):
        assert shutil.which(tool), f"{tool} is not installed: run `make system-deps`"
    work = tmp_path / "widget"
    work.mkdir()
    for name in BUILD_INPUTS:
        shutil.copy2(WIDGET_DIR / name, work / name)
    env = {**os.environ, "npm_config_update_notifier": "false"}
    npm = ["npm", "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"]
    done = subprocess.run(npm, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out" / "widget.min.js"
    done = subprocess.run(
        ["node", "build.mjs", str(out)], cwd=work, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.read_bytes() == build_path(SOURCE).read_bytes(), (
        "the checked-in widget/dist/widget.min.js is not what `make widget` builds"
    )


def _widget_copy(folder: Path) -> Path:
    """widget.js, its catalogs and its build, copied to ``folder``; the copy's widget.js."""
    shutil.copytree(WIDGET_DIR / "i18n", folder / "i18n")
    (folder / "dist").mkdir(parents=True)
    shutil.copy2(build_path(SOURCE), folder / "dist" / "widget.min.js")
    shutil.copy2(SOURCE, folder / "widget.js")
    return folder / "widget.js"


def _touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "chatserver.web.widget_build" and r.levelno == logging.WARNING
    ]


def test_a_stale_build_falls_back_to_rjsmin_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import rjsmin  # type: ignore[import-untyped]

    src = _widget_copy(tmp_path / "w")
    build = build_path(src)
    fresh = {lang: minified_widget(src, lang) for lang in LANGUAGES}  # the build, current
    assert fresh["de"][0] == minified_widget(language="de")[0]
    assert _warnings(caplog) == []

    # A build from another widget.js: the header's hash is wrong.
    text = build.read_bytes()
    build.write_bytes(re.sub(rb"sha256:[0-9a-f]{64}", b"sha256:" + b"0" * 64, text, count=1))
    _touch_later(build)
    expected = str(rjsmin.jsmin(src.read_text(encoding="utf-8"))).encode()
    code, terser = widget_code(src)
    assert not terser and code == expected
    for lang in LANGUAGES:
        body, etag = minified_widget(src, lang)
        assert etag != fresh[lang][1]
        assert body.startswith(expected[: expected.index(b"'@@CHATSERVER_I18N@@'")])
        assert json_inlined(body).startswith(b'{"d":"' + lang.encode())
        assert minified_widget(src, lang) == (body, etag)  # cached: no second warning
    (warning,) = _warnings(caplog)
    assert "stale" in warning and "make widget" in warning

    # Missing: the same fallback, one more warning.
    caplog.clear()
    build.unlink()
    assert widget_code(src) == (expected, False)
    assert minified_widget(src, "it")[0] == minified_widget(src, "it")[0]
    (warning,) = _warnings(caplog)
    assert "missing" in warning and "make widget" in warning

    # Built again: the terser build is served again, without a warning.
    caplog.clear()
    shutil.copy2(build_path(SOURCE), build)
    _touch_later(build)
    assert minified_widget(src, "de") == fresh["de"]
    assert _warnings(caplog) == []


def test_an_edited_source_makes_the_build_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Editing widget.js without `make widget` serves the edit (rjsmin), not the old build."""
    src = _widget_copy(tmp_path / "w")
    assert widget_code(src)[1]
    src.write_text(src.read_text(encoding="utf-8") + "\n// edited\nvar  edited = 1 ;\n")
    _touch_later(src)
    code, terser = widget_code(src)
    assert not terser and code.endswith(b"var edited=1;")
    assert len(_warnings(caplog)) == 1
