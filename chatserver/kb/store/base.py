"""The knowledge base's storage contract: what every implementation promises.

:class:`KbStorage` is what :class:`~chatserver.kb.service.KnowledgeBase` and
``chatserver kb import|export`` need. :class:`~chatserver.kb.store.sqlite.SqliteKbStore`
implements it on the store's SQLite file with FTS5,
:class:`~chatserver.kb.store.postgres.PostgresKbStore` on PostgreSQL with its own
full-text search over the same terms (:class:`SearchQuery`'s ``terms``).

Obligations every implementation keeps (each method adds its own):

- **One transaction per write.** A write commits before it returns, all or nothing;
  the slug is unique per language and a translation group holds one article per
  language, decided inside the database (:class:`SlugTaken`, :class:`LanguageTaken`).
- **Every change is a revision.** :meth:`KbStorage.create` and :meth:`KbStorage.update`
  append a :class:`~chatserver.kb.model.Revision` holding the whole fields after the
  change; revisions are never changed or deleted. An update that changes nothing
  writes nothing (no revision) and returns ``None``.
- **Search sees what was committed**: an article is found by :meth:`KbStorage.search`
  as soon as the write that made it published returns.
- **Counters** (:meth:`KbStorage.count`) may be buffered in memory and written later
  (:meth:`KbStorage.flush`, also on :meth:`KbStorage.close`); :meth:`KbStorage.counts`
  includes what this process has buffered.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Protocol

from chatserver.kb.model import Article, ArticleFields, Author, QueryTerms, Revision, Status


class SlugTaken(Exception):
    """Another article of that language has that slug."""


class LanguageTaken(Exception):
    """The translation group already has an article in that language."""


class Stale(Exception):
    """The article moved on since the revision the editor started from."""


class Counter(enum.StrEnum):
    """What the board counts per hour."""

    VIEWS = "views"  # articles opened (API or help page)
    SHOWN = "shown"  # suggestions shown in the widget (results of searches)
    DEFLECTED = "deflected"  # "yes, this answered my question" in the widget


@dataclasses.dataclass(frozen=True, slots=True)
class IndexedText:
    """An article's searchable text: plain (for snippets) and its terms (for FTS5 or a
    ``tsvector``, made by :func:`~chatserver.kb.model.index_text`)."""

    plain: str
    title_terms: str
    body_terms: str


@dataclasses.dataclass(frozen=True, slots=True)
class SearchQuery:
    """A search: ``terms`` per language (made by :func:`~chatserver.kb.model.query_terms`;
    the languages searched are its keys), the raw ``text`` for a database with its own
    analysis, and the filters."""

    text: str
    terms: dict[str, QueryTerms]
    department: str | None = None
    include_agents: bool = False  # agents-only articles too (operators)
    include_drafts: bool = False  # drafts too (authoring); else published only
    status: Status | None = None  # only articles of this status (authoring's filter)
    limit: int = 3
    offset: int = 0
    count_all: bool = False  # also count every match (the total); else the total is 0


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    """An article found, with its plain text (for a snippet) and its rank (lower: better)."""

    article: Article
    plain: str
    rank: float


@dataclasses.dataclass(frozen=True, slots=True)
class Counts:
    """The board's figures: this hour and today (the windows the caller gives)."""

    views_hour: int = 0
    views_today: int = 0
    shown_hour: int = 0
    shown_today: int = 0
    deflected_hour: int = 0
    deflected_today: int = 0

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class KbStorage(Protocol):
    """Articles, revisions, search and counters. All methods are coroutines."""

    async def open(self) -> None: ...

    async def close(self) -> None:
        """Write buffered counters, then release the connection."""

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
        """A new article (and its first revision). ``group_of``: the id of an article
        whose translation group it joins (``KeyError`` if there is none)."""

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
        """Replace the article's fields (a revision); ``None`` when nothing differs.

        ``KeyError``: no such article; :class:`Stale`: ``expect_revision`` is given and
        not the current one; ``group_of``: move it into that article's group.
        """

    async def article(self, article_id: int) -> Article | None: ...

    async def by_slug(self, lang: str, slug: str) -> Article | None: ...

    async def group(self, group: int) -> list[Article]:
        """Every article of a translation group, by language order of :data:`LANGUAGES`."""

    async def articles(
        self, *, lang: str | None, status: Status | None, limit: int, offset: int
    ) -> tuple[list[Article], int]:
        """Articles newest edit first, and how many match in all."""

    async def every_article(self) -> list[Article]:
        """All articles (for export), by id."""

    async def search(self, query: SearchQuery) -> tuple[list[Hit], int]:
        """Articles matching any term, best first (title counts more than body); the
        page ``query.offset`` / ``query.limit`` and how many match in all."""

    async def revisions(self, article_id: int) -> list[Revision]:
        """Newest first; ``[]`` for an unknown article."""

    def count(self, counter: Counter, n: int, now: float, article_id: int | None = None) -> None:
        """Add ``n`` to ``counter`` for the hour of ``now`` (and to the article's views)."""

    async def flush(self) -> None:
        """Write buffered counters now."""

    async def feedback(
        self, article_id: int, helped: bool, session_key: str | None, now: float, *, deflect: bool
    ) -> bool:
        """Count an answer to "did this help?"; with ``session_key`` only the first of that
        session for that article counts. ``deflect``: also count a deflected chat.
        ``True`` when it was counted."""

    async def counts(self, hour_start: float, day_start: float) -> Counts: ...


__all__ = [
    "Counter",
    "Counts",
    "Hit",
    "IndexedText",
    "KbStorage",
    "LanguageTaken",
    "SearchQuery",
    "SlugTaken",
    "Stale",
]
