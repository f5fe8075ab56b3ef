"""The one error tree. Every refusal the server makes is a :class:`ChatError`.

::

    ChatError                    error frame / HTTP 400
    ├── BadFrame                 "bad_frame"        (malformed JSON, fields)
    ├── BadRequest               "bad_request"      HTTP 400 (body not a JSON object, too
    │                                               deep; a bad query parameter)
    ├── UnknownFrameType         "unknown_type"
    ├── HelloRequired            "hello_required"   close 4002
    ├── Unauthorized             "unauthorized"     close 4001 / HTTP 401
    │   └── Revoked              "revoked"          close 4004 / HTTP 401 (token revoked)
    ├── Forbidden                "forbidden"        close 4003 / HTTP 403
    │   └── ForbiddenAction      "forbidden"        (the connection stays open)
    ├── UnknownSession           "unknown_session"  HTTP 404
    ├── NotFound                 "not_found"        HTTP 404 (tickets, attachments)
    ├── TooLarge                 "too_large"        HTTP 413 (uploads, request bodies)
    ├── UnsupportedType          "unsupported_type" HTTP 415 (uploads: content not allowed)
    ├── NotAssigned              "not_assigned"
    ├── ChatClosed               "chat_closed"
    ├── InvalidState             "invalid_state"    HTTP 409
    │   └── OperatorsOnline      "operators_online" HTTP 409 (offline form: use the chat)
    ├── RateLimited              "rate_limited"     HTTP 429 + Retry-After
    │   ├── LoginThrottled       "login_throttled"  HTTP 429 + Retry-After (failed logins)
    │   └── QuotaExceeded        "quota_exceeded"   HTTP 429 + Retry-After (upload quota)
    └── Unavailable              "unavailable"      HTTP 503

``close_code`` is set when the error ends the connection; otherwise the client
gets an ``error`` frame and the connection stays open.
"""

from __future__ import annotations

from typing import ClassVar


class ChatError(Exception):
    """Root of all errors reported to clients."""

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400
    close_code: ClassVar[int | None] = None

    def __init__(self, message: str | None = None, *, ref: str | None = None) -> None:
        super().__init__(message or self.code.replace("_", " "))
        self.message = message or self.code.replace("_", " ")
        self.ref = ref

    def to_frame(self) -> dict[str, object]:
        frame: dict[str, object] = {"type": "error", "code": self.code, "message": self.message}
        if self.ref is not None:
            frame["ref"] = self.ref
        return frame


class BadFrame(ChatError):
    code = "bad_frame"


class BadRequest(ChatError):
    """The HTTP request itself is unusable: its body is not a JSON object (or nests too
    deep), or a query parameter has the wrong type or is out of bounds."""

    code = "bad_request"


class UnknownFrameType(ChatError):
    code = "unknown_type"


class HelloRequired(ChatError):
    code = "hello_required"
    close_code = 4002


class Unauthorized(ChatError):
    code = "unauthorized"
    http_status = 401
    close_code = 4001


class Revoked(Unauthorized):
    """The operator's tokens were revoked (logout, new password or role, account
    disabled or removed): an open connection is closed with 4004; log in again."""

    code = "revoked"
    close_code = 4004


class Forbidden(ChatError):
    code = "forbidden"
    http_status = 403
    close_code: ClassVar[int | None] = 4003


class ForbiddenAction(Forbidden):
    """The account may use the endpoint but not this frame (e.g. supervisor actions
    from an operator): an error frame, and the connection stays open."""

    close_code = None


class UnknownSession(ChatError):
    code = "unknown_session"
    http_status = 404


class NotFound(ChatError):
    """No such ticket or attachment, or not one the caller may see (indistinguishable)."""

    code = "not_found"
    http_status = 404


class TooLarge(ChatError):
    code = "too_large"
    http_status = 413


class UnsupportedType(ChatError):
    code = "unsupported_type"
    http_status = 415


class NotAssigned(ChatError):
    code = "not_assigned"
    http_status = 403


class ChatClosed(ChatError):
    code = "chat_closed"
    http_status = 409


class InvalidState(ChatError):
    code = "invalid_state"
    http_status = 409


class OperatorsOnline(InvalidState):
    """The offline form while operators are online: the visitor should start a chat."""

    code = "operators_online"


class RateLimited(ChatError):
    """Too many requests; ``retry_after`` (seconds, when known) goes out as Retry-After."""

    code = "rate_limited"
    http_status = 429

    def __init__(
        self, message: str | None = None, *, ref: str | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message, ref=ref)
        self.retry_after = retry_after


class LoginThrottled(RateLimited):
    """Too many failed logins for the account or the client address (logins only)."""

    code = "login_throttled"


class QuotaExceeded(RateLimited):
    """A per-visitor or per-address quota (upload count or bytes) is used up for now."""

    code = "quota_exceeded"


class Unavailable(ChatError):
    code = "unavailable"
    http_status = 503


# Close codes that do not come from a ChatError.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_REVOKED = 4004  # Revoked.close_code
CLOSE_REPLACED = 4008
CLOSE_RATE_LIMITED = 4029
