"""Submit → ranked through the whole system at national size (30,000 experts), beside its floor.

Benchmarks 2 and 3 of the brokering issue, through real processes (gateway, matching, scorer workers,
nats-server with ``sync_interval: always``) on this machine:

- **latency**: one SME submits requests one after another through the gateway; each is timed from the start
  of its submission until its ranking has been read through the gateway. The client learns that the
  ranking is ready as a push-notified UI would: it subscribes (core NATS, on the same server) to
  ``matching.request.ranked``, waits for the event of its request, then reads
  ``GET /api/v1/requests/{id}/ranking`` once, which must answer ``ranked`` (the event is published only
  after the ranking's transaction commits). Polling that read every 2 ms instead (``--latency-method
  poll``, the method before 2026-11-24) spends gateway and matching CPU on every poll, which on two cores
  is taken from the very pipeline being timed. The floor, measured on the same nats-server in the same run,
  is a bare JetStream publish-ack (file storage, fsync per write): the least any durable hand-off costs.
- **throughput**: 8 clients submit 600 requests as fast as the gateway accepts them; accepted per second,
  and ranked per second until the last is ranked, with one and with two scorer workers; each worker's RSS;
  and the CPU each process spent per request (gateway, matching, scorer workers, search, nats-server), which
  says where the submission path's time goes on a machine of any speed.

    .venv/bin/python bench/bench_pipeline.py [--latency-requests 100] [--throughput-requests 600]
        [--latency-method event|poll] [--workers 1 2] [--output FILE] [--profile DIR]
        [--postgres-admin-url postgresql+psycopg://USER:PASSWORD@HOST:5432/postgres]

``--postgres-admin-url`` runs every service on PostgreSQL (a new database per service and run, dropped after
it: bench/postgres.py), as in production; without it, SQLite files, whose one write lock per file serialises
the API's submissions, the outbox relay and the scorer workers' writes.

``--profile DIR`` records the gateway, matching and the scorer workers with py-spy during the throughput runs
(collapsed stacks, one file per process; the recording itself costs CPU, so take figures from a run without).

About 4-5 minutes on a quiet 2-core machine.

Figures go to bench/results/pipeline.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats
from sqlalchemy import func, insert
from sqlmodel import Session, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_scorer import EXPERTS, feature_rows, percentile, requests
from bench.postgres import service_databases
from gateway.service import ensure_user
from launcher.runner import SERVICES, System, SystemConfig
from services.matching.models import ExpertFeature, Ranking
from tsunagu.db import make_engine, session_scope
from tsunagu.events import Subjects
from tsunagu.natsserver import free_port

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
PASSWORD = "bench-password-123"
CLIENTS = 8


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }


async def _bare_publish_ack(nats_url: str, count: int = 300) -> list[float]:
    """The floor: publish-ack of a small message on a file-backed stream of the same server."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name="BENCHFLOOR", subjects=["benchfloor.>"])
        payload = b'{"request_id":"x","prefecture":"13","topics":["ransomware"]}'
        latencies = []
        for index in range(count):
            started = time.perf_counter()
            await js.publish(f"benchfloor.{index % 10}", payload)
            latencies.append((time.perf_counter() - started) * 1000)
        await js.delete_stream("BENCHFLOOR")
        return latencies
    finally:
        await client.close()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _pids(system: System) -> dict[str, int]:
    pids = {key: process.pid for key, process in system.processes.items()}
    if system.nats.process is not None:
        pids["nats"] = system.nats.process.pid
    return pids


def _start(work: Path, workers: int, database_urls: dict[str, str]) -> System:
    """``database_urls``: bench/postgres.py's ``service_databases`` (empty: SQLite files in ``work``)."""
    system = System(
        SystemConfig(
            data_dir=work,
            ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
            nats_monitor_port=free_port(),
            scorer_workers=workers,
            env="test",
            database_urls=database_urls,
            token_secret="bench-secret-0123456789-0123456789-0123",
            extra_env={"TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute", "TSUNAGU_LOG_LEVEL": "WARNING"},
        )
    )
    system.migrate_all()
    matching = make_engine(system.database_url("matching"))
    with session_scope(matching) as session:
        rows = feature_rows(EXPERTS)
        for start in range(0, len(rows), 2000):
            session.execute(insert(ExpertFeature), rows[start : start + 2000])
    matching.dispose()
    gateway_db = make_engine(system.database_url("gateway"))
    with session_scope(gateway_db) as session:
        for index in range(CLIENTS):  # one SME account per client: the per-user write limit holds, as in life
            ensure_user(session, email=_email(index), password=PASSWORD, display_name=f"bench {index}", role="sme")
    gateway_db.dispose()
    system.start(timeout=180)
    return system


def _email(index: int) -> str:
    return f"bench-{index}@example.jp"


def _headers(http: httpx.Client, index: int = 0) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", json={"email": _email(index), "password": PASSWORD})
    response.raise_for_status()
    http.cookies.clear()
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def _body(request) -> dict:
    return {
        "title": "ベンチマーク",
        "prefecture": request.prefecture,
        "delivery": request.delivery,
        "topics": request.topics,
    }


def _latencies_polled(system: System, count: int) -> list[float]:
    """Submit, then read the ranking every 2 ms until it is ranked (each read costs the gateway and matching)."""
    http = httpx.Client(base_url=system.url("gateway"), timeout=30)
    headers = _headers(http)
    latencies = []
    for request in requests(count, seed=5):
        started = time.perf_counter()
        created = http.post("/api/v1/requests", headers=headers, json=_body(request))
        created.raise_for_status()
        request_id = created.json()["id"]
        while http.get(f"/api/v1/requests/{request_id}/ranking", headers=headers).json()["status"] != "ranked":
            time.sleep(0.002)
        latencies.append((time.perf_counter() - started) * 1000)
    http.close()
    return latencies


async def _latencies_notified(system: System, count: int) -> list[float]:
    """Submit, wait for the request's ``matching.request.ranked`` event, then read the ranking once."""
    ranked: dict[str, asyncio.Event] = {}

    def waiter(request_id: str) -> asyncio.Event:
        return ranked.setdefault(request_id, asyncio.Event())

    async def on_ranked(message) -> None:
        # The event may arrive before the submission's answer: the waiter is made by whichever comes first.
        waiter(json.loads(message.data)["subject_id"]).set()

    client = await nats.connect(system.nats.url)
    await client.subscribe(Subjects.REQUEST_RANKED, cb=on_ranked)
    await client.flush()
    http = httpx.AsyncClient(base_url=system.url("gateway"), timeout=30)
    try:
        response = await http.post("/api/v1/auth/token", json={"email": _email(0), "password": PASSWORD})
        response.raise_for_status()
        http.cookies.clear()
        headers = {"authorization": f"Bearer {response.json()['access_token']}"}
        latencies = []
        for request in requests(count, seed=5):
            started = time.perf_counter()
            created = await http.post("/api/v1/requests", headers=headers, json=_body(request))
            created.raise_for_status()
            request_id = created.json()["id"]
            await asyncio.wait_for(waiter(request_id).wait(), timeout=60)
            read = await http.get(f"/api/v1/requests/{request_id}/ranking", headers=headers)
            read.raise_for_status()
            if read.json()["status"] != "ranked":
                raise RuntimeError(f"request {request_id}: ranked event seen, ranking not readable")
            latencies.append((time.perf_counter() - started) * 1000)
            ranked.pop(request_id, None)
        return latencies
    finally:
        await http.aclose()
        await client.close()


def latency(system: System, count: int, method: str = "event") -> dict:
    if method == "poll":
        latencies = _latencies_polled(system, count)
    else:
        latencies = asyncio.run(_latencies_notified(system, count))
    floor = asyncio.run(_bare_publish_ack(system.nats.url))
    submit = _ms(latencies)
    bare = _ms(floor)
    return {
        "method": method,
        "submit_to_ranked_ms": submit,
        "bare_jetstream_publish_ack_ms": bare,
        "ratio_p50_to_floor_p50": round(submit["p50"] / bare["p50"], 1),
        "ratio_p95_to_floor_p95": round(submit["p95"] / bare["p95"], 1),
    }


def _spies(system: System, profile_dir: Path | None, tag: str) -> list[subprocess.Popen]:
    """py-spy recording the gateway, matching and the scorer workers (collapsed stacks, ``--format raw``)
    until told to stop (SIGINT: py-spy then writes what it has)."""
    if profile_dir is None:
        return []
    profile_dir.mkdir(parents=True, exist_ok=True)
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    record = [spy, "record", "--rate", "100", "--format", "raw", "--nonblocking"]
    return [
        subprocess.Popen(
            [*record, "--pid", str(process.pid), "--output", str(profile_dir / f"{tag}-{key}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for key, process in system.processes.items()
        if key in ("gateway", "matching") or key.startswith("scorer")
    ]


def _stop_spies(spies: list[subprocess.Popen]) -> None:
    for spy in spies:
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(timeout=60)


def throughput(system: System, total: int, clients: int = CLIENTS, profile_dir: Path | None = None) -> dict:
    bodies = [_body(request) for request in requests(total, seed=23)]
    matching = make_engine(system.database_url("matching"))
    with Session(matching) as session:
        before = session.exec(select(func.count()).select_from(Ranking)).one()
    # Each client: its own SME account and one kept-alive connection, as a browser or an API client has.
    sessions = []
    for index in range(clients):
        client = httpx.Client(base_url=system.url("gateway"), timeout=60)
        sessions.append((client, _headers(client, index)))

    def submit(index: int) -> list[int]:
        client, headers = sessions[index]
        return [
            client.post("/api/v1/requests", headers=headers, json=body).status_code for body in bodies[index::clients]
        ]

    pids = _pids(system)
    spies = _spies(system, profile_dir, f"workers{sum(1 for key in pids if key.startswith('scorer'))}")
    cpu_before = {key: _cpu_seconds(pid) for key, pid in pids.items()}
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        statuses = [status for part in pool.map(submit, range(clients)) for status in part]
    accepted_seconds = time.perf_counter() - started
    for client, _ in sessions:
        client.close()
    deadline = time.monotonic() + 600
    ranked = 0
    while time.monotonic() < deadline:
        with Session(matching) as session:
            ranked = session.exec(select(func.count()).select_from(Ranking)).one() - before
        if ranked >= total:
            break
        time.sleep(0.05)
    ranked_seconds = time.perf_counter() - started
    cpu = {key: round(_cpu_seconds(pid) - cpu_before[key], 2) for key, pid in pids.items()}
    _stop_spies(spies)
    matching.dispose()
    workers = {key: _rss_mb(process.pid) for key, process in system.processes.items() if key.startswith("scorer")}
    return {
        "requests": total,
        "clients": clients,
        "errors": sum(1 for status in statuses if status != 201),
        "accepted_per_second": round(total / accepted_seconds, 1),
        "ranked": ranked,
        "ranked_per_second": round(ranked / ranked_seconds, 1),
        "scorer_rss_mb": workers,
        "cpu_seconds": cpu,
        "cpu_ms_per_request": {key: round(value * 1000 / total, 2) for key, value in cpu.items()},
        "load_average_1m_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency-requests", type=int, default=100)
    parser.add_argument("--throughput-requests", type=int, default=600)
    parser.add_argument("--latency-method", choices=("event", "poll"), default="event")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="scorer workers of each run")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of the throughput runs into this folder")
    parser.add_argument("--postgres-admin-url", help="run every service on PostgreSQL (databases made and dropped)")
    args = parser.parse_args()
    figures: dict = {
        "benchmark": "submit to ranked through gateway, NATS and scorer workers",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        # Figures from a busy machine mean little: say how busy it was when the run began.
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
        "experts": EXPERTS,
        "database": "postgresql" if args.postgres_admin_url else "sqlite",
    }
    for workers in args.workers:
        with (
            tempfile.TemporaryDirectory() as tmp,
            service_databases(args.postgres_admin_url, f"pipeline{workers}") as database_urls,
        ):
            system = _start(Path(tmp), workers, database_urls)
            try:
                run: dict = {}
                if workers == 1 and args.latency_requests:
                    run["latency"] = latency(system, args.latency_requests, args.latency_method)
                run["throughput"] = throughput(system, args.throughput_requests, profile_dir=args.profile)
                figures[f"scorer_workers_{workers}"] = run
                print(json.dumps({f"scorer_workers_{workers}": run}, ensure_ascii=False, indent=2))
            finally:
                system.stop()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
