"""Compiled builds of the hot-path modules, and when they are used.

``make`` (``chatserver native build``) compiles :data:`COMPILED`
with mypyc into ``build/native/chatserver/`` beside the package, when a C
compiler and the Python headers are present. At import, ``chatserver`` calls
:func:`activate`, which puts that directory ahead of the package's own on
``chatserver.__path__`` only when the build's manifest matches this
interpreter and the sha256 of every source file of the package as it is now.
Otherwise (no build, a source edited since, another Python, or
``CHATSERVER_NATIVE=0``) the pure-Python modules run; :data:`status` says
which and why. The compiled modules behave as their sources: the whole test
suite runs against either.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import MutableSequence
from pathlib import Path

COMPILED = ("protocol", "connection", "hub")
"""Modules compiled by the build, relative to the package."""

PACKAGE_DIR = Path(__file__).resolve().parent
NATIVE_DIR = PACKAGE_DIR.parent / "build" / "native" / "chatserver"
MANIFEST = "manifest.json"

status = "pure Python: not activated"
"""What :func:`activate` decided: ``"compiled: ..."`` or ``"pure Python: <why>"``."""


def source_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """sha256 over the names and contents of every ``.py`` file of the package.

    mypyc compiles a module against the types of everything it imports, so
    any edit anywhere in the package makes a build stale."""
    digest = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        digest.update(path.relative_to(package_dir).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def interpreter_tag() -> str:
    """The interpreter a build is for: its extension-module suffix."""
    return str(sysconfig.get_config_var("EXT_SUFFIX"))


def check(package_dir: Path = PACKAGE_DIR, native_dir: Path = NATIVE_DIR) -> str:
    """Whether the build in ``native_dir`` may stand in for ``package_dir``'s
    sources: ``"compiled: ..."`` or ``"pure Python: <reason>"``."""
    if os.environ.get("CHATSERVER_NATIVE", "1") == "0":
        return "pure Python: CHATSERVER_NATIVE=0"
    try:
        manifest = json.loads((native_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        return "pure Python: no compiled build (make builds one where a C compiler is present)"
    except (OSError, ValueError) as exc:
        return f"pure Python: unreadable build manifest ({exc})"
    if not isinstance(manifest, dict):
        return "pure Python: unreadable build manifest"
    if manifest.get("interpreter") != interpreter_tag():
        return (f"pure Python: the build is for {manifest.get('interpreter')!r}, "
                f"this interpreter is {interpreter_tag()!r}")
    if manifest.get("sources") != source_digest(package_dir):
        return "pure Python: the sources changed since the build (make rebuilds it)"
    modules = manifest.get("modules")
    if not isinstance(modules, list) or not all(
        (native_dir / f"{name}{interpreter_tag()}").is_file() for name in modules
    ):
        return "pure Python: the build is incomplete"
    return f"compiled: {', '.join(modules)} (mypyc {manifest.get('mypyc', '?')})"


def activate(
    package_path: MutableSequence[str],
    package_dir: Path = PACKAGE_DIR,
    native_dir: Path = NATIVE_DIR,
) -> str:
    """Put the compiled build first on ``package_path`` (the package's
    ``__path__``) if :func:`check` allows it; returns and records the verdict."""
    global status
    status = check(package_dir, native_dir)
    if status.startswith("compiled") and str(native_dir) not in package_path:
        package_path.insert(0, str(native_dir))
    return status


def build(root: Path = PACKAGE_DIR.parent, jobs: int = 2) -> Path:
    """Compile :data:`COMPILED` with mypyc into ``root/build/native``.

    The old build is removed first and the manifest is written last, so a
    failed build leaves none that :func:`check` would accept. The compiler's
    output goes to ``root/build/native.log``. Raises
    ``subprocess.CalledProcessError`` when mypy or the compiler fails."""
    package_dir = root / "chatserver"
    native_dir = root / "build" / "native" / "chatserver"
    shutil.rmtree(native_dir, ignore_errors=True)
    native_dir.parent.mkdir(parents=True, exist_ok=True)
    digest = source_digest(package_dir)
    with tempfile.TemporaryDirectory(prefix="chatserver-native-") as tmp:
        # mypy's settings for the compile: the sources are typed already (CI
        # runs mypy --strict); msgpack ships no type hints.
        config = Path(tmp) / "mypy.ini"
        config.write_text("[mypy]\npython_version = 3.11\n\n"
                          "[mypy-msgpack,msgpack.*]\nignore_missing_imports = True\n")
        script = Path(tmp) / "setup.py"
        script.write_text(
            "import sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            "paths = sys.argv[1:]\n"
            "sys.argv[1:] = ['build_ext', '--build-lib', paths.pop(0), '--build-temp', "
            "'tmp', '--parallel', paths.pop(0)]\n"
            "setup(name='chatserver-native', py_modules=[],\n"
            "      ext_modules=mypycify(['--config-file', paths.pop(0), *paths],\n"
            "                           opt_level='3', separate=True, target_dir='c'))\n"
        )
        sources = [str(package_dir / f"{name}.py") for name in COMPILED]
        # Run in the temp directory, so that setuptools reads no pyproject.toml
        # and mypyc's generated C stays out of the tree.
        log_path = root / "build" / "native.log"
        with log_path.open("wb") as log:
            subprocess.run(
                [sys.executable, str(script), str(root / "build" / "native"), str(jobs),
                 str(config), *sources],
                cwd=tmp, check=True, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(root)},
            )
    import mypy.version

    manifest = {
        "interpreter": interpreter_tag(),
        "sources": digest,
        "modules": list(COMPILED),
        "mypyc": mypy.version.__version__,
    }
    (native_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return native_dir
