"""Re-ranking benchmark (issue 8, benchmark 4): one expert changes while 5,000 requests are open.

On a real SQLite matching database built with the service's migrations: 30,000 experts in the projection,
5,000 open requests each with its ranking. Then, for three kinds of change (a new strength, deactivated, full),
the time until every affected ranking is new, as the worker does it: ``mark_affected`` (which open requests
the change may move) and ``rerank_due`` until nothing is marked. Beside it, measured in the same run: one
full ranking (what re-ranking one request costs at least) and re-ranking all 5,000 (what "the whole world"
would cost), so the figures say how much the targeted re-ranking saves.

Writes bench/results/rerank.json. Run: ``python bench/bench_rerank.py`` (``--open N`` to change the count).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, update
from sqlmodel import col
from tqdm import tqdm

from bench.bench_scorer import EXPERTS, numpy_pass, projection_database, requests
from services.matching import repository
from services.matching.consumers import mark_affected, rerank_due
from services.matching.models import ExpertFeature, Ranking, SmeRequest
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.ranker import rank
from services.matching.scoring.rerank import Digests
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from tsunagu.contracts import ExpertRankingChangedV1
from tsunagu.db import session_scope, utcnow
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.reference import topics

RESULTS = Path(__file__).parent / "results" / "rerank.json"


def build(work: Path, open_count: int):
    engine, rows = projection_database(work)
    store = FeatureStore(engine)
    matrix = store.refresh()
    request_rows, ranking_rows = [], []
    for index, wanted in enumerate(tqdm(requests(open_count, seed=23), desc="open requests", unit="req")):
        request_id = f"req-{index:05d}"
        request_rows.append(
            dict(
                id=request_id,
                created_by="bench",
                title=f"相談 {index}",
                prefecture=wanted.prefecture,
                delivery=wanted.delivery,
                topics=wanted.topics,
                explicit_topics=wanted.topics,
                self_diagnosis={},
                skills=wanted.skills,
                industry=wanted.industry,
                status="ranked",
                entity_version=2,
            )
        )
        ranked, candidates = rank(matrix, wanted, limit=20)
        ranking_rows.append(
            dict(
                id=str(uuid.uuid4()),
                request_id=request_id,
                source_event_id=str(uuid.uuid4()),
                weights_version=DEFAULT_WEIGHTS.version,
                candidate_count=candidates,
                entries=[e.as_entry(i + 1, DEFAULT_WEIGHTS, wanted.topics) for i, e in enumerate(ranked)],
            )
        )
    with session_scope(engine) as session:
        for start in range(0, open_count, 1000):
            session.execute(insert(SmeRequest), request_rows[start : start + 1000])
            session.execute(insert(Ranking), ranking_rows[start : start + 1000])
    return engine, store, rows, ranking_rows


def change(engine, store, digests, expert_id: str, values: dict) -> dict:
    """Apply one change to the projection, then time mark + re-rank until nothing is marked."""
    with session_scope(engine) as session:
        seq = repository.next_change_seq(session)
        session.execute(
            update(ExpertFeature)
            .where(col(ExpertFeature.expert_id) == expert_id)
            .values(entity_version=ExpertFeature.entity_version + 1, change_seq=seq, **values)
        )
    event = EventEnvelope.for_change(
        Subjects.EXPERT_RANKING_CHANGED,
        "matching",
        expert_id,
        0,
        ExpertRankingChangedV1(expert_id=expert_id, cause="profile"),
    )
    started = time.perf_counter()
    marked = mark_affected(engine, store, [event], digests)
    mark_seconds = time.perf_counter() - started
    reranked = 0
    while True:
        done = rerank_due(engine, store)
        if not done:
            break
        reranked += done
    total = time.perf_counter() - started
    return {
        "affected": marked,
        "reranked": reranked,
        "mark_ms": round(mark_seconds * 1000, 1),
        "total_ms": round(total * 1000, 1),
        "per_reranked_request_ms": round((total - mark_seconds) * 1000 / reranked, 2) if reranked else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--open", type=int, default=5000, help="open requests (default 5,000)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine, store, rows, rankings = build(Path(tmp), args.open)
        matrix = store.refresh()

        # The floors, same run: one numpy pass, one full ranking, and re-ranking every open request.
        floor = []
        for _ in range(50):
            started = time.perf_counter()
            numpy_pass(matrix)
            floor.append((time.perf_counter() - started) * 1000)
        sample = requests(100, seed=5)
        one_ranking = []
        for wanted in sample:
            started = time.perf_counter()
            rank(matrix, wanted, limit=20)
            one_ranking.append((time.perf_counter() - started) * 1000)

        # Who appears in the most rankings: the change that concerns the most requests; a second one to fill.
        appearances = Counter(e["expert_id"] for r in rankings for e in r["entries"])
        (busiest, busiest_count), (second, second_count) = appearances.most_common(2)
        quiet = next(row for row in rows if row["active"] and row["expert_id"] not in appearances)

        # A worker keeps each ranking's digest (who it holds, its last score) from its first look: warm it as a
        # running worker is, and report that first look on its own.
        digests = Digests()
        started = time.perf_counter()
        with session_scope(engine) as session:
            ids = [row.ranking_id for row in repository.open_requests_with_latest_ranking(session)]
            digests.add(repository.ranking_entries(session, digests.missing(ids)))
        warm_up_ms = (time.perf_counter() - started) * 1000

        scenarios = {
            # An expert nobody ranked becomes strong on every topic, remote: enters many rankings.
            "new_strength": change(
                engine,
                store,
                digests,
                quiet["expert_id"],
                {"topics": dict.fromkeys(topics(), 3), "remote": True, "capacity": 5},
            ),
            "deactivated": change(engine, store, digests, busiest, {"active": False}),
            "full": change(engine, store, digests, second, {"capacity": 0}),
        }
        scenarios["deactivated"]["rankings_holding_the_expert"] = busiest_count
        scenarios["full"]["rankings_holding_the_expert"] = second_count

        # The whole world, for comparison: mark every open request and re-rank them all.
        with session_scope(engine) as session:
            ids = [r.id for r in repository.open_requests(session)]
            repository.mark_rerank_due(session, ids, utcnow())
        started = time.perf_counter()
        everything = 0
        while done := rerank_due(engine, store):
            everything += done
        whole_world_ms = (time.perf_counter() - started) * 1000

    result = {
        "experts": EXPERTS,
        "open_requests": args.open,
        "machine": {"python": platform.python_version(), "cpu": platform.processor() or platform.machine()},
        "floor": {
            "one_numpy_pass_ms_p50": round(statistics.median(floor), 3),
            "one_full_ranking_ms_p50": round(statistics.median(one_ranking), 3),
            "rerank_every_open_request_ms": round(whole_world_ms, 1),
            "rerank_every_open_request_count": everything,
        },
        "worker_first_look_at_the_rankings_ms": round(warm_up_ms, 1),
        "changes": scenarios,
        "weights_version": DEFAULT_WEIGHTS.version,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
