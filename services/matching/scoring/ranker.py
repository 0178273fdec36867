"""Rank every expert for one request in a few vectorised passes, and explain each rank in Japanese.

Hard filters (an expert failing any is not ranked): active on the list, registration not expired,
capacity left, and for on-site help, serving the request's prefecture or a neighbour on site.
Then region, topic, skill, industry and freshness scores, each in [0, 1], are weighted and summed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from services.matching.scoring.features import (
    PREFECTURE_INDEX,
    TOPIC_INDEX,
    FeatureMatrix,
)
from services.matching.scoring.weights import DEFAULT_WEIGHTS, Weights
from tsunagu.reference import prefectures, topics


@dataclass(frozen=True)
class RankingInput:
    prefecture: str
    delivery: str  # onsite | remote | either
    topics: list[str]
    skills: list[str]
    industry: str | None


@dataclass(frozen=True)
class RankedExpert:
    expert_id: str
    display_name: str
    score: float
    contributions: dict[str, float]
    region_level: str
    covered_topics: list[str]
    matched_skills: int
    days_since_confirmed: int | None

    def as_entry(self, rank: int, weights: Weights, wanted_topics: list[str]) -> dict[str, Any]:
        return {
            "rank": rank,
            "expert_id": self.expert_id,
            "display_name": self.display_name,
            "score": round(self.score, 4),
            "contributions": {name: round(value, 4) for name, value in self.contributions.items()},
            "reason_ja": explain_ja(self, wanted_topics),
            "reason_en": explain_en(self, wanted_topics),
            "weights_version": weights.version,
        }


_REGION_WORDS = {
    "same_prefecture": ("同じ都道府県で対応", "serves the same prefecture"),
    "neighbour": ("隣接県から対応", "serves a neighbouring prefecture"),
    "same_bureau": ("同じ経済産業局管内から対応", "serves the same METI region"),
    "remote": ("リモートで対応", "can help remotely"),
    "none": ("地域の一致なし", "no regional match"),
}


def explain_ja(entry: RankedExpert, wanted_topics: list[str]) -> str:
    labels = topics()
    parts = [_REGION_WORDS[entry.region_level][0]]
    if wanted_topics:
        if entry.covered_topics:
            first = labels[entry.covered_topics[0]].label_ja if entry.covered_topics[0] in labels else entry.covered_topics[0]
            more = f"など{len(entry.covered_topics)}件" if len(entry.covered_topics) > 1 else ""
            parts.append(f"相談テーマ{len(wanted_topics)}件中{len(entry.covered_topics)}件が得意分野（{first}{more}）")
        else:
            parts.append("相談テーマは得意分野外")
    if entry.matched_skills:
        parts.append(f"求めるスキル{entry.matched_skills}件が一致")
    if entry.days_since_confirmed is not None:
        parts.append(f"活動確認は{entry.days_since_confirmed}日前")
    return "・".join(parts)


def explain_en(entry: RankedExpert, wanted_topics: list[str]) -> str:
    parts = [_REGION_WORDS[entry.region_level][1]]
    if wanted_topics:
        parts.append(f"covers {len(entry.covered_topics)} of {len(wanted_topics)} topics")
    if entry.matched_skills:
        parts.append(f"{entry.matched_skills} requested skills match")
    if entry.days_since_confirmed is not None:
        parts.append(f"confirmed active {entry.days_since_confirmed} days ago")
    return "; ".join(parts)


def rank(
    matrix: FeatureMatrix,
    request: RankingInput,
    *,
    today: date | None = None,
    limit: int = 20,
    weights: Weights = DEFAULT_WEIGHTS,
) -> tuple[list[RankedExpert], int]:
    """The top ``limit`` experts and how many passed the hard filters."""
    n = matrix.size
    if n == 0:
        return [], 0
    today_ordinal = (today or date.today()).toordinal()
    reference = prefectures()
    target = request.prefecture
    served = matrix.served[:n]

    # Region: which level of closeness each expert reaches for the request's prefecture.
    same = served[:, PREFECTURE_INDEX[target]]
    neighbour_columns = [PREFECTURE_INDEX[code] for code in reference[target].neighbours]
    near = served[:, neighbour_columns].any(axis=1) if neighbour_columns else np.zeros(n, dtype=bool)
    bureau_columns = [PREFECTURE_INDEX[c] for c, p in reference.items() if p.bureau == reference[target].bureau]
    bureau = served[:, bureau_columns].any(axis=1)
    remote = matrix.remote[:n]
    onsite = matrix.onsite[:n]

    can_onsite = onsite & (same | near)
    if request.delivery == "onsite":
        reachable = can_onsite
    elif request.delivery == "remote":
        reachable = remote.copy()
    else:
        reachable = can_onsite | remote

    eligible = (
        matrix.active[:n]
        & (matrix.expires[:n] >= today_ordinal)
        & (matrix.capacity[:n] > 0)
        & reachable
    )
    region = np.where(
        same & (onsite | remote),
        weights.same_prefecture,
        np.where(
            near & (onsite | remote),
            weights.neighbour,
            np.where(bureau, weights.same_bureau, np.where(remote, weights.remote_only, 0.0)),
        ),
    )
    if request.delivery == "remote":
        # For remote help, distance matters less: being reachable at all is most of the value.
        region = np.maximum(region, weights.remote_only * remote)

    wanted = [t for t in request.topics if t in TOPIC_INDEX]
    if wanted:
        depth = matrix.depth[:n][:, [TOPIC_INDEX[t] for t in wanted]].astype(np.float32)
        topic = (depth / weights.max_depth).sum(axis=1) / len(wanted)
    else:
        topic = np.zeros(n, dtype=np.float32)

    skill_hits = matrix.tag_hits(matrix.skill_rows, request.skills)
    skill = skill_hits / len(request.skills) if request.skills else np.zeros(n, dtype=np.float32)
    industry = (
        np.minimum(matrix.tag_hits(matrix.industry_rows, [request.industry]), 1.0)
        if request.industry
        else np.zeros(n, dtype=np.float32)
    )

    confirmed = matrix.confirmed[:n]
    age = np.where(confirmed > 0, today_ordinal - confirmed, weights.stale_days)
    freshness = np.clip(
        (weights.stale_days - np.maximum(age, weights.fresh_days)) / (weights.stale_days - weights.fresh_days), 0.0, 1.0
    )

    parts = {
        "region": weights.region * region,
        "topic": weights.topic * topic,
        "skill": weights.skill * skill,
        "industry": weights.industry * industry,
        "freshness": weights.freshness * freshness,
    }
    total = sum(parts.values())
    total = np.where(eligible, total, -1.0)
    candidates = int(eligible.sum())
    k = min(limit, candidates)
    if k == 0:
        return [], 0
    top = np.argpartition(-total, k - 1)[:k]
    # Ties broken by expert id so the same input always gives the same order.
    top = sorted(top.tolist(), key=lambda row: (-float(total[row]), matrix.expert_ids[row]))

    ranked = []
    for row in top:
        level = (
            "same_prefecture"
            if same[row]
            else "neighbour" if near[row] else "same_bureau" if bureau[row] else "remote" if remote[row] else "none"
        )
        covered = [t for t in wanted if matrix.depth[row, TOPIC_INDEX[t]] > 0]
        ranked.append(
            RankedExpert(
                expert_id=matrix.expert_ids[row],
                display_name=matrix.names[row],
                score=float(total[row]),
                contributions={name: float(values[row]) for name, values in parts.items()},
                region_level=level,
                covered_topics=covered,
                matched_skills=int(skill_hits[row]),
                days_since_confirmed=int(age[row]) if confirmed[row] > 0 else None,
            )
        )
    return ranked, candidates
