"""Load: a realistic mix through the gateway with every service up, beside a bare FastAPI endpoint (issue 13).

The whole system runs as in ``make run`` (``launcher.runner.System``: nats-server, gateway, profiles,
matching, search, one scorer worker; SQLite, or PostgreSQL with ``--postgres-admin-url``) with the national
list imported through the real CSV importer (30,000 experts by default) and propagated by events to
matching's projection and the search index. Then locust (``bench/load_mix.py``, headless, loopback only,
bounded in time) sends:

- **ceiling**: a bare FastAPI endpoint (``load_mix.bare_app``) served by the same uvicorn, same machine, same
  client, same users: what this stack can answer here at all;
- **mix, closed loop**: ``--users`` users (16) as fast as answers come: anonymous searches (35 %), public
  profile reads (30 %), brokers' shortlist reads (20 %), SMEs' request submissions (10 %), brokers'
  proposals (5 %); requests per second, p50/p95/p99, errors (anything not 2xx);
- **mix, paced**: the same mix offered at ``--rate`` requests per second (300): its latency and errors.

Each run also records the CPU seconds every process spent (gateway, services, scorer, nats-server, locust), per
request, which says where the time goes. ``--profile DIR`` records the gateway and the services with py-spy
during an extra closed-loop run (collapsed stacks and a summary of the hottest frames).

    .venv/bin/python bench/bench_load.py [--experts 30000] [--duration 30] [--users 16] [--rate 300]

Figures go to bench/results/load.json (``--output`` to write elsewhere). About 4-6 minutes at 30,000 experts
(most of it importing and propagating the list).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.postgres import service_databases  # noqa: E402
from gateway.service import ensure_user  # noqa: E402
from launcher.runner import SERVICES, System, SystemConfig  # noqa: E402
from services.matching.models import ExpertFeature  # noqa: E402
from services.profiles.demo import write_import_csv  # noqa: E402
from services.profiles.models import Expert, OutboxRecord  # noqa: E402
from tsunagu import reference  # noqa: E402
from tsunagu.db import make_engine, session_scope  # noqa: E402
from tsunagu.natsserver import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "load.json"
PASSWORD = "bench-password-123"
SMES = 8
BROKER_PREFECTURES = ["13", "27", "40"]  # Tokyo, Osaka, Fukuoka: one broker each
SEED_REQUESTS = 240
TICKS = os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(statistics.median(values), 2),
        "p95": round(percentile(values, 0.95), 2),
        "p99": round(percentile(values, 0.99), 2),
        "max": round(max(values), 2),
    }


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


# --- the system ------------------------------------------------------------------------------------------


def start_system(work: Path, experts: int, database_urls: dict[str, str]) -> System:
    """``database_urls``: bench/postgres.py's ``service_databases`` (empty: SQLite files in ``work``)."""
    system = System(
        SystemConfig(
            data_dir=work,
            ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
            nats_monitor_port=free_port(),
            scorer_workers=1,
            env="test",
            token_secret="bench-secret-0123456789-0123456789-0123",
            database_urls=database_urls,
            extra_env={"TSUNAGU_LOG_LEVEL": os.environ.get("TSUNAGU_LOG_LEVEL", "INFO")},
            gateway_env={
                "TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute",
                "TSUNAGU_ACCESS_TOKEN_MINUTES": "240",  # one token per account for the whole run
                "TSUNAGU_WRITE_RATE_LIMIT": "100000/minute",  # 10 % of 300/s from 8 SMEs is above a person's limit
            },
        )
    )
    system.migrate_all()
    started = time.monotonic()
    csv_path = work / "experts.csv"
    write_import_csv(csv_path, experts, seed=20261123)
    # The CLI's own import (tsunagu experts import), writing profiles' database and outbox; the events
    # reach matching and search once the system runs, as after an import in production.
    subprocess.run(
        [sys.executable, "-m", "launcher.cli", "experts", "import", str(csv_path)],
        env=system.service_env("profiles"),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    gateway_db = make_engine(system.database_url("gateway"))
    with session_scope(gateway_db) as session:
        for index in range(SMES):
            ensure_user(
                session, email=f"sme-{index}@example.jp", password=PASSWORD, display_name=f"SME {index}", role="sme"
            )
        for code in BROKER_PREFECTURES:
            ensure_user(
                session,
                email=f"broker-{code}@example.jp",
                password=PASSWORD,
                display_name=f"broker {code}",
                role="broker",
                prefectures=[code],
            )
    gateway_db.dispose()
    system.start(timeout=300)
    _wait_propagated(system, experts)
    print(f"system up with {experts} experts propagated in {time.monotonic() - started:.0f}s", flush=True)
    return system


def _wait_propagated(system: System, experts: int, timeout: float = 900) -> None:
    profiles = make_engine(system.database_url("profiles"))
    matching = make_engine(system.database_url("matching"))
    deadline = time.monotonic() + timeout
    last_total, stable = -1, 0
    try:
        while time.monotonic() < deadline:
            with Session(profiles) as session:
                pending = session.exec(
                    select(func.count()).select_from(OutboxRecord).where(col(OutboxRecord.published_at).is_(None))
                ).one()
            with Session(matching) as session:
                features = session.exec(select(func.count()).select_from(ExpertFeature)).one()
            total = httpx.get(system.url("gateway") + "/api/v1/search/experts", params={"limit": 1}).json()["total"]
            stable = stable + 1 if total == last_total and total > 0 else 0
            last_total = total
            if pending == 0 and features >= experts and stable >= 3:
                return
            time.sleep(1)
        raise TimeoutError(f"not propagated: outbox {pending}, matching {features}, search {total}")
    finally:
        profiles.dispose()
        matching.dispose()


def _token(http: httpx.Client, email: str) -> str:
    response = http.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    http.cookies.clear()
    return response.json()["access_token"]


def make_plan(system: System, seed: int = 7) -> dict:
    """Tokens, public expert ids and ranked requests with the pairs their brokers may propose."""
    rng = random.Random(seed)
    http = httpx.Client(base_url=system.url("gateway"), timeout=60)
    smes = [_token(http, f"sme-{index}@example.jp") for index in range(SMES)]
    brokers = {code: _token(http, f"broker-{code}@example.jp") for code in BROKER_PREFECTURES}
    topic_ids = list(reference.topics())
    request_ids = []
    for index in range(SEED_REQUESTS):
        body = {
            "title": "負荷試験の準備",
            "prefecture": BROKER_PREFECTURES[index % len(BROKER_PREFECTURES)],
            "delivery": rng.choice(["onsite", "remote", "either"]),
            "topics": rng.sample(topic_ids, rng.randint(1, 4)),
        }
        created = http.post("/api/v1/requests", json=body, headers={"authorization": f"Bearer {smes[index % SMES]}"})
        created.raise_for_status()
        request_ids.append((created.json()["id"], body["prefecture"]))
    requests, pairs = [], []
    deadline = time.monotonic() + 600
    for request_id, prefecture in request_ids:
        headers = {"authorization": f"Bearer {brokers[prefecture]}"}
        while True:
            ranking = http.get(f"/api/v1/requests/{request_id}/ranking", headers=headers).json()
            if ranking["status"] == "ranked" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        requests.append({"id": request_id, "prefecture": prefecture})
        pairs += [
            {"request_id": request_id, "expert_id": entry["expert_id"], "prefecture": prefecture}
            for entry in ranking.get("entries", [])
        ]
    http.close()
    rng.shuffle(pairs)
    profiles = make_engine(system.database_url("profiles"))
    with Session(profiles) as session:
        experts = list(session.exec(select(Expert.id).where(col(Expert.active).is_(True))).all())
    profiles.dispose()
    return {
        "smes": smes,
        "brokers": brokers,
        "topics": topic_ids,
        "requests": requests,
        "pairs": pairs,
        "experts": experts,
    }


# --- the runs --------------------------------------------------------------------------------------------


class BareServer:
    """``load_mix.bare_app`` under uvicorn with the services' settings (uvloop and httptools when installed)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import uvicorn; uvicorn.run('bench.load_mix:bare_app', factory=True, host='127.0.0.1', "
                f"port={self.port}, log_config=None, access_log=False)",
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/ping", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise TimeoutError("bare app did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def run_locust(
    *,
    name: str,
    user_class: str,
    host: str,
    users: int,
    duration: int,
    plan: dict,
    work: Path,
    rate_per_user: float = 0.0,
    pids: dict[str, int] | None = None,
    profile_dir: Path | None = None,
    mix: str | None = None,
) -> dict:
    """One bounded locust run; exact latencies per action and overall, and each process's CPU."""
    plan_path = work / f"plan-{name}.json"
    plan_path.write_text(json.dumps(plan), encoding="utf-8")
    timings_path = work / f"timings-{name}.json"
    env = {
        **os.environ,
        "LOAD_PLAN": str(plan_path),
        "LOAD_TIMINGS": str(timings_path),
        "LOAD_USER_RATE": str(rate_per_user),
        "LOAD_MIX": mix or "",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).parent / "locust"),
        "-f",
        str(ROOT / "bench" / "load_mix.py"),
        "--headless",
        "--only-summary",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{duration}s",
        "--stop-timeout",
        "5",
        "--host",
        host,
        "--loglevel",
        "ERROR",
        user_class,
    ]
    pids = dict(pids or {})
    spies = []
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        for key, pid in pids.items():
            if key == "nats":
                continue
            spies.append(
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--pid",
                        str(pid),
                        "--duration",
                        str(duration),
                        "--rate",
                        "50",
                        "--format",
                        "raw",
                        "--output",
                        str(profile_dir / f"{key}.txt"),
                        "--nonblocking",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    load_before = os.getloadavg()[0]
    locust = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pids["locust"] = locust.pid
    before = {key: _cpu_seconds(pid) for key, pid in pids.items()}
    started = time.perf_counter()
    time.sleep(0.2)
    before["locust"] = _cpu_seconds(locust.pid)
    # CPU of the run itself, read just before locust ends (a process's counters vanish with it).
    time.sleep(max(0.0, duration - 0.5))
    after = {key: _cpu_seconds(pid) for key, pid in pids.items()}
    _, stderr = locust.communicate(timeout=duration + 120)
    elapsed = time.perf_counter() - started
    for spy in spies:
        spy.wait(timeout=60)
    if not timings_path.exists():
        raise RuntimeError(f"locust wrote no timings: {stderr.decode()[-2000:]}")
    recorded = json.loads(timings_path.read_text(encoding="utf-8"))
    timings, statuses = recorded["timings_ms"], recorded["statuses"]
    every = [value for values in timings.values() for value in values]
    errors = sum(count for per in statuses.values() for status, count in per.items() if not status.startswith("2"))
    total = len(every)
    seconds = min(elapsed, duration)
    cpu = {key: round(after[key] - before.get(key, 0.0), 2) for key in after}
    result = {
        "users": users,
        "offered_rate_per_second": round(rate_per_user * users, 1) if rate_per_user else None,
        "duration_seconds": duration,
        "requests": total,
        "requests_per_second": round(total / seconds, 1),
        "latency_ms": _summary(every),
        "errors": errors,
        "load_average_1m_before": round(load_before, 2),
        "by_action": {
            action: {
                **_summary(values),
                "per_second": round(len(values) / seconds, 1),
                "statuses": dict(statuses.get(action, {})),
            }
            for action, values in sorted(timings.items())
        },
        "cpu_seconds": cpu,
        "cpu_ms_per_request": {key: round(value * 1000 / max(total, 1), 2) for key, value in cpu.items()},
    }
    print(
        f"{name}: {result['requests_per_second']} req/s, p50 {result['latency_ms'].get('p50')} ms, "
        f"p95 {result['latency_ms'].get('p95')} ms, p99 {result['latency_ms'].get('p99')} ms, errors {errors}; "
        f"cpu ms/request {result['cpu_ms_per_request']}",
        flush=True,
    )
    return result


def hottest_frames(raw_file: Path, top: int = 25) -> list[dict]:
    """The frames where a py-spy raw profile (collapsed stacks) spends the most samples, self and total."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in raw_file.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        samples += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return [
        {
            "frame": frame,
            "self_percent": round(100 * count / samples, 1),
            "total_percent": round(100 * inclusive[frame] / samples, 1),
        }
        for frame, count in own.most_common(top)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--experts", type=int, default=30_000)
    parser.add_argument("--duration", type=int, default=30, help="seconds per run")
    parser.add_argument("--users", type=int, default=16, help="concurrent users of the closed-loop runs")
    parser.add_argument("--rate", type=int, default=300, help="requests per second offered in the paced run")
    parser.add_argument("--profile", type=Path, help="also record py-spy profiles of every process into this folder")
    parser.add_argument("--postgres-admin-url", help="run every service on PostgreSQL (databases made and dropped)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--only", choices=["ceiling", "closed", "paced"], action="append", help="run only these")
    parser.add_argument(
        "--mix", help='another mix, e.g. "submit=100" to load one path alone (default: the realistic mix)'
    )
    args = parser.parse_args()
    runs = args.only or ["ceiling", "closed", "paced"]
    figures: dict = {
        "benchmark": "load: a realistic mix through the gateway, beside a bare FastAPI endpoint",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "experts": args.experts,
        "database": "postgresql" if args.postgres_admin_url else "sqlite",
        "client": "locust FastHttpUser (one process), loopback",
        "mix_percent": args.mix or __import__("bench.load_mix", fromlist=["MIX"]).MIX,
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        service_databases(args.postgres_admin_url, "load") as database_urls,
    ):
        work = Path(tmp)
        if "ceiling" in runs:
            bare = BareServer()
            try:
                figures["ceiling"] = run_locust(
                    name="ceiling",
                    user_class="BareUser",
                    host=bare.url,
                    users=args.users,
                    duration=args.duration,
                    plan={},
                    work=work,
                    pids={"bare": bare.process.pid},
                )
            finally:
                bare.stop()
        system = start_system(work / "system", args.experts, database_urls)
        try:
            plan = make_plan(system)
            pids = {key: process.pid for key, process in system.processes.items()}
            if system.nats.process is not None:
                pids["nats"] = system.nats.process.pid
            pairs = plan["pairs"]
            slices = [pairs[index::4] for index in range(4)]  # each run proposes pairs no other run used
            host = system.url("gateway")
            # A short warm-up (caches, connection pools, the scorer's arrays); not counted.
            run_locust(
                name="warmup",
                user_class="MixUser",
                mix=args.mix,
                host=host,
                users=args.users,
                duration=5,
                plan={**plan, "pairs": slices[3]},
                work=work,
            )
            if "closed" in runs:
                figures["mix_closed_loop"] = run_locust(
                    name="closed",
                    user_class="MixUser",
                    mix=args.mix,
                    host=host,
                    users=args.users,
                    duration=args.duration,
                    plan={**plan, "pairs": slices[0]},
                    work=work,
                    pids=pids,
                )
            if "paced" in runs:
                users = max(args.users, args.rate // 10)
                figures["mix_paced"] = run_locust(
                    name="paced",
                    user_class="MixUser",
                    mix=args.mix,
                    host=host,
                    users=users,
                    duration=args.duration,
                    plan={**plan, "pairs": slices[1]},
                    work=work,
                    pids=pids,
                    rate_per_user=args.rate / users,
                )
            if args.profile is not None:
                run_locust(
                    name="profiled",
                    user_class="MixUser",
                    mix=args.mix,
                    host=host,
                    users=args.users,
                    duration=args.duration,
                    plan={**plan, "pairs": slices[2]},
                    work=work,
                    pids=pids,
                    profile_dir=args.profile,
                )
                figures["profile_hottest_frames"] = {
                    path.stem: hottest_frames(path) for path in sorted(args.profile.glob("*.txt"))
                }
        finally:
            system.stop()
    if "ceiling" in figures and "mix_closed_loop" in figures:
        figures["mix_to_ceiling_ratio"] = round(
            figures["mix_closed_loop"]["requests_per_second"] / figures["ceiling"]["requests_per_second"], 3
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
