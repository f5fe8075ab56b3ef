"""The new part of a reply: quoted history cut off. No I/O.

Recognizes the attribution lines and header blocks of common mail clients in English,
German, French and Italian ("On ... wrote:", "Am ... schrieb ...:", "-----Original Message-----",
Outlook's "From:/Sent:/To:/Subject:" block) and ``>``-quoted lines.
"""

from __future__ import annotations

import re

__all__ = ["strip_quoted_reply"]

_ON_WROTE = re.compile(r"On\b.{0,300}\bwrote\s*:", re.IGNORECASE | re.DOTALL)
_AM_SCHRIEB = re.compile(r"Am\b.{0,300}\bschrieb\b.{0,300}:", re.IGNORECASE | re.DOTALL)
_LE_ECRIT = re.compile(r"Le\b.{0,300}\ba\s+écrit\s*:", re.IGNORECASE | re.DOTALL)
_IL_SCRITTO = re.compile(r"Il\b.{0,300}\bha\s+scritto\s*:", re.IGNORECASE | re.DOTALL)
_ORIGINAL = re.compile(
    r"-{2,}\s*(?:original message|ursprüngliche nachricht|originalnachricht"
    r"|message d'origine|messaggio originale)\s*-{2,}",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"_{8,}")
_HDR_FROM = re.compile(r"\**(?:from|von|de|da)\**\s*:\s*\**\s*\S", re.IGNORECASE)
_HDR_DATE = re.compile(r"\**(?:sent|gesendet|date|datum|envoyé|inviato|data)\**\s*:", re.IGNORECASE)
_HDR_TO = re.compile(r"\**(?:to|an|à|a|cc)\**\s*:", re.IGNORECASE)
_HDR_SUBJECT = re.compile(r"\**(?:subject|betreff|objet|oggetto)\**\s*:", re.IGNORECASE)


def _attribution_at(lines: list[str], index: int) -> bool:
    """Does an "On <date>, <who> wrote:" style line (possibly wrapped) start here?"""
    first = lines[index].strip()
    if not first[:3].lower().startswith(("on ", "am ", "le ", "il ")):
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
            for pattern in (_ON_WROTE, _AM_SCHRIEB, _LE_ECRIT, _IL_SCRITTO):
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
