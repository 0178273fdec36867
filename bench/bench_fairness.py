"""Fairness of exposure at national size: 1,000 synthetic requests over 30,000 experts.

Why: the fairness penalty (scoring/weights.py ``fairness_max``) should spread opportunities over the list
without costing brokers the quality of their shortlists. Measured as the literature does, for plain
top-score and for the fair order in the same run, on the same requests:

- amortized individual unfairness (Biega, Gummadi, Weikum 2018, "Equity of Attention"): accumulated over
  the requests, the L1 distance between each expert's share of position-weighted exposure
  (1 / log2(1 + rank), top 10 shown) and their share of relevance. Relevance is the plain score (without
  the penalty) of the request's candidate pool (its 200 best eligible experts), normalised per request
  so every request hands out the same total relevance as exposure; lower is fairer, 0 is ideal;
- the Gini coefficient of accumulated exposure over all 30,000 experts (0 equal, 1 one expert has all);
- how many distinct experts were ever shown in a top 10;
- the quality it costs: NDCG@10 of the fair order with the plain scores as gains, against the ideal
  (plain) order, mean and minimum over the requests.

Writes bench/results/fairness.json. Run: ``python bench/bench_fairness.py``.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_scorer import EXPERTS, feature_rows, requests
from services.matching.scoring.exposure import ExposureStore, position_weight
from services.matching.scoring.features import FeatureMatrix, FeatureRow
from services.matching.scoring.ranker import rank
from services.matching.scoring.weights import DEFAULT_WEIGHTS

REQUESTS = 1000
SHOWN = 10
POOL = 200
RESULTS = Path(__file__).parent / "results" / "fairness.json"


def build_matrix() -> FeatureMatrix:
    matrix = FeatureMatrix()
    for row in feature_rows(EXPERTS):
        values = {name: row.get(name) for name in FeatureRow._fields}
        values |= {
            "conflicted_organization_ids": [],
            "employer_organization_id": None,
            "public_fields": [],
            "broker_fields": [],
        }
        matrix.upsert(FeatureRow(**values))
    return matrix


def gini(values: np.ndarray) -> float:
    ordered = np.sort(values.astype(np.float64))
    n = len(ordered)
    total = ordered.sum()
    if total == 0:
        return 0.0
    index = np.arange(1, n + 1)
    return float((2 * (index * ordered).sum()) / (n * total) - (n + 1) / n)


def run(matrix: FeatureMatrix, fair: bool) -> dict:
    weights = DEFAULT_WEIGHTS if fair else replace(DEFAULT_WEIGHTS, fairness_max=0.0)
    plain_weights = replace(DEFAULT_WEIGHTS, fairness_max=0.0)
    store = ExposureStore(weights)
    matrix.exposure[:] = 0.0
    matrix.exposure_source = store
    n = matrix.size
    attention = np.zeros(n)
    relevance = np.zeros(n)
    ndcgs, latencies = [], []
    started_at = datetime.now(UTC)
    for index, synthetic in enumerate(requests(REQUESTS, seed=23)):
        request = replace(synthetic, request_id=f"r{index}")
        # The plain scores of the candidate pool: relevance, and the gains for NDCG.
        pool, _ = rank(matrix, request, limit=POOL, weights=plain_weights)
        if not pool:
            continue
        plain = {entry.expert_id: entry.score - entry.contributions["fairness"] for entry in pool}
        started = time.perf_counter()
        shown, _ = rank(matrix, request, limit=SHOWN, weights=weights) if fair else (pool[:SHOWN], 0)
        latencies.append((time.perf_counter() - started) * 1000)
        exposure_total = sum(position_weight(r) for r in range(1, len(shown) + 1))
        relevance_total = sum(plain.values())
        for expert_id, score in plain.items():
            relevance[matrix.row_of[expert_id]] += exposure_total * score / relevance_total
        for position, entry in enumerate(shown, start=1):
            attention[matrix.row_of[entry.expert_id]] += position_weight(position)
        dcg = sum(plain.get(e.expert_id, 0.0) * position_weight(p) for p, e in enumerate(shown, start=1))
        ideal = sum(
            score * position_weight(p) for p, score in enumerate(sorted(plain.values(), reverse=True)[:SHOWN], 1)
        )
        ndcgs.append(dcg / ideal if ideal else 1.0)
        # What the workers do between rankings: this ranking becomes exposure for the next ones.
        store.record(
            request.request_id,
            started_at + timedelta(seconds=index),
            [{"rank": p, "expert_id": e.expert_id} for p, e in enumerate(shown, start=1)],
        )
        store.fill(matrix.row_of, matrix.exposure, {})
    unfairness = float(np.abs(attention / attention.sum() - relevance / relevance.sum()).sum())
    return {
        "amortized_individual_unfairness_l1": round(unfairness, 4),
        "gini_of_exposure_all_experts": round(gini(attention), 4),
        "gini_of_exposure_among_shown": round(gini(attention[attention > 0]), 4),
        "distinct_experts_shown": int((attention > 0).sum()),
        "max_exposure_one_expert": round(float(attention.max()), 2),
        "ndcg_at_10_vs_plain": {"mean": round(statistics.fmean(ndcgs), 4), "min": round(min(ndcgs), 4)},
        # The fair order's own ranking call (plain reuses the pool's order, so it has no figure of its own).
        "rank_ms_p50": round(statistics.median(latencies), 2) if fair else None,
        "requests": len(ndcgs),
    }


def main() -> None:
    matrix = build_matrix()
    plain = run(matrix, fair=False)
    fair = run(matrix, fair=True)
    figures = {
        "benchmark": "fairness of exposure (Biega et al. 2018) at national size",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "experts": EXPERTS,
        "requests": REQUESTS,
        "shown_per_request": SHOWN,
        "relevance_pool_per_request": POOL,
        "weights_version": DEFAULT_WEIGHTS.version,
        "fairness_max": DEFAULT_WEIGHTS.fairness_max,
        "exposure_half": DEFAULT_WEIGHTS.exposure_half,
        "plain_top_score": plain,
        "fair_order": fair,
        "unfairness_reduction": round(
            1 - fair["amortized_individual_unfairness_l1"] / plain["amortized_individual_unfairness_l1"], 4
        )
        if plain["amortized_individual_unfairness_l1"]
        else None,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
