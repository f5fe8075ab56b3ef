"""Command line: ``chatserver serve | migrate | operator add|list|disable|enable|remove|passwd|set |
audit verify|seal|export | mail ingest``,
``customer add|list | time log | report billing | kb import|export``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import secrets
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from chatserver.config import ConfigError, Settings
from chatserver.operators import auth
from chatserver.operators.commands import add_lifecycle_commands
from chatserver.store.commands import add_store_commands
from chatserver.store.database import INTEGRITY_ERRORS, Database, connect, migrate
from chatserver.types import Role


def _setup_logging(settings: Settings) -> None:
    from chatserver.web.app import JsonFormatter

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

    from chatserver.transport.wire import ChatWebSocketProtocol, choose_ws_protocol
    from chatserver.web.app import NodeServer, create_app

    settings = Settings.load(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        database_url=args.database_url,
        database_schema=args.database_schema,
        redis_url=args.redis_url,
        smtp_listen_port=args.smtp_port,
    )
    from chatserver.audit.keys import load_key

    load_key(settings)  # an unreadable audit key file: a configuration error, now
    _setup_logging(settings)
    app = create_app(settings)
    # After the logging set-up: a fallback's one warning goes to the server's log.
    ws = choose_ws_protocol(settings.ws_protocol)
    app.state.ws_protocol = "chat" if ws is ChatWebSocketProtocol else "stock"
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws=ws,
        loop=settings.event_loop,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=settings.ws_compression,
        # X-Forwarded-For / -Proto only from these (None: uvicorn's default); the
        # operator socket's Origin check compares the scheme this yields.
        forwarded_allow_ips=(
            list(settings.trusted_proxies) if settings.trusted_proxies is not None else None
        ),
        log_config=None,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    server = NodeServer(config)
    server.run()
    return 0 if server.started else 3


def create_operator(
    db_path: Path | Database,
    username: str,
    password: str,
    *,
    name: str | None = None,
    role: str = Role.OPERATOR.value,
    departments: Iterable[str] = (),
    capacity: int = 5,
    levels: Iterable[int] = (1,),
) -> str:
    """Insert an operator account (works while servers run); returns its id.

    Raises ``ValueError`` if the username is taken or a value is unusable.
    """
    if not 0 < len(username) <= 100:
        raise ValueError("username must have 1-100 characters")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    Role(role)
    level_set = sorted(set(levels)) or [1]
    if any(level not in (1, 2, 3) for level in level_set):
        raise ValueError("levels are 1, 2 or 3")
    depts = ",".join(sorted({d.strip().lower() for d in departments if d.strip()}))
    operator_id = "o_" + secrets.token_hex(6)
    conn = connect(db_path)
    try:
        conn.execute(
            "INSERT INTO operators (id, username, name, password_hash, role, departments,"
            " capacity, created_at, levels) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                operator_id,
                username,
                name or username,
                auth.hash_password(password),
                role,
                depts,
                capacity,
                time.time(),
                ",".join(str(v) for v in level_set),
            ),
        )
    except INTEGRITY_ERRORS:
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
            settings.database,
            args.username,
            password,
            name=args.name,
            role=args.role,
            departments=args.department,
            capacity=args.capacity or settings.default_capacity,
            levels=args.level or (1,),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"added operator {args.username} ({operator_id}), role {args.role}")
    return 0


def cmd_operator_list(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        for row in conn.execute(
            "SELECT id, username, name, role, departments, capacity, levels,"
            " CASE WHEN disabled_at IS NULL THEN 'active' ELSE 'disabled' END"
            " FROM operators WHERE removed_at IS NULL ORDER BY username"
        ):
            print("\t".join(str(c) for c in row))
    finally:
        conn.close()
    return 0


async def _with_tickets(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run ``work(service)`` against the store (while servers may be running)."""
    from chatserver.attachments.choose import blob_store
    from chatserver.store.backends import make_store
    from chatserver.tickets.service import TicketService
    from chatserver.tickets.store import TicketStore

    store = make_store(settings, cli=True)
    await store.open()
    files = blob_store(settings, settings.database)
    await files.open()
    records = TicketStore(settings.database, files)
    await records.open()
    try:
        return await work(TicketService(settings, store, records, files))
    finally:
        await records.close()
        await files.close()
        await store.close()


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from chatserver.audit.keys import load_key
    from chatserver.audit.verify import ExportError, check_database, load_export

    settings = Settings.load(data_dir=args.data_dir)
    key = load_key(settings)
    against = None
    if args.against is not None:
        try:
            against = load_export(args.against)
        except ExportError as exc:
            return _refuse(str(exc))

    async def work(service: Any) -> int:
        problems = await service.records.verify()
        _rows, total = await service.records.search(limit=1)
        report, rewritten = await asyncio.to_thread(check_database, settings.database, key, against)
        problems += report.problems + rewritten
        for problem in problems:
            print(problem)
        for note in report.notes:
            print(f"note: {note}")
        if problems:
            print(f"FAILED: {len(problems)} problem(s) in the stored history", file=sys.stderr)
            return 1
        signed = "signed (key id verified)" if key is not None else "UNSIGNED"
        print(
            f"ok: {total} tickets, every history chain and attachment intact;"
            f" {report.chats} sealed chats and {report.tickets} ticket heads, {signed}"
            + (f"; every head of {args.against} still holds" if against is not None else "")
        )
        return 0

    return asyncio.run(_with_tickets(settings, work))


def cmd_audit_seal(args: argparse.Namespace) -> int:
    from chatserver.audit.keys import load_key
    from chatserver.audit.seals import Sealer

    settings = Settings.load(data_dir=args.data_dir)
    key = load_key(settings)

    async def work() -> tuple[int, int]:
        sealer = Sealer(settings.database, key)
        await sealer.open()
        try:
            return await sealer.seal_all()
        finally:
            await sealer.close()

    chats, tickets = asyncio.run(work())
    signed = "signed" if key is not None else "UNSIGNED (no audit key)"
    print(f"sealed {chats} chats and {tickets} ticket heads, {signed}")
    return 0


def cmd_audit_export(args: argparse.Namespace) -> int:
    from chatserver.audit.keys import load_key
    from chatserver.audit.verify import ExportError, check_database, write_export

    settings = Settings.load(data_dir=args.data_dir)
    key = load_key(settings)
    if args.file.exists():
        return _refuse(f"{args.file}: exists already (an export is never overwritten)")
    if cmd_audit_seal(args) != 0:
        return 1
    report, _ = check_database(settings.database, key, None)
    if report.problems:
        for problem in report.problems:
            print(problem)
        print("FAILED: not exporting heads of a history that does not verify", file=sys.stderr)
        return 1
    try:
        data = write_export(settings.database, key, args.file, time.time())
    except ExportError as exc:
        return _refuse(str(exc))
    print(
        f"exported {len(data['tickets'])} ticket heads and {len(data['chats'])} chat heads"
        f" to {args.file}" + ("" if key is not None else " (UNSIGNED: no audit key)")
    )
    return 0


def _read_mail_file(name: str, limit: int) -> bytes:
    """The bytes of ``name`` (``-``: standard input), at most ``limit`` of them.

    Raises ``OSError`` (missing, unreadable, a directory) or ``ValueError`` (too large).
    """
    if name == "-":
        raw = sys.stdin.buffer.read(limit + 1)
    else:
        with Path(name).open("rb") as fh:
            raw = fh.read(limit + 1)
    if len(raw) > limit:
        raise ValueError(f"larger than {limit} bytes (max_mail_bytes)")
    return raw


def cmd_mail_ingest(args: argparse.Namespace) -> int:
    """Each file on its own: one that cannot be read or parsed, or is refused, is
    reported on stderr (one line naming it and why) and the others are still ingested;
    exit status 1 if any failed."""
    from chatserver.errors import ChatError
    from chatserver.mail.model import MailError
    from chatserver.tickets.mail_in import ingest_mail

    settings = Settings.load(data_dir=args.data_dir)

    def failed_line(name: str, why: str) -> None:
        print(f"{name}: failed: {' '.join(why.split())[:300]}", file=sys.stderr)

    async def work(service: Any) -> int:
        failed = 0
        for name in args.files:
            try:
                raw = _read_mail_file(name, settings.max_mail_bytes)
            except OSError as exc:
                failed_line(name, f"cannot read: {exc.strerror or exc}")
                failed += 1
                continue
            except ValueError as exc:
                failed_line(name, str(exc))
                failed += 1
                continue
            try:
                outcome = await ingest_mail(service, raw)
            except (MailError, ChatError) as exc:
                print(f"{name}: refused: {exc}", file=sys.stderr)
                failed += 1
                continue
            except Exception as exc:  # a mail the parser cannot take apart
                failed_line(name, f"cannot parse: {type(exc).__name__}: {exc}")
                failed += 1
                continue
            ref = f"#{outcome['ticket']}" if outcome.get("ticket") else "-"
            reason = f" ({outcome['reason']})" if outcome.get("reason") else ""
            print(f"{name}: {outcome['result']} {ref}{reason}")
        await service.outbox.deliver_due()
        return 1 if failed else 0

    return asyncio.run(_with_tickets(settings, work))


# -- customers, time tracking and billing (see docs/billing.md) -------------------------------

_CUSTOMER_ID_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_MAX_LOG_MINUTES = 24 * 60  # one entry longer than a day is a typo


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def cmd_customer_add(args: argparse.Namespace) -> int:
    import re
    from decimal import Decimal, InvalidOperation

    if not re.fullmatch(_CUSTOMER_ID_RE, args.id):
        return _refuse(f"customer id {args.id!r}: use 1-64 letters, digits, '.', '_' or '-'")
    name = (args.name or "").strip()
    if not 0 < len(name) <= 200:
        return _refuse("--name must have 1-200 characters")
    email = args.email.strip() if args.email else None
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        return _refuse(f"--email {args.email!r} is not an e-mail address")
    package_minutes = 0
    if args.contract == "package":
        if args.package_hours is None:
            return _refuse("--contract package needs --package-hours (e.g. 4, 8, 16 or 24)")
        try:
            minutes = Decimal(args.package_hours) * 60
        except InvalidOperation:
            return _refuse(f"--package-hours {args.package_hours!r} is not a number")
        if not minutes.is_finite() or minutes <= 0 or minutes != minutes.to_integral_value():
            return _refuse(f"--package-hours {args.package_hours!r}: need whole minutes above 0")
        if minutes > 744 * 60:
            return _refuse(f"--package-hours {args.package_hours!r}: more than a month")
        package_minutes = int(minutes)
    elif args.package_hours is not None:
        return _refuse("--package-hours only goes with --contract package")
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        conn.execute(
            "INSERT INTO customers (id, name, email, plan, contract, package_minutes, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (args.id, name, email, args.plan, args.contract, package_minutes, time.time()),
        )
    except INTEGRITY_ERRORS:
        print(f"error: customer {args.id!r} exists", file=sys.stderr)
        return 1
    finally:
        conn.close()
    from chatserver.service_levels.billing import Contract

    contract = Contract(args.contract, package_minutes)
    print(f"added customer {args.id} ({name}), plan {args.plan}, {contract.describe()}")
    return 0


def cmd_customer_list(args: argparse.Namespace) -> int:
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        for cid, name, email, plan, contract, minutes in conn.execute(
            "SELECT id, name, email, plan, contract, package_minutes FROM customers ORDER BY id"
        ):
            hours = f"{minutes / 60:g}" if contract == "package" else "-"
            print("\t".join(str(c) for c in (cid, name, email or "-", plan, contract, hours)))
    finally:
        conn.close()
    return 0


def cmd_time_log(args: argparse.Namespace) -> int:
    from datetime import datetime
    from decimal import Decimal, InvalidOperation
    from zoneinfo import ZoneInfo

    try:
        minutes = Decimal(args.minutes)
    except InvalidOperation:
        return _refuse(f"--minutes {args.minutes!r} is not a number")
    if not minutes.is_finite() or minutes <= 0:
        return _refuse(f"--minutes must be above 0, got {args.minutes}")
    if minutes > _MAX_LOG_MINUTES:
        return _refuse(f"--minutes {args.minutes}: more than {_MAX_LOG_MINUTES} in one entry")
    seconds = int((minutes * 60).to_integral_value())
    if args.ticket is not None and args.ticket < 1:
        return _refuse(f"--ticket must be a ticket number, got {args.ticket}")
    ts = time.time()
    if args.at is not None:
        try:
            at = datetime.fromisoformat(args.at)
        except ValueError:
            return _refuse(f"--at {args.at!r}: expected e.g. 2026-11-30T23:30 (Zurich time)")
        if at.tzinfo is None:
            at = at.replace(tzinfo=ZoneInfo("Europe/Zurich"))
        ts = at.timestamp()
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        known = conn.execute("SELECT 1 FROM customers WHERE id = ?", (args.customer,)).fetchone()
        if known is None:
            return _refuse(f"unknown customer {args.customer!r} (add it: chatserver customer add)")
        operator_id = "cli"
        if args.operator is not None:
            row = conn.execute(
                "SELECT id FROM operators WHERE username = ?", (args.operator,)
            ).fetchone()
            if row is None:
                return _refuse(f"unknown operator {args.operator!r}")
            operator_id = row[0]
        session_id = None
        if args.ticket is not None:
            row = conn.execute(
                "SELECT customer_id, session_id FROM tickets WHERE number = ?", (args.ticket,)
            ).fetchone()
            if row is None:
                return _refuse(f"unknown ticket #{args.ticket}")
            if row[0] and row[0] != args.customer:
                return _refuse(f"ticket #{args.ticket} belongs to customer {row[0]!r}")
            session_id = row[1]
        (entry,) = conn.execute(
            "INSERT INTO time_entries (ts, operator_id, customer_id, ticket, session_id, seconds,"
            " note) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (ts, operator_id, args.customer, args.ticket, session_id, seconds, args.note or ""),
        ).fetchone()
    finally:
        conn.close()
    ref = f" on ticket #{args.ticket}" if args.ticket is not None else ""
    print(f"logged {minutes} min for {args.customer}{ref} (entry {entry})")
    return 0


def cmd_report_billing(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from chatserver.service_levels import billing

    try:
        config = billing.load_billing_config(args.config)
    except OSError as exc:
        return _refuse(f"--config: {exc}")
    except ValueError as exc:
        return _refuse(f"billing config {args.config or billing.DEFAULT_CONFIG_PATH}: {exc}")
    try:
        start, end = billing.parse_month(args.month, config.timezone)
    except ValueError as exc:
        return _refuse(f"--month: {exc}")
    settings = Settings.load(data_dir=args.data_dir)
    conn = connect(settings.database)
    try:
        names = {r[0]: r[1] for r in conn.execute("SELECT id, username FROM operators")}
        customers = []
        for r in conn.execute(
            "SELECT id, name, email, plan, contract, package_minutes FROM customers"
        ):
            try:
                contract = billing.Contract.from_db(r[4], r[5])
            except ValueError as exc:
                raise ValueError(f"customer {r[0]!r}: {exc}") from None
            customers.append(billing.Customer(r[0], r[1], contract, r[2], r[3]))
        entries = [
            billing.TimeEntry(
                ts=datetime.fromtimestamp(r[1], UTC),
                operator_id=r[2],
                customer_id=r[3],
                ticket=r[4],
                session_id=r[5],
                seconds=round(r[6]),
                note=r[7] or "",
                id=r[0],
            )
            for r in conn.execute(
                "SELECT id, ts, operator_id, customer_id, ticket, session_id, seconds, note"
                " FROM time_entries WHERE ts >= ? AND ts < ? ORDER BY ts, id",
                (start.timestamp(), end.timestamp()),
            )
        ]
    except ValueError as exc:
        print(f"error: bad data in {settings.database.describe()}: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    report = billing.compute_report(entries, customers, args.month, config, operator_names=names)
    if args.csv is None:
        sys.stdout.write(billing.format_text(report))
    elif str(args.csv) == "-":
        sys.stdout.write(billing.report_csv(report))
    else:
        try:
            with open(args.csv, "w", encoding="utf-8", newline="") as fh:
                fh.write(billing.report_csv(report))
        except OSError as exc:
            print(f"error: --csv: {exc}", file=sys.stderr)
            return 1
        print(
            f"wrote {args.csv}: {len(report.customers)} customer(s),"
            f" {report.currency} {report.total:.2f}"
        )
    return 0


def _add_billing_commands(sub: Any) -> None:
    """``customer add|list``, ``time log`` and ``report billing``."""
    customer = sub.add_parser("customer", help="manage customers and their contracts")
    cust_sub = customer.add_subparsers(dest="customer_command", required=True)
    cadd = cust_sub.add_parser("add", help="create a customer")
    cadd.add_argument("id", help="customer number, e.g. K-1001")
    cadd.add_argument("--name", required=True, help="company or person")
    cadd.add_argument("--email", help="registered e-mail address")
    cadd.add_argument("--plan", choices=("free", "standard", "vip"), default="free")
    cadd.add_argument("--contract", choices=("package", "hourly"), default="hourly")
    cadd.add_argument("--package-hours", help="hours included per month (package), e.g. 16")
    cadd.add_argument("--data-dir", type=Path)
    cadd.set_defaults(func=cmd_customer_add)
    clist = cust_sub.add_parser("list", help="list customers (tab-separated)")
    clist.add_argument("--data-dir", type=Path)
    clist.set_defaults(func=cmd_customer_list)

    time_cmd = sub.add_parser("time", help="time tracking")
    time_sub = time_cmd.add_subparsers(dest="time_command", required=True)
    log_cmd = time_sub.add_parser("log", help="log time for a customer (manual entry)")
    log_cmd.add_argument("--customer", required=True, help="customer id")
    log_cmd.add_argument("--minutes", required=True, help="time spent, e.g. 20 or 7.5")
    log_cmd.add_argument("--ticket", type=int, help="ticket number")
    log_cmd.add_argument("--operator", help="operator username (default: recorded as 'cli')")
    log_cmd.add_argument("--note", help="what was done")
    log_cmd.add_argument("--at", help="when, ISO 8601 (default now; without offset: Zurich)")
    log_cmd.add_argument("--data-dir", type=Path)
    log_cmd.set_defaults(func=cmd_time_log)

    report = sub.add_parser("report", help="reports")
    report_sub = report.add_subparsers(dest="report_command", required=True)
    bill = report_sub.add_parser("billing", help="monthly billing per customer")
    bill.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11")
    bill.add_argument("--csv", help="write CSV to this file ('-': stdout) instead of the table")
    bill.add_argument("--config", type=Path, help="billing TOML (default: shipped rules)")
    bill.add_argument("--data-dir", type=Path)
    bill.set_defaults(func=cmd_report_billing)


def _database_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        help="sqlite:///path or postgresql://user@host/db (default: SQLite in --data-dir)",
    )
    parser.add_argument("--database-schema", help="PostgreSQL schema to use (default: public)")


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = Settings.load(
        data_dir=args.data_dir,
        database_url=args.database_url,
        database_schema=args.database_schema,
    )
    try:
        database = settings.database
    except ValueError as exc:
        raise ConfigError(f"database_url: {exc}") from None
    try:
        before, after = migrate(database)
    except RuntimeError as exc:
        return _refuse(str(exc))
    state = "already up to date" if before == after else "migrated"
    print(f"{database.describe()}: schema version {before} -> {after} ({state})")
    return 0


def cmd_kb(args: argparse.Namespace) -> int:
    """``kb import DIR`` / ``kb export DIR`` (chatserver.kb.files)."""
    from chatserver.kb.files import export_folder, import_folder
    from chatserver.kb.store.backends import make_kb_store

    settings = Settings.load(data_dir=args.data_dir)

    async def run() -> int:
        store = make_kb_store(settings, cli=True)
        await store.open()
        try:
            if args.kb_command == "export":
                count = await export_folder(store, args.dir)
                print(f"exported {count} article(s) to {args.dir}")
                return 0
            report = await import_folder(store, args.dir)
        finally:
            await store.close()
        for error in report.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"imported {args.dir}: {report.summary()}")
        return 1 if report.errors else 0

    return asyncio.run(run())


def _add_kb_commands(sub: Any) -> None:
    kb = sub.add_parser("kb", help="the knowledge base's articles as Markdown files")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    for name, text in (
        ("import", "create or update articles from DIR's Markdown files (idempotent)"),
        ("export", "write every article to DIR/<lang>/<slug>.md"),
    ):
        cmd = kb_sub.add_parser(name, help=text)
        cmd.add_argument("dir", type=Path, metavar="DIR")
        cmd.add_argument("--data-dir", type=Path)
        cmd.set_defaults(func=cmd_kb)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chatserver", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP port (default 8000)")
    serve.add_argument(
        "--data-dir", type=Path, help="where the SQLite store lives (default ./data)"
    )
    _database_arguments(serve)
    serve.add_argument("--redis-url", help="redis://… to share presence across nodes")
    serve.add_argument(
        "--smtp-port", type=int, help="run the inbound SMTP listener on this port (0: any free)"
    )
    serve.set_defaults(func=cmd_serve)
    migrate_cmd = sub.add_parser("migrate", help="bring the database's schema up to date")
    migrate_cmd.add_argument("--data-dir", type=Path)
    _database_arguments(migrate_cmd)
    migrate_cmd.set_defaults(func=cmd_migrate)

    operator = sub.add_parser("operator", help="manage operator accounts")
    op_sub = operator.add_subparsers(dest="op_command", required=True)
    add = op_sub.add_parser("add", help="create an operator account")
    add.add_argument("username")
    add.add_argument("--password", help="password (prompted if omitted)")
    add.add_argument("--name", help="display name shown to visitors (default: username)")
    add.add_argument("--role", choices=[r.value for r in Role], default=Role.OPERATOR.value)
    add.add_argument("--department", action="append", default=[], help="repeatable")
    add.add_argument(
        "--level",
        action="append",
        type=int,
        choices=(1, 2, 3),
        default=[],
        help="support level served, repeatable (default 1: first level)",
    )
    add.add_argument(
        "--capacity", type=int, help="concurrent chats (default CHATSERVER_DEFAULT_CAPACITY, 5)"
    )
    add.add_argument("--data-dir", type=Path)
    add.set_defaults(func=cmd_operator_add)
    lst = op_sub.add_parser("list", help="list operator accounts")
    lst.add_argument("--data-dir", type=Path)
    lst.set_defaults(func=cmd_operator_list)
    add_lifecycle_commands(op_sub)

    audit = sub.add_parser("audit", help="check the revision-safe ticket history")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser(
        "verify", help="verify every ticket's hash chain and files, and every seal"
    )
    verify.add_argument("--data-dir", type=Path)
    verify.add_argument(
        "--against", type=Path, metavar="FILE", help="also check the heads of an export"
    )
    verify.set_defaults(func=cmd_audit_verify)
    seal = audit_sub.add_parser("seal", help="seal closed chats and sign ticket heads now")
    seal.add_argument("--data-dir", type=Path)
    seal.set_defaults(func=cmd_audit_seal)
    export = audit_sub.add_parser("export", help="write the signed chain heads to a new FILE")
    export.add_argument("file", type=Path, metavar="FILE")
    export.add_argument("--data-dir", type=Path)
    export.set_defaults(func=cmd_audit_export)

    mail = sub.add_parser("mail", help="the e-mail channel")
    mail_sub = mail.add_subparsers(dest="mail_command", required=True)
    ingest = mail_sub.add_parser("ingest", help="take .eml files as inbound mail")
    ingest.add_argument("files", nargs="+", help=".eml files ('-' reads stdin)")
    ingest.add_argument("--data-dir", type=Path)
    ingest.set_defaults(func=cmd_mail_ingest)
    _add_billing_commands(sub)
    add_store_commands(sub)
    _add_kb_commands(sub)
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
