"""Rank every expert for one request in a few vectorised passes, and explain each rank per reader.

Hard filters (an expert failing any is not ranked): active on the list, registration not expired,
capacity left after their open load (accepted proposals + active engagements), not conflicted with nor
employed by the requesting SME, and for on-site help, serving the request's prefecture or a neighbour on
site. Then region, topic, skill, industry, freshness and outcome scores, each in [0, 1], are weighted and
summed, and a bounded exposure penalty (fairness) is subtracted: it moves near-ties, never strong matches.

Reasons are rendered per reader, because the projection holds fields the expert keeps from some readers:
an SME reads only what the expert made public, a broker only what brokers may see (plus the broker-level
facts: freshness, ratings, exposure). What a reader may not see is neither named nor given a number; the
contributions of hidden factors are summed into ``undisclosed``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
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

PUBLIC = "public"
BROKERS = "brokers"
# The profile visibility setting each factor reveals; None: a broker-level fact (never shown to SMEs).
FACTOR_FIELD: dict[str, str | None] = {
    "region": "prefectures",
    "topic": "strengths",
    "skill": "skills",
    "industry": "industries",
    "freshness": None,
    "outcome": None,
    "fairness": None,
}


@dataclass(frozen=True)
class RankingInput:
    prefecture: str
    delivery: str  # onsite | remote | either
    topics: list[str]
    skills: list[str]
    industry: str | None
    organization_id: str | None = None  # the requesting SME: conflicted and employed experts never rank
    request_id: str | None = None  # when ranked again, its own last ranking does not count as exposure


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
    industry: str | None = None  # the request's industry, when the expert has worked in it
    rating_count: int = 0
    rating_mean: float | None = None
    public_fields: frozenset[str] = field(default_factory=frozenset)
    broker_fields: frozenset[str] = field(default_factory=frozenset)

    def may_see(self, factor: str, audience: str) -> bool:
        setting = FACTOR_FIELD[factor]
        if audience == PUBLIC:
            return setting is not None and setting in self.public_fields
        return setting is None or setting in self.broker_fields

    def view(self, audience: str, wanted_topics: list[str]) -> dict[str, Any]:
        shown = {name: round(value, 4) for name, value in self.contributions.items() if self.may_see(name, audience)}
        hidden = sum(value for name, value in self.contributions.items() if not self.may_see(name, audience))
        if len(shown) < len(self.contributions):
            shown["undisclosed"] = round(hidden, 4)
        return {
            "contributions": shown,
            "reason_ja": explain_ja(self, wanted_topics, audience),
            "reason_en": explain_en(self, wanted_topics, audience),
        }

    def as_entry(self, rank: int, weights: Weights, wanted_topics: list[str]) -> dict[str, Any]:
        """The stored entry: the public (SME) view at the top level, the broker view under ``views``;
        ``entry_for_reader`` picks one, so a reader never gets the other."""
        return {
            "rank": rank,
            "expert_id": self.expert_id,
            "display_name": self.display_name,
            "score": round(self.score, 4),
            **self.view(PUBLIC, wanted_topics),
            "views": {BROKERS: self.view(BROKERS, wanted_topics)},
            "weights_version": weights.version,
        }


def entry_for_reader(entry: dict[str, Any], audience: str) -> dict[str, Any]:
    """A stored entry as this audience may read it (``public`` for SMEs, ``brokers`` for broker, hub and
    admin staff): the other audience's rendering is dropped."""
    views = entry.get("views") or {}
    shown = {key: value for key, value in entry.items() if key != "views"}
    if audience == BROKERS and BROKERS in views:
        shown |= views[BROKERS]
    return shown


_REGION_WORDS = {
    "same_prefecture": ("同じ都道府県で対応", "serves the same prefecture"),
    "neighbour": ("隣接県から対応", "serves a neighbouring prefecture"),
    "same_bureau": ("同じ経済産業局管内から対応", "serves the same METI region"),
    "remote": ("リモートで対応", "can help remotely"),
    "none": ("地域の一致なし", "no regional match"),
}
_NOTHING_SHOWN = ("公開されている情報の範囲では理由を表示できません", "no reason can be shown from the public profile")


def explain_ja(entry: RankedExpert, wanted_topics: list[str], audience: str = BROKERS) -> str:
    labels = topics()
    parts = []
    if entry.may_see("region", audience):
        parts.append(_REGION_WORDS[entry.region_level][0])
    if wanted_topics and entry.may_see("topic", audience):
        if entry.covered_topics:
            first = (
                labels[entry.covered_topics[0]].label_ja
                if entry.covered_topics[0] in labels
                else entry.covered_topics[0]
            )
            more = f"など{len(entry.covered_topics)}件" if len(entry.covered_topics) > 1 else ""
            parts.append(f"相談テーマ{len(wanted_topics)}件中{len(entry.covered_topics)}件が得意分野（{first}{more}）")
        else:
            parts.append("相談テーマは得意分野外")
    if entry.matched_skills and entry.may_see("skill", audience):
        parts.append(f"求めるスキル{entry.matched_skills}件が一致")
    if entry.industry and entry.may_see("industry", audience):
        parts.append(f"業種（{entry.industry}）の支援経験あり")
    if entry.days_since_confirmed is not None and entry.may_see("freshness", audience):
        parts.append(f"活動確認は{entry.days_since_confirmed}日前")
    if entry.may_see("outcome", audience) and entry.rating_count and entry.rating_mean is not None:
        parts.append(f"中小企業からの評価 平均{entry.rating_mean:.1f}（{entry.rating_count}件）")
    if entry.may_see("fairness", audience) and entry.contributions.get("fairness", 0.0) <= -0.005:
        parts.append("最近の紹介が多いため順位を少し調整")
    return "・".join(parts) if parts else _NOTHING_SHOWN[0]


def explain_en(entry: RankedExpert, wanted_topics: list[str], audience: str = BROKERS) -> str:
    parts = []
    if entry.may_see("region", audience):
        parts.append(_REGION_WORDS[entry.region_level][1])
    if wanted_topics and entry.may_see("topic", audience):
        parts.append(f"covers {len(entry.covered_topics)} of {len(wanted_topics)} topics")
    if entry.matched_skills and entry.may_see("skill", audience):
        parts.append(f"{entry.matched_skills} requested skills match")
    if entry.industry and entry.may_see("industry", audience):
        parts.append(f"has worked in the industry ({entry.industry})")
    if entry.days_since_confirmed is not None and entry.may_see("freshness", audience):
        parts.append(f"confirmed active {entry.days_since_confirmed} days ago")
    if entry.may_see("outcome", audience) and entry.rating_count and entry.rating_mean is not None:
        parts.append(f"rated {entry.rating_mean:.1f} on average by SMEs ({entry.rating_count})")
    if entry.may_see("fairness", audience) and entry.contributions.get("fairness", 0.0) <= -0.005:
        parts.append("moved down a little: shown often recently")
    return "; ".join(parts) if parts else _NOTHING_SHOWN[1]


Selection = slice | np.ndarray  # every row (a slice: views, no copies) or some rows (their numbers)


def _positions(selection: Selection, rows: Iterable[int]) -> list[tuple[int, int]]:
    """(global row, position in the selection) for the given global rows that the selection holds."""
    if isinstance(selection, slice):
        return [(row, row) for row in rows if row < (selection.stop or 0)]
    where = {int(row): position for position, row in enumerate(selection.tolist())}
    return [(row, where[row]) for row in rows if row in where]


@functools.lru_cache(maxsize=64)
def _region_columns(target: str) -> tuple[list[int], list[int]]:
    """The matrix columns of a prefecture's neighbours and of its regional bureau (経済産業局)."""
    reference = prefectures()
    neighbours = [PREFECTURE_INDEX[code] for code in reference[target].neighbours]
    bureau = [PREFECTURE_INDEX[c] for c, p in reference.items() if p.bureau == reference[target].bureau]
    return neighbours, bureau


def _tag_hits(
    matrix: FeatureMatrix,
    index: dict[str, set[int]],
    row_tags: list[tuple[str, ...]],
    tags: list[str],
    selection: Selection,
) -> np.ndarray:
    """How many of ``tags`` each selected expert has: from the inverted index for every row, from the
    rows' own tags for a few rows (a common skill's index holds thousands of rows)."""
    if isinstance(selection, slice):
        return matrix.tag_hits(index, tags)[selection]
    return np.array(
        [sum(tag in held for tag in tags) for held in (set(row_tags[row]) for row in selection.tolist())],
        dtype=np.float32,
    )


@dataclass
class _Scored:
    """Every factor over the selected rows (arrays aligned with the selection)."""

    total: np.ndarray  # -1.0 where not eligible
    eligible: np.ndarray
    parts: dict[str, np.ndarray]
    same: np.ndarray
    near: np.ndarray
    bureau: np.ndarray
    remote: np.ndarray
    skill_hits: np.ndarray
    industry: np.ndarray
    age: np.ndarray
    confirmed: np.ndarray


def _score(
    matrix: FeatureMatrix, request: RankingInput, selection: Selection, today_ordinal: int, weights: Weights
) -> _Scored:
    target = request.prefecture
    served = matrix.served[selection]
    count = served.shape[0]

    # Region: which level of closeness each expert reaches for the request's prefecture.
    same = served[:, PREFECTURE_INDEX[target]]
    neighbour_columns, bureau_columns = _region_columns(target)
    near = served[:, neighbour_columns].any(axis=1) if neighbour_columns else np.zeros(count, dtype=bool)
    bureau = served[:, bureau_columns].any(axis=1)
    remote = matrix.remote[selection]
    onsite = matrix.onsite[selection]

    can_onsite = onsite & (same | near)
    if request.delivery == "onsite":
        reachable = can_onsite
    elif request.delivery == "remote":
        reachable = remote.copy()
    else:
        reachable = can_onsite | remote

    eligible = (
        matrix.active[selection]
        & (matrix.expires[selection] >= today_ordinal)
        & (matrix.capacity[selection] > matrix.load[selection])
        & reachable
    )
    blocked = matrix.blocked_for(request.organization_id)
    if blocked is not None and isinstance(selection, slice):
        eligible[blocked] = False
    elif blocked is not None:
        for _, position in _positions(selection, blocked.tolist()):
            eligible[position] = False
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
        depth = matrix.depth[selection][:, [TOPIC_INDEX[t] for t in wanted]].astype(np.float32)
        topic = (depth / weights.max_depth).sum(axis=1) / len(wanted)
    else:
        topic = np.zeros(count, dtype=np.float32)

    skill_hits = _tag_hits(matrix, matrix.skill_rows, matrix.row_skills, request.skills, selection)
    skill = skill_hits / len(request.skills) if request.skills else np.zeros(count, dtype=np.float32)
    industry = (
        np.minimum(_tag_hits(matrix, matrix.industry_rows, matrix.row_industries, [request.industry], selection), 1.0)
        if request.industry
        else np.zeros(count, dtype=np.float32)
    )

    confirmed = matrix.confirmed[selection]
    age = np.where(confirmed > 0, today_ordinal - confirmed, weights.stale_days)
    freshness = np.clip(
        (weights.stale_days - np.maximum(age, weights.fresh_days)) / (weights.stale_days - weights.fresh_days), 0.0, 1.0
    )

    # Outcomes: the Bayesian average of SME stars, shrunk toward the global mean with a prior weight, in [0, 1].
    prior = matrix.rating_prior if matrix.rating_prior is not None else weights.outcome_prior_mean
    rated = matrix.rating_count[selection].astype(np.float32)
    stars = (weights.outcome_prior_weight * prior + rated * matrix.rating_mean[selection]) / (
        weights.outcome_prior_weight + rated
    )
    outcome = (stars - 1.0) / 4.0

    # Fairness of exposure: bounded, so only near-ties move. This request's own last ranking is left out.
    exposure = matrix.exposure[selection]
    own = matrix.exposure_source.own(request.request_id) if matrix.exposure_source is not None else {}
    if own:
        exposure = exposure.copy()
        rows = [matrix.row_of[expert_id] for expert_id in own if expert_id in matrix.row_of]
        for row, position in _positions(selection, rows):
            exposure[position] = max(0.0, exposure[position] - own[matrix.expert_ids[row]])
    fairness = -weights.fairness_max * exposure / (exposure + weights.exposure_half)

    parts = {
        "region": weights.region * region,
        "topic": weights.topic * topic,
        "skill": weights.skill * skill,
        "industry": weights.industry * industry,
        "freshness": weights.freshness * freshness,
        "outcome": weights.outcome * outcome,
        "fairness": fairness,
    }
    total = np.where(eligible, sum(parts.values()), -1.0)
    return _Scored(total, eligible, parts, same, near, bureau, remote, skill_hits, industry, age, confirmed)


def scores_of(
    matrix: FeatureMatrix,
    request: RankingInput,
    rows: np.ndarray,
    *,
    today: date | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> np.ndarray:
    """The score ``rank`` would give each of these rows for the request (NaN where not eligible): what the
    re-ranking asks of a few changed experts against every open request, without ranking everyone."""
    if len(rows) == 0:
        return np.zeros(0, dtype=np.float64)
    scored = _score(matrix, request, rows, (today or date.today()).toordinal(), weights)
    return np.where(scored.eligible, scored.total, np.nan)


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
    scored = _score(matrix, request, slice(0, n), (today or date.today()).toordinal(), weights)
    total = scored.total
    candidates = int(scored.eligible.sum())
    k = min(limit, candidates)
    if k == 0:
        return [], 0
    top = np.argpartition(-total, k - 1)[:k]
    # Ties broken by expert id so the same input always gives the same order.
    top = sorted(top.tolist(), key=lambda row: (-float(total[row]), matrix.expert_ids[row]))

    wanted = [t for t in request.topics if t in TOPIC_INDEX]
    ranked = []
    for row in top:
        level = (
            "same_prefecture"
            if scored.same[row]
            else "neighbour"
            if scored.near[row]
            else "same_bureau"
            if scored.bureau[row]
            else "remote"
            if scored.remote[row]
            else "none"
        )
        covered = [t for t in wanted if matrix.depth[row, TOPIC_INDEX[t]] > 0]
        ranked.append(
            RankedExpert(
                expert_id=matrix.expert_ids[row],
                display_name=matrix.names[row],
                score=float(total[row]),
                contributions={name: float(values[row]) for name, values in scored.parts.items()},
                region_level=level,
                covered_topics=covered,
                matched_skills=int(scored.skill_hits[row]),
                days_since_confirmed=int(scored.age[row]) if scored.confirmed[row] > 0 else None,
                industry=request.industry if scored.industry[row] > 0 else None,
                rating_count=int(matrix.rating_count[row]),
                rating_mean=float(matrix.rating_mean[row]) if matrix.rating_count[row] else None,
                public_fields=matrix.row_public[row],
                broker_fields=matrix.row_brokers[row],
            )
        )
    return ranked, candidates
