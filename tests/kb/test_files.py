"""``chatserver kb import|export`` (chatserver.kb.files): round trip and idempotence."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chatserver.kb.files import export_folder, import_folder
from chatserver.kb.store.base import KbStorage
from chatserver.kb.store.postgres import PostgresKbStore
from chatserver.kb.store.sqlite import SqliteKbStore
from tests.pg import PG_URL, pg_database

ROOT = Path(__file__).resolve().parents[2]

PRINTER_DE = """---
title: Drucker druckt nicht
tags: [drucker, netzwerk]
department: it
group: de/drucker-druckt-nicht
---

Prüfen Sie zuerst das **Kabel**.
"""
PRINTER_FR = """---
title: "L'imprimante n'imprime pas"
lang: fr
slug: imprimante
group: de/drucker-druckt-nicht
---
Vérifiez le câble.
"""
INTERNAL = """---
title: Interne Preisliste
visibility: agents
status: draft
---
Nur für uns.
"""


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def tree(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text(encoding="utf-8")
        for p in sorted(folder.rglob("*.md"))
    }


async def revision_count(store: KbStorage) -> int:
    return sum([len(await store.revisions(a.id)) for a in await store.every_article()])


async def test_import_twice_changes_nothing_and_updates_are_revisions(
    store: KbStorage, tmp_path: Path
) -> None:
    folder = write(tmp_path / "faq", {
        "de/drucker-druckt-nicht.md": PRINTER_DE,
        "fr/whatever.md": PRINTER_FR,
        "de/intern.md": INTERNAL,
    })  # fmt: skip
    first = await import_folder(store, folder, now=1.0)
    assert (first.created, first.updated, first.unchanged, first.errors) == (3, 0, 0, [])
    de = await store.by_slug("de", "drucker-druckt-nicht")
    fr = await store.by_slug("fr", "imprimante")
    intern = await store.by_slug("de", "intern")
    assert de is not None and fr is not None and intern is not None
    assert de.group == fr.group and intern.group != de.group
    assert de.fields.tags == ("drucker", "netzwerk") and de.fields.department == "it"
    assert de.fields.status.value == "published" and intern.fields.status.value == "draft"
    assert intern.fields.visibility.value == "agents"
    revisions = await revision_count(store)

    second = await import_folder(store, folder, now=2.0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 3)
    assert await revision_count(store) == revisions

    write(folder, {"de/intern.md": INTERNAL.replace("Nur für uns.", "Nur intern.")})
    third = await import_folder(store, folder, now=3.0)
    assert (third.created, third.updated, third.unchanged) == (0, 1, 2)
    [latest, *_] = await store.revisions(intern.id)
    assert latest.action == "import" and latest.by.id == "import"
    assert latest.fields.body == "Nur intern."


async def test_export_import_export_round_trip(store: KbStorage, tmp_path: Path) -> None:
    source = write(tmp_path / "faq", {
        "de/drucker-druckt-nicht.md": PRINTER_DE,
        "fr/imprimante.md": PRINTER_FR,
        "de/intern.md": INTERNAL,
    })  # fmt: skip
    await import_folder(store, source)
    first = tmp_path / "export1"
    assert await export_folder(store, first) == 3
    exported = tree(first)
    assert set(exported) == {"de/drucker-druckt-nicht.md", "de/intern.md", "fr/imprimante.md"}
    assert "group: de/drucker-druckt-nicht" in exported["fr/imprimante.md"]
    assert "group" not in exported["de/intern.md"]

    other = SqliteKbStore(tmp_path / "other.sqlite3")
    await other.open()
    try:
        report = await import_folder(other, first)
        assert (report.created, report.errors) == (3, [])
        second = tmp_path / "export2"
        await export_folder(other, second)
        assert tree(second) == exported
        again = await import_folder(other, second)
        assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
        a = [(x.fields, x.group == x.id) for x in await store.every_article()]
        b = [(x.fields, x.group == x.id) for x in await other.every_article()]
        assert a == b
    finally:
        await other.close()


async def test_one_bad_file_and_nothing_is_imported(store: KbStorage, tmp_path: Path) -> None:
    folder = write(tmp_path / "faq", {
        "de/gut.md": "---\ntitle: Gut\n---\nText\n",
        "de/schlecht.md": "---\ntitle: Schlecht\nvisibility: everyone\n---\n",
        "xx/ohne-sprache.md": "---\ntitle: Ohne\n---\n",
        "de/kein-header.md": "Nur Text",
        "de/doppelt.md": "---\ntitle: Gut\nslug: gut\n---\n",
        "de/kaputt.md": b"---\ntitle: \xff\n---\n".decode("latin-1"),
    })  # fmt: skip
    (folder / "de" / "binary.md").write_bytes(b"---\ntitle: \xff\xfe\n---\n")
    report = await import_folder(store, folder)
    text = "\n".join(report.errors)
    assert "visibility must be public or agents" in text
    assert "lang must be one of" in text
    assert "front-matter header" in text
    assert "de/gut is also in" in text
    assert "not UTF-8" in text
    assert report.created == 0 and await store.every_article() == []
    missing = await import_folder(store, tmp_path / "nowhere")
    assert missing.errors and "not a folder" in missing.errors[0]


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("CHATSERVER_")}
    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        capture_output=True, text=True, cwd=ROOT, timeout=60, env={**environ, **env},
    )  # fmt: skip


def test_the_cli_imports_and_exports(tmp_path: Path) -> None:
    folder = write(tmp_path / "faq", {"de/drucker-druckt-nicht.md": PRINTER_DE})
    data = str(tmp_path / "data")
    done = run_cli("kb", "import", str(folder), "--data-dir", data)
    assert done.returncode == 0, done.stderr
    assert "1 created, 0 updated, 0 unchanged" in done.stdout
    done = run_cli("kb", "import", str(folder), "--data-dir", data)
    assert "0 created, 0 updated, 1 unchanged" in done.stdout
    done = run_cli("kb", "export", str(tmp_path / "out"), "--data-dir", data)
    assert done.returncode == 0 and "exported 1 article(s)" in done.stdout
    assert (tmp_path / "out" / "de" / "drucker-druckt-nicht.md").exists()
    write(folder, {"de/bad.md": "nothing"})
    done = run_cli("kb", "import", str(folder), "--data-dir", data)
    assert done.returncode == 1 and "bad.md" in done.stderr


async def test_the_cli_imports_into_and_exports_from_postgresql(tmp_path: Path) -> None:
    folder = write(tmp_path / "faq", {
        "de/drucker-druckt-nicht.md": PRINTER_DE, "fr/imprimante.md": PRINTER_FR,
    })  # fmt: skip
    data = str(tmp_path / "data")
    with pg_database() as db:
        env = {"CHATSERVER_DATABASE_URL": PG_URL, "CHATSERVER_DATABASE_SCHEMA": db.schema or ""}
        done = run_cli("kb", "import", str(folder), "--data-dir", data, **env)
        assert done.returncode == 0, done.stderr
        assert "2 created, 0 updated, 0 unchanged" in done.stdout
        # In PostgreSQL, not in a file of the data directory.
        assert not (tmp_path / "data" / "chatserver.sqlite3").exists()
        store = PostgresKbStore(db)
        await store.open()
        try:
            found = await store.by_slug("fr", "imprimante")
            assert found is not None and len(await store.group(found.group)) == 2
        finally:
            await store.close()
        done = run_cli("kb", "export", str(tmp_path / "out"), "--data-dir", data, **env)
        assert done.returncode == 0 and "exported 2 article(s)" in done.stdout, done.stderr
        assert (tmp_path / "out" / "fr" / "imprimante.md").read_text().startswith("---")
