"""Which open requests an expert change may move: re-rank those, not the whole world.

An expert's rankings change when their profile changes (a new strength, deactivated, a new prefecture), when
their open load changes (full after an accept, freed by a completion or a cancellation) or when they are
rated. With thousands of open requests, re-ranking every one of them on every such change would cost
seconds of scorer time per change and bury new submissions; most changes move nothing.

An open request is affected by a changed expert when
- the expert is in its latest ranking (they may have moved, or must leave it: inactive, full, conflicted), or
- the expert, as they are now, is eligible and would enter it: the ranking has room (fewer entries than the
  limit) or their score beats its last entry's.

The second test scores just the changed experts against each open request (``ranker.scores_of``: a few
rows, not 30,000), so finding the affected requests among 5,000 costs a fraction of one ranking each. A
request found affected is marked (``requests.rerank_due_at``); the workers re-rank marked requests in the
background (services/matching/consumers.py), so many changes to one request in a burst cost one re-ranking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from services.matching.scoring.features import FeatureMatrix
from services.matching.scoring.ranker import RankingInput, scores_of
from services.matching.scoring.weights import DEFAULT_WEIGHTS, Weights

RANKING_LIMIT = 20  # the ranking's length (ranker.rank's default limit)


@dataclass(frozen=True)
class Digest:
    """What the re-ranking needs of a ranking: who it holds, its last entry's score, how many entries."""

    expert_ids: frozenset[str]
    cutoff: float | None
    count: int

    @classmethod
    def of(cls, entries: list[dict[str, Any]]) -> Digest:
        scores = [float(entry["score"]) for entry in entries]
        return cls(frozenset(entry["expert_id"] for entry in entries), min(scores) if scores else None, len(entries))


EMPTY = Digest(frozenset(), None, 0)


class Digests:
    """Digests by ranking id. A ranking never changes once written, so a digest is computed once per worker
    and kept while its ranking is still some open request's latest (``keep``)."""

    def __init__(self) -> None:
        self._by_id: dict[str, Digest] = {}

    def missing(self, ranking_ids: list[str | None]) -> list[str]:
        return [ranking_id for ranking_id in ranking_ids if ranking_id and ranking_id not in self._by_id]

    def add(self, entries_by_id: dict[str, list[dict[str, Any]]]) -> None:
        for ranking_id, entries in entries_by_id.items():
            self._by_id[ranking_id] = Digest.of(entries)

    def get(self, ranking_id: str | None) -> Digest:
        return self._by_id.get(ranking_id, EMPTY) if ranking_id else EMPTY

    def keep(self, ranking_ids: list[str | None]) -> None:
        current = set(ranking_ids)
        self._by_id = {key: value for key, value in self._by_id.items() if key in current}


@dataclass(frozen=True)
class OpenRanking:
    """An open request as the re-ranking sees it: what it asks and its latest ranking's digest."""

    request_id: str
    request: RankingInput
    ranking: Digest


def affected_requests(
    matrix: FeatureMatrix,
    open_rankings: list[OpenRanking],
    changed_expert_ids: set[str],
    *,
    limit: int = RANKING_LIMIT,
    today: date | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
) -> list[str]:
    """The ids of the open requests whose ranking the changed experts may move (in the given order)."""
    rows = np.array(sorted(matrix.row_of[e] for e in changed_expert_ids if e in matrix.row_of), dtype=np.int64)
    affected = []
    for open_ranking in open_rankings:
        ranking = open_ranking.ranking
        if ranking.expert_ids & changed_expert_ids:
            affected.append(open_ranking.request_id)
            continue
        if len(rows) == 0:
            continue
        scores = scores_of(matrix, open_ranking.request, rows, today=today, weights=weights)
        if np.isnan(scores).all():
            continue  # none of them may serve this request, now as before (they were not in its ranking)
        if ranking.count < limit or ranking.cutoff is None or float(np.nanmax(scores)) > ranking.cutoff:
            affected.append(open_ranking.request_id)
    return affected
