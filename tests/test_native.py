"""When the compiled (mypyc) hot path is used, and when the pure-Python one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import chatserver
import chatserver.connection
import chatserver.hub
import chatserver.protocol
from chatserver import native

EXT = native.interpreter_tag()


def make_build(tmp_path: Path) -> tuple[Path, Path]:
    """A package of two modules and a build of one of them that matches it."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "fast.py").write_text("X = 1\n")
    (package / "sub" / "slow.py").write_text("Y = 2\n")
    build = tmp_path / "build"
    build.mkdir()
    (build / f"fast{EXT}").write_bytes(b"\x7fELF")
    manifest = {"interpreter": EXT, "sources": native.source_digest(package),
                "modules": ["fast"], "mypyc": "test"}
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    return package, build


@pytest.fixture(autouse=True)
def _native_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATSERVER_NATIVE", raising=False)
    # activate() records its verdict: keep this process's own.
    monkeypatch.setattr(native, "status", native.status)


def test_a_matching_build_is_used(tmp_path: Path) -> None:
    package, build = make_build(tmp_path)
    assert native.check(package, build) == "compiled: fast (mypyc test)"
    path = [str(package)]
    assert native.activate(path, package, build).startswith("compiled")
    assert path == [str(build), str(package)]
    native.activate(path, package, build)
    assert path == [str(build), str(package)], "activated twice: listed once"


@pytest.mark.parametrize("edit", ["change", "add", "remove", "rename"])
def test_any_source_edit_makes_the_build_stale(tmp_path: Path, edit: str) -> None:
    package, build = make_build(tmp_path)
    slow = package / "sub" / "slow.py"
    if edit == "change":
        slow.write_text("Y = 3\n")
    elif edit == "add":
        (package / "new.py").write_text("")
    elif edit == "remove":
        slow.unlink()
    else:
        slow.rename(package / "sub" / "slower.py")
    path = [str(package)]
    status = native.activate(path, package, build)
    assert status == "pure Python: the sources changed since the build (make rebuilds it)"
    assert path == [str(package)]


def test_files_that_are_not_sources_do_not_count(tmp_path: Path) -> None:
    package, build = make_build(tmp_path)
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "fast.cpython-311.pyc").write_bytes(b"x")
    (package / "defaults.toml").write_text("a = 1\n")
    assert native.check(package, build).startswith("compiled")


def test_no_build_another_interpreter_or_a_missing_module(tmp_path: Path) -> None:
    package, build = make_build(tmp_path)
    assert native.check(package, tmp_path / "nowhere").startswith("pure Python: no compiled")
    (build / f"fast{EXT}").unlink()
    assert native.check(package, build) == "pure Python: the build is incomplete"
    manifest = json.loads((build / native.MANIFEST).read_text())
    manifest["interpreter"] = ".cpython-312-x86_64-linux-gnu.so"
    (build / native.MANIFEST).write_text(json.dumps(manifest))
    assert "the build is for '.cpython-312" in native.check(package, build)


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_an_unreadable_manifest_means_pure_python(tmp_path: Path, content: bytes) -> None:
    package, build = make_build(tmp_path)
    (build / native.MANIFEST).write_bytes(content)
    path = [str(package)]
    assert native.activate(path, package, build).startswith("pure Python: unreadable")
    assert path == [str(package)]


def test_the_environment_can_turn_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package, build = make_build(tmp_path)
    monkeypatch.setenv("CHATSERVER_NATIVE", "0")
    assert native.check(package, build) == "pure Python: CHATSERVER_NATIVE=0"


def test_this_process_runs_what_the_status_says() -> None:
    """The package's own verdict and the modules actually imported agree."""
    modules = (chatserver.protocol, chatserver.connection, chatserver.hub)
    files = [str(m.__file__) for m in modules]
    if native.status.startswith("compiled"):
        assert all(f.endswith(EXT) and f.startswith(str(native.NATIVE_DIR)) for f in files)
    else:
        assert all(f.endswith(".py") for f in files), files
    if os.environ.get("CHATSERVER_REQUIRE_NATIVE") == "1":
        # CI (.ci/run) builds the hot path and asks that the suite run against it.
        assert native.status.startswith("compiled"), native.status


def test_a_process_told_not_to_runs_the_sources() -> None:
    code = ("import chatserver.hub, chatserver.native as n; "
            "print(chatserver.hub.__file__); print(n.status)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "CHATSERVER_NATIVE": "0"}).stdout
    hub_file, status = out.splitlines()
    assert hub_file.endswith("hub.py")
    assert status == "pure Python: CHATSERVER_NATIVE=0"


def test_the_cli_says_what_a_new_process_would_run() -> None:
    cli = [sys.executable, "-m", "chatserver", "native"]
    out = subprocess.run([*cli, "status"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == native.check()
    off = subprocess.run([*cli, "status"], capture_output=True, text=True, check=True,
                         env={**os.environ, "CHATSERVER_NATIVE": "0"})
    assert off.stdout.strip() == "pure Python: CHATSERVER_NATIVE=0"
    bad = subprocess.run([*cli, "compile"], capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
