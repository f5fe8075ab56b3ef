"""The command line, run as a user would."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "chatserver", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
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
    assert fields[1:] == ["anna", "Anna Muster", "supervisor", "billing,technical", "3", "2,3"]
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
    assert run("operator", "list", "--data-dir", str(tmp_path)).stdout.strip().endswith("\t7\t1")


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
