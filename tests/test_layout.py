"""The package's layout keeps its promises: layers, no cycles, no reaching into privates.

The import graph is read from the source with :mod:`ast` (every import counts, also
those inside functions and under ``TYPE_CHECKING``), so a cycle or a layer breach fails
here before it confuses a reader. The layers, top to bottom:

- entry points: ``chatserver.web``, ``chatserver.cli``, ``chatserver.__main__``
- services (the I/O shells of each feature): ``chat`` (the hub), ``supervision``,
  ``tickets``, ``mail``
- backends and transport: ``store``, ``presence``, ``bus``, ``tickets.store``,
  ``attachments``, ``transport``
- the pure core (no I/O at all): see :data:`PURE`
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "chatserver"

# Modules that decide without touching a socket, a file or a clock of their own.
PURE = {
    "chatserver.types",
    "chatserver.errors",
    "chatserver.protocol",
    "chatserver.chat.routing",
    "chatserver.chat.sessions",
    "chatserver.supervision.board",
    "chatserver.tickets.model",
    "chatserver.audit.chain",
    "chatserver.service_levels.calendar",
    "chatserver.service_levels.clocks",
    "chatserver.service_levels.billing",
    "chatserver.tickets.fields",
    "chatserver.mail.model",
    "chatserver.mail.sanitize",
    "chatserver.mail.headers8bit",
    "chatserver.mail.parse",
    "chatserver.mail.html_text",
    "chatserver.mail.quoted_reply",
    "chatserver.mail.compose",
    "chatserver.i18n.languages",
    "chatserver.i18n.legacy",
    "chatserver.service_levels.names",
    "chatserver.kb.model",
}
# Libraries that do I/O (or exist to): a pure module imports none of them.
IO_LIBRARIES = {
    "asyncio", "socket", "sqlite3", "aiosqlite", "redis", "websockets", "starlette",
    "uvicorn", "httpx", "aiosmtplib", "aiosmtpd", "smtplib", "subprocess", "mmap",
    "fcntl", "shutil", "psycopg", "asyncpg", "concurrent", "threading", "urllib",
}  # fmt: skip
ENTRY_POINTS = ("chatserver.web", "chatserver.cli", "chatserver.__main__")
# Each feature package's I/O shell (its pure modules are in PURE, its storage a backend).
SERVICES = (
    "chatserver.chat",
    "chatserver.supervision",
    "chatserver.tickets",
    "chatserver.mail",
    "chatserver.kb",
)
BACKENDS = (
    "chatserver.store",
    "chatserver.presence",
    "chatserver.bus",
    "chatserver.tickets.store",
    "chatserver.attachments",
    "chatserver.transport",
    "chatserver.limits",
    "chatserver.kb.store",
)
MAX_LINES = 800


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(importer: str, node: ast.ImportFrom) -> str:
    """The absolute module an ``ImportFrom`` names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    is_package = MODULES[importer].name == "__init__.py"
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(name: str) -> Iterator[tuple[str, list[str], int]]:
    """(module imported, names taken from it, line) for every import in ``name``."""
    tree = ast.parse(MODULES[name].read_text(), filename=str(MODULES[name]))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            module = resolve(name, node)
            names = [alias.name for alias in node.names]
            # ``from chatserver.chat import routing`` imports the module routing.
            for imported in names:
                if f"{module}.{imported}" in MODULES:
                    yield f"{module}.{imported}", [], node.lineno
                    names = [n for n in names if n != imported]
            yield module, names, node.lineno


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name in MODULES:
        targets = edges.setdefault(name, set())
        for module, _names, _line in imports_of(name):
            if module in MODULES and module != name:
                targets.add(module)
    return edges


def within(name: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``a -> b -> ... -> a``, or ``None``."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            # A package's __init__ importing its own submodules is not a cycle of ours.
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_is_read() -> None:
    """The checks below see real edges (a broken reader would pass them all)."""
    edges = graph()
    assert "chatserver.chat.routing" in edges["chatserver.presence.base"]
    assert "chatserver.chat.hub" in edges["chatserver.web.app"]
    assert len(MODULES) > 40


def test_find_cycle_finds_one() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(edges) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_imports_another_modules_private_names() -> None:
    breaches = []
    for name in MODULES:
        for module, names, line in imports_of(name):
            if not module.startswith("chatserver") or module == name:
                continue
            for imported in names:
                if imported.startswith("_") and not imported.startswith("__"):
                    breaches.append(f"{name}:{line} imports {module}.{imported}")
            if module.rsplit(".", 1)[-1].startswith("_") and module != "chatserver.__main__":
                breaches.append(f"{name}:{line} imports private module {module}")
    assert not breaches, "\n".join(breaches)


def test_no_module_reads_another_modules_private_attributes() -> None:
    """``module._name`` on an imported chatserver module, e.g. ``routing._order``."""
    breaches = []
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        aliases = {
            (alias.asname or alias.name)
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and resolve(name, node).startswith("chatserver")
            for alias in node.names
            if f"{resolve(name, node)}.{alias.name}" in MODULES
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                breaches.append(f"{name}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not breaches, "\n".join(breaches)


@pytest.mark.parametrize("name", sorted(PURE))
def test_pure_modules_do_no_io(name: str) -> None:
    """A pure module imports only pure modules and no I/O library."""
    assert name in MODULES, f"{name} is listed as pure but does not exist"
    breaches = []
    for module, _names, line in imports_of(name):
        top = module.split(".")[0]
        if top in IO_LIBRARIES:
            breaches.append(f"line {line}: imports {module} (I/O)")
        elif top == "chatserver" and module in MODULES and module not in PURE:
            if module != "chatserver":  # the package itself (its __version__)
                breaches.append(f"line {line}: imports {module} (not pure)")
    assert not breaches, f"{name}:\n" + "\n".join(breaches)


@pytest.mark.parametrize(
    ("lower", "upper", "why"),
    [
        (BACKENDS, SERVICES + ENTRY_POINTS, "a backend serves the features, not the reverse"),
        (SERVICES, ENTRY_POINTS, "services do not know the HTTP app or the CLI"),
        (("chatserver.chat",), ("chatserver.tickets", "chatserver.mail"),
         "the hub does not depend on tickets or mail"),
    ],
)  # fmt: skip
def test_layers_import_only_downwards(
    lower: tuple[str, ...], upper: tuple[str, ...], why: str
) -> None:
    breaches = [
        f"{name} imports {target}"
        for name, targets in graph().items()
        if within(name, lower)
        for target in targets
        if within(target, upper) and not within(target, lower) and target not in PURE
    ]
    assert not breaches, why + ":\n" + "\n".join(breaches)


def _long_files() -> Iterator[tuple[Path, str]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, "module docstring"
    for folder in ("widget", "operator_console"):
        for path in sorted((ROOT / folder).rglob("*.js")):
            # Not our source: the build tool (make widget) and its one-line output.
            if {"node_modules", "dist"}.isdisjoint(path.relative_to(ROOT / folder).parts):
                yield path, "header comment"


@pytest.mark.parametrize(
    ("path", "where"), list(_long_files()), ids=lambda v: str(v).replace(str(ROOT) + "/", "")
)
def test_no_file_over_800_lines_without_saying_why(path: Path, where: str) -> None:
    """A file over the limit says why in its first lines ("Longer than 800 lines: ...")."""
    text = path.read_text()
    lines = text.count("\n")
    if lines <= MAX_LINES:
        return
    head = "\n".join(text.splitlines()[:40])
    assert re.search(r"Longer than 800 lines: \S", head), (
        f"{path.relative_to(ROOT)} has {lines} lines; split it, or say why in its {where}"
        " ('Longer than 800 lines: ...')"
    )
