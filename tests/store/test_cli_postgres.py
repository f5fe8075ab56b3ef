"""The command line on PostgreSQL: every command reads ``CHATSERVER_DATABASE_URL``.

Operators, customers, time entries and the billing report go to and come from the
PostgreSQL database the environment names; nothing is written under ``--data-dir``
but what is no database's (attachments); bad input changes nothing there either.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from chatserver.cli import main
from chatserver.store.database import Database, connect
from tests.pg import pg_database


@pytest.fixture
def database(monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    with pg_database() as db:
        monkeypatch.setenv("CHATSERVER_DATABASE_URL", db.conninfo or "")
        monkeypatch.setenv("CHATSERVER_DATABASE_SCHEMA", db.schema or "")
        yield db


def test_operator_customer_and_time_commands(
    database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = ["--data-dir", str(tmp_path)]
    assert main(["operator", "add", "anna", "--password", "pw-secret", *data]) == 0
    assert main(["operator", "add", "anna", "--password", "pw-secret", *data]) == 1
    assert "operator 'anna' exists" in capsys.readouterr().err
    assert main(["operator", "disable", "anna", *data]) == 0
    assert "disabled operator anna" in capsys.readouterr().out
    assert main(["operator", "list", *data]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[1] for line in listed] == ["anna"]
    assert listed[0].endswith("\tdisabled")
    assert main(["customer", "add", "K-1", "--name", "Kunde AG", "--contract", "package",
                 "--package-hours", "4", *data]) == 0  # fmt: skip
    assert main(["customer", "add", "K-1", "--name", "Again", *data]) == 1
    assert main(["time", "log", "--customer", "K-1", "--minutes", "30", "--operator", "anna",
                 "--at", "2026-11-03T10:00", *data]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "logged 30 min for K-1 (entry 1)" in out
    assert main(["time", "log", "--customer", "K-9", "--minutes", "5", *data]) == 2
    assert main(["report", "billing", "--month", "2026-11", *data]) == 0
    assert "Kunde AG" in capsys.readouterr().out
    with connect(database) as conn:
        (disabled,) = conn.execute(
            "SELECT disabled_at IS NOT NULL FROM operators WHERE username = ?", ("anna",)
        ).fetchone()
        assert disabled
        assert conn.execute("SELECT COUNT(*) FROM customers").fetchone()[0] == 1
        assert conn.execute("SELECT seconds FROM time_entries").fetchall() == [(1800,)]
    assert not (tmp_path / "chatserver.sqlite3").exists()
