"""Reading inbound mail: raw RFC 5322 bytes to an :class:`~chatserver.mail.model.InboundMail`.

:func:`parse_inbound` is lenient with what real mail clients send (8-bit headers,
broken charsets, format=flowed, bare message ids) and strict where it matters: the
sender must be a usable address, file names come out safe, quoted history is cut
(:mod:`~chatserver.mail.quoted_reply`), an HTML-only body becomes text
(:mod:`~chatserver.mail.html_text`), and automatic mail (auto-replies, bounces) is
flagged so nobody answers it. CPU only, no I/O: callers run it off the event loop for
big mail.
"""

from __future__ import annotations

import email.errors
import email.headerregistry
import email.utils
import io
import logging
import re
import unicodedata
from collections.abc import Iterator
from email.generator import BytesGenerator
from email.message import EmailMessage, Message
from email.parser import BytesParser

from chatserver.i18n.languages import from_header
from chatserver.mail.headers8bit import utf8_headers
from chatserver.mail.html_text import html_to_text
from chatserver.mail.model import DEFAULT_MAX_BYTES, InboundMail, MailAttachment, MailError
from chatserver.mail.quoted_reply import strip_quoted_reply
from chatserver.mail.sanitize import POLICY, clean_body, fix_surrogates, one_line, safe_filename

log = logging.getLogger("chatserver.mail.parse")

__all__ = ["MAX_SUBJECT_CHARS", "parse_inbound", "ticket_number_in"]

MAX_SUBJECT_CHARS = 300
_MSGID_TOKEN = re.compile(r"<[^<>\s]+>")


def _header(msg: Message, name: str) -> str | None:
    """A header's decoded value, or None when absent or unreadable."""
    try:
        value = msg.get(name)
        return None if value is None else fix_surrogates(str(value))
    except Exception:  # malformed headers can make the stdlib parser raise
        return None


def _normalize_msgid(value: str) -> str | None:
    value = one_line(value)
    match = _MSGID_TOKEN.search(value)
    if match:
        return match.group(0)
    token = value.strip().strip("<>").strip()
    if token and not any(ch.isspace() or ch in "<>" for ch in token):
        return f"<{token}>"
    return None


def _msgids(value: str) -> list[str]:
    value = one_line(value)
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


# ------------------------------------------------------------------ bodies and parts


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
    text = clean_body(text)
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
    policy = POLICY.clone(linesep="\r\n")
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
                raw_name = f"{one_line(subject or '')[:150] or 'message'}.eml"
            yield MailAttachment(safe_filename(raw_name), ctype, data)
            return
        if disposition != "attachment":
            if in_related and part.get("Content-ID"):
                return  # an image embedded in the HTML body (logos, signatures)
            if not raw_name and maintype == "text":
                return  # an alternative text body we did not pick
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        yield MailAttachment(safe_filename(raw_name), ctype, data)

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
        local = fix_surrogates(local).strip()
        domain = fix_surrogates(domain).strip()
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
        display = one_line(name)[:200] or None
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
        if re.fullmatch(r"\s*<\s*>\s*", fix_surrogates(str(value))):
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
        msg = BytesParser(policy=POLICY).parsebytes(utf8_headers(raw))
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

    subject = one_line(_header(msg, "Subject") or "")[:MAX_SUBJECT_CHARS]
    msgid_raw = _header(msg, "Message-ID")
    message_id = _normalize_msgid(msgid_raw) if msgid_raw else None

    references: dict[str, None] = {}  # ordered set
    for name in ("In-Reply-To", "References"):
        for value in msg.get_all(name) or ():
            references.update(dict.fromkeys(_msgids(fix_surrogates(str(value)))))

    plain = _find_body(msg, "plain")
    html = _find_body(msg, "html")
    text = _part_text(plain) if plain is not None else ""
    body_parts: tuple[Message, ...] = (plain,) if plain is not None else ()
    if not text.strip() and html is not None:
        text = html_to_text(_part_text(html))
        body_parts = (html,)
    elif html is not None:
        body_parts = (*body_parts, html)  # the HTML alternative is not an attachment
    if not text.strip() and msg.get_content_maintype() == "multipart" and not msg.is_multipart():
        # A broken multipart (its boundary never occurs): its body as it is, so the
        # content shows (the whole mail is kept as the original .eml anyway).
        payload = msg.get_payload()
        text = clean_body(fix_surrogates(payload)) if isinstance(payload, str) else ""
    full_text = text.strip("\n") if text.strip() else ""
    text = strip_quoted_reply(full_text) if full_text else ""

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
        language=_language(msg, plain),
        full_text=full_text,
    )


def _language(msg: Message, body: Message | None) -> str | None:
    """The supported language the mail's ``Content-Language`` (of the mail, else of
    its text part), else its ``Accept-Language``, names first."""
    for part, name in ((msg, "Content-Language"), (body, "Content-Language")):
        if part is not None:
            found = from_header(_header(part, name))
            if found is not None:
                return found
    return from_header(_header(msg, "Accept-Language"))
