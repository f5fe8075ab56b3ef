"""The supervisor board's ``kb`` section: articles viewed, suggestions shown and chats
deflected, this hour and today; pure (build_board) and over a real server."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import httpx

from chatserver.supervision.board import KB_FIGURES, apply_patch, build_board, diff
from tests.supervision.test_supervisor import BOARD_ENV, BoardView


def test_the_board_carries_the_figures_and_patches_them() -> None:
    empty = build_board(now=1_800_000_000.0, tz=UTC, operators=[], queue=[])
    assert empty["kb"] == dict.fromkeys(KB_FIGURES, 0)
    figures = {key: i for i, key in enumerate(KB_FIGURES)}
    board = build_board(now=1_800_000_000.0, tz=UTC, operators=[], queue=[], kb=figures)
    assert board["kb"] == figures
    patch = diff(empty, board)
    assert patch is not None and patch["set"] == {"kb": figures}
    assert apply_patch(empty, patch)["kb"] == figures


async def test_widget_suggestions_views_and_yes_reach_the_board(
    make_server: Any, clients: list[Any]
) -> None:
    server = make_server(env=BOARD_ENV)
    server.start()
    server.add_operator("sam", name="Sam Supervisor", role="supervisor")
    sam = await server.operator("sam")
    clients.append(sam)
    board = await BoardView(sam).start()
    assert board.state["kb"] == dict.fromkeys(KB_FIGURES, 0)
    async with httpx.AsyncClient(base_url=server.http_url) as http:
        token = (
            await http.post("/api/login", json={"username": "sam", "password": "pw-secret"})
        ).json()["token"]
        for title in ("Drucker druckt nicht", "Drucker Treiber"):
            made = await http.post(
                "/api/kb/manage/articles",
                headers={"Authorization": f"Bearer {token}"},
                json={"title": title, "lang": "de", "status": "published"},
            )
            assert made.status_code == 201
        found = await http.get(
            "/api/kb/search", params={"q": "Druck", "lang": "de", "source": "widget"}
        )
        assert len(found.json()["results"]) == 2
        await http.get("/api/kb/search", params={"q": "Druck", "lang": "de", "source": "console"})
        opened = await http.get("/api/kb/articles/de/drucker-treiber", params={"source": "widget"})
        assert opened.status_code == 200
        await http.get("/help/de/drucker-druckt-nicht")
        url = "/api/kb/articles/de/drucker-treiber/feedback"
        vera, vito = await server.visitor(), await server.visitor()
        clients += [vera, vito]
        for _ in range(2):  # the same visitor twice: one deflected chat
            answer = await http.post(url, json={"helped": True, "session": vera.session_id})
            assert answer.status_code == 204
        await http.post(url, json={"helped": False, "session": vito.session_id})
        # A "yes" without a session is no deflected chat.
        assert (await http.post(url, json={"helped": True})).status_code == 204
    state = await board.until(
        lambda b: b["kb"]["deflected_today"] == 1 and b["kb"]["views_today"] == 2
    )
    kb = state["kb"]
    assert (kb["views_today"], kb["shown_today"], kb["deflected_today"]) == (2, 2, 1)
    # The hour's figures are the day's, unless the test ran across the full hour.
    assert kb["views_hour"] <= 2 and kb["shown_hour"] <= 2 and kb["deflected_hour"] <= 1
