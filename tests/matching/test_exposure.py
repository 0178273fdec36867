"""services/matching/scoring/exposure.py: a worker counts its own rankings at once, and reads what other
workers ranked (and the proposals made) from the database at most every ``refresh_seconds``; and the
feature store's look back for late projection rows (features.py), which is paced the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.orm import make_transient
from sqlmodel import Session

from services.matching.models import ExpertFeature, Ranking
from services.matching.scoring import features
from services.matching.scoring.exposure import ExposureStore, position_weight
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from tests.matching.conftest import expert_event, project
from tsunagu.db import session_scope


def _ranked_elsewhere(engine: Engine, expert_id: str) -> None:
    """Another worker's ranking of another request, with ``expert_id`` first."""
    with session_scope(engine) as session:
        session.add(
            Ranking(
                request_id=str(uuid.uuid4()),
                source_event_id=str(uuid.uuid4()),
                weights_version=DEFAULT_WEIGHTS.version,
                candidate_count=1,
                entries=[{"rank": 1, "expert_id": expert_id}],
            )
        )


def test_other_workers_rankings_count_after_the_refresh_interval_and_own_ones_at_once(engine: Engine) -> None:
    store = ExposureStore(refresh_seconds=1.0)
    started = datetime.now(UTC)
    _ranked_elsewhere(engine, "shown-before")
    with Session(engine) as session:
        store.refresh(session, started)  # the first look reads the whole window
    assert store.totals == {"shown-before": position_weight(1)}

    _ranked_elsewhere(engine, "shown-by-another-worker")
    with Session(engine) as session:
        store.refresh(session, started + timedelta(seconds=0.5))  # within the interval: not read yet
        assert "shown-by-another-worker" not in store.totals
        store.refresh(session, started + timedelta(seconds=1.1))
    assert store.totals["shown-by-another-worker"] == position_weight(1)

    # This worker's own ranking counts as it is written, without waiting for a refresh; a newer ranking of the
    # same request replaces it, an older one is ignored.
    store.record("mine", started, [{"rank": 1, "expert_id": "a"}, {"rank": 2, "expert_id": "b"}])
    assert store.totals["a"] == position_weight(1) and store.totals["b"] == position_weight(2)
    store.record("mine", started + timedelta(seconds=1), [{"rank": 1, "expert_id": "b"}])
    assert "a" not in store.totals and store.totals["b"] == position_weight(1)
    store.record("mine", started - timedelta(seconds=1), [{"rank": 1, "expert_id": "a"}])
    assert "a" not in store.totals and store.own("mine") == {"b": position_weight(1)}


def test_a_projection_row_committed_late_with_an_older_number_is_seen_at_the_next_look_back(
    engine: Engine, monkeypatch
) -> None:
    """services/matching/scoring/features.py: a refresh reads the rows numbered above the newest it has seen,
    and every ``LOOKBACK_SECONDS`` also the ``LOOKBACK`` before it, so a row that got its number before
    another but committed after it (two projection writers racing) still reaches the matrix."""
    clock = [1000.0]
    monkeypatch.setattr(features.time, "monotonic", lambda: clock[0])
    project(engine, expert_event(expert_id="first"), expert_event(expert_id="second"))
    store = FeatureStore(engine)
    assert store.refresh().size == 2
    with session_scope(engine) as session:  # committed now, numbered below the newest row the store has seen
        late = session.get(ExpertFeature, "first")
        assert late is not None
        session.expunge(late)
        make_transient(late)
        late.expert_id, late.change_seq = "late", late.change_seq
        session.add(late)
    clock[0] += features.LOOKBACK_SECONDS / 2
    assert store.refresh().size == 2  # between look backs: only newer numbers are read
    clock[0] += features.LOOKBACK_SECONDS
    assert store.refresh().size == 3 and "late" in store.matrix.row_of
