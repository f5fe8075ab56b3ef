"""The knowledge base's pure model: terms and stemming, safe HTML, files, fields."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from chatserver.kb.model import (
    ArticleFields,
    FieldError,
    Status,
    Visibility,
    check_fields,
    format_document,
    index_text,
    match_expression,
    normalise_body,
    parse_document,
    plain_text,
    query_terms,
    render_html,
    slugify,
    snippet,
    valid_slug,
)


def finds(query: str, text: str, lang: str) -> bool:
    """Whether some term of ``query`` is a term (or, as a prefix, starts one) of ``text``."""
    indexed = set(index_text(text, lang).split())
    terms = query_terms(query, lang)
    return bool(set(terms.terms) & indexed) or any(
        t.startswith(p) for p in terms.prefixes for t in indexed
    )


# ------------------------------------------------------------------ stemming
@pytest.mark.parametrize(
    ("query", "text", "lang"),
    [
        ("Druckers ", "Drucker druckt nicht", "de"),
        ("Rechnungen ", "Rechnung", "de"),
        ("Passwörter ", "Passwort vergessen", "de"),
        ("imprimantes ", "L'imprimante n'imprime pas", "fr"),
        ("factures ", "Où trouver ma facture", "fr"),
        ("fatture ", "Dove trovo la fattura", "it"),
        ("stampanti ", "La stampante non stampa", "it"),
        ("invoices ", "Where is my invoice", "en"),
        ("Fruhstuck ", "Frühstück", "de"),  # typed without the umlauts
    ],
)
def test_inflected_words_find_their_stem(query: str, text: str, lang: str) -> None:
    assert finds(query, text, lang)


def test_unrelated_words_do_not_match() -> None:
    assert not finds("Rechnungen ", "Drucker druckt nicht", "de")
    assert not finds("fatture ", "La stampante non stampa", "it")


def test_the_word_being_typed_matches_as_a_prefix() -> None:
    assert finds("Dru", "Drucker druckt nicht", "de")
    assert finds("mein Druc", "Drucker", "de")
    assert finds("imprim", "imprimante", "fr")
    # A finished word (followed by a space) is no prefix.
    assert query_terms("Dru ", "de").prefixes == ()
    assert not finds("Dru ", "Drucker druckt nicht", "de")
    assert query_terms("Dru", "de").prefixes == ("dru",)


def test_stop_words_are_dropped_and_the_expression_is_safe() -> None:
    terms = query_terms('der "Drucker" ist OR NOT kaputt*( ', "de")
    assert "der" not in terms.terms and "ist" not in terms.terms
    expression = match_expression(terms)
    assert expression is not None
    # Only quoted letter-and-digit terms joined by OR: nothing of FTS5's syntax gets in.
    for part in expression.split(" OR "):
        assert part.startswith('"') and part.rstrip("*").endswith('"')
        assert part.strip('"*').isalnum()
    assert match_expression(query_terms("?!  ...", "de")) is None
    assert not query_terms("_ _", "en")


def test_query_terms_are_bounded() -> None:
    terms = query_terms(" ".join(f"wort{i}" for i in range(500)), "de")
    assert len(terms.terms) + len(terms.prefixes) <= 26


# ------------------------------------------------------------------ HTML
EVIL = """# Title

<script>alert(1)</script>
<img src="x.png" onerror="alert(2)">
[click](javascript:alert(3))
<a href="javascript:alert(4)">four</a>
<a href="JaVaScRiPt:alert(5)">five</a>
<iframe src="https://evil.example"></iframe>
<style>body{display:none}</style>
<div onclick="alert(6)" style="color:red">div</div>
<svg onload="alert(7)"><circle/></svg>
<form action="https://evil.example"><input name="x"></form>
<object data="x.swf"></object>

[ok](https://example.com/page) and **bold**
"""


class Elements(HTMLParser):
    """Every element's tag and attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, {k: v or "" for k, v in attrs}))


def test_script_in_a_body_is_neutralised() -> None:
    html = render_html(EVIL)
    elements = Elements(html).found
    tags = {tag for tag, _ in elements}
    assert tags <= {"h2", "p", "img", "a", "strong", "div"} - {"div"}, tags
    for tag, attrs in elements:
        assert not any(name.startswith("on") or name == "style" for name in attrs), (tag, attrs)
        for name in ("href", "src"):
            assert not attrs.get(name, "").strip().lower().startswith("javascript"), attrs
    assert "alert(1)" not in html  # the script's content is gone, not shown
    assert '<a href="https://example.com/page" rel="noopener noreferrer nofollow">ok</a>' in html
    assert "<strong>bold</strong>" in html
    assert '<img src="x.png">' in html


def test_headings_move_one_level_down_and_markdown_renders() -> None:
    html = render_html("# One\n\n## Two\n\n- a\n- b\n\n| x | y |\n|---|---|\n| 1 | 2 |\n")
    assert "<h2>One</h2>" in html and "<h3>Two</h3>" in html and "<h1" not in html
    assert "<li>a</li>" in html and "<td>1</td>" in html


def test_plain_text_has_the_words_only() -> None:
    text = plain_text(
        "# Hi\n\nSee [the page](https://x.example/secret) <b>now</b>\n\n```\ncode\n```"
    )
    assert "Hi" in text and "the page" in text and "now" in text and "code" in text
    assert "https" not in text and "<b>" not in text


def test_snippet_is_cut_around_the_first_match() -> None:
    text = "Anfang " * 60 + "Die Rechnung bezahlen Sie online. " + "Ende " * 60
    cut = snippet(text, query_terms("Rechnungen ", "de"), "de")
    assert "Rechnung bezahlen" in cut and cut.startswith("…") and cut.endswith("…")
    assert len(cut) <= 190
    assert snippet("kurz", query_terms("x", "de"), "de") == "kurz"


# ------------------------------------------------------------------ fields
def test_slugs() -> None:
    assert slugify("Drucker druckt nicht! Straße") == "drucker-druckt-nicht-strasse"
    assert slugify("Où est ma facture ?") == "ou-est-ma-facture"
    assert slugify("???") == "article"
    assert len(slugify("wort " * 100)) <= 80
    assert valid_slug("a-b-1") and not valid_slug("A") and not valid_slug("a--b")
    assert not valid_slug("-a") and not valid_slug("a/b") and not valid_slug("x" * 81)


def test_check_fields_defaults_and_bounds() -> None:
    fields = check_fields({"title": "  Drucker  ", "lang": "de", "body": "\r\n\nText\r\n  "})
    assert fields == ArticleFields("de", "drucker", "Drucker", "Text")
    assert fields.status is Status.DRAFT and fields.visibility is Visibility.PUBLIC
    bad = [
        ({"title": "x"}, "lang"),
        ({"title": "", "lang": "de"}, "title"),
        ({"title": "x" * 201, "lang": "de"}, "title"),
        ({"title": "a\nb", "lang": "de"}, "title"),
        ({"title": 5, "lang": "de"}, "title"),
        ({"title": "x", "lang": "de", "slug": "Not A Slug"}, "slug"),
        ({"title": "x", "lang": "de", "tags": "a"}, "tags"),
        ({"title": "x", "lang": "de", "tags": ["a,b"]}, "tags"),
        ({"title": "x", "lang": "de", "tags": ["t"] * 21}, "tags"),
        ({"title": "x", "lang": "de", "visibility": "secret"}, "visibility"),
        ({"title": "x", "lang": "de", "status": "gone"}, "status"),
        ({"title": "x", "lang": "de", "body": "x" * 100_001}, "body"),
        ({"title": "x", "lang": "de", "body": 3}, "body"),
        ({"title": "x", "lang": "de", "department": ["it"]}, "department"),
    ]
    for data, field in bad:
        with pytest.raises(FieldError) as caught:
            check_fields(data)
        assert caught.value.field == field, data


def test_an_edit_keeps_what_it_does_not_name_and_cannot_change_the_language() -> None:
    base = check_fields({"title": "T", "lang": "fr", "body": "B", "tags": ["a"]})
    edited = check_fields({"body": "C"}, base)
    assert edited.title == "T" and edited.body == "C" and edited.tags == ("a",)
    with pytest.raises(FieldError):
        check_fields({"lang": "de"}, base)


# ------------------------------------------------------------------ files
def test_a_file_round_trips() -> None:
    fields = ArticleFields(
        "fr", "ou-est-ma-facture", 'Où est: ma "facture"?', "Corps\n\n- un",
        "compta", ("facture", "paiement"), Visibility.AGENTS, Status.PUBLISHED,
    )  # fmt: skip
    text = format_document(fields, "de/rechnung")
    header, body = parse_document(text)
    again = check_fields({**header, "body": body, "group": None} | {})
    assert header["group"] == "de/rechnung"
    assert again == fields
    assert format_document(again, "de/rechnung") == text


@pytest.mark.parametrize("title", ["No", "yes", "null", "123", "- x", "#hash", " a: b", "[x]"])
def test_titles_yaml_would_misread_are_quoted(title: str) -> None:
    fields = check_fields({"title": title, "lang": "en", "slug": "x"})
    header, _ = parse_document(format_document(fields))
    assert header["title"] == title.strip()


@pytest.mark.parametrize(
    "text",
    [
        "no header",
        "---\ntitle: x\n",  # never closed
        "---\n- a\n- b\n---\n",  # not a mapping
        "---\ntitle: [a, b]\n---\n",  # not one value
        "---\ncolour: red\n---\n",  # unknown key
        "---\ntitle: 'x\n---\n",  # broken YAML
        "---\ntags: {a: b}\n---\n",
    ],
)
def test_bad_files_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_document(text)
    assert caught.value.message


def test_file_bodies_are_normalised() -> None:
    header, body = parse_document("---\ntitle: x\ntags: a, b\n---\n\n\nBody\r\n\n")
    assert body == "Body" and header["tags"] == ["a", "b"]
    assert normalise_body("\n\nA\n\nB  \n") == "A\n\nB"
    # A '---' inside the body (a rule) is not the header's end.
    header, body = parse_document("---\ntitle: x\n---\nA\n\n---\n\nB\n")
    assert body == "A\n\n---\n\nB"
