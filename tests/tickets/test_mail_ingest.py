"""Inbound mail onto tickets loses nothing: atomic, idempotent, the original kept.

Real SQLite or PostgreSQL and real files (the ticket service as ``chatserver mail
ingest`` builds it); over SMTP a real server process and a real aiosmtplib client.
"""

from __future__ import annotations

import contextlib
import hashlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from chatserver.attachments.files import FileStore
from chatserver.config import Settings
from chatserver.store.backends import make_store
from chatserver.store.database import INTEGRITY_ERRORS, Database, connect
from chatserver.tickets.mail_in import ORIGINAL_NAME, ingest_mail
from chatserver.tickets.service import TicketService
from chatserver.tickets.store import TicketStore
from tests.conftest import ROOT, ServerProcess, free_port
from tests.mail.realworld import (
    BROKEN_BOUNDARY,
    ERROR_LINE,
    FORWARDS,
    LATIN1_8BIT,
    OUTLOOK_FORWARD_DE,
    THUNDERBIRD_FORWARD_FR,
    outlook_reply_de,
    thunderbird_reply_fr,
)
from tests.mail.samples import raw as handwritten
from tests.pg import pg_database
from tests.stored import connect_stored

TABLES = ("tickets", "ticket_events", "attachments", "mail_outbox", "mail_ids", "mail_inbound")


@pytest.fixture(params=["sqlite", "postgresql"])
async def desk(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TicketService]:
    """The ticket service on a real store of each backend; SMTP configured (so mail is
    queued), never connected (nothing here delivers). The sender has a display name."""
    with contextlib.ExitStack() as stack:
        where: dict[str, Any] = {}
        if request.param == "postgresql":
            db = stack.enter_context(pg_database())
            where = {"database_url": db.conninfo, "database_schema": db.schema}
        settings = Settings.load(
            env={},
            data_dir=tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            mail_from="Support Desk <support@desk.example>",
            **where,
        )
        store = make_store(settings, cli=True)
        await store.open()
        files = FileStore(settings.data_dir / "attachments")
        records = TicketStore(settings.database, files)
        await records.open()
        try:
            yield TicketService(settings, store, records, files)
        finally:
            await records.close()
            await store.close()


def counts(service: TicketService) -> dict[str, int]:
    with connect(service.records.db) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


@contextlib.contextmanager
def crash_on_insert(db: Database, table: str) -> Iterator[None]:
    """Every insert into ``table`` fails with an integrity error "injected crash"
    (a trigger, on either backend) until the block ends."""
    with connect(db) as conn:
        if conn.kind == "sqlite":
            conn.execute(
                f"CREATE TRIGGER crash BEFORE INSERT ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'injected crash'); END"
            )
        else:
            conn.execute(
                "CREATE FUNCTION crash() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                " RAISE EXCEPTION 'injected crash'"
                " USING ERRCODE = 'integrity_constraint_violation'; END $$"
            )
            conn.execute(
                f"CREATE TRIGGER crash BEFORE INSERT ON {table}"
                " FOR EACH ROW EXECUTE FUNCTION crash()"
            )
        try:
            yield
        finally:
            conn.execute("DROP TRIGGER crash" + ("" if conn.kind == "sqlite" else f" ON {table}"))


async def mail_events(service: TicketService, number: int) -> list[dict[str, Any]]:
    return [e for e in await service.records.events(number) if e["kind"] == "mail_in"]


@pytest.mark.parametrize("name", sorted(FORWARDS))
async def test_a_forward_opens_a_ticket_with_the_forwarded_text(
    desk: TicketService, name: str
) -> None:
    outcome = await ingest_mail(desk, FORWARDS[name])
    assert outcome == {"result": "created", "ticket": 100001}
    (event,) = await mail_events(desk, 100001)
    assert ERROR_LINE in event["body"]["text"]


async def test_the_original_is_kept_as_an_eml_covered_by_the_chain(desk: TicketService) -> None:
    await ingest_mail(desk, OUTLOOK_FORWARD_DE)
    (event,) = await mail_events(desk, 100001)
    original = event["body"]["original"]
    assert original["filename"] == ORIGINAL_NAME
    assert original["content_type"] == "message/rfc822"
    assert original["sha256"] == hashlib.sha256(OUTLOOK_FORWARD_DE).hexdigest()
    assert original["id"] in [a["id"] for a in event["body"]["attachments"]]  # agents see it
    record = await desk.records.attachment(original["id"])
    assert record is not None and record.owner == "t:100001"
    assert desk.files.read(record.storage) == OUTLOOK_FORWARD_DE  # byte for byte
    assert await desk.records.verify() == []  # chain, projection and files agree
    # Tampering with the kept file is found by the audit.
    desk.files.path(record.storage).write_bytes(b"From: x@y\r\n\r\nsomething else\r\n")
    assert any(ORIGINAL_NAME in p or original["id"] in p for p in await desk.records.verify())


async def test_replies_in_german_and_french_lose_the_quote_not_the_original(
    desk: TicketService,
) -> None:
    await ingest_mail(desk, OUTLOOK_FORWARD_DE)
    await ingest_mail(desk, THUNDERBIRD_FORWARD_FR)
    outbox = await desk.records.due_mail()
    assert [m.ticket for m in outbox] == [100001, 100002]  # the confirmations
    assert all(m.message_id.endswith("@desk.example>") for m in outbox)
    # Outlook (German) answers the confirmation; Thunderbird (French) too, with
    # nothing but In-Reply-To to find its ticket.
    de = outlook_reply_de(100001, outbox[0].message_id)
    fr = thunderbird_reply_fr(100002, outbox[1].message_id)
    assert await ingest_mail(desk, de) == {"result": "reply", "ticket": 100001}
    assert await ingest_mail(desk, fr) == {"result": "reply", "ticket": 100002}
    reply_de = (await mail_events(desk, 100001))[-1]["body"]
    reply_fr = (await mail_events(desk, 100002))[-1]["body"]
    assert reply_de["text"] == "Danke, der Neustart hat geholfen.\n\nAnna"
    assert reply_fr["text"] == "Merci, cela fonctionne de nouveau."
    for body, raw in ((reply_de, de), (reply_fr, fr)):
        record = await desk.records.attachment(body["original"]["id"])
        assert record is not None and desk.files.read(record.storage) == raw
    assert await desk.records.verify() == []


async def test_same_mail_twice_is_one_ticket(desk: TicketService) -> None:
    first = await ingest_mail(desk, OUTLOOK_FORWARD_DE)
    before = counts(desk)
    again = await ingest_mail(desk, OUTLOOK_FORWARD_DE)
    assert again == {**first, "duplicate": True}
    assert counts(desk) == before
    # A reply delivered twice is one event; a held mail twice is one review item.
    outbox = await desk.records.due_mail()
    reply = outlook_reply_de(100001, outbox[0].message_id)
    assert (await ingest_mail(desk, reply))["result"] == "reply"
    assert (await ingest_mail(desk, reply))["duplicate"] is True
    assert len(await mail_events(desk, 100001)) == 2
    stranger = reply.replace(b"anna.meier@kunde.ch", b"eve@elsewhere.example").replace(
        b"REPLY@", b"EVE@"
    )
    held = await ingest_mail(desk, stranger)
    assert held["result"] == "held"
    assert await ingest_mail(desk, stranger) == {**held, "duplicate": True}
    assert len(await desk.records.review_mails()) == 1
    # A stranger reusing Anna's Message-ID is not her mail again: held, not dropped.
    spoof = reply.replace(b"anna.meier@kunde.ch", b"eve@elsewhere.example")
    assert "duplicate" not in await ingest_mail(desk, spoof)
    assert len(await desk.records.review_mails()) == 2


async def test_without_message_id_the_raw_bytes_decide(desk: TicketService) -> None:
    mail = handwritten(
        """
        From: Hans <hans@kunde.ch>
        To: support@desk.example
        Subject: Passwort

        Ich komme nicht rein.
        """
    )
    assert (await ingest_mail(desk, mail))["result"] == "created"
    # The same bytes from a file with LF line ends: the same mail.
    assert (await ingest_mail(desk, mail.replace(b"\r\n", b"\n")))["duplicate"] is True
    other = mail.replace(b"nicht rein", b"immer noch nicht rein")
    assert (await ingest_mail(desk, other))["ticket"] == 100002
    assert counts(desk)["tickets"] == 2


async def test_a_crash_mid_ingest_leaves_nothing_and_a_retry_takes_it_once(
    desk: TicketService,
) -> None:
    empty = counts(desk)
    with crash_on_insert(desk.records.db, "mail_outbox"):
        with pytest.raises(INTEGRITY_ERRORS, match="injected crash"):
            await ingest_mail(desk, OUTLOOK_FORWARD_DE)
        assert counts(desk) == empty  # no ticket, event, record, id or "taken" mark
    # PostgreSQL's sequence does not take back the number the failed creation drew.
    number = 100001 if desk.records.db.kind == "sqlite" else 100002
    assert await ingest_mail(desk, OUTLOOK_FORWARD_DE) == {"result": "created", "ticket": number}
    after = counts(desk)
    assert after["tickets"] == 1 and after["mail_outbox"] == 1 and after["mail_inbound"] == 1
    assert await desk.records.verify() == []


async def test_a_crash_in_a_reply_leaves_the_ticket_as_it_was(desk: TicketService) -> None:
    await ingest_mail(desk, OUTLOOK_FORWARD_DE)
    outbox = await desk.records.due_mail()
    before = counts(desk)
    reply = outlook_reply_de(100001, outbox[0].message_id)
    with crash_on_insert(desk.records.db, "mail_inbound"):
        with pytest.raises(INTEGRITY_ERRORS, match="injected crash"):
            await ingest_mail(desk, reply)
        assert counts(desk) == before
    assert await ingest_mail(desk, reply) == {"result": "reply", "ticket": 100001}
    assert len(await mail_events(desk, 100001)) == 2


async def test_latin1_headers_and_broken_multiparts_on_tickets(desk: TicketService) -> None:
    await ingest_mail(desk, LATIN1_8BIT)
    row = await desk.records.ticket(100001)
    assert row is not None and row.subject == "Verão: Größe der Bestellung"
    assert row.requester_name == "João Silva"
    (event,) = await mail_events(desk, 100001)
    names = [a["filename"] for a in event["body"]["attachments"]]
    assert names == ["HasenundFrösche.txt", ORIGINAL_NAME]
    await ingest_mail(desk, BROKEN_BOUNDARY)
    (broken,) = await mail_events(desk, 100002)
    assert "2026-4711 ist doppelt verbucht" in broken["body"]["text"]
    record = await desk.records.attachment(broken["body"]["original"]["id"])
    assert record is not None and desk.files.read(record.storage) == BROKEN_BOUNDARY


# ---------------------------------------------------------------- a real server


@pytest.fixture
def mail_server(make_server: Any) -> ServerProcess:
    srv: ServerProcess = make_server(
        {
            "CHATSERVER_MAIL_FROM": "Support <support@support.example>",
            "CHATSERVER_SMTP_HOST": "127.0.0.1",
            "CHATSERVER_SMTP_PORT": str(free_port()),  # nobody listens: mail stays queued
            "CHATSERVER_SMTP_LISTEN_PORT": str(free_port()),
        }
    )
    srv.start()
    return srv


async def test_duplicate_smtp_delivery_is_250_twice_and_one_ticket(
    mail_server: ServerProcess,
) -> None:
    port = int(mail_server.env["CHATSERVER_SMTP_LISTEN_PORT"])
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await client.connect()
    try:
        await client.ehlo()
        assert client.supports_extension("pipelining")
        for _ in range(2):
            errors, reply = await client.sendmail(
                "anna.meier@kunde.ch", ["support@desk.example"], OUTLOOK_FORWARD_DE
            )
            assert not errors and reply.startswith("OK")
    finally:
        await client.quit()
    conn = connect_stored(mail_server.data_dir / "chatserver.sqlite3")
    try:
        assert conn.execute("SELECT COUNT(*) FROM tickets").fetchone()[0] == 1
        assert conn.execute("SELECT COUNT(*) FROM mail_outbox").fetchone()[0] == 1
        (message_id,) = conn.execute("SELECT message_id FROM mail_outbox").fetchone()
    finally:
        conn.close()
    assert message_id.endswith("@support.example>")  # the address's domain, not the name's
    assert mail_server.stop() == 0  # a clean SIGTERM exits 0


def test_a_bad_mail_from_stops_the_server_naming_the_setting(tmp_path: Path) -> None:
    for bad in ("support", "Support <support@>", "a@b.example, c@d.example", "x@[1.2.3.4]"):
        result = subprocess.run(
            [sys.executable, "-m", "chatserver", "serve", "--port", str(free_port())],
            env={
                "PATH": "/usr/bin:/bin",
                "CHATSERVER_DATA_DIR": str(tmp_path),
                "CHATSERVER_MAIL_FROM": bad,
            },
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert result.returncode == 2, (bad, result.stderr)
        assert "CHATSERVER_MAIL_FROM" in result.stderr, result.stderr
        assert not (tmp_path / "chatserver.sqlite3").exists()  # stopped before anything


def test_mail_settings_are_checked_each_by_name() -> None:
    from chatserver.config import ConfigError

    good = Settings.load(env={"CHATSERVER_MAIL_FROM": '"Support, Desk" <help@desk.example>'})
    assert good.mail_domain == "desk.example"
    for env, named in (
        ({"CHATSERVER_MAIL_FROM": "help@desk.example\r\nBcc: x@y.example"}, "MAIL_FROM"),
        ({"CHATSERVER_SMTP_HOST": "mail host"}, "SMTP_HOST"),
        ({"CHATSERVER_SMTP_PORT": "0"}, "SMTP_PORT"),
        ({"CHATSERVER_SMTP_TLS": "1", "CHATSERVER_SMTP_STARTTLS": "1"}, "SMTP_TLS"),
        ({"CHATSERVER_SMTP_USERNAME": "u"}, "SMTP_USERNAME"),
        ({"CHATSERVER_MAIL_RETRY_SECONDS": "0"}, "MAIL_RETRY_SECONDS"),
        ({"CHATSERVER_MAX_MAIL_BYTES": "10"}, "MAX_MAIL_BYTES"),
        ({"CHATSERVER_SMTP_LISTEN_HOST": ""}, "SMTP_LISTEN_HOST"),
    ):
        with pytest.raises(ConfigError, match=f"CHATSERVER_{named}"):
            Settings.load(env=env)
