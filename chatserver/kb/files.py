"""``chatserver kb import DIR`` and ``chatserver kb export DIR``: articles as Markdown files.

A desk keeps its FAQ in git as one file per article, ``<lang>/<slug>.md``: a front-matter
header (:func:`chatserver.kb.model.parse_document`) and the Markdown body::

    ---
    title: Drucker druckt nicht
    lang: de
    slug: drucker-druckt-nicht
    department: it
    tags: ["drucker", "netzwerk"]
    visibility: public
    status: published
    group: de/drucker-druckt-nicht
    ---

    Prüfen Sie zuerst …

``lang`` and ``slug`` may be left out where the path says them (``de/<slug>.md``);
``visibility`` defaults to ``public``, ``status`` to ``published``. Files naming the same
``group`` (the ``lang/slug`` of one of them) are translations of each other.

**Import** matches articles by language and slug: a new one is created, a changed one
updated, an equal one left alone, each change a revision by ``import``; so importing the
same folder twice changes nothing. Every file is checked before anything is written: one
bad file and nothing is imported. Articles that have no file are left as they are, and a
``group`` only links translations, it never unlinks them. **Export** writes every
article (drafts and agents-only ones too) to ``<lang>/<slug>.md``; importing an export
into an empty knowledge base and exporting again gives the same files.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.model import (
    IMPORT_AUTHOR,
    ArticleFields,
    FieldError,
    check_fields,
    format_document,
    group_key,
    parse_document,
)
from chatserver.kb.service import indexed
from chatserver.kb.store.base import KbStorage, LanguageTaken, SlugTaken

MAX_FILE_BYTES = 1024 * 1024


@dataclasses.dataclass(slots=True)
class ImportReport:
    """What an import did (or, with ``errors``, why it did nothing)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclasses.dataclass(frozen=True, slots=True)
class ArticleFile:
    path: Path
    fields: ArticleFields
    group: str | None

    @property
    def key(self) -> str:
        return f"{self.fields.lang}/{self.fields.slug}"


def read_file(path: Path, folder: Path) -> ArticleFile:
    """One article file; :class:`FieldError` says what is wrong with it."""
    if path.stat().st_size > MAX_FILE_BYTES:
        raise FieldError("file", f"larger than {MAX_FILE_BYTES} bytes")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise FieldError("file", "not UTF-8 text") from None
    header, body = parse_document(text)
    data: dict[str, Any] = {**header, "body": body}
    parent = path.relative_to(folder).parent.name
    data.setdefault("lang", parent if parent in LANGUAGES else None)
    data.setdefault("slug", path.stem)
    data.setdefault("visibility", "public")
    data.setdefault("status", "published")
    group = data.pop("group", None)
    fields = check_fields(data)
    if group is not None and "/" not in group:
        raise FieldError("group", "group must name an article as lang/slug, e.g. de/printer")
    return ArticleFile(path, fields, group)


def read_folder(folder: Path) -> tuple[list[ArticleFile], list[str]]:
    """Every ``*.md`` below ``folder`` (sorted by path), and the errors found."""
    files: list[ArticleFile] = []
    errors: list[str] = []
    if not folder.is_dir():
        return [], [f"{folder}: not a folder"]
    seen: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.md")):
        try:
            found = read_file(path, folder)
        except FieldError as exc:
            errors.append(f"{path}: {exc.message}")
            continue
        except OSError as exc:
            errors.append(f"{path}: {exc.strerror or exc}")
            continue
        if found.key in seen:
            errors.append(f"{path}: {found.key} is also in {seen[found.key]}")
            continue
        seen[found.key] = path
        files.append(found)
    return files, errors


def _order(files: list[ArticleFile]) -> list[tuple[ArticleFile, str | None]]:
    """Each file with the ``lang/slug`` of the article whose group it joins (``None``:
    none); a group's anchor (the file its ``group`` names, else its first file) comes
    first, so it exists, with the group's lowest id, before its translations."""
    keys = {f.key for f in files}
    anchor_of: dict[str, str] = {}
    for f in files:
        if f.group is not None and f.group not in anchor_of:
            anchor_of[f.group] = f.group if f.group in keys else f.key
    first: list[tuple[ArticleFile, str | None]] = []
    then: list[tuple[ArticleFile, str | None]] = []
    for f in files:
        if f.group is None:
            first.append((f, None))
        elif anchor_of[f.group] == f.key:
            # The named article has no file here: join it if it is stored already.
            first.append((f, None if f.group == f.key else f.group))
        else:
            then.append((f, anchor_of[f.group]))
    return first + then


async def import_folder(store: KbStorage, folder: Path, now: float | None = None) -> ImportReport:
    """Import every article file below ``folder`` (see the module docstring)."""
    report = ImportReport()
    files, report.errors = read_folder(folder)
    if report.errors:
        return report
    when = time.time() if now is None else now
    for f, anchor_key in _order(files):
        group_of = None
        if anchor_key is not None:
            lang, _, slug = anchor_key.partition("/")
            anchor = await store.by_slug(lang, slug)
            if anchor is not None:
                group_of = anchor.id
        existing = await store.by_slug(f.fields.lang, f.fields.slug)
        try:
            if existing is None:
                await store.create(
                    f.fields, indexed(f.fields), IMPORT_AUTHOR, when,
                    group_of=group_of, action="import",
                )  # fmt: skip
                report.created += 1
                continue
            changed = await store.update(
                existing.id, f.fields, indexed(f.fields), IMPORT_AUTHOR, when,
                action="import", group_of=group_of,
            )  # fmt: skip
        except SlugTaken:
            report.errors.append(f"{f.path}: the slug is taken")
            continue
        except LanguageTaken:
            report.errors.append(
                f"{f.path}: its group {f.group} already has an article in {f.fields.lang}"
            )
            continue
        if changed is None:
            report.unchanged += 1
        else:
            report.updated += 1
    return report


async def export_folder(store: KbStorage, folder: Path) -> int:
    """Write every article to ``folder/<lang>/<slug>.md``; returns how many."""
    articles = await store.every_article()
    groups: dict[int, list[Any]] = {}
    for article in articles:
        groups.setdefault(article.group, []).append(article)
    for article in articles:
        members = groups[article.group]
        key = group_key(members) if len(members) > 1 else None
        path = folder / article.fields.lang / f"{article.fields.slug}.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_document(article.fields, key), encoding="utf-8")
    return len(articles)
