"""Run every benchmark in its own process and print its figures (never asserts a time)."""

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    failed = 0
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"\n== {script.name}", flush=True)
        failed |= subprocess.call([sys.executable, str(script)], cwd=HERE) != 0
    sys.exit(failed)
