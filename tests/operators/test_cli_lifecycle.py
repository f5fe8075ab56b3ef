"""``chatserver operator disable|enable|remove|passwd|set``, run as a user would."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from chatserver.cli import create_operator
from chatserver.operators.auth import verify_password
from tests.test_cli import run

COLUMNS = (
    "name, role, departments, capacity, levels, password_hash, token_version,"
    " disabled_at, removed_at"
)


def row(data: Path, username: str) -> tuple[object, ...]:
    conn = sqlite3.connect(data / "chatserver.sqlite3")
    try:
        found = conn.execute(
            f"SELECT {COLUMNS} FROM operators WHERE username = ?", (username,)
        ).fetchone()
    finally:
        conn.close()
    assert found is not None
    return tuple(found)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    create_operator(tmp_path / "chatserver.sqlite3", "anna", "pw-secret-1", name="Anna")
    create_operator(tmp_path / "chatserver.sqlite3", "ben", "pw-secret-1")
    return tmp_path


def listed(data: Path) -> dict[str, list[str]]:
    out = run("operator", "list", "--data-dir", str(data)).stdout.strip().splitlines()
    return {line.split("\t")[1]: line.split("\t") for line in out}


def test_disable_enable_remove(data):
    d = str(data)
    done = run("operator", "disable", "anna", "--data-dir", d)
    assert done.returncode == 0, done.stderr
    assert "disabled operator anna" in done.stdout
    after = row(data, "anna")
    assert after[6] == 1 and after[7] is not None  # token_version bumped, disabled_at set
    assert listed(data)["anna"][-1] == "disabled"
    done = run("operator", "enable", "anna", "--data-dir", d)
    assert done.returncode == 0, done.stderr
    assert row(data, "anna")[6:8] == (1, None)  # enabled; old tokens stay revoked
    assert listed(data)["anna"][-1] == "active"
    done = run("operator", "remove", "anna", "--data-dir", d)
    assert done.returncode == 0, done.stderr
    gone = row(data, "anna")
    assert gone[0] == "Anna" and gone[6] == 2 and gone[8] is not None  # the name stays
    assert "anna" not in listed(data) and "ben" in listed(data)
    # A removed operator is unknown to every command.
    for command in ("disable", "enable", "remove"):
        again = run("operator", command, "anna", "--data-dir", d)
        assert again.returncode == 1 and "no operator 'anna'" in again.stderr
    assert row(data, "anna") == gone


def test_passwd_from_stdin(data):
    done = run("operator", "passwd", "ben", "--password-stdin", "--data-dir", str(data),
               stdin="a-new-secret\n")  # fmt: skip
    assert done.returncode == 0, done.stderr
    after = row(data, "ben")
    assert verify_password(str(after[5]), "a-new-secret") and after[6] == 1


def test_passwd_bad_inputs_change_nothing(data):
    before = row(data, "ben")
    short = run("operator", "passwd", "ben", "--password-stdin", "--data-dir", str(data),
                stdin="short\n")  # fmt: skip
    assert short.returncode == 2 and "password: 8-1000 characters" in short.stderr
    unknown = run("operator", "passwd", "nobody", "--password-stdin", "--data-dir", str(data),
                  stdin="long-enough-1\n")  # fmt: skip
    assert unknown.returncode == 1 and "no operator 'nobody'" in unknown.stderr
    assert row(data, "ben") == before


def test_set_changes_and_revokes_on_a_new_role(data):
    d = str(data)
    done = run(
        "operator", "set", "ben", "--capacity", "3", "--levels", "1,2",
        "--departments", "Billing,technical", "--name", "Ben B.", "--data-dir", d,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert row(data, "ben")[:5] == ("Ben B.", "operator", "billing,technical", 3, "1,2")
    assert row(data, "ben")[6] == 0  # no new role: tokens stay valid
    done = run("operator", "set", "ben", "--role", "supervisor", "--data-dir", d)
    assert done.returncode == 0 and "revoked" in done.stdout
    assert row(data, "ben")[1] == "supervisor" and row(data, "ben")[6] == 1
    same = run("operator", "set", "ben", "--role", "supervisor", "--data-dir", d)
    assert same.returncode == 0 and row(data, "ben")[6] == 1  # same role: no revocation


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "king"], "role: one of operator, supervisor, admin"),
        (["--capacity", "0"], "capacity: a whole number"),
        (["--capacity", "many"], "capacity: a whole number"),
        (["--capacity", "101"], "capacity: a whole number"),
        (["--levels", "4"], "levels: a non-empty list of 1, 2 or 3"),
        (["--levels", ""], "levels: a non-empty list"),
        (["--departments", "bad name!"], "departments: 'bad name!' is not a name"),
        (["--name", "   "], "name: 1-100 characters"),
        (["--name", "x" * 101], "name: 1-100 characters"),
        ([], "nothing to change"),
        # One bad value among good ones: nothing at all changes.
        (["--capacity", "4", "--role", "king"], "role: one of"),
    ],
)
def test_set_refuses_bad_values_and_changes_nothing(data, args, message):
    before = row(data, "ben")
    done = run("operator", "set", "ben", *args, "--data-dir", str(data))
    assert done.returncode == 2, done.stdout
    assert message in done.stderr
    assert row(data, "ben") == before


def test_set_unknown_operator(data):
    done = run("operator", "set", "nobody", "--capacity", "3", "--data-dir", str(data))
    assert done.returncode == 1 and "no operator 'nobody'" in done.stderr
