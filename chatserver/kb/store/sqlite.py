"""The knowledge base on the store's SQLite file: the
:class:`~chatserver.kb.store.base.KbStorage` contract, searched with FTS5.

Tables (schema 13 and 14, :mod:`chatserver.store.sqlite.schema`): ``kb_articles``,
``kb_revisions`` (append-only: triggers refuse UPDATE and DELETE), ``kb_counts`` (per
hour and counter), ``kb_feedback`` (one answer per visitor session and article) and
``kb_fts``, an FTS5 table whose rowid is the article's id and whose two columns hold the
stemmed terms of title and body (:func:`~chatserver.kb.model.index_text`: stemming
happens in Python, so FTS5's own ``unicode61`` tokenizer only splits on spaces). Ranking
is FTS5's bm25 with the title weighted :data:`TITLE_WEIGHT` times the body; the table
keeps prefix indexes of 2 and 3 characters for the word being typed.

Every operation runs on one dedicated connection and thread; writes are one short
``BEGIN IMMEDIATE`` transaction, so several processes may share the file. Views and
suggestions shown are counted in memory and written by :meth:`SqliteKbStore.flush`
(the service calls it every second, and :meth:`~SqliteKbStore.counts` first).
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.model import (
    Article,
    ArticleFields,
    Author,
    Revision,
    Status,
    Visibility,
    match_expression,
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
from chatserver.store.sqlite import connect_sync

if TYPE_CHECKING:
    from chatserver.kb.store.base import KbStorage

log = logging.getLogger("chatserver.kb.store")

_T = TypeVar("_T")

TITLE_WEIGHT = 4.0
HOUR = 3600

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
        id=row[0],
        group=row[1],
        fields=_fields(row[2:10]),
        created=row[10],
        updated=row[11],
        updated_by=row[12],
        revision=row[13],
        views=row[14],
        helped=row[15],
        not_helped=row[16],
    )


def _field_values(fields: ArticleFields) -> tuple[Any, ...]:
    return (
        fields.lang, fields.slug, fields.title, fields.body, fields.department,
        json.dumps(list(fields.tags), ensure_ascii=False), fields.visibility.value,
        fields.status.value,
    )  # fmt: skip


def namespaced(terms: str, lang: str) -> str:
    """``terms`` each prefixed with ``lang`` (``druck`` -> ``dedruck``): a language's
    searches never walk another language's posting lists."""
    return " ".join(lang + term for term in terms.split())


def hour_of(now: float) -> int:
    """The start of the hour (since the epoch, UTC) that ``now`` falls in."""
    return int(now // HOUR) * HOUR


class SqliteKbStore:
    """:class:`~chatserver.kb.store.base.KbStorage` on a SQLite file (migrated on open)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._hours: collections.Counter[tuple[int, str]] = collections.Counter()
        self._views: collections.Counter[int] = collections.Counter()

    async def open(self) -> None:
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kb")
        self._conn = await self._run(lambda: connect_sync(self.path))

    async def close(self) -> None:
        if self._conn is not None:
            await self.flush()
            await self._run(self._conn.close)
            self._conn = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, fn: Callable[[], _T]) -> _T:
        if self._executor is None:
            raise RuntimeError("the knowledge base store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _tx(self, fn: Callable[[sqlite3.Connection], _T]) -> _T:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = fn(conn)
            conn.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        assert self._conn is not None
        return self._conn.execute(sql, params).fetchall()

    # ------------------------------------------------------------- writing
    @staticmethod
    def _check_unique(
        conn: sqlite3.Connection, fields: ArticleFields, group: int, article_id: int
    ) -> None:
        taken = conn.execute(
            "SELECT id FROM kb_articles WHERE lang = ? AND slug = ? AND id != ?",
            (fields.lang, fields.slug, article_id),
        ).fetchone()
        if taken:
            raise SlugTaken(fields.slug)
        taken = conn.execute(
            "SELECT id FROM kb_articles WHERE grp = ? AND lang = ? AND id != ?",
            (group, fields.lang, article_id),
        ).fetchone()
        if taken:
            raise LanguageTaken(fields.lang)

    @staticmethod
    def _group_of(conn: sqlite3.Connection, article_id: int) -> int:
        row = conn.execute("SELECT grp FROM kb_articles WHERE id = ?", (article_id,)).fetchone()
        if row is None:
            raise KeyError(article_id)
        return int(row[0])

    @staticmethod
    def _revise(
        conn: sqlite3.Connection,
        article_id: int,
        n: int,
        group: int,
        fields: ArticleFields,
        by: Author,
        now: float,
        action: str,
    ) -> None:
        conn.execute(
            "INSERT INTO kb_revisions (article_id, n, at, by_id, by_name, action, grp,"
            f" {_FIELD_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (article_id, n, now, by.id, by.name, action, group, *_field_values(fields)),
        )

    @staticmethod
    def _index(conn: sqlite3.Connection, article_id: int, lang: str, text: IndexedText) -> None:
        conn.execute("DELETE FROM kb_fts WHERE rowid = ?", (article_id,))
        conn.execute(
            "INSERT INTO kb_fts (rowid, title, body) VALUES (?, ?, ?)",
            (article_id, namespaced(text.title_terms, lang), namespaced(text.body_terms, lang)),
        )

    def _select(self, conn: sqlite3.Connection, article_id: int) -> Article:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.id = ?", (article_id,)
        ).fetchone()
        return _article(row)

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
        def insert(conn: sqlite3.Connection) -> Article:
            article_id = int(
                conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM kb_articles").fetchone()[0]
            )
            group = article_id if group_of is None else self._group_of(conn, group_of)
            self._check_unique(conn, fields, group, article_id)
            conn.execute(
                f"INSERT INTO kb_articles (id, grp, {_FIELD_COLUMNS}, plain, created_at,"
                " updated_at, updated_by, revision) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                (article_id, group, *_field_values(fields), text.plain, now, now, by.name),
            )
            self._revise(conn, article_id, 1, group, fields, by, now, action)
            self._index(conn, article_id, fields.lang, text)
            return self._select(conn, article_id)

        return await self._run(lambda: self._tx(insert))

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
        def change(conn: sqlite3.Connection) -> Article | None:
            current = self._select_or_none(conn, article_id)
            if current is None:
                raise KeyError(article_id)
            if expect_revision is not None and expect_revision != current.revision:
                raise Stale(current.revision)
            group = current.group if group_of is None else self._group_of(conn, group_of)
            if current.fields == fields and group == current.group:
                return None
            self._check_unique(conn, fields, group, article_id)
            n = current.revision + 1
            conn.execute(
                "UPDATE kb_articles SET grp = ?, lang = ?, slug = ?, title = ?, body = ?,"
                " department = ?, tags = ?, visibility = ?, status = ?, plain = ?,"
                " updated_at = ?, updated_by = ?, revision = ? WHERE id = ?",
                (group, *_field_values(fields), text.plain, now, by.name, n, article_id),
            )
            self._revise(conn, article_id, n, group, fields, by, now, action)
            self._index(conn, article_id, fields.lang, text)
            return self._select(conn, article_id)

        return await self._run(lambda: self._tx(change))

    def _select_or_none(self, conn: sqlite3.Connection, article_id: int) -> Article | None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.id = ?", (article_id,)
        ).fetchone()
        return None if row is None else _article(row)

    # ------------------------------------------------------------- reading
    async def article(self, article_id: int) -> Article | None:
        assert self._conn is not None
        conn = self._conn
        return await self._run(lambda: self._select_or_none(conn, article_id))

    async def by_slug(self, lang: str, slug: str) -> Article | None:
        rows = await self._run(
            lambda: self._q(
                f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.lang = ? AND a.slug = ?",
                (lang, slug),
            )
        )
        return _article(rows[0]) if rows else None

    async def group(self, group: int) -> list[Article]:
        rows = await self._run(
            lambda: self._q(f"SELECT {_COLUMNS} FROM kb_articles a WHERE a.grp = ?", (group,))
        )
        order = {lang: i for i, lang in enumerate(LANGUAGES)}
        return sorted((_article(r) for r in rows), key=lambda a: order.get(a.fields.lang, 99))

    async def articles(
        self, *, lang: str | None, status: Status | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        where, params = self._filters(lang, status)

        def read() -> tuple[list[Article], int]:
            total = self._q(f"SELECT COUNT(*) FROM kb_articles a{where}", params)[0][0]
            rows = self._q(
                f"SELECT {_COLUMNS} FROM kb_articles a{where}"
                " ORDER BY a.updated_at DESC, a.id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            return [_article(r) for r in rows], int(total)

        return await self._run(read)

    @staticmethod
    def _filters(lang: str | None, status: Status | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if lang is not None:
            clauses.append("a.lang = ?")
            params.append(lang)
        if status is not None:
            clauses.append("a.status = ?")
            params.append(status.value)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    async def every_article(self) -> list[Article]:
        rows = await self._run(
            lambda: self._q(f"SELECT {_COLUMNS} FROM kb_articles a ORDER BY a.id")
        )
        return [_article(r) for r in rows]

    async def search(self, query: SearchQuery) -> tuple[list[Hit], int]:
        return await self._run(lambda: self.search_now(query))

    def search_now(self, query: SearchQuery) -> tuple[list[Hit], int]:
        """:meth:`search` on the calling thread (the store's own).

        Per language, first the articles with every word (and the prefix), ranked; only
        while they are fewer than the page, those with any of the words in the title, then
        those with any of them at all, each after the ones before. Most typed queries end
        after a narrow step, so ranking (bm25 over every match) stays cheap.
        """
        clauses = ["kb_fts MATCH ?", "a.lang = ?"]
        extra: list[Any] = []
        if query.status is not None:
            clauses.append(f"a.status = '{query.status.value}'")
        elif not query.include_drafts:
            clauses.append("a.status = 'published'")
        if not query.include_agents:
            clauses.append("a.visibility = 'public'")
        if query.department is not None:
            clauses.append("(a.department = ? OR a.department IS NULL)")
            extra.append(query.department)
        where = " AND ".join(clauses)
        wanted = query.offset + query.limit
        found: list[tuple[int, float, int, Hit]] = []
        total = 0
        for lang, terms in query.terms.items():
            narrow = match_expression(terms, lang, every=True)
            broad = match_expression(terms, lang)
            if broad is None:
                continue
            seen: set[int] = set()
            if query.count_all:
                steps = [broad]
            else:
                # Every word; then any word in a title (titles are short: few rows to
                # rank); then any word anywhere.
                steps = [f"title : ({broad})", broad]
                if narrow is not None and len(terms.terms) + bool(terms.prefixes) > 1:
                    steps.insert(0, narrow)
            for step, expression in enumerate(steps):
                if len(seen) >= wanted:
                    break
                try:
                    rows = self._q(
                        f"SELECT {_COLUMNS}, a.plain, bm25(kb_fts, {TITLE_WEIGHT}, 1.0) AS r"
                        f" FROM kb_fts JOIN kb_articles a ON a.id = kb_fts.rowid WHERE {where}"
                        " ORDER BY r LIMIT ?",
                        (expression, lang, *extra, wanted),
                    )
                    if query.count_all:
                        total += self._q(
                            "SELECT COUNT(*) FROM kb_fts JOIN kb_articles a"
                            f" ON a.id = kb_fts.rowid WHERE {where}",
                            (expression, lang, *extra),
                        )[0][0]
                except sqlite3.OperationalError as exc:
                    # A term FTS5 cannot parse (model.match_expression should make none).
                    log.warning("kb search %r refused by FTS5: %s", expression, exc)
                    break
                for row in rows:
                    if row[0] not in seen:
                        seen.add(row[0])
                        hit = Hit(_article(row[:-2]), row[-2], row[-1])
                        found.append((step, row[-1], row[0], hit))
        found.sort(key=lambda item: item[:3])
        return [hit for *_, hit in found[query.offset : wanted]], total

    async def revisions(self, article_id: int) -> list[Revision]:
        rows = await self._run(
            lambda: self._q(
                f"SELECT article_id, n, at, by_id, by_name, action, {_FIELD_COLUMNS}"
                " FROM kb_revisions WHERE article_id = ? ORDER BY n DESC",
                (article_id,),
            )
        )
        return [
            Revision(r[0], r[1], r[2], Author(r[3], r[4]), r[5], _fields(r[6:14])) for r in rows
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

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO kb_counts (hour, counter, n) VALUES (?, ?, ?)"
                " ON CONFLICT (hour, counter) DO UPDATE SET n = n + excluded.n",
                [(hour, counter, n) for (hour, counter), n in hours.items()],
            )
            conn.executemany(
                "UPDATE kb_articles SET views = views + ? WHERE id = ?",
                [(n, article_id) for article_id, n in views.items()],
            )

        try:
            await self._run(lambda: self._tx(write))
        except Exception:
            self._hours.update(hours)  # try again with the next flush
            self._views.update(views)
            raise

    async def feedback(
        self, article_id: int, helped: bool, session_key: str | None, now: float, *, deflect: bool
    ) -> bool:
        def write(conn: sqlite3.Connection) -> bool:
            if session_key is not None:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO kb_feedback (article_id, session_key, helped, at)"
                    " VALUES (?, ?, ?, ?)",
                    (article_id, session_key, int(helped), now),
                )
                if cursor.rowcount == 0:
                    return False
            column = "helped" if helped else "not_helped"
            conn.execute(
                f"UPDATE kb_articles SET {column} = {column} + 1 WHERE id = ?", (article_id,)
            )
            if deflect and helped:
                conn.execute(
                    "INSERT INTO kb_counts (hour, counter, n) VALUES (?, ?, 1)"
                    " ON CONFLICT (hour, counter) DO UPDATE SET n = n + 1",
                    (hour_of(now), Counter.DEFLECTED.value),
                )
            return True

        return await self._run(lambda: self._tx(write))

    async def counts(self, hour_start: float, day_start: float) -> Counts:
        """Sums of the hours that overlap each window (an hour bucket is UTC's)."""
        await self.flush()
        rows = await self._run(
            lambda: self._q(
                "SELECT counter, SUM(CASE WHEN hour + ? > ? THEN n ELSE 0 END), SUM(n)"
                " FROM kb_counts WHERE hour + ? > ? GROUP BY counter",
                (HOUR, hour_start, HOUR, day_start),
            )
        )
        found = {counter: (int(hour or 0), int(day or 0)) for counter, hour, day in rows}
        views = found.get(Counter.VIEWS.value, (0, 0))
        shown = found.get(Counter.SHOWN.value, (0, 0))
        deflected = found.get(Counter.DEFLECTED.value, (0, 0))
        return Counts(views[0], views[1], shown[0], shown[1], deflected[0], deflected[1])


if TYPE_CHECKING:
    _: type[KbStorage] = SqliteKbStore
