"""Frame decoding, validation and encoding. No I/O.

Incoming frames are validated against a small schema per endpoint and returned
as plain dicts whose required fields are guaranteed present and well typed.
Outgoing frames are wrapped in :class:`Outgoing`, which encodes each wire form
(JSON text, msgpack binary) at most once however many recipients there are.
"""

from __future__ import annotations

import json
import re
from json.encoder import encode_basestring
from typing import Any, Final

import msgpack
import orjson

from chatserver.errors import BadFrame, UnknownFrameType
from chatserver.i18n.languages import LANGUAGES

MSGPACK_SUBPROTOCOL: Final = "chatserver.msgpack"

_std_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _json_encode(frame: dict[str, Any]) -> str:
    """Compact JSON, non-ASCII as is: orjson, or the standard library for
    what orjson refuses (integers beyond 64 bits); both write the same text."""
    try:
        return orjson.dumps(frame).decode()
    except TypeError:
        return _std_encode(frame)


# field -> (python type(s), required, max length for str)
_Schema = dict[str, tuple[type | tuple[type, ...], bool, int]]

_STR, _INT, _BOOL, _DICT = str, int, bool, dict
_OPT_STR = (str, type(None))

VISITOR_FRAMES: Final[dict[str, _Schema]] = {
    "hello": {
        "token": (_OPT_STR, False, 200),
        "last_seq": (_INT, False, 0),
        "name": (_OPT_STR, False, 100),
        "email": (_OPT_STR, False, 254),
        "page_url": (_OPT_STR, False, 2000),
        "user_agent": (_OPT_STR, False, 500),
        "identity": ((dict, type(None)), False, 0),
        # The visitor's language, one of LANGUAGES (docs/i18n.md).
        "lang": (_OPT_STR, False, 8),
    },
    "message": {
        "client_msg_id": (_STR, True, 64),
        "text": (_STR, True, 0),
        "attachments": ((list, type(None)), False, 0),
    },
    "typing": {"active": (_BOOL, True, 0)},
    "read": {"seq": (_INT, True, 0)},
    "info": {
        "name": (_OPT_STR, False, 100),
        "email": (_OPT_STR, False, 254),
        "page_url": (_OPT_STR, False, 2000),
        "lang": (_OPT_STR, False, 8),
    },
    "close": {},
    "another_operator": {},
    "rate": {"score": (_INT, True, 0), "comment": (_OPT_STR, False, 1000)},
    "ping": {},
}

OPERATOR_FRAMES: Final[dict[str, _Schema]] = {
    "hello": {
        "token": (_STR, True, 2000),
        "status": (_OPT_STR, False, 16),
        "sessions": ((dict, type(None)), False, 0),
    },
    "status": {"status": (_STR, True, 16)},
    "message": {
        "session_id": (_STR, True, 64),
        "client_msg_id": (_STR, True, 64),
        "text": (_STR, True, 0),
        "attachments": ((list, type(None)), False, 0),
    },
    "typing": {"session_id": (_STR, True, 64), "active": (_BOOL, True, 0)},
    "read": {"session_id": (_STR, True, 64), "seq": (_INT, True, 0)},
    "history": {
        "session_id": (_STR, True, 64),
        "after_seq": (_INT, False, 0),
        "limit": (_INT, False, 0),
    },
    "close_chat": {"session_id": (_STR, True, 64)},
    "transfer": {
        "session_id": (_STR, True, 64),
        "operator_id": (_OPT_STR, False, 64),
        "department": (_OPT_STR, False, 40),
        "level": ((int, type(None)), False, 0),
    },
    # Operators-only thread of a chat (its operator and supervisors).
    "notes": {"session_id": (_STR, True, 64)},
    # Supervisors and admins only (others get a "forbidden" error).
    "board": {},
    "watch": {"session_id": (_STR, True, 64)},
    "unwatch": {"session_id": (_STR, True, 64)},
    "whisper": {"session_id": (_STR, True, 64), "text": (_STR, True, 0)},
    "consult": {
        "session_id": (_STR, True, 64),
        "operator_id": (_OPT_STR, False, 64),
        "text": (_STR, True, 0),
    },
    "take_over": {"session_id": (_STR, True, 64)},
    "reassign": {"session_id": (_STR, True, 64), "operator_id": (_STR, True, 64)},
    "ping": {},
}

MAX_ATTACHMENTS: Final = 10
_EMAIL = re.compile(r"^[^@\s<>\"]{1,64}@[^@\s<>\"]{1,252}$")


def check_attachment_ids(ids: Any, ref: str | None = None) -> list[str]:
    """A list of up to :data:`MAX_ATTACHMENTS` distinct attachment ids, or ``BadFrame``."""
    if (
        not isinstance(ids, list)
        or len(ids) > MAX_ATTACHMENTS
        or not all(isinstance(i, str) and 0 < len(i) <= 64 for i in ids)
    ):
        raise BadFrame(f"attachments: up to {MAX_ATTACHMENTS} attachment ids", ref=ref)
    if len(set(ids)) != len(ids):
        raise BadFrame("attachments: an id is listed twice", ref=ref)
    return ids


def decode(data: str | bytes) -> dict[str, Any]:
    """Parse one wire frame (JSON text or msgpack bytes) into a dict."""
    try:
        frame = orjson.loads(data) if isinstance(data, str) else msgpack.unpackb(data, raw=False)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise BadFrame(
            f"frame is not valid {'JSON' if isinstance(data, str) else 'msgpack'}"
        ) from exc
    if not isinstance(frame, dict):
        raise BadFrame("frame must be an object")
    if not isinstance(frame.get("type"), str):
        raise BadFrame("frame needs a string 'type'")
    return frame


def _plain_message(frame: dict[str, Any], with_session: bool, max_text: int) -> bool:
    """The hot path: ``True`` (text stripped) if ``frame`` is a valid message
    without attachments; ``False`` leaves it to the schema check, which then
    names what is wrong (it accepts nothing this refuses)."""
    cmid = frame.get("client_msg_id")
    text = frame.get("text")
    if type(cmid) is not str or type(text) is not str or not 0 < len(cmid) <= 64:
        return False
    if with_session:
        sid = frame.get("session_id")
        if type(sid) is not str or len(sid) > 64:
            return False
    if frame.get("attachments") is not None or "email" in frame:
        return False
    text = text.strip()
    if not text or len(text) > max_text:
        return False
    frame["text"] = text
    return True


def validate(frame: dict[str, Any], schemas: dict[str, _Schema], max_text: int) -> dict[str, Any]:
    """Check ``frame`` against the schema for its type; raise a ChatError if it does not fit."""
    kind = frame["type"]
    schema = schemas.get(kind)
    if kind == "message" and schema and _plain_message(frame, "session_id" in schema, max_text):
        return frame
    if schema is None:
        raise UnknownFrameType(f"unknown frame type {kind[:40]!r}")
    return _by_schema(frame, kind, schema, max_text)


def _by_schema(frame: dict[str, Any], kind: str, schema: _Schema, max_text: int) -> dict[str, Any]:
    ref = frame.get("client_msg_id") if isinstance(frame.get("client_msg_id"), str) else None
    for name, (types, required, max_len) in schema.items():
        if name not in frame or (frame[name] is None and not required):
            if required:
                raise BadFrame(f"{kind}: missing field {name!r}", ref=ref)
            continue
        value = frame[name]
        # bool is an int subclass: never accept it where an int is wanted.
        if not isinstance(value, types) or (types is int and isinstance(value, bool)):
            raise BadFrame(f"{kind}: field {name!r} has the wrong type", ref=ref)
        if isinstance(value, str) and max_len and len(value) > max_len:
            raise BadFrame(f"{kind}: field {name!r} is longer than {max_len}", ref=ref)
        if isinstance(value, int) and not isinstance(value, bool) and value < 0:
            raise BadFrame(f"{kind}: field {name!r} must not be negative", ref=ref)
    if "attachments" in schema and frame.get("attachments") is not None:
        check_attachment_ids(frame["attachments"], ref)
    if "text" in schema:
        text = frame["text"].strip()
        if not text and not frame.get("attachments"):
            raise BadFrame("message text is empty", ref=ref)
        if len(text) > max_text:
            raise BadFrame(f"message text is longer than {max_text} characters", ref=ref)
        frame["text"] = text
    if "client_msg_id" in schema and not frame["client_msg_id"]:
        raise BadFrame("client_msg_id is empty")
    email = frame.get("email")
    if isinstance(email, str) and email and not _EMAIL.match(email):
        raise BadFrame("email is not an e-mail address")
    lang = frame.get("lang")
    if "lang" in schema and lang is not None and lang not in LANGUAGES:
        raise BadFrame(f"{kind}: lang must be one of {', '.join(LANGUAGES)}")
    return frame


class Outgoing:
    """A server frame, encoded lazily and once per wire format.

    ``text`` may be given when the caller has the JSON already (it must be
    ``frame`` encoded): then the frame is not encoded again for text clients.
    """

    __slots__ = ("_bin", "_bin_msg", "_text", "_text_bytes", "_text_msg", "frame")

    def __init__(self, frame: dict[str, Any], text: str | None = None) -> None:
        self.frame = frame
        self._text = text
        self._bin: bytes | None = None
        self._text_bytes: bytes | None = None
        self._text_msg: dict[str, Any] | None = None
        self._bin_msg: dict[str, Any] | None = None

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = _json_encode(self.frame)
        return self._text

    @property
    def binary(self) -> bytes:
        if self._bin is None:
            self._bin = msgpack.packb(self.frame, use_bin_type=True)
        return self._bin

    def payload(self, binary: bool) -> bytes:
        """The frame's payload on the wire (UTF-8 JSON or msgpack), built once."""
        if binary:
            return self.binary
        data = self._text_bytes
        if data is None:
            data = self._text_bytes = self.text.encode()
        return data

    def message(self, binary: bool) -> dict[str, Any]:
        """The ASGI ``websocket.send`` message, built once per wire format."""
        if binary:
            if self._bin_msg is None:
                self._bin_msg = {"type": "websocket.send", "bytes": self.binary}
            return self._bin_msg
        if self._text_msg is None:
            text = self._text
            if text is None:  # self.text, inlined (twice per message)
                text = self._text = _json_encode(self.frame)
            self._text_msg = {"type": "websocket.send", "text": text}
        return self._text_msg


def ack(client_msg_id: str | None, seq: int, ts: int, duplicate: bool) -> Outgoing:
    """The ack of a stored message; its JSON is written out directly (hot path)."""
    frame = {
        "type": "ack",
        "client_msg_id": client_msg_id,
        "seq": seq,
        "ts": ts,
        "duplicate": duplicate,
    }
    # encode_basestring: a str as _json_encode writes it (ensure_ascii=False).
    cmid = "null" if client_msg_id is None else encode_basestring(client_msg_id)
    return Outgoing(
        frame,
        f'{{"type":"ack","client_msg_id":{cmid},"seq":{int(seq)},"ts":{int(ts)},'
        f'"duplicate":{"true" if duplicate else "false"}}}',
    )


def encode_text(frame: dict[str, Any]) -> str:
    return _json_encode(frame)
