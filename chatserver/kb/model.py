"""The knowledge base's pure model: articles, their files, safe HTML and search terms. No I/O.

- **Articles** (:class:`ArticleFields`, :class:`Article`, :class:`Revision`): what an
  author writes and what the store keeps. :func:`check_fields` holds every value to its
  bounds (a :class:`FieldError` names the field).
- **Files** (:func:`parse_document`, :func:`format_document`): Markdown with a
  front-matter header between ``---`` lines (``title``, ``lang``, ``slug``,
  ``department``, ``tags``, ``visibility``, ``status``, ``group``); the header is read
  with PyYAML's :class:`yaml.BaseLoader` (every value a string: ``title: No`` stays
  "No"), and written so that reading it back gives the same values.
- **HTML** (:func:`render_html`): markdown-it-py renders, nh3 (ammonia) sanitises with
  an allow-list: no script, style or iframe, no ``on*`` attribute, only ``http``,
  ``https``, ``mailto`` and ``tel`` links (relative ones too). Headings move one level
  down (the page's title is the ``h1``).
- **Search terms** (:func:`index_text`, :func:`match_expression`, :func:`snippet`):
  words are case-folded, stop words dropped, stemmed with Snowball (PyStemmer) in the
  article's language, then stripped of diacritics; the last word of a query still being
  typed also matches as a prefix. The SQLite store puts the stemmed text in FTS5.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import nh3
import Stemmer
import yaml
from markdown_it import MarkdownIt

from chatserver.i18n.languages import LANGUAGES

__all__ = [
    "MAX_BODY",
    "MAX_QUERY",
    "MAX_TAGS",
    "MAX_TITLE",
    "Article",
    "ArticleFields",
    "Author",
    "FieldError",
    "Revision",
    "Status",
    "Visibility",
    "check_fields",
    "format_document",
    "index_text",
    "match_expression",
    "normalise_body",
    "parse_document",
    "plain_text",
    "query_terms",
    "render_html",
    "slugify",
    "snippet",
    "valid_slug",
]

MAX_TITLE = 200
MAX_BODY = 100_000
MAX_SLUG = 80
MAX_DEPARTMENT = 64
MAX_TAG = 40
MAX_TAGS = 20
MAX_QUERY = 200
# Words of a query looked at (the rest are ignored): bounds the work of one search.
MAX_QUERY_TERMS = 24
# The word being typed matches as a prefix from this many letters on (fewer would match
# half the articles and find nothing in particular).
MIN_PREFIX = 3
# Characters of an article's text searched for a snippet's match.
SNIPPET_SCAN = 6000
SNIPPET_LENGTH = 180

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class FieldError(ValueError):
    """A value an author gave is out of bounds; ``field`` names it, the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class Visibility(enum.StrEnum):
    PUBLIC = "public"  # visitors, the help pages and operators
    AGENTS = "agents"  # operators only (any role)


class Status(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


@dataclasses.dataclass(frozen=True, slots=True)
class Author:
    """Who made a change: an operator (id and name), or ``import`` for ``chatserver kb import``."""

    id: str
    name: str


IMPORT_AUTHOR = Author("import", "import")


@dataclasses.dataclass(frozen=True, slots=True)
class ArticleFields:
    """What an author writes: checked by :func:`check_fields`, kept whole in each revision."""

    lang: str
    slug: str
    title: str
    body: str
    department: str | None = None
    tags: tuple[str, ...] = ()
    visibility: Visibility = Visibility.PUBLIC
    status: Status = Status.DRAFT


@dataclasses.dataclass(frozen=True, slots=True)
class Article:
    """A stored article: its fields, its translation group and its counters."""

    id: int
    group: int
    fields: ArticleFields
    created: float
    updated: float
    updated_by: str
    revision: int
    views: int = 0
    helped: int = 0
    not_helped: int = 0

    @property
    def visible_to_visitors(self) -> bool:
        return (
            self.fields.status is Status.PUBLISHED and self.fields.visibility is Visibility.PUBLIC
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Revision:
    """One change of an article: who, when, which action, and the fields after it."""

    article_id: int
    n: int
    at: float
    by: Author
    action: str  # create | edit | publish | unpublish | import
    fields: ArticleFields


# ------------------------------------------------------------------ fields
def _line(value: object, field: str, limit: int, *, required: bool) -> str | None:
    if value is None:
        if required:
            raise FieldError(field, f"{field} is required")
        return None
    if not isinstance(value, str):
        raise FieldError(field, f"{field} must be text")
    text = value.strip()
    if not text:
        if required:
            raise FieldError(field, f"{field} must not be empty")
        return None
    if len(text) > limit:
        raise FieldError(field, f"{field} is longer than {limit} characters")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise FieldError(field, f"{field} must be one line without control characters")
    return text


def valid_slug(slug: str) -> bool:
    """Lower-case ASCII letters and digits in groups joined by single hyphens, at most 80."""
    return len(slug) <= MAX_SLUG and SLUG_RE.match(slug) is not None


def slugify(title: str) -> str:
    """A slug made from ``title`` (accents dropped, ß as ss); ``article`` when nothing is left."""
    text = unicodedata.normalize("NFKD", title.replace("ß", "ss").replace("ẞ", "SS"))
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(slug) > MAX_SLUG:
        slug = slug[:MAX_SLUG].rsplit("-", 1)[0] or slug[:MAX_SLUG]
    return slug.strip("-") or "article"


def normalise_body(body: str) -> str:
    """The body as stored: LF line ends, no blank lines at the start, no trailing space at
    the end (so a file written by export reads back equal)."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    return text.lstrip("\n").rstrip()


def check_fields(data: Mapping[str, Any], base: ArticleFields | None = None) -> ArticleFields:
    """The article ``data`` describes, over ``base`` (an edit: keys not in ``data`` keep
    ``base``'s value). Raises :class:`FieldError` for the first value out of bounds."""

    def given(key: str) -> bool:
        return base is None or key in data

    lang = data.get("lang") if given("lang") else base.lang if base else None
    if lang not in LANGUAGES:
        raise FieldError("lang", f"lang must be one of {', '.join(LANGUAGES)}")
    assert isinstance(lang, str)
    if base is not None and lang != base.lang:
        raise FieldError("lang", "an article's language cannot change; create a translation")
    title = _line(data.get("title"), "title", MAX_TITLE, required=True) if given("title") else None
    title = title or (base.title if base else "")
    if given("body"):
        body = data.get("body", "")
        if body is None:
            body = ""
        if not isinstance(body, str):
            raise FieldError("body", "body must be text (Markdown)")
        if len(body) > MAX_BODY:
            raise FieldError("body", f"body is longer than {MAX_BODY} characters")
        if "\x00" in body:
            raise FieldError("body", "body must not contain NUL characters")
        body = normalise_body(body)
    else:
        assert base is not None
        body = base.body
    if given("slug") and data.get("slug") not in (None, ""):
        slug = data["slug"]
        if not isinstance(slug, str) or not valid_slug(slug):
            raise FieldError(
                "slug",
                "slug must be lower-case letters a-z, digits and single hyphens"
                f" (at most {MAX_SLUG} characters), like printer-does-not-print",
            )
    else:
        slug = base.slug if base is not None else slugify(title)
    department = (
        _line(data.get("department"), "department", MAX_DEPARTMENT, required=False)
        if given("department")
        else base.department
        if base
        else None
    )
    tags = _tags(data.get("tags")) if given("tags") else base.tags if base else ()
    visibility = _choice(data, "visibility", Visibility, base.visibility if base else None)
    status = _choice(data, "status", Status, base.status if base else None)
    return ArticleFields(lang, slug, title, body, department, tags, visibility, status)


def _tags(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise FieldError("tags", "tags must be a list of words")
    if len(value) > MAX_TAGS:
        raise FieldError("tags", f"at most {MAX_TAGS} tags")
    out: list[str] = []
    for item in value:
        tag = _line(item, "tags", MAX_TAG, required=True)
        assert tag is not None
        if "," in tag:
            raise FieldError("tags", "a tag must not contain a comma")
        if tag not in out:
            out.append(tag)
    return tuple(out)


_E = TypeVar("_E", bound=enum.StrEnum)


def _choice(data: Mapping[str, Any], key: str, kind: type[_E], current: _E | None) -> _E:
    raw = data.get(key)
    if raw is None:
        return current if current is not None else next(iter(kind))
    try:
        return kind(raw)
    except ValueError:
        names = " or ".join(m.value for m in kind)
        raise FieldError(key, f"{key} must be {names}") from None


# ------------------------------------------------------------- front matter
HEADER_KEYS = ("title", "lang", "slug", "department", "tags", "visibility", "status", "group")
_PLAIN_VALUE = re.compile(r"^[A-Za-z0-9ÀÖ-öø-ÿ][\w .,/()+&-]*$")


def parse_document(text: str) -> tuple[dict[str, Any], str]:
    """The header (values as strings; ``tags`` a list of strings) and the body of a file.

    Raises :class:`FieldError` (field ``file``) when the file does not start with a
    ``---`` header, the header is not a mapping of the known keys, or a value is not
    text where text is expected.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text.startswith("---\n"):
        raise FieldError("file", "the file must start with a '---' front-matter header")
    end = text.find("\n---", 3)
    while end != -1 and text[end + 4 : end + 5] not in ("\n", ""):
        end = text.find("\n---", end + 4)
    if end == -1:
        raise FieldError("file", "the front-matter header has no closing '---' line")
    try:
        header = yaml.load(text[4 : end + 1], Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        raise FieldError("file", f"the front-matter header is not valid YAML: {exc}") from None
    if header is None:
        header = {}
    if not isinstance(header, dict):
        raise FieldError("file", "the front-matter header must be 'key: value' lines")
    unknown = sorted(set(header) - set(HEADER_KEYS))
    if unknown:
        raise FieldError("file", f"unknown header key(s): {', '.join(map(str, unknown))}")
    for key, value in header.items():
        if key == "tags":
            if isinstance(value, str):
                header[key] = [t.strip() for t in value.split(",") if t.strip()]
            elif not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise FieldError("file", "tags must be a list like [printer, network]")
        elif not isinstance(value, str):
            raise FieldError("file", f"{key} must be a single value")
    return header, normalise_body(text[end + 4 :])


def _scalar(value: str) -> str:
    if _PLAIN_VALUE.match(value) and value == value.strip() and ": " not in value:
        # Words a YAML 1.1 reader would take for a boolean or null: quoted for them.
        if value.lower() not in ("yes", "no", "on", "off", "true", "false", "null", "y", "n"):
            return value
    return json.dumps(value, ensure_ascii=False)


def format_document(fields: ArticleFields, group: str | None = None) -> str:
    """The file of an article: the header, a blank line, the body, a final newline.

    ``group`` (``lang/slug`` of the group's first article) links translations.
    """
    lines = ["---", f"title: {_scalar(fields.title)}", f"lang: {fields.lang}"]
    lines.append(f"slug: {fields.slug}")
    if fields.department is not None:
        lines.append(f"department: {_scalar(fields.department)}")
    if fields.tags:
        lines.append(
            "tags: [" + ", ".join(json.dumps(t, ensure_ascii=False) for t in fields.tags) + "]"
        )
    lines.append(f"visibility: {fields.visibility.value}")
    lines.append(f"status: {fields.status.value}")
    if group is not None:
        lines.append(f"group: {_scalar(group)}")
    lines.append("---")
    return "\n".join(lines) + "\n\n" + (fields.body + "\n" if fields.body else "")


# ------------------------------------------------------------------- HTML
_MD = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable(["table", "strikethrough"])
_ALLOWED_TAGS = {
    "p", "br", "hr", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "u", "s",
    "del", "code", "pre", "kbd", "sub", "sup", "blockquote", "ul", "ol", "li", "a", "img",
    "table", "thead", "tbody", "tr", "th", "td", "details", "summary", "abbr",
}  # fmt: skip
_CLEANER = nh3.Cleaner(
    tags=_ALLOWED_TAGS,
    clean_content_tags={"script", "style", "iframe", "object", "embed", "template", "noscript"},
    attributes={
        "a": {"href", "title"},
        "img": {"src", "alt", "title", "width", "height"},
        "ol": {"start"},
        "abbr": {"title"},
        "th": {"align"},
        "td": {"align"},
    },
    url_schemes={"http", "https", "mailto", "tel"},
    link_rel="noopener noreferrer nofollow",
    strip_comments=True,
)


def render_html(body: str) -> str:
    """``body`` (Markdown) as HTML that cannot run script (see the module docstring)."""
    tokens = _MD.parse(body)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(6, int(token.tag[1]) + 1)}"  # the page's title is the h1
    html = _MD.renderer.render(tokens, _MD.options, {})
    return _CLEANER.clean(html)


def plain_text(body: str) -> str:
    """The words of ``body`` without Markdown syntax, raw HTML or link targets."""
    parts: list[str] = []
    for token in _MD.parse(body):
        if token.type == "inline" and token.children:
            for child in token.children:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
            parts.append("\n")
        elif token.type in ("fence", "code_block"):
            parts.append(token.content + "\n")
    return re.sub(r"[ \t]+", " ", "".join(parts)).strip()


# --------------------------------------------------------------- search terms
_STEMMER_NAMES = {"de": "german", "fr": "french", "it": "italian", "en": "english"}
# Words too common to find anything by (dropped from the index and from queries).
_STOP_WORDS: dict[str, frozenset[str]] = {
    "de": frozenset(
        "der die das den dem des ein eine einen einem einer eines und oder aber nicht kein"
        " keine ist sind war wird werden wurde bin bist hat haben habe ich du er sie es wir"
        " ihr mein meine mich mir dich dir sich zu zum zur im in an am auf aus bei mit nach"
        " von vor für über um wie was wo wer warum wann dass ob so auch noch nur schon sehr"
        " kann können muss mehr man als wenn dann da hier bitte ihr ihre ihren ihrem ihrer"
        " sein seine unser unsere euer dies diese dieser dieses jetzt immer gibt alle alles"
        " durch gegen ohne bis oft danke".split()
    ),
    "fr": frozenset(
        "le la les un une des du de d l et ou mais ne pas plus est sont suis es être avoir"
        " ai as a ont je tu il elle nous vous ils elles me te se mon ma mes ton ta tes son sa"
        " ses ce cet cette ces qui que quoi dans en sur sous par pour avec sans au aux comment"
        " pourquoi quand où si y c s n qu j m t très aussi encore votre vos notre nos leur"
        " leurs puis merci fait peut peux doit tout tous toute cela ça ceci".split()
    ),
    "it": frozenset(
        "il lo la i gli le un uno una di del della dei delle da dal dalla in nel nella con su"
        " per tra fra e ed o ma non è sono sei ho hai ha abbiamo hanno io tu lui lei noi voi"
        " loro mi ti si ci vi mio mia miei mie che chi cosa come perché quando dove se l"
        " un' c anche ancora molto più suo sua suoi sue nostro nostra vostro vostra poi"
        " grazie può posso deve tutto tutti questo questa quello quella".split()
    ),
    "en": frozenset(
        "the a an and or but not no is are was were be been am i you he she it we they me my"
        " your our its to of in on at by for with from as into about how what why when where"
        " who which that this these those do does did can could will would should please"
        " there here so if than then our their his her them us has have had also just all"
        " thanks".split()
    ),
}
_WORD = re.compile(r"\w+")


@functools.cache
def _stemmer(lang: str) -> Any:
    return Stemmer.Stemmer(_STEMMER_NAMES[lang])


def _fold(word: str) -> str:
    text = unicodedata.normalize("NFKD", word)
    return "".join(c for c in text if not unicodedata.combining(c))


def _words(text: str) -> Iterator[re.Match[str]]:
    return _WORD.finditer(text)


def _term(word: str, lang: str) -> str | None:
    """The indexed form of one word (``None``: not indexed)."""
    lower = word.casefold()
    if lower in _STOP_WORDS[lang] or (len(lower) < 2 and not lower.isdigit()):
        return None
    return _fold(_stemmer(lang).stemWord(lower)).replace("_", "")[:40] or None


def index_text(text: str, lang: str) -> str:
    """The indexed terms of ``text`` in ``lang``, space-separated (what FTS5 stores)."""
    terms = (_term(m.group(), lang) for m in _words(text))
    return " ".join(t for t in terms if t)


@dataclasses.dataclass(frozen=True, slots=True)
class QueryTerms:
    """A query's terms: whole ones, and the prefix of the word still being typed."""

    terms: tuple[str, ...]
    prefixes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.terms or self.prefixes)


def query_terms(query: str, lang: str) -> QueryTerms:
    """The terms of ``query`` in ``lang``; its last word counts as a prefix too unless the
    query ends with a space or punctuation (the visitor finished that word)."""
    words = [m.group() for m in _words(query[:MAX_QUERY])][:MAX_QUERY_TERMS]
    typing = bool(words) and query[-1:].isalnum()
    terms: list[str] = []
    for word in words:
        term = _term(word, lang)
        if term and term not in terms:
            terms.append(term)
    prefixes: list[str] = []
    if typing and words[-1].casefold() not in _STOP_WORDS[lang]:
        last = words[-1].casefold()
        for candidate in (_fold(_stemmer(lang).stemWord(last)), _fold(last)):
            candidate = candidate.replace("_", "")[:40]
            if len(candidate) >= MIN_PREFIX and candidate not in prefixes:
                prefixes.append(candidate)
        whole = _term(words[-1], lang)
        if whole in terms and whole in prefixes:
            terms.remove(whole)  # its prefix query finds it too
    return QueryTerms(tuple(terms), tuple(prefixes))


def match_expression(terms: QueryTerms, namespace: str = "", *, every: bool = False) -> str | None:
    """An FTS5 ``MATCH`` expression for ``terms``: any of them, or (``every``) all whole
    terms and one of the prefixes; ``None`` when there are none. ``namespace`` goes
    before each term (the SQLite store keeps each language's terms apart that way).

    Terms hold only letters and digits (``\\w`` less ``_``), so quoting them is enough.
    """
    whole = [f'"{namespace}{t}"' for t in terms.terms]
    prefixes = [f'"{namespace}{p}"*' for p in terms.prefixes]
    if not every:
        return " OR ".join(whole + prefixes) or None
    parts = whole + ([f"({' OR '.join(prefixes)})"] if prefixes else [])
    return " AND ".join(parts) or None


def snippet(text: str, terms: QueryTerms, lang: str, length: int = SNIPPET_LENGTH) -> str:
    """About ``length`` characters of ``text`` around its first word matching ``terms``
    (its start when none does), cut at word boundaries, with ``…`` where it was cut."""
    text = " ".join(text.split())
    if len(text) <= length:
        return text
    at = 0
    wanted = set(terms.terms)
    for m in _words(text[:SNIPPET_SCAN]):
        term = _term(m.group(), lang)
        if term and (term in wanted or any(term.startswith(p) for p in terms.prefixes)):
            at = m.start()
            break
    start = max(0, at - length // 4)
    if start:
        space = text.rfind(" ", 0, start + 1)
        start = space + 1 if space >= 0 and at - space < length // 2 else start
    end = min(len(text), start + length)
    if end < len(text):
        space = text.rfind(" ", start, end)
        end = space if space > start + length // 2 else end
    return ("…" if start else "") + text[start:end].strip() + ("…" if end < len(text) else "")


def group_key(members: Sequence[Article]) -> str:
    """How files name a translation group: ``lang/slug`` of its first (lowest id) article."""
    first = min(members, key=lambda a: a.id)
    return f"{first.fields.lang}/{first.fields.slug}"
