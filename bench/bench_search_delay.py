"""Profile change → searchable, through real processes, beside its floor (issue 12: aim under 1 second).

Starts the whole system as ``make run`` does (launcher.runner: nats-server, gateway, profiles, matching,
search, a scorer worker; SQLite, the embedded search engine) with the experts index already holding
``--experts`` synthetic profiles (30,000 by default, the national size, built before the start where the search
service keeps it). One expert then changes their biography through the gateway (``PATCH /api/v1/experts/{id}``)
``--changes`` times; each change carries a word nobody else has, and the clock runs from sending the PATCH
until the public search through the gateway (``GET /api/v1/search/experts?q=<word>``, polled every ~2 ms)
returns the expert with that word. That covers the whole path: the profiles transaction and its outbox row,
the relay's publish to JetStream, the search consumer's fetch, its transaction and the index write, and
the search itself.

The floor, measured on the same nats-server in the same run: a bare JetStream publish→consume (publish with
ack on a file-backed stream, then a pull consumer's fetch of it): the least any durable hand-off between two
processes costs here. Figures go to bench/results/search_delay.json.

    python bench/bench_search_delay.py [--experts 30000] [--changes 50]     # ~1-2 minutes on a quiet machine
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import nats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_search import make_docs, percentile  # noqa: E402
from gateway.service import ensure_user  # noqa: E402
from launcher.runner import SERVICES, System, SystemConfig  # noqa: E402
from services.search.engine import make_engine as make_search_engine  # noqa: E402
from tsunagu.db import make_engine, session_scope  # noqa: E402
from tsunagu.natsserver import free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "search_delay.json"
PASSWORD = "bench-password-123"
EXPERT_EMAIL = "delay-expert@example.jp"
ADMIN_EMAIL = "delay-admin@example.jp"
# Words made of these never occur in the synthetic profiles, so only the changed expert can match one.
RARE = "鶴亀鷹鷲鳳麟蓬莱瑠璃珊瑚琥珀翡翠"


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "max_ms": round(max(values), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


def _start(work: Path, experts: int) -> tuple[System, float]:
    system = System(
        SystemConfig(
            data_dir=work,
            ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
            nats_monitor_port=free_port(),
            env="test",
            token_secret="bench-secret-0123456789-0123456789-0123",
            extra_env={"TSUNAGU_LOGIN_RATE_LIMIT_PER_CLIENT": "100000/minute", "TSUNAGU_LOG_LEVEL": "WARNING"},
        )
    )
    system.migrate_all()
    started = time.perf_counter()
    if experts:
        index = make_search_engine("embedded", data_dir=work)
        index.setup()
        index.upsert(make_docs(experts, random.Random(7)))
        index.close()
    build_s = time.perf_counter() - started
    gateway_db = make_engine(system.database_url("gateway"))
    with session_scope(gateway_db) as session:
        ensure_user(session, email=EXPERT_EMAIL, password=PASSWORD, display_name="遅延 計測", role="expert")
        ensure_user(session, email=ADMIN_EMAIL, password=PASSWORD, display_name="bench admin", role="admin")
    gateway_db.dispose()
    system.start(timeout=180)
    return system, build_s


def _headers(http: httpx.Client, email: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    response.raise_for_status()
    http.cookies.clear()
    return {"authorization": f"Bearer {response.json()['access_token']}"}


def _found(http: httpx.Client, word: str, expert_id: str) -> bool:
    response = http.get("/api/v1/search/experts", params={"q": word, "limit": 5, "highlight": "false"})
    response.raise_for_status()
    return any(hit["id"] == expert_id and word in (hit.get("bio") or "") for hit in response.json()["items"])


def _wait_found(http: httpx.Client, word: str, expert_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not _found(http, word, expert_id):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{word} not searchable after {timeout}s")
        time.sleep(0.002)


def delays(system: System, changes: int) -> dict:
    rng = random.Random(11)
    http = httpx.Client(base_url=system.url("gateway"), timeout=30)
    expert = _headers(http, EXPERT_EMAIL)
    admin = _headers(http, ADMIN_EMAIL)
    body = {
        "kind": "sekisupe",
        "registration_number": "990001",
        "name": "遅延 計測",
        "name_kana": "ちえん けいそく",
        "registration_date": "2024-04-01",
        "prefectures": ["13"],
        "onsite": True,
        "remote": True,
        "strengths": [{"topic": "ransomware", "depth": 3}],
        "skills": ["AWS"],
        "capacity": 3,
        "bio": "計測の準備",
    }
    created = http.post("/api/v1/experts", headers=expert, json=body)
    created.raise_for_status()
    expert_id = created.json()["id"]
    http.post(f"/api/v1/admin/experts/{expert_id}/verify", headers=admin).raise_for_status()
    _wait_found(http, "計測の準備", expert_id)  # listed and indexed: the changes start from here

    searchable, patched = [], []
    for _ in range(changes):
        word = "".join(rng.sample(RARE, 6))
        started = time.perf_counter()
        response = http.patch(f"/api/v1/experts/{expert_id}", headers=expert, json={"bio": f"{word}の支援をします"})
        response.raise_for_status()
        patched.append((time.perf_counter() - started) * 1000)
        _wait_found(http, word, expert_id)
        searchable.append((time.perf_counter() - started) * 1000)
    http.close()
    return {"change_to_searchable_ms": _ms(searchable), "patch_response_ms": _ms(patched)}


async def _bare_publish_consume(nats_url: str, count: int = 200) -> list[float]:
    """The floor: publish (with ack) on a file-backed stream, then one fetch by a durable pull consumer."""
    client = await nats.connect(nats_url)
    try:
        js = client.jetstream()
        await js.add_stream(name="BENCHDELAYFLOOR", subjects=["benchdelayfloor.>"])
        subscription = await js.pull_subscribe("benchdelayfloor.change", durable="floor")
        payload = b'{"id":"x","bio":"' + "計測".encode() * 100 + b'"}'
        latencies = []
        for _ in range(count):
            started = time.perf_counter()
            await js.publish("benchdelayfloor.change", payload)
            messages = await subscription.fetch(1, timeout=5)
            await messages[0].ack()
            latencies.append((time.perf_counter() - started) * 1000)
        await js.delete_stream("BENCHDELAYFLOOR")
        return latencies
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experts", type=int, default=30_000)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    figures: dict = {
        "benchmark": "profile change to searchable, through gateway, profiles, NATS JetStream and search",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            # The machine is shared: a high load average means noisy figures.
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "experts_in_index": args.experts,
        "aim_ms": 1000,
    }
    with tempfile.TemporaryDirectory(prefix="tsunagu-delay-") as tmp:
        system, build_s = _start(Path(tmp), args.experts)
        try:
            figures["index_build_s"] = round(build_s, 1)
            figures |= delays(system, args.changes)
            floor = _ms(asyncio.run(_bare_publish_consume(system.nats.url)))
            figures["floor_bare_jetstream_publish_consume_ms"] = floor
            figures["ratio_p95_to_floor_p95"] = round(
                figures["change_to_searchable_ms"]["p95_ms"] / max(floor["p95_ms"], 0.001), 1
            )
        finally:
            system.stop()
    figures["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
