"""The store contract: the durable source of truth for sessions and messages.

:class:`Store` is what the chat hub, supervision, tickets and the web app need
of a store; it is made of small Protocols, one per concern (:class:`Lifecycle`,
:class:`MessageStore`, :class:`SessionStore`, :class:`OperatorStore`,
:class:`MetaStore`, :class:`NoteStore`, :class:`BoardStore`). The records it
stores and returns are the dataclasses below. :class:`~chatserver.store.sqlite.SqliteStore`
implements it on one SQLite file, :class:`~chatserver.store.postgres.store.PostgresStore`
on PostgreSQL; ``tests/store/test_contract.py`` runs one test suite against every
implementation.

Obligations every implementation keeps (each method adds its own):

- **Submitted writes.** A ``submit_*`` method queues its write *when called*
  (not when awaited) and returns an :class:`asyncio.Future` that resolves once
  the write is durable, so callers never await one round trip per message and
  never acknowledge before durability. Writes submitted to one store commit,
  and their futures settle, in the order they were submitted (with
  ``journal_enabled``, messages settle at once, ahead of other writes still
  queued); many may share one transaction (group commit). Each write is
  atomic, and one that fails fails its own future only: the others of its
  transaction are committed all the same.
- **Durable** means committed to the database (with the durability its
  configuration asks for: SQLite's ``synchronous``), or, for a store with
  ``journal_enabled``, appended to a journal that survives a crash of the
  process and is copied into the database before anything reads it.
- **A crash** of the process may lose writes whose futures had not resolved,
  never one whose future resolved (of a power loss, what the configured
  durability promises), and never leaves half of a write applied.
- **Reads see every resolved write** of this store, and the committed writes
  of every other store on the same database.
- **Sharing.** Several stores (processes, nodes) may use one database at once,
  unless ``journal_enabled`` (a single node owns it): what must not clash
  (message seqs, note numbers, compare-and-set transitions, meta defaults) is
  decided inside the database's write lock, never from a cached read.
- **Errors.** Reads, and futures of writes the database refused, raise the
  backend's own errors (``sqlite3.Error`` for SQLite, ``psycopg.Error`` for
  PostgreSQL) unless a method names
  another; after :meth:`Lifecycle.close`, new writes fail with
  ``RuntimeError("store is closed")``. Arguments a method rejects raise
  ``ValueError`` at the call, before anything is queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any, Protocol

from chatserver.supervision.board import ChatStat, OpenChat, SlaClock
from chatserver.types import OperatorId, Priority, SessionId, SessionState


@dataclasses.dataclass(slots=True)
class OperatorRecord:
    """An operator account; ``password_hash`` never leaves the server (see :meth:`public`)."""

    operator_id: OperatorId
    username: str
    name: str
    password_hash: str
    role: str
    departments: tuple[str, ...]
    capacity: int
    created_at: float
    levels: tuple[int, ...] = (1,)  # support levels served (1st, 2nd, 3rd)
    lang: str | None = None  # the console's language chosen by the operator (None: the browser's)
    # Bumped whenever the operator's tokens are revoked (logout, password, role, disable).
    token_version: int = 0
    disabled_at: float | None = None  # may not log in; kept in lists for admins
    removed_at: float | None = None  # soft-deleted: hidden from lists, name kept for history

    @property
    def active(self) -> bool:
        """May log in and hold a connection (neither disabled nor removed)."""
        return self.disabled_at is None and self.removed_at is None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.operator_id,
            "name": self.name,
            "username": self.username,
            "role": self.role,
            "capacity": self.capacity,
            "departments": list(self.departments),
            "levels": list(self.levels),
            "lang": self.lang,
        }


# What update_operator may set (names of columns; never id, username or created_at).
UPDATABLE_OPERATOR_FIELDS = frozenset(
    {
        "name",
        "role",
        "departments",
        "capacity",
        "levels",
        "password_hash",
        "disabled_at",
        "removed_at",
    }
)


def operator_update_sql(
    fields: dict[str, Any], revoke: bool, mark: str
) -> tuple[str, tuple[Any, ...]] | None:
    """``UPDATE operators`` for :meth:`OperatorStore.update_operator` with the
    backend's parameter ``mark`` (``?`` or ``%s``): the statement and its values
    before the operator id, or None when nothing changes. ValueError on a field
    that is not in :data:`UPDATABLE_OPERATOR_FIELDS`."""
    unknown = set(fields) - UPDATABLE_OPERATOR_FIELDS
    if unknown:
        raise ValueError(f"not an operator field: {', '.join(sorted(unknown))}")
    values = dict(fields)
    if "departments" in values:
        values["departments"] = ",".join(values["departments"])
    if "levels" in values:
        values["levels"] = ",".join(str(v) for v in sorted(set(values["levels"])))
    sets = [f"{name} = {mark}" for name in values]
    if revoke:
        sets.append("token_version = token_version + 1")
    if not sets:
        return None
    return f"UPDATE operators SET {', '.join(sets)} WHERE id = {mark}", tuple(values.values())


@dataclasses.dataclass(slots=True)
class SessionRecord:
    """A chat as stored; ``last_seq`` is read (its highest message seq), never written."""

    session_id: SessionId
    token_hash: str
    state: SessionState
    created_at: float
    visitor_name: str | None = None
    visitor_email: str | None = None
    page_url: str | None = None
    user_agent: str | None = None
    customer_id: str | None = None
    plan: str | None = None
    priority: Priority = Priority.NORMAL
    department: str | None = None
    operator_id: OperatorId | None = None
    previous_operator: OperatorId | None = None
    assigned_at: float | None = None
    enqueued_at: float | None = None
    closed_at: float | None = None
    visitor_read_seq: int = 0
    operator_read_seq: int = 0
    kind: str = "chat"
    phone: str | None = None
    preferred_times: str | None = None
    level: int = 1
    first_response_at: float | None = None
    sla_first_due: float | None = None
    sla_first_warn: float | None = None
    lang: str | None = None  # the visitor's language (docs/i18n.md), None: not given
    last_seq: int = 0


@dataclasses.dataclass(slots=True)
class MessageRecord:
    """One message of a chat; ``seq`` is given by the store when it is stored."""

    session_id: SessionId
    seq: int
    ts: int
    sender: str
    sender_id: str | None
    author: str | None
    text: str
    client_msg_id: str | None = None
    event: str | None = None
    # Optional extras shown in the frame: "attachments" (list), "ticket" (ref).
    extra: dict[str, Any] | None = None

    def to_frame(self) -> dict[str, Any]:
        frame: dict[str, Any] = {
            "type": "message",
            "session_id": self.session_id,
            "seq": self.seq,
            "from": self.sender,
            "author": self.author,
            "text": self.text,
            "ts": self.ts,
            "client_msg_id": self.client_msg_id,
        }
        if self.event is not None:
            frame["event"] = self.event
        if self.extra:
            frame.update(self.extra)
        return frame


# Session columns that may be updated through submit_session_update.
SESSION_UPDATABLE = frozenset(
    {
        "state",
        "visitor_name",
        "visitor_email",
        "page_url",
        "user_agent",
        "customer_id",
        "plan",
        "lang",
        "priority",
        "department",
        "operator_id",
        "previous_operator",
        "assigned_at",
        "enqueued_at",
        "closed_at",
        "visitor_read_seq",
        "operator_read_seq",
        "kind",
        "phone",
        "preferred_times",
        "level",
        "first_response_at",
        "sla_first_due",
        "sla_first_warn",
        "csat_score",
        "csat_comment",
        "csat_at",
    }
)


@dataclasses.dataclass(frozen=True, slots=True)
class Transition:
    """What a session was before a successful :meth:`SessionStore.submit_transition`."""

    state: SessionState
    operator_id: OperatorId | None


def client_key(sender: str, client_msg_id: str) -> str:
    """The key of a sender's ``client_msg_id`` in the maps of a session's known ids.

    A str, not a ``(sender, client_msg_id)`` tuple: such a map gains an entry per
    message and keeps it, and a tuple is an object the cyclic GC must examine (a
    young-generation pause grows with them), a str is not. A sender never contains
    the separator, so the key is unambiguous.
    """
    return f"{sender}\x00{client_msg_id}"


class DuplicateMessage(Exception):
    """The message's ``client_msg_id`` is already stored (by any process) as ``seq``."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"already stored as seq {seq}")
        self.seq = seq


class Lifecycle(Protocol):
    """Opening, closing and watching a store."""

    async def open(self) -> None:
        """Create or migrate the schema, start the writer, and copy into the
        database whatever a crashed predecessor left in a journal, all before
        returning: the store serves only once its data is whole.

        Raises if the database is newer than this code (``RuntimeError``) or
        cannot be opened."""

    async def close(self) -> None:
        """Commit every write submitted so far (their futures resolve), then
        release connections and locks. Later writes fail with ``RuntimeError``."""

    @property
    def healthy(self) -> bool:
        """Whether the writer runs (``False`` before :meth:`open`, after
        :meth:`close`, or if it died); a node that is not healthy is not ready."""
        ...

    async def ping(self) -> None:
        """A trivial read; raises if the database cannot be read."""

    @property
    def batches(self) -> int:
        """Transactions committed so far (grows by one per group commit)."""
        ...

    @property
    def writes(self) -> int:
        """Writes stored so far (a write is one ``submit_*`` or ``append_message``
        call; a journal copy counts as one more)."""
        ...

    # Called with (writes in it, seconds it took) after every commit (the app's
    # metrics); it must not raise.
    on_batch: Callable[[int, float], None] | None


class MessageStore(Protocol):
    """A chat's messages, numbered by the store.

    Each session's messages are numbered ``seq`` 1, 2, 3, ... without gaps,
    inside the write lock, so any number of stores may write one session. The
    pair (``sender``, ``client_msg_id``) is unique within a session: storing it
    again fails with :class:`DuplicateMessage` carrying the first one's seq, and
    leaves no gap.
    """

    @property
    def journal_enabled(self) -> bool:
        """Whether :meth:`append_message` may be called (a single node's
        journal); ``False`` for a store that other processes share."""
        ...

    def submit_message(
        self,
        message: MessageRecord,
        on_done: Callable[[asyncio.Future[int]], None] | None = None,
    ) -> asyncio.Future[int]:
        """Queue ``message``; the future resolves to its seq once it is durable
        (``message.seq`` is set then), or fails with :class:`DuplicateMessage`
        or the backend's error (nothing of it stored).

        ``on_done`` is called with the settled future right as it settles, in
        commit order across all messages of this store (no extra loop
        iteration, unlike a done-callback); it must not raise (a raise is
        logged). With the journal both happen before this returns.
        """
        ...

    def append_message(self, message: MessageRecord) -> int:
        """Only with ``journal_enabled``: store ``message`` now, set its
        ``seq`` and return it; it is durable against a crash of the process
        when this returns (no future, no callback: the hub's hot path).

        Raises :class:`DuplicateMessage` for a known ``client_msg_id``, or
        another error of the implementation's ``APPEND_ERRORS`` (then nothing
        of it was stored); ``RuntimeError`` without a journal or after close.
        """
        ...

    async def messages_after(
        self, session_id: SessionId, after_seq: int, limit: int
    ) -> list[MessageRecord]:
        """Up to ``limit`` messages of the session with ``seq > after_seq``, in
        seq order; every message whose write resolved is there."""
        ...

    async def client_msg_ids(self, session_id: SessionId) -> dict[tuple[str, str], int]:
        """``{(sender, client_msg_id): seq}`` of a session, for idempotent resends."""
        ...


class SessionStore(Protocol):
    """Chat sessions: created once, then changed field by field or by
    compare-and-set transitions."""

    def submit_session(self, record: SessionRecord) -> asyncio.Future[None]:
        """Queue the insert of a new session (``record.last_seq`` is ignored).

        The future fails with the backend's integrity error if its id or
        token hash exists."""
        ...

    def submit_session_update(self, session_id: SessionId, **fields: Any) -> asyncio.Future[None]:
        """Queue setting ``fields`` (names from :data:`SESSION_UPDATABLE`, else
        ``ValueError`` at once); a session that does not exist is left alone."""
        ...

    def submit_transition(
        self,
        session_id: SessionId,
        expect: tuple[SessionState, ...],
        *,
        expect_operator: OperatorId | None = None,
        **updates: Any,
    ) -> asyncio.Future[Transition | None]:
        """Compare-and-set: apply ``updates`` only if the session is in one of
        ``expect`` (and, if given, assigned to ``expect_operator``), checked and
        changed atomically inside the write lock.

        Resolves to the :class:`Transition` (state and operator before) if it
        applied, ``None`` if the session was missing or someone (any process)
        changed it first. Unknown field names raise ``ValueError`` at once.
        """
        ...

    def submit_first_response(self, session_id: SessionId, at: float) -> asyncio.Future[None]:
        """Record the chat's first operator reply at ``at``, unless one is
        recorded already (by any node): the first one stays."""
        ...

    async def session(self, session_id: SessionId) -> SessionRecord | None:
        """The session with its ``last_seq`` (its highest stored seq, 0 if none)."""
        ...

    async def session_by_token_hash(self, token_hash: str) -> SessionRecord | None:
        """As :meth:`session`, found by the hash of the visitor's token."""
        ...

    async def open_sessions(self) -> list[SessionRecord]:
        """Sessions waiting or assigned, oldest created first (recovery after a
        restart or a dead node)."""
        ...

    async def assigned_sessions(self, operator_id: OperatorId) -> list[SessionRecord]:
        """Assigned sessions of ``operator_id`` (everyone's: :meth:`assigned_by_operator`)."""
        ...

    async def assigned_by_operator(self) -> dict[OperatorId, list[SessionId]]:
        """Every assigned session's id, by operator; cheap (no message lookup)."""
        ...

    async def past_sessions(
        self, customer_id: str | None, email: str | None, *, exclude: SessionId, limit: int = 20
    ) -> list[SessionRecord]:
        """Up to ``limit`` other sessions of the customer (by id if given, else
        by e-mail, case-insensitive; neither: none), newest created first."""
        ...

    async def last_operator_of_customer(
        self, customer_id: str, exclude: SessionId
    ) -> OperatorId | None:
        """The operator (assigned, else previous) of the customer's newest
        other session that had one."""
        ...

    async def set_customer_lang(self, customer_id: str, lang: str | None) -> None:
        """Store the language the customer last chose (their e-mails use it),
        durably before returning; an unknown ``customer_id`` changes nothing."""
        ...


class OperatorStore(Protocol):
    """Operator accounts."""

    async def add_operator(self, record: OperatorRecord) -> None:
        """Insert an operator, durably before returning; ``ValueError`` if its
        username (or id) is taken, by any process."""

    async def operator_by_username(self, username: str) -> OperatorRecord | None: ...

    async def operator(self, operator_id: OperatorId) -> OperatorRecord | None: ...

    async def operators(self) -> list[OperatorRecord]:
        """Every operator, by username."""
        ...

    async def operators_changes(self) -> int:
        """A number that moves whenever any operator is added, changed or removed
        (by any process): read it, then :meth:`operators`, and read them again only
        once it moved."""
        ...

    async def set_operator_lang(self, operator_id: OperatorId, lang: str | None) -> None:
        """Store the operator's console language (None: none chosen), durably
        before returning; an unknown ``operator_id`` changes nothing."""

    async def update_operator(
        self, operator_id: OperatorId, *, revoke: bool = False, **fields: Any
    ) -> OperatorRecord | None:
        """Set account ``fields`` (``name``, ``role``, ``departments``, ``capacity``,
        ``levels``, ``password_hash``, ``disabled_at``, ``removed_at``) in one durable
        write, and with ``revoke`` also add 1 to ``token_version`` (every token issued
        before is refused from then on). Returns the record as stored after the write,
        ``None`` for an unknown id (nothing changed). ``ValueError`` for another field.
        """
        ...


class MetaStore(Protocol):
    """Small string settings of the installation (e.g. its secret key)."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` (replacing it), durably before returning."""

    async def setdefault_meta(self, key: str, value: str) -> str:
        """Store ``value`` unless ``key`` exists; return the stored value. Atomic
        across processes: every caller gets the first value stored."""
        ...


class NoteStore(Protocol):
    """A chat's operators-only thread: supervisor whispers, consults of colleagues."""

    def submit_note(
        self,
        session_id: SessionId,
        ts: float,
        kind: str,
        author_id: str,
        author_name: str,
        text: str,
        to: tuple[str, str] | None = None,
    ) -> asyncio.Future[None]:
        """Queue a note, numbered ``n`` 1, 2, 3, ... per chat inside the write
        lock (no clash between stores). ``to`` is ``(operator id, name)`` of the
        colleague this note consults."""
        ...

    async def notes(self, session_id: SessionId, limit: int = 500) -> list[dict[str, Any]]:
        """The last ``limit`` notes, oldest first, as ``{"n", "ts" (ms), "kind",
        "author": {"id", "name"}, "text", "to": {"id", "name"} or None}``."""
        ...

    async def consulted(self, session_id: SessionId, operator_id: OperatorId) -> bool:
        """Whether a note of this chat consulted ``operator_id``."""
        ...

    async def consulted_open(self, operator_id: OperatorId) -> list[SessionId]:
        """Open (waiting or assigned) chats ``operator_id`` was consulted on."""
        ...


class BoardStore(Protocol):
    """What the supervisor board reads: lean rows, computed on by
    :mod:`chatserver.supervision.board`. Ticket columns are written by the
    ticket storage (:mod:`chatserver.tickets.store`) on the same database."""

    async def open_chats(self) -> list[OpenChat]:
        """Every waiting or assigned chat, in no particular order."""
        ...

    async def first_session_rowid(self, since: float) -> int:
        """A position in the sessions' insertion order (SQLite: the rowid) from
        which on every session created at or after ``since`` lies, to narrow
        :meth:`chat_stats`; ``0`` (everything) is always a correct answer.

        Sessions are inserted about as they are created, give or take the
        commit order of concurrent nodes: callers ask for a little earlier
        than they need."""
        ...

    async def chat_stats(self, since: float, from_rowid: int = 0) -> list[ChatStat]:
        """Timings of every chat enqueued at or after ``since``, among those
        from position ``from_rowid`` on; ``escalated``: it became a ticket."""
        ...

    async def csat_since(self, since: float) -> list[int]:
        """The satisfaction scores (1 to 5) visitors gave at or after ``since``."""
        ...

    async def ticket_sla_clocks(self) -> list[SlaClock]:
        """The first-response and resolution clocks of every ticket not closed:
        one per kind that has a due time or a recorded breach."""
        ...

    async def sla_breaches_since(self, since: float) -> dict[str, int]:
        """Breaches recorded at or after ``since``, counted by kind."""
        ...


class Store(
    Lifecycle,
    MessageStore,
    SessionStore,
    OperatorStore,
    MetaStore,
    NoteStore,
    BoardStore,
    Protocol,
):
    """Everything callers need of a store (see the module's obligations)."""
