"""The expert projection as numpy arrays, kept in memory and refreshed incrementally.

One row per expert. Prefectures and topics are dense boolean / depth matrices (47 and ~45 columns);
skills and industries are open vocabularies, kept as inverted indexes (tag -> row numbers).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import NamedTuple

import numpy as np
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from services.matching.models import ExpertFeature
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
        self.skill_rows: dict[str, set[int]] = {}
        self.industry_rows: dict[str, set[int]] = {}
        self.row_skills: list[list[str]] = []
        self.row_industries: list[list[str]] = []

    def _grow(self) -> None:
        new = self.capacity_rows * 2
        for name in ("served", "depth", "active", "onsite", "remote", "capacity", "expires", "confirmed"):
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
            self.row_skills.append([])
            self.row_industries.append([])
        else:
            self.names[row] = feature.display_name
            for tag in self.row_skills[row]:
                self.skill_rows.get(tag, set()).discard(row)
            for tag in self.row_industries[row]:
                self.industry_rows.get(tag, set()).discard(row)
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
        self.row_skills[row] = list(feature.skills)
        self.row_industries[row] = list(feature.industries)
        for tag in feature.skills:
            self.skill_rows.setdefault(tag, set()).add(row)
        for tag in feature.industries:
            self.industry_rows.setdefault(tag, set()).add(row)

    def tag_hits(self, index: dict[str, set[int]], tags: list[str]) -> np.ndarray:
        """How many of ``tags`` each expert has (vector over rows)."""
        hits = np.zeros(self.size, dtype=np.float32)
        for tag in tags:
            rows = index.get(tag)
            if rows:
                hits[np.fromiter(rows, dtype=np.int64, count=len(rows))] += 1
        return hits


# Rows are re-read from this far behind the newest sequence seen, so a write that got its number
# before another but committed after it is not missed; rows whose version we hold are skipped.
LOOKBACK = 500

_COLUMNS = [getattr(ExpertFeature, name) for name in FeatureRow._fields]


class FeatureStore:
    """Loads the projection once, then only rows changed since the last look (thread-safe)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.matrix = FeatureMatrix()
        self._last_seq = 0
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def refresh(self) -> FeatureMatrix:
        with self._lock, Session(self.engine) as session:
            # Plain column tuples, not ORM objects: 30,000 rows load several times faster.
            query = select(*_COLUMNS).where(col(ExpertFeature.change_seq) > self._last_seq - LOOKBACK)
            for values in session.exec(query.order_by(col(ExpertFeature.change_seq))).yield_per(5000):
                row = FeatureRow(*values)
                self._last_seq = max(self._last_seq, row.change_seq)
                if self._versions.get(row.expert_id) == row.entity_version:
                    continue
                self._versions[row.expert_id] = row.entity_version
                self.matrix.upsert(row)
            return self.matrix
