"""The public help pages: the knowledge base's public articles as plain HTML.

``GET /help/`` (languages, a search form, the articles of the visitor's language),
``GET /help/<lang>/`` (the articles; ``?q=`` searches) and ``GET /help/<lang>/<slug>``
(one article, with links to its translations). Rendered on the server and usable
without JavaScript: a search is a plain ``GET`` form. Only published public articles
appear; anything else is a 404 page. Every value is escaped; an article's body is the
sanitised HTML of :func:`chatserver.kb.model.render_html`, and the pages' content
security policy allows no script at all besides. The page's chrome comes from the
server's catalogs (:mod:`chatserver.i18n.catalogs`) in the page's language.
"""

from __future__ import annotations

from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from chatserver.errors import BadRequest, ChatError, NotFound, RateLimited
from chatserver.i18n.catalogs import translation
from chatserver.i18n.languages import LANGUAGES, from_header, pick
from chatserver.kb.model import Article
from chatserver.kb.service import KnowledgeBase
from chatserver.web import inputs, quotas

HELP_CSP = (
    "default-src 'none'; script-src 'none'; style-src 'unsafe-inline'; img-src 'self' https:;"
    " form-action 'self'; base-uri 'none'; frame-ancestors 'self'"
)
# Each language's name in itself (the language picker).
NAMES = {"de": "Deutsch", "fr": "Français", "it": "Italiano", "en": "English"}
STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
header,main,footer{max-width:46rem;margin:0 auto;padding:1rem}
header nav ul{list-style:none;display:flex;gap:1rem;padding:0;margin:0}
a{color:#0b57d0}a:focus,button:focus,input:focus{outline:3px solid #f5a300;outline-offset:2px}
form{display:flex;gap:.5rem;flex-wrap:wrap;margin:1rem 0}
input[type=search]{flex:1;min-width:12rem;padding:.5rem;font:inherit}
button{padding:.5rem 1rem;font:inherit}
ul.articles{padding-left:1.2rem}ul.articles li{margin:.4rem 0}
.snippet{color:#444;margin:.2rem 0 0}
article img{max-width:100%}pre{overflow:auto;background:#eee;padding:.5rem}
footer{color:#555;font-size:.9rem}
"""


def _kb(request: Request) -> KnowledgeBase:
    kb: KnowledgeBase = request.app.state.kb
    return kb


def texts(lang: str) -> dict[str, str]:
    """The pages' words in ``lang``, HTML-escaped (``results`` has a ``{q}`` to fill)."""
    tr = translation(lang)
    words = {
        "help": tr.gettext("Help"),
        "languages": tr.gettext("Languages"),
        "footer": tr.gettext("Did not find an answer? Our team is happy to help."),
        "search_label": tr.gettext("Search the help pages"),
        "search": tr.gettext("Search"),
        "not_found": tr.gettext("Page not found"),
        "not_found_text": tr.gettext("This article does not exist or is not public."),
        "all": tr.gettext("All help articles"),
        "articles": tr.gettext("Articles"),
        "none": tr.gettext("No articles yet."),
        "no_match": tr.gettext("No article matches your search."),
        "too_many": tr.gettext(
            "Too many searches in a short time. Please wait a moment, then search again."
        ),
        "also_in": tr.gettext("Also in"),
        "results": tr.gettext("Results for “{q}”"),
    }
    return {key: escape(value, quote=True) for key, value in words.items()}


def _page(lang: str, title: str, content: str, status: int = 200) -> HTMLResponse:
    """A whole page: language links, ``content`` inside ``<main>``; ``title`` is HTML."""
    t = texts(lang)
    languages = "".join(
        f'<li><a href="/help/{code}/" lang="{code}" hreflang="{code}"'
        + (' aria-current="page"' if code == lang else "")
        + f">{escape(NAMES.get(code, code))}</a></li>"
        for code in LANGUAGES
    )
    html = (
        f'<!doctype html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title} · {t['help']}</title>"
        f"<style>{STYLE}</style></head><body>"
        f'<header><nav aria-label="{t["languages"]}"><ul>{languages}</ul></nav></header>'
        f'<main id="main">{content}</main>'
        f"<footer><p>{t['footer']}</p></footer></body></html>"
    )
    headers = {
        "Content-Security-Policy": HELP_CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Cache-Control": "no-cache",
    }
    return HTMLResponse(html, status_code=status, headers=headers)


def _search_form(lang: str, q: str) -> str:
    t = texts(lang)
    return (
        f'<form role="search" method="get" action="/help/{lang}/">'
        f'<label for="q">{t["search_label"]}</label>'
        f'<input id="q" name="q" type="search" maxlength="200" value="{escape(q, quote=True)}">'
        f'<button type="submit">{t["search"]}</button></form>'
    )


def _article_list(lang: str, articles: list[Article]) -> str:
    if not articles:
        return f"<p>{texts(lang)['none']}</p>"
    items = "".join(
        f'<li><a href="/help/{a.fields.lang}/{a.fields.slug}">{escape(a.fields.title)}</a></li>'
        for a in articles
    )
    return f'<ul class="articles">{items}</ul>'


def _listing(lang: str, articles: list[Article]) -> HTMLResponse:
    t = texts(lang)
    content = (
        f"<h1>{t['help']}</h1>"
        + _search_form(lang, "")
        + f"<h2>{t['articles']}</h2>"
        + _article_list(lang, articles)
    )
    return _page(lang, t["help"], content)


def _not_found(lang: str) -> HTMLResponse:
    t = texts(lang)
    content = (
        f"<h1>{t['not_found']}</h1><p>{t['not_found_text']}</p>"
        f'<p><a href="/help/{lang}/">{t["all"]}</a></p>'
    )
    return _page(lang, t["not_found"], content, status=404)


def _visitor_lang(request: Request) -> str:
    default: str = request.app.state.settings.default_language
    return pick(from_header(request.headers.get("accept-language")), default=default)


async def help_index(request: Request) -> Response:
    """``/help/``: in the visitor's language (Accept-Language), all languages linked."""
    lang = _visitor_lang(request)
    return _listing(lang, await _kb(request).public_list(lang))


async def help_language(request: Request) -> Response:
    """``/help/<lang>/``: the language's articles, or the results of ``?q=``."""
    lang = request.path_params["lang"]
    if lang not in LANGUAGES:
        return _not_found(_visitor_lang(request))
    try:
        q = (inputs.query_str(request, "q", 200) or "").strip()
    except BadRequest:
        q = ""
    kb = _kb(request)
    if not q:
        return _listing(lang, await kb.public_list(lang))
    t = texts(lang)
    try:
        results = await kb.search(
            q, lang=lang, limit=10, source="help", admit=lambda: quotas.kb_search(request)
        )
    except RateLimited as exc:
        # Counted with the API's visitor searches (per address): 429, said in words.
        content = f"<h1>{t['help']}</h1>" + _search_form(lang, q) + f"<p>{t['too_many']}</p>"
        page = _page(lang, t["help"], content, status=429)
        page.headers["Retry-After"] = str(max(1, exc.retry_after or 1))
        return page
    except ChatError:
        results = []
    heading = t["results"].format(q=escape(q))
    if results:
        items = "".join(
            f'<li><a href="/help/{lang}/{escape(r["slug"])}">{escape(r["title"])}</a>'
            f'<p class="snippet">{escape(r["snippet"])}</p></li>'
            for r in results
        )
        listing = f'<ul class="articles">{items}</ul>'
    else:
        listing = f"<p>{t['no_match']}</p>"
    content = (
        f"<h1>{t['help']}</h1>"
        + _search_form(lang, q)
        + f'<h2 id="results">{heading}</h2>'
        + listing
        + f'<p><a href="/help/{lang}/">{t["all"]}</a></p>'
    )
    return _page(lang, heading, content)


async def help_article(request: Request) -> Response:
    """``/help/<lang>/<slug>``: one public article (counts a view)."""
    lang = request.path_params["lang"]
    if lang not in LANGUAGES:
        return _not_found(_visitor_lang(request))
    kb = _kb(request)
    try:
        article, translations = await kb.read(lang, request.path_params["slug"], None, "help")
    except NotFound:
        return _not_found(lang)
    t = texts(lang)
    others = ""
    if translations:
        links = "".join(
            f'<li><a href="/help/{o.fields.lang}/{o.fields.slug}" lang="{o.fields.lang}"'
            f' hreflang="{o.fields.lang}">{escape(NAMES[o.fields.lang])}: '
            f"{escape(o.fields.title)}</a></li>"
            for o in translations
        )
        others = f'<nav aria-label="{t["also_in"]}"><h2>{t["also_in"]}</h2><ul>{links}</ul></nav>'
    title = escape(article.fields.title)
    content = (
        f'<p><a href="/help/{lang}/">{t["all"]}</a></p>'
        f"<article><h1>{title}</h1>{kb.article_json(article, translations)['html']}</article>"
        + others
        + _search_form(lang, "")
    )
    return _page(lang, title, content)


async def help_redirect(request: Request) -> Response:
    """``/help`` and ``/help/<lang>``: the same with a trailing slash."""
    lang = request.path_params.get("lang")
    if lang is not None and lang not in LANGUAGES:
        return _not_found(_visitor_lang(request))
    return RedirectResponse("/help/" + (f"{lang}/" if lang else ""), status_code=308)


ROUTES = [
    Route("/help", help_redirect, methods=["GET"]),
    Route("/help/", help_index, methods=["GET"]),
    Route("/help/{lang}", help_redirect, methods=["GET"]),
    Route("/help/{lang}/", help_language, methods=["GET"]),
    Route("/help/{lang}/{slug}", help_article, methods=["GET"]),
]
