"""Summarise a ``py-spy record --format raw`` profile (folded stacks).

Prints the functions with the most samples, by self time (the sampled frame
was the innermost) and by inclusive time (the function was anywhere on the
stack), as a share of all samples; with ``--threads`` profiles also per thread::

    .venv/bin/python bench/pyspy_top.py bench/results/pyspy/chat-full.txt --top 25
"""

from __future__ import annotations

import argparse
import collections
import re
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_LOCATION = re.compile(r" \(([^:()]+):\d+\)$")


def function_of(frame: str, by_line: bool) -> str:
    """``name (path/file.py:123)`` -> ``name (file.py)`` unless ``by_line``."""
    if by_line:
        return frame
    match = _LOCATION.search(frame)
    if match is None:
        return frame
    return f"{frame[: match.start()]} ({match.group(1)})"


def summarise(path: Path, top: int, by_line: bool, under: str | None) -> str:
    self_time: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        frames, count = match.group(1).split(";"), int(match.group(2))
        if under is not None and not any(under in f for f in frames):
            continue
        if frames and frames[0].startswith(("thread (", "process ")):
            threads[frames[0]] += count
            frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        total += count
        names = [function_of(f, by_line) for f in frames]
        if names:
            self_time[names[-1]] += count
        for name in set(names):
            inclusive[name] += count
    out = [f"{path}: {total} samples" + (f" (stacks containing {under!r})" if under else "")]
    if len(threads) > 1:
        out.append("per thread:")
        out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common()]
    out.append(f"top {top} self:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_time.most_common(top)]
    out.append(f"top {top} inclusive:")
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--by-line", action="store_true", help="keep line numbers apart")
    parser.add_argument("--under", default=None,
                        help="only stacks with a frame containing this text")
    args = parser.parse_args()
    for path in args.profiles:
        print(summarise(path, args.top, args.by_line, args.under))
        print()


if __name__ == "__main__":
    main()
