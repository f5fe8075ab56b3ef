"""The operator console's catalogs, and that no user-visible string bypasses them.

- Every language listed in ``shared/i18n/languages.js`` has a catalog with exactly
  the keys of the English one, the same ``{placeholders}`` in each message, Swiss
  spelling in German (never "ß"), a sentence for every error code the server can
  send (``chatserver/errors.py``, the JSON refusals of ``chatserver/web/``) and for
  every chat notice of the i18n contract.
- A scan of ``index.html`` and ``js/**.js`` fails when a user-visible string is
  written as a literal instead of coming from the catalogs: text in the HTML
  without ``data-i18n`` (or a ``data-i18n-template``), ``title``/``aria-label``/
  ``placeholder`` without their ``data-i18n-*`` key, and in JS literals given to
  ``textContent``, ``title``, ``placeholder``, ``aria-label``, ``text:``, toasts,
  dialogs and ``el()`` children. ``ALLOWED`` lists the few literals that are no
  words of the console.
"""

from __future__ import annotations

import ast
import re
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "operator_console"
JS = CONSOLE / "js"
I18N = JS / "shared" / "i18n"

# Chat notice codes of the i18n contract (/work/tools/i18n_contract.md).
NOTICE_CODES = {
    "operator_joined", "operator_went_offline", "operator_lost_connection",
    "another_operator_requested", "handover_to_operator", "transfer_to_level",
    "transfer_to_colleague", "chat_closed_by_visitor", "chat_closed_by_operator",
    "chat_closed", "visitor_left_unanswered", "chat_taken_over", "chat_reassigned",
    "ticket_created",
}  # fmt: skip

# (file, literal): literals in sinks or looking like prose that are no words of
# the console.
ALLOWED = {
    # The server's own text of a callback request, recognised in a queue preview.
    ("service/sla.js", "Please call me back: "),
}
# Text of index.html that is no word (brand, numbers).
HTML_ALLOWED = {"chatserver", "0", "1", "2", "3", "0 / 0"}

ENTRY = re.compile(r"^  '(?P<key>[^'\\]+)': '(?P<text>(?:[^'\\]|\\.)*)',?$")


def decode(literal: str) -> str:
    """A single-quoted JS string's value (the catalogs use \\uXXXX and \\' escapes)."""
    return str(ast.literal_eval("'" + literal + "'"))


def languages() -> dict[str, Path]:
    """Code -> catalog file, as listed in languages.js."""
    text = (I18N / "languages.js").read_text()
    imports = dict(re.findall(r"^import (\w+) from '\./([a-z]{2})\.js';$", text, re.M))
    found = re.findall(r"\{ code: '([a-z]{2})',.*messages: (\w+) \}", text)
    assert found, "no languages found in languages.js"
    for code, name in found:
        assert imports.get(name) == code, f"language {code} does not load {code}.js"
    return {code: I18N / f"{code}.js" for code, _ in found}


def catalog(path: Path) -> dict[str, str]:
    """The messages of a catalog; fails on lines that are neither entries nor comments."""
    messages: dict[str, str] = {}
    body = path.read_text().split("export default {", 1)[1].rsplit("};", 1)[0]
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip() or line.strip().startswith("//"):
            continue
        match = ENTRY.match(line)
        assert match, f"{path.name}: cannot read entry line {number}: {line!r}"
        key = match["key"]
        assert key not in messages, f"{path.name}: {key!r} twice"
        messages[key] = decode(match["text"])
    return messages


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{(\w+)\}", text))


def server_error_codes() -> set[str]:
    codes = set(
        re.findall(
            r'^\s+code(?::[^=]+)? = "(\w+)"', (ROOT / "chatserver/errors.py").read_text(), re.M
        )
    )
    for web in sorted((ROOT / "chatserver/web").glob("*.py")):  # JSON refusals outside the tree
        codes |= set(re.findall(r'\{"error": "(\w+)"', web.read_text()))
    return codes


# ------------------------------------------------------------------ catalogs
def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    langs = languages()
    assert next(iter(langs)) == "en" and "de" in langs
    english = catalog(langs["en"])
    assert len(english) > 450
    problems: list[str] = []
    for code, path in langs.items():
        messages = catalog(path)
        for key in english.keys() - messages.keys():
            problems.append(f"{code}: no {key!r}")
        for key in messages.keys() - english.keys():
            problems.append(f"{code}: {key!r} is not in en.js")
        for key in english.keys() & messages.keys():
            if placeholders(english[key]) != placeholders(messages[key]):
                problems.append(f"{code}: {key!r} has {messages[key]!r}, en {english[key]!r}")
            if not messages[key].strip() and english[key].strip():
                problems.append(f"{code}: {key!r} is empty")
    assert not problems, "\n".join(problems)


def test_german_is_swiss_and_not_english() -> None:
    english = catalog(languages()["en"])
    german = catalog(languages()["de"])
    assert not [k for k, v in german.items() if "\u00df" in v], "Swiss German writes ss"
    same = {
        k
        for k, v in german.items()
        if v == english[k] and re.search(r"[a-z]{4}", re.sub(r"\{\w+\}", "", v))
    }
    # Words German desks use as they are.
    assert same <= {
        "nav.chats",
        "nav.tickets",
        "status.online",
        "status.offline",
        "visitor.field.name",
        "visitor.field.status",
        "visitor.field.chat",
        "ticket.label",
        "ticket.field.level",
        "ticket.change.level",
        "board.col.status",
        "board.col.level",
        "board.col.operator",
        "consult.side.name",
        "consult.side.chat",
        "consult.side.operator",
        "plan.standard",
        "ticket.priority.normal",
        "timer.pause",
        "ticket.channel.chat",
        "ticket.event.transcript",
        "ticket.actor.system",
        "ticket.transcript.author.system",
        "ticket.transcript.author.operator",
        "watch.operator",
        "consult.status.online",
        "consult.status.offline",
        "board.levelRow",
        "ticket.created.level",
        "role.operator",
        "role.supervisor",
        "canned.field.text",
        "chat.ticketChip",
        "tickets.count.one",
        "tickets.count.other",
        "context.tickets",
        "board.chatsCount",
        "status.chats",
    }, sorted(same)
    # The ticket states as the desks name them.
    assert [
        german["ticket.state." + s]
        for s in ("open", "in_progress", "feedback_needed", "information", "answered", "closed")
    ] == [
        "Offen",
        "In Bearbeitung",
        "Feedback benötigt",
        "Informationen",
        "Beantwortet",
        "Geschlossen",
    ]


def test_every_server_error_and_notice_has_a_sentence() -> None:
    codes = server_error_codes()
    assert {"bad_frame", "not_assigned", "chat_closed", "invalid_credentials"} <= codes
    for code, path in languages().items():
        messages = catalog(path)
        missing = [c for c in sorted(codes) if f"error.{c}" not in messages]
        missing += [n for n in sorted(NOTICE_CODES) if f"notice.{n}" not in messages]
        assert not missing, f"{code}: no message for {missing}"
        assert "error.generic" in messages
        for key, text in messages.items():
            if key.startswith("error."):
                # A sentence that says what to do, never a code.
                assert text.endswith(".") and not re.search(r"[a-z]_[a-z]", text), (code, key, text)


# ------------------------------------------------------------------ the scan
class HtmlScan(HTMLParser):
    """Text and labelling attributes of index.html that bypass data-i18n."""

    VOID = {"meta", "link", "input", "br", "img", "hr", "source"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict[str, str | None]]] = []
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for attr in ("title", "aria-label", "placeholder", "alt"):
            if attributes.get(attr) and f"data-i18n-{attr}" not in attributes:
                self.problems.append(
                    f"<{tag}> {attr}={attributes[attr]!r} without data-i18n-{attr}"
                )
        if tag not in self.VOID:
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        text = data.strip()
        if not text or not self.stack or text in HTML_ALLOWED:
            return
        tag, attributes = self.stack[-1]
        if tag in ("script", "style"):
            return
        if "data-i18n" in attributes or "data-i18n-template" in attributes:
            return
        self.problems.append(f"<{tag}> text {text!r} without data-i18n")


def test_index_html_text_goes_through_the_catalogs() -> None:
    scan = HtmlScan()
    scan.feed((CONSOLE / "index.html").read_text())
    assert not scan.problems, "\n".join(scan.problems)


STRING = r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|`(?:[^`\\]|\\.)*`"
# Where a string becomes visible text (or a label a screen reader reads).
SINKS = re.compile(
    r"\b(?:text|title|placeholder|alt|label|'aria-label'|\"aria-label\"):\s*"
    r"|\.(?:textContent|innerText|title|placeholder|label)\s*=\s*"
    r"|\bdataset\.(?:author|stateLabel)\s*=\s*"
    r"|setAttribute\(\s*'(?:aria-label|title|placeholder|alt)'\s*,\s*"
    r"|\bsetText\(\s*[\w.]+\s*,\s*"
    r"|\b(?:toast|showBanner|transferError|askError|replyError|showTicketError|confirmDialog"
    r"|createTextNode|alert|confirm|prompt)\(\s*"
)
# Strings that are catalog keys, not text.
KEYS = re.compile(r"\b(?:t|tn|hasMessage|label)\(\s*'[^']*'|\berrorMessage\([^,()]*,\s*'[a-z_]+'")
WORDS = re.compile(r"[A-Za-z\u00c0-\u017f]{2,}")
PROSE = re.compile(r"^[A-Z][a-z]+(?: [a-zA-Z]+)+")


def code_of(path: Path) -> str:
    """The source without comments (string contents kept)."""
    out: list[str] = []
    text = path.read_text()
    i = 0
    while i < len(text):
        match = re.compile(STRING).match(text, i)
        if match:
            out.append(match.group())
            i = match.end()
        elif text.startswith("//", i):
            i = text.find("\n", i) if "\n" in text[i:] else len(text)
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        elif (
            text[i] == "/"
            and re.match(r"[\s(,=:!&|?;{}]", "".join(out)[-1:] or " ")
            and text[i + 1] != " "
        ):
            end = re.compile(r"/(?:[^/\\\n\[]|\\.|\[(?:[^\]\\]|\\.)*\])+/[a-z]*").match(text, i)
            out.append(end.group() if end else "/")
            i = end.end() if end else i + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def expression(code: str, start: int) -> str:
    """The expression starting at ``start``, up to its end at bracket depth 0."""
    depth = 0
    i = start
    string = re.compile(STRING)
    while i < len(code):
        match = string.match(code, i)
        if match:
            i = match.end()
            continue
        ch = code[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif ch in ",;" and depth == 0:
            break
        i += 1
    return code[start:i]


def top_level(expr: str) -> str:
    """``expr`` without what is inside its brackets (nested calls check themselves)."""
    out: list[str] = []
    depth = 0
    i = 0
    string = re.compile(STRING)
    while i < len(expr):
        match = string.match(expr, i)
        if match:
            if depth == 0:
                out.append(match.group())
            i = match.end()
            continue
        ch = expr[i]
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
        i += 1
    return "".join(out)


def element_children(code: str) -> list[str]:
    """The 3rd and later arguments of every el(...) / svgEl(...) call, at their top level."""
    out: list[str] = []
    for call in re.finditer(r"\b(?:el|svgEl)\(", code):
        i = call.end()
        args: list[str] = []
        while i < len(code) and code[i] != ")":
            arg = expression(code, i)
            args.append(arg)
            i += len(arg)
            if i < len(code) and code[i] == ",":
                i += 1
        out.extend(top_level(arg) for arg in args[2:])
    return out


COMPARED = re.compile(r"(?:[!=]==?)\s*(?:" + STRING + r")|(?:" + STRING + r")\s*(?:[!=]==?)")


def literal_problems(rel: str, expr: str) -> list[str]:
    bare = COMPARED.sub("CMP", KEYS.sub("KEY", expr))
    found = []
    for literal in re.findall(STRING, bare):
        value = literal[1:-1]
        if WORDS.search(re.sub(r"\\u[0-9a-fA-F]{4}", "", value)) and (rel, value) not in ALLOWED:
            found.append(f"{rel}: literal {literal} in {expr.strip()[:80]!r}")
    return found


def test_console_js_strings_go_through_the_catalogs() -> None:
    problems: list[str] = []
    for path in sorted(JS.rglob("*.js")):
        rel = path.relative_to(JS).as_posix()
        if rel.startswith("shared/i18n/"):
            continue  # the catalogs themselves
        code = code_of(path)
        for sink in SINKS.finditer(code):
            value = expression(code, sink.end())
            if not re.match(r"\s*(?:el|svgEl)\(", value):  # an element kept under that name
                problems += literal_problems(rel, value)
        for child in element_children(code):
            problems += literal_problems(rel, child)
        for literal in re.findall(STRING, KEYS.sub("KEY", code)):
            value = literal[1:-1]
            if PROSE.match(value) and (rel, value) not in ALLOWED:
                problems.append(f"{rel}: prose {literal} outside the catalogs")
        if re.search(r"\b(?:window\.)?(?:confirm|alert|prompt)\(", code):
            problems.append(f"{rel}: a native dialog (use shared/confirm.js)")
    assert not problems, "\n".join(sorted(set(problems)))


def test_counted_messages_have_their_plural_forms() -> None:
    """tn('key', n) picks key.one / key.other (Intl.PluralRules): every language has both."""
    keys = {k for p in JS.rglob("*.js") for k in re.findall(r"\btn\('([^']+)'", p.read_text())}
    assert keys
    for code, path in languages().items():
        messages = catalog(path)
        wanted = [f"{k}.{form}" for k in sorted(keys) for form in ("one", "other")]
        missing = [k for k in wanted if k not in messages]
        assert not missing, f"{code}: {missing}"


def test_the_scan_finds_what_it_should() -> None:
    """The scan itself: each kind of bypass is caught, catalog keys are not."""
    bad = [
        "node.textContent = 'Hello there';",
        "el('span', { text: 'Close' });",
        "el('button', { title: t('x') + ' (press Enter)' });",
        "btn.setAttribute('aria-label', 'Remove');",
        "toast('Saved', 'info');",
        "setText(d.window, 'since midnight');",
        "el('div', null, 'Loading\u2026');",
        "input.placeholder = `Type here`;",
    ]
    for line in bad:
        code = line
        hits = [
            e
            for s in SINKS.finditer(code)
            for e in literal_problems("x.js", expression(code, s.end()))
        ]
        hits += [e for c in element_children(code) for e in literal_problems("x.js", c)]
        assert hits, line
    good = [
        "node.textContent = t('chat.ended');",
        "el('span', { text: label('ticket.state', s), className: 'badge' });",
        "el('span', { text: '\\u2014' }, ' \\u00b7 ');",
        "toast(errorMessage(f.code, 'transfer'), 'error');",
        "btn.setAttribute('aria-label', t('reply.file.remove.label'));",
    ]
    for line in good:
        code = line
        hits = [
            e
            for s in SINKS.finditer(code)
            for e in literal_problems("x.js", expression(code, s.end()))
        ]
        hits += [e for c in element_children(code) for e in literal_problems("x.js", c)]
        assert not hits, (line, hits)
