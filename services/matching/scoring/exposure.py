"""Exposure of each expert in recent rankings and proposals: what the fairness penalty reads.

Why: a pure top-score list shows the same few experts for every similar request, so they get every
opportunity and the rest of the list none (Biega et al. 2018, "Equity of Attention"). Exposure is
position-weighted like attention is: an expert at rank r of a request's latest ranking (top
``exposure_top`` only) gets 1 / log2(1 + r); each proposal made to them counts as a first place. Only
the window of ``exposure_window_days`` counts, and only a request's latest ranking (a re-ranked request
is not counted twice).

The store is shared by every worker through the database: it reads rankings computed since it last
looked (with a small overlap, so a ranking committed late by another worker is not missed) and keeps
totals per expert incrementally, so a refresh costs the new rankings only.

A worker records its own rankings as their transactions commit (``record``), so its next ranking counts them;
what other workers ranked and the proposals made are read from the database at most every
``REFRESH_SECONDS``. Exposure is a slow signal (four weeks of rankings): a second's delay changes no order
that matters, while reading the window's keys before every ranking was a quarter of a scorer's CPU per
request (py-spy, bench_pipeline.py at 30,000 experts).
"""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlmodel import Session

from services.matching import repository
from services.matching.scoring.weights import DEFAULT_WEIGHTS, Weights

OVERLAP = timedelta(seconds=30)
REFRESH_SECONDS = 1.0  # how often the rankings of other workers and the proposals are read


def position_weight(rank: int) -> float:
    return 1.0 / math.log2(1 + rank)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def entry_exposure(entries: list[dict[str, Any]], top: int) -> dict[str, float]:
    exposure: dict[str, float] = {}
    for entry in entries:
        rank = int(entry.get("rank", 0))
        if 1 <= rank <= top and entry.get("expert_id"):
            exposure[entry["expert_id"]] = exposure.get(entry["expert_id"], 0.0) + position_weight(rank)
    return exposure


class ExposureStore:
    def __init__(self, weights: Weights = DEFAULT_WEIGHTS, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self.weights = weights
        self.refresh_seconds = refresh_seconds
        self._refreshed_at: datetime | None = None
        self._lock = threading.RLock()  # a worker records its rankings from several threads
        self.by_request: dict[str, tuple[datetime, dict[str, float]]] = {}
        self.totals: dict[str, float] = {}
        self.proposal_counts: dict[str, int] = {}
        self._seen: datetime | None = None
        self._dirty: set[str] = set()
        self._filled_proposals: dict[str, int] = {}

    def _add(self, exposure: dict[str, float], sign: float) -> None:
        for expert_id, value in exposure.items():
            total = self.totals.get(expert_id, 0.0) + sign * value
            if total <= 1e-9:
                self.totals.pop(expert_id, None)
            else:
                self.totals[expert_id] = total
            self._dirty.add(expert_id)

    def record(self, request_id: str, computed_at: datetime, entries: list[dict[str, Any]]) -> None:
        """A request's ranking replaces its previous one in the totals (if newer)."""
        computed_at = _aware(computed_at)
        exposure = entry_exposure(entries, self.weights.exposure_top)
        with self._lock:
            previous = self.by_request.get(request_id)
            if previous is not None:
                if previous[0] >= computed_at:
                    return
                self._add(previous[1], -1.0)
            self.by_request[request_id] = (computed_at, exposure)
            self._add(exposure, 1.0)

    def refresh(self, session: Session, now: datetime) -> None:
        """Read what other workers ranked and the proposals since the last look, unless that was less than
        ``refresh_seconds`` ago (the first look always reads the whole window)."""
        with self._lock:
            self._refresh(session, now)

    def _refresh(self, session: Session, now: datetime) -> None:
        if self._refreshed_at is not None and (now - self._refreshed_at).total_seconds() < self.refresh_seconds:
            return
        self._refreshed_at = now
        window_start = now - timedelta(days=self.weights.exposure_window_days)
        since = window_start if self._seen is None else max(window_start, self._seen - OVERLAP)
        keys = repository.rankings_computed_since(session, since)
        # The overlap re-reads recent keys; entries are fetched only for rankings not recorded yet.
        new = [
            (ranking_id, request_id, _aware(computed_at))
            for ranking_id, request_id, computed_at in keys
            if request_id not in self.by_request or self.by_request[request_id][0] < _aware(computed_at)
        ]
        entries = repository.ranking_entries(session, [ranking_id for ranking_id, _, _ in new])
        for ranking_id, request_id, computed_at in new:
            self.record(request_id, computed_at, entries.get(ranking_id, []))
        for _, _, computed_at in keys:
            self._seen = max(self._seen or _aware(computed_at), _aware(computed_at))
        for request_id, (computed_at, exposure) in list(self.by_request.items()):
            if computed_at < window_start:
                del self.by_request[request_id]
                self._add(exposure, -1.0)
        self.proposal_counts = repository.proposal_counts_since(session, window_start)

    def own(self, request_id: str | None) -> dict[str, float]:
        """What this request's latest ranking contributed (left out when the request is ranked again)."""
        if request_id is None or request_id not in self.by_request:
            return {}
        return self.by_request[request_id][1]

    def fill(self, row_of: dict[str, int], values: np.ndarray, proposals: dict[str, int]) -> None:
        """Write changed totals (rankings + proposals, a proposal counting as a first place) into the
        matrix's exposure column ``values`` (rows by ``row_of``)."""
        with self._lock:
            self._fill(row_of, values, proposals)

    def _fill(self, row_of: dict[str, int], values: np.ndarray, proposals: dict[str, int]) -> None:
        changed = self._dirty | set(proposals) | set(self._filled_proposals)
        for expert_id in changed:
            row = row_of.get(expert_id)
            if row is not None:
                values[row] = self.totals.get(expert_id, 0.0) + float(proposals.get(expert_id, 0))
        self._dirty = {expert_id for expert_id in self._dirty if expert_id not in row_of}
        self._filled_proposals = dict(proposals)
