"""Checks of operator account values, shared by the CLI and the HTTP API (pure).

Every function returns the cleaned value or raises ``ValueError`` whose message names
the field and says what is allowed; callers change nothing when one is raised.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from chatserver.types import Role

MIN_PASSWORD = 8
MAX_PASSWORD = 1000
MAX_CAPACITY = 100
_DEPARTMENT = re.compile(r"[a-z0-9][a-z0-9_-]{0,49}")
_USERNAME = re.compile(r"[^\s\x00-\x1f\x7f]{1,100}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# What an admin may change on an account (``set`` / PATCH), each with its check.
CHANGEABLE = ("name", "role", "departments", "levels", "capacity")


def clean_username(value: Any) -> str:
    if not isinstance(value, str) or not _USERNAME.fullmatch(value):
        raise ValueError("username: 1-100 characters, no spaces or control characters")
    return value


def clean_name(value: Any) -> str:
    if not isinstance(value, str) or _CONTROL.search(value) or not 0 < len(value.strip()) <= 100:
        raise ValueError("name: 1-100 characters, no control characters")
    return value.strip()


def clean_role(value: Any) -> str:
    roles = [r.value for r in Role]
    if value not in roles:
        raise ValueError(f"role: one of {', '.join(roles)}")
    return str(value)


def clean_departments(value: Any) -> tuple[str, ...]:
    """A list of department names (or one comma-separated string); empty: every one."""
    items: Iterable[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise ValueError("departments: a list of names")
    out = set()
    for item in items:
        if not isinstance(item, str):
            raise ValueError("departments: a list of names")
        name = item.strip().lower()
        if not name:
            continue
        if not _DEPARTMENT.fullmatch(name):
            raise ValueError(
                f"departments: {item[:60]!r} is not a name (letters, digits, '-', '_', up to 50)"
            )
        out.add(name)
    return tuple(sorted(out))


def clean_levels(value: Any) -> tuple[int, ...]:
    """Support levels served: a non-empty list of 1, 2, 3 (or a string "1,2")."""
    items: Any = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError("levels: a non-empty list of 1, 2 or 3")
    out = set()
    for item in items:
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item.strip())
        if isinstance(item, bool) or item not in (1, 2, 3):
            raise ValueError("levels: a non-empty list of 1, 2 or 3")
        out.add(int(item))
    return tuple(sorted(out))


def clean_capacity(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CAPACITY:
        raise ValueError(f"capacity: a whole number of chats from 1 to {MAX_CAPACITY}")
    return value


def clean_password(value: Any) -> str:
    if not isinstance(value, str) or not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise ValueError(f"password: {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return value


_CHECKS = {
    "name": clean_name,
    "role": clean_role,
    "departments": clean_departments,
    "levels": clean_levels,
    "capacity": clean_capacity,
}


def clean_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The account changes in ``body`` (keys of :data:`CHANGEABLE`), all checked;
    ``ValueError`` for an unknown key, a bad value, or no change at all."""
    unknown = sorted(set(body) - set(CHANGEABLE))
    if unknown:
        raise ValueError(
            f"cannot change {', '.join(unknown)} (changeable: {', '.join(CHANGEABLE)})"
        )
    if not body:
        raise ValueError(f"nothing to change (give one of {', '.join(CHANGEABLE)})")
    return {key: _CHECKS[key](value) for key, value in body.items()}
