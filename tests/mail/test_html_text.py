"""HTML mail bodies as text (chatserver.mail.html_text), also on hostile markup."""

from __future__ import annotations

import time

import pytest

from chatserver.mail.html_text import html_to_text


def test_html_to_text_line_breaks_and_entities() -> None:
    html = (
        "<div>Line&nbsp;1</div><div><br></div><div>Line 2<br>Line 3</div>"
        "<p>Para &amp; &quot;quotes&quot; &#252;</p>"
        "<ul><li>one</li><li>two</li></ul>"
        "<blockquote>quoted<br>text</blockquote>after"
        '<p><a href="https://example.com/x">link</a></p>'
        "<table><tr><td>a</td><td>b</td></tr></table>"
        "<pre>  keep\n  indent</pre>"
        "<style>.x{}</style><script>var x = '</div>';</script>"
        "<p>unclosed"
    )
    assert html_to_text(html) == (
        'Line 1\n\nLine 2\nLine 3\nPara & "quotes" ü\n- one\n- two\n'
        "> quoted\n> text\nafter\nlink (https://example.com/x)\na b\n  keep\n  indent\nunclosed"
    )


def test_html_to_text_malformed_input() -> None:
    assert html_to_text("") == ""
    assert html_to_text("<script>never closed <b>bold</b>") == ""
    assert html_to_text("a < b > c &unknown; <") == "a < b > c &unknown; <"


@pytest.mark.parametrize(
    "unit",
    ["<a ", '<a b=">x', "<!--", "<!", "</", "<?", "<", "&#x", "<a ====>", "<p<a<b>>", "<![x>"],
)
def test_html_to_text_stays_fast_on_malformed_markup(unit: str) -> None:
    # Plain html.parser needs minutes for 60 kB of "<a <a <a ..."; the input is defused first.
    html = unit * (60_000 // len(unit))
    started = time.monotonic()
    for wrapped in (html, "<script>" + html, "<a b='" + html, "<pre>" + html):
        html_to_text(wrapped)
    assert time.monotonic() - started < 10


def test_html_to_text_keeps_odd_but_harmless_markup() -> None:
    assert html_to_text("1 < 2 and 3 > 2") == "1 < 2 and 3 > 2"
    assert html_to_text("<p>a <!-- hidden <b> --> b</p>") == "a b"
    assert html_to_text("<!DOCTYPE html><p>x</p><?php echo 1 ?>") == "x"
    assert html_to_text('<p title="unbalanced>text</p>') == "text"
    assert html_to_text("<!--[if mso]><p>mso only</p><![endif]--><p>all</p>") == "all"
    assert html_to_text("visible <!-- never closed <p>hidden</p>") == "visible"
