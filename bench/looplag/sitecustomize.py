"""Loaded by a server whose PYTHONPATH starts with bench/looplag (``--chat-env``): with
``LOOPLAG_OUT=path`` set, it times every event-loop callback and every cyclic GC run, and
at exit writes to ``path``, as JSON lines: each callback or collection over
``LOOPLAG_MS`` (default 1 ms; a collection over a quarter of it) as ("at", seconds
before exit, kind, name, ms, wall-clock time, ms of the thread's CPU time: less than
the ms when the thread waited for a core; -1 for a collection), then per kind and name
(kind, name, count, total ms, max ms). ``bench/loadgen.py --load ...`` adds the
measured phase's start and end as ("phase", "go"|"done", wall-clock time). With
``LOOPLAG_CENSUS_S`` it also counts what the collector tracks, by type and generation,
every that many seconds; with ``LOOPLAG_SWITCH_MS`` it sets ``sys.setswitchinterval``.
A map of what stalls the loop, not a figure."""

from __future__ import annotations

import atexit
import gc
import json
import os
import sys
import time

_out = os.environ.get("LOOPLAG_OUT")
_switch = os.environ.get("LOOPLAG_SWITCH_MS")
if _switch:
    sys.setswitchinterval(float(_switch) / 1000)
if _out:
    import asyncio.events

    _limit = float(os.environ.get("LOOPLAG_MS", "1")) / 1000
    _stats: dict[tuple[str, str], list[float]] = {}
    _events: list[tuple[float, str, str, float, float]] = []
    _cpu = time.thread_time
    _clock = time.perf_counter
    _run = asyncio.events.Handle._run

    def _name(cb: object) -> str:
        owner = getattr(cb, "__self__", None)
        if isinstance(owner, asyncio.Task):
            coro = owner.get_coro()
            return f"task {getattr(coro, '__qualname__', '?')}"
        fn = getattr(cb, "__func__", cb)
        return getattr(fn, "__qualname__", None) or type(cb).__qualname__

    def _timed(self: asyncio.events.Handle) -> None:
        t, c = _clock(), _cpu()
        _run(self)
        d = _clock() - t
        if d > _limit:
            _events.append((t, "cb", _name(self._callback), d, _cpu() - c))
            s = _stats.setdefault(("cb", _name(self._callback)), [0, 0.0, 0.0])
            s[0] += 1
            s[1] += d
            s[2] = max(s[2], d)

    asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
    _gc_t = [0.0]

    def _gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _gc_t[0] = _clock()
            return
        d = _clock() - _gc_t[0]
        if d > _limit / 4:
            _events.append((_gc_t[0], "gc", f"gen{info['generation']}", d, -1.0))
        s = _stats.setdefault(("gc", f"gen{info['generation']}"), [0, 0.0, 0.0])
        s[0] += 1
        s[1] += d
        s[2] = max(s[2], d)

    gc.callbacks.append(_gc)

    def _dump() -> None:
        with open(_out, "a") as f:
            end, wall = _clock(), time.time()
            for t, kind, name, d, cpu in _events:
                f.write(
                    json.dumps(
                        [
                            "at",
                            round(t - end, 3),
                            kind,
                            name,
                            round(d * 1e3, 2),
                            wall + t - end,
                            round(cpu * 1e3, 2),
                        ]
                    )
                    + "\n"
                )
            for (kind, name), (n, tot, mx) in sorted(_stats.items(), key=lambda i: -i[1][1]):
                f.write(json.dumps([kind, name, n, round(tot * 1e3, 2), round(mx * 1e3, 2)]) + "\n")

    atexit.register(_dump)

    _census = os.environ.get("LOOPLAG_CENSUS_S")
    if _census:
        # What the collector tracks, by type and generation, once, this many seconds
        # after start (from a thread: the GIL makes the snapshot consistent).
        import collections
        import threading

        def _take_census() -> None:
            while True:
                time.sleep(float(_census))
                with open(_out, "a") as f:
                    for generation in (0, 1, 2):
                        counts = collections.Counter(
                            type(o).__qualname__ for o in gc.get_objects(generation)
                        )
                        total = sum(counts.values())
                        f.write(
                            json.dumps(
                                ["census", generation, total, counts.most_common(12), time.time()]
                            )
                            + "\n"
                        )

        threading.Thread(target=_take_census, daemon=True).start()
