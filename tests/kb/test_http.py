"""The knowledge base over HTTP against a real server: the API (docs/http-api.md) and the
help pages, happy paths and every kind of bad input."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ServerProcess

EVIL_TITLE = 'Drucker <script>alert("t")</script> & "Co"'
EVIL_BODY = """Der Drucker druckt nicht.

<script>alert(1)</script>
<img src="/favicon.svg" onerror="alert(2)">
[klick](javascript:alert(3))
"""


class Desk:
    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.http_url, timeout=10)
        self.tokens = {
            name: self.http.post(
                "/api/login", json={"username": name, "password": "pw-secret"}
            ).json()["token"]
            for name in ("sam", "ada", "anna")
        }

    def auth(self, name: str | None) -> dict[str, str]:
        return {} if name is None else {"Authorization": f"Bearer {self.tokens[name]}"}

    def get(self, url: str, who: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.get(url, headers=self.auth(who), **kw)

    def post(self, url: str, who: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.post(url, headers=self.auth(who), **kw)

    def put(self, url: str, who: str | None = None, **kw: Any) -> httpx.Response:
        return self.http.put(url, headers=self.auth(who), **kw)

    def create(self, **data: Any) -> dict[str, Any]:
        response = self.post(
            "/api/kb/manage/articles", "sam", json={"lang": "de", "status": "published", **data}
        )
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    server = ServerProcess(Path(tmp_path_factory.mktemp("kb")) / "data")
    server.start()
    server.add_operator("sam", name="Sam Supervisor", role="supervisor")
    server.add_operator("ada", name="Ada Admin", role="admin")
    server.add_operator("anna", name="Anna Agent")
    made = Desk(server)
    made.printer = made.create(
        title="Drucker druckt nicht", body=EVIL_BODY, department="it", tags=["drucker"]
    )
    made.printer_fr = made.create(
        title="L'imprimante n'imprime pas",
        lang="fr",
        body="Vérifiez le câble.",
        translation_of=made.printer["id"],
    )
    made.internal = made.create(title="Drucker Preisliste intern", visibility="agents")
    made.draft = made.create(title="Drucker Entwurf", status="draft")
    made.evil = made.create(title=EVIL_TITLE, slug="evil", body=EVIL_BODY)
    yield made
    made.http.close()
    code = server.stop()
    assert "Traceback" not in server.log(), server.log()[-5000:]
    assert code in (None, 0, -signal.SIGTERM)


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"} and body["message"]
    return str(body["message"])


# ------------------------------------------------------------------ search
def test_search_for_visitors_and_agents(desk: Desk) -> None:
    response = desk.get("/api/kb/search", params={"q": "Druckers ", "lang": "de", "limit": 10})
    assert response.status_code == 200
    results = response.json()["results"]
    titles = [r["title"] for r in results]
    assert "Drucker druckt nicht" in titles
    assert "Drucker Preisliste intern" not in titles and "Drucker Entwurf" not in titles
    first = next(r for r in results if r["title"] == "Drucker druckt nicht")
    assert first["url"] == "/help/de/drucker-druckt-nicht" and first["lang"] == "de"
    assert "Drucker" in first["snippet"] and "<" not in first["snippet"]
    assert "visibility" not in first
    staff = desk.get("/api/kb/search", "anna", params={"q": "Drucker", "lang": "de", "limit": 10})
    by_title = {r["title"]: r for r in staff.json()["results"]}
    assert by_title["Drucker Preisliste intern"]["visibility"] == "agents"
    assert by_title["Drucker Preisliste intern"]["url"] is None
    assert "Drucker Entwurf" not in by_title
    # Every language when none is given; the default limit is 3.
    anywhere = desk.get("/api/kb/search", params={"q": "imprimante"}).json()["results"]
    assert [r["lang"] for r in anywhere] == ["fr"]
    assert len(desk.get("/api/kb/search", "anna", params={"q": "Drucker"}).json()["results"]) == 3


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "q is required"),
        ({"q": ""}, "q is required"),
        ({"q": "   "}, "q is required"),
        ({"q": "x" * 201}, "longer than 200"),
        ({"q": "a\x00b"}, "control characters"),
        ({"q": "x", "lang": "es"}, "lang must be"),
        ({"q": "x", "limit": "0"}, "limit must be"),
        ({"q": "x", "limit": "11"}, "limit must be"),
        ({"q": "x", "limit": "three"}, "limit must be"),
        ({"q": "x", "source": "mail"}, "source must be"),
        ({"q": "x", "department": "d" * 65}, "department is longer"),
    ],
)
def test_bad_searches_are_400(desk: Desk, params: dict[str, str], message: str) -> None:
    assert message in error(desk.get("/api/kb/search", params=params), 400)


def test_garbage_searches_find_nothing_and_bad_tokens_are_401(desk: Desk) -> None:
    for q in ("?!", '") OR 1=1 --', "NEAR(a b)", "*", "ü" * 200, "\U0001d518\U0001d52b\u200b"):
        response = desk.get("/api/kb/search", params={"q": q, "lang": "de"})
        assert response.status_code == 200 and response.json() == {"results": []}, q
    bad = desk.http.get("/api/kb/search", params={"q": "x"},
                        headers={"Authorization": "Bearer a.b.c"})  # fmt: skip
    error(bad, 401)
    bad = desk.http.get("/api/kb/search", params={"q": "x"}, headers={"Authorization": "Basic x"})
    error(bad, 401)
    # A visitor's session token (no dots) is a visitor.
    ok = desk.http.get("/api/kb/search", params={"q": "Drucker"},
                       headers={"Authorization": "Bearer abcdef"})  # fmt: skip
    assert ok.status_code == 200


# ------------------------------------------------------------------ articles
def test_an_article_with_its_translations(desk: Desk) -> None:
    response = desk.get("/api/kb/articles/de/drucker-druckt-nicht", params={"source": "widget"})
    assert response.status_code == 200
    data = response.json()
    assert data["title"] == "Drucker druckt nicht" and data["department"] == "it"
    assert data["tags"] == ["drucker"] and data["visibility"] == "public"
    assert "<script" not in data["html"] and "onerror" not in data["html"]
    assert "javascript:" not in data["html"].split("[klick]")[0]
    assert data["translations"] == [
        {"lang": "fr", "slug": "l-imprimante-n-imprime-pas",
         "title": "L'imprimante n'imprime pas", "url": "/help/fr/l-imprimante-n-imprime-pas"}
    ]  # fmt: skip


def test_hidden_articles_are_404_for_visitors(desk: Desk) -> None:
    internal = f"/api/kb/articles/de/{desk.internal['slug']}"
    draft = f"/api/kb/articles/de/{desk.draft['slug']}"
    for url in (internal, draft, "/api/kb/articles/de/nothing", "/api/kb/articles/xx/evil",
                "/api/kb/articles/de/" + "x" * 300):  # fmt: skip
        assert error(desk.get(url), 404) == "no such article"
    assert desk.get(internal, "anna").status_code == 200
    error(desk.get(draft, "anna"), 404)
    assert "source must be" in error(desk.get(internal, "anna", params={"source": "x"}), 400)


def visitor_session(server: ServerProcess) -> tuple[str, str]:
    """A visitor's chat session on ``server``: (its id, its token)."""

    async def start() -> tuple[str, str]:
        visitor = await server.visitor()
        try:
            return visitor.session_id, visitor.token
        finally:
            await visitor.close()

    return asyncio.run(start())


def test_feedback(desk: Desk) -> None:
    url = "/api/kb/articles/de/drucker-druckt-nicht/feedback"
    session, token = visitor_session(desk.server)
    assert desk.post(url, json={"helped": True, "session": session}).status_code == 204
    assert desk.post(url, json={"helped": False}).status_code == 204
    # The same session again, by its token this time: counts nothing more.
    again = desk.http.post(url, json={"helped": True}, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 204
    for body, message in [
        ({}, "helped must be"),
        ({"helped": "yes"}, "helped must be"),
        ({"helped": True, "session": "x" * 201}, "session must be"),
        ({"helped": True, "session": "s_1 OR 1=1"}, "session must be"),
        ({"helped": True, "source": "phone"}, "source must be"),
    ]:
        assert message in error(desk.post(url, json=body), 400)
    # A session or a token nobody has: 404, nothing counted.
    unknown = {"helped": True, "session": "s_nobodyhasthis1"}
    assert "no such chat session" in error(desk.post(url, json=unknown), 404)
    stranger = {"Authorization": "Bearer not-a-session-token"}
    assert "no chat session has this token" in error(
        desk.http.post(url, json={"helped": True}, headers=stranger), 404
    )
    other = {"helped": True, "session": "s_somebodyelse1"}
    mismatch = desk.http.post(url, json=other, headers={"Authorization": f"Bearer {token}"})
    assert "not the chat session of your token" in error(mismatch, 400)
    assert "JSON" in error(desk.post(url, content=b"{nope"), 400)
    error(desk.post(url, content=b"[1]"), 400)
    error(desk.post(url, content=b"x" * 5000), 413)
    error(desk.post(f"/api/kb/articles/de/{desk.internal['slug']}/feedback",
                    json={"helped": True}), 404)  # fmt: skip
    got = desk.get(f"/api/kb/manage/articles/{desk.printer['id']}", "sam").json()
    assert (got["helped"], got["not_helped"]) == (1, 1)


# ------------------------------------------------------------------ authoring
MANAGE = [
    ("get", "/api/kb/manage/articles", None),
    ("post", "/api/kb/manage/articles", {"title": "x", "lang": "de"}),
    ("get", "/api/kb/manage/articles/1", None),
    ("put", "/api/kb/manage/articles/1", {"title": "hacked"}),
    ("post", "/api/kb/manage/articles/1/publish", None),
    ("post", "/api/kb/manage/articles/1/unpublish", None),
    ("get", "/api/kb/manage/articles/1/revisions", None),
    ("post", "/api/kb/manage/preview", {"body": "x"}),
]


@pytest.mark.parametrize(("method", "url", "body"), MANAGE)
def test_agents_get_403_and_visitors_401(desk: Desk, method: str, url: str, body: Any) -> None:
    call = getattr(desk, method)
    kw = {"json": body} if body is not None else {}
    assert "supervisors and admins" in error(call(url, "anna", **kw), 403)
    error(call(url, None, **kw), 401)
    assert desk.get("/api/kb/manage/articles/1", "sam").json()["title"] == "Drucker druckt nicht"


def test_authoring_round(desk: Desk) -> None:
    made = desk.create(title="Versand", body="Per Post.", status="draft", tags=["post"])
    assert made["status"] == "draft" and made["revision"] == 1 and made["url"] == "/help/de/versand"
    assert made["html"].strip() == "<p>Per Post.</p>" and made["translations"] == []
    url = f"/api/kb/manage/articles/{made['id']}"
    edited = desk.put(url, "ada", json={"body": "Per **Kurier**.", "revision": 1}).json()
    assert edited["revision"] == 2 and "<strong>Kurier</strong>" in edited["html"]
    assert edited["updated_by"] == "Ada Admin"
    stale = desk.put(url, "sam", json={"body": "alt", "revision": 1})
    assert "changed meanwhile" in error(stale, 409)
    assert desk.post(url + "/publish", "sam").json()["status"] == "published"
    assert desk.get("/api/kb/articles/de/versand").status_code == 200
    assert desk.post(url + "/unpublish", "sam").json()["status"] == "draft"
    error(desk.get("/api/kb/articles/de/versand"), 404)
    revisions = desk.get(url + "/revisions", "sam").json()["revisions"]
    assert [(r["n"], r["action"], r["by"]["name"]) for r in revisions] == [
        (4, "unpublish", "Sam Supervisor"), (3, "publish", "Sam Supervisor"),
        (2, "edit", "Ada Admin"), (1, "create", "Sam Supervisor"),
    ]  # fmt: skip
    assert revisions[-1]["body"] == "Per Post." and revisions[-1]["tags"] == ["post"]
    listed = desk.get("/api/kb/manage/articles", "sam", params={"status": "draft"}).json()
    assert made["id"] in [a["id"] for a in listed["articles"]] and listed["total"] >= 2
    assert "body" not in listed["articles"][0] and "views" in listed["articles"][0]
    found = desk.get("/api/kb/manage/articles", "sam", params={"q": "Versan"}).json()
    assert [a["title"] for a in found["articles"]] == ["Versand"]
    preview = desk.post("/api/kb/manage/preview", "sam", json={"body": "<script>x</script>\n\n*a*"})
    assert preview.json()["html"].strip() == "<p><em>a</em></p>"


def test_bad_authoring_inputs_change_nothing(desk: Desk) -> None:
    before = desk.get("/api/kb/manage/articles", "sam", params={"limit": 200}).json()
    printer = f"/api/kb/manage/articles/{desk.printer['id']}"
    cases = [
        (desk.post, "/api/kb/manage/articles", {"json": {"lang": "de"}}, 400, "title"),
        (
            desk.post,
            "/api/kb/manage/articles",
            {"json": {"title": "x", "lang": "de", "slug": "drucker-druckt-nicht"}},
            409,
            "already used",
        ),
        (
            desk.post,
            "/api/kb/manage/articles",
            {"json": {"title": "x", "lang": "fr", "translation_of": desk.printer["id"]}},
            409,
            "translation in fr",
        ),
        (desk.post, "/api/kb/manage/articles", {"content": b"not json"}, 400, "JSON"),
        (
            desk.post,
            "/api/kb/manage/articles",
            {"json": {"title": "x", "lang": "de", "oops": 1}},
            400,
            "unknown field",
        ),
        (desk.put, printer, {"json": {"lang": "fr"}}, 400, "language cannot change"),
        (desk.put, printer, {"json": {"tags": "a"}}, 400, "tags"),
        (desk.put, printer, {"json": {"visibility": "everyone"}}, 400, "visibility"),
        (desk.put, printer, {"json": ["x"]}, 400, "object"),
        (desk.put, "/api/kb/manage/articles/99999", {"json": {"title": "x"}}, 404, "no such"),
        (desk.put, "/api/kb/manage/articles/abc", {"json": {"title": "x"}}, 404, "no such"),
        (desk.get, "/api/kb/manage/articles/0", {}, 404, "no such"),
        (desk.post, "/api/kb/manage/articles/99999/publish", {}, 404, "no such"),
        (desk.get, "/api/kb/manage/articles/99999/revisions", {}, 404, "no such"),
        (desk.get, "/api/kb/manage/articles", {"params": {"status": "gone"}}, 400, "status"),
        (desk.get, "/api/kb/manage/articles", {"params": {"limit": "0"}}, 400, "limit"),
        (desk.get, "/api/kb/manage/articles", {"params": {"lang": "es"}}, 400, "lang"),
        (desk.post, "/api/kb/manage/preview", {"json": {"body": 1}}, 400, "body"),
        (desk.post, "/api/kb/manage/preview", {"json": {"body": "x" * 100_001}}, 400, "body"),
    ]
    for call, url, kw, status, message in cases:
        assert message in error(call(url, "sam", **kw), status), (url, kw)
    after = desk.get("/api/kb/manage/articles", "sam", params={"limit": 200}).json()
    assert without_views(after) == without_views(before)


def without_views(listing: dict[str, Any]) -> dict[str, Any]:
    """A listing without its view counts: the reads of earlier tests are counted in
    the background (flushed every few seconds), so they may land at any time."""
    articles = [{k: v for k, v in a.items() if k != "views"} for a in listing["articles"]]
    return {**listing, "articles": articles}


# ------------------------------------------------------------------ help pages
def test_help_pages_render_without_script_and_escape(desk: Desk) -> None:
    index = desk.http.get("/help/", headers={"Accept-Language": "fr-CH, de;q=0.5"})
    assert index.status_code == 200 and '<html lang="fr">' in index.text
    assert "L&#x27;imprimante n&#x27;imprime pas" in index.text or "L'imprimante" in index.text
    assert "script-src 'none'" in index.headers["content-security-policy"]
    de = desk.http.get("/help/de/")
    assert '<html lang="de">' in de.text and "<h1>Hilfe</h1>" in de.text
    assert 'role="search"' in de.text and "<main" in de.text and 'aria-label="Sprachen"' in de.text
    assert "Drucker Preisliste intern" not in de.text and "Drucker Entwurf" not in de.text
    assert (
        "Drucker &lt;script&gt;alert(&quot;t&quot;)&lt;/script&gt; &amp; &quot;Co&quot;" in de.text
    )
    article = desk.http.get("/help/de/evil")
    assert article.status_code == 200
    for page in (index.text, de.text, article.text):
        assert "<script" not in page.lower() and "onerror" not in page
    assert article.text.count("<h1>") == 1
    printer = desk.http.get("/help/de/drucker-druckt-nicht").text
    assert 'href="/help/fr/l-imprimante-n-imprime-pas" lang="fr" hreflang="fr"' in printer
    results = desk.http.get("/help/de/", params={"q": "Druckers"})
    assert "Ergebnisse für" in results.text and "/help/de/drucker-druckt-nicht" in results.text
    sneaky = desk.http.get("/help/de/", params={"q": '"><script>x</script>'})
    assert sneaky.status_code == 200 and "<script>x" not in sneaky.text
    for url in (f"/help/de/{desk.internal['slug']}", f"/help/de/{desk.draft['slug']}",
                "/help/de/nothing", "/help/xx/", "/help/xx/evil", "/help/xx"):  # fmt: skip
        page = desk.http.get(url)
        assert page.status_code == 404 and "<h1>" in page.text, url
    redirect = desk.http.get("/help/de")
    assert redirect.status_code == 308 and redirect.headers["location"] == "/help/de/"
    assert desk.http.get("/help/it/").text.count("<h1>Aiuto</h1>") == 1


@pytest.fixture
def limited(make_server: Any) -> Iterator[Desk]:
    server: ServerProcess = make_server(
        env={
            "CHATSERVER_QUOTA_KB_SEARCHES_PER_ADDRESS": "3",
            "CHATSERVER_QUOTA_KB_FEEDBACK_PER_ADDRESS": "2",
            "CHATSERVER_QUOTA_KB_WINDOW_SECONDS": "600",
        }
    )
    server.start()
    for name, role in (("sam", "supervisor"), ("ada", "admin"), ("anna", "operator")):
        server.add_operator(name, name=name.title(), role=role)
    made = Desk(server)
    made.printer = made.create(title="Drucker druckt nicht")
    yield made
    made.http.close()


def test_visitors_searches_and_answers_are_rate_limited(limited: Desk) -> None:
    desk = limited
    search = "/api/kb/search"
    # Refused input counts nothing.
    error(desk.get(search, params={"q": "x" * 201}), 400)
    for _ in range(3):
        assert desk.get(search, params={"q": "Drucker"}).status_code == 200
    refused = desk.get(search, params={"q": "Drucker"})
    assert "too many searches" in error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 600
    assert refused.json()["error"] == "rate_limited"
    # Operators are not counted.
    for _ in range(4):
        assert desk.get(search, "anna", params={"q": "Drucker"}).status_code == 200
    # The help pages' search counts with the API's: a page that says so, in its language.
    page = desk.get("/help/fr/", params={"q": "imprimante"})
    assert page.status_code == 429 and int(page.headers["Retry-After"]) >= 1
    assert "Trop de recherches" in page.text and 'name="q"' in page.text
    assert desk.get("/help/fr/").status_code == 200  # the listing is no search

    url = "/api/kb/articles/de/drucker-druckt-nicht/feedback"
    session, _ = visitor_session(desk.server)
    error(desk.post(url, json={"helped": "maybe"}), 400)
    assert desk.post(url, json={"helped": True, "session": session}).status_code == 204
    assert desk.post(url, json={"helped": False}).status_code == 204
    refused = desk.post(url, json={"helped": True})
    assert "too many answers" in error(refused, 429) and int(refused.headers["Retry-After"]) >= 1
    got = desk.get(f"/api/kb/manage/articles/{desk.printer['id']}", "sam").json()
    assert (got["helped"], got["not_helped"]) == (1, 1)  # the refused one counted nothing
