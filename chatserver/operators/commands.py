"""``chatserver operator disable|enable|remove|passwd|set NAME``: account lifecycle.

Each command works on the store's database while servers run: it changes the account in one
statement, and a change that revokes tokens (disable, remove, a new password or role)
adds 1 to ``token_version``. Running nodes see it within ``account_check_interval``
(:mod:`chatserver.chat.accounts`): they close that operator's consoles (4004) and
re-queue their chats. Every value is checked first; a bad one is reported on stderr with
exit status 2 and nothing changes; an unknown (or removed) operator exits with 1.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import Any

from chatserver.config import Settings
from chatserver.operators import auth, fields
from chatserver.store.database import Connection, connect
from chatserver.types import Role


def _refuse(message: str, status: int = 2) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def _find(conn: Connection, username: str) -> tuple[str, str, str | None] | None:
    """``(id, role, disabled_at)`` of the account, unless unknown or removed."""
    row = conn.execute(
        "SELECT id, role, disabled_at FROM operators WHERE username = ? AND removed_at IS NULL",
        (username,),
    ).fetchone()
    return None if row is None else (str(row[0]), str(row[1]), row[2])


def _update(
    data_dir: Path | None, username: str, sets: dict[str, Any], *, revoke: bool
) -> tuple[int, str | None]:
    """Apply ``sets`` to the account; ``(exit status, operator id)``."""
    settings = Settings.load(data_dir=data_dir)
    conn = connect(settings.database)
    try:
        found = _find(conn, username)
        if found is None:
            return _refuse(f"no operator {username!r}", 1), None
        assignments = [f"{column} = ?" for column in sets]
        if revoke:
            assignments.append("token_version = token_version + 1")
        conn.execute(
            f"UPDATE operators SET {', '.join(assignments)} WHERE id = ?",
            (*sets.values(), found[0]),
        )
        return 0, found[0]
    finally:
        conn.close()


def cmd_disable(args: argparse.Namespace) -> int:
    status, operator_id = _update(
        args.data_dir, args.username, {"disabled_at": time.time()}, revoke=True
    )
    if status == 0:
        print(f"disabled operator {args.username} ({operator_id}); their tokens are revoked")
    return status


def cmd_enable(args: argparse.Namespace) -> int:
    status, operator_id = _update(args.data_dir, args.username, {"disabled_at": None}, revoke=False)
    if status == 0:
        print(f"enabled operator {args.username} ({operator_id}); they may log in again")
    return status


def cmd_remove(args: argparse.Namespace) -> int:
    status, operator_id = _update(
        args.data_dir, args.username, {"removed_at": time.time()}, revoke=True
    )
    if status == 0:
        print(
            f"removed operator {args.username} ({operator_id});"
            " their name stays on past chats and tickets"
        )
    return status


def _read_password(args: argparse.Namespace) -> str | None:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"new password for {args.username}: ")
    second = getpass.getpass("again: ")
    if first != second:
        print("error: the passwords differ", file=sys.stderr)
        return None
    return first


def cmd_passwd(args: argparse.Namespace) -> int:
    password = _read_password(args)
    if password is None:
        return 2
    try:
        password = fields.clean_password(password)
    except ValueError as exc:
        return _refuse(str(exc))
    status, operator_id = _update(
        args.data_dir,
        args.username,
        {"password_hash": auth.hash_password(password)},
        revoke=True,
    )
    if status == 0:
        print(f"new password for {args.username} ({operator_id}); their old tokens are revoked")
    return status


def cmd_set(args: argparse.Namespace) -> int:
    given = {
        key: value
        for key, value in (
            ("name", args.name),
            ("role", args.role),
            ("departments", args.departments),
            ("levels", args.levels),
            ("capacity", args.new_capacity),
        )
        if value is not None
    }
    try:
        values = fields.clean_changes(given)
    except ValueError as exc:
        return _refuse(str(exc))
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        found = _find(conn, args.username)
    finally:
        conn.close()
    if found is None:
        return _refuse(f"no operator {args.username!r}", 1)
    sets = dict(values)
    if "departments" in sets:
        sets["departments"] = ",".join(sets["departments"])
    if "levels" in sets:
        sets["levels"] = ",".join(str(v) for v in sets["levels"])
    revoke = "role" in values and values["role"] != found[1]
    status, operator_id = _update(args.data_dir, args.username, sets, revoke=revoke)
    if status == 0:
        note = "; their tokens are revoked (new role)" if revoke else ""
        changed = ", ".join(sorted(values))
        print(f"changed operator {args.username} ({operator_id}): {changed}{note}")
    return status


def add_lifecycle_commands(op_sub: Any) -> None:
    """Register ``disable``, ``enable``, ``remove``, ``passwd`` and ``set``."""
    for name, func, text in (
        ("disable", cmd_disable, "refuse logins, revoke tokens, close consoles, re-queue chats"),
        ("enable", cmd_enable, "allow a disabled operator to log in again"),
        ("remove", cmd_remove, "remove the account (history keeps the name)"),
    ):
        cmd = op_sub.add_parser(name, help=text)
        cmd.add_argument("username")
        cmd.add_argument("--data-dir", type=Path)
        cmd.set_defaults(func=func)
    passwd = op_sub.add_parser("passwd", help="set a new password (revokes their tokens)")
    passwd.add_argument("username")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password from stdin's first line"
    )
    passwd.add_argument("--data-dir", type=Path)
    passwd.set_defaults(func=cmd_passwd)
    change = op_sub.add_parser("set", help="change an account (a new role revokes tokens)")
    change.add_argument("username")
    change.add_argument("--name", help="display name shown to visitors")
    change.add_argument("--role", help=f"one of {', '.join(r.value for r in Role)}")
    change.add_argument("--departments", help="comma-separated, e.g. billing,technical ('' = all)")
    change.add_argument("--levels", help="support levels, comma-separated, e.g. 1,2")
    change.add_argument("--capacity", dest="new_capacity", help="concurrent chats, 1-100")
    change.add_argument("--data-dir", type=Path)
    change.set_defaults(func=cmd_set)
