"""Raw 8-bit bytes in mail headers, read before the header parser sees them. No I/O.

Headers must be ASCII (or UTF-8 with SMTPUTF8), but real clients still write Latin-1
subjects and attachment names unencoded. Python's parser reads such a byte as an
unknown character and the header comes out with "�" (``Ver�o``, ``Fr�sche.txt``), too
late for any repair. :func:`utf8_headers` rewrites the header lines of the mail and of
each MIME part beforehand: a line that is valid UTF-8 stays as it is, any other is read
as windows-1252 and written as UTF-8, which the parser then reads correctly. Bodies
are never touched (their charset is declared, and the parser decodes them by it).
"""

from __future__ import annotations

import re

__all__ = ["utf8_headers"]

_BOUNDARY = re.compile(rb'boundary\s*=\s*(?:"([^"\r\n]+)"|([^\s;"]+))', re.IGNORECASE)


def _as_utf8(line: bytes) -> bytes:
    """``line`` as UTF-8: kept when it is valid UTF-8, else read as windows-1252."""
    if line.isascii():
        return line
    try:
        line.decode("utf-8")
        return line
    except UnicodeDecodeError:
        pass
    try:
        text = line.decode("cp1252")
    except UnicodeDecodeError:  # the five bytes windows-1252 leaves undefined
        text = line.decode("latin-1")
    return text.encode("utf-8")


def utf8_headers(raw: bytes) -> bytes:
    """``raw`` with every header line (the mail's, and each MIME part's after its
    boundary line) in UTF-8; body lines unchanged, line endings kept."""
    if raw.isascii():
        return raw
    out: list[bytes] = []
    boundaries: set[bytes] = set()
    in_headers = True
    for line in raw.splitlines(keepends=True):
        if in_headers:
            if not line.strip(b"\r\n"):
                in_headers = False  # the blank line that ends a header block
            else:
                line = _as_utf8(line)
                for match in _BOUNDARY.finditer(line):
                    boundaries.add(match.group(1) or match.group(2))
        elif line.startswith(b"--") and line[2:].rstrip(b" \t\r\n") in boundaries:
            in_headers = True  # a part starts: its headers follow
        out.append(line)
    return b"".join(out)
