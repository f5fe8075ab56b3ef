"""The knowledge base's actions: search, reading, feedback, authoring and the board's figures.

:class:`KnowledgeBase` checks every input (through :mod:`chatserver.kb.model`), decides who
may see or change what, and calls the :class:`~chatserver.kb.store.base.KbStorage`. Every
refusal is a :class:`~chatserver.errors.ChatError`:

- a bad value: :class:`~chatserver.errors.BadRequest` (400) naming it;
- writing without the supervisor or admin role: :class:`~chatserver.errors.Forbidden` (403);
- an article that does not exist or that the caller may not see (a draft, an agents-only
  article asked for by a visitor): :class:`~chatserver.errors.NotFound` (404), the same
  answer for each, so a visitor cannot probe for hidden slugs;
- a slug or language already taken, an edit of an older revision:
  :class:`~chatserver.errors.InvalidState` (409).

Who is asking is an :class:`~chatserver.store.base.OperatorRecord` (an authenticated
operator of any role) or ``None`` (a visitor). Searching adds no work to the chat path:
it is its own HTTP request, served by the store's own connection and thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from chatserver.errors import BadRequest, Forbidden, InvalidState, NotFound
from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.model import (
    MAX_BODY,
    MAX_QUERY,
    Article,
    ArticleFields,
    Author,
    FieldError,
    Revision,
    Status,
    Visibility,
    check_fields,
    index_text,
    plain_text,
    query_terms,
    render_html,
    snippet,
)
from chatserver.kb.store.base import (
    Counter,
    Hit,
    IndexedText,
    KbStorage,
    LanguageTaken,
    SearchQuery,
    SlugTaken,
    Stale,
)
from chatserver.store.base import OperatorRecord
from chatserver.types import Role

log = logging.getLogger("chatserver.kb")

_T = TypeVar("_T")

SOURCES = ("widget", "console", "help")
# A visitor's chat session id as feedback names it (chatserver.chat.visitor: s_ + 16).
SESSION_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
AUTHORS = (Role.SUPERVISOR.value, Role.ADMIN.value)
FLUSH_INTERVAL = 1.0
# Keys a PUT may carry besides the editable ones: an article's read-only fields, ignored
# (a console may send back what it got).
_READ_ONLY = {
    "id", "group", "html", "created", "updated", "updated_by", "views", "helped",
    "not_helped", "url", "translations",
}  # fmt: skip
_EDITABLE = {"title", "body", "lang", "slug", "department", "tags", "visibility", "status"}
_NOT_FOUND = "no such article"


def indexed(fields: ArticleFields) -> IndexedText:
    """What the store indexes of ``fields``."""
    plain = plain_text(fields.body)
    return IndexedText(plain, index_text(fields.title, fields.lang), index_text(plain, fields.lang))


def help_url(article: Article) -> str | None:
    """The public help page of ``article``; ``None`` when it is for agents only."""
    if article.fields.visibility is not Visibility.PUBLIC:
        return None
    return f"/help/{article.fields.lang}/{article.fields.slug}"


def api_url(article: Article) -> str:
    return f"/api/kb/articles/{article.fields.lang}/{article.fields.slug}"


def session_key(session: str) -> str:
    """How a visitor's session is kept in ``kb_feedback``: a hash, never the token."""
    return hashlib.sha256(session.encode()).hexdigest()[:40]


def _bad(exc: FieldError) -> BadRequest:
    return BadRequest(exc.message)


class KnowledgeBase:
    """The knowledge base of one node (on a shared :class:`KbStorage`)."""

    def __init__(
        self,
        store: KbStorage,
        clock: Callable[[], float] = time.time,
        sessions: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """``sessions``: whether a visitor's chat session of that id exists (a feedback's
        ``session`` is checked with it; ``None``: none is known, every one is refused)."""
        self.store = store
        self.clock = clock
        self.sessions = sessions

    async def run(self) -> None:
        """Write buffered counters every :data:`FLUSH_INTERVAL` seconds (a node task)."""
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            try:
                await self.store.flush()
            except Exception:
                log.exception("writing knowledge base counters failed")

    # -------------------------------------------------------------- reading
    @staticmethod
    def _visible(article: Article | None, viewer: OperatorRecord | None) -> Article:
        if article is None or article.fields.status is not Status.PUBLISHED:
            raise NotFound(_NOT_FOUND)
        if viewer is None and article.fields.visibility is not Visibility.PUBLIC:
            raise NotFound(_NOT_FOUND)
        return article

    async def search(
        self,
        text: str,
        *,
        lang: str | None,
        department: str | None = None,
        limit: int = 3,
        viewer: OperatorRecord | None = None,
        source: str | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> list[dict[str, Any]]:
        """Published articles matching ``text``, best first, as the search API answers.

        ``source == "widget"`` counts the results as suggestions shown. ``admit`` runs
        once the input is found good, before the search (a rate limit: it raises).
        """
        text = _query(text)
        langs = (lang,) if lang is not None else LANGUAGES
        if lang is not None and lang not in LANGUAGES:
            raise BadRequest(f"lang must be one of {', '.join(LANGUAGES)}")
        if source is not None and source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
        if not 1 <= limit <= 10:
            raise BadRequest("limit must be a whole number between 1 and 10")
        terms = {code: query_terms(text, code) for code in langs}
        terms = {code: t for code, t in terms.items() if t}
        if admit is not None:
            await admit()
        if not terms:
            return []
        query = SearchQuery(
            text, terms, department=department, include_agents=viewer is not None, limit=limit
        )
        hits, _ = await self.store.search(query)
        if source == "widget":
            self.store.count(Counter.SHOWN, len(hits), self.clock())
        return [self._result(hit, terms, viewer is not None) for hit in hits]

    @staticmethod
    def _result(hit: Hit, terms: Mapping[str, Any], operator: bool) -> dict[str, Any]:
        article = hit.article
        lang = article.fields.lang
        result: dict[str, Any] = {
            "id": article.id,
            "slug": article.fields.slug,
            "title": article.fields.title,
            "snippet": snippet(hit.plain, terms[lang], lang),
            "lang": lang,
            "url": help_url(article),
            "api_url": api_url(article),
            "department": article.fields.department,
        }
        if operator:
            result["visibility"] = article.fields.visibility.value
        return result

    async def read(
        self, lang: str, slug: str, viewer: OperatorRecord | None, source: str | None = None
    ) -> tuple[Article, list[Article]]:
        """The article and its translations ``viewer`` may see; counts a view."""
        if source is not None and source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
        if lang not in LANGUAGES or len(slug) > 200:
            raise NotFound(_NOT_FOUND)
        article = self._visible(await self.store.by_slug(lang, slug), viewer)
        self.store.count(Counter.VIEWS, 1, self.clock(), article.id)
        return article, await self._translations(article, viewer)

    async def _translations(self, article: Article, viewer: OperatorRecord | None) -> list[Article]:
        members = await self.store.group(article.group)
        out = []
        for other in members:
            if other.id == article.id:
                continue
            try:
                out.append(self._visible(other, viewer))
            except NotFound:
                continue
        return out

    def article_json(self, article: Article, translations: list[Article]) -> dict[str, Any]:
        """An article as ``GET /api/kb/articles/{lang}/{slug}`` answers."""
        f = article.fields
        return {
            "id": article.id,
            "slug": f.slug,
            "title": f.title,
            "lang": f.lang,
            "html": render_html(f.body),
            "url": help_url(article),
            "api_url": api_url(article),
            "department": f.department,
            "tags": list(f.tags),
            "visibility": f.visibility.value,
            "updated": article.updated,
            "translations": [
                {"lang": t.fields.lang, "slug": t.fields.slug, "title": t.fields.title,
                 "url": help_url(t)}
                for t in translations
            ],
        }  # fmt: skip

    async def public_list(self, lang: str, limit: int = 500) -> list[Article]:
        """The public published articles of ``lang``, newest edit first (the help pages)."""
        if lang not in LANGUAGES:
            raise NotFound(_NOT_FOUND)
        articles, _ = await self.store.articles(
            lang=lang, status=Status.PUBLISHED, limit=limit * 2, offset=0
        )
        public = [a for a in articles if a.fields.visibility is Visibility.PUBLIC]
        return sorted(public[:limit], key=lambda a: a.fields.title.casefold())

    async def feedback(
        self,
        lang: str,
        slug: str,
        data: Mapping[str, Any],
        viewer: OperatorRecord | None,
        *,
        token_session: str | None = None,
        admit: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """An answer to "did this answer your question?"; ``True`` when it was counted.

        The visitor's chat session is ``token_session`` (the session of a visitor token
        the caller checked) or ``data["session"]``, its id, which must exist
        (:class:`~chatserver.errors.NotFound` otherwise, nothing counted). Only the first
        answer of a session for an article counts; only a "yes" from the widget *with* a
        session counts as a deflected chat. ``admit`` runs once the input is found good,
        before the session is looked up and anything counted (a rate limit: it raises).
        """
        helped = data.get("helped")
        if not isinstance(helped, bool):
            raise BadRequest("helped must be true or false")
        session = data.get("session")
        if session is not None and (
            not isinstance(session, str) or SESSION_ID_RE.fullmatch(session) is None
        ):
            raise BadRequest(
                "session must be the id of your chat session (1 to 64 letters, digits, _ or -)"
            )
        if token_session is not None:
            if session is not None and session != token_session:
                raise BadRequest("session is not the chat session of your token")
            session = token_session
        source = data.get("source", "widget")
        if source not in SOURCES:
            raise BadRequest(f"source must be one of {', '.join(SOURCES)}")
        if lang not in LANGUAGES:
            raise NotFound(_NOT_FOUND)
        article = self._visible(await self.store.by_slug(lang, slug[:200]), viewer)
        if admit is not None:
            await admit()
        if session is not None and token_session is None:
            if self.sessions is None or not await self.sessions(session):
                raise NotFound("no such chat session: send the id of your chat, or no session")
        return await self.store.feedback(
            article.id,
            helped,
            None if session is None else session_key(session),
            self.clock(),
            deflect=source == "widget" and session is not None,
        )

    async def board_counts(self, hour_start: float, day_start: float) -> dict[str, int]:
        """The board's ``kb`` section: views, suggestions shown, chats deflected."""
        return (await self.store.counts(hour_start, day_start)).as_dict()

    # ------------------------------------------------------------ authoring
    @staticmethod
    def author(operator: OperatorRecord) -> Author:
        """``operator`` as the author of a change; 403 unless supervisor or admin."""
        if operator.role not in AUTHORS:
            raise Forbidden("only supervisors and admins may write knowledge base articles")
        return Author(str(operator.operator_id), operator.name)

    async def _own(self, article_id: object) -> Article:
        number = _article_id(article_id)
        article = await self.store.article(number)
        if article is None:
            raise NotFound(_NOT_FOUND)
        return article

    async def manage_list(
        self,
        operator: OperatorRecord,
        *,
        q: str | None,
        lang: str | None,
        status: str | None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Article], int]:
        """Articles for the console's list (drafts too), and how many match in all."""
        self.author(operator)
        if lang is not None and lang not in LANGUAGES:
            raise BadRequest(f"lang must be one of {', '.join(LANGUAGES)}")
        try:
            wanted = None if status is None else Status(status)
        except ValueError:
            raise BadRequest("status must be draft or published") from None
        if q is None:
            return await self.store.articles(lang=lang, status=wanted, limit=limit, offset=offset)
        text = _query(q)
        terms = {code: query_terms(text, code) for code in ((lang,) if lang else LANGUAGES)}
        terms = {code: t for code, t in terms.items() if t}
        if not terms:
            return [], 0
        query = SearchQuery(
            text, terms, include_agents=True, include_drafts=True, status=wanted,
            limit=limit, offset=offset, count_all=True,
        )  # fmt: skip
        hits, total = await self.store.search(query)
        return [hit.article for hit in hits], total

    async def manage_article(self, operator: OperatorRecord, article_id: object) -> Article:
        self.author(operator)
        return await self._own(article_id)

    async def group_of(self, article: Article) -> list[Article]:
        """The other articles of ``article``'s translation group (drafts too)."""
        return [a for a in await self.store.group(article.group) if a.id != article.id]

    async def create(self, operator: OperatorRecord, data: Mapping[str, Any]) -> Article:
        by = self.author(operator)
        _known_keys(data, _EDITABLE | {"translation_of"})
        try:
            fields = check_fields(data)
        except FieldError as exc:
            raise _bad(exc) from None
        group_of = await self._translation_of(data)
        return await self._write(
            self.store.create(fields, indexed(fields), by, self.clock(), group_of=group_of),
            fields,
        )

    async def _translation_of(self, data: Mapping[str, Any]) -> int | None:
        raw = data.get("translation_of")
        if raw is None:
            return None
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw < 2**62:
            raise BadRequest("translation_of must be the id (a number) of another article")
        if await self.store.article(raw) is None:
            raise BadRequest(f"translation_of: there is no article {raw}")
        return raw

    async def _write(self, pending: Awaitable[_T], fields: ArticleFields) -> _T:
        try:
            return await pending
        except SlugTaken:
            raise InvalidState(
                f"the slug {fields.slug!r} is already used by another article in {fields.lang}"
            ) from None
        except LanguageTaken:
            raise InvalidState(f"this article already has a translation in {fields.lang}") from None
        except Stale as exc:
            raise InvalidState(
                f"the article was changed meanwhile (now revision {exc.args[0]}); reload it"
            ) from None
        except KeyError:
            raise NotFound(_NOT_FOUND) from None

    async def edit(
        self, operator: OperatorRecord, article_id: object, data: Mapping[str, Any]
    ) -> Article:
        """Change the given fields (a revision); nothing different: no revision."""
        by = self.author(operator)
        _known_keys(data, _EDITABLE | {"translation_of", "revision"} | _READ_ONLY)
        current = await self._own(article_id)
        expect = data.get("revision")
        if expect is not None and (isinstance(expect, bool) or not isinstance(expect, int)):
            raise BadRequest("revision must be a whole number (the revision you edited)")
        try:
            fields = check_fields({k: v for k, v in data.items() if k in _EDITABLE}, current.fields)
        except FieldError as exc:
            raise _bad(exc) from None
        group_of = await self._translation_of(data)
        changed = await self._write(
            self.store.update(
                current.id, fields, indexed(fields), by, self.clock(),
                expect_revision=expect, group_of=group_of,
            ),
            fields,
        )  # fmt: skip
        return current if changed is None else changed

    async def set_status(
        self, operator: OperatorRecord, article_id: object, status: Status
    ) -> Article:
        """Publish or unpublish (a revision, unless it already is)."""
        by = self.author(operator)
        current = await self._own(article_id)
        if current.fields.status is status:
            return current
        fields = check_fields({"status": status.value}, current.fields)
        action = "publish" if status is Status.PUBLISHED else "unpublish"
        changed = await self._write(
            self.store.update(current.id, fields, indexed(fields), by, self.clock(), action=action),
            fields,
        )
        return current if changed is None else changed

    async def revisions(self, operator: OperatorRecord, article_id: object) -> list[Revision]:
        self.author(operator)
        current = await self._own(article_id)
        return await self.store.revisions(current.id)

    def preview(self, operator: OperatorRecord, data: Mapping[str, Any]) -> str:
        self.author(operator)
        body = data.get("body")
        if not isinstance(body, str):
            raise BadRequest("body must be text (Markdown)")
        if len(body) > MAX_BODY:
            raise BadRequest(f"body is longer than {MAX_BODY} characters")
        return render_html(body)


def manage_json(
    article: Article, translations: list[Article], *, full: bool = True
) -> dict[str, Any]:
    """An article as the authoring API answers (``full``: with body and HTML)."""
    f = article.fields
    out: dict[str, Any] = {
        "id": article.id,
        "group": article.group,
        "lang": f.lang,
        "slug": f.slug,
        "title": f.title,
        "department": f.department,
        "tags": list(f.tags),
        "visibility": f.visibility.value,
        "status": f.status.value,
        "created": article.created,
        "updated": article.updated,
        "updated_by": article.updated_by,
        "revision": article.revision,
        "views": article.views,
        "helped": article.helped,
        "not_helped": article.not_helped,
        "url": help_url(article),
    }
    if full:
        out["body"] = f.body
        out["html"] = render_html(f.body)
        out["translations"] = [
            {"id": t.id, "lang": t.fields.lang, "slug": t.fields.slug,
             "title": t.fields.title, "status": t.fields.status.value}
            for t in translations
        ]  # fmt: skip
    return out


def revision_json(revision: Revision) -> dict[str, Any]:
    f = revision.fields
    return {
        "n": revision.n,
        "at": revision.at,
        "by": {"id": revision.by.id, "name": revision.by.name},
        "action": revision.action,
        "title": f.title,
        "body": f.body,
        "lang": f.lang,
        "slug": f.slug,
        "department": f.department,
        "tags": list(f.tags),
        "visibility": f.visibility.value,
        "status": f.status.value,
    }


def _query(text: object) -> str:
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"q is required: the words to search for (1 to {MAX_QUERY} characters)")
    if len(text) > MAX_QUERY:
        raise BadRequest(f"q is longer than {MAX_QUERY} characters")
    return text


def _article_id(raw: object) -> int:
    text = str(raw)
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise NotFound(_NOT_FOUND)
    return int(text)


def _known_keys(data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        named = ", ".join(sorted(allowed & (_EDITABLE | {"translation_of", "revision"})))
        raise BadRequest(f"unknown field(s): {', '.join(unknown)[:200]}; known: {named}")
