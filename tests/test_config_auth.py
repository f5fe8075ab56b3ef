"""Settings from the environment, tokens and identities."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatserver.config import ConfigError, Settings
from chatserver.errors import BadFrame, Unauthorized
from chatserver.operators.auth import (
    OperatorTokens,
    hash_password,
    sign_identity,
    verify_identity,
    verify_password,
)
from chatserver.types import OperatorId


def test_env_and_overrides():
    env = {
        "CHATSERVER_PORT": "9000",
        "CHATSERVER_DATA_DIR": "/tmp/x",
        "CHATSERVER_VISITOR_ALLOWED_ORIGINS": "https://a.ch, https://b.ch",
        "CHATSERVER_DEMO_OPERATOR": "no",
        "CHATSERVER_OPERATOR_GRACE_SECONDS": "2.5",
    }
    s = Settings.load(env, port=None, host="0.0.0.0")
    assert s.port == 9000 and s.host == "0.0.0.0" and s.data_dir == Path("/tmp/x")
    assert s.visitor_allowed_origins == ("https://a.ch", "https://b.ch")
    assert s.demo_operator is False and s.operator_grace_seconds == 2.5
    assert Settings.load(env, port=1234).port == 1234


@pytest.mark.parametrize(
    "env, match",
    [
        ({"CHATSERVER_PORT": "eighty"}, "CHATSERVER_PORT"),
        ({"CHATSERVER_PORT": "70000"}, "port"),
        ({"CHATSERVER_DEMO_OPERATOR": "maybe"}, "CHATSERVER_DEMO_OPERATOR"),
        ({"CHATSERVER_REDIS_URL": "http://x"}, "redis_url"),
        ({"CHATSERVER_STORE_SYNCHRONOUS": "sometimes"}, "store_synchronous"),
        ({"CHATSERVER_MAX_FRAME_BYTES": "10"}, "max_frame_bytes"),
    ],
)
def test_bad_values_name_the_key(env, match):
    with pytest.raises(ConfigError, match=match):
        Settings.load(env)


def test_unknown_override_is_refused():
    with pytest.raises(ConfigError, match="unknown setting"):
        Settings.load({}, colour="blue")


def test_operator_tokens():
    tokens = OperatorTokens(b"k" * 32, ttl=60)
    token = tokens.issue(OperatorId("o_1"), now=1000)
    assert tokens.verify(token, now=1030) == "o_1"
    with pytest.raises(Unauthorized, match="expired"):
        tokens.verify(token, now=1061)
    with pytest.raises(Unauthorized):
        OperatorTokens(b"other" * 8, ttl=60).verify(token, now=1030)
    _, version, expiry, sig = token.split(".")
    with pytest.raises(Unauthorized):
        tokens.verify(f"o_2.{version}.{expiry}.{sig}", now=1030)
    with pytest.raises(Unauthorized):  # the version is signed too
        tokens.verify(f"o_1.7.{expiry}.{sig}", now=1030)
    assert tokens.verify_versioned(token, now=1030) == ("o_1", 0)
    bumped = tokens.issue(OperatorId("o_1"), now=1000, version=3)
    assert tokens.verify_versioned(bumped, now=1030) == ("o_1", 3)
    with pytest.raises(Unauthorized):
        tokens.verify("a.b", now=0)


def test_passwords():
    h = hash_password("correct horse")
    assert verify_password(h, "correct horse")
    assert not verify_password(h, "wrong")
    assert not verify_password("not-a-hash", "x")


def test_identity():
    sig = sign_identity("K-1", "vip", "secret")
    assert verify_identity({"customer_id": "K-1", "plan": "vip", "sig": sig}, "secret") == (
        "K-1",
        "vip",
    )
    with pytest.raises(Unauthorized):
        verify_identity({"customer_id": "K-1", "plan": "free", "sig": sig}, "secret")
    with pytest.raises(BadFrame):
        verify_identity({"customer_id": "K-1", "plan": "vip", "sig": sig}, None)
    with pytest.raises(BadFrame):
        verify_identity({"customer_id": 1, "plan": "vip", "sig": sig}, "secret")


def test_every_setting_is_documented():
    import dataclasses

    doc = (Path(__file__).resolve().parent.parent / "docs" / "configuration.md").read_text()
    missing = [
        f.name
        for f in dataclasses.fields(Settings)
        if not f.name.startswith("_") and f"CHATSERVER_{f.name.upper()}" not in doc
    ]
    assert missing == [], f"document these in docs/configuration.md: {missing}"
