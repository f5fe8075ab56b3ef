"""Install as a user would: build the sdist and the wheel, install the wheel into a fresh
venv, and run ``chatserver serve`` from there, outside the checkout.

The wheel must carry the widget, the operator console (subfolders included) and every
data file of the package (setup.py): the installed server reads nothing from the
checkout. The sdist must carry them too, at their checkout paths (the wheel is built
from it, as pip does). The build runs without build isolation, so it needs neither the
network nor more than the ``[test]`` extra (``build``, ``setuptools``). The fresh venv
reuses this venv's installed dependencies through a ``.pth`` file, added after the wheel
is installed; the ``chatserver`` package itself comes from the wheel only.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from chatserver.web.app import minified_widget
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
ASSETS = {"widget": "chatserver/web/widget", "operator_console": "chatserver/web/operator_console"}
# Local state of a checkout (relative paths), no part of a release: not copied.
LOCAL_STATE = {
    ".git", ".venv", "venv", "build", "dist", "data", "mutants", "bench/results",
    "node_modules", "widget/node_modules",
}  # fmt: skip
CACHES = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.egg-info", ".mypy_cache", ".ruff_cache", ".pytest_cache",
    ".hypothesis",
)  # fmt: skip


def _run(argv: list[str], cwd: Path, timeout: float = 60) -> str:
    done = subprocess.run(
        argv, cwd=cwd, env=outside_env(), capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def outside_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: ours) without what could point Python at the checkout."""
    env = dict(os.environ if env is None else env)
    for name in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV"):
        env.pop(name, None)
    return env


def files_under(top: Path) -> Iterator[str]:
    """Paths (relative, POSIX) of the files a release ships from ``top``: no caches, no
    hidden files (``.gitkeep``, ``.DS_Store``)."""
    for path in sorted(top.rglob("*")):
        rel = path.relative_to(top)
        if path.is_file() and not any(
            part.startswith(".") or part == "__pycache__" or part.endswith(".pyc")
            for part in rel.parts
        ):
            yield rel.as_posix()


def snapshot(dest: Path) -> Path:
    """A copy of the checkout without local state: what is built and what the checks
    expect stay the same while someone edits the checkout, and nothing is written there."""

    def ignore(folder: str, names: list[str]) -> set[str]:
        here = Path(folder).relative_to(ROOT)
        local = {name for name in names if (here / name).as_posix() in LOCAL_STATE}
        return {*CACHES(folder, names), *local}

    shutil.copytree(ROOT, dest, ignore=ignore)
    return dest


def fresh_venv(venv: Path, wheel: Path) -> Path:
    """A venv with ``wheel`` installed, then our dependencies on its path; its site-packages."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], venv.parent)
    python = str(venv / "bin" / "python")
    pip = [sys.executable, "-m", "pip", "--python", python, "--disable-pip-version-check"]
    _run([*pip, "install", "--no-deps", "--no-index", "--no-compile", str(wheel)], venv.parent)
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([python, "-c", where], venv.parent).strip())
    # After the install, or pip would see this venv's (editable) chatserver there too.
    ours = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    (site / "zz_test_dependencies.pth").write_text("".join(f"{path}\n" for path in ours))
    return site


class InstalledServer(ServerProcess):
    """``chatserver serve`` started by another venv's console script, outside the checkout."""

    def __init__(self, venv: Path, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.venv = venv

    def _spawn(self, log: Any) -> subprocess.Popen[bytes]:
        argv = [str(self.venv / "bin" / "chatserver"), "serve", "--port", str(self.port)]
        return subprocess.Popen(
            [*argv, "--data-dir", str(self.data_dir)],
            env=outside_env(self.env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )


def test_wheel_installed_outside_the_checkout_serves_widget_and_console(tmp_path: Path) -> None:
    src = snapshot(tmp_path / "src")
    dist = tmp_path / "dist"
    # sdist, then the wheel from the unpacked sdist (as pip installs an sdist).
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)]
    _run(build, tmp_path, timeout=90)
    (sdist,) = dist.glob("chatserver-*.tar.gz")
    (wheel,) = dist.glob("chatserver-*.whl")

    # --- what the archives carry
    package = [f"chatserver/{rel}" for rel in files_under(src / "chatserver")]
    assets = {top: list(files_under(src / top)) for top in ASSETS}
    assert "widget.js" in assets["widget"] and "index.html" in assets["operator_console"]
    with zipfile.ZipFile(wheel) as zf:
        in_wheel = set(zf.namelist())
    expected = {*package, *(f"{ASSETS[top]}/{rel}" for top, rels in assets.items() for rel in rels)}
    assert expected - in_wheel == set(), "the wheel lacks these (setup.py: package_data)"
    assert "chatserver/service_levels/sla_default.toml" in in_wheel
    # The server's gettext catalogs (compiled in memory at run time, docs/i18n.md).
    for lang in ("de", "fr", "it", "en"):
        assert f"chatserver/i18n/locale/{lang}/LC_MESSAGES/chatserver.po" in in_wheel
    stray = {n for n in in_wheel if not n.startswith(("chatserver/", "chatserver-"))}
    assert stray == set(), "the wheel installs these outside the package"

    with tarfile.open(sdist) as tf:
        in_sdist = {name.split("/", 1)[1] for name in tf.getnames() if "/" in name}
    expected = {
        "pyproject.toml", "setup.py", "README.md", *package,
        *(f"{top}/{rel}" for top, rels in assets.items() for rel in rels),
    }  # fmt: skip
    assert expected - in_sdist == set(), "the sdist lacks these"

    # --- the wheel in a fresh venv: the package and its files come from there
    venv = tmp_path / "venv"
    site = fresh_venv(venv, wheel)
    where = json.loads(
        _run(
            [str(venv / "bin" / "python"), "-c", "import json, chatserver.web.app as app; "
             "from chatserver.service_levels import billing, calendar; print(json.dumps(["
             "app.__file__, str(app.WIDGET_DIR), str(app.CONSOLE_DIR),"
             "str(calendar.DEFAULT_CONFIG_PATH), str(billing.DEFAULT_CONFIG_PATH)]))"],
            tmp_path,
        )
    )  # fmt: skip
    for path in map(Path, where):
        assert path.resolve().is_relative_to(site.resolve()), f"{path} is not from the wheel"
        assert path.exists(), path
    # Notices and mails render from the wheel's catalogs.
    rendered = _run(
        [str(venv / "bin" / "python"), "-c", "from chatserver.i18n import render_notice as r; "
         "from chatserver.i18n.catalogs import catalog_path as c; "
         "print(c('de')); print(r('chat_closed', {}, 'de'))"],
        tmp_path,
    ).splitlines()  # fmt: skip
    assert Path(rendered[0]).resolve().is_relative_to(site.resolve()), rendered
    assert rendered[1] == "Der Chat wurde geschlossen."

    # --- serve from the fresh venv, outside the checkout
    server = InstalledServer(venv, tmp_path / "data")
    server.start(timeout=30)
    try:
        with httpx.Client(base_url=server.http_url, timeout=10) as http:
            assert http.get("/healthz").status_code == 200

            demo = http.get("/")
            assert demo.status_code == 200
            assert demo.content == (src / "widget" / "demo.html").read_bytes()

            widget = http.get("/widget.js")
            assert widget.status_code == 200
            assert widget.content == minified_widget(src / "widget" / "widget.js")[0]

            console = http.get("/console/")
            assert console.status_code == 200
            index = (src / "operator_console" / "index.html").read_bytes()
            # As in the checkout, with ?v=<version> on what it references.
            assert re.sub(rb"\?v=[0-9a-f]{12}", b"", console.content) == index
            # What index.html loads (one file per <script src> and stylesheet at least),
            # then every file of the console, js/** included, byte for byte.
            refs = re.findall(r'(?:src|href)="([^":#?]+\.(?:js|css))"', index.decode())
            assert any(r.endswith(".js") for r in refs) and any(r.endswith(".css") for r in refs)
            for rel in dict.fromkeys([*refs, *assets["operator_console"]]):
                got = http.get(f"/console/{rel.removeprefix('./')}")
                assert got.status_code == 200, rel
                content = got.content
                if rel.endswith(".html"):
                    content = re.sub(rb"\?v=[0-9a-f]{12}", b"", content)
                assert content == (src / "operator_console" / rel).read_bytes(), rel
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-5000:]

    # The billing defaults, read by the installed CLI.
    report = _run(
        [str(venv / "bin" / "chatserver"), "report", "billing", "--month", "2026-01",
         "--data-dir", str(server.data_dir)],
        tmp_path,
    )  # fmt: skip
    assert "2026-01" in report
