"""The knowledge base storage contract (chatserver.kb.store.base), run against every
implementation in ``conftest.STORES``."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path

import pytest

from chatserver.kb.model import Status, Visibility, query_terms
from chatserver.kb.service import indexed
from chatserver.kb.store.base import (
    Counter,
    KbStorage,
    LanguageTaken,
    SearchQuery,
    SlugTaken,
    Stale,
)
from chatserver.kb.store.postgres import PostgresKbStore
from chatserver.store.database import DB_ERRORS, SCHEMA_VERSION, connect, connect_raw, migrate
from tests.kb.conftest import EDITOR, STORES, add, database_of, fields
from tests.pg import pg_database

NOW = 1_800_000_000.0


def query(text: str, lang: str = "de", **kw: object) -> SearchQuery:
    return SearchQuery(text, {lang: query_terms(text, lang)}, **kw)  # type: ignore[arg-type]


async def titles(store: KbStorage, text: str, lang: str = "de", **kw: object) -> list[str]:
    hits, _ = await store.search(query(text, lang, limit=10, **kw))
    return [hit.article.fields.title for hit in hits]


async def test_create_read_and_the_first_revision(store: KbStorage) -> None:
    article = await add(store, title="Drucker druckt nicht", body="Kabel prüfen.")
    assert article.id >= 1 and article.group == article.id and article.revision == 1
    assert await store.article(article.id) == article
    assert await store.by_slug("de", "drucker-druckt-nicht") == article
    assert await store.by_slug("fr", "drucker-druckt-nicht") is None
    assert await store.article(article.id + 100) is None
    [revision] = await store.revisions(article.id)
    assert revision.n == 1 and revision.action == "create" and revision.by == EDITOR
    assert revision.fields == article.fields


async def test_every_change_is_a_revision_and_an_equal_one_none(store: KbStorage) -> None:
    article = await add(store, title="Rechnung", body="eins")
    changed = dataclasses.replace(article.fields, body="zwei")
    after = await store.update(article.id, changed, indexed(changed), EDITOR, NOW + 5)
    assert after is not None and after.revision == 2 and after.fields.body == "zwei"
    assert after.updated == NOW + 5 and after.created == article.created
    assert await store.update(article.id, changed, indexed(changed), EDITOR, NOW + 9) is None
    published = dataclasses.replace(changed, status=Status.DRAFT)
    await store.update(article.id, published, indexed(published), EDITOR, NOW, action="unpublish")
    revisions = await store.revisions(article.id)
    assert [(r.n, r.action, r.fields.body) for r in revisions] == [
        (3, "unpublish", "zwei"), (2, "edit", "zwei"), (1, "create", "eins"),
    ]  # fmt: skip
    with pytest.raises(Stale):
        await store.update(article.id, article.fields, indexed(article.fields), EDITOR, NOW,
                           expect_revision=2)  # fmt: skip
    with pytest.raises(KeyError):
        await store.update(999, changed, indexed(changed), EDITOR, NOW)
    assert len(await store.revisions(article.id)) == 3  # the refused ones wrote nothing


async def test_slugs_are_unique_per_language_and_groups_hold_one_per_language(
    store: KbStorage,
) -> None:
    de = await add(store, title="Rechnung")
    with pytest.raises(SlugTaken):
        await add(store, title="Rechnung", body="again")
    fr_fields = fields(title="Facture", lang="fr", slug="rechnung")  # same slug, other language
    fr = await store.create(fr_fields, indexed(fr_fields), EDITOR, NOW, group_of=de.id)
    assert fr.group == de.group
    with pytest.raises(LanguageTaken):
        other = fields(title="Facture deux", lang="fr")
        await store.create(other, indexed(other), EDITOR, NOW, group_of=de.id)
    with pytest.raises(KeyError):
        await store.create(fields(title="x", lang="it"), indexed(fields(title="x")), EDITOR,
                           NOW, group_of=12345)  # fmt: skip
    assert [a.fields.lang for a in await store.group(de.group)] == ["de", "fr"]
    assert len(await store.every_article()) == 2


async def test_revisions_are_append_only(store: KbStorage) -> None:
    article = await add(store, title="Rechnung")
    with connect(database_of(store)) as conn:
        for sql in ("UPDATE kb_revisions SET title = 'x'", "DELETE FROM kb_revisions"):
            with pytest.raises(DB_ERRORS, match="append-only"):
                conn.execute(sql)
    assert len(await store.revisions(article.id)) == 1


# ------------------------------------------------------------------ search
async def test_stemmed_search_finds_inflected_forms(store: KbStorage) -> None:
    await add(store, title="Drucker druckt nicht", body="Prüfen Sie das Kabel.")
    await add(store, title="Rechnung", body="Wo finde ich meine Rechnung?")
    await add(store, title="Passwort vergessen", body="Klicken Sie auf Zurücksetzen.")
    await add(store, lang="fr", title="L'imprimante n'imprime pas", body="Vérifiez le câble.")
    await add(store, lang="fr", title="Où trouver ma facture", body="Dans votre compte.")
    await add(store, lang="it", title="La stampante non stampa", body="Controllare il cavo.")
    await add(store, lang="it", title="Dove trovo la fattura", body="Nel tuo conto.")
    assert await titles(store, "Druckers ") == ["Drucker druckt nicht"]
    assert await titles(store, "Rechnungen ") == ["Rechnung"]
    assert await titles(store, "Rechnungen") == ["Rechnung"]
    assert await titles(store, "Passwörter") == ["Passwort vergessen"]
    assert await titles(store, "imprimantes ", "fr") == ["L'imprimante n'imprime pas"]
    assert await titles(store, "factures ", "fr") == ["Où trouver ma facture"]
    assert await titles(store, "stampanti ", "it") == ["La stampante non stampa"]
    assert await titles(store, "fatture ", "it") == ["Dove trovo la fattura"]
    # The word being typed, as a prefix.
    assert await titles(store, "mein Dru") == ["Drucker druckt nicht"]
    assert await titles(store, "Rech") == ["Rechnung"]
    # Another language's article is not found through this one's.
    assert await titles(store, "fattura ", "de") == []


async def test_ranking_weights_the_title_and_more_matching_words(store: KbStorage) -> None:
    await add(store, title="Versand", body="Die Rechnung kommt mit dem Paket. " * 3)
    await add(store, title="Rechnung bezahlen", body="Per Überweisung.")
    await add(store, title="Rechnung korrigieren", body="Schreiben Sie uns zur Adresse.")
    assert (await titles(store, "Rechnung "))[2] == "Versand"
    ranked = await titles(store, "Rechnung Adresse ")
    assert ranked[0] == "Rechnung korrigieren"


async def test_visibility_status_and_department_filters(store: KbStorage) -> None:
    await add(store, title="Drucker öffentlich", department="it")
    await add(store, title="Drucker intern", visibility="agents")
    await add(store, title="Drucker Entwurf", status="draft")
    await add(store, title="Drucker Buchhaltung", department="finance")
    await add(store, title="Drucker allgemein")
    visitor = await titles(store, "Drucker ")
    assert sorted(visitor) == ["Drucker Buchhaltung", "Drucker allgemein", "Drucker öffentlich"]
    agent = await titles(store, "Drucker ", include_agents=True)
    assert "Drucker intern" in agent and "Drucker Entwurf" not in agent
    authoring = await titles(store, "Drucker ", include_agents=True, include_drafts=True)
    assert len(authoring) == 5
    drafts = await titles(store, "Drucker ", include_agents=True, status=Status.DRAFT)
    assert drafts == ["Drucker Entwurf"]
    it_desk = await titles(store, "Drucker ", department="it")
    assert sorted(it_desk) == ["Drucker allgemein", "Drucker öffentlich"]


async def test_search_sees_edits_at_once_and_pages(store: KbStorage) -> None:
    article = await add(store, title="Altes Wort")
    renamed = dataclasses.replace(article.fields, title="Neues Wort")
    await store.update(article.id, renamed, indexed(renamed), EDITOR, NOW)
    assert await titles(store, "Altes ") == []
    assert await titles(store, "Neues ") == ["Neues Wort"]
    unpublished = dataclasses.replace(renamed, status=Status.DRAFT)
    await store.update(article.id, unpublished, indexed(unpublished), EDITOR, NOW)
    assert await titles(store, "Neues ") == []
    for i in range(5):
        await add(store, title=f"Seite {i}", slug=f"seite-{i}")
    hits, total = await store.search(query("Seite ", limit=2, offset=2, count_all=True))
    assert total == 5 and len(hits) == 2


async def test_article_lists_filter_and_page(store: KbStorage) -> None:
    for i in range(4):
        await add(store, NOW + i, title=f"A {i}", status="draft" if i % 2 else "published")
    await add(store, NOW + 9, title="F", lang="fr")
    rows, total = await store.articles(lang="de", status=None, limit=2, offset=0)
    assert total == 4 and [a.fields.title for a in rows] == ["A 3", "A 2"]
    rows, total = await store.articles(lang=None, status=Status.DRAFT, limit=10, offset=0)
    assert total == 2 and {a.fields.title for a in rows} == {"A 1", "A 3"}


# ------------------------------------------------------------------ counters
async def test_counters_per_hour_and_day(store: KbStorage) -> None:
    article = await add(store, title="Rechnung")
    hour = NOW - NOW % 3600
    store.count(Counter.VIEWS, 1, hour + 10, article.id)
    store.count(Counter.VIEWS, 2, hour - 7200, article.id)  # earlier today
    store.count(Counter.SHOWN, 3, hour + 20)
    store.count(Counter.SHOWN, 0, hour + 20)
    counts = await store.counts(hour, hour - 10 * 3600)
    assert (counts.views_hour, counts.views_today, counts.shown_hour, counts.shown_today) == (
        1, 3, 3, 3,
    )  # fmt: skip
    assert (await store.article(article.id)).views == 3  # type: ignore[union-attr]
    assert (await store.counts(hour + 3600, hour + 3600)).views_today == 0


async def test_feedback_counts_once_per_session(store: KbStorage) -> None:
    article = await add(store, title="Rechnung")
    hour = NOW - NOW % 3600
    assert await store.feedback(article.id, True, "s1", NOW, deflect=True)
    assert not await store.feedback(article.id, True, "s1", NOW, deflect=True)
    assert not await store.feedback(article.id, False, "s1", NOW, deflect=True)
    assert await store.feedback(article.id, False, "s2", NOW, deflect=True)
    assert await store.feedback(article.id, True, None, NOW, deflect=False)
    after = await store.article(article.id)
    assert after is not None and (after.helped, after.not_helped) == (2, 1)
    assert (await store.counts(hour, hour)).deflected_hour == 1
    assert after.fields.visibility is Visibility.PUBLIC


CORPUS = [
    ("de", "Drucker druckt nicht", "Prüfen Sie das Kabel und den Drucker-Treiber."),
    ("de", "Rechnung herunterladen", "Ihre Rechnung finden Sie im Kundenkonto als PDF."),
    ("de", "Rechnungsadresse ändern", "Die Adresse der Rechnung ändern Sie im Konto."),
    ("de", "Passwort vergessen", "Klicken Sie auf Passwort zurücksetzen; prüfen Sie den Spam."),
    ("de", "Versand und Lieferung", "Das Paket kommt mit der Post. Die Rechnung liegt bei."),
    ("de", "Drucker im Netzwerk", "Den Netzwerkdrucker richten Sie über die IP-Adresse ein."),
    ("de", "Konto löschen", "Schreiben Sie uns; wir löschen Ihr Konto und die Daten."),
    ("fr", "L'imprimante n'imprime pas", "Vérifiez le câble et le pilote de l'imprimante."),
    ("fr", "Télécharger la facture", "Votre facture est dans votre compte, en PDF."),
    ("it", "La stampante non stampa", "Controllare il cavo e il driver della stampante."),
    ("en", "Printer does not print", "Check the cable and the printer driver."),
    ("en", "Download your invoice", "Invoices are in your account as PDF files."),
]
QUERIES = [
    ("Drucker ", "de"), ("Druck", "de"), ("Rechnung ", "de"), ("Rechnungen Adresse ", "de"),
    ("Rech", "de"), ("Konto", "de"), ("Kabel Treiber ", "de"), ("Passwort zurücksetzen", "de"),
    ("Paket Post", "de"), ("imprimante câble ", "fr"), ("factur", "fr"), ("stampanti ", "it"),
    ("printing ", "en"), ("invoices PDF ", "en"), ("Printer driv", "en"), ("nichts da ", "de"),
]  # fmt: skip


async def test_both_backends_find_the_same_articles_in_the_same_order(tmp_path: Path) -> None:
    """The PostgreSQL store's tsquery steps and the SQLite store's FTS5 ones agree."""
    with contextlib.ExitStack() as stack:
        stores = {name: make(tmp_path, stack) for name, make in STORES.items()}
        for made in stores.values():
            await made.open()
        try:
            for made in stores.values():
                for i, (lang, title, body) in enumerate(CORPUS):
                    await add(made, NOW + i, lang=lang, title=title, body=body)
            for text, lang in QUERIES:
                found = {
                    name: [(h.article.fields.slug, h.article.fields.lang) for h in
                           (await made.search(query(text, lang, limit=10)))[0]]
                    for name, made in stores.items()
                }  # fmt: skip
                assert found["postgresql"] == found["sqlite"], (text, found)
                anywhere = SearchQuery(
                    text, {code: query_terms(text, code) for code in ("de", "fr", "it", "en")},
                    limit=5, count_all=True,
                )  # fmt: skip
                results = {name: await made.search(anywhere) for name, made in stores.items()}
                assert {h.article.id for h in results["postgresql"][0]} == {
                    h.article.id for h in results["sqlite"][0]
                }
                assert results["postgresql"][1] == results["sqlite"][1], text
        finally:
            for made in stores.values():
                await made.close()


async def test_nodes_writing_at_once_on_postgresql_cannot_both_win() -> None:
    """Two stores (two nodes) on one PostgreSQL schema: a slug, a translation's language
    and an edit of one revision are won by one of them; the other gets the refusal."""
    with pg_database() as db:
        one, two = PostgresKbStore(db), PostgresKbStore(db)
        await one.open()
        await two.open()
        try:
            for _ in range(5):  # a race is won differently each time; none gets through
                slug = f"drucker-{_}"
                made = [fields(title="Drucker", slug=slug), fields(title="Drucker 2", slug=slug)]
                results = await asyncio.gather(
                    one.create(made[0], indexed(made[0]), EDITOR, NOW),
                    two.create(made[1], indexed(made[1]), EDITOR, NOW),
                    return_exceptions=True,
                )
                assert sorted(type(r).__name__ for r in results) == ["Article", "SlugTaken"]
            base = await add(one, title="Rechnung")
            fr = [fields(title="Facture", lang="fr"), fields(title="Facture bis", lang="fr")]
            results = await asyncio.gather(
                one.create(fr[0], indexed(fr[0]), EDITOR, NOW, group_of=base.id),
                two.create(fr[1], indexed(fr[1]), EDITOR, NOW, group_of=base.id),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["Article", "LanguageTaken"]
            edits = [dataclasses.replace(base.fields, body=f"Version {i}") for i in (1, 2)]
            results = await asyncio.gather(
                *(
                    store.update(base.id, e, indexed(e), EDITOR, NOW, expect_revision=1)
                    for store, e in zip((one, two), edits, strict=True)
                ),
                return_exceptions=True,
            )
            assert sorted(type(r).__name__ for r in results) == ["Article", "Stale"]
            assert [r.n for r in await two.revisions(base.id)] == [2, 1]
        finally:
            await one.close()
            await two.close()


async def test_articles_of_schema_15_are_found_after_step_16_on_postgresql() -> None:
    """Step 16 rebuilds the generated tsvectors of the articles already there."""
    with pg_database() as db:
        migrate(db, 15)
        with connect_raw(db) as conn, conn.transaction():
            conn.execute(
                "INSERT INTO kb_articles (id, grp, lang, slug, title, body, plain, visibility,"
                " status, created_at, updated_at, updated_by, revision) VALUES (7, 7, 'de',"
                " 'drucker', 'Drucker', 'Kabel', 'Kabel', 'public', 'published', 1, 1, 'x', 1)"
            )
            conn.execute("INSERT INTO kb_fts (rowid, title, body) VALUES (7, 'dedruck', 'dekabel')")
        assert migrate(db) == (15, SCHEMA_VERSION)
        store = PostgresKbStore(db)
        await store.open()
        try:
            assert await titles(store, "Druckers ") == ["Drucker"]  # in the title step
            assert await titles(store, "Kabel ") == ["Drucker"]
        finally:
            await store.close()
