"""Import benchmark: the national active list (30,000 rows) through the importer the CLI uses.

For each encoding (CP932 as Excel in Japanese offices writes it, and UTF-8), a CSV of demo experts is
generated (services/profiles/demo.py), then imported into a fresh SQLite database by
``services.profiles.importer.import_experts_file`` — migration included, progress bar off — and imported
again, which must change nothing. Each import runs in a fresh child process so that its peak memory
(ru_maxrss) is its own; a smaller run shows whether memory stays flat as the file grows.
Writes bench/results/import.json and prints a table.

    python bench/bench_import.py [--rows 30000] [--small 5000] [--seed 20261122]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results" / "import.json"
TARGET_SECONDS = 30.0


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB, macOS in bytes.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 1_000_000


def _import_in_child(path: str, data_dir: str, queue: multiprocessing.Queue) -> None:
    from sqlalchemy import func
    from sqlmodel import Session, select

    from services.profiles.importer import import_experts_file
    from services.profiles.models import Expert, OutboxRecord
    from services.profiles.repository import prepared_engine
    from services.profiles.settings import ProfilesSettings

    settings = ProfilesSettings(TSUNAGU_DATA_DIR=data_dir, TSUNAGU_ENV="test")
    engine = prepared_engine(settings)  # the schema exists before the clock starts, as in the service
    engine.dispose()
    baseline = _rss_mb()
    started = time.perf_counter()
    report = import_experts_file(path, settings, progress=False)
    seconds = time.perf_counter() - started
    engine = prepared_engine(settings)
    with Session(engine) as session:
        experts = session.exec(select(func.count()).select_from(Expert)).one()
        outbox = session.exec(select(func.count()).select_from(OutboxRecord)).one()
        versions = session.exec(select(func.sum(Expert.version))).one()
    engine.dispose()
    queue.put(
        {
            "seconds": round(seconds, 2),
            "rows_per_second": round(report["rows"] / seconds),
            "peak_rss_mb": round(_rss_mb(), 1),
            "rss_before_mb": round(baseline, 1),
            "peak_rss_growth_mb": round(_rss_mb() - baseline, 1),
            "report": {key: value for key, value in report.items() if key not in ("errors", "warnings")},
            "first_errors": report["errors"][:3],
            "experts_in_db": experts,
            "outbox_rows": outbox,
            "sum_of_versions": versions,
        }
    )


def run_import(path: Path, data_dir: Path) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_import_in_child, args=(str(path), str(data_dir), queue))
    child.start()
    result = queue.get(timeout=600)
    child.join()
    return result


def bench_file(rows: int, encoding: str, seed: int, workdir: Path) -> dict[str, Any]:
    from services.profiles.demo import write_import_csv

    path = workdir / f"experts-{rows}-{encoding}.csv"
    started = time.perf_counter()
    write_import_csv(path, rows, encoding=encoding, seed=seed)  # type: ignore[arg-type]
    generated = time.perf_counter() - started
    data_dir = workdir / f"db-{rows}-{encoding}"
    data_dir.mkdir()
    first = run_import(path, data_dir)
    again = run_import(path, data_dir)
    unchanged = (
        again["report"]["created"] == 0
        and again["report"]["updated"] == 0
        and again["outbox_rows"] == first["outbox_rows"]
        and again["sum_of_versions"] == first["sum_of_versions"]
    )
    return {
        "rows": rows,
        "encoding": encoding,
        "file_mb": round(path.stat().st_size / 1_000_000, 2),
        "generate_seconds": round(generated, 2),
        "import": first,
        "reimport": again,
        "reimport_changed_nothing": unchanged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=30_000)
    parser.add_argument("--small", type=int, default=5_000, help="a smaller file, to see that memory stays flat")
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args()

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-import-") as tmp:
        workdir = Path(tmp)
        for rows, encoding in ((args.small, "cp932"), (args.rows, "cp932"), (args.rows, "utf-8")):
            print(f"importing {rows} rows ({encoding}) ...", flush=True)
            runs.append(bench_file(rows, encoding, args.seed, workdir))

    large = [run for run in runs if run["rows"] == args.rows]
    small = next(run for run in runs if run["rows"] == args.small)
    summary = {
        "target_seconds": TARGET_SECONDS,
        "worst_import_seconds": max(run["import"]["seconds"] for run in large),
        "within_target": all(run["import"]["seconds"] <= TARGET_SECONDS for run in large),
        "reimport_changed_nothing": all(run["reimport_changed_nothing"] for run in runs),
        "peak_rss_growth_mb": {f"{run['rows']}-{run['encoding']}": run["import"]["peak_rss_growth_mb"] for run in runs},
        "memory_growth_ratio_large_vs_small": round(
            large[0]["import"]["peak_rss_growth_mb"] / max(small["import"]["peak_rss_growth_mb"], 0.1), 2
        ),
        "file_to_memory_ratio": round(large[0]["import"]["peak_rss_growth_mb"] / large[0]["file_mb"], 2),
    }
    result = {
        "benchmark": "profiles CSV import (services.profiles.importer.import_experts_file)",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "database": "SQLite (file, WAL)",
        },
        "summary": summary,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    print(
        f"\n{'rows':>7} {'enc':>6} {'file MB':>8} {'import s':>9} {'rows/s':>7} {'RSS+ MB':>8} {'re-import s':>11} {'unchanged':>9}"
    )
    for run in runs:
        print(
            f"{run['rows']:>7} {run['encoding']:>6} {run['file_mb']:>8} {run['import']['seconds']:>9} "
            f"{run['import']['rows_per_second']:>7} {run['import']['peak_rss_growth_mb']:>8} "
            f"{run['reimport']['seconds']:>11} {run['reimport_changed_nothing']!s:>9}"
        )
    print(f"\nwithin {TARGET_SECONDS:.0f} s: {summary['within_target']}; figures in {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
