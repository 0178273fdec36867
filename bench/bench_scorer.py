"""Scorer benchmark at national size: 30,000 experts.

Measures, on a real SQLite matching database built with the service's migrations:
- loading the projection into the numpy matrix (cold start of a scorer worker), and an incremental refresh;
- ranking latency (p50 / p95 / max) over 300 varied requests (prefecture, delivery, topics, skills);
- the whole pipeline through real processes: gateway -> matching -> NATS -> scorer worker -> ranking,
  submit-to-ranked latency for 40 requests with the 30,000 experts in the projection.
Writes bench/results/scorer.json. Run: ``python bench/bench_scorer.py`` (``--no-pipeline`` to skip the last).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import unicodedata
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert
from tqdm import tqdm

from services.matching.models import ExpertFeature
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.ranker import RankingInput, rank
from services.matching.settings import MIGRATIONS_DIR
from services.profiles.demo import generate_experts
from tsunagu.db import make_engine, session_scope
from tsunagu.migrations import upgrade
from tsunagu.reference import prefectures, topics

EXPERTS = 30_000
RESULTS = Path(__file__).parent / "results" / "scorer.json"


def feature_rows(count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    rows = []
    for index, body in enumerate(generate_experts(count, seed=seed)):
        registered = date.fromisoformat(body.get("registration_date") or "2024-04-01")
        rows.append(
            dict(
                expert_id=f"bench-{index:06d}",
                entity_version=1,
                kind=body["kind"],
                display_name=body["name"],
                active=rng.random() > 0.05,
                prefectures=body.get("prefectures", []),
                onsite=bool(body.get("onsite")),
                remote=bool(body.get("remote")),
                topics={s["topic"]: s["depth"] for s in body.get("strengths", [])},
                skills=[unicodedata.normalize("NFKC", s).lower() for s in body.get("skills", [])],
                industries=body.get("industries", []),
                services=body.get("services", []),
                dss_roles={r["role"]: r["level"] for r in body.get("dss_roles", [])},
                capacity=body.get("capacity", 1),
                registration_expires_on=date.fromisoformat(body["renewal_deadline"])
                if body.get("renewal_deadline")
                else registered + timedelta(days=3 * 365),
                last_confirmed_at=now - timedelta(days=rng.randint(0, 200)),
                change_seq=index + 1,
                changed_at=now,
                conflicted_organization_ids=[f"org-{rng.randint(0, 999)}"] if rng.random() < 0.1 else [],
                employer_organization_id=None,
                public_fields=["prefectures", "strengths", "skills", "industries"],
                broker_fields=["prefectures", "strengths", "skills", "industries", "capacity"],
            )
        )
    return rows


def requests(count: int, seed: int = 11) -> list[RankingInput]:
    rng = random.Random(seed)
    codes = list(prefectures())
    weights = [p.corporations for p in prefectures().values()]
    topic_ids = list(topics())
    skills = ["aws", "microsoft 365", "edr", "utm", "python", "ネットワーク設計", "kintone"]
    return [
        RankingInput(
            prefecture=rng.choices(codes, weights)[0],
            delivery=rng.choice(["onsite", "remote", "either"]),
            topics=rng.sample(topic_ids, rng.randint(1, 6)),
            skills=rng.sample(skills, rng.randint(0, 2)),
            industry=rng.choice([None, "製造業", "建設業"]),
        )
        for _ in range(count)
    ]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def numpy_pass(matrix) -> float:
    """The floor: read every byte the ranker reads once (one reduction per array)."""
    n = matrix.size
    total = 0.0
    for name in ("served", "depth", "active", "onsite", "remote", "capacity", "load", "expires", "confirmed"):
        total += float(getattr(matrix, name)[:n].sum())
    for name in ("rating_count", "rating_mean", "exposure"):
        total += float(getattr(matrix, name)[:n].sum())
    return total


def projection_database(work: Path):
    """A matching database (the service's migrations) holding the 30,000 experts' projection: (engine, rows)."""
    url = f"sqlite:///{work / 'matching.sqlite3'}"
    upgrade(MIGRATIONS_DIR, url)
    engine = make_engine(url)
    rows = feature_rows(EXPERTS)
    with session_scope(engine) as session:
        for start in range(0, len(rows), 2000):
            session.execute(insert(ExpertFeature), rows[start : start + 2000])
    return engine, rows


def in_process(work: Path) -> dict:
    engine, rows = projection_database(work)

    store = FeatureStore(engine)
    started = time.perf_counter()
    matrix = store.refresh()
    cold_load = time.perf_counter() - started
    assert matrix.size == EXPERTS

    # An incremental refresh after 100 experts changed.
    with session_scope(engine) as session:
        for offset, row in enumerate(rows[:100]):
            feature = session.get(ExpertFeature, row["expert_id"])
            feature.capacity += 1
            feature.entity_version += 1
            feature.change_seq = EXPERTS + offset + 1
    started = time.perf_counter()
    store.refresh()
    incremental = time.perf_counter() - started

    # Every factor live: some load, ratings and exposure, as a running system has them.
    rng = random.Random(3)
    load = {row["expert_id"]: rng.randint(1, 2) for row in rng.sample(rows, 3000)}
    ratings = {row["expert_id"]: (rng.randint(1, 30), rng.uniform(2.5, 5.0)) for row in rng.sample(rows, 5000)}
    for index in range(2000):
        store.exposure.record(
            f"past-{index}",
            datetime.now(UTC),
            [{"rank": r, "expert_id": rows[rng.randrange(EXPERTS)]["expert_id"]} for r in range(1, 11)],
        )
    matrix.set_dynamic(load, ratings, {})

    latencies, baseline, candidates = [], [], []
    for index, synthetic in enumerate(tqdm(requests(300), desc="rank", unit="req")):
        request = replace(synthetic, organization_id=f"org-{index % 1000}", request_id=f"past-{index}")
        started = time.perf_counter()
        _ranked, count = rank(matrix, request, limit=20)
        latencies.append((time.perf_counter() - started) * 1000)
        candidates.append(count)
        started = time.perf_counter()
        numpy_pass(matrix)
        baseline.append((time.perf_counter() - started) * 1000)
    return {
        "experts": EXPERTS,
        "cold_load_seconds": round(cold_load, 3),
        "incremental_refresh_100_changed_ms": round(incremental * 1000, 1),
        "rank_ms": {
            "p50": round(statistics.median(latencies), 2),
            "p95": round(percentile(latencies, 0.95), 2),
            "max": round(max(latencies), 2),
            "requests": len(latencies),
        },
        # One numpy pass (a sum) over every array the ranker reads, measured beside each ranking.
        "one_numpy_pass_ms": {
            "p50": round(statistics.median(baseline), 3),
            "p95": round(percentile(baseline, 0.95), 3),
        },
        "ratio_rank_to_numpy_pass": {
            "p50": round(statistics.median(latencies) / statistics.median(baseline), 2),
            "p95": round(percentile(latencies, 0.95) / percentile(baseline, 0.95), 2),
        },
        "factors": ["region", "topic", "skill", "industry", "freshness", "outcome", "fairness"],
        "hard_filters": ["active", "registration", "capacity minus open load", "conflicts/employer", "reach"],
        "candidates_after_hard_filters": {"median": int(statistics.median(candidates)), "max": max(candidates)},
    }


def pipeline(work: Path) -> dict:
    """Submit-to-ranked through the real processes with 30,000 experts in the projection."""
    import httpx

    from gateway.service import ensure_user
    from launcher.runner import SERVICES, System, SystemConfig
    from tsunagu.natsserver import free_port

    system = System(
        SystemConfig(
            data_dir=work / "system",
            ports={name: free_port() for name in SERVICES},
            nats_port=free_port(),
            nats_monitor_port=free_port(),
            env="test",
            token_secret="bench-secret-0123456789-0123456789-0123",
        )
    )
    system.migrate_all()
    matching = make_engine(system.database_url("matching"))
    with session_scope(matching) as session:
        rows = feature_rows(EXPERTS)
        for start in range(0, len(rows), 2000):
            session.execute(insert(ExpertFeature), rows[start : start + 2000])
    gateway_db = make_engine(system.database_url("gateway"))
    with session_scope(gateway_db) as session:
        ensure_user(session, email="bench@example.jp", password="bench-password-123", display_name="bench", role="sme")
    try:
        system.start(timeout=120)
        http = httpx.Client(base_url=system.url("gateway"), timeout=30)
        token = http.post(
            "/api/v1/auth/token", json={"email": "bench@example.jp", "password": "bench-password-123"}
        ).json()["access_token"]
        headers = {"authorization": f"Bearer {token}"}
        latencies = []
        for request in tqdm(requests(40, seed=5), desc="pipeline", unit="req"):
            started = time.perf_counter()
            created = http.post(
                "/api/v1/requests",
                headers=headers,
                json={
                    "title": "ベンチマーク",
                    "prefecture": request.prefecture,
                    "delivery": request.delivery,
                    "topics": request.topics,
                },
            ).json()
            while http.get(f"/api/v1/requests/{created['id']}/ranking", headers=headers).json()["status"] != "ranked":
                time.sleep(0.005)
            latencies.append((time.perf_counter() - started) * 1000)
        return {
            "experts": EXPERTS,
            "scorer_workers": 1,
            "submit_to_ranked_ms": {
                "p50": round(statistics.median(latencies), 1),
                "p95": round(percentile(latencies, 0.95), 1),
                "max": round(max(latencies), 1),
                "requests": len(latencies),
            },
        }
    finally:
        system.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--no-pipeline", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = {
            "benchmark": "scorer at national size",
            "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": {
                "python": platform.python_version(),
                "platform": platform.platform(),
                "cpus": __import__("os").cpu_count(),
            },
            "in_process": in_process(Path(tmp)),
        }
        if not args.no_pipeline:
            figures["pipeline"] = pipeline(Path(tmp))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
