"""Run every benchmark (30,000 experts each) and print where the figures went.

Each benchmark is its own script writing JSON to bench/results/; this runs them one after another so
they do not compete for the machine's two cores.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
BENCHMARKS = [
    "bench_import.py",
    "bench_search.py",
    "bench_search_delay.py",
    "bench_scorer.py",
    "bench_pipeline.py",
    "bench_load.py",
]


def main() -> int:
    failed = []
    for script in BENCHMARKS:
        print(f"==> {script}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent, check=False)
        print(f"<== {script}: exit {result.returncode} in {time.monotonic() - started:.0f}s", flush=True)
        if result.returncode != 0:
            failed.append(script)
    print("figures:", ", ".join(str(p) for p in sorted((HERE / "results").glob("*.json"))))
    if failed:
        print("failed:", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
