"""The knowledge base's part of the OpenAPI description (chatserver.web.openapi): the
paths of :mod:`chatserver.web.kb` and :mod:`chatserver.web.help_pages`, and their
schemas. Pure data."""

from __future__ import annotations

from typing import Any

from chatserver.i18n.languages import LANGUAGES
from chatserver.kb.model import MAX_BODY, MAX_QUERY, MAX_TAG, MAX_TAGS, MAX_TITLE
from chatserver.web.openapi_schemas import (
    BOOL,
    INT,
    NSTR,
    NUM,
    OPERATOR,
    STR,
    TYPE,
    errors,
    json_body,
    json_response,
    obj,
    path_param,
    query,
    ref,
)

__all__ = ["KB_PATHS", "KB_SCHEMAS"]

_LANG = {TYPE: "string", "enum": list(LANGUAGES)}
_SOURCE = {TYPE: "string", "enum": ["widget", "console", "help"]}
_VISIBILITY = {TYPE: "string", "enum": ["public", "agents"]}
_STATUS = {TYPE: "string", "enum": ["draft", "published"]}
_TAGS = {TYPE: "array", "items": {TYPE: "string", "maxLength": MAX_TAG}, "maxItems": MAX_TAGS}
# Visitors without a token; operators with theirs (agents-only articles too).
_VISITOR_OR_OPERATOR: list[dict[str, list[str]]] = [{}, {"operatorToken": []}]
_ARTICLE_ID = path_param("article_id", "an article's id", {TYPE: "integer", "minimum": 1})
_LANG_PARAM = path_param(
    "lang", "the article's language: " + ", ".join(LANGUAGES), {TYPE: "string", "maxLength": 8}
)
_SLUG = path_param(
    "slug", "the article's slug, e.g. printer-does-not-print", {TYPE: "string", "maxLength": 200}
)
_HTML = {"description": "HTML", "content": {"text/html": {}}}

KB_SCHEMAS: dict[str, Any] = {
    "KbResult": obj(
        {
            "id": INT,
            "slug": STR,
            "title": STR,
            "snippet": STR,
            "lang": STR,
            "url": NSTR,
            "api_url": STR,
            "department": NSTR,
            "visibility": _VISIBILITY,
        },
        ("slug", "title", "snippet", "lang", "url"),
    ),
    "KbArticle": obj(
        {
            "id": INT,
            "slug": STR,
            "title": STR,
            "lang": STR,
            "html": STR,
            "url": NSTR,
            "api_url": STR,
            "department": NSTR,
            "tags": {TYPE: "array", "items": STR},
            "visibility": _VISIBILITY,
            "updated": NUM,
            "translations": {
                TYPE: "array",
                "items": obj({"lang": STR, "slug": STR, "title": STR, "url": NSTR}),
            },
        }
    ),
    "KbManagedSummary": obj(
        {
            "id": INT,
            "group": INT,
            "lang": STR,
            "slug": STR,
            "title": STR,
            "department": NSTR,
            "tags": {TYPE: "array", "items": STR},
            "visibility": _VISIBILITY,
            "status": _STATUS,
            "created": NUM,
            "updated": NUM,
            "updated_by": STR,
            "revision": INT,
            "views": INT,
            "helped": INT,
            "not_helped": INT,
            "url": NSTR,
        }
    ),
    "KbManaged": {
        "allOf": [
            ref("KbManagedSummary"),
            obj(
                {
                    "body": STR,
                    "html": STR,
                    "translations": {
                        TYPE: "array",
                        "items": obj(
                            {"id": INT, "lang": STR, "slug": STR, "title": STR, "status": _STATUS}
                        ),
                    },
                }
            ),
        ]
    },
    "KbRevision": obj(
        {
            "n": INT,
            "at": NUM,
            "by": obj({"id": STR, "name": STR}),
            "action": {
                TYPE: "string",
                "enum": ["create", "edit", "publish", "unpublish", "import"],
            },
            "title": STR,
            "body": STR,
            "lang": STR,
            "slug": STR,
            "department": NSTR,
            "tags": {TYPE: "array", "items": STR},
            "visibility": _VISIBILITY,
            "status": _STATUS,
        }
    ),
}

_FIELDS = {
    "title": {TYPE: "string", "minLength": 1, "maxLength": MAX_TITLE},
    "body": {TYPE: "string", "maxLength": MAX_BODY},
    "lang": _LANG,
    "slug": {TYPE: ["string", "null"], "pattern": "^[a-z0-9]+(-[a-z0-9]+)*$", "maxLength": 80},
    "department": {TYPE: ["string", "null"], "maxLength": 64},
    "tags": _TAGS,
    "visibility": _VISIBILITY,
    "status": _STATUS,
    "translation_of": {TYPE: ["integer", "null"], "minimum": 1},
}
_CREATE = obj(_FIELDS, ("title", "lang"), extra=False)
_EDIT = obj({k: v for k, v in _FIELDS.items() if k != "lang"} | {"revision": INT}, (), extra=False)
_MANAGE_ERRORS = ("400", "401", "403", "404", "413")

KB_PATHS: dict[str, Any] = {
    "/api/kb/search": {
        "get": {
            "summary": "Knowledge base articles matching what is typed, best first "
            "(visitors: public ones; operators: agents-only ones too)",
            "security": _VISITOR_OR_OPERATOR,
            "parameters": [
                {
                    **query(
                        "q",
                        "the words typed so far (the last one also as a prefix)",
                        {TYPE: "string", "minLength": 1, "maxLength": MAX_QUERY},
                    ),
                    "required": True,
                },
                query("lang", "only articles of this language (else every language)", _LANG),
                query(
                    "department",
                    "this department's articles and those of none",
                    {TYPE: "string", "maxLength": 64},
                ),
                query(
                    "limit",
                    "at most this many results (default 3)",
                    {TYPE: "integer", "minimum": 1, "maximum": 10},
                ),
                query(
                    "source",
                    "who asks: widget (counted as suggestions shown), console, help",
                    _SOURCE,
                ),
            ],
            "responses": {
                "200": json_response(
                    "results",
                    obj({"results": {TYPE: "array", "items": ref("KbResult")}}),
                ),
                **errors("400", "401", "429"),
            },
        }
    },
    "/api/kb/articles/{lang}/{slug}": {
        "get": {
            "summary": "A published article as safe HTML, with its translations (counts a view)",
            "security": _VISITOR_OR_OPERATOR,
            "parameters": [_LANG_PARAM, _SLUG, query("source", "who asks", _SOURCE)],
            "responses": {
                "200": json_response("the article", ref("KbArticle")),
                **errors("400", "401", "404"),
            },
        }
    },
    "/api/kb/articles/{lang}/{slug}/feedback": {
        "post": {
            "summary": "Did the article answer the question? (helped from the widget with "
            "a visitor session, its id or its token: a deflected chat; once per session "
            "and article; an unknown session: 404)",
            "security": _VISITOR_OR_OPERATOR,
            "parameters": [_LANG_PARAM, _SLUG],
            "requestBody": json_body(
                obj(
                    {
                        "helped": BOOL,
                        "session": {
                            TYPE: "string",
                            "pattern": "^[A-Za-z0-9_-]{1,64}$",
                            "maxLength": 64,
                        },
                        "source": _SOURCE,
                    },
                    ("helped",),
                )
            ),
            "responses": {
                "204": {"description": "counted (or already counted for this session)"},
                **errors("400", "401", "404", "413", "429"),
            },
        }
    },
    "/api/kb/manage/articles": {
        "get": {
            "summary": "Articles for authoring, drafts too, with views and helped counts "
            "(supervisors and admins)",
            "security": OPERATOR,
            "parameters": [
                query(
                    "q",
                    "full-text search",
                    {TYPE: "string", "minLength": 1, "maxLength": MAX_QUERY},
                ),
                query("lang", "only this language", _LANG),
                query("status", "only drafts or only published ones", _STATUS),
                query(
                    "limit",
                    "page size (default 50)",
                    {TYPE: "integer", "minimum": 1, "maximum": 200},
                ),
                query(
                    "offset", "page start", {TYPE: "integer", "minimum": 0, "maximum": 1_000_000}
                ),
            ],
            "responses": {
                "200": json_response(
                    "articles",
                    obj(
                        {
                            "articles": {TYPE: "array", "items": ref("KbManagedSummary")},
                            "total": INT,
                        }
                    ),
                ),
                **errors("400", "401", "403"),
            },
        },
        "post": {
            "summary": "Create an article (supervisors and admins)",
            "security": OPERATOR,
            "requestBody": json_body(_CREATE),
            "responses": {
                "201": json_response("created", ref("KbManaged")),
                **errors(*_MANAGE_ERRORS, "409"),
            },
        },
    },
    "/api/kb/manage/articles/{article_id}": {
        "get": {
            "summary": "An article for editing (supervisors and admins)",
            "security": OPERATOR,
            "parameters": [_ARTICLE_ID],
            "responses": {
                "200": json_response("the article", ref("KbManaged")),
                **errors("400", "401", "403", "404"),
            },
        },
        "put": {
            "summary": "Change an article's given fields (a revision; supervisors and admins)",
            "security": OPERATOR,
            "parameters": [_ARTICLE_ID],
            "requestBody": json_body(_EDIT),
            "responses": {
                "200": json_response("the article", ref("KbManaged")),
                **errors(*_MANAGE_ERRORS, "409"),
            },
        },
    },
    **{
        f"/api/kb/manage/articles/{{article_id}}/{action}": {
            "post": {
                "summary": f"{action.capitalize()} an article (a revision; supervisors and admins)",
                "security": OPERATOR,
                "parameters": [_ARTICLE_ID],
                "responses": {
                    "200": json_response("the article", ref("KbManaged")),
                    **errors("400", "401", "403", "404", "409"),
                },
            }
        }
        for action in ("publish", "unpublish")
    },
    "/api/kb/manage/articles/{article_id}/revisions": {
        "get": {
            "summary": "Every revision of an article, newest first (supervisors and admins)",
            "security": OPERATOR,
            "parameters": [_ARTICLE_ID],
            "responses": {
                "200": json_response(
                    "revisions", obj({"revisions": {TYPE: "array", "items": ref("KbRevision")}})
                ),
                **errors("400", "401", "403", "404"),
            },
        }
    },
    "/api/kb/manage/preview": {
        "post": {
            "summary": "Markdown rendered as the article would show it (supervisors and admins)",
            "security": OPERATOR,
            "requestBody": json_body(obj({"body": {TYPE: "string", "maxLength": MAX_BODY}})),
            "responses": {
                "200": json_response("the HTML", obj({"html": STR})),
                **errors("400", "401", "403", "413"),
            },
        }
    },
    "/help": {
        "get": {
            "summary": "Redirects to /help/",
            "responses": {"308": {"description": "to /help/"}},
        }
    },
    "/help/": {
        "get": {
            "summary": "The public help pages: languages, a search form and the articles",
            "responses": {"200": _HTML},
        }
    },
    "/help/{lang}": {
        "get": {
            "summary": "Redirects to /help/<lang>/",
            "parameters": [_LANG_PARAM],
            "responses": {"308": {"description": "to /help/<lang>/"}, "404": _HTML},
        }
    },
    "/help/{lang}/": {
        "get": {
            "summary": "A language's public articles, or the results of ?q=",
            "parameters": [
                _LANG_PARAM,
                query("q", "words to search for", {TYPE: "string", "maxLength": MAX_QUERY}),
            ],
            "responses": {
                "200": _HTML,
                "404": _HTML,
                "429": {**_HTML, "description": "too many searches (Retry-After)"},
            },
        }
    },
    "/help/{lang}/{slug}": {
        "get": {
            "summary": "A public article with links to its translations",
            "parameters": [_LANG_PARAM, _SLUG],
            "responses": {"200": _HTML, "404": _HTML},
        }
    },
}
