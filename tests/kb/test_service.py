"""The knowledge base's actions (chatserver.kb.service): who may do what, bad inputs."""

from __future__ import annotations

from typing import Any

import pytest

from chatserver.errors import BadRequest, Forbidden, InvalidState, NotFound, RateLimited
from chatserver.kb.service import KnowledgeBase
from chatserver.kb.store.base import KbStorage
from tests.kb.conftest import Clock, operator

ADMIN = operator("admin")
SUPERVISOR = operator("supervisor")
AGENT = operator("operator")


async def article(kb: KnowledgeBase, **data: Any) -> Any:
    return await kb.create(SUPERVISOR, {"lang": "de", "status": "published", **data})


async def test_agents_cannot_author_but_read_agents_only_articles(kb: KnowledgeBase) -> None:
    internal = await article(kb, title="Interne Preisliste", visibility="agents")
    for attempt in (
        kb.create(AGENT, {"title": "x", "lang": "de"}),
        kb.edit(AGENT, internal.id, {"title": "y"}),
        kb.manage_list(AGENT, q=None, lang=None, status=None),
        kb.manage_article(AGENT, internal.id),
        kb.revisions(AGENT, internal.id),
    ):
        with pytest.raises(Forbidden, match="supervisors and admins"):
            await attempt
    with pytest.raises(Forbidden):
        kb.preview(AGENT, {"body": "x"})
    assert len(await kb.store.revisions(internal.id)) == 1
    # Reading: agents see it, visitors do not (the same 404 as for nothing at all).
    assert [r["title"] for r in await kb.search("Preisliste ", lang="de", viewer=AGENT)] == [
        "Interne Preisliste"
    ]
    assert await kb.search("Preisliste ", lang="de") == []
    found, _ = await kb.read("de", internal.fields.slug, AGENT)
    assert found.id == internal.id
    with pytest.raises(NotFound, match="no such article"):
        await kb.read("de", internal.fields.slug, None)
    # Admins author too.
    assert (await kb.edit(ADMIN, internal.id, {"title": "Preise"})).fields.title == "Preise"


async def test_visitors_never_see_drafts_or_agents_only_articles(kb: KnowledgeBase) -> None:
    await article(kb, title="Drucker öffentlich")
    draft = await article(kb, title="Drucker Entwurf", status="draft")
    internal = await article(kb, title="Drucker intern", visibility="agents")
    results = await kb.search("Drucker ", lang="de", limit=10)
    assert [r["title"] for r in results] == ["Drucker öffentlich"]
    assert "visibility" not in results[0]
    assert results[0]["url"] == "/help/de/drucker-offentlich"
    for slug in (draft.fields.slug, internal.fields.slug, "nothing-here"):
        with pytest.raises(NotFound):
            await kb.read("de", slug, None)
        with pytest.raises(NotFound):
            await kb.feedback("de", slug, {"helped": True}, None)
    # Drafts stay hidden from agents too.
    with pytest.raises(NotFound):
        await kb.read("de", draft.fields.slug, AGENT)
    staff = await kb.search("Drucker ", lang="de", limit=10, viewer=AGENT)
    assert {r["title"]: r["visibility"] for r in staff} == {
        "Drucker öffentlich": "public", "Drucker intern": "agents",
    }  # fmt: skip
    assert {r["url"] for r in staff if r["visibility"] == "agents"} == {None}


async def test_translations_are_linked_and_shown_by_visibility(kb: KnowledgeBase) -> None:
    de = await article(kb, title="Rechnung")
    fr = await article(kb, title="Facture", lang="fr", translation_of=de.id)
    await article(kb, title="Fattura", lang="it", translation_of=de.id, status="draft")
    _, translations = await kb.read("de", "rechnung", None)
    assert [t.id for t in translations] == [fr.id]
    data = kb.article_json(*(await kb.read("fr", "facture", None)))
    assert data["translations"] == [
        {"lang": "de", "slug": "rechnung", "title": "Rechnung", "url": "/help/de/rechnung"}
    ]
    with pytest.raises(InvalidState, match="translation in fr"):
        await article(kb, title="Facture bis", lang="fr", translation_of=de.id)
    with pytest.raises(BadRequest, match="translation_of"):
        await article(kb, title="x", translation_of=999)
    with pytest.raises(BadRequest, match="translation_of"):
        await article(kb, title="x", translation_of="1")


async def test_edits_publish_and_revisions(kb: KnowledgeBase, clock: Clock) -> None:
    made = await kb.create(SUPERVISOR, {"title": "Versand", "lang": "de", "body": "a"})
    assert made.fields.status.value == "draft"
    clock.now += 60
    edited = await kb.edit(SUPERVISOR, made.id, {"body": "b", "revision": 1})
    same = await kb.edit(SUPERVISOR, made.id, {"body": "b"})
    assert same == edited and edited.revision == 2
    with pytest.raises(InvalidState, match="changed meanwhile"):
        await kb.edit(SUPERVISOR, made.id, {"body": "c", "revision": 1})
    published = await kb.set_status(ADMIN, made.id, kb_status("published"))
    again = await kb.set_status(ADMIN, made.id, kb_status("published"))
    assert published == again and published.revision == 3
    await kb.set_status(ADMIN, made.id, kb_status("draft"))
    revisions = await kb.revisions(SUPERVISOR, made.id)
    assert [(r.action, r.by.name) for r in revisions] == [
        ("unpublish", "Sam"), ("publish", "Sam"), ("edit", "Sam"), ("create", "Sam"),
    ]  # fmt: skip
    assert revisions[2].at == clock.now and revisions[3].fields.body == "a"


def kb_status(value: str) -> Any:
    from chatserver.kb.model import Status

    return Status(value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lang": "de"}, "title is required"),
        ({"title": "x", "lang": "xx"}, "lang must be one of"),
        ({"title": "x", "lang": "de", "slug": "A B"}, "slug must be"),
        ({"title": "x", "lang": "de", "visibility": "all"}, "visibility must be"),
        ({"title": "x", "lang": "de", "tags": [1]}, "tags must be text"),
        ({"title": "x", "lang": "de", "colour": "red"}, "unknown field"),
        ({"title": "x", "lang": "de", "body": None, "status": 3}, "status must be"),
    ],
)
async def test_bad_articles_are_refused_and_nothing_is_written(
    kb: KnowledgeBase, store: KbStorage, data: dict[str, Any], message: str
) -> None:
    with pytest.raises(BadRequest, match=message):
        await kb.create(SUPERVISOR, data)
    assert await store.every_article() == []


async def test_bad_edits_are_refused_and_nothing_changes(kb: KnowledgeBase) -> None:
    made = await article(kb, title="Versand")
    for data, error in [
        ({"lang": "fr"}, BadRequest),
        ({"title": ""}, BadRequest),
        ({"revision": "1"}, BadRequest),
        ({"revision": True}, BadRequest),
        ({"nonsense": 1}, BadRequest),
    ]:
        with pytest.raises(error):
            await kb.edit(SUPERVISOR, made.id, data)
    for missing in ("999", "abc", "-1", "1" * 30, None):
        with pytest.raises(NotFound):
            await kb.edit(SUPERVISOR, missing, {"title": "x"})
    other = await article(kb, title="Andere")
    with pytest.raises(InvalidState, match="already used"):
        await kb.edit(SUPERVISOR, other.id, {"slug": made.fields.slug})
    assert len(await kb.revisions(SUPERVISOR, made.id)) == 1
    assert (await kb.manage_article(SUPERVISOR, made.id)) == made


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": ""}, "q is required"),
        ({"text": "   "}, "q is required"),
        ({"text": "x" * 201}, "longer than 200"),
        ({"text": "x", "lang": "es"}, "lang must be"),
        ({"text": "x", "source": "mail"}, "source must be"),
        ({"text": "x", "limit": 11}, "limit"),
    ],
)
async def test_bad_searches_are_refused(
    kb: KnowledgeBase, kwargs: dict[str, Any], message: str
) -> None:
    kwargs.setdefault("lang", "de")
    with pytest.raises(BadRequest, match=message):
        await kb.search(**kwargs)


async def test_garbage_queries_find_nothing(kb: KnowledgeBase) -> None:
    await article(kb, title="Drucker")
    for text in ("?!", "' OR 1=1 --", '"', "NEAR(", "*", "der die das", "\u200b"):
        assert await kb.search(text, lang="de") == []
        assert await kb.search(text, lang=None) == []


async def test_feedback_inputs(kb: KnowledgeBase) -> None:
    await article(kb, title="Drucker")
    for data, message in [
        ({}, "helped must be"),
        ({"helped": "yes"}, "helped must be"),
        ({"helped": True, "session": ""}, "session must be"),
        ({"helped": True, "session": 5}, "session must be"),
        ({"helped": True, "session": "s_" + "x" * 63}, "session must be"),
        ({"helped": True, "session": "v1; DROP"}, "session must be"),
        ({"helped": True, "source": "mail"}, "source must be"),
    ]:
        with pytest.raises(BadRequest, match=message):
            await kb.feedback("de", "drucker", data, None)
    with pytest.raises(BadRequest, match="not the chat session of your token"):
        await kb.feedback("de", "drucker", {"helped": True, "session": "v1"}, None,
                          token_session="v2")  # fmt: skip
    # A session nobody has: 404 and nothing counted (the article exists).
    with pytest.raises(NotFound, match="no such chat session"):
        await kb.feedback("de", "drucker", {"helped": True, "session": "s_unknown"}, None)
    found = await kb.store.by_slug("de", "drucker")
    assert found is not None and (found.helped, found.not_helped) == (0, 0)
    hour = kb.clock() - kb.clock() % 3600
    assert (await kb.board_counts(hour, hour))["deflected_today"] == 0


async def test_only_a_yes_with_a_known_session_is_a_deflected_chat(kb: KnowledgeBase) -> None:
    await article(kb, title="Drucker")
    hour = kb.clock() - kb.clock() % 3600
    # Without a session: counted on the article, never as a deflected chat.
    for _ in range(3):
        assert await kb.feedback("de", "drucker", {"helped": True}, None)
    assert (await kb.board_counts(hour, hour))["deflected_today"] == 0
    # With one: once per session and article, however often it is sent.
    for _ in range(2):
        await kb.feedback("de", "drucker", {"helped": True, "session": "s_AbC-12_x"}, None)
    assert await kb.feedback("de", "drucker", {"helped": True}, None, token_session="v2")
    assert not await kb.feedback("de", "drucker", {"helped": False, "session": "v2"}, None)
    assert (await kb.board_counts(hour, hour))["deflected_today"] == 2
    found = await kb.store.by_slug("de", "drucker")
    assert found is not None and (found.helped, found.not_helped) == (5, 0)
    # Without a lookup of sessions, every named session is unknown.
    blind = KnowledgeBase(kb.store, kb.clock)
    with pytest.raises(NotFound):
        await blind.feedback("de", "drucker", {"helped": True, "session": "v1"}, None)


async def test_admit_runs_after_the_input_is_checked(kb: KnowledgeBase) -> None:
    await article(kb, title="Drucker")
    admitted: list[str] = []

    async def admit() -> None:
        admitted.append("x")
        if len(admitted) > 1:
            raise RateLimited("too many searches; try again in 5 s", retry_after=5)

    with pytest.raises(BadRequest):
        await kb.search("x" * 201, lang="de", admit=admit)
    with pytest.raises(BadRequest):
        await kb.feedback("de", "drucker", {"helped": "yes"}, None, admit=admit)
    assert admitted == []  # bad input uses up nothing
    assert len(await kb.search("Drucker ", lang="de", admit=admit)) == 1
    with pytest.raises(RateLimited):
        await kb.feedback("de", "drucker", {"helped": True, "session": "v1"}, None, admit=admit)
    found = await kb.store.by_slug("de", "drucker")
    assert found is not None and found.helped == 0  # refused: nothing counted


async def test_widget_searches_views_and_yes_are_the_boards_figures(
    kb: KnowledgeBase, clock: Clock
) -> None:
    await article(kb, title="Drucker druckt nicht")
    await article(kb, title="Drucker Treiber")
    hour = clock.now - clock.now % 3600
    assert len(await kb.search("Drucker ", lang="de", source="widget")) == 2
    await kb.search("Drucker ", lang="de", source="console")
    await kb.search("Drucker ", lang="de")
    await kb.read("de", "drucker-treiber", None, "widget")
    await kb.feedback("de", "drucker-treiber", {"helped": True, "session": "v1"}, None)
    await kb.feedback("de", "drucker-treiber", {"helped": True, "session": "v1"}, None)
    await kb.feedback("de", "drucker-treiber", {"helped": True, "source": "help"}, None)
    assert await kb.board_counts(hour, hour - 3600) == {
        "views_hour": 1, "views_today": 1, "shown_hour": 2, "shown_today": 2,
        "deflected_hour": 1, "deflected_today": 1,
    }  # fmt: skip
    found = await kb.store.by_slug("de", "drucker-treiber")
    assert found is not None and (found.views, found.helped) == (1, 2)


async def test_preview_and_manage_list(kb: KnowledgeBase) -> None:
    assert "<script" not in kb.preview(SUPERVISOR, {"body": "<script>x</script>**b**"})
    with pytest.raises(BadRequest):
        kb.preview(SUPERVISOR, {"body": 5})
    with pytest.raises(BadRequest):
        kb.preview(SUPERVISOR, {"body": "x" * 100_001})
    await article(kb, title="Drucker", status="draft")
    await article(kb, title="Rechnung")
    rows, total = await kb.manage_list(SUPERVISOR, q="Druck", lang=None, status=None)
    assert total == 1 and rows[0].fields.title == "Drucker"
    rows, total = await kb.manage_list(SUPERVISOR, q=None, lang="de", status="published")
    assert total == 1 and rows[0].fields.title == "Rechnung"
    with pytest.raises(BadRequest):
        await kb.manage_list(SUPERVISOR, q=None, lang=None, status="gone")
    with pytest.raises(BadRequest):
        await kb.manage_list(SUPERVISOR, q=None, lang="xx", status=None)
