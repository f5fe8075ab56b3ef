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
    check_attachment_ids,
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


# -- what a client is told: each refusal names the field and, for messages, the message ---------


def o(frame):
    return validate(frame, OPERATOR_FRAMES, 100)


def refusal(check):
    with pytest.raises(ChatError) as err:
        check()
    return err.value.to_frame()


@pytest.mark.parametrize(
    ("frame", "message", "ref"),
    [
        ({"type": "message", "text": "hi"}, "message: missing field 'client_msg_id'", None),
        ({"type": "message", "client_msg_id": "c1"}, "message: missing field 'text'", "c1"),
        (
            {"type": "message", "client_msg_id": "c1", "text": 5},
            "message: field 'text' has the wrong type",
            "c1",
        ),
        (
            {"type": "message", "client_msg_id": 5, "text": "hi"},
            "message: field 'client_msg_id' has the wrong type",
            None,  # not a string: not echoed back
        ),
        ({"type": "read", "seq": None}, "read: field 'seq' has the wrong type", None),
        ({"type": "read", "seq": True}, "read: field 'seq' has the wrong type", None),
        ({"type": "read", "seq": -1}, "read: field 'seq' must not be negative", None),
        ({"type": "hello", "name": "n" * 101}, "hello: field 'name' is longer than 100", None),
        (
            {"type": "message", "client_msg_id": "c" * 65, "text": "hi"},
            "message: field 'client_msg_id' is longer than 64",
            "c" * 65,
        ),
        ({"type": "message", "client_msg_id": "", "text": "hi"}, "client_msg_id is empty", None),
        ({"type": "message", "client_msg_id": "c1", "text": " "}, "message text is empty", "c1"),
        (
            {"type": "message", "client_msg_id": "c1", "text": "x" * 101},
            "message text is longer than 100 characters",
            "c1",
        ),
        (
            {"type": "message", "client_msg_id": "c1", "text": "hi", "attachments": ["a", "a"]},
            "attachments: an id is listed twice",
            "c1",
        ),
        (
            {"type": "message", "client_msg_id": "c1", "text": "hi", "attachments": "a"},
            "message: field 'attachments' has the wrong type",
            "c1",
        ),
        (
            {"type": "message", "client_msg_id": "c1", "text": "hi", "attachments": [""]},
            "attachments: up to 10 attachment ids",
            "c1",
        ),
        ({"type": "info", "email": "not-an-address"}, "email is not an e-mail address", None),
        # A frame of another type does not take the message fast path, whatever it carries.
        (
            {"type": "typing", "client_msg_id": "c1", "text": "hi"},
            "typing: missing field 'active'",
            "c1",
        ),
    ],
)
def test_visitor_refusals_say_what_is_wrong(frame, message, ref):
    expected = {"type": "error", "code": "bad_frame", "message": message}
    if ref is not None:
        expected["ref"] = ref
    assert refusal(lambda: v(frame)) == expected


def test_operator_message_limits():
    ok = {"type": "message", "session_id": "s" * 64, "client_msg_id": "c" * 64, "text": "x" * 100}
    assert o(dict(ok)) == ok
    assert refusal(lambda: o({**ok, "session_id": "s" * 65})) == {
        "type": "error",
        "code": "bad_frame",
        "message": "message: field 'session_id' is longer than 64",
        "ref": "c" * 64,
    }
    assert refusal(lambda: o({**ok, "session_id": None}))["message"] == (
        "message: field 'session_id' has the wrong type"
    )
    assert refusal(lambda: o({**ok, "client_msg_id": "c" * 65}))["ref"] == "c" * 65
    assert refusal(lambda: o({"type": "status"})) == {
        "type": "error",
        "code": "bad_frame",
        "message": "status: missing field 'status'",
    }


def test_valid_values_at_the_limits_pass():
    assert v({"type": "read", "seq": 0}) == {"type": "read", "seq": 0}
    assert v({"type": "read", "seq": 7})["seq"] == 7
    assert v({"type": "hello", "last_seq": None, "name": "n" * 100})["name"] == "n" * 100
    assert v({"type": "hello", "last_seq": 3, "identity": {"customer": "K-1"}})["last_seq"] == 3
    assert v({"type": "rate", "score": 5, "comment": None}) == {
        "type": "rate",
        "score": 5,
        "comment": None,
    }
    assert v({"type": "message", "client_msg_id": "c" * 64, "text": "x" * 100})["text"] == "x" * 100
    # A message may be attachments only: its text may then be empty.
    with_files = v({"type": "message", "client_msg_id": "c1", "text": "  ", "attachments": ["f1"]})
    assert with_files["text"] == "" and with_files["attachments"] == ["f1"]
    ten = [f"f{i}" for i in range(9)] + ["x" * 64]
    assert v({"type": "message", "client_msg_id": "c1", "text": "hi", "attachments": ten})[
        "attachments"
    ] == ten


def test_unknown_frame_types_are_named_up_to_40_characters():
    assert refusal(lambda: v({"type": "explode"})) == {
        "type": "error",
        "code": "unknown_type",
        "message": "unknown frame type 'explode'",
    }
    assert refusal(lambda: v({"type": "y" * 50}))["message"] == f"unknown frame type {'y' * 40!r}"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "frame is not valid JSON"),
        (b"\xc1", "frame is not valid msgpack"),
        ("[1, 2]", "frame must be an object"),
        (msgpack.packb([1]), "frame must be an object"),
        ('{"no": "type"}', "frame needs a string 'type'"),
        ('{"type": 1}', "frame needs a string 'type'"),
    ],
)
def test_decode_refusals_say_what_is_wrong(raw, message):
    expected = {"type": "error", "code": "bad_frame", "message": message}
    assert refusal(lambda: decode(raw)) == expected


def test_decode_gives_msgpack_strings_as_str():
    assert decode(msgpack.packb({"type": "message", "text": "Grüezi"}, use_bin_type=True)) == {
        "type": "message",
        "text": "Grüezi",
    }


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        (None, "attachments: up to 10 attachment ids"),
        ("f1", "attachments: up to 10 attachment ids"),
        ([f"f{i}" for i in range(11)], "attachments: up to 10 attachment ids"),
        (["f1", 2], "attachments: up to 10 attachment ids"),
        (["f1", ""], "attachments: up to 10 attachment ids"),
        (["f1", "x" * 65], "attachments: up to 10 attachment ids"),
        (["f1", "f2", "f1"], "attachments: an id is listed twice"),
    ],
)
def test_attachment_id_lists_are_checked(ids, message):
    assert refusal(lambda: check_attachment_ids(ids, "c9")) == {
        "type": "error",
        "code": "bad_frame",
        "message": message,
        "ref": "c9",
    }


def test_attachment_id_lists_at_the_limits_pass():
    ten = [f"f{i}" for i in range(9)] + ["x" * 64]
    assert check_attachment_ids(ten) == ten
    assert check_attachment_ids(["a"]) == ["a"]
    assert check_attachment_ids([]) == []


def test_payload_is_the_wire_form_and_built_once():
    out = Outgoing({"type": "typing", "active": True, "who": "Zoë"})
    text = out.payload(False)
    assert text == '{"type":"typing","active":true,"who":"Zoë"}'.encode()
    assert out.payload(False) is text
    assert out.payload(True) == msgpack.packb(out.frame, use_bin_type=True)
    assert out.payload(True) is out.payload(True)
    given = Outgoing({"type": "ping"}, '{"type":"ping"}')
    assert given.payload(False) == b'{"type":"ping"}' and given.text == '{"type":"ping"}'


def test_the_visitors_language_is_one_the_server_speaks():
    from chatserver.i18n.languages import LANGUAGES

    for lang in LANGUAGES:
        assert v({"type": "hello", "lang": lang})["lang"] == lang
    assert v({"type": "info", "lang": None})["lang"] is None
    message = f"lang must be one of {', '.join(LANGUAGES)}"
    assert refusal(lambda: v({"type": "hello", "lang": "xx"}))["message"] == f"hello: {message}"
    assert refusal(lambda: v({"type": "info", "lang": "de-CH"}))["message"] == f"info: {message}"
    # Frames without a language field ignore one they carry.
    assert v({"type": "typing", "active": True, "lang": "xx"})["lang"] == "xx"


def test_text_limit_when_the_message_carries_attachments():
    frame = {"type": "message", "client_msg_id": "c1", "text": "x" * 100, "attachments": ["f"]}
    assert v(dict(frame))["text"] == "x" * 100
    assert refusal(lambda: v({**frame, "text": "x" * 101}))["message"] == (
        "message text is longer than 100 characters"
    )


def test_any_refused_frame_carrying_a_client_msg_id_is_named():
    assert refusal(lambda: v({"type": "read", "seq": -1, "client_msg_id": "r1"})) == {
        "type": "error",
        "code": "bad_frame",
        "message": "read: field 'seq' must not be negative",
        "ref": "r1",
    }
