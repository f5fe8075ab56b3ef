"""HTML mail bodies as readable plain text. No I/O.

:func:`html_to_text` is used when a mail has no usable plain-text part. Hostile markup
cannot make it slow: the input is rewritten in one linear pass (:func:`_defuse_html`)
before :class:`html.parser.HTMLParser` sees it.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_SKIP_TAGS = frozenset({"script", "style", "title", "template"})
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5",
        "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
        "tbody", "tfoot", "thead", "tr", "ul", "caption",
    }
)  # fmt: skip
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._cur: list[str] = []
        self._has_content = False
        self._skip: list[str] = []
        self._quote = 0
        self._pre = 0
        self._links: list[tuple[str, list[str]]] = []  # at most one open link

    # output ------------------------------------------------------------------
    def _emit(self, text: str) -> None:
        for _, captured in self._links:
            captured.append(text)
        self._cur.append(text)

    def _flush(self, *, hard: bool) -> None:
        if not hard and not self._has_content:
            self._cur.clear()
            return
        joined = "".join(self._cur)
        line = joined.rstrip(" ") if self._pre else joined.strip(" ")
        prefix = ">" * self._quote
        self.lines.append(f"{prefix} {line}" if prefix and line else prefix + line)
        self._cur.clear()
        self._has_content = False

    def _end_link(self) -> None:
        if not self._links:
            return
        href, captured = self._links.pop()
        shown = "".join(captured).strip()
        if href.lower().startswith(("http://", "https://")) and href not in shown:
            self._space()
            self._emit(f"({href})" if shown else href)
            self._has_content = True

    def _space(self) -> None:
        if self._cur and not self._cur[-1].endswith(" "):
            self._emit(" ")

    # parser callbacks --------------------------------------------------------
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._skip.clear()
            return
        if tag in _SKIP_TAGS:
            self._skip.append(tag)
            return
        if self._skip:
            return
        if tag == "br":
            self._flush(hard=True)
        elif tag in _BLOCK_TAGS:
            self._flush(hard=False)
            if tag == "blockquote":
                self._quote += 1
            elif tag == "pre":
                self._pre += 1
            elif tag == "li":
                self._cur.append("- ")
        elif tag in ("td", "th"):
            self._space()
        elif tag == "a":
            self._end_link()  # links do not nest; an open one ends here
            href = dict(attrs).get("href") or ""
            self._links.append((href.strip(), []))

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            if tag in self._skip:
                while self._skip and self._skip.pop() != tag:
                    pass
            return
        if self._skip:
            return
        if tag in _BLOCK_TAGS:
            self._flush(hard=False)
            if tag == "blockquote" and self._quote:
                self._quote -= 1
            elif tag == "pre" and self._pre:
                self._pre -= 1
        elif tag in ("td", "th"):
            self._space()
        elif tag == "a":
            self._end_link()

    def handle_data(self, data: str) -> None:
        if self._skip or not data:
            return
        if self._pre:
            parts = data.replace("\r\n", "\n").split("\n")
            for index, part in enumerate(parts):
                if index:
                    self._flush(hard=True)
                if part:
                    self._emit(part)
                    self._has_content = True
            return
        text = _HTML_SPACE.sub(" ", data)
        if text.startswith(" ") and (not self._cur or self._cur[-1].endswith(" ")):
            text = text[1:]
        if text:
            self._emit(text)
            if text.strip(" "):
                self._has_content = True

    def finish(self) -> str:
        self.close()
        self._flush(hard=False)
        out: list[str] = []
        for line in self.lines:
            line = line.replace("\xa0", " ").rstrip()
            if not line and (not out or not out[-1]):
                continue
            out.append(line)
        while out and not out[-1]:
            out.pop()
        return "\n".join(out)


_TAG_START = re.compile(r"</?([A-Za-z][A-Za-z0-9:_-]*)")
_BALANCED_QUOTES = re.compile(r"""(?:[^'"]|"[^"]*"|'[^']*')*""")
_MAX_TAG_CHARS = 4096


def _defuse_html(html: str) -> str:
    """Rewrite HTML so html.parser never rescans the input (it is quadratic or worse on
    malformed markup): stray ``<`` escaped, comments and ``<!...>``/``<?...>`` dropped,
    huge or quote-unbalanced tags reduced to their bare name. Linear time.
    """
    out: list[str] = []
    length = len(html)
    pos = 0
    next_gt = -1  # cached position of the next ">" (length: there is none)
    while pos < length:
        lt = html.find("<", pos)
        if lt < 0:
            out.append(html[pos:])
            break
        out.append(html[pos:lt])
        if html.startswith("<!--", lt):
            end = html.find("-->", lt + 4)
            if end < 0:
                break  # an unterminated comment hides the rest, as in browsers
            pos = end + 3
            continue
        if next_gt <= lt:
            next_gt = html.find(">", lt + 1)
            if next_gt < 0:
                next_gt = length
        tag = _TAG_START.match(html, lt, next_gt)
        if next_gt == length or html.find("<", lt + 1, next_gt) >= 0:
            tag = None
        if tag is None:
            if next_gt < length and html.startswith(("<!", "<?"), lt):
                if html.find("<", lt + 1, next_gt) < 0:
                    pos = next_gt + 1  # doctype, marked section, processing instruction
                    continue
            out.append("&lt;")
            pos = lt + 1
            continue
        token = html[lt : next_gt + 1]
        if len(token) > _MAX_TAG_CHARS or not _BALANCED_QUOTES.fullmatch(token):
            token = ("</" if token[1] == "/" else "<") + tag.group(1) + ">"
        out.append(token)
        pos = next_gt + 1
    return "".join(out)


def html_to_text(html: str) -> str:
    """Readable plain text from HTML.

    Tags dropped, script/style/title content dropped, entities unescaped, ``<br>`` and
    block elements (``<p>``, ``<div>``, ``<li>``, ...) become line breaks, list items get
    a ``- `` bullet, ``<blockquote>`` lines get a ``>`` prefix (so strip_quoted_reply
    removes them) and http(s) links whose text differs show the URL in parentheses.
    """
    parser = _TextExtractor()
    parser.feed(_defuse_html(html))
    return parser.finish()
