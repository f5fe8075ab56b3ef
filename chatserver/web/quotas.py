"""Visitors' quotas and rate limits on the HTTP API (docs/configuration.md, "Quotas").

Each check takes from every quota it names at once, or from none
(:meth:`~chatserver.limits.base.Limiter.take`), and raises
:class:`~chatserver.errors.RateLimited` (``rate_limited``) or
:class:`~chatserver.errors.QuotaExceeded` (``quota_exceeded``, uploads) with the seconds
until the refusing window ends (sent as ``Retry-After``). Counts are per chat session,
per client address and per e-mail address, in Redis when nodes share it (so every node
enforces the same count) and in the process on the embedded default.

Callers check a request's fields first, so input that is refused as bad uses up nothing.
"""

from __future__ import annotations

import hashlib
import math

from starlette.requests import Request

from chatserver.config import Settings
from chatserver.errors import OperatorsOnline, QuotaExceeded, RateLimited
from chatserver.limits.base import Limiter, Quota
from chatserver.limits.memory import MemoryLimiter
from chatserver.limits.redis import RedisLimiter
from chatserver.tickets.access import VisitorActor

__all__ = [
    "callback",
    "client_address",
    "kb_feedback",
    "kb_search",
    "limiter",
    "mail_to",
    "offline_form",
    "upload",
    "visitor_reply",
]


def limiter(request: Request) -> Limiter:
    """The node's limiter: in Redis when the node has one, else in the process."""
    state = request.app.state
    found: Limiter | None = getattr(state, "limiter", None)
    if found is None:
        redis = getattr(state, "redis", None)
        settings: Settings = state.settings
        found = RedisLimiter(redis, settings.redis_prefix) if redis is not None else MemoryLimiter()
        state.limiter = found
    return found


def client_address(request: Request) -> str:
    """The peer's address; behind a trusted proxy (``trusted_proxies``) uvicorn has
    already put the client's from X-Forwarded-For here."""
    return request.client.host if request.client is not None else "unknown"


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _email_key(email: str) -> str:
    # Hashed: the counter's name carries no address.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


async def _take(
    request: Request, quotas: list[Quota], error: type[RateLimited], message: str
) -> None:
    retry = await limiter(request).take(quotas)
    if retry is not None:
        # To the millisecond first: a fresh window's end - now may be 3600.0000001.
        seconds = max(1, math.ceil(round(retry, 3)))
        raise error(f"{message}; try again in {seconds} s", retry_after=seconds)


async def offline_form(request: Request, who: VisitorActor, email: str) -> None:
    """Before a ticket from the offline form: refused (409 ``operators_online``) while
    operators are online and the queue is short, else counted per session, per address
    and per e-mail address (its confirmation mails)."""
    hub = request.app.state.hub
    if not await hub.refresh_offline():
        raise OperatorsOnline("operators are online: please start a chat instead")
    s = _settings(request)
    window = s.quota_window_seconds
    await _take(
        request,
        [
            Quota(f"off:s:{who.session.session_id}", s.quota_offline_per_session, window),
            Quota(f"off:a:{client_address(request)}", s.quota_offline_per_address, window),
            Quota(f"mail:e:{_email_key(email)}", s.quota_mails_per_email, window),
        ],
        RateLimited,
        "too many offline requests",
    )


async def mail_to(request: Request, email: str) -> None:
    """Before a mail a visitor asks for (a transcript) to ``email``: counted per address."""
    s = _settings(request)
    await _take(
        request,
        [Quota(f"mail:e:{_email_key(email)}", s.quota_mails_per_email, s.quota_window_seconds)],
        RateLimited,
        "too many mails to this address",
    )


async def callback(request: Request, who: VisitorActor) -> None:
    """Before a callback request: counted per session and per client address."""
    s = _settings(request)
    window = s.quota_window_seconds
    await _take(
        request,
        [
            Quota(f"cb:s:{who.session.session_id}", s.quota_callbacks_per_session, window),
            Quota(f"cb:a:{client_address(request)}", s.quota_callbacks_per_address, window),
        ],
        RateLimited,
        "too many callback requests",
    )


async def upload(request: Request, who: VisitorActor, size: int) -> None:
    """Before storing a visitor's upload of ``size`` bytes: files and bytes per session
    and per client address."""
    s = _settings(request)
    window = s.quota_window_seconds
    session = who.session.session_id
    address = client_address(request)
    await _take(
        request,
        [
            Quota(f"up:s:{session}", s.quota_uploads_per_session, window),
            Quota(f"upb:s:{session}", s.quota_upload_bytes_per_session, window, size),
            Quota(f"up:a:{address}", s.quota_uploads_per_address, window),
            Quota(f"upb:a:{address}", s.quota_upload_bytes_per_address, window, size),
        ],
        QuotaExceeded,
        "upload quota used up",
    )


async def visitor_reply(request: Request, who: VisitorActor) -> None:
    """Before a visitor's reply on a ticket: counted per visitor (chat session)."""
    s = _settings(request)
    await _take(
        request,
        [
            Quota(
                f"rep:s:{who.session.session_id}",
                s.quota_replies_per_session,
                s.quota_window_seconds,
            )
        ],
        RateLimited,
        "too many replies",
    )


async def kb_search(request: Request) -> None:
    """Before a visitor's knowledge base search: counted per client address in windows
    of ``quota_kb_window_seconds``."""
    s = _settings(request)
    await _take(
        request,
        [
            Quota(
                f"kbq:a:{client_address(request)}",
                s.quota_kb_searches_per_address,
                s.quota_kb_window_seconds,
            )
        ],
        RateLimited,
        "too many searches",
    )


async def kb_feedback(request: Request) -> None:
    """Before a visitor's "did this help?" answer: counted per client address in windows
    of ``quota_kb_window_seconds``."""
    s = _settings(request)
    await _take(
        request,
        [
            Quota(
                f"kbf:a:{client_address(request)}",
                s.quota_kb_feedback_per_address,
                s.quota_kb_window_seconds,
            )
        ],
        RateLimited,
        "too many answers",
    )
