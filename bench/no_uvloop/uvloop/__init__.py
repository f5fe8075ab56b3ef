"""Hides an installed uvloop (``PYTHONPATH=bench/no_uvloop``): ``import uvloop`` fails,
so uvicorn's ``loop="auto"`` runs asyncio's loop. For ``loadgen.py --load`` (chat-head)."""

raise ImportError("uvloop hidden by bench/no_uvloop")
