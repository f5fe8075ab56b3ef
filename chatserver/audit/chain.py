"""The chat chain and signed chain heads. No I/O.

A closed chat's messages, in seq order, form a hash chain exactly like a ticket's
events (:func:`chatserver.tickets.model.event_hash`): each message's canonical JSON,
with the hash of the one before it (``prev_hash``; the first links to ``GENESIS``),
is hashed with SHA-256. The chain's last hash is its *head*; changing, removing,
inserting or reordering any message changes every hash after it, so the head.

Whoever can write the database can recompute a chain, so heads are *signed*: an
HMAC-SHA256, keyed with a secret kept outside the database, over what the head
covers (:func:`head_text`). Without the key nobody can make a signature that
verifies; with an exported copy of the heads kept elsewhere, even a rewrite by
someone who holds the key shows (the recomputed head differs from the exported one).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any, Final

from chatserver.tickets.model import GENESIS, event_hash

EXPORT_FORMAT: Final = "chatserver-audit-heads/1"

# The fields of a stored message the chain covers (every column of ``messages``).
MESSAGE_FIELDS: Final = (
    "session_id",
    "seq",
    "ts",
    "sender",
    "sender_id",
    "author",
    "text",
    "client_msg_id",
    "event",
    "extra",
)


def message_hash(message: dict[str, Any], prev_hash: str) -> str:
    """The chain hash of one message (a dict with :data:`MESSAGE_FIELDS`)."""
    content = {f: message.get(f) for f in MESSAGE_FIELDS}
    content["prev_hash"] = prev_hash
    return event_hash(content)


def chain_heads(messages: Iterable[dict[str, Any]], prev_hash: str = GENESIS) -> list[str]:
    """The head after each of ``messages`` (in seq order), continuing from ``prev_hash``."""
    heads: list[str] = []
    for message in messages:
        prev_hash = message_hash(message, prev_hash)
        heads.append(prev_hash)
    return heads


def head_text(kind: str, ident: str, count: int, head: str) -> bytes:
    """What a signature covers: which chain (``chat`` or ``ticket``, its id), how far
    (the last seq or the number of events) and its head."""
    return f"chatserver-audit\n{kind}\n{ident}\n{count}\n{head}".encode()


def sign(key: bytes, kind: str, ident: str, count: int, head: str) -> str:
    """The HMAC-SHA256 (hex) of a chain head."""
    return hmac.new(key, head_text(kind, ident, count, head), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, kind: str, ident: str, count: int, head: str, sig: str) -> bool:
    """Whether ``sig`` is the signature of this head under ``key`` (constant time)."""
    return hmac.compare_digest(sign(key, kind, ident, count, head), sig)


def key_id(key: bytes) -> str:
    """A short fingerprint naming a key (which key signed a seal) without revealing it."""
    return hmac.new(key, b"chatserver-audit-key-id", hashlib.sha256).hexdigest()[:16]
