"""The widget's minified code: the terser build when it is current, else rjsmin.

``make widget`` (widget/build.mjs, terser pinned in widget/package-lock.json) writes
``widget/dist/widget.min.js``, checked in, whose first line names the source it was
built from: ``/*! chatserver widget sha256:<hex of widget.js> */``. :func:`widget_code`
serves that build while the hash matches ``widget.js``; when the build is missing or
stale it minifies the source with rjsmin (whitespace only, larger) and logs one warning
per source/build state, so an edit to widget.js works at once and says what to run.

The I18N marker survives either way, in single quotes (rjsmin) or double (terser):
:data:`I18N_MARKS`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

log = logging.getLogger("chatserver.web.widget_build")

# The build's first line: the SHA-256 of the widget.js bytes it was built from.
BUILD_HEADER = re.compile(rb"\A/\*! chatserver widget sha256:([0-9a-f]{64}) \*/\n")
# The string widget.js has where the served copy carries its language data, as the
# source and rjsmin write it, and as terser does.
I18N_MARKS = (b"'@@CHATSERVER_I18N@@'", b'"@@CHATSERVER_I18N@@"')

_CACHE: dict[Path, tuple[tuple[object, ...], bytes, bool]] = {}


def build_path(source: Path) -> Path:
    """Where ``make widget`` writes the build of ``source``: ``dist/<stem>.min.js``."""
    return source.parent / "dist" / f"{source.stem}.min.js"


def _state(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


def build_is_current(source: bytes, build: bytes) -> bool:
    """Whether ``build`` (a widget.min.js) was built from ``source`` (widget.js bytes)."""
    header = BUILD_HEADER.match(build)
    return header is not None and header[1].decode() == hashlib.sha256(source).hexdigest()


def widget_code(source: Path) -> tuple[bytes, bool]:
    """``source`` (widget.js) minified, without its build header, and whether it is the
    terser build (True) or the rjsmin fallback (False, after one warning).

    Cached; computed again when the source's or the build's mtime (or size) changes, or
    the build appears or goes away. Raises ``FileNotFoundError`` if ``source`` is missing.
    """
    build = build_path(source)
    key: tuple[object, ...] = (_state(source), _state(build))
    cached = _CACHE.get(source)
    if cached is not None and cached[0] == key:
        return cached[1], cached[2]
    raw = source.read_bytes()
    built = build.read_bytes() if key[1] is not None else None
    if built is not None and build_is_current(raw, built):
        code, terser = BUILD_HEADER.sub(b"", built, count=1).rstrip(b"\n"), True
    else:
        import rjsmin  # type: ignore[import-untyped]

        why = "missing" if built is None else "stale (built from another widget.js)"
        log.warning(
            "widget build %s is %s: serving widget.js minified with rjsmin (larger); "
            "run `make widget`",
            build,
            why,
        )
        code, terser = str(rjsmin.jsmin(raw.decode("utf-8"))).encode(), False
    _CACHE[source] = (key, code, terser)
    return code, terser
