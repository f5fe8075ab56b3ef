"""Canned responses over HTTP against a real server: the team's (supervisors and admins
manage them) and personal ones (every operator, seen and changed by their author only);
search by title, shortcut and text; placeholders filled from a chat; bad input is a clear
400 and changes nothing; role checks are 403, another's or no such response 404."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import ServerProcess
from tests.tickets.test_tickets import api, login


async def titles(srv: ServerProcess, token: str, **params: str) -> list[str]:
    r = await api(srv, "GET", "/api/canned", token, params=params)
    assert r.status_code == 200, r.text
    return [c["title"] for c in r.json()["canned"]]


async def listed(srv: ServerProcess, token: str) -> dict[str, dict[str, Any]]:
    r = await api(srv, "GET", "/api/canned", token)
    assert r.status_code == 200, r.text
    return {c["title"]: c for c in r.json()["canned"]}


async def test_team_and_personal_responses_with_role_checks(server: ServerProcess) -> None:
    server.add_operator("anna", name="Anna")
    server.add_operator("bruno", name="Bruno")
    server.add_operator("sue", name="Sue", role="supervisor")
    server.add_operator("ada", name="Ada", role="admin")
    anna, bruno = await login(server, "anna"), await login(server, "bruno")
    sue, ada = await login(server, "sue"), await login(server, "ada")

    # An agent adds personal ones (the default); a team one is refused.
    r = await api(
        server,
        "POST",
        "/api/canned",
        anna,
        json={"title": "Gruss", "text": "Grüezi {visitor_name}", "shortcut": "/Gre"},
    )
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["personal"] and mine["editable"] and mine["shortcut"] == "gre"
    r = await api(
        server, "POST", "/api/canned", anna, json={"title": "T", "text": "t", "personal": False}
    )
    assert r.status_code == 403 and r.json()["error"] == "forbidden"

    # Supervisors and admins add the team's (the default for them) and personal ones.
    r = await api(server, "POST", "/api/canned", sue, json={"title": "Team", "text": "Hallo"})
    assert r.status_code == 201 and not r.json()["personal"], r.text
    team = r.json()
    r = await api(
        server, "POST", "/api/canned", ada, json={"title": "Ada", "text": "x", "personal": True}
    )
    assert r.status_code == 201 and r.json()["personal"], r.text
    ada_own = r.json()

    # Everyone sees the team's and their own only.
    assert await titles(server, anna) == ["Gruss", "Team"]
    assert await titles(server, bruno) == ["Team"]
    assert await titles(server, sue) == ["Team"]
    assert await titles(server, ada) == ["Ada", "Team"]
    seen = await listed(server, anna)
    assert seen["Team"]["editable"] is False and seen["Gruss"]["editable"] is True
    assert (await listed(server, sue))["Team"]["editable"] is True

    # An agent may not change or delete the team's; another's personal one is not found.
    r = await api(server, "PATCH", f"/api/canned/{team['id']}", anna, json={"title": "X"})
    assert r.status_code == 403 and r.json()["error"] == "forbidden"
    r = await api(server, "DELETE", f"/api/canned/{team['id']}", anna)
    assert r.status_code == 403
    for token in (bruno, sue):
        r = await api(server, "PATCH", f"/api/canned/{mine['id']}", token, json={"title": "X"})
        assert r.status_code == 404 and r.json()["error"] == "not_found"
        r = await api(server, "DELETE", f"/api/canned/{mine['id']}", token)
        assert r.status_code == 404
    r = await api(server, "DELETE", f"/api/canned/{ada_own['id']}", sue)
    assert r.status_code == 404
    assert await titles(server, anna) == ["Gruss", "Team"]
    assert (await listed(server, ada))["Team"]["title"] == "Team"

    # The author edits and deletes their own; a supervisor the team's.
    r = await api(
        server,
        "PATCH",
        f"/api/canned/{mine['id']}",
        anna,
        json={"title": "Begrüssung", "shortcut": "hallo", "lang": "de"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["shortcut"], r.json()["lang"]) == (
        "Begrüssung",
        "hallo",
        "de",
    )
    assert r.json()["text"] == "Grüezi {visitor_name}"
    r = await api(server, "PATCH", f"/api/canned/{team['id']}", ada, json={"text": "Hoi"})
    assert r.status_code == 200 and r.json()["text"] == "Hoi", r.text
    r = await api(server, "DELETE", f"/api/canned/{mine['id']}", anna)
    assert r.status_code == 204
    r = await api(server, "DELETE", f"/api/canned/{mine['id']}", anna)
    assert r.status_code == 404
    r = await api(server, "DELETE", f"/api/canned/{team['id']}", sue)
    assert r.status_code == 204
    assert await titles(server, anna) == []

    # Without a token: 401.
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        assert (await http.get("/api/canned")).status_code == 401
        assert (await http.patch("/api/canned/1", json={"title": "x"})).status_code == 401
        assert (await http.delete("/api/canned/1")).status_code == 401


async def test_search_by_title_shortcut_and_text_within_a_language(
    server: ServerProcess,
) -> None:
    server.add_operator("sue", name="Sue", role="supervisor")
    sue = await login(server, "sue")
    for title, text, shortcut, lang in (
        ("Begrüssung", "Grüezi mitenand", "gre", "de"),
        ("Greeting", "Hello there", "hello", "en"),
        ("Abschied", "Adieu, bis bald", "bye", None),
        ("Drucker", "Bitte starten Sie den Drucker neu (100%_sicher)", None, "de"),
    ):
        r = await api(
            server,
            "POST",
            "/api/canned",
            sue,
            json={"title": title, "text": text, "shortcut": shortcut, "lang": lang},
        )
        assert r.status_code == 201, r.text

    assert await titles(server, sue, q="GRE") == ["Begrüssung", "Greeting"]
    assert await titles(server, sue, q="gre", lang="de") == ["Begrüssung"]
    assert await titles(server, sue, q="bald") == ["Abschied"]
    assert await titles(server, sue, q="bye", lang="en") == ["Abschied"]
    # Search is literal: % and _ are no wildcards.
    assert await titles(server, sue, q="%_") == ["Drucker"]
    assert await titles(server, sue, q="_") == ["Drucker"]
    assert await titles(server, sue, q="nothing like it") == []
    r = await api(server, "GET", "/api/canned", sue, params={"q": "x" * 101})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"


async def test_placeholders_are_filled_from_the_chat(
    server: ServerProcess, clients: list[Any]
) -> None:
    server.add_operator("anna", name="Anna")
    op = await server.operator("anna")
    clients.append(op)
    visitor = await server.visitor(name="Vera Muster", email="vera@example.ch", lang="de")
    clients.append(visitor)
    await visitor.send("Hallo")
    await op.next_chat()
    await visitor.wait_for("message", lambda f: f.get("event") == "assigned")
    anna = await login(server, "anna")
    r = await api(
        server,
        "POST",
        "/api/canned",
        anna,
        json={
            "title": "Hallo",
            "text": "Grüezi {visitor_name}, {operator_name} hier.",
            "shortcut": "hi",
        },
    )
    assert r.status_code == 201, r.text
    r = await api(
        server, "GET", "/api/canned", anna, params={"session_id": visitor.session_id, "q": "hi"}
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["canned"]
    assert item["rendered"] == "Grüezi Vera Muster, Anna hier."
    assert r.json()["lang"] == "de"


async def test_bad_input_is_refused_and_changes_nothing(server: ServerProcess) -> None:
    server.add_operator("anna", name="Anna")
    server.add_operator("sue", name="Sue", role="supervisor")
    anna, sue = await login(server, "anna"), await login(server, "sue")
    r = await api(server, "POST", "/api/canned", anna, json={"title": "Mine", "text": "ok"})
    assert r.status_code == 201
    mine = r.json()

    bad_bodies: list[dict[str, Any]] = [
        {"text": "no title"},
        {"title": "no text"},
        {"title": " ", "text": "x"},
        {"title": "x" * 101, "text": "x"},
        {"title": "x", "text": "x" * 4001},
        {"title": "x", "text": "x", "lang": "xx"},
        {"title": "x", "text": "x", "shortcut": "has space"},
        {"title": "x", "text": "x", "shortcut": "x" * 31},
        {"title": "x", "text": "x", "shortcut": 5},
        {"title": "x", "text": "x", "personal": "yes"},
        {"title": 5, "text": "x"},
    ]
    for body in bad_bodies:
        r = await api(server, "POST", "/api/canned", anna, json=body)
        assert r.status_code == 400 and r.json()["error"] == "bad_frame", (body, r.text)
    patches: list[dict[str, Any]] = [
        {},
        {"other": 1},
        {"title": ""},
        {"title": "ok", "lang": "xx"},
        {"text": "fine", "shortcut": "a b"},
        {"title": None},
        {"text": "x" * 4001},
    ]
    for body in patches:
        r = await api(server, "PATCH", f"/api/canned/{mine['id']}", anna, json=body)
        assert r.status_code == 400 and r.json()["error"] == "bad_frame", (body, r.text)

    # Not JSON, not an object, too large: 400/413 from the bounded reader.
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        headers = {"Authorization": f"Bearer {anna}", "Content-Type": "application/json"}
        r = await http.post("/api/canned", content=b"{nope", headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        r = await http.patch(f"/api/canned/{mine['id']}", content=b"[1]", headers=headers)
        assert r.status_code == 400 and r.json()["error"] == "bad_request"
        r = await http.post("/api/canned", content=b" " * (2 << 20), headers=headers)
        assert r.status_code == 413

    # Ids that are no response's: 404.
    for canned_id in ("abc", "-1", "99999", "1" * 40):
        r = await api(server, "PATCH", f"/api/canned/{canned_id}", sue, json={"title": "x"})
        assert r.status_code == 404 and r.json()["error"] == "not_found", canned_id
        r = await api(server, "DELETE", f"/api/canned/{canned_id}", sue)
        assert r.status_code == 404, canned_id

    # Nothing changed.
    [item] = (await api(server, "GET", "/api/canned", anna)).json()["canned"]
    assert (item["id"], item["title"], item["text"], item["lang"], item["shortcut"]) == (
        mine["id"],
        "Mine",
        "ok",
        None,
        None,
    )
