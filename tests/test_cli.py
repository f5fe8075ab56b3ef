"""The command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def test_operator_add_and_list(tmp_path):
    data = str(tmp_path)
    done = run(
        "operator",
        "add",
        "anna",
        "--password",
        "geheim1",
        "--name",
        "Anna Muster",
        "--role",
        "supervisor",
        "--department",
        "Billing",
        "--department",
        "technical",
        "--capacity",
        "3",
        "--level",
        "2",
        "--level",
        "3",
        "--data-dir",
        data,
    )
    assert done.returncode == 0, done.stderr
    assert "added operator anna" in done.stdout
    listed = run("operator", "list", "--data-dir", data)
    fields = listed.stdout.strip().split("\t")
    assert fields[1:] == [
        "anna", "Anna Muster", "supervisor", "billing,technical", "3", "2,3", "active"
    ]  # fmt: skip
    again = run("operator", "add", "anna", "--password", "geheim1", "--data-dir", data)
    assert again.returncode == 1 and "exists" in again.stderr


def test_operator_add_default_capacity_from_env(tmp_path):
    done = run(
        "operator",
        "add",
        "ben",
        "--password",
        "geheim1",
        "--data-dir",
        str(tmp_path),
        env={"CHATSERVER_DEFAULT_CAPACITY": "7"},
    )
    assert done.returncode == 0, done.stderr
    assert run("operator", "list", "--data-dir", str(tmp_path)).stdout.strip().endswith(
        "\t7\t1\tactive"
    )


def test_bad_arguments(tmp_path):
    assert (
        run(
            "operator",
            "add",
            "x",
            "--password",
            "geheim1",
            "--capacity",
            "0",
            "--data-dir",
            str(tmp_path),
        ).returncode
        == 2
    )
    assert (
        run("operator", "add", "x", "--password", "abc", "--data-dir", str(tmp_path)).returncode
        == 2
    )
    assert (
        run(
            "operator",
            "add",
            "x",
            "--password",
            "geheim1",
            "--role",
            "king",
            "--data-dir",
            str(tmp_path),
        ).returncode
        == 2
    )
    bad = run("serve", "--data-dir", str(tmp_path), env={"CHATSERVER_PORT": "eighty"})
    assert bad.returncode == 2 and "CHATSERVER_PORT" in bad.stderr
    assert run("frobnicate").returncode == 2


GOOD_MAIL = (
    "From: Hans <hans@kunde.ch>\r\nTo: support@desk.example\r\nSubject: Passwort\r\n"
    "Message-ID: <{id}@kunde.ch>\r\n\r\nIch komme nicht rein.\r\n"
)


def test_mail_ingest_takes_each_file_on_its_own(tmp_path):
    from tests.stored import connect_stored

    data = tmp_path / "data"
    good = tmp_path / "good.eml"
    good.write_text(GOOD_MAIL.format(id="one"))
    later = tmp_path / "later.eml"
    later.write_text(GOOD_MAIL.format(id="two").replace("Passwort", "Rechnung"))
    folder = tmp_path / "folder.eml"
    folder.mkdir()
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(b"\x00\x01\x02")
    huge = tmp_path / "huge.eml"
    huge.write_text(GOOD_MAIL.format(id="three") + "x" * 5000)
    missing = tmp_path / "missing.eml"
    done = run(
        "mail", "ingest", str(missing), str(good), str(folder), str(garbage), str(huge),
        str(later), "--data-dir", str(data),
        env={"CHATSERVER_MAX_MAIL_BYTES": "4096"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 4, errors
    assert errors[0].startswith(f"{missing}: failed: cannot read")
    assert errors[1].startswith(f"{folder}: failed: cannot read")
    assert errors[2].startswith(f"{garbage}: refused")
    assert errors[3].startswith(f"{huge}: failed: larger than 4096 bytes")
    assert f"{good}: created #100001" in done.stdout
    assert f"{later}: created #100002" in done.stdout
    conn = connect_stored(data / "chatserver.sqlite3")
    try:
        subjects = [r[0] for r in conn.execute("SELECT subject FROM tickets ORDER BY number")]
    finally:
        conn.close()
    assert subjects == ["Passwort", "Rechnung"]


def test_mail_ingest_all_good_exits_0(tmp_path):
    good = tmp_path / "good.eml"
    good.write_text(GOOD_MAIL.format(id="one"))
    done = run("mail", "ingest", str(good), "--data-dir", str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "good.eml: created #100001" in done.stdout
