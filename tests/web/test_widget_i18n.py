"""The widget's languages: one catalog per language (widget/i18n/<lang>.json), the
same keys and placeholders in each, nothing user-visible in widget.js that bypasses
them, and the server serving them (inlined into /widget.js, and on their own).

Contract: /work/tools/i18n_contract.md (languages, ticket states, notice codes).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatserver.config import ConfigError, Settings
from chatserver.i18n.languages import LANGUAGES
from chatserver.web.app import I18N_MARK, WIDGET_DIR, minified_widget, widget_catalogs

I18N_DIR = WIDGET_DIR / "i18n"
SOURCE = (WIDGET_DIR / "widget.js").read_text(encoding="utf-8")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def catalog(lang: str) -> dict[str, str]:
    data = json.loads((I18N_DIR / f"{lang}.json").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


CATALOGS = {lang: catalog(lang) for lang in LANGUAGES}

# Server-written chat events of the contract, with their params.
NOTICES = {
    "operator_joined": {"name"},
    "operator_went_offline": {"name"},
    "operator_lost_connection": {"name"},
    "another_operator_requested": set(),
    "handover_to_operator": {"from", "to"},
    "transfer_to_level": {"level"},
    "transfer_to_colleague": {"from"},
    "chat_closed_by_visitor": set(),
    "chat_closed_by_operator": set(),
    "chat_closed": set(),
    "visitor_left_unanswered": set(),
    "chat_taken_over": {"name"},
    "chat_reassigned": {"name"},
    "ticket_created": {"ticket"},
}
TICKET_STATES = {
    "open": "Offen",
    "in_progress": "In Bearbeitung",
    "feedback_needed": "Feedback benötigt",
    "information": "Informationen",
    "answered": "Beantwortet",
    "closed": "Geschlossen",
}
# Texts that are the same word in English and in the other language.
SAME_AS_ENGLISH = {
    ("fr", "chat.messages"),  # Messages
    ("fr", "state.information"),  # Information
    ("it", "file.unnamed"),  # file
    # German desks say "2nd-Level-Support" (contract, transfer_to_level).
    *(("de", f"level.{n}") for n in (1, 2, 3)),
}


# ------------------------------------------------------------------ catalogs
def test_one_catalog_per_language_and_nothing_else() -> None:
    assert sorted(p.name for p in I18N_DIR.iterdir()) == sorted(
        f"{lang}.json" for lang in LANGUAGES
    )


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_in_every_language(lang: str) -> None:
    reference = CATALOGS["en"]
    keys = CATALOGS[lang]
    assert sorted(set(reference) - set(keys)) == [], f"{lang}.json lacks these"
    assert sorted(set(keys) - set(reference)) == [], f"{lang}.json has these extra"
    for key, text in keys.items():
        assert isinstance(text, str) and text.strip(), f"{lang}: {key} is empty"
        assert text == text.strip(), f"{lang}: {key} has spaces around it"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_placeholders_match_across_languages(lang: str) -> None:
    for key, text in CATALOGS[lang].items():
        want = set(PLACEHOLDER.findall(CATALOGS["en"][key]))
        assert set(PLACEHOLDER.findall(text)) == want, f"{lang}: {key} {text!r}"
        assert "{" not in PLACEHOLDER.sub("", text), f"{lang}: {key} has a broken placeholder"


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_translated_not_copied(lang: str) -> None:
    same = {
        key
        for key, text in CATALOGS[lang].items()
        if text == CATALOGS["en"][key] and (lang, key) not in SAME_AS_ENGLISH
    }
    assert same == set(), f"{lang}: still the English text"


def test_every_notice_code_of_the_contract_with_its_params() -> None:
    for lang, keys in CATALOGS.items():
        notices = {k.removeprefix("notice.") for k in keys if k.startswith("notice.")}
        assert notices == set(NOTICES), lang
        for code, params in NOTICES.items():
            assert set(PLACEHOLDER.findall(keys[f"notice.{code}"])) == params, (lang, code)
        # transfer_to_level: the level as each language writes it (2nd, 2e, 2°).
        assert {keys[f"level.{n}"] for n in (1, 2, 3)} == {
            "en": {"1st", "2nd", "3rd"},
            "de": {"1st", "2nd", "3rd"},
            "fr": {"1er", "2e", "3e"},
            "it": {"1°", "2°", "3°"},
        }[lang]


def test_swiss_german() -> None:
    de = CATALOGS["de"]
    assert not [key for key, text in de.items() if "ß" in text]
    assert {state: de[f"state.{state}"] for state in TICKET_STATES} == TICKET_STATES
    # Formal address: "Sie", never "du"/"dein".
    informal = re.compile(r"\b(du|dich|dir|dein\w*)\b", re.IGNORECASE)
    assert not [key for key, text in de.items() if informal.search(text)]


def test_each_language_names_itself() -> None:
    names = {lang: CATALOGS[lang]["lang.name"] for lang in LANGUAGES}
    assert names == {"de": "Deutsch", "fr": "Français", "it": "Italiano", "en": "English"}


# ----------------------------------------------------------- the widget's code
def js_scan(source: str) -> tuple[list[tuple[str, str, str]], str]:
    """Every string and template literal of ``source`` as (quote, value as written,
    the code before it), and the code without comments.

    A small scanner for this one file: comments, the three kinds of strings and
    regular expression literals (a ``/`` where a value cannot end).
    """
    out: list[tuple[str, str, str]] = []
    code: list[str] = []  # the source so far without comments
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if source.startswith("//", i):
            i = source.index("\n", i)
            continue
        if source.startswith("/*", i):
            i = source.index("*/", i) + 2
            code.append(" ")
            continue
        if c in "'\"`":
            j = i + 1
            while source[j] != c:
                j += 2 if source[j] == "\\" else 1
            out.append((c, source[i + 1 : j], "".join(code[-200:])))
            code.append(source[i : j + 1])
            i = j + 1
            continue
        if c == "/":
            prev = "".join(code).rstrip()
            if (
                not prev
                or prev[-1] in "(,=:[!&|?{};+-*%<>~^"
                or re.search(r"\b(return|typeof|case|else|in|of|new|void|throw)$", prev)
            ):
                j, in_class = i + 1, False
                while in_class or source[j] != "/":
                    if source[j] == "\\":
                        j += 1
                    elif source[j] == "[":
                        in_class = True
                    elif source[j] == "]":
                        in_class = False
                    j += 1
                code.append("/re/")
                i = j + 1
                continue
        code.append(c)
        i += 1
    return out, "".join(code)


def js_literals(source: str) -> list[tuple[str, str, str]]:
    return js_scan(source)[0]


def unescape(value: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), value)


# Where a literal would be shown to the visitor or read out to them.
SINK = re.compile(
    r"""(?:\b(?:text|title|placeholder|alt|label)\s*:|'aria-(?:label|description|valuetext)'\s*:|"""
    r"""\.(?:textContent|innerText|title|placeholder|alt)\s*=|"""
    r"""setAttribute\(\s*'(?:aria-label|title|placeholder|alt|aria-description)'\s*,|"""
    r"""\bput\(\s*[\w.]+\s*,\s*'[\w-]+'\s*,|"""
    r"""\b(?:showNotice|alert|confirm|prompt|createTextNode)\(|new Error\()"""
    r"""\s*(?:\w[\w.]*\s*\?\s*)?$"""
)
# Looks like words for people: two words, a capital or a sentence's punctuation.
PROSE = re.compile(r"[A-Za-zÀ-ÿ]{2,}[\s,;:.!?\u2014\u2026]+[A-Za-zÀ-ÿ]{2,}")
# Literals with words that are not for the visitor.
ALLOWED = {
    "[chatserver] data-identity is not valid JSON; ignored",  # for the site's developer
}


def visible_literal_problems(source: str) -> list[str]:
    problems = []
    for quote, written, before in js_literals(source):
        if quote == "`" and before.rstrip().endswith("CSS_TEXT ="):
            continue  # the stylesheet
        value = unescape(written)
        if value in ALLOWED or not re.search(r"[A-Za-zÀ-ÿ]", value):
            continue
        if SINK.search(before):
            problems.append(f"shown as is: {value!r}")
        elif PROSE.search(value) and (
            re.search(r"[A-Z]", value) or re.search(r"[.!?\u2026]$", value)
        ):
            problems.append(f"prose outside the catalog: {value!r}")
    return problems


def test_the_scanner_finds_what_bypasses_the_catalog() -> None:
    bad = r"""
      h('button', { text: 'End chat', 'aria-label': 'Close' });
      el.textContent = 'Reconnecting…';
      ui.x.setAttribute('placeholder', 'Your name');
      put(ui.n, 'title', 'Sent');
      showNotice('Not connected');
      const X = { a: 'Something went wrong.' };
      const re = /it's "quoted"/g; // a regex with quotes is no string
      h('p', { text: T('chat.intro'), class: 'intro msg' });
    """
    assert visible_literal_problems(bad) == [
        "shown as is: 'End chat'",
        "shown as is: 'Close'",
        "shown as is: 'Reconnecting…'",
        "shown as is: 'Your name'",
        "shown as is: 'Sent'",
        "shown as is: 'Not connected'",
        "prose outside the catalog: 'Something went wrong.'",
    ]


def test_widget_shows_no_text_outside_the_catalogs() -> None:
    assert visible_literal_problems(SOURCE) == []


def test_widget_uses_only_known_keys_and_every_key() -> None:
    found, code = js_scan(SOURCE)
    literals = {value for quote, value, _ in found if quote == "'"}
    keys = set(CATALOGS["en"])
    called = set(re.findall(r"\b[tT]\(\s*'([^']+)'\s*[,)]", code))
    assert len(called) > 50
    assert called - keys == set(), "t()/T() with keys no catalog has"
    # Keys built at run time: 'notice.' + code, 'state.' + state, ...
    prefixes = {v for v in literals if re.fullmatch(r"[a-z]+\.", v)}
    assert prefixes == {"notice.", "state.", "tick.", "error.", "level."}
    unused = {k for k in keys if k not in literals and not any(k.startswith(p) for p in prefixes)}
    # lang.name: the language's name in the switch, written into widget.js by the server.
    assert unused == {"lang.name"}


def test_widget_has_the_marker_once() -> None:
    assert SOURCE.count(I18N_MARK.decode()) == 1


# ------------------------------------------------------------------ serving
def inlined(body: bytes) -> dict[str, Any]:
    start = body.index(b'{"d":')
    data, _ = json.JSONDecoder().raw_decode(body[start:].decode())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("lang", LANGUAGES)
def test_served_widget_inlines_one_language(lang: str) -> None:
    body, _ = minified_widget(language=lang)
    assert I18N_MARK not in body
    data = inlined(body)
    catalogs = widget_catalogs()
    assert data["d"] == lang
    assert data["c"] == CATALOGS[lang]
    # Every language by its own name, in the order of LANGUAGES, with its version.
    assert list(data["l"]) == list(LANGUAGES)
    assert data["l"] == {
        other: [CATALOGS[other]["lang.name"], catalogs[other][1]] for other in LANGUAGES
    }
    # Only that one catalog is in the file.
    for other in LANGUAGES:
        if other != lang:
            assert CATALOGS[other]["chat.intro"].encode() not in body


def test_catalog_versions_follow_the_files(tmp_path: Path) -> None:
    for lang in LANGUAGES:
        (tmp_path / f"{lang}.json").write_text(json.dumps(CATALOGS[lang]), encoding="utf-8")
    first = widget_catalogs(tmp_path)
    assert json.loads(first["fr"][0]) == CATALOGS["fr"]
    assert widget_catalogs(tmp_path) is first
    changed = dict(CATALOGS["fr"], title="Parlons-en")
    (tmp_path / "fr.json").write_text(json.dumps(changed), encoding="utf-8")
    second = widget_catalogs(tmp_path)
    assert json.loads(second["fr"][0])["title"] == "Parlons-en"
    assert second["fr"][1] != first["fr"][1]
    assert second["de"] == first["de"]


def test_default_language_setting() -> None:
    assert Settings().default_language == LANGUAGES[0] == "de"
    assert Settings.load({"CHATSERVER_DEFAULT_LANGUAGE": "fr"}).default_language == "fr"
    with pytest.raises(ConfigError, match="default_language"):
        Settings.load({"CHATSERVER_DEFAULT_LANGUAGE": "es"})


def test_server_serves_catalogs_cached_for_good(make_server: Any) -> None:
    server = make_server(env={"CHATSERVER_DEFAULT_LANGUAGE": "fr"})
    server.start()
    catalogs = widget_catalogs()
    with httpx.Client(base_url=server.http_url) as http:
        # /widget.js carries the site's default language, French here.
        widget = http.get("/widget.js")
        assert widget.content == minified_widget(language="fr")[0]
        assert inlined(widget.content)["d"] == "fr"

        body, version = catalogs["it"]
        response = http.get(f"/widget/i18n/it.json?v={version}")
        assert response.status_code == 200
        assert response.content == body
        assert response.json() == CATALOGS["it"]
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert response.headers["x-content-type-options"] == "nosniff"
        etag = response.headers["etag"]
        again = http.get(f"/widget/i18n/it.json?v={version}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        # Without the current version (an old widget.js, a typed URL): revalidated.
        stale = http.get("/widget/i18n/it.json?v=0123")
        assert stale.status_code == 200 and stale.json() == CATALOGS["it"]
        assert stale.headers["cache-control"] == "no-cache"  # revalidated by ETag
        # Any page may load it (the widget runs on the customer's site).
        cors = http.get("/widget/i18n/de.json", headers={"Origin": "https://shop.example"})
        assert cors.headers["access-control-allow-origin"] == "*"
        for missing in ("es.json", "de", "de.js", "..%2Fwidget.js", "en.json.json"):
            assert http.get(f"/widget/i18n/{missing}").status_code == 404, missing
