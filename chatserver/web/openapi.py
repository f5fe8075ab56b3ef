"""The OpenAPI 3.1 description of the HTTP API, served at ``GET /api/openapi.json``.

Hand-written, and kept true by tests: ``tests/web/test_openapi.py`` compares its paths and
methods with the app's routes (every HTTP route documented, nothing documented that is not
served) and runs schemathesis against a real server (no 5xx; every status, content type
and body as described here). The WebSocket endpoints (``/ws/visitor``, ``/ws/operator``)
are described in docs/protocol.md; the console's static files (``/console/``) are not API.
"""

from __future__ import annotations

from typing import Any

from chatserver.i18n.languages import LANGUAGES
from chatserver.web.openapi_kb import KB_PATHS, KB_SCHEMAS
from chatserver.web.openapi_schemas import (
    ACCOUNT_FIELDS,
    ADMIN_ONE,
    ANY_OBJ,
    ANYONE,
    AUTH_JSON,
    BOOL,
    INT,
    NSTR,
    NUM,
    NUMBER,
    OPERATOR,
    OPERATOR_ID,
    SCHEMAS,
    SESSION,
    STR,
    TYPE,
    VISITOR,
    errors,
    json_body,
    json_response,
    obj,
    path_param,
    query,
    ref,
)

__all__ = ["SPEC", "spec"]

_CANNED_EDIT_SCHEMA = obj(
    {
        "title": {TYPE: "string", "minLength": 1, "maxLength": 100},
        "text": {TYPE: "string", "minLength": 1, "maxLength": 4000},
        "shortcut": {TYPE: ["string", "null"], "pattern": "^/?[A-Za-z0-9_-]{1,30}$"},
        "lang": {TYPE: ["string", "null"], "enum": [*LANGUAGES, None]},
        "department": {TYPE: ["string", "null"], "maxLength": 40},
    },
    (),
)
_CANNED_FIELDS_SCHEMA = {
    **_CANNED_EDIT_SCHEMA,
    "properties": {**_CANNED_EDIT_SCHEMA["properties"], "personal": BOOL},
    "required": ["title", "text"],
}
_CANNED_ID = path_param("canned_id", "a canned response's id")

_TICKET_WITH_EVENTS = obj(
    {
        "ticket": ref("Ticket"),
        "events": {TYPE: "array", "items": ref("Event")},
        "attachments": {TYPE: "array", "items": ref("Attachment")},
    }
)

_PATHS: dict[str, Any] = {
    "/": {
        "get": {
            "summary": "The demo shop page with the chat widget",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/widget.js": {
        "get": {
            "summary": "The widget, minified, with the default language's catalog inlined",
            "parameters": [
                query("v", "the widget's version (cached for a year when it matches)", STR),
            ],
            "responses": {
                "200": {"description": "JavaScript", "content": {"application/javascript": {}}},
                "304": {"description": "not modified (If-None-Match)"},
            },
        }
    },
    **{
        icon: {
            "get": {
                "summary": "The site icon (SVG)",
                "responses": {
                    "200": {"description": "SVG image", "content": {"image/svg+xml": {}}},
                    "304": {"description": "not modified (If-None-Match)"},
                },
            }
        }
        for icon in ("/favicon.ico", "/favicon.svg")
    },
    "/widget/i18n/{name}": {
        "get": {
            "summary": "A widget catalog, e.g. de.json",
            "parameters": [
                path_param("name", "<lang>.json"),
                query("v", "the catalog's version (cached for a year when it matches)", STR),
            ],
            "responses": {
                "200": json_response("the catalog", ANY_OBJ),
                "304": {"description": "not modified (If-None-Match)"},
                **errors("404"),
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "responses": {
                "200": json_response("alive", ANY_OBJ),
                "503": json_response("the store stopped", ANY_OBJ),
            },
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: the store and Redis answer",
            "responses": {
                "200": json_response("ready", ANY_OBJ),
                "503": json_response("not ready", ANY_OBJ),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "text exposition", "content": {"text/plain": {}}}},
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This description",
            "responses": {"200": json_response("OpenAPI 3.1", ANY_OBJ)},
        }
    },
    "/api/login": {
        "post": {
            "summary": "An operator logs in",
            "requestBody": json_body(
                obj(
                    {
                        "username": {TYPE: "string", "minLength": 1, "maxLength": 100},
                        "password": {TYPE: "string", "minLength": 1, "maxLength": 1000},
                    }
                )
            ),
            "responses": {
                "200": json_response(
                    "a bearer token", obj({"token": STR, "operator": ref("Operator")})
                ),
                **errors("400", "401", "403", "413", "429"),
            },
        }
    },
    "/api/logout": {
        "post": {
            "summary": "Log out: revokes every token of the caller's account",
            "security": OPERATOR,
            "responses": {"200": json_response("done", obj({"ok": BOOL})), **errors("401")},
        }
    },
    "/api/operators/{operator_id}": {
        "get": {
            "summary": "An account (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "responses": {"200": ADMIN_ONE, **errors("401", "403", "404")},
        },
        "patch": {
            "summary": "Change name, role, departments, levels or capacity (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "requestBody": json_body(ACCOUNT_FIELDS),
            "responses": {"200": ADMIN_ONE, **errors(*AUTH_JSON, "403", "404", "409")},
        },
        "delete": {
            "summary": "Remove an account (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "responses": {"204": {"description": "removed"}, **errors("401", "403", "404", "409")},
        },
    },
    "/api/operators/{operator_id}/disable": {
        "post": {
            "summary": "Disable an account: its consoles are closed (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "responses": {"200": ADMIN_ONE, **errors("401", "403", "404", "409")},
        }
    },
    "/api/operators/{operator_id}/enable": {
        "post": {
            "summary": "Enable a disabled account (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "responses": {"200": ADMIN_ONE, **errors("401", "403", "404", "409")},
        }
    },
    "/api/operators/{operator_id}/password": {
        "post": {
            "summary": "Set an account's password (admins)",
            "security": OPERATOR,
            "parameters": [OPERATOR_ID],
            "requestBody": json_body(
                obj({"password": {TYPE: "string", "minLength": 8, "maxLength": 1000}})
            ),
            "responses": {"200": ADMIN_ONE, **errors(*AUTH_JSON, "403", "404", "409")},
        }
    },
    "/api/me/preferences": {
        "put": {
            "summary": "The operator's own console language",
            "security": OPERATOR,
            "requestBody": json_body(obj({"lang": {"enum": ["de", "fr", "it", "en", None]}})),
            "responses": {
                "200": json_response("stored", obj({"lang": NSTR})),
                **errors(*AUTH_JSON),
            },
        }
    },
    "/api/attachments": {
        "post": {
            "summary": "Upload a file into a chat or a ticket",
            "security": ANYONE,
            "requestBody": {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            TYPE: "object",
                            "properties": {
                                "file": {TYPE: "string", "format": "binary"},
                                "session_id": STR,
                                "ticket": STR,
                            },
                            "required": ["file"],
                        }
                    }
                },
            },
            "responses": {
                "201": json_response(
                    "stored",
                    obj(
                        {
                            "id": STR,
                            "filename": STR,
                            "content_type": STR,
                            "size": INT,
                            "sha256": STR,
                        }
                    ),
                ),
                **errors("400", "401", "403", "404", "409", "413", "415", "429"),
            },
        }
    },
    "/api/attachments/{attachment_id}": {
        "get": {
            "summary": "Download a file",
            "security": ANYONE,
            "parameters": [
                path_param("attachment_id", "the attachment's id"),
                query("inline", "1: images inline (previews)", {TYPE: "string"}),
            ],
            "responses": {
                "200": {"description": "the file", "content": {"*/*": {}}},
                **errors("400", "401", "404"),
            },
        }
    },
    "/api/sessions/{session_id}/escalate": {
        "post": {
            "summary": "Turn a chat into a ticket",
            "security": OPERATOR,
            "parameters": [SESSION],
            "requestBody": json_body(
                obj(
                    {
                        "subject": {TYPE: "string", "minLength": 1, "maxLength": 200},
                        "department": STR,
                        "priority": STR,
                        "level": {TYPE: "integer", "minimum": 1, "maximum": 3},
                        "reason": {TYPE: "string", "maxLength": 500},
                    },
                    ("subject",),
                )
            ),
            "responses": {
                "201": json_response("the ticket", obj({"ticket": ref("Ticket")})),
                **errors(*AUTH_JSON, "403", "404", "409"),
            },
        }
    },
    "/api/tickets": {
        "get": {
            "summary": "Search tickets",
            "security": OPERATOR,
            "parameters": [
                query("state", "states, comma-separated", {TYPE: "string", "maxLength": 200}),
                query("department", "a department", {TYPE: "string", "maxLength": 200}),
                query("level", "support level", {TYPE: "integer", "minimum": 1, "maximum": 3}),
                query("assignee", "me, none or an operator id", {TYPE: "string", "maxLength": 200}),
                query("limit", "page size", {TYPE: "integer", "minimum": 1, "maximum": 200}),
                query(
                    "offset",
                    "rows to skip",
                    {TYPE: "integer", "minimum": 0, "maximum": 1_000_000_000},
                ),
            ],
            "responses": {
                "200": json_response(
                    "a page of tickets",
                    obj({"tickets": {TYPE: "array", "items": ref("Ticket")}, "total": INT}),
                ),
                **errors("400", "401"),
            },
        }
    },
    "/api/tickets/{number}": {
        "get": {
            "summary": "A ticket with its history and attachments",
            "security": OPERATOR,
            "parameters": [NUMBER],
            "responses": {
                "200": json_response("the ticket", _TICKET_WITH_EVENTS),
                **errors("400", "401", "404"),
            },
        }
    },
    "/api/tickets/{number}/replies": {
        "post": {
            "summary": "A public reply (mailed) or an internal note",
            "security": OPERATOR,
            "parameters": [NUMBER],
            "requestBody": json_body(
                obj(
                    {
                        "text": {TYPE: "string", "minLength": 1, "maxLength": 20000},
                        "internal": BOOL,
                        "attachments": {TYPE: "array", "items": STR},
                        "consult": STR,
                    },
                    ("text",),
                )
            ),
            "responses": {
                "201": json_response(
                    "stored", obj({"ticket": ref("Ticket"), "event": ref("Event")})
                ),
                **errors(*AUTH_JSON, "403", "404", "409"),
            },
        }
    },
    "/api/tickets/{number}/changes": {
        "post": {
            "summary": "Change state, priority, level, department or assignee",
            "security": OPERATOR,
            "parameters": [NUMBER],
            "requestBody": json_body(
                {
                    TYPE: "object",
                    "properties": {
                        "state": STR,
                        "priority": STR,
                        "level": INT,
                        "department": STR,
                        "assignee": NSTR,
                        "reason": STR,
                    },
                }
            ),
            "responses": {
                "200": json_response(
                    "changed",
                    obj(
                        {
                            "ticket": ref("Ticket"),
                            "events": {TYPE: "array", "items": ref("Event")},
                        }
                    ),
                ),
                **errors(*AUTH_JSON, "403", "404", "409"),
            },
        }
    },
    "/api/tickets/{number}/time": {
        "post": {
            "summary": "Log worked time on a ticket",
            "security": OPERATOR,
            "parameters": [NUMBER],
            "requestBody": json_body(ref("TimeBody")),
            "responses": {
                "201": json_response("logged", ref("TimeEntry")),
                **errors(*AUTH_JSON, "403", "404", "409"),
            },
        }
    },
    "/api/mail/review": {
        "get": {
            "summary": "Inbound mail held for review (supervisors and admins)",
            "security": OPERATOR,
            "responses": {
                "200": json_response(
                    "held mails",
                    obj(
                        {
                            "mails": {
                                TYPE: "array",
                                "items": obj(
                                    {
                                        "id": INT,
                                        "received_at": NUM,
                                        "from": STR,
                                        "subject": NSTR,
                                        "ticket": {TYPE: ["integer", "null"]},
                                        "reason": STR,
                                    },
                                    ("id", "from", "reason"),
                                ),
                            }
                        }
                    ),
                ),
                **errors("401", "403"),
            },
        }
    },
    "/api/visitor/tickets": {
        "get": {
            "summary": "The visitor's tickets",
            "security": VISITOR,
            "responses": {
                "200": json_response(
                    "tickets", obj({"tickets": {TYPE: "array", "items": ref("PublicTicket")}})
                ),
                **errors("401"),
            },
        }
    },
    "/api/visitor/tickets/{number}": {
        "get": {
            "summary": "One of the visitor's tickets, public events only",
            "security": VISITOR,
            "parameters": [NUMBER],
            "responses": {
                "200": json_response(
                    "the ticket",
                    obj(
                        {
                            "ticket": ref("PublicTicket"),
                            "events": {TYPE: "array", "items": ref("PublicEvent")},
                            "attachments": {TYPE: "array", "items": ref("Attachment")},
                        }
                    ),
                ),
                **errors("401", "404"),
            },
        }
    },
    "/api/visitor/tickets/{number}/replies": {
        "post": {
            "summary": "The visitor replies on their ticket",
            "security": VISITOR,
            "parameters": [NUMBER],
            "requestBody": json_body(
                obj(
                    {
                        "text": {TYPE: "string", "minLength": 1, "maxLength": 20000},
                        "attachments": {TYPE: "array", "items": STR},
                    },
                    ("text",),
                )
            ),
            "responses": {
                "201": json_response(
                    "stored", obj({"ticket": ref("PublicTicket"), "event": ref("PublicEvent")})
                ),
                **errors(*AUTH_JSON, "404", "409"),
            },
        }
    },
    "/api/visitor/offline": {
        "post": {
            "summary": "The offline form: a ticket while no operator is online",
            "security": VISITOR,
            "requestBody": json_body(
                obj(
                    {
                        "name": {TYPE: "string", "maxLength": 100},
                        "email": {TYPE: "string", "format": "email"},
                        "subject": {TYPE: "string", "minLength": 1, "maxLength": 200},
                        "text": {TYPE: "string", "minLength": 1, "maxLength": 20000},
                        "attachments": {TYPE: "array", "items": STR},
                    },
                    ("email", "subject", "text"),
                )
            ),
            "responses": {
                "201": json_response("the ticket", obj({"ticket": ref("PublicTicket")})),
                **errors(*AUTH_JSON, "404", "409"),
            },
        }
    },
    "/api/visitor/transcript": {
        "post": {
            "summary": "Mail the visitor the chat's transcript",
            "security": VISITOR,
            "requestBody": json_body(
                {TYPE: "object", "properties": {"email": {TYPE: "string", "format": "email"}}}
            ),
            "responses": {
                "202": json_response("queued", obj({"queued": BOOL, "email": STR})),
                **errors(*AUTH_JSON),
            },
        }
    },
    "/api/visitor/chat-ticket": {
        "post": {
            "summary": "Leave a waiting chat as a ticket (the answer comes by e-mail)",
            "security": VISITOR,
            "requestBody": json_body(
                {
                    TYPE: "object",
                    "properties": {
                        "email": {TYPE: "string", "format": "email"},
                        "session_id": {TYPE: "string", "maxLength": 64},
                    },
                }
            ),
            "responses": {
                "201": json_response("the ticket", obj({"ticket": ref("PublicTicket")})),
                **errors(*AUTH_JSON, "404", "409"),
            },
        }
    },
    "/api/visitor/callback": {
        "post": {
            "summary": "Ask for a call back instead of a chat",
            "security": VISITOR,
            "requestBody": json_body(
                obj(
                    {
                        "phone": {TYPE: "string", "pattern": "^\\+?[0-9 ()./-]{6,30}$"},
                        "preferred_times": {TYPE: "string", "maxLength": 200},
                        "note": {TYPE: "string", "maxLength": 1000},
                    },
                    ("phone",),
                )
            ),
            "responses": {
                "201": json_response("queued", obj({"queued": BOOL, "phone": STR})),
                **errors(*AUTH_JSON, "403", "409", "503"),
            },
        }
    },
    "/api/sessions/{session_id}/time": {
        "post": {
            "summary": "Log worked time on a chat",
            "security": OPERATOR,
            "parameters": [SESSION],
            "requestBody": json_body(ref("TimeBody")),
            "responses": {
                "201": json_response("logged", ref("TimeEntry")),
                **errors(*AUTH_JSON, "403", "404", "409"),
            },
        }
    },
    "/api/sessions/{session_id}/context": {
        "get": {
            "summary": "What the operator should know about the visitor",
            "security": OPERATOR,
            "parameters": [SESSION],
            "responses": {
                "200": json_response(
                    "context",
                    obj(
                        {
                            "customer": {},
                            "customer_id": NSTR,
                            "plan": ANY_OBJ,
                            "past_chats": {TYPE: "array"},
                            "tickets": {TYPE: "array"},
                        },
                        ("plan", "past_chats", "tickets"),
                    ),
                ),
                **errors("400", "401", "404"),
            },
        }
    },
    "/api/operators": {
        "post": {
            "summary": "Create an account (admins)",
            "security": OPERATOR,
            "requestBody": json_body(
                {
                    **ACCOUNT_FIELDS,
                    "properties": {
                        "username": {TYPE: "string", "minLength": 1, "maxLength": 100},
                        "password": {TYPE: "string", "minLength": 8, "maxLength": 1000},
                        **ACCOUNT_FIELDS["properties"],
                    },
                    "required": ["username", "password"],
                }
            ),
            "responses": {"201": ADMIN_ONE, **errors(*AUTH_JSON, "403", "409")},
        },
        "get": {
            "summary": "Colleagues with live status and load",
            "security": OPERATOR,
            "responses": {
                "200": json_response(
                    "operators",
                    obj(
                        {
                            "operators": {
                                TYPE: "array",
                                "items": {
                                    "allOf": [
                                        ref("Operator"),
                                        obj({"status": STR, "load": INT}),
                                    ]
                                },
                            }
                        }
                    ),
                ),
                **errors("401"),
            },
        },
    },
    "/api/canned": {
        "get": {
            "summary": "Canned responses (the team's and the caller's own), filled in for a chat",
            "security": OPERATOR,
            "parameters": [
                query(
                    "department",
                    "only this department's (and general ones)",
                    {TYPE: "string", "maxLength": 64},
                ),
                query(
                    "session_id",
                    "fill placeholders from this chat",
                    {TYPE: "string", "maxLength": 64},
                ),
                query(
                    "lang",
                    "only this language's (and those for every language)",
                    {TYPE: "string", "maxLength": 8},
                ),
                query(
                    "q",
                    "only those whose title, shortcut or text contains this",
                    {TYPE: "string", "maxLength": 100},
                ),
            ],
            "responses": {
                "200": json_response(
                    "canned",
                    obj(
                        {"canned": {TYPE: "array", "items": ref("Canned")}, "lang": NSTR},
                        ("canned",),
                    ),
                ),
                **errors("400", "401", "404"),
            },
        },
        "post": {
            "summary": "Add a canned response: personal (anyone) or the team's "
            "(supervisors and admins)",
            "security": OPERATOR,
            "requestBody": json_body(_CANNED_FIELDS_SCHEMA),
            "responses": {
                "201": json_response("added", ref("CannedStored")),
                **errors(*AUTH_JSON, "403"),
            },
        },
    },
    "/api/canned/{canned_id}": {
        "patch": {
            "summary": "Change a canned response (own personal ones; the team's: "
            "supervisors and admins)",
            "security": OPERATOR,
            "parameters": [_CANNED_ID],
            "requestBody": json_body(_CANNED_EDIT_SCHEMA),
            "responses": {
                "200": json_response("changed", ref("CannedStored")),
                **errors(*AUTH_JSON, "403", "404"),
            },
        },
        "delete": {
            "summary": "Delete a canned response (the same rights as changing it)",
            "security": OPERATOR,
            "parameters": [_CANNED_ID],
            "responses": {"204": {"description": "deleted"}, **errors("401", "403", "404")},
        },
    },
}

SPEC: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "chatserver HTTP API",
        "version": "1",
        "description": "Attachments, tickets, time, canned responses and operations. "
        "Errors are {error, message} with the status of the error code (docs/http-api.md). "
        "The chat itself runs over WebSockets (/ws/visitor, /ws/operator; docs/protocol.md).",
    },
    "components": {
        "schemas": {**SCHEMAS, **KB_SCHEMAS},
        "securitySchemes": {
            "operatorToken": {
                TYPE: "http",
                "scheme": "bearer",
                "description": "a token from POST /api/login",
            },
            "visitorToken": {
                TYPE: "http",
                "scheme": "bearer",
                "description": "a visitor's session token (from the welcome frame)",
            },
        },
    },
    "paths": {**_PATHS, **KB_PATHS},  # the knowledge base's: chatserver.web.openapi_kb
}


def spec() -> dict[str, Any]:
    """The description as served (the same object every time; do not change it)."""
    return SPEC
