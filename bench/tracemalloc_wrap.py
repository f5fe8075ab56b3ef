"""Run a server under tracemalloc, tracing only between two signals.

``SIGUSR1`` starts tracing (25 frames), ``SIGUSR2`` writes a snapshot of what is still
allocated since then to OUT and stops. ``bench/idle_trace.py`` uses it to find what an
idle socket holds::

    python bench/tracemalloc_wrap.py OUT -m chatserver serve --port 8000
"""

from __future__ import annotations

import gc
import runpy
import signal
import sys
import tracemalloc
from types import FrameType


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]

    def start(signum: int, frame: FrameType | None) -> None:
        tracemalloc.start(25)

    def stop(signum: int, frame: FrameType | None) -> None:
        gc.collect()
        tracemalloc.take_snapshot().dump(out)
        tracemalloc.stop()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    if sys.argv[2] == "-m":
        sys.argv = [sys.argv[3], *sys.argv[4:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[2:]
        runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
