"""services/matching/worker.py: what a scorer worker process loads. Each worker holds the 30,000-expert matrix; the
brokering issue asks for under 200 MB each, so the solver library of 相談会 and hub teams (SciPy) stays out."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_scorer_worker_does_not_load_the_solver() -> None:
    code = "import sys, services.matching.worker; print('scipy' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "False"


async def test_the_scorers_handler_is_timed_when_it_succeeds() -> None:
    from datetime import UTC, datetime, timedelta

    from prometheus_client import REGISTRY

    from services.matching.worker import timed
    from tsunagu.events import EventEnvelope, Subjects

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    calls: list[str] = []

    async def handler(envelope) -> None:
        calls.append(envelope.id)
        if len(calls) == 2:
            raise RuntimeError("retried later: not a ranking")

    submitted = EventEnvelope(
        type=Subjects.REQUEST_SUBMITTED,
        source="matching",
        subject_id="r1",
        entity_version=1,
        data={},  # the handler here does not read it
        occurred_at=datetime.now(UTC) - timedelta(seconds=3),  # submitted three seconds ago
    )
    before = (count("tsunagu_scorer_rank_seconds_count"), count("tsunagu_scorer_submit_to_ranked_seconds_sum"))
    await timed(handler)(submitted)
    with pytest.raises(RuntimeError):
        await timed(handler)(submitted)
    assert count("tsunagu_scorer_rank_seconds_count") - before[0] == 1
    assert count("tsunagu_scorer_submit_to_ranked_seconds_sum") - before[1] >= 3


async def test_a_batch_of_the_scorer_is_timed_per_request() -> None:
    from datetime import UTC, datetime, timedelta

    from prometheus_client import REGISTRY

    from services.matching.worker import timed_batch
    from tsunagu.events import EventEnvelope, Subjects

    def count(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    async def handler(envelopes) -> None:
        return None

    submitted = [
        EventEnvelope(
            type=Subjects.REQUEST_SUBMITTED,
            source="matching",
            subject_id=f"r{i}",
            entity_version=1,
            data={},
            occurred_at=datetime.now(UTC) - timedelta(seconds=3),
        )
        for i in range(3)
    ]
    before = (count("tsunagu_scorer_rank_seconds_count"), count("tsunagu_scorer_submit_to_ranked_seconds_count"))
    await timed_batch(handler)(submitted)
    assert count("tsunagu_scorer_rank_seconds_count") - before[0] == 3
    assert count("tsunagu_scorer_submit_to_ranked_seconds_count") - before[1] == 3
