"""The knowledge base on PostgreSQL: the :class:`~chatserver.kb.store.base.KbStorage`
contract, searched with PostgreSQL's own full-text search. Any number of nodes share it.

Tables (schema 13, 14 and 16, :mod:`chatserver.store.postgres.schema`): ``kb_articles``,
``kb_revisions`` (append-only: a trigger refuses UPDATE and DELETE), ``kb_counts``,
``kb_feedback`` and ``kb_fts``: per article (``rowid``: its id) the stemmed,
language-prefixed terms of title and body, made in Python exactly as for SQLite
(:func:`~chatserver.kb.model.index_text`, :func:`~chatserver.kb.store.sqlite.namespaced`),
and ``terms``, a generated ``tsvector`` of them (``'simple'`` configuration: it only
splits and lower-cases; the title's weight A, the body's B) with a GIN index.

Queries are ``to_tsquery('simple', …)`` of the same terms (:func:`ts_query`; the word
being typed as a ``:*`` prefix), ranked by ``ts_rank_cd`` with the title weighted
:data:`~chatserver.kb.store.sqlite.TITLE_WEIGHT` times the body (the "any word in a
title" step on ``title_terms``, the title's own vector, also GIN-indexed), in the same
steps as
:meth:`SqliteKbStore.search_now <chatserver.kb.store.sqlite.SqliteKbStore.search_now>`,
so both stores find the same articles in the same order of steps.

Connections come from a small pool (``psycopg_pool``); every write is one transaction;
slugs and groups are unique by index too, so two nodes writing at once cannot both win.
Views and suggestions shown are counted in memory and added by :meth:`flush`
(``ON CONFLICT … DO UPDATE SET n = n + …``: the nodes' counts add up).
"""

from __future__ import annotations

import collections
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.model import (
    Article,
    ArticleFields,
    Author,
    QueryTerms,
    Revision,
    Status,
    Visibility,
)
from chatserver.kb.store.base import (
    Counter,
    Counts,
    Hit,
    IndexedText,
    LanguageTaken,
    SearchQuery,
    SlugTaken,
    Stale,
)
from chatserver.kb.store.sqlite import HOUR, TITLE_WEIGHT, hour_of, namespaced
from chatserver.store.database import Database
from chatserver.store.postgres.store import open_pool

if TYPE_CHECKING:
    from chatserver.kb.store.base import KbStorage

log = logging.getLogger("chatserver.kb.store")

_T = TypeVar("_T")
Conn = psycopg.AsyncConnection[Any]

# ts_rank_cd's weights of D, C, B (the body) and A (the title).
RANK_WEIGHTS = f"'{{0, 0, {1.0 / TITLE_WEIGHT}, 1}}'::float4[]"
# ts_rank_cd's normalisation: divided by 1 + log(the document's length), as bm25 favours
# a short article over a long one that mentions the word as often.
RANK_NORMALISATION = 1

_COLUMNS = (
    "a.id, a.grp, a.lang, a.slug, a.title, a.body, a.department, a.tags, a.visibility,"
    " a.status, a.created_at, a.updated_at, a.updated_by, a.revision, a.views, a.helped,"
    " a.not_helped"
)
_FIELD_COLUMNS = "lang, slug, title, body, department, tags, visibility, status"


def _fields(row: Sequence[Any]) -> ArticleFields:
    lang, slug, title, body, department, tags, visibility, status = row
    return ArticleFields(
        lang, slug, title, body, department, tuple(json.loads(tags)),
        Visibility(visibility), Status(status),
    )  # fmt: skip


def _article(row: Sequence[Any]) -> Article:
    return Article(
        id=int(row[0]),
        group=int(row[1]),
        fields=_fields(row[2:10]),
        created=row[10],
        updated=row[11],
        updated_by=row[12],
        revision=int(row[13]),
        views=int(row[14]),
        helped=int(row[15]),
        not_helped=int(row[16]),
    )


def _field_values(fields: ArticleFields) -> tuple[Any, ...]:
    return (
        fields.lang, fields.slug, fields.title, fields.body, fields.department,
        json.dumps(list(fields.tags), ensure_ascii=False), fields.visibility.value,
        fields.status.value,
    )  # fmt: skip


def ts_query(terms: QueryTerms, namespace: str, *, every: bool = False) -> str | None:
    """A ``to_tsquery`` text for ``terms`` (each after ``namespace``): any of them, or
    (``every``) all whole terms and one of the prefixes; ``None`` when there are none.
    The twin of :func:`~chatserver.kb.model.match_expression`.

    Terms hold only letters and digits (``\\w`` less ``_``), so quoting them is enough.
    """
    whole = [f"'{namespace}{t}'" for t in terms.terms]
    prefixes = [f"'{namespace}{p}':*" for p in terms.prefixes]
    if not every:
        return " | ".join(whole + prefixes) or None
    parts = whole + ([f"({' | '.join(prefixes)})"] if prefixes else [])
    return " & ".join(parts) or None


class PostgresKbStore:
    """:class:`~chatserver.kb.store.base.KbStorage` on a PostgreSQL database (``db``,
    migrated on open)."""

    def __init__(self, db: Database, *, pool_size: int = 4) -> None:
        if db.kind != "postgresql":
            raise ValueError(f"not a PostgreSQL database: {db.describe()}")
        self.db = db
        self.pool_size = pool_size
        self._pool: AsyncConnectionPool[Any] | None = None
        self._hours: collections.Counter[tuple[int, str]] = collections.Counter()
        self._views: collections.Counter[int] = collections.Counter()

    async def open(self) -> None:
        self._pool = await open_pool(self.db, self.pool_size, "kb")

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await self.flush()
            finally:
                await self._pool.close()
                self._pool = None

    def _the_pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            raise RuntimeError("the knowledge base store is not open")
        return self._pool

    async def _read(self, fn: Callable[[Conn], Awaitable[_T]]) -> _T:
        """``fn`` on a pooled connection; again on another if PostgreSQL dropped it."""
        attempts = self.pool_size + 1
        for attempt in range(attempts):
            try:
                async with self._the_pool().connection() as conn:
                    return await fn(conn)
            except psycopg.OperationalError:
                if attempt + 1 == attempts:
                    raise
        raise AssertionError("unreachable")

    async def _tx(self, fn: Callable[[Conn], Awaitable[_T]]) -> _T:
        """``fn`` in one transaction (committed when it returns, else rolled back)."""
        async with self._the_pool().connection() as conn:
            try:
                async with conn.transaction():
                    return await fn(conn)
            except psycopg.errors.UniqueViolation as exc:
                # Another node took the slug or the language between check and write.
                constraint = exc.diag.constraint_name or ""
                if constraint == "kb_articles_slug":
                    raise SlugTaken(str(exc)) from None
                if constraint == "kb_articles_group":
                    raise LanguageTaken(str(exc)) from None
                raise

    @staticmethod
    async def _all(conn: Conn, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        cur = await conn.execute(sql, params or None)
        rows: list[Any] = await cur.fetchall()
        return rows

    # ------------------------------------------------------------- writing
    async def _check_unique(
        self, conn: Conn, fields: ArticleFields, group: int, article_id: int
    ) -> None:
        if await self._all(
            conn,
            "SELECT id FROM kb_articles WHERE lang = %s AND slug = %s AND id != %s",
            (fields.lang, fields.slug, article_id),
        ):
            raise SlugTaken(fields.slug)
        if await self._all(
            conn,
            "SELECT id FROM kb_articles WHERE grp = %s AND lang = %s AND id != %s",
            (group, fields.lang, article_id),
        ):
            raise LanguageTaken(fields.lang)

    async def _group_of(self, conn: Conn, article_id: int) -> int:
        rows = await self._all(conn, "SELECT grp FROM kb_articles WHERE id = %s", (article_id,))
        if not rows:
            raise KeyError(article_id)
        return int(rows[0][0])

    async def _revise(
        self,
        conn: Conn,
        article_id: int,
        n: int,
        group: int,
        fields: ArticleFields,
        by: Author,
        now: float,
        action: str,
    ) -> None:
        await conn.execute(
            "INSERT INTO kb_revisions (article_id, n, at, by_id, by_name, action, grp,"
            f" {_FIELD_COLUMNS}) VALUES ({', '.join(['%s'] * 15)})",
            (article_id, n, now, by.id, by.name, action, group, *_field_values(fields)),
        )

    @staticmethod
    async def _index(conn: Conn, article_id: int, lang: str, text: IndexedText) -> None:
        await conn.execute(
            "INSERT INTO kb_fts (rowid, title, body) VALUES (%s, %s, %s)"
            " ON CONFLICT (rowid) DO UPDATE SET title = excluded.title, body = excluded.body",
            (article_id, namespaced(text.title_terms, lang), namespaced(text.body_terms, lang)),
        )

    async def _select(self, conn: Conn, article_id: int, *, lock: bool = False) -> Article | None:
        rows = await self._all(
            conn,
            f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.id = %s"
            + (" FOR UPDATE" if lock else ""),
            (article_id,),
        )
        return _article(rows[0]) if rows else None

    async def create(
        self,
        fields: ArticleFields,
        text: IndexedText,
        by: Author,
        now: float,
        *,
        group_of: int | None = None,
        action: str = "create",
    ) -> Article:
        async def insert(conn: Conn) -> Article:
            group = None if group_of is None else await self._group_of(conn, group_of)
            [(article_id,)] = await self._all(
                conn, "SELECT nextval(pg_get_serial_sequence('kb_articles', 'id'))"
            )
            group = article_id if group is None else group
            await self._check_unique(conn, fields, group, article_id)
            await conn.execute(
                f"INSERT INTO kb_articles (id, grp, {_FIELD_COLUMNS}, plain, created_at,"
                f" updated_at, updated_by, revision) VALUES ({', '.join(['%s'] * 14)}, 1)",
                (article_id, group, *_field_values(fields), text.plain, now, now, by.name),
            )
            await self._revise(conn, article_id, 1, group, fields, by, now, action)
            await self._index(conn, article_id, fields.lang, text)
            made = await self._select(conn, article_id)
            assert made is not None
            return made

        return await self._tx(insert)

    async def update(
        self,
        article_id: int,
        fields: ArticleFields,
        text: IndexedText,
        by: Author,
        now: float,
        *,
        action: str = "edit",
        expect_revision: int | None = None,
        group_of: int | None = None,
    ) -> Article | None:
        async def change(conn: Conn) -> Article | None:
            # FOR UPDATE: editors on two nodes take turns; the second sees the first's
            # revision (Stale when it started from the older one).
            current = await self._select(conn, article_id, lock=True)
            if current is None:
                raise KeyError(article_id)
            if expect_revision is not None and expect_revision != current.revision:
                raise Stale(current.revision)
            group = current.group if group_of is None else await self._group_of(conn, group_of)
            if current.fields == fields and group == current.group:
                return None
            await self._check_unique(conn, fields, group, article_id)
            n = current.revision + 1
            await conn.execute(
                "UPDATE kb_articles SET grp = %s, lang = %s, slug = %s, title = %s, body = %s,"
                " department = %s, tags = %s, visibility = %s, status = %s, plain = %s,"
                " updated_at = %s, updated_by = %s, revision = %s WHERE id = %s",
                (group, *_field_values(fields), text.plain, now, by.name, n, article_id),
            )
            await self._revise(conn, article_id, n, group, fields, by, now, action)
            await self._index(conn, article_id, fields.lang, text)
            return await self._select(conn, article_id)

        return await self._tx(change)

    # ------------------------------------------------------------- reading
    async def _articles(self, sql: str, params: Sequence[Any] = ()) -> list[Article]:
        rows = await self._read(lambda conn: self._all(conn, sql, params))
        return [_article(r) for r in rows]

    async def article(self, article_id: int) -> Article | None:
        if not -(2**63) <= article_id < 2**63:
            return None
        return await self._read(lambda conn: self._select(conn, article_id))

    async def by_slug(self, lang: str, slug: str) -> Article | None:
        found = await self._articles(
            f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.lang = %s AND a.slug = %s",
            (lang, slug),
        )
        return found[0] if found else None

    async def group(self, group: int) -> list[Article]:
        found = await self._articles(
            f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.grp = %s", (group,)
        )
        order = {lang: i for i, lang in enumerate(LANGUAGES)}
        return sorted(found, key=lambda a: order.get(a.fields.lang, 99))

    async def articles(
        self, *, lang: str | None, status: Status | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        clauses, params = [], []
        if lang is not None:
            clauses.append("a.lang = %s")
            params.append(lang)
        if status is not None:
            clauses.append("a.status = %s")
            params.append(status.value)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""

        async def read(conn: Conn) -> tuple[list[Article], int]:
            [(total,)] = await self._all(conn, f"SELECT COUNT(*) FROM kb_articles a{where}", params)
            rows = await self._all(
                conn,
                f"SELECT {_COLUMNS} FROM kb_articles a{where}"
                " ORDER BY a.updated_at DESC, a.id DESC LIMIT %s OFFSET %s",
                (*params, limit, offset),
            )
            return [_article(r) for r in rows], int(total)

        return await self._read(read)

    async def every_article(self) -> list[Article]:
        return await self._articles(f"SELECT {_COLUMNS} FROM kb_articles a ORDER BY a.id")

    async def search(self, query: SearchQuery) -> tuple[list[Hit], int]:
        """The steps of :meth:`SqliteKbStore.search_now
        <chatserver.kb.store.sqlite.SqliteKbStore.search_now>`: per language, first the
        articles with every word (and the prefix), then those with any word in the title,
        then those with any word at all, each after the ones before, while fewer than the
        page. ``rank`` is ``-ts_rank_cd`` (lower: better, as bm25's)."""
        clauses = ["f.terms @@ q.q", "a.lang = %s"]
        extra: list[Any] = []
        if query.status is not None:
            clauses.append("a.status = %s")
            extra.append(query.status.value)
        elif not query.include_drafts:
            clauses.append("a.status = 'published'")
        if not query.include_agents:
            clauses.append("a.visibility = 'public'")
        if query.department is not None:
            clauses.append("(a.department = %s OR a.department IS NULL)")
            extra.append(query.department)
        where = " AND ".join(clauses)
        wanted = query.offset + query.limit

        def ranked(column: str, rank: str) -> str:
            # The ids and ranks of the best matches first; only those rows' columns after.
            return (
                f"WITH m AS (SELECT a.id, -ts_rank_cd({rank}, q.q, {RANK_NORMALISATION}) AS r"
                " FROM kb_fts f JOIN kb_articles a ON a.id = f.rowid,"
                f" to_tsquery('simple', %s) AS q(q) WHERE f.{column} @@ q.q AND {where}"
                f" ORDER BY r, a.id LIMIT %s) SELECT {_COLUMNS}, a.plain, m.r FROM m"
                " JOIN kb_articles a ON a.id = m.id ORDER BY m.r, m.id"
            )

        everywhere = ranked("terms", f"{RANK_WEIGHTS}, f.terms")
        # Any word in a title: matched and ranked on the title's own small tsvector.
        in_titles = ranked("title_terms", "f.title_terms")

        async def run(conn: Conn) -> tuple[list[Hit], int]:
            found: list[tuple[int, float, int, Hit]] = []
            total = 0
            for lang, terms in query.terms.items():
                broad = ts_query(terms, lang)
                if broad is None:
                    continue
                steps = [(everywhere, broad)]
                if not query.count_all:
                    steps.insert(0, (in_titles, broad))
                    narrow = ts_query(terms, lang, every=True)
                    if narrow is not None and len(terms.terms) + bool(terms.prefixes) > 1:
                        steps.insert(0, (everywhere, narrow))
                else:
                    [(count,)] = await self._all(
                        conn,
                        "SELECT COUNT(*) FROM kb_fts f JOIN kb_articles a ON a.id = f.rowid,"
                        f" to_tsquery('simple', %s) AS q(q) WHERE f.terms @@ q.q AND {where}",
                        (broad, lang, *extra),
                    )
                    total += int(count)
                seen: set[int] = set()
                for step, (sql, expression) in enumerate(steps):
                    if len(seen) >= wanted:
                        break
                    rows = await self._all(conn, sql, (expression, lang, *extra, wanted))
                    for row in rows:
                        if row[0] not in seen:
                            seen.add(row[0])
                            rank = float(row[-1])
                            hit = Hit(_article(row[:-2]), row[-2], rank)
                            found.append((step, rank, int(row[0]), hit))
            found.sort(key=lambda item: item[:3])
            return [hit for *_, hit in found[query.offset : wanted]], total

        return await self._read(run)

    async def revisions(self, article_id: int) -> list[Revision]:
        if not -(2**63) <= article_id < 2**63:
            return []
        rows = await self._read(
            lambda conn: self._all(
                conn,
                f"SELECT article_id, n, at, by_id, by_name, action, {_FIELD_COLUMNS}"
                " FROM kb_revisions WHERE article_id = %s ORDER BY n DESC",
                (article_id,),
            )
        )
        return [
            Revision(int(r[0]), int(r[1]), r[2], Author(r[3], r[4]), r[5], _fields(r[6:14]))
            for r in rows
        ]

    # ------------------------------------------------------------- counters
    def count(self, counter: Counter, n: int, now: float, article_id: int | None = None) -> None:
        if n <= 0:
            return
        self._hours[(hour_of(now), counter.value)] += n
        if article_id is not None and counter is Counter.VIEWS:
            self._views[article_id] += n

    async def flush(self) -> None:
        if not self._hours and not self._views:
            return
        hours, self._hours = self._hours, collections.Counter()
        views, self._views = self._views, collections.Counter()

        async def write(conn: Conn) -> None:
            async with conn.cursor() as cur:
                if hours:
                    await cur.executemany(
                        "INSERT INTO kb_counts (hour, counter, n) VALUES (%s, %s, %s)"
                        " ON CONFLICT (hour, counter) DO UPDATE SET n = kb_counts.n + excluded.n",
                        [(hour, counter, n) for (hour, counter), n in sorted(hours.items())],
                    )
                if views:
                    await cur.executemany(
                        "UPDATE kb_articles SET views = views + %s WHERE id = %s",
                        [(n, article_id) for article_id, n in sorted(views.items())],
                    )

        try:
            await self._tx(write)
        except Exception:
            self._hours.update(hours)  # try again with the next flush
            self._views.update(views)
            raise

    async def feedback(
        self, article_id: int, helped: bool, session_key: str | None, now: float, *, deflect: bool
    ) -> bool:
        async def write(conn: Conn) -> bool:
            if session_key is not None:
                cur = await conn.execute(
                    "INSERT INTO kb_feedback (article_id, session_key, helped, at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (article_id, session_key) DO NOTHING",
                    (article_id, session_key, int(helped), now),
                )
                if cur.rowcount == 0:
                    return False
            column = "helped" if helped else "not_helped"
            await conn.execute(
                f"UPDATE kb_articles SET {column} = {column} + 1 WHERE id = %s", (article_id,)
            )
            if deflect and helped:
                await conn.execute(
                    "INSERT INTO kb_counts (hour, counter, n) VALUES (%s, %s, 1)"
                    " ON CONFLICT (hour, counter) DO UPDATE SET n = kb_counts.n + 1",
                    (hour_of(now), Counter.DEFLECTED.value),
                )
            return True

        return await self._tx(write)

    async def counts(self, hour_start: float, day_start: float) -> Counts:
        """Sums of the hours that overlap each window (an hour bucket is UTC's)."""
        await self.flush()
        rows = await self._read(
            lambda conn: self._all(
                conn,
                "SELECT counter, SUM(CASE WHEN hour + %s > %s THEN n ELSE 0 END), SUM(n)"
                " FROM kb_counts WHERE hour + %s > %s GROUP BY counter",
                (HOUR, hour_start, HOUR, day_start),
            )
        )
        found = {counter: (int(hour or 0), int(day or 0)) for counter, hour, day in rows}
        views = found.get(Counter.VIEWS.value, (0, 0))
        shown = found.get(Counter.SHOWN.value, (0, 0))
        deflected = found.get(Counter.DEFLECTED.value, (0, 0))
        return Counts(views[0], views[1], shown[0], shown[1], deflected[0], deflected[1])


if TYPE_CHECKING:
    _: type[KbStorage] = PostgresKbStore
