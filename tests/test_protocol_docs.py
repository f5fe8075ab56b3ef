"""docs/protocol.md against the wire: what the server speaks must be documented.

The truth is taken from the code and from a real server, never from a list kept here:

- client → server frames and their fields: the schemas in :mod:`chatserver.protocol`
  (``VISITOR_FRAMES``, ``OPERATOR_FRAMES``) and which of them only supervisors may send
  (``SUPERVISOR_FRAMES``);
- server → client frames and their fields: every frame the clients of a scripted
  session over a real ``chatserver serve`` receive, per endpoint; and every frame type
  (with the keys of its dict literal) written as ``{"type": "..."}`` in chatserver/;
- error codes: the :class:`~chatserver.errors.ChatError` tree;
- close codes: the tree's close codes, the ``CLOSE_*`` constants and every number
  passed to a ``close``/``close_all`` call in chatserver/.

A frame missing from its table, a field missing from its frame's row, an error code
or close code missing from theirs fails, and so does a table row whose cell count
differs from its header (a ``|`` in a cell splits it, as in GitHub's tables).
"""

from __future__ import annotations

import ast
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from chatserver import errors
from chatserver.client import ClientError, OperatorClient, VisitorClient
from chatserver.operators.auth import sign_identity
from chatserver.protocol import OPERATOR_FRAMES, VISITOR_FRAMES
from chatserver.supervision.service import SUPERVISOR_FRAMES
from tests.conftest import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "protocol.md"
PACKAGE = ROOT / "chatserver"

Frame = dict[str, Any]


# ------------------------------------------------------------------ markdown
@dataclass
class Table:
    line: int  # of the header row, 1-based
    headings: tuple[str, ...]  # the heading path above it
    caption: str  # the last paragraph between the heading and the table
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line, cells)

    def under(self, *words: str) -> bool:
        """Whether each of ``words`` starts one heading of the path, in order."""
        path = iter(self.headings)
        return all(any(h.startswith(w) for h in path) for w in words)


_DELIMITER_CELL = re.compile(r"^:?-{3,}:?$")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def split_row(line: str) -> list[str]:
    """The cells of a table row: split on ``|`` unless escaped (``\\|``), as GitHub does
    (a ``|`` inside backticks splits too); outer pipes optional."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|") and not body.endswith("\\|"):
        body = body[:-1]
    return [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", body)]


def is_delimiter(line: str) -> bool:
    cells = split_row(line)
    return "|" in line and all(_DELIMITER_CELL.match(c.replace(" ", "")) for c in cells)


def parse_tables(text: str) -> list[Table]:
    """Every pipe table outside code fences, with the headings it sits under."""
    lines = text.splitlines()
    tables: list[Table] = []
    headings: list[tuple[int, str]] = []
    caption = ""
    in_fence = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        elif in_fence:
            pass
        elif m := _HEADING.match(line):
            level = len(m.group(1))
            while headings and headings[-1][0] >= level:
                headings.pop()
            headings.append((level, m.group(2)))
            caption = ""
        elif "|" in line and i + 1 < len(lines) and is_delimiter(lines[i + 1]):
            header = split_row(line)
            delimiter = split_row(lines[i + 1])
            rows: list[tuple[int, list[str]]] = [(i + 2, delimiter)]
            j = i + 2
            while j < len(lines) and lines[j].strip().startswith("|"):
                rows.append((j + 1, split_row(lines[j])))
                j += 1
            tables.append(Table(i + 1, tuple(h for _, h in headings), caption, header, rows[1:]))
            tables[-1].rows.insert(0, rows[0])  # the delimiter row is checked too
            caption = ""
            i = j
            continue
        elif line.strip():
            # Lines of one paragraph join; a blank line starts the next one.
            joined = i > 0 and lines[i - 1].strip() and not _HEADING.match(lines[i - 1])
            caption = f"{caption} {line.strip()}" if joined and caption else line.strip()
        i += 1
    return tables


def code_spans(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


@dataclass
class Rows:
    """Frame type → the names in backticks of its row's fields cell (``?`` dropped)."""

    fields: dict[str, set[str]] = field(default_factory=dict)

    def add(self, kinds: Iterable[str], names: Iterable[str]) -> None:
        for kind in kinds:
            self.fields.setdefault(kind, set()).update(n.rstrip("?") for n in names)


def doc_tables() -> list[Table]:
    return parse_tables(DOC.read_text(encoding="utf-8"))


def frame_tables(endpoint: str, direction: str) -> list[Table]:
    found = [
        t
        for t in doc_tables()
        if t.under(endpoint, direction) and t.header and t.header[0].lower() == "frame"
    ]
    assert found, f"docs/protocol.md has no frame table under {endpoint!r} / {direction!r}"
    return found


def frame_rows(tables: Iterable[Table], resolve: Rows | None = None) -> Rows:
    """The documented frames of ``tables``. A row whose fields are "as for visitors"
    takes each frame's fields from ``resolve`` (the visitor's table)."""
    out = Rows()
    for table in tables:
        for _, cells in table.rows[1:]:
            if len(cells) < 2:
                continue
            kinds = code_spans(cells[0])
            if resolve is not None and "as for visitors" in cells[1].lower():
                for kind in kinds:
                    out.add([kind], resolve.fields.get(kind, set()))
            else:
                out.add(kinds, code_spans(cells[1]))
    return out


def visitor_server_rows() -> Rows:
    return frame_rows(frame_tables("Visitor endpoint", "Server → client"))


def operator_server_rows() -> Rows:
    return frame_rows(frame_tables("Operator endpoint", "Server → client"), visitor_server_rows())


def first_column(heading: str) -> list[str]:
    """The first cells of the table(s) under the ``## heading`` section."""
    out: list[str] = []
    for table in doc_tables():
        if table.headings and table.headings[-1] == heading:
            out += [cells[0] for _, cells in table.rows[1:] if cells]
    assert out, f"docs/protocol.md has no table under '## {heading}'"
    return out


def missing_fields(documented: Rows, observed: dict[str, set[str]], where: str) -> list[str]:
    problems = []
    for kind, names in sorted(observed.items()):
        if kind not in documented.fields:
            problems.append(f"{where}: frame `{kind}` is not documented")
            continue
        for name in sorted(names - {"type"} - documented.fields[kind]):
            problems.append(f"{where}: `{kind}` lacks field `{name}`")
    return problems


# --------------------------------------------------------------- the tables
def test_every_table_row_has_as_many_cells_as_its_header() -> None:
    tables = doc_tables()
    assert len(tables) >= 9, "the table parser found too few tables"
    problems = [
        f"docs/protocol.md:{line}: {len(cells)} cells, the header (line {table.line}) "
        f"has {len(table.header)}"
        for table in tables
        for line, cells in table.rows
        if len(cells) != len(table.header)
    ]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------- client → server
def schema_fields(schemas: dict[str, Any], kinds: Iterable[str]) -> dict[str, set[str]]:
    return {kind: set(schemas[kind]) for kind in kinds}


def test_visitor_frames_match_the_schemas() -> None:
    documented = frame_rows(frame_tables("Visitor endpoint", "Client → server"))
    problems = missing_fields(
        documented, schema_fields(VISITOR_FRAMES, VISITOR_FRAMES), "visitor → server"
    )
    problems += [
        f"visitor → server: `{kind}` is documented but no schema accepts it"
        for kind in sorted(set(documented.fields) - set(VISITOR_FRAMES))
    ]
    assert not problems, "\n".join(problems)


def test_operator_and_supervisor_frames_match_the_schemas() -> None:
    tables = frame_tables("Operator endpoint", "Client → server")
    supervisor_tables = [t for t in tables if "supervisor frames" in t.caption.lower()]
    assert len(supervisor_tables) == 1, "one table of supervisor frames, after its caption"
    operator = frame_rows(t for t in tables if t not in supervisor_tables)
    supervisor = frame_rows(supervisor_tables)
    assert SUPERVISOR_FRAMES <= set(OPERATOR_FRAMES)
    plain = set(OPERATOR_FRAMES) - SUPERVISOR_FRAMES
    problems = missing_fields(
        operator, schema_fields(OPERATOR_FRAMES, plain), "operator → server"
    ) + missing_fields(
        supervisor, schema_fields(OPERATOR_FRAMES, SUPERVISOR_FRAMES), "supervisor → server"
    )
    problems += [
        f"operator → server: `{kind}` is documented but no schema accepts it"
        for kind in sorted(set(operator.fields) - plain)
    ]
    problems += [
        f"supervisor → server: `{kind}` is documented but is no supervisor frame"
        for kind in sorted(set(supervisor.fields) - SUPERVISOR_FRAMES)
    ]
    assert not problems, "\n".join(problems)


# ------------------------------------------------ server → client, in the code
def python_files() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "client.py" and path.parent == PACKAGE:
            continue  # the Python client: frames it sends, not the server
        yield path, ast.parse(path.read_text(encoding="utf-8"), str(path))


def frame_literals() -> dict[str, set[str]]:
    """Every ``{"type": "<name>", ...}`` dict literal in chatserver/ that is a frame:
    name → the literal's other string keys (``**`` spreads add none)."""
    found: dict[str, set[str]] = {}
    for _, tree in python_files():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Dict):
                continue
            pairs = {
                k.value: v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant) and isinstance(k.value, str)
            }
            value = pairs.get("type")
            if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                continue
            name = value.value
            if "." in name:
                continue  # ASGI messages ("websocket.send")
            if set(pairs) == {"type", "id", "name"}:
                continue  # a ticket event's actor ({"type": "customer", "id", "name"})
            found.setdefault(name, set()).update(pairs)
    return found


def test_frame_types_in_the_code_are_documented() -> None:
    literals = frame_literals()
    # The scan sees the frames (a broken scan must not pass by finding nothing).
    assert {"welcome", "message", "board_patch", "rated", "pong"} <= set(literals)
    visitor, operator = visitor_server_rows(), operator_server_rows()
    problems = []
    for kind, keys in sorted(literals.items()):
        rows = [r.fields[kind] for r in (visitor, operator) if kind in r.fields]
        if not rows:
            problems.append(f"server → client: frame `{kind}` is not documented")
            continue
        documented = set().union(*rows)
        problems += [
            f"server → client: `{kind}` lacks field `{key}` (chatserver/ builds it)"
            for key in sorted(keys - {"type"} - documented)
        ]
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------ errors, closes
def chat_errors() -> list[type[errors.ChatError]]:
    out: list[type[errors.ChatError]] = []
    todo = [errors.ChatError]
    while todo:
        cls = todo.pop()
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def test_every_error_code_is_documented() -> None:
    codes = {cls.code for cls in chat_errors() if cls is not errors.ChatError}
    assert {"bad_frame", "unauthorized", "rate_limited"} <= codes
    documented = {s for cell in first_column("Errors (`error.code`)") for s in code_spans(cell)}
    problems = [f"error code `{c}` is not documented" for c in sorted(codes - documented)]
    problems += [
        f"error code `{c}` is documented but not in chatserver.errors"
        for c in sorted(documented - codes)
    ]
    assert not problems, "\n".join(problems)


def close_codes_in_the_code() -> dict[int, str]:
    """Close code → where it comes from."""
    found: dict[int, str] = {}
    for cls in chat_errors():
        if cls.close_code is not None:
            found.setdefault(cls.close_code, f"errors.{cls.__name__}.close_code")
    for path, tree in python_files():
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if (
                        isinstance(target, ast.Name)
                        and target.id.startswith("CLOSE_")
                        and isinstance(node.value.value, int)
                    ):
                        found.setdefault(node.value.value, f"{where}: {target.id}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("close", "close_all")
            ):
                args = [*node.args[:1], *(k.value for k in node.keywords if k.arg == "code")]
                for arg in args:
                    if isinstance(arg, ast.Constant) and type(arg.value) is int:
                        found.setdefault(arg.value, f"{where}:{node.lineno}")
    return found


def test_every_close_code_is_documented() -> None:
    codes = close_codes_in_the_code()
    assert {1000, 1008, 1011, 1012, 4001, 4008, 4029} <= set(codes)
    documented = set()
    for cell in first_column("Close codes"):
        assert re.fullmatch(r"\d{4}", cell), f"close code cell {cell!r} is not a code"
        documented.add(int(cell))
    problems = [
        f"close code {code} ({codes[code]}) is not documented"
        for code in sorted(set(codes) - documented)
    ]
    assert not problems, "\n".join(problems)


# ------------------------------------------------ server → client, on the wire
SECRET = "protocol-docs-secret"


def identity(customer_id: str, plan: str) -> dict[str, str]:
    return {
        "customer_id": customer_id,
        "plan": plan,
        "sig": sign_identity(customer_id, plan, SECRET),
    }


def received(client: VisitorClient) -> list[Frame]:
    return [f["was"] if f.get("type") == "_consumed" else f for f in client.frames]


@dataclass
class Wire:
    """Every frame received on each endpoint during the scripted session."""

    visitor: list[Frame] = field(default_factory=list)
    operator: list[Frame] = field(default_factory=list)

    def fields(self, endpoint: str) -> dict[str, set[str]]:
        out: dict[str, set[str]] = {}
        for frame in getattr(self, endpoint):
            out.setdefault(frame["type"], set()).update(frame)
        return out

    def summaries(self) -> list[dict[str, Any]]:
        out = []
        for frame in self.operator:
            if frame["type"] == "welcome":
                out += frame["chats"]
            elif frame["type"] in ("chat_assigned", "watching", "consulted"):
                out.append(frame["chat"])
        return out


async def api(server: ServerProcess, path: str, token: str, body: dict[str, Any]) -> Any:
    async with httpx.AsyncClient(base_url=server.http_url, timeout=10) as http:
        r = await http.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text
    return r.json()


async def scripted_session(server: ServerProcess, wire: Wire) -> None:
    """One desk's afternoon, touching every frame a client can receive."""
    server.add_operator("anna", name="Anna", capacity=1)
    bert_id = server.add_operator("bert", name="Bert", capacity=3, levels=(2,))
    server.add_operator("sam", name="Sam Supervisor", role="supervisor", capacity=2)
    visitors: list[VisitorClient] = []
    operators: list[OperatorClient] = []
    try:
        sam = await server.operator("sam", status="away")
        operators.append(sam)
        await sam.wait_for("board")
        anna = await server.operator("anna")
        bert = await server.operator("bert")
        operators += [anna, bert]

        # A customer (signed identity, a plan with phone support) writes; Anna gets it.
        vera = await server.visitor(name="Vera", identity=identity("C-1", "standard"))
        visitors.append(vera)
        await vera.send("My printer is on fire")
        sid = (await anna.next_chat())["session_id"]
        await anna.wait_for("replay_done", lambda f: f["session_id"] == sid)
        await anna.send_to(sid, "On my way")
        await vera.wait_for("message", lambda f: f["from"] == "operator")
        await vera.wait_for("state", lambda f: f["state"] == "assigned")

        # Typing and reading, both ways; the visitor's page changes.
        await vera.send_frame({"type": "typing", "active": True})
        await anna.wait_for("typing")
        await anna.send_frame({"type": "typing", "session_id": sid, "active": True})
        await vera.wait_for("typing")
        await vera.send_frame({"type": "read", "seq": 3})
        await anna.wait_for("read")
        await anna.send_frame({"type": "read", "session_id": sid, "seq": 1})
        await vera.wait_for("read")
        page = "https://shop.example/printers"
        await vera.send_frame({"type": "info", "page_url": page})
        await anna.wait_for("visitor", lambda f: f["page_url"] == page)

        # Refusals, pings, the history.
        for client in (vera, anna):
            await client.send_frame({"type": "no_such_frame"})
            assert (await client.wait_for("error"))["code"] == "unknown_type"
            await client.send_frame({"type": "ping"})
            await client.wait_for("pong")
        await anna.send_frame({"type": "history", "session_id": sid})
        await anna.wait_for("history")

        # Anna is full: two more wait, a VIP overtakes the first (queue frames).
        walt = await server.visitor(name="Walt")
        visitors.append(walt)
        await walt.send("Is anyone there?")
        await walt.wait_for("state", lambda f: f["state"] == "waiting")
        vip = await server.visitor(name="Vic", identity=identity("C-2", "vip"))
        visitors.append(vip)
        await vip.send("VIP here")
        await vip.wait_for("state", lambda f: f["state"] == "waiting")
        await walt.wait_for("queue", lambda f: f["position"] == 2)
        await anna.wait_for("queue", lambda f: f["total"] == 2)

        # The supervisor watches Vera's chat and whispers; Anna consults Bert.
        await sam.send_frame({"type": "watch", "session_id": sid})
        await sam.wait_for("watching")
        await sam.wait_for("replay_done", lambda f: f.get("session_id") == sid)
        await sam.wait_for("notes")
        await sam.send_frame({"type": "whisper", "session_id": sid, "text": "Be kind"})
        await anna.wait_for("note", lambda f: f["kind"] == "whisper")
        await anna.send_frame(
            {"type": "consult", "session_id": sid, "operator_id": bert_id, "text": "Fire?"}
        )
        await bert.wait_for("consulted")
        await bert.wait_for("notes", lambda f: f["session_id"] == sid)
        await anna.wait_for("note", lambda f: f["kind"] == "consult")

        # Anna passes Vera on to 2nd level (Bert); the VIP comes to Anna.
        await anna.send_frame({"type": "transfer", "session_id": sid, "level": 2})
        await anna.wait_for("chat_removed", lambda f: f["session_id"] == sid)
        await vera.wait_for("message", lambda f: f.get("event") == "requeued")
        await bert.wait_for("chat_assigned", lambda f: f["chat"]["session_id"] == sid)
        assert (await anna.next_chat())["session_id"] == vip.session_id

        # The supervisor takes Walt over, and gives the VIP to Bert.
        await sam.send_frame({"type": "take_over", "session_id": walt.session_id})
        await sam.wait_for("chat_assigned", lambda f: f["chat"]["session_id"] == walt.session_id)
        await sam.send_frame(
            {"type": "reassign", "session_id": vip.session_id, "operator_id": bert_id}
        )
        await sam.wait_for("reassigned")
        await anna.wait_for("chat_removed", lambda f: f["reason"] == "reassigned")
        await anna.set_status("away")

        # Bert escalates Vera's chat to a ticket, then closes it; Vera rates it.
        bert_token = await OperatorClient.login(server.http_url, "bert", "pw-secret")
        await api(server, f"/api/sessions/{sid}/escalate", bert_token, {"subject": "Printer"})
        await vera.wait_for("message", lambda f: f.get("event") == "escalated")
        await bert.send_frame({"type": "close_chat", "session_id": sid})
        await bert.wait_for("chat_closed")
        await vera.wait_for("state", lambda f: f["state"] == "closed")
        await vera.send_frame({"type": "rate", "score": 5})
        await vera.wait_for("rated")

        # A customer asks to be called back instead of chatting.
        cora = await server.visitor(name="Cora", identity=identity("C-3", "standard"))
        visitors.append(cora)
        body = {"phone": "+41 44 668 18 00", "preferred_times": "mornings", "note": "Router"}
        await api(server, "/api/visitor/callback", cora.token, body)
        await cora.wait_for("message", lambda f: "callback" in f)

        # Vera comes back (replay); a forged token is refused; the board has moved on.
        again = await VisitorClient.connect(server.url, token=vera.token, last_seq=0)
        visitors.append(again)
        await again.wait_for("replay_done")
        with pytest.raises(ClientError) as refused:
            await server.visitor(token="forged")
        assert refused.value.code == "unauthorized"
        wire.visitor.append(refused.value.frame)
        await sam.wait_for("board_patch")
    finally:
        for client in [*visitors, *operators]:
            try:
                await client.close()
            finally:
                (wire.visitor if type(client) is VisitorClient else wire.operator).extend(
                    received(client)
                )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def wire(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Wire]:
    server = ServerProcess(
        tmp_path_factory.mktemp("protocol-docs"),
        {"CHATSERVER_IDENTITY_SECRET": SECRET, "CHATSERVER_BOARD_INTERVAL": "0.2"},
    )
    server.start()
    recorded = Wire()
    try:
        await scripted_session(server, recorded)
    finally:
        server.stop()
    assert "Traceback" not in server.log(), server.log()[-5000:]
    yield recorded


# The frames the brief of this test names: the session must keep producing them.
VISITOR_RECEIVES = {
    "welcome", "state", "queue", "message", "ack", "typing", "read", "rated", "error",
    "replay_done", "pong",
}  # fmt: skip
OPERATOR_RECEIVES = {
    "welcome", "chat_assigned", "chat_closed", "chat_removed", "message", "ack", "typing",
    "read", "error", "pong", "history", "visitor", "queue", "status", "replay_done",
    "consulted", "note", "notes", "board", "board_patch", "watching", "reassigned",
}  # fmt: skip


@pytest.mark.asyncio(loop_scope="module")
async def test_the_session_covers_every_frame(wire: Wire) -> None:
    assert VISITOR_RECEIVES - set(wire.fields("visitor")) == set()
    assert OPERATOR_RECEIVES - set(wire.fields("operator")) == set()
    # And the message extras: a transfer, an escalation, a callback request.
    keys = set().union(*(f for f in wire.visitor if f["type"] == "message"))
    assert {"event", "transfer", "ticket", "callback"} <= keys


@pytest.mark.asyncio(loop_scope="module")
async def test_frames_sent_to_visitors_are_documented(wire: Wire) -> None:
    problems = missing_fields(visitor_server_rows(), wire.fields("visitor"), "server → visitor")
    assert not problems, "\n".join(problems)


@pytest.mark.asyncio(loop_scope="module")
async def test_frames_sent_to_operators_are_documented(wire: Wire) -> None:
    problems = missing_fields(operator_server_rows(), wire.fields("operator"), "server → operator")
    assert not problems, "\n".join(problems)


def keys_of(value: Any) -> set[str]:
    """Every key of every object in ``value``, at any depth."""
    if isinstance(value, dict):
        return set(value).union(*(keys_of(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(v) for v in value))
    return set()


@pytest.mark.asyncio(loop_scope="module")
async def test_the_chat_summary_is_defined_once_with_every_key(wire: Wire) -> None:
    text = DOC.read_text(encoding="utf-8")
    # "A chat summary is …", "A **chat summary** is …", "chat summaries are …"
    definitions = re.findall(r"(?i)chat summar(?:y|ies)\**\s+(?:is|are)\b", text)
    assert len(definitions) == 1, f"the chat summary is defined {len(definitions)} times"
    definition = re.search(r"\*\*chat summary\*\* is (`[^`]+`)", text)
    assert definition, "no 'A **chat summary** is `{…}`'"
    summaries = wire.summaries()
    assert summaries
    documented = set(re.findall(r'"([a-z_]+)"', definition.group(1)))
    missing = sorted(keys_of(summaries) - documented)
    assert not missing, f"the chat summary lacks {missing}"
