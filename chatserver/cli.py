"""Command line: ``chatserver serve | operator add | operator list``."""

from __future__ import annotations

import argparse
import getpass
import logging
import secrets
import sqlite3
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from . import auth
from .config import ConfigError, Settings
from .store.sqlite import connect_sync
from .types import Role


def _setup_logging(settings: Settings) -> None:
    from .app import JsonFormatter

    handler = logging.StreamHandler()
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    settings = Settings.load(
        host=args.host, port=args.port, data_dir=args.data_dir, redis_url=args.redis_url
    )
    _setup_logging(settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        ws="websockets-sansio",
        ws_max_size=settings.max_frame_bytes,
        log_config=None,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    return 0


def create_operator(
    db_path: Path,
    username: str,
    password: str,
    *,
    name: str | None = None,
    role: str = Role.OPERATOR.value,
    departments: Iterable[str] = (),
    capacity: int = 5,
) -> str:
    """Insert an operator account (works while servers run); returns its id.

    Raises ``ValueError`` if the username is taken or a value is unusable.
    """
    if not 0 < len(username) <= 100:
        raise ValueError("username must have 1-100 characters")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    Role(role)
    depts = ",".join(sorted({d.strip().lower() for d in departments if d.strip()}))
    operator_id = "o_" + secrets.token_hex(6)
    conn = connect_sync(db_path)
    try:
        conn.execute(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                operator_id,
                username,
                name or username,
                auth.hash_password(password),
                role,
                depts,
                capacity,
                time.time(),
            ),
        )
    except sqlite3.IntegrityError:
        raise ValueError(f"operator {username!r} exists") from None
    finally:
        conn.close()
    return operator_id


def cmd_operator_add(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=args.data_dir)
    password = args.password
    if password is None:
        password = getpass.getpass(f"password for {args.username}: ")
    if len(password) < 4:
        print("error: password must have at least 4 characters", file=sys.stderr)
        return 2
    try:
        operator_id = create_operator(
            settings.db_path,
            args.username,
            password,
            name=args.name,
            role=args.role,
            departments=args.department,
            capacity=args.capacity or settings.default_capacity,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added operator {args.username} ({operator_id}), role {args.role}")
    return 0


def cmd_operator_list(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect_sync(settings.db_path)
    try:
        for row in conn.execute(
            "SELECT id, username, name, role, departments, capacity"
            " FROM operators ORDER BY username"
        ):
            print("\t".join(str(c) for c in row))
    finally:
        conn.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument(
        "--data-dir", type=Path, help="where the SQLite store lives (default ./data)"
    )
    serve.add_argument("--redis-url", help="redis://… to share presence across nodes")
    serve.set_defaults(func=cmd_serve)

    operator = sub.add_parser("operator", help="manage operator accounts")
    op_sub = operator.add_subparsers(dest="op_command", required=True)
    add = op_sub.add_parser("add", help="create an operator account")
    add.add_argument("username")
    add.add_argument("--password", help="password (prompted if omitted)")
    add.add_argument("--name", help="display name shown to visitors (default: username)")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    add.add_argument("--department", action="append", default=[], help="repeatable")
    add.add_argument(
        "--capacity", type=int, help="concurrent chats (default CHATSERVER_DEFAULT_CAPACITY, 5)"
    )
    add.add_argument("--data-dir", type=Path)
    add.set_defaults(func=cmd_operator_add)
    lst = op_sub.add_parser("list", help="list operator accounts")
    lst.add_argument("--data-dir", type=Path)
    lst.set_defaults(func=cmd_operator_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "capacity", 1) is not None and getattr(args, "capacity", 1) < 1:
        parser.error("--capacity must be at least 1")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
