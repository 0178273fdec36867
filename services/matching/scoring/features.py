"""The expert projection as numpy arrays, kept in memory and refreshed incrementally.

One row per expert. Prefectures and topics are dense boolean / depth matrices (47 and ~45 columns);
skills and industries are open vocabularies, kept as inverted indexes (tag -> row numbers), and so are
the organisations an expert must never be ranked for (declared conflicts and the employer).

Beside the projection, the store keeps what changes without a profile event and must still count at
every ranking: each expert's open load (accepted proposals + active engagements, against capacity), their
SME ratings (the outcome factor) and their recent exposure (the fairness penalty). These are read again
on every refresh, with small grouped queries, so a completed engagement frees its slot at the next ranking.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching import repository
from services.matching.scoring.exposure import ExposureStore
from tsunagu.reference import prefectures, topics

PREFECTURE_CODES = sorted(prefectures())
PREFECTURE_INDEX = {code: i for i, code in enumerate(PREFECTURE_CODES)}
TOPIC_IDS = sorted(topics())
TOPIC_INDEX = {topic: i for i, topic in enumerate(TOPIC_IDS)}
NO_DATE = np.iinfo(np.int32).max  # "never expires" / "never confirmed" sentinel handled per use


def _ordinal(value: date | datetime | None, missing: int) -> int:
    if value is None:
        return missing
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).date().toordinal()
    return value.toordinal()


class FeatureRow(NamedTuple):
    """The projection columns the scorer reads."""

    expert_id: str
    entity_version: int
    change_seq: int
    display_name: str
    active: bool
    prefectures: list[str]
    onsite: bool
    remote: bool
    topics: dict[str, int]
    skills: list[str]
    industries: list[str]
    capacity: int
    registration_expires_on: date | None
    last_confirmed_at: datetime | None
    conflicted_organization_ids: list[str]
    employer_organization_id: str | None
    public_fields: list[str]
    broker_fields: list[str]


@dataclass
class FeatureMatrix:
    capacity_rows: int = 1024
    size: int = 0
    expert_ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    row_of: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.capacity_rows
        self.served = np.zeros((n, len(PREFECTURE_CODES)), dtype=bool)
        self.depth = np.zeros((n, len(TOPIC_IDS)), dtype=np.int8)
        self.active = np.zeros(n, dtype=bool)
        self.onsite = np.zeros(n, dtype=bool)
        self.remote = np.zeros(n, dtype=bool)
        self.capacity = np.zeros(n, dtype=np.int32)
        self.expires = np.full(n, NO_DATE, dtype=np.int32)
        self.confirmed = np.zeros(n, dtype=np.int32)
        # Dynamic state (set by FeatureStore.refresh): open load, rating count and mean, exposure.
        self.load = np.zeros(n, dtype=np.int32)
        self.rating_count = np.zeros(n, dtype=np.int32)
        self.rating_mean = np.zeros(n, dtype=np.float32)
        self.exposure = np.zeros(n, dtype=np.float32)
        self.rating_prior: float | None = None  # the global mean stars, None until there are ratings
        self.blocked_rows: dict[str, set[int]] = {}  # organisation id -> rows never ranked for it
        self.row_blocked: list[tuple[str, ...]] = []
        self.row_public: list[frozenset[str]] = []
        self.row_brokers: list[frozenset[str]] = []
        # This request's own last ranking must not count against its experts when it is ranked again.
        self.exposure_source: ExposureStore | None = None
        self.skill_rows: dict[str, set[int]] = {}
        self.industry_rows: dict[str, set[int]] = {}
        # The same index entries as row-number arrays, made at first use and dropped when a row's tags change:
        # a common skill holds thousands of rows, and turning its set into an array on every ranking cost more
        # than the ranking's arithmetic.
        self._tag_arrays: dict[tuple[int, str], np.ndarray] = {}
        self.row_skills: list[tuple[str, ...]] = []
        self.row_industries: list[tuple[str, ...]] = []
        # One shared object per distinct value (tag, field set, tag tuple): at 30,000 experts, a copy per row
        # of the same few strings and sets cost ~45 MB of the scorer's RSS (issue 8: under 200 MB per worker).
        self._shared: dict[object, object] = {}

    def _share(self, value):
        """The one kept object equal to ``value`` (strings, tuples and frozensets of strings)."""
        return self._shared.setdefault(value, value)

    def _tags(self, values: Iterable[str]) -> tuple[str, ...]:
        return self._share(tuple(self._share(value) for value in values))

    def _grow(self) -> None:
        new = self.capacity_rows * 2
        for name in DENSE_ARRAYS:
            old = getattr(self, name)
            grown = np.zeros((new, *old.shape[1:]), dtype=old.dtype)
            if name == "expires":
                grown[:] = NO_DATE
            grown[: self.capacity_rows] = old
            setattr(self, name, grown)
        self.capacity_rows = new

    def upsert(self, feature: FeatureRow) -> None:
        row = self.row_of.get(feature.expert_id)
        if row is None:
            if self.size == self.capacity_rows:
                self._grow()
            row = self.size
            self.size += 1
            self.row_of[feature.expert_id] = row
            self.expert_ids.append(feature.expert_id)
            self.names.append(feature.display_name)
            self.row_skills.append(())
            self.row_industries.append(())
            self.row_blocked.append(())
            self.row_public.append(frozenset())
            self.row_brokers.append(frozenset())
        else:
            self.names[row] = feature.display_name
            for tag in self.row_skills[row]:
                self.skill_rows.get(tag, set()).discard(row)
                self._tag_arrays.pop((id(self.skill_rows), tag), None)
            for tag in self.row_industries[row]:
                self.industry_rows.get(tag, set()).discard(row)
                self._tag_arrays.pop((id(self.industry_rows), tag), None)
            for organization in self.row_blocked[row]:
                self.blocked_rows.get(organization, set()).discard(row)
        self.served[row] = False
        for code in feature.prefectures:
            if code in PREFECTURE_INDEX:
                self.served[row, PREFECTURE_INDEX[code]] = True
        self.depth[row] = 0
        for topic, depth in feature.topics.items():
            if topic in TOPIC_INDEX:
                self.depth[row, TOPIC_INDEX[topic]] = max(0, min(int(depth), 3))
        self.active[row] = feature.active
        self.onsite[row] = feature.onsite
        self.remote[row] = feature.remote
        self.capacity[row] = feature.capacity
        self.expires[row] = _ordinal(feature.registration_expires_on, NO_DATE)
        self.confirmed[row] = _ordinal(feature.last_confirmed_at, 0)
        self.row_skills[row] = self._tags(feature.skills)
        self.row_industries[row] = self._tags(feature.industries)
        for tag in feature.skills:
            self.skill_rows.setdefault(tag, set()).add(row)
            self._tag_arrays.pop((id(self.skill_rows), tag), None)
        for tag in feature.industries:
            self.industry_rows.setdefault(tag, set()).add(row)
            self._tag_arrays.pop((id(self.industry_rows), tag), None)
        blocked = list(dict.fromkeys([*(feature.conflicted_organization_ids or []), feature.employer_organization_id]))
        self.row_blocked[row] = tuple(organization for organization in blocked if organization)
        for organization in self.row_blocked[row]:
            self.blocked_rows.setdefault(organization, set()).add(row)
        self.row_public[row] = self._share(frozenset(self._share(f) for f in feature.public_fields or ()))
        self.row_brokers[row] = self._share(frozenset(self._share(f) for f in feature.broker_fields or ()))

    def set_dynamic(
        self, load: dict[str, int], ratings: dict[str, tuple[int, float]], proposals: dict[str, int]
    ) -> None:
        """Open load and ratings per expert id (absent: none); proposals add to the exposure."""
        n = self.size
        self.load[:n] = 0
        self.rating_count[:n] = 0
        self.rating_mean[:n] = 0.0
        for expert_id, count in load.items():
            row = self.row_of.get(expert_id)
            if row is not None:
                self.load[row] = count
        total_count, total_stars = 0, 0.0
        for expert_id, (count, mean) in ratings.items():
            total_count += count
            total_stars += count * mean
            row = self.row_of.get(expert_id)
            if row is not None:
                self.rating_count[row] = count
                self.rating_mean[row] = mean
        self.rating_prior = total_stars / total_count if total_count else None
        if self.exposure_source is not None:
            self.exposure_source.fill(self.row_of, self.exposure, proposals)

    def blocked_for(self, organization_id: str | None) -> np.ndarray | None:
        """Rows never to rank for this organisation (conflicts, employer), or None."""
        rows = self.blocked_rows.get(organization_id) if organization_id else None
        if not rows:
            return None
        return np.fromiter(rows, dtype=np.int64, count=len(rows))

    def tag_hits(self, index: dict[str, set[int]], tags: list[str]) -> np.ndarray:
        """How many of ``tags`` each expert has (vector over rows)."""
        hits = np.zeros(self.size, dtype=np.float32)
        for tag in tags:
            rows = self._tag_rows(index, tag)
            if rows is not None:
                hits[rows] += 1
        return hits

    def _tag_rows(self, index: dict[str, set[int]], tag: str) -> np.ndarray | None:
        key = (id(index), tag)
        cached = self._tag_arrays.get(key)
        if cached is None:
            rows = index.get(tag)
            if not rows:
                return None
            cached = self._tag_arrays[key] = np.fromiter(rows, dtype=np.int64, count=len(rows))
        return cached


DENSE_ARRAYS = (
    "served", "depth", "active", "onsite", "remote", "capacity", "expires", "confirmed",
    "load", "rating_count", "rating_mean", "exposure",
)  # fmt: skip

# Rows are re-read from this far behind the newest sequence seen, so a write that got its number
# before another but committed after it is not missed; rows whose version we hold are skipped. That
# look back is taken at most every LOOKBACK_SECONDS (reading 500 keys before every ranking was 7 % of a
# scorer's CPU); in between, a refresh reads only the rows numbered above the newest seen.
LOOKBACK = 500
LOOKBACK_SECONDS = 1.0


class FeatureStore:
    """Loads the projection once, then only rows changed since the last look (thread-safe)."""

    def __init__(self, engine: Engine, *, exposure: ExposureStore | None = None) -> None:
        self.engine = engine
        self.matrix = FeatureMatrix()
        self.exposure = exposure if exposure is not None else ExposureStore()
        self.matrix.exposure_source = self.exposure
        self._last_seq = 0
        self._versions: dict[str, int] = {}
        self._looked_back_at = float("-inf")
        self._lock = threading.Lock()

    def refresh(self) -> FeatureMatrix:
        with self._lock, Session(self.engine) as session:
            if self._last_seq == 0:  # the first load: every row, streamed (a look back over everything)
                self._looked_back_at = time.monotonic()
                changed: Iterable[tuple] = repository.expert_features_changed_since(session, FeatureRow._fields, 0)
            else:  # the look-back window by its keys; whole rows only for versions not held yet
                since = self._last_seq
                if time.monotonic() - self._looked_back_at >= LOOKBACK_SECONDS:
                    self._looked_back_at = time.monotonic()
                    since -= LOOKBACK
                keys = repository.expert_feature_versions_since(session, since)
                stale = [expert_id for expert_id, version, _ in keys if self._versions.get(expert_id) != version]
                changed = repository.expert_features_of(session, FeatureRow._fields, stale) if stale else []
                self._last_seq = max([self._last_seq, *(seq for _, _, seq in keys)])
            for values in changed:
                row = FeatureRow(*values)
                self._last_seq = max(self._last_seq, row.change_seq)
                if self._versions.get(row.expert_id) == row.entity_version:
                    continue
                self._versions[row.expert_id] = row.entity_version
                self.matrix.upsert(row)
            self.exposure.refresh(session, datetime.now(UTC))
            self.matrix.set_dynamic(
                repository.open_load_by_expert(session),
                repository.rating_stats(session),
                self.exposure.proposal_counts,
            )
            return self.matrix
