"""Summarise a `mutmut run` (``make mutation``): killed / total per mutated file, and a verdict.

    python tests/mutation_report.py            # after `mutmut run`, from the repository root

Every surviving mutant must be listed, with the reason it is equivalent, in
tests/mutation-equivalents.md (its full mutmut name in backticks). Exits 1 if a survivor is not
listed, if a mutant had no test or could not be checked, or if the score (killed + timed out over
all mutants) is under 90%. A listed mutant that is now killed is only reported (the list is stale).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "tests" / "mutation-equivalents.md"
MIN_SCORE = 90.0
KILLED = {"killed", "timeout", "caught by type check"}  # the tests (or the clock) noticed the mutant
LINE = re.compile(r"^\s*(?P<name>\S+__mutmut_\d+): (?P<status>.+?)\s*$")
NAME = re.compile(r"`(ckt\.[^`\s]+__mutmut_\d+)`")


def module_of(name: str) -> str:
    """``ckt.core.evaluate.x_suite_logits__mutmut_7`` -> ``ckt.core.evaluate`` (methods: ``xǁClassǁ...``)."""
    parts = name.split(".")
    return ".".join(p for p in parts[:-1])


def parse(results: str) -> dict[str, str]:
    return {m["name"]: m["status"] for m in map(LINE.match, results.splitlines()) if m}


def listed() -> set[str]:
    return set(NAME.findall(EQUIVALENTS.read_text(encoding="utf-8"))) if EQUIVALENTS.is_file() else set()


def report(status: dict[str, str], equivalent: set[str]) -> tuple[list[str], bool]:
    """The printed lines and whether the run passes."""
    by_file: dict[str, Counter] = defaultdict(Counter)
    unexplained, unchecked = [], []
    for name, st in sorted(status.items()):
        counts = by_file[module_of(name)]
        counts["total"] += 1
        if st in KILLED:
            counts["killed"] += 1
        elif st == "survived" and name in equivalent:
            counts["equivalent"] += 1
        elif st == "survived":
            counts["survived"] += 1
            unexplained.append(name)
        else:
            counts["other"] += 1
            unchecked.append(f"{name}: {st}")
    lines = [f"{'file':<22} {'killed':>7} {'equiv.':>7} {'survived':>9} {'other':>6} {'total':>6} {'score':>7}"]
    total = Counter()
    for module, c in sorted(by_file.items()):
        total.update(c)
        lines.append(f"{module:<22} {c['killed']:>7} {c['equivalent']:>7} {c['survived']:>9} {c['other']:>6} "
                     f"{c['total']:>6} {100 * c['killed'] / c['total']:>6.1f}%")
    score = 100 * total["killed"] / total["total"] if total["total"] else 0.0
    lines.append(f"{'all':<22} {total['killed']:>7} {total['equivalent']:>7} {total['survived']:>9} "
                 f"{total['other']:>6} {total['total']:>6} {score:>6.1f}%")
    lines += [f"SURVIVED, not listed as equivalent: {n}" for n in unexplained]
    lines += [f"NOT CHECKED: {n}" for n in unchecked]
    stale = sorted(n for n in equivalent if status.get(n) in KILLED)
    lines += [f"note: listed as equivalent but killed now (remove it from the list): {n}" for n in stale]
    gone = sorted(n for n in equivalent if n not in status)
    lines += [f"note: listed as equivalent but no such mutant now (the code moved?): {n}" for n in gone]
    ok = bool(total["total"]) and not unexplained and not unchecked and score >= MIN_SCORE
    lines.append(f"{'PASS' if ok else 'FAIL'}: score {score:.1f}% (killed or timed out / all), "
                 f"{len(unexplained)} unexplained survivor(s), minimum {MIN_SCORE:.0f}%")
    return lines, ok


def main() -> int:
    mutmut = Path(sys.executable).parent / "mutmut"
    proc = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return 1
    lines, ok = report(parse(proc.stdout), listed())
    print("\n".join(lines))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
