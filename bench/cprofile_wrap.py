"""Run a server under cProfile, profiling only between two signals.

``SIGUSR1`` starts profiling the main thread (the event loop), ``SIGUSR2``
stops and writes the stats to OUT (pstats format). The load generator uses it
to profile exactly the measured phase, to count Python calls per message::

    python bench/cprofile_wrap.py OUT -m chatserver serve --port 8000
    python bench/cprofile_wrap.py OUT bench/relay.py --port 8100

    .venv/bin/python bench/loadgen.py --pairs 50 --messages 200 --cprofile DIR
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from types import FrameType


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    profiler = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)

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
