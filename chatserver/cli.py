"""Command line: ``chatserver serve | operator add|list | audit verify | mail ingest``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

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
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        redis_url=args.redis_url,
        smtp_listen_port=args.smtp_port,
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


async def _with_tickets(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``work(service)`` against the store (while servers may be running)."""
    from .attachments import FileStore
    from .store.sqlite import SqliteStore
    from .store.tickets import TicketStore
    from .ticketing import TicketService

    store = SqliteStore(settings.db_path)
    await store.open()
    files = FileStore(settings.data_dir / "attachments")
    records = TicketStore(settings.db_path, files)
    await records.open()
    try:
        return await work(TicketService(settings, store, records, files))
    finally:
        await records.close()
        await store.close()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=args.data_dir)

    async def work(service: Any) -> int:
        problems = await service.records.verify()
        _rows, total = await service.records.search(limit=1)
        for problem in problems:
            print(problem)
        if problems:
            print(f"FAILED: {len(problems)} problem(s) in the ticket history", file=sys.stderr)
            return 1
        print(f"ok: {total} tickets, every history chain and attachment intact")
        return 0

    return asyncio.run(_with_tickets(settings, work))


def cmd_mail_ingest(args: argparse.Namespace) -> int:
    from .mail import MailError

    settings = Settings.load(data_dir=args.data_dir)
    raws = [Path(f).read_bytes() if f != "-" else sys.stdin.buffer.read() for f in args.files]

    async def work(service: Any) -> int:
        failed = 0
        for name, raw in zip(args.files, raws, strict=True):
            try:
                outcome = await service.ingest(raw)
            except MailError as exc:
                print(f"{name}: refused: {exc}", file=sys.stderr)
                failed += 1
                continue
            ref = f"#{outcome['ticket']}" if outcome.get("ticket") else "-"
            reason = f" ({outcome['reason']})" if outcome.get("reason") else ""
            print(f"{name}: {outcome['result']} {ref}{reason}")
        await service.deliver_due()
        return 1 if failed else 0

    return asyncio.run(_with_tickets(settings, work))


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
    serve.add_argument(
        "--smtp-port", type=int, help="run the inbound SMTP listener on this port (0: any free)"
    )
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

    audit = sub.add_parser("audit", help="check the revision-safe ticket history")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="verify every ticket's hash chain and files")
    verify.add_argument("--data-dir", type=Path)
    verify.set_defaults(func=cmd_audit_verify)

    mail = sub.add_parser("mail", help="the e-mail channel")
    mail_sub = mail.add_subparsers(dest="mail_command", required=True)
    ingest = mail_sub.add_parser("ingest", help="take .eml files as inbound mail")
    ingest.add_argument("files", nargs="+", help=".eml files ('-' reads stdin)")
    ingest.add_argument("--data-dir", type=Path)
    ingest.set_defaults(func=cmd_mail_ingest)
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
