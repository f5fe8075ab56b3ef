"""E-mail channel building blocks for support tickets.

Inbound: :func:`parse_inbound` turns raw RFC 5322 bytes into an :class:`InboundMail`
(sender, subject, reply text without quoted history, attachments, ticket number,
auto-reply flag). :class:`SmtpListener` is a small SMTP server in the running asyncio
loop that hands every accepted mail to a callback.

Outbound: :func:`build_message` makes a plain-text reply (never HTML), :class:`Mailer`
sends it over SMTP.

Every failure a caller should handle is a :class:`MailError`.
"""

from __future__ import annotations

import asyncio
import email.errors
import email.headerregistry
import email.policy
import email.utils
import io
import logging
import re
import secrets
import unicodedata
import weakref
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser
from html.parser import HTMLParser

import aiosmtplib
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger("chatserver.mail")

__all__ = [
    "InboundHandler",
    "InboundMail",
    "MailAttachment",
    "MailError",
    "Mailer",
    "OutboundMail",
    "SmtpListener",
    "build_message",
    "html_to_text",
    "make_message_id",
    "parse_inbound",
    "strip_quoted_reply",
    "ticket_number_in",
]

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
MAX_SUBJECT_CHARS = 300
MAX_FILENAME_CHARS = 200
_POLICY = email.policy.default


class MailError(Exception):
    """Mail could not be parsed or sent; message says why."""


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class MailAttachment:
    """One attached file. Inbound filenames are already sanitized (safe as a bare name)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A parsed incoming mail. Never answer it when ``auto_submitted`` is True.

    ``ticket_number`` comes from the subject, which anyone can write: check that
    ``sender`` belongs to that ticket before attaching the mail to it.
    """

    sender: str
    sender_name: str | None
    subject: str
    message_id: str | None
    references: tuple[str, ...]
    text: str
    attachments: tuple[MailAttachment, ...]
    ticket_number: int | None
    auto_submitted: bool


@dataclass(frozen=True, slots=True)
class OutboundMail:
    """A plain-text mail to send. ``references`` are oldest first; the last is replied to."""

    to: str
    subject: str
    text: str
    message_id: str
    references: tuple[str, ...] = ()
    attachments: tuple[MailAttachment, ...] = ()
    reply_to: str | None = None


# ------------------------------------------------------------------ small helpers

_LINE_BREAKS = frozenset("\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_MSGID_TOKEN = re.compile(r"<[^<>\s]+>")
_MSGID_FULL = re.compile(r"<[^<>\s\x00-\x1f\x7f]+>")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")  # can spoof displayed text
_BODY_JUNK = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")


def _fix_surrogates(value: str) -> str:
    """Decode raw 8-bit header bytes (surrogate-escaped by the parser): UTF-8, else cp1252."""
    if not _ESCAPED_BYTE.search(value):
        return value
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return "".join("\ufffd" if unicodedata.category(ch) == "Cs" else ch for ch in value)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def _one_line(value: str) -> str:
    """Control and bidi-override characters dropped, whitespace runs collapsed to one space."""
    value = _BIDI_CONTROLS.sub("", value)
    value = "".join(
        " " if ch in _LINE_BREAKS or ch == "\t" else ch
        for ch in _fix_surrogates(value)
        if ch in _LINE_BREAKS or ch == "\t" or unicodedata.category(ch) not in ("Cc", "Cs")
    )
    return " ".join(value.split())


def _header(msg: Message, name: str) -> str | None:
    """A header's decoded value, or None when absent or unreadable."""
    try:
        value = msg.get(name)
        return None if value is None else _fix_surrogates(str(value))
    except Exception:  # malformed headers can make the stdlib parser raise
        return None


def _safe_filename(name: str | None, fallback: str = "attachment") -> str:
    """A bare file name: no directories, no control/bidi characters, at most 200 chars."""
    if not name:
        return fallback
    name = _fix_surrogates(name)
    name = "".join(
        ch for ch in name if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Zl", "Zp")
    )
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = " ".join(name.split()).strip(" .")
    if not name:
        return fallback
    if len(name) > MAX_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        if dot and stem and 0 < len(ext) <= 16:
            name = stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_FILENAME_CHARS].rstrip(" .")
    return name or fallback


def _normalize_msgid(value: str) -> str | None:
    value = _one_line(value)
    match = _MSGID_TOKEN.search(value)
    if match:
        return match.group(0)
    token = value.strip().strip("<>").strip()
    if token and not any(ch.isspace() or ch in "<>" for ch in token):
        return f"<{token}>"
    return None


def _msgids(value: str) -> list[str]:
    value = _one_line(value)
    found = _MSGID_TOKEN.findall(value)
    if found:
        return found
    # Broken clients write bare ids without angle brackets.
    return [f"<{tok}>" for tok in value.split() if "@" in tok and "<" not in tok and ">" not in tok]


# ------------------------------------------------------------------ ticket numbers

_TICKET_REF = re.compile(r"#([1-9][0-9]{5,17})(?![0-9])")
_BRACKETED = re.compile(r"\[[^\[\]]*\]")


def ticket_number_in(subject: str) -> int | None:
    """The ticket number referenced as ``#100042`` (>= 100000), preferring one in ``[...]``.

    Subjects are user-controlled: treat the result as a hint, not as authorization.
    """
    matches = list(_TICKET_REF.finditer(subject))
    if not matches:
        return None
    spans = [m.span() for m in _BRACKETED.finditer(subject)]
    for match in matches:
        if any(start < match.start() and match.end() < end for start, end in spans):
            return int(match.group(1))
    return int(matches[0].group(1))


# -------------------------------------------------------------------- html to text

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


# ------------------------------------------------------------- quoted reply history

_ON_WROTE = re.compile(r"On\b.{0,300}\bwrote\s*:", re.IGNORECASE | re.DOTALL)
_AM_SCHRIEB = re.compile(r"Am\b.{0,300}\bschrieb\b.{0,300}:", re.IGNORECASE | re.DOTALL)
_LE_ECRIT = re.compile(r"Le\b.{0,300}\ba\s+écrit\s*:", re.IGNORECASE | re.DOTALL)
_ORIGINAL = re.compile(
    r"-{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht"
    r"|message d'origine)\s*-{2,}",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"_{8,}")
_HDR_FROM = re.compile(r"\**(?:from|von|de)\**\s*:\s*\**\s*\S", re.IGNORECASE)
_HDR_DATE = re.compile(r"\**(?:sent|gesendet|date|datum|envoyé)\**\s*:", re.IGNORECASE)
_HDR_TO = re.compile(r"\**(?:to|an|à|cc)\**\s*:", re.IGNORECASE)
_HDR_SUBJECT = re.compile(r"\**(?:subject|betreff|objet)\**\s*:", re.IGNORECASE)


def _attribution_at(lines: list[str], index: int) -> bool:
    """Does an "On <date>, <who> wrote:" style line (possibly wrapped) start here?"""
    first = lines[index].strip()
    if not first[:3].lower().startswith(("on ", "am ", "le ")):
        return False
    joined = first
    for extra in range(3):
        if extra:
            if index + extra >= len(lines) or not lines[index + extra].strip():
                return False
            joined += " " + lines[index + extra].strip()
        if len(joined) > 400:
            return False
        if joined.endswith(":") and any(ch.isdigit() for ch in joined):
            for pattern in (_ON_WROTE, _AM_SCHRIEB, _LE_ECRIT):
                if pattern.fullmatch(joined):
                    return True
    return False


def _outlook_block_at(lines: list[str], index: int) -> bool:
    """Does an Outlook "From:/Sent:/To:/Subject:" (or "Von:/Gesendet:/...") block start here?"""
    if not _HDR_FROM.match(lines[index].strip()):
        return False
    seen = {"date": False, "to": False, "subject": False}
    for line in lines[index + 1 : index + 8]:
        line = line.strip()
        if _HDR_DATE.match(line):
            seen["date"] = True
        elif _HDR_TO.match(line):
            seen["to"] = True
        elif _HDR_SUBJECT.match(line):
            seen["subject"] = True
    return sum(seen.values()) >= 2


def _quote_start(lines: list[str]) -> int | None:
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(">"):
            continue
        if _ORIGINAL.fullmatch(stripped) or _attribution_at(lines, index):
            return index
        if _outlook_block_at(lines, index):
            # Outlook puts a line of underscores (and blank lines) above the block.
            start = index
            while start > 0 and (
                not lines[start - 1].strip() or _UNDERSCORES.fullmatch(lines[start - 1].strip())
            ):
                start -= 1
            return start
        if _UNDERSCORES.fullmatch(stripped) and index + 1 < len(lines):
            nxt = index + 1
            while nxt < len(lines) and not lines[nxt].strip():
                nxt += 1
            if nxt < len(lines) and _outlook_block_at(lines, nxt):
                return index
    return None


def strip_quoted_reply(text: str) -> str:
    """The new part of a reply: quoted history and ``>`` lines removed.

    Everything from the first quote header ("On ... wrote:", "Am ... schrieb ...:",
    "-----Original Message-----", an Outlook "From:/Von:" block) onward is dropped, as
    are all ``>``-quoted lines. Returns the original text if nothing would remain.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = _quote_start(lines)
    if cut is not None:
        lines = lines[:cut]
    kept: list[str] = []
    for line in lines:
        if line.lstrip().startswith(">"):
            continue
        line = line.rstrip()
        if not line and (not kept or not kept[-1]):
            continue
        kept.append(line)
    result = "\n".join(kept).strip("\n")
    if not result.strip():
        return text.strip() or text
    return result


# ------------------------------------------------------------------ inbound parsing


def _unflow(text: str, *, delsp: bool) -> str:
    """Undo RFC 3676 format=flowed soft line breaks."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0

    def render(depth: int, content: str) -> str:
        return (">" * depth + " " + content) if depth and content else ">" * depth + content

    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        is_signature = content == "-- "
        if pending is not None:
            if depth == pending_depth and not is_signature:
                content = pending + content
            else:
                out.append(render(pending_depth, pending))
            pending = None
        if content.endswith(" ") and not is_signature:
            pending = content[:-1] if delsp else content
            pending_depth = depth
        else:
            out.append(render(depth, content))
    if pending is not None:
        out.append(render(pending_depth, pending))
    return "\n".join(out)


def _clean_body(text: str) -> str:
    """Newlines normalized to \\n; control characters (except tab/newline) dropped."""
    text = _fix_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
    return _BODY_JUNK.sub("", text)


def _part_text(part: Message) -> str:
    try:
        content = part.get_content()  # type: ignore[attr-defined]
        if isinstance(content, str):
            text = content
        else:
            raise TypeError("not text")
    except Exception:  # unknown charset, broken encoding: decode leniently
        payload = part.get_payload(decode=True)
        raw = payload if isinstance(payload, bytes) else b""
        text = raw.decode("utf-8", "replace")
    text = _clean_body(text)
    if part.get_content_subtype() == "plain":
        fmt = str(part.get_param("format", "") or "").lower()
        if fmt == "flowed":
            delsp = str(part.get_param("delsp", "") or "").lower() == "yes"
            text = _unflow(text, delsp=delsp)
    return text


def _find_body(msg: Message, subtype: str) -> Message | None:
    get_body = getattr(msg, "get_body", None)
    if get_body is None:
        return None
    try:
        body = get_body(preferencelist=(subtype,))
    except Exception:
        return None
    return body if isinstance(body, Message) else None


def _serialize(msg: EmailMessage) -> bytes:
    buf = io.BytesIO()
    policy = _POLICY.clone(linesep="\r\n")
    BytesGenerator(buf, mangle_from_=False, policy=policy).flatten(msg)
    return buf.getvalue()


def _iter_attachments(msg: Message, body_parts: tuple[Message, ...]) -> Iterator[MailAttachment]:
    def visit(part: Message, in_related: bool) -> Iterator[MailAttachment]:
        if any(part is body for body in body_parts):
            return
        ctype = part.get_content_type()
        maintype = part.get_content_maintype()
        disposition = part.get_content_disposition()
        try:
            raw_name = part.get_filename()
        except Exception:
            raw_name = None
        if maintype == "multipart":
            subparts = part.get_payload()
            if isinstance(subparts, list):
                related = part.get_content_subtype() == "related"
                for index, sub in enumerate(subparts):
                    if isinstance(sub, Message):
                        # The first part of multipart/related is its root, not a resource.
                        yield from visit(sub, related and index > 0)
            return
        if maintype == "message":
            payload = part.get_payload()
            if isinstance(payload, list):
                data = b"".join(_serialize(sub) for sub in payload if isinstance(sub, EmailMessage))
            else:
                decoded = part.get_payload(decode=True)
                data = decoded if isinstance(decoded, bytes) else b""
            if not raw_name and ctype in ("message/rfc822", "message/global"):
                inner = payload[0] if isinstance(payload, list) and payload else None
                subject = _header(inner, "Subject") if isinstance(inner, Message) else None
                raw_name = f"{_one_line(subject or '')[:150] or 'message'}.eml"
            yield MailAttachment(_safe_filename(raw_name), ctype, data)
            return
        if disposition != "attachment":
            if in_related and part.get("Content-ID"):
                return  # an image embedded in the HTML body (logos, signatures)
            if not raw_name and maintype == "text":
                return  # an alternative text body we did not pick
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        yield MailAttachment(_safe_filename(raw_name), ctype, data)

    yield from visit(msg, False)


def _sender(msg: Message) -> tuple[str, str | None]:
    candidates: list[tuple[str, str, str]] = []  # (display name, local part, domain)
    try:
        header = msg.get("From")
        for addr in getattr(header, "addresses", ()):
            candidates.append((str(addr.display_name), str(addr.username), str(addr.domain)))
    except Exception:
        candidates = []
    if not candidates:
        raw = _header(msg, "From")
        if raw:
            for name, spec in email.utils.getaddresses([raw]):
                local, _, domain = spec.rpartition("@")
                candidates.append((name, local, domain))
    for name, local, domain in candidates:
        local = _fix_surrogates(local).strip()
        domain = _fix_surrogates(domain).strip()
        if (
            not local
            or not domain
            or any(
                ch.isspace() or ch in "<>@," or unicodedata.category(ch) in ("Cc", "Cf")
                for ch in domain
            )
        ):
            continue
        if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in local):
            continue
        try:
            address = email.headerregistry.Address(username=local, domain=domain).addr_spec
        except (ValueError, email.errors.HeaderParseError):
            continue
        display = _one_line(name)[:200] or None
        return address.lower(), display
    raise MailError("mail has no usable From address")


def _is_auto_submitted(msg: Message, sender: str) -> bool:
    auto = _header(msg, "Auto-Submitted")
    if auto is not None and auto.split(";")[0].strip().lower() != "no":
        return True
    for name in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        value = _header(msg, name)
        if value is not None and value.strip().lower() != "no":
            return True
    precedence = (_header(msg, "Precedence") or "").strip().lower()
    if precedence in ("bulk", "auto_reply", "junk"):
        return True
    for value in msg.get_all("Return-Path") or ():
        if re.fullmatch(r"\s*<\s*>\s*", _fix_surrogates(str(value))):
            return True
    if msg.get_content_type() == "multipart/report" or _header(msg, "X-Failed-Recipients"):
        return True  # delivery status notifications (bounces)
    return sender.partition("@")[0] == "mailer-daemon"


def parse_inbound(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> InboundMail:
    """Parse one raw mail as received (RFC 5322 bytes).

    Raises MailError when it is larger than ``max_bytes``, has no headers, or has no
    usable From address. Everything else is parsed leniently.
    """
    if len(raw) > max_bytes:
        raise MailError(f"mail too big: {len(raw)} bytes, limit {max_bytes}")
    try:
        msg = BytesParser(policy=_POLICY).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is a last resort
        raise MailError(f"not a mail: {exc}") from exc
    if not msg.keys():
        raise MailError("not a mail: no headers")
    try:
        return _parse(msg)
    except MailError:
        raise
    except Exception as exc:  # a safety net: the stdlib can still trip over hostile input
        log.warning("unparseable inbound mail", exc_info=True)
        raise MailError(f"unparseable mail: {type(exc).__name__}: {exc}") from exc


def _parse(msg: EmailMessage) -> InboundMail:
    sender, sender_name = _sender(msg)

    subject = _one_line(_header(msg, "Subject") or "")[:MAX_SUBJECT_CHARS]
    msgid_raw = _header(msg, "Message-ID")
    message_id = _normalize_msgid(msgid_raw) if msgid_raw else None

    references: dict[str, None] = {}  # ordered set
    for name in ("In-Reply-To", "References"):
        for value in msg.get_all(name) or ():
            references.update(dict.fromkeys(_msgids(_fix_surrogates(str(value)))))

    plain = _find_body(msg, "plain")
    html = _find_body(msg, "html")
    text = _part_text(plain) if plain is not None else ""
    body_parts: tuple[Message, ...] = (plain,) if plain is not None else ()
    if not text.strip() and html is not None:
        text = html_to_text(_part_text(html))
        body_parts = (html,)
    elif html is not None:
        body_parts = (*body_parts, html)  # the HTML alternative is not an attachment
    text = strip_quoted_reply(text.strip("\n")) if text.strip() else ""

    return InboundMail(
        sender=sender,
        sender_name=sender_name,
        subject=subject,
        message_id=message_id,
        references=tuple(references),
        text=text,
        attachments=tuple(_iter_attachments(msg, body_parts)),
        ticket_number=ticket_number_in(subject),
        auto_submitted=_is_auto_submitted(msg, sender),
    )


# ----------------------------------------------------------------------- outbound


def make_message_id(domain: str) -> str:
    """A fresh ``<random-hex@domain>`` Message-ID."""
    domain = domain.strip()
    if not domain or any(ch.isspace() or ch in "<>@" or ord(ch) < 32 for ch in domain):
        raise ValueError(f"bad message-id domain: {domain!r}")
    return f"<{secrets.token_hex(16)}@{domain}>"


def _reject_line_breaks(value: str, field: str) -> None:
    if any(ch in _LINE_BREAKS or unicodedata.category(ch) == "Cc" for ch in value):
        raise MailError(f"{field} must not contain line breaks or control characters")


def _address_of(value: str, field: str) -> str:
    """The bare address of a single-address header value ("Name <a@b>" or "a@b")."""
    _reject_line_breaks(value, field)
    header = _POLICY.header_factory(field, value)
    addresses: tuple[email.headerregistry.Address, ...] = getattr(header, "addresses", ())
    if len(addresses) != 1 or not addresses[0].username or not addresses[0].domain:
        raise MailError(f"{field} is not a single mail address: {value!r}")
    return str(addresses[0].addr_spec)


def build_message(mail: OutboundMail, sender: str) -> EmailMessage:
    """The plain-text UTF-8 message for ``mail``, From ``sender`` (``a@b`` or ``Name <a@b>``).

    Raises MailError for line breaks in addresses or subject, bad addresses or bad
    message ids. Other control characters in the subject are dropped.
    """
    _address_of(mail.to, "To")
    _address_of(sender, "From")
    if mail.reply_to is not None:
        _address_of(mail.reply_to, "Reply-To")
    if "\r" in mail.subject or "\n" in mail.subject:
        raise MailError("subject must not contain line breaks")
    subject = _one_line(mail.subject)
    for msgid in (mail.message_id, *mail.references):
        if not _MSGID_FULL.fullmatch(msgid):
            raise MailError(f"bad message id: {msgid!r}")

    msg = EmailMessage(policy=_POLICY)
    msg["From"] = sender
    msg["To"] = mail.to
    if mail.reply_to is not None:
        msg["Reply-To"] = mail.reply_to
    msg["Subject"] = subject
    msg["Date"] = email.utils.format_datetime(datetime.now(UTC))
    msg["Message-ID"] = mail.message_id
    if mail.references:
        msg["In-Reply-To"] = mail.references[-1]
        msg["References"] = " ".join(mail.references)
    msg["X-Chatserver"] = "1"

    body = _clean_body(mail.text)
    if not body.endswith("\n"):
        body += "\n"
    # Non-ASCII text goes quoted-printable so the mail stays 7-bit clean for any relay.
    cte = None if body.isascii() else "quoted-printable"
    msg.set_content(body, subtype="plain", charset="utf-8", cte=cte)

    for att in mail.attachments:
        filename = _safe_filename(att.filename)
        ctype = att.content_type.strip().lower()
        if ctype == "message/rfc822":
            inner = BytesParser(policy=_POLICY).parsebytes(att.data)
            if inner.keys():
                msg.add_attachment(inner, filename=filename)
                continue
        if not _CONTENT_TYPE.fullmatch(ctype) or ctype.split("/")[0] in ("multipart", "message"):
            ctype = "application/octet-stream"
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


class Mailer:
    """Sends :class:`OutboundMail` through one SMTP server (one connection per mail).

    ``starttls`` requires STARTTLS (no opportunistic upgrade otherwise); ``use_tls`` is
    implicit TLS (port 465). Certificates are verified.
    """

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        use_tls: bool = False,
        timeout: float = 10.0,
    ) -> None:
        if starttls and use_tls:
            raise ValueError("starttls and use_tls are mutually exclusive")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        try:
            self._envelope_from = _address_of(sender, "From")
        except MailError as exc:
            raise ValueError(str(exc)) from exc
        self.host = host
        self.port = port
        self.sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._use_tls = use_tls
        self._timeout = timeout

    async def send(self, mail: OutboundMail) -> None:
        """Send ``mail``; MailError (naming host:port and the reason) on any failure."""
        msg = build_message(mail, self.sender)
        recipient = _address_of(mail.to, "To")
        try:
            await aiosmtplib.send(
                msg,
                sender=self._envelope_from,
                recipients=[recipient],
                hostname=self.host,
                port=self.port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._starttls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            reason = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise MailError(f"SMTP {self.host}:{self.port} refused: {reason}") from exc
        except aiosmtplib.SMTPResponseException as exc:
            reason = f"{exc.code} {exc.message}"
            raise MailError(f"SMTP {self.host}:{self.port} refused: {reason}") from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError, UnicodeError) as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise MailError(f"SMTP {self.host}:{self.port} failed: {reason}") from exc


# ------------------------------------------------------------------- SMTP listener

InboundHandler = Callable[[bytes, str, list[str]], Awaitable[None]]
"""Receives (raw mail bytes, envelope MAIL FROM ("" for bounces), RCPT TO addresses).

Raise MailError to reject the mail permanently (SMTP 550 with its message); any other
exception answers 451 so the sending server retries later.
"""


def _smtp_reply_text(text: str) -> str:
    text = "".join(ch if " " <= ch <= "~" else " " for ch in text)
    return " ".join(text.split())[:400] or "rejected"


class _DataHandler:
    """aiosmtpd handler object: forwards each DATA to the InboundHandler."""

    def __init__(self, callback: InboundHandler) -> None:
        self._callback = callback
        self.in_flight: set[asyncio.Future[None]] = set()  # one per mail being handed over

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content
        if raw is None:
            content = envelope.content
            raw = (
                content.encode("utf-8", "surrogateescape")
                if isinstance(content, str)
                else (content or b"")
            )
        mail_from = envelope.mail_from or ""
        if mail_from == "<>":
            mail_from = ""
        done = asyncio.get_running_loop().create_future()
        self.in_flight.add(done)
        try:
            await self._callback(raw, mail_from, list(envelope.rcpt_tos))
        except MailError as exc:
            return f"550 {_smtp_reply_text(str(exc))}"
        except Exception:
            log.exception("inbound mail handler failed (peer %s)", session.peer)
            return "451 Requested action aborted: local error in processing"
        finally:
            self.in_flight.discard(done)
            done.set_result(None)
        return "250 OK"


class SmtpListener:
    """A built-in SMTP server (aiosmtpd) running in the current asyncio loop (NOT aiosmtpd's
    threaded Controller): uses loop.create_server with aiosmtpd.smtp.SMTP as protocol factory.

    Accepts any recipient and no AUTH/TLS: bind it to a trusted interface or put it
    behind a real MTA. Mails over ``max_bytes`` are refused with 552.
    """

    def __init__(
        self,
        handler: InboundHandler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        hostname: str = "chatserver",
    ) -> None:
        self._handler = _DataHandler(handler)
        self._host = host
        self._requested_port = port
        self._max_bytes = max_bytes
        self._hostname = hostname
        self._server: asyncio.Server | None = None
        self._protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def _make_protocol(self) -> SMTP:
        protocol = SMTP(
            self._handler,
            data_size_limit=self._max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=self._hostname,
            timeout=120,
            loop=asyncio.get_running_loop(),
        )
        self._protocols.add(protocol)
        return protocol

    async def start(self) -> None:
        """Bind and start accepting connections (raises OSError if the port is taken)."""
        if self._server is not None:
            raise RuntimeError("SmtpListener already started")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._make_protocol, host=self._host, port=self._requested_port
        )

    async def stop(self, grace: float = 10.0) -> None:
        """Stop accepting, wait up to ``grace`` s for mails being handed over, close all."""
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        in_flight = set(self._handler.in_flight)
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace)
        protocols = list(self._protocols)
        tasks = [p._handler_coroutine for p in protocols if p._handler_coroutine is not None]
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await server.wait_closed()

    @property
    def port(self) -> int:
        """The bound port (useful with port=0)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("SmtpListener is not running")
        return int(self._server.sockets[0].getsockname()[1])
