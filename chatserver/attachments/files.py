"""Attachments: type detection by content, and storage outside any served folder.

The type of a file is decided by its bytes (magic numbers), never by the name
or the declared content type. The name's extension must agree with what the
bytes are, so a script renamed ``invoice.pdf`` is refused. Files are stored
under random names in ``<data_dir>/attachments/``; the original name lives in
the database only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import re
import secrets
import shutil
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

from chatserver.attachments.blobs import CHUNK_BYTES, StoredBlob, limited
from chatserver.errors import NotFound, UnsupportedType


@dataclasses.dataclass(frozen=True, slots=True)
class Kind:
    content_type: str
    extensions: frozenset[str]  # allowed name extensions ("" = none)
    image: bool = False


PNG = Kind("image/png", frozenset({".png"}), image=True)
JPEG = Kind("image/jpeg", frozenset({".jpg", ".jpeg", ".jfif"}), image=True)
GIF = Kind("image/gif", frozenset({".gif"}), image=True)
WEBP = Kind("image/webp", frozenset({".webp"}), image=True)
PDF = Kind("application/pdf", frozenset({".pdf"}))
EML = Kind("message/rfc822", frozenset({".eml"}))
TEXT = Kind("text/plain", frozenset({".txt", ".log", ".csv", ".md", ".json", ""}))
MSG = Kind("application/vnd.ms-outlook", frozenset({".msg"}))
OLE = Kind("application/x-ole-storage", frozenset({".doc", ".xls", ".ppt"}))
OOXML: dict[str, Kind] = {
    ext: Kind(ct, frozenset({ext}))
    for ext, ct in {
        ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        ".odt": "application/vnd.oasis.opendocument.text",
        ".ods": "application/vnd.oasis.opendocument.spreadsheet",
        ".zip": "application/zip",
    }.items()
}

# sniff() reads at most this many bytes from the start: a caller may pass just those.
SNIFF_BYTES = 65536
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_MAIL_HEADER = re.compile(
    rb"^(?:return-path|received|from|to|subject|date|message-id|mime-version|delivered-to"
    rb"|x-[a-z0-9-]+|reply-to|cc|dkim-signature|arc-[a-z-]+|authentication-results):",
    re.IGNORECASE,
)
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MARKUP = re.compile(rb"<\s*(?:!doctype|html|script|svg|iframe|object|body|head|meta)\b", re.I)


def extension(filename: str) -> str:
    """The lowercased extension of ``filename`` including the dot, or ``""``."""
    return os.path.splitext(filename)[1].lower()


def _text_like(data: bytes) -> bool:
    """Text in any ASCII-compatible encoding: no NUL or C0 control bytes but tab, CR, LF, FF."""
    return not _CONTROL.search(data[:SNIFF_BYTES])


def sniff(data: bytes, filename: str) -> Kind:
    """What ``data`` is, checked against the allowlist and against ``filename``.

    Raises :class:`UnsupportedType` when the content is not allowed or the
    name's extension says something else than the bytes.
    """
    ext = extension(filename)
    kind: Kind | None = None
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = PNG
    elif data.startswith(b"\xff\xd8\xff"):
        kind = JPEG
    elif data.startswith((b"GIF87a", b"GIF89a")):
        kind = GIF
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = WEBP
    elif data.startswith(b"%PDF-"):
        kind = PDF
    elif data.startswith(_OLE_MAGIC):
        kind = MSG if ext == ".msg" else OLE
    elif data.startswith(b"PK\x03\x04"):
        kind = OOXML.get(ext)
        if kind is None:
            raise UnsupportedType("a ZIP archive must be named .zip, .docx, .xlsx, .pptx or .od*")
    elif _text_like(data):
        if _MARKUP.search(data[:SNIFF_BYTES]):
            raise UnsupportedType("HTML, SVG and other markup files are not accepted")
        first = data.lstrip()[:200]
        kind = EML if ext == ".eml" or _MAIL_HEADER.match(first) else TEXT
    if kind is None:
        raise UnsupportedType("this type of file is not accepted")
    if ext not in kind.extensions:
        if kind is EML and ext in TEXT.extensions:
            return TEXT  # a text file that happens to start like a mail
        if kind is TEXT and ext == ".eml":
            return EML
        raise UnsupportedType(
            f"the file name ends in {ext or 'nothing'!r} but the content is {kind.content_type}"
        )
    return kind


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_UNSAFE = re.compile(r"[/\\:*?\"<>|]")


def clean_filename(name: str | None) -> str:
    """A display name: no path parts, no control or reserved characters, ≤ 150 chars."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", _CONTROL_CHARS.sub("", name)).strip(" .")
    if not name:
        return "attachment"
    if len(name) > 150:
        stem, ext = os.path.splitext(name)
        name = stem[: 150 - len(ext[:20])] + ext[:20]
    return name


@dataclasses.dataclass(slots=True)
class AttachmentRecord:
    attachment_id: str
    owner: str  # "s:<session id>" or "t:<ticket number>"
    filename: str
    content_type: str
    size: int
    sha256: str
    storage: str  # path relative to the attachment folder
    uploaded_by: str  # "visitor", "operator:<id>", "mail:<address>", "system"
    created_at: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.attachment_id,
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
        }

    @property
    def is_image(self) -> bool:
        return self.content_type in {
            PNG.content_type,
            JPEG.content_type,
            GIF.content_type,
            WEBP.content_type,
        }


class FileStore:
    """Attachment bytes on disk under random names (never served directly).

    A :class:`~chatserver.attachments.blobs.BlobStore`: ``root`` is
    ``<data_dir>/attachments``, or a directory every node mounts
    (``CHATSERVER_ATTACHMENTS_DIR``). A file appears under its name only once it is
    complete and fsynced (written as ``.part``, then renamed).
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, storage: str) -> Path:
        return self.root / storage

    def _target(self, storage: str) -> Path:
        """The file of a storage name; a name that leaves the root is not found."""
        if not _STORAGE_NAME.fullmatch(storage):
            raise NotFound("no such attachment file")
        return self.root / storage

    @staticmethod
    def _new_name() -> str:
        name = secrets.token_hex(16)
        return f"{name[:2]}/{name}"

    async def open(self) -> None:
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)

    async def close(self) -> None:
        return None

    async def save(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        storage = self._new_name()
        target = self.root / storage
        tmp = target.with_suffix(".part")
        await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
        sha = hashlib.sha256()
        size = 0
        f = await asyncio.to_thread(open, tmp, "wb")
        try:
            async for chunk in limited(chunks, limit):
                sha.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(f.write, chunk)
            await asyncio.to_thread(_sync_and_close, f)
            await asyncio.to_thread(os.replace, tmp, target)
        except BaseException:
            f.close()
            tmp.unlink(missing_ok=True)
            raise
        return StoredBlob(storage, size, sha.hexdigest())

    async def stream(self, storage: str) -> AsyncIterator[bytes]:
        target = self._target(storage)
        try:
            f = await asyncio.to_thread(open, target, "rb")
        except FileNotFoundError:
            raise NotFound("no such attachment file") from None
        return _read_chunks(f)

    async def delete(self, storage: str) -> bool:
        try:
            await asyncio.to_thread(self._target(storage).unlink)
        except (FileNotFoundError, NotFound):
            return False
        return True

    async def exists(self, storage: str) -> bool:
        try:
            return await asyncio.to_thread(self._target(storage).is_file)
        except NotFound:
            return False

    def put(self, data: bytes) -> tuple[str, str]:
        """Write ``data`` durably; returns ``(storage name, sha256 hex)``."""
        storage = self._new_name()
        target = self.root / storage
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return storage, hashlib.sha256(data).hexdigest()

    def copy(self, storage: str) -> str:
        """Copy a stored file to a new random name (for carrying it into a ticket)."""
        source = self._target(storage)
        new = self._new_name()
        target = self.root / new
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        try:
            shutil.copyfile(source, tmp)
        except FileNotFoundError:
            raise NotFound("no such attachment file") from None
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
        return new

    def read(self, storage: str) -> bytes:
        try:
            return self._target(storage).read_bytes()
        except FileNotFoundError:
            raise NotFound("no such attachment file") from None

    def digest(self, storage: str) -> str | None:
        """sha256 of a stored file, or ``None`` if it is missing."""
        try:
            with open(self._target(storage), "rb") as f:
                return hashlib.file_digest(f, "sha256").hexdigest()
        except (FileNotFoundError, NotFound):
            return None


# Storage names as FileStore makes them ("ab/ab…", hex), and as older releases did.
_STORAGE_NAME = re.compile(r"[0-9a-f]{2}/[0-9a-f]{8,64}")


def _sync_and_close(f: BinaryIO) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()


async def _read_chunks(f: BinaryIO) -> AsyncIterator[bytes]:
    try:
        while chunk := await asyncio.to_thread(f.read, CHUNK_BYTES):
            yield chunk
    finally:
        f.close()


def new_attachment_id() -> str:
    return "a_" + secrets.token_urlsafe(15)
