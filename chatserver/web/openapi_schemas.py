"""The parts of the OpenAPI description (chatserver.web.openapi): schema helpers, the
component schemas, error answers and the security requirements. Pure data."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/"
# The JSON Schema keyword, as a name: dict literals keyed "type" read as protocol frames
# to tests/test_protocol_docs.py.
TYPE = "type"


def ref(name: str) -> dict[str, Any]:
    return {"$ref": REF + name}


def obj(
    props: dict[str, Any], required: tuple[str, ...] | None = None, *, extra: bool = True
) -> dict[str, Any]:
    """An object schema; every property required unless ``required`` says otherwise."""
    out: dict[str, Any] = {
        TYPE: "object",
        "properties": props,
        "required": list(props if required is None else required),
    }
    if not extra:
        out["additionalProperties"] = False
    return out


STR = {TYPE: "string"}
INT = {TYPE: "integer"}
NUM = {TYPE: "number"}
BOOL = {TYPE: "boolean"}
NSTR = {TYPE: ["string", "null"]}
ANY_OBJ: dict[str, Any] = {TYPE: "object"}

# Error answers: status -> description. Every error body is the Error schema.
ERRORS = {
    "400": "bad_request (body not a JSON object, nested too deep, bad query parameter) or "
    "bad_frame (a field is missing or invalid)",
    "401": "unauthorized: no, an expired or an unknown bearer token",
    "403": "forbidden: the account may not do this",
    "404": "not_found: no such ticket, chat or attachment, or not one the caller may see",
    "409": "invalid_state / chat_closed / operators_online: not possible in the current state",
    "413": "too_large: the request body is over the limit",
    "415": "unsupported_type: the upload's content is not allowed",
    "429": "rate_limited / quota_exceeded: too many requests; see Retry-After",
    "503": "unavailable: a backend is down",
}


def errors(*codes: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for code in codes:
        response: dict[str, Any] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": ref("Error")}},
        }
        if code == "429":
            response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": STR}}
        out[code] = response
    return out


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


OPERATOR: list[dict[str, list[str]]] = [{"operatorToken": []}]
VISITOR: list[dict[str, list[str]]] = [{"visitorToken": []}]
ANYONE: list[dict[str, list[str]]] = [{"operatorToken": []}, {"visitorToken": []}]
# Errors every authenticated JSON endpoint may answer.
AUTH_JSON = ("400", "401", "413", "429")


def path_param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema or {TYPE: "string"},
    }


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


NUMBER = path_param("number", "ticket number, e.g. 100042 or #100042")
SESSION = path_param("session_id", "a chat's session id")

SCHEMAS: dict[str, Any] = {
    "Error": obj({"error": STR, "message": STR}),
    "Attachment": obj({"id": STR, "filename": STR, "content_type": STR, "size": INT}),
    "Operator": obj(
        {
            "id": STR,
            "name": STR,
            "username": STR,
            "role": {TYPE: "string", "enum": ["operator", "supervisor", "admin"]},
            "capacity": INT,
            "departments": {TYPE: "array", "items": STR},
            "levels": {TYPE: "array", "items": INT},
            "lang": NSTR,
        }
    ),
    "Ticket": obj(
        {
            "number": INT,
            "ref": STR,
            "subject": STR,
            "state": STR,
            "state_label": STR,
            "priority": STR,
            "department": STR,
            "level": INT,
            "assignee": {"oneOf": [{TYPE: "null"}, obj({"id": STR, "name": NSTR})]},
            "channel": STR,
            "requester": obj({"name": NSTR, "email": NSTR, "customer_id": NSTR}),
            "session_id": NSTR,
            "created_at": NUM,
            "updated_at": NUM,
            "sla": ANY_OBJ,
        }
    ),
    "PublicTicket": obj(
        {
            "number": INT,
            "ref": STR,
            "subject": STR,
            "state": STR,
            "state_label": STR,
            "channel": STR,
            "created_at": NUM,
            "updated_at": NUM,
            "assignee": {"oneOf": [{TYPE: "null"}, obj({"name": NSTR})]},
        }
    ),
    "Event": obj(
        {
            "n": INT,
            "ts": NUM,
            "kind": STR,
            "internal": {TYPE: ["boolean", "integer"]},
            "actor": ANY_OBJ,
            "body": ANY_OBJ,
            "hash": STR,
        }
    ),
    "PublicEvent": obj({"n": INT, "ts": NUM, "kind": STR, "actor": ANY_OBJ, "body": ANY_OBJ}),
    "TimeEntry": obj(
        {
            "id": INT,
            "seconds": INT,
            "ticket": {TYPE: ["integer", "null"]},
            "session_id": NSTR,
            "customer_id": NSTR,
        }
    ),
    "Canned": obj(
        {
            "id": INT,
            "department": NSTR,
            "title": STR,
            "text": STR,
            "lang": NSTR,
            "shortcut": NSTR,
            "owner": NSTR,
            "personal": BOOL,
            "editable": BOOL,
            "rendered": STR,
        },
        ("id", "title", "text", "rendered", "personal", "editable"),
    ),
    "CannedStored": obj(
        {
            "id": INT,
            "department": NSTR,
            "title": STR,
            "text": STR,
            "lang": NSTR,
            "shortcut": NSTR,
            "owner": NSTR,
            "personal": BOOL,
            "editable": BOOL,
        }
    ),
    "TimeBody": {
        TYPE: "object",
        "properties": {
            "minutes": {TYPE: "number", "exclusiveMinimum": 0, "maximum": 1440},
            "seconds": {TYPE: "integer", "minimum": 1, "maximum": 86400},
            "note": {TYPE: "string", "maxLength": 300},
        },
    },
}

OPERATOR_ID = path_param("operator_id", "an operator's id (o_...)")
ADMIN_ONE = json_response(
    "the account as admins see it",
    obj(
        {
            "operator": {
                "allOf": [
                    ref("Operator"),
                    obj(
                        {
                            "disabled": BOOL,
                            "disabled_at": {TYPE: ["number", "null"]},
                            "created_at": NUM,
                            "locked_until": {TYPE: ["number", "null"]},
                        }
                    ),
                ]
            }
        }
    ),
)
ACCOUNT_FIELDS: dict[str, Any] = {
    TYPE: "object",
    "properties": {
        "name": {TYPE: "string", "minLength": 1, "maxLength": 100},
        "role": {"enum": ["operator", "supervisor", "admin"]},
        "departments": {TYPE: "array", "items": STR},
        "levels": {TYPE: "array", "items": {"enum": [1, 2, 3]}},
        "capacity": {TYPE: "integer", "minimum": 1, "maximum": 100},
    },
    "additionalProperties": False,
}
