"""Print the mutation score per module from mutmut's results in mutants/ (`make mutation`).

Each mutated module's results are in ``mutants/<path>.meta`` (exit code per mutant). The
score is detected mutants (killed, or timed out: the tests did not pass) over all mutants;
mutants not run yet count as undetected. Exits 1 when no results are found.
"""

from __future__ import annotations

import json
import sys
import tomllib
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code

DETECTED = {"killed", "timeout", "caught by type check"}


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["mutmut"]
    rows: list[tuple[str, Counter[str]]] = []
    for module in config["only_mutate"]:
        meta = root / "mutants" / f"{module}.meta"
        if not meta.exists():
            continue
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        rows.append((module, Counter(status_by_exit_code[code] for code in codes.values())))
    if not rows:
        print("no mutation results in mutants/: run `make mutation` first", file=sys.stderr)
        return 1
    head = f"{'module':40} {'killed':>6} {'timeout':>7} {'survived':>8} {'other':>5} {'total':>5}"
    print(head + "  score")
    sums: Counter[str] = Counter()
    for module, counts in [*rows, ("all", sums)]:
        if module == "all":
            print("-" * (len(head) + 7))
        else:
            sums.update(counts)
        total = sum(counts.values())
        detected = sum(counts[s] for s in DETECTED)
        other = total - detected - counts["survived"]
        score = f"{100 * detected / total:5.1f} %" if total else "    -"
        print(
            f"{module:40} {counts['killed'] + counts['caught by type check']:>6}"
            f" {counts['timeout']:>7} {counts['survived']:>8} {other:>5} {total:>5}  {score}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
