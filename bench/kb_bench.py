"""Knowledge base search: latency with 10 000 articles on one node (issue 21: p99 <= 20 ms).

Generates ``--articles`` articles (spread over de, fr, it and en; titles of 3 to 8 words,
bodies of 40 to 240 words, half from the article's eight topic words, half drawn by
Zipf's law from 4 000 words per language: support words with inflected endings, German
compounds and a long tail of product names), stores
them through :class:`chatserver.kb.store.sqlite.SqliteKbStore`, then times ``--queries``
searches typed the way a visitor types: one to four words of an article's title or body,
some re-inflected, the last one often cut short (a prefix), one in ten two random words.
Each search is :meth:`KnowledgeBase.search` as the HTTP handler calls it (query terms,
FTS5 with bm25 on the store's thread, snippets), timed from the call to its answer;
``store only`` times the database part (with its thread hop). Each is reported as wall
clock and as the process's CPU time per search: on a shared machine the wall clock's tail
is mostly time spent waiting for a core::

    .venv/bin/python bench/kb_bench.py --articles 10000 --queries 3000

``--postgresql URL`` runs it on :class:`chatserver.kb.store.postgres.PostgresKbStore`
instead (a schema of its own, dropped after): ``ts_rank_cd`` over the GIN-indexed
``tsvector``, over a local socket or TCP.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

from chatserver.kb.model import Author, check_fields, query_terms
from chatserver.kb.service import KnowledgeBase, indexed
from chatserver.kb.store.base import KbStorage, SearchQuery
from chatserver.kb.store.postgres import PostgresKbStore
from chatserver.kb.store.sqlite import SqliteKbStore
from chatserver.store.database import parse_database_url

WORDS = {
    "de": """Drucker Rechnung Passwort Konto Anmeldung Lieferung Bestellung Rücksendung Zahlung
    Kreditkarte Überweisung Mahnung Vertrag Kündigung Adresse Rabatt Gutschein Garantie Reparatur
    Ersatzteil Akku Ladegerät Bildschirm Tastatur Maus Netzwerk Router Internet Verbindung
    Störung Fehler Meldung Update Software Installation Lizenz Benutzer Berechtigung Datei
    Speicher Sicherung Wiederherstellung Kalender Termin Öffnungszeiten Filiale Versand Paket
    Sendung Zustellung Abholung Umtausch Erstattung Konto Einstellung Sprache Benachrichtigung
    Newsletter Abonnement Preis Tarif Gebühr Steuer Quittung Beleg Kunde Nummer Telefon E-Mail
    Chat Support Hilfe Anleitung Handbuch drucken bezahlen bestellen ändern löschen öffnen
    schliessen anmelden abmelden zurücksetzen vergessen herunterladen hochladen verbinden
    senden empfangen prüfen finden melden kündigen verlängern erstellen speichern funktioniert
    langsam kaputt neu alt schnell sicher falsch richtig online mobil""",
    "fr": """imprimante facture mot passe compte connexion livraison commande retour paiement
    carte crédit virement rappel contrat résiliation adresse remise bon garantie réparation
    pièce batterie chargeur écran clavier souris réseau routeur internet connexion panne
    erreur message mise jour logiciel installation licence utilisateur droit fichier mémoire
    sauvegarde restauration calendrier rendez-vous horaires magasin envoi colis suivi
    retrait échange remboursement paramètre langue notification abonnement prix tarif frais
    taxe reçu client numéro téléphone courriel aide guide manuel imprimer payer commander
    modifier supprimer ouvrir fermer connecter déconnecter réinitialiser oublier télécharger
    envoyer recevoir vérifier trouver signaler annuler prolonger créer enregistrer fonctionne
    lent cassé nouveau ancien rapide sûr faux correct mobile""",
    "it": """stampante fattura password conto accesso consegna ordine reso pagamento carta
    credito bonifico sollecito contratto disdetta indirizzo sconto buono garanzia riparazione
    ricambio batteria caricatore schermo tastiera mouse rete router internet connessione
    guasto errore messaggio aggiornamento programma installazione licenza utente permesso
    documento memoria backup ripristino calendario appuntamento orari negozio spedizione
    pacco tracciamento ritiro cambio rimborso impostazione lingua notifica abbonamento prezzo
    tariffa costo tassa ricevuta cliente numero telefono posta aiuto guida manuale stampare
    pagare ordinare modificare cancellare aprire chiudere collegare scollegare reimpostare
    dimenticare scaricare caricare inviare ricevere controllare trovare segnalare annullare
    rinnovare creare salvare funziona lento rotto nuovo vecchio veloce sicuro sbagliato""",
    "en": """printer invoice password account login delivery order return payment card credit
    transfer reminder contract cancellation address discount voucher warranty repair part
    battery charger screen keyboard mouse network router internet connection outage error
    message update software installation licence user permission file storage backup restore
    calendar appointment hours store shipping parcel tracking pickup exchange refund setting
    language notification subscription price plan fee tax receipt customer number phone email
    help guide manual print pay change delete open close connect disconnect reset forget
    download upload send receive check find report cancel renew create save works slow broken
    new old fast secure wrong right mobile""",
}
ENDINGS = {
    "de": ["", "", "", "en", "e", "s", "er", "n", "es"],
    "fr": ["", "", "", "s", "e", "es", "ment"],
    "it": ["", "", "", "i", "e", "a", "o"],
    "en": ["", "", "", "s", "es", "ed", "ing"],
}
FILLER = {
    "de": "der die das und mit für bei ist nicht Sie Ihr wie wenn dann bitte".split(),
    "fr": "le la les et avec pour est pas vous votre comment si puis merci".split(),
    "it": "il la le e con per è non lei suo come se poi grazie".split(),
    "en": "the a and with for is not you your how if then please".split(),
}


SYLLABLES = "ka ro mi te lu sa ne po vi da fe gu ri to ba le mo si na pe".split()


def vocabulary(lang: str, rng: random.Random, size: int = 4000) -> tuple[list[str], list[float]]:
    """A language's words, most frequent first, with Zipf cumulative weights: the support
    words above, then German compounds of them, then a long tail of product and feature
    names (a real FAQ's vocabulary is thousands of words, most of them rare)."""
    base = WORDS[lang].split()
    words = list(base)
    nouns = [w for w in base if w[:1].isupper()] or base
    while len(words) < size // 3:
        words.append(rng.choice(nouns) + rng.choice(nouns).lower())
    while len(words) < size:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        words.append(name + (str(rng.randint(1, 99)) if rng.random() < 0.2 else ""))
    weights, total = [], 0.0
    for rank in range(len(words)):
        total += 1.0 / (rank + 30)
        weights.append(total)
    return words, weights


VOCABULARY: dict[str, tuple[list[str], list[float]]] = {}


def word(lang: str, rng: random.Random, topic: list[str] | None = None) -> str:
    """A word of an article: half from its ``topic``, the rest by Zipf's law from the
    language's vocabulary (the head flattened: no content word is in every article)."""
    if lang not in VOCABULARY:
        VOCABULARY[lang] = vocabulary(lang, random.Random(lang))
    words, weights = VOCABULARY[lang]
    if topic and rng.random() < 0.5:
        return rng.choice(topic) + rng.choice(ENDINGS[lang])
    return rng.choices(words, cum_weights=weights)[0] + rng.choice(ENDINGS[lang])


def sentence(lang: str, rng: random.Random, n: int, topic: list[str] | None = None) -> str:
    out = []
    for _ in range(n):
        out.append(rng.choice(FILLER[lang]) if rng.random() < 0.35 else word(lang, rng, topic))
    return " ".join(out)


def article(i: int, rng: random.Random) -> dict[str, object]:
    lang = ("de", "fr", "it", "en")[i % 4]
    word(lang, rng)  # the vocabulary exists
    topic = rng.sample(VOCABULARY[lang][0][:1000], 8)
    title = sentence(lang, rng, rng.randint(3, 8), topic).capitalize()
    paragraphs = [
        sentence(lang, rng, rng.randint(20, 60), topic) + "." for _ in range(rng.randint(2, 4))
    ]
    return {
        "lang": lang,
        "slug": f"a-{i}",
        "title": title,
        "body": "\n\n".join(paragraphs),
        "status": "published" if rng.random() < 0.9 else "draft",
        "visibility": "public" if rng.random() < 0.85 else "agents",
        "department": rng.choice([None, None, "it", "billing"]),
    }


def typed(lang: str, source: str, rng: random.Random) -> str:
    """What a visitor has typed so far: a few words of ``source``, re-inflected, the last
    one often cut short."""
    words = [w for w in source.split() if len(w) > 2] or ["x"]
    start = rng.randrange(len(words))
    picked = words[start : start + rng.randint(1, 4)]
    picked = [w + rng.choice(ENDINGS[lang]) if rng.random() < 0.3 else w for w in picked]
    text = " ".join(picked)
    if rng.random() < 0.6:
        last = picked[-1]
        cut = rng.randint(min(2, len(last)), len(last))
        text = " ".join([*picked[:-1], last[:cut]])
    elif rng.random() < 0.5:
        text += " "
    return text


def report(name: str, values: list[float]) -> None:
    ms = sorted(v * 1000 for v in values)
    pick = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    print(
        f"{name:<28} n={len(ms):5d}  p50 {statistics.median(ms):6.2f} ms"
        f"  p90 {pick(0.90):6.2f}  p99 {pick(0.99):6.2f}  max {ms[-1]:6.2f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        schema = f"kb_bench_{args.seed}_{int(time.time())}"
        store: KbStorage = (
            PostgresKbStore(parse_database_url(args.postgresql, schema=schema))
            if args.postgresql
            else SqliteKbStore(Path(tmp) / "chatserver.sqlite3")
        )
        await store.open()
        kb = KnowledgeBase(store)
        made = [article(i, rng) for i in range(args.articles)]
        started = time.perf_counter()
        author = Author("bench", "bench")
        for data in made:
            fields = check_fields(data)
            await store.create(fields, indexed(fields), author, time.time())
        print(f"stored {len(made)} articles in {time.perf_counter() - started:.1f} s")
        if args.postgresql:  # the planner's statistics, as autovacuum would gather them
            import psycopg

            with psycopg.connect(args.postgresql, autocommit=True) as conn:
                conn.execute(f"ANALYZE {schema}.kb_fts")
                conn.execute(f"ANALYZE {schema}.kb_articles")
        queries = []
        for _ in range(args.queries):
            data = rng.choice(made)
            lang = str(data["lang"])
            source = str(data["title"] if rng.random() < 0.5 else data["body"])
            text = typed(lang, source, rng) if rng.random() < 0.9 else sentence(lang, rng, 2)
            queries.append((lang, text))
        for lang, text in queries[:50]:  # warm up the caches
            await kb.search(text, lang=lang)
        names = ("service, one language", "service, every language", "store only (one language)")
        timings: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        found = 0
        for lang, text in queries:
            query = SearchQuery(text, {lang: query_terms(text, lang)}, limit=3)
            calls: tuple[Awaitable[object], ...] = (  # each runs when awaited, in turn
                kb.search(text, lang=lang, limit=3),
                kb.search(text, lang=None, limit=3),
                store.search(query),
            )
            for name, call in zip(names, calls, strict=True):
                t0, c0 = time.perf_counter(), time.process_time()
                results = await call
                timings[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                if name == names[0]:
                    found += bool(results)
        await store.close()
        if args.postgresql:
            import psycopg

            with psycopg.connect(args.postgresql, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    print(f"{len(queries)} typed queries, {found / len(queries):.0%} with results")
    print("wall clock, call to answer:")
    for name, values in timings.items():
        report(name, values)
    print("CPU time of the process per search (both threads; immune to other processes):")
    for name, values in cpu.items():
        report(name, values)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=21)
    parser.add_argument("--postgresql", metavar="URL", help="on PostgreSQL at URL")
    asyncio.run(main(parser.parse_args()))
