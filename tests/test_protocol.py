"""Frame decoding and validation."""

from __future__ import annotations

import json

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatserver.errors import BadFrame, ChatError, UnknownFrameType
from chatserver.protocol import (
    OPERATOR_FRAMES,
    VISITOR_FRAMES,
    Outgoing,
    _by_schema,
    _std_encode,
    ack,
    decode,
    encode_text,
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


# The message fast path must decide exactly as the schema check does.
_field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.text(max_size=3),
    st.text(alphabet=" \t\nab", min_size=0, max_size=8),
    st.text(min_size=60, max_size=70),
    st.text(min_size=95, max_size=110),
    st.lists(st.text(min_size=1, max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
_message_frames = st.dictionaries(
    st.sampled_from(["client_msg_id", "text", "attachments", "session_id", "email", "other"]),
    _field_values,
).map(lambda fields: {**fields, "type": "message"})


def _outcome(check):
    try:
        return ("ok", check())
    except ChatError as exc:
        return (type(exc).__name__, exc.to_frame())


@settings(max_examples=1500, deadline=None)
@given(frame=_message_frames, operator=st.booleans())
def test_message_fast_path_agrees_with_the_schema_check(frame, operator):
    schemas = OPERATOR_FRAMES if operator else VISITOR_FRAMES
    fast = _outcome(lambda: validate(dict(frame), schemas, 100))
    slow = _outcome(lambda: _by_schema(dict(frame), "message", schemas["message"], 100))
    assert fast == slow


def test_message_fast_path_strips_and_keeps_other_fields():
    frame = v({"type": "message", "client_msg_id": "c1", "text": "  hi  ", "x": 1})
    assert frame == {"type": "message", "client_msg_id": "c1", "text": "hi", "x": 1}
    with pytest.raises(BadFrame, match="empty"):
        v({"type": "message", "client_msg_id": "c1", "text": " \n "})
    with pytest.raises(BadFrame, match="longer than 100"):
        v({"type": "message", "client_msg_id": "c1", "text": "x" * 101})
    with pytest.raises(BadFrame, match="e-mail"):
        v({"type": "message", "client_msg_id": "c1", "text": "hi", "email": "nope"})


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=500, deadline=None)
@given(frame=st.dictionaries(st.text(), _json_values, max_size=5))
def test_frames_encode_exactly_as_the_standard_library_would(frame):
    """orjson writes the text; where it refuses (64-bit overflow) the stdlib does.
    The text is the same but for how a float is spelt (1e-07 or 1e-7)."""
    try:
        expected = _std_encode(frame)
    except ValueError:  # a lone surrogate: not valid in a frame anyway
        return
    if any(0xD800 <= ord(c) <= 0xDFFF for c in expected):
        return
    text = encode_text(frame)
    assert json.loads(text) == json.loads(expected)
    if "e-0" not in expected and "e+" not in expected:
        assert text == expected


def test_decode_refuses_what_json_does_not_allow():
    for raw in ['{"type":"x","n":NaN}', '{"type":"x"} trailing', "{'type':'x'}"]:
        with pytest.raises(BadFrame):
            decode(raw)
    assert decode('{"type":"x","t":"\\u00e4\\ud83d\\ude00"}')["t"] == "\u00e4\U0001f600"
