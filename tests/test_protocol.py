"""Frame decoding and validation."""

from __future__ import annotations

import json

import msgpack
import pytest

from chatserver.errors import BadFrame, UnknownFrameType
from chatserver.protocol import (
    OPERATOR_FRAMES,
    VISITOR_FRAMES,
    Outgoing,
    ack,
    decode,
    validate,
)


def v(frame):
    return validate(frame, VISITOR_FRAMES, 100)


def test_decode_json_and_msgpack():
    assert decode('{"type":"ping"}') == {"type": "ping"}
    assert decode(msgpack.packb({"type": "ping"})) == {"type": "ping"}


@pytest.mark.parametrize("raw", ["", "{", "null", "[]", '"x"', '{"type": 1}', b"\xc1", b"\x01"])
def test_decode_rejects(raw):
    with pytest.raises(BadFrame):
        decode(raw)


def test_text_is_trimmed_and_limited():
    assert v({"type": "message", "client_msg_id": "a", "text": "  hi \n"})["text"] == "hi"
    with pytest.raises(BadFrame, match="longer than 100") as err:
        v({"type": "message", "client_msg_id": "a", "text": "x" * 101})
    assert err.value.ref == "a"


def test_unknown_type_and_wrong_endpoint():
    with pytest.raises(UnknownFrameType):
        v({"type": "close_chat", "session_id": "s"})
    assert validate({"type": "close_chat", "session_id": "s"}, OPERATOR_FRAMES, 10)


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "read", "seq": "1"},
        {"type": "read", "seq": 1.5},
        {"type": "read", "seq": False},
        {"type": "hello", "last_seq": -3},
        {"type": "hello", "identity": "x"},
        {"type": "hello", "email": "a@b@c"},
        {"type": "hello", "page_url": "h" * 2001},
    ],
)
def test_field_types(frame):
    with pytest.raises(BadFrame):
        v(frame)


def test_optional_none_fields_pass():
    assert v({"type": "hello", "token": None, "name": None})["type"] == "hello"


def test_outgoing_encodes_once():
    out = Outgoing({"type": "message", "text": "Grüezi <b>"})
    assert out.text is out.text
    assert json.loads(out.text)["text"] == "Grüezi <b>"
    assert "Grüezi" in out.text  # not \\u-escaped: smaller frames
    assert msgpack.unpackb(out.binary) == out.frame


@pytest.mark.parametrize(
    "client_msg_id",
    ["B1.2", None, 'q"uote\\back\nline', "ümlaut 😀", "</script><b>x</b>", "\u2028"],
)
@pytest.mark.parametrize("duplicate", [False, True])
def test_ack_text_is_exactly_the_generic_encoding_of_its_frame(client_msg_id, duplicate):
    out = ack(client_msg_id, 7, 1_700_000_000_123, duplicate)
    assert out.frame == {
        "type": "ack",
        "client_msg_id": client_msg_id,
        "seq": 7,
        "ts": 1_700_000_000_123,
        "duplicate": duplicate,
    }
    assert out.text == Outgoing(out.frame).text
    assert json.loads(out.text) == out.frame
    assert msgpack.unpackb(out.binary) == out.frame


def test_outgoing_builds_each_send_message_once():
    out = Outgoing({"type": "typing", "active": True})
    text_msg = out.message(False)
    assert text_msg == {"type": "websocket.send", "text": '{"type":"typing","active":true}'}
    assert out.message(False) is text_msg
    assert out.message(True) == {"type": "websocket.send", "bytes": out.binary}
    assert out.message(True) is out.message(True)
