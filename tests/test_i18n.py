"""The server's languages: notices rendered per reader, complete catalogs, mail texts.

No server here: :mod:`chatserver.i18n` is plain functions over the shipped ``.po``
catalogs. What the server does with them (stored notices, mails over SMTP, the
migration of old texts) is tested in tests/chat, tests/tickets and tests/store.
"""

from __future__ import annotations

import ast
import re
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from chatserver.i18n import (
    LANGUAGES,
    NOTICES,
    Notice,
    UnknownNotice,
    from_header,
    mails,
    notice_text,
    pick,
    render_notice,
)
from chatserver.i18n.catalogs import catalog_path
from chatserver.i18n.legacy import notice_of_text
from chatserver.protocol import VISITOR_FRAMES, validate

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatserver"

SAMPLE = {"name": "Anna Muster", "from": "Anna Muster", "to": "Bruno Keller", "level": 2,
          "ticket": "#100042"}  # fmt: skip


def params_of(code: str) -> dict[str, object]:
    return {p: SAMPLE[p] for p in NOTICES[code][1]}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


# ------------------------------------------------------------------ notices
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("code", sorted(NOTICES))
def test_every_notice_renders_in_every_language(code: str, lang: str) -> None:
    text = render_notice(code, params_of(code), lang)
    assert text and "{" not in text and "}" not in text
    for value in params_of(code).values():
        if isinstance(value, str):
            assert value in text
    if lang != "en":
        assert text != render_notice(code, params_of(code), "en"), "not translated"
    if lang == "de":
        assert "ß" not in text  # Swiss German spelling


def test_rendered_texts_read_like_the_desk() -> None:
    assert (
        render_notice("operator_joined", {"name": "Anna"}, "de") == "Anna ist dem Chat beigetreten."
    )
    assert render_notice("transfer_to_level", {"level": 2}, "de") == (
        "Ihr Chat wird an den 2nd-Level-Support weitergeleitet."
    )
    assert render_notice("transfer_to_level", {"level": 1}, "fr") == (
        "Votre chat est transmis au support de 1er niveau."
    )
    assert render_notice("transfer_to_level", {"level": 3}, "it") == (
        "La Sua chat viene inoltrata al supporto di 3° livello."
    )
    assert render_notice("transfer_to_level", {"level": 2}, "en") == (
        "Your chat is being passed on to 2nd-level support."
    )
    assert render_notice("handover_to_operator", {"from": "A", "to": "B"}, "fr") == (
        "A transmet votre chat à B."
    )
    assert "Sie" in render_notice("another_operator_requested", {}, "de")
    assert "vous" in render_notice("another_operator_requested", {}, "fr").lower()


def test_params_are_not_formatted_again() -> None:
    # A name holding braces is shown as it is, never read as a placeholder.
    assert render_notice("operator_joined", {"name": "{ticket} {0}"}, "en") == (
        "{ticket} {0} joined the chat."
    )


def test_unknown_codes_params_and_languages() -> None:
    with pytest.raises(UnknownNotice):
        render_notice("nope", {}, "de")
    with pytest.raises(UnknownNotice):
        render_notice("operator_joined", {}, "de")
    with pytest.raises(UnknownNotice):
        Notice("operator_joined")
    with pytest.raises(UnknownNotice):
        Notice("not_a_code")
    # An unsupported language renders English.
    assert render_notice("chat_closed", {}, "xx") == "The chat was closed."
    # A stored message: its notice in the reader's language, else its text.
    extra = {"notice": {"code": "chat_closed", "params": {}}}
    assert notice_text("The chat was closed.", extra, "de") == "Der Chat wurde geschlossen."
    assert notice_text("old text", None, "de") == "old text"
    assert notice_text("old text", {"notice": {"code": "future", "params": {}}}, "de") == (
        "old text"
    )
    assert notice_text("old text", {"notice": "garbage"}, "de") == "old text"


def test_a_notice_stores_code_params_and_english() -> None:
    n = Notice("handover_to_operator", {"from": "Anna", "to": "Bruno"})
    assert n.extra() == {
        "notice": {"code": "handover_to_operator", "params": {"from": "Anna", "to": "Bruno"}}
    }
    assert n.english() == "Anna is handing your chat over to Bruno."


# ------------------------------------------------------------------ catalogs
def catalog(lang: str) -> Catalog:
    with catalog_path(lang).open("rb") as fp:
        return read_po(fp, locale=lang)


def source_msgids() -> set[str]:
    """What `make catalogs` extracts from the source (babel.cfg, keyword N_)."""
    found = extract_from_dir(
        str(ROOT),
        method_map=[("chatserver/**.py", "python")],
        keywords={"N_": None, "gettext": None, "ngettext": (1, 2), "pgettext": ((1, "c"), 2)},
    )
    return {msg if isinstance(msg, str) else msg[0] for _, _, msg, _, _ in found}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_translates_every_message_with_the_same_placeholders(lang: str) -> None:
    cat = catalog(lang)
    wanted = source_msgids()
    ids = {m.id for m in cat if m.id}
    assert wanted <= ids, f"missing in {lang} (run make catalogs): {sorted(wanted - ids)}"
    for message in cat:
        if not message.id:
            continue
        assert message.string, f"{lang}: no translation of {message.id!r}"
        assert not message.fuzzy, f"{lang}: fuzzy translation of {message.id!r}"
        assert placeholders(message.string) == placeholders(message.id), (lang, message.id)
        if lang == "de":
            assert "ß" not in message.string


def test_every_notice_code_is_in_the_catalogs() -> None:
    for lang in LANGUAGES:
        ids = {m.id for m in catalog(lang)}
        for code, (template, _) in NOTICES.items():
            assert template in ids, (lang, code)


def test_the_languages_are_listed_once() -> None:
    """``LANGUAGES`` is written out in chatserver/i18n/languages.py only."""
    pattern = re.compile(r"""\(\s*["']de["'],\s*["']fr["'],\s*["']it["'],\s*["']en["']""")
    hits = [
        str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if pattern.search(p.read_text())
    ]
    assert hits == ["chatserver/i18n/languages.py"]
    for lang in LANGUAGES:
        assert catalog_path(lang).is_file()


# ------------------------------------------------------------- system messages
def calls(name: str) -> list[tuple[str, ast.Call]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    out.append((f"{path.relative_to(ROOT)}:{node.lineno}", node))
    return out


def test_every_system_message_carries_a_notice() -> None:
    """A system message written without a notice (say, a plain English text) fails here."""
    found = calls("system_message") + calls("post_system")
    assert len(found) >= 7  # joined, closed, requeued (x2), transfer, reassigned, escalated
    bad = []
    for where, call in found:
        notice = next((k.value for k in call.keywords if k.arg == "notice"), None)
        if notice is None and len(call.args) >= 3:
            notice = call.args[2]
        if notice is None or isinstance(notice, ast.Constant | ast.JoinedStr | ast.BinOp):
            bad.append(where)
    assert not bad, f"system messages without a notice: {bad}"


def test_system_messages_are_written_by_system_message_only() -> None:
    """Storing a message from ``Sender.SYSTEM`` anywhere else would bypass the notice."""
    writers = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "append"
                    and any(isinstance(a, ast.Attribute) and a.attr == "SYSTEM" for a in node.args)
                ):
                    writers.append(f"{path.relative_to(ROOT)}:{func.name}")
    assert writers == ["chatserver/chat/delivery.py:system_message"]


def test_every_notice_written_names_a_known_code() -> None:
    used = set()
    for where, call in calls("Notice"):
        first = call.args[0] if call.args else None
        if isinstance(first, ast.Constant):
            assert first.value in NOTICES, where
            used.add(first.value)
        elif isinstance(first, ast.IfExp):  # "a" if x else "b"
            for branch in (first.body, first.orelse):
                assert isinstance(branch, ast.Constant) and branch.value in NOTICES, where
                used.add(branch.value)
    for _where, call in calls("get"):  # close_chat: {Sender...: "code"}.get(by, "chat_closed")
        if isinstance(call.func, ast.Attribute) and isinstance(call.func.value, ast.Dict):
            for value in [*call.func.value.values, *call.args[1:]]:
                if isinstance(value, ast.Constant) and value.value in NOTICES:
                    used.add(value.value)
    assert used == set(NOTICES), f"codes never written: {set(NOTICES) - used}"


# ------------------------------------------------------------- old texts
@pytest.mark.parametrize("code", sorted(NOTICES))
def test_old_english_texts_are_recognised(code: str) -> None:
    text = render_notice(code, params_of(code), "en")
    assert notice_of_text(text) == {"code": code, "params": params_of(code)}


def test_unknown_old_texts_stay_text() -> None:
    assert notice_of_text("Please call me back: +41 44 123 45 67") is None
    assert notice_of_text("Your chat is being passed on to 4th-level support.") is None
    assert notice_of_text("Anna joined the chat. And more") is None


# ------------------------------------------------------------- choosing a language
def test_language_from_headers_and_fallbacks() -> None:
    assert from_header("de-CH") == "de"
    assert from_header("fr-CH, de;q=0.9") == "fr"
    assert from_header("es, it;q=0.4, de;q=0.7") == "de"
    assert from_header("en;q=0, it") == "it"
    assert from_header("es, pt-BR") is None
    assert from_header("") is None and from_header(None) is None
    assert from_header("de;q=abc, fr;q=0.5") == "fr"
    assert pick(None, "xx", "it", "de", default="en") == "it"
    assert pick(None, default="fr") == "fr"


def hello(**fields: object) -> dict[str, object]:
    return validate({"type": "hello", **fields}, VISITOR_FRAMES, 100)


def test_hello_and_info_take_a_supported_language_only() -> None:
    for lang in LANGUAGES:
        assert hello(lang=lang)["lang"] == lang
        assert validate({"type": "info", "lang": lang}, VISITOR_FRAMES, 100)["lang"] == lang
    assert hello(lang=None)["lang"] is None
    from chatserver.errors import BadFrame

    for kind in ("hello", "info"):
        for bad in ("xx", "DE", "de-CH", ""):
            with pytest.raises(BadFrame, match="lang must be one of de, fr, it, en"):
                validate({"type": kind, "lang": bad}, VISITOR_FRAMES, 100)
        with pytest.raises(BadFrame, match="wrong type"):
            validate({"type": kind, "lang": 5}, VISITOR_FRAMES, 100)


# ------------------------------------------------------------------ mails
ENGLISH = re.compile(
    r"\b(the|we|you|your|please|reply|hello|thank|ticket number|request|regards|e-mail to)\b",
    re.I,
)


def test_german_confirmation_is_german() -> None:
    subject, body = mails.confirmation(
        "de",
        ref="#100042",
        subject="Drucker druckt nicht",
        name="Vera Muster",
        opened=1_790_000_000,  # 2026-09-21 14:13 UTC
        timezone="Europe/Zurich",
    )
    assert subject == "[#100042] Wir haben Ihre Anfrage erhalten: Drucker druckt nicht"
    assert "#100042" in body and "21. September 2026" in body and "16:13 Uhr" in body
    assert "Guten Tag Vera Muster" in body and "Freundliche Grüsse" in body
    assert not ENGLISH.search(subject + body), body
    assert "ß" not in body


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("fr", ("Bonjour", "votre demande", "21 septembre 2026")),
        ("it", ("Buongiorno", "Sua richiesta", "21 settembre 2026")),
        ("en", ("Hello", "your request", "September 21, 2026")),
    ],
)
def test_confirmation_per_language(lang: str, words: tuple[str, ...]) -> None:
    subject, body = mails.confirmation(
        lang, ref="#100042", subject="X", name=None, opened=1_790_000_000, timezone="Europe/Zurich"
    )
    assert subject.startswith("[#100042] ")
    for word in words:
        assert word in body, (lang, word, body)


def test_other_mails_per_language() -> None:
    subject, body = mails.feedback_needed(
        "de", ref="#100001", subject="Drucker", name=None, reason="Welches Modell?"
    )
    assert subject == "Feedback benötigt: [#100001] Drucker"
    assert "Welches Modell?" in body and not ENGLISH.search(subject + body)
    subject, body = mails.public_reply("fr", ref="#100001", subject="Imprimante", text="Voici.")
    assert subject == "RE : [#100001] Imprimante" and "répondre à cet e-mail" in body
    subject, body = mails.transcript("it", ["[10:00] Anna: Ciao"])
    assert subject == "La trascrizione della Sua chat" and "Anna: Ciao" in body
    # An unknown language writes English rather than nothing.
    assert mails.transcript("xx", [])[0] == "Your chat transcript"


def test_transcript_lines_per_language() -> None:
    line = mails.transcript_line(
        "de",
        ts=1_790_000_000,
        timezone="Europe/Zurich",
        author=None,
        text="Der Chat wurde geschlossen.",
        attachments=["fehler.png", "log.txt"],
    )
    assert line == "[21.09.26, 16:13] —: Der Chat wurde geschlossen. [Anhänge: fehler.png, log.txt]"
    line = mails.transcript_line(
        "en", ts=1_790_000_000, timezone="Europe/Zurich", author="Anna", text="Hi"
    )
    assert re.fullmatch(r"\[9/21/26, 4:13\sPM\] Anna: Hi", line), line  # (CLDR's space)
