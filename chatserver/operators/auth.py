"""Passwords, operator tokens, visitor tokens and signed visitor identities."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
import time
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chatserver.errors import BadFrame, Unauthorized
from chatserver.types import OperatorId

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# A hash to verify against when the username is unknown, so timing does not
# tell which usernames exist.
@functools.cache
def dummy_hash() -> str:
    """Made on first use, not at import: argon2 is deliberately slow (CLI start-up)."""
    return _hasher.hash(secrets.token_hex(8))


def new_visitor_token() -> str:
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """Visitor tokens are stored only as this hash."""
    return hashlib.sha256(token.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class OperatorTokens:
    """Signed operator tokens: ``<operator_id>.<version>.<expiry>.<hmac>``.

    ``version`` is the account's ``token_version`` when the token was issued; the
    caller compares it with the stored one, so bumping that column (logout, a new
    password or role, disabling) revokes every token issued before. Tokens of the
    older three-part form ``<operator_id>.<expiry>.<hmac>`` count as version 0.
    """

    def __init__(self, secret: bytes, ttl: float) -> None:
        self._secret = secret
        self.ttl = ttl

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, payload.encode(), hashlib.sha256).digest())

    def issue(self, operator_id: OperatorId, now: float | None = None, version: int = 0) -> str:
        expiry = int((now if now is not None else time.time()) + self.ttl)
        payload = f"{operator_id}.{version}.{expiry}"
        return f"{payload}.{self._sign(payload)}"

    def verify(self, token: str, now: float | None = None) -> OperatorId:
        """Return the operator id; raise :class:`Unauthorized` if forged or expired.

        The version is not checked here: see :meth:`verify_versioned`."""
        return self.verify_versioned(token, now)[0]

    def verify_versioned(self, token: str, now: float | None = None) -> tuple[OperatorId, int]:
        """Return ``(operator id, token version)``; raise :class:`Unauthorized` if
        forged, malformed or expired. The caller must compare the version with the
        account's ``token_version`` (and check the account is active)."""
        parts = token.split(".")
        if len(parts) == 3:
            operator_id, expiry, signature = parts
            version, payload = "0", f"{operator_id}.{expiry}"
        elif len(parts) == 4:
            operator_id, version, expiry, signature = parts
            payload = f"{operator_id}.{version}.{expiry}"
        else:
            raise Unauthorized("malformed token")
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise Unauthorized("invalid token")
        try:
            expires, number = int(expiry), int(version)
        except ValueError:
            raise Unauthorized("malformed token") from None
        if expires < (now if now is not None else time.time()):
            raise Unauthorized("token expired")
        return OperatorId(operator_id), number


def is_operator_token(token: str) -> bool:
    """Operator tokens have dots; visitor tokens (URL-safe base64) have none."""
    return token.count(".") in (2, 3)


def verify_identity(identity: dict[str, Any], secret: str | None) -> tuple[str, str]:
    """Check a host-site-signed identity; return ``(customer_id, plan)``.

    ``sig`` must be hex HMAC-SHA256 of ``customer_id + "\\n" + plan``.
    """
    if secret is None:
        raise BadFrame("identity is not enabled on this server")
    customer_id, plan, sig = identity.get("customer_id"), identity.get("plan"), identity.get("sig")
    if not (isinstance(customer_id, str) and isinstance(plan, str) and isinstance(sig, str)):
        raise BadFrame("identity needs customer_id, plan and sig strings")
    if not (0 < len(customer_id) <= 64 and 0 < len(plan) <= 32):
        raise BadFrame("identity fields are too long")
    expected = sign_identity(customer_id, plan, secret)
    if not hmac.compare_digest(expected, sig.lower()):
        raise Unauthorized("identity signature does not match")
    return customer_id, plan


def sign_identity(customer_id: str, plan: str, secret: str) -> str:
    """What the host site computes (server side!) to vouch for a visitor."""
    message = f"{customer_id}\n{plan}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
