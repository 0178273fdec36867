"""The matching service's event handlers, and the consumers that run them.

- In the API process (``matching-projections``, durable on PROFILES): ``profiles.expert.upserted`` into the
  expert feature projection the scorer ranks on, ``profiles.organization.upserted`` into the organisation
  projection and its members (who may act for which SME). A whole fetched batch is applied in one
  transaction.
- In the scorer workers (``scorer``, durable on MATCHING, shared by every worker):
  ``matching.request.submitted`` is ranked, and the ranking, the request's new state and its
  ``matching.request.ranked`` event are written in one transaction. The submissions a fetch brings together
  (under load) are ranked in one transaction with one refresh of the matrix and written with one statement
  per table (the claims, the requests, the rankings, the events): the refresh, the writes, the commit and the
  relay's round are paid once per batch instead of once per ranking, while a lone submission is still ranked
  at once.
- Re-ranking (``rescorer``, durable on MATCHING, in the workers): ``matching.expert.changed`` (emitted by
  the projection above when an expert's features change, and by the brokering rules when their open load or
  ratings change) marks the open requests the change may move (scoring/rerank.py decides which), a fetched
  batch at once; each worker's ``rerank_loop`` re-ranks marked requests, longest waiting first, so a burst of
  changes to one request costs one re-ranking. A ranking records when it was computed.

Every handler claims the event id first (in the same transaction as its effect), so a redelivered event
changes nothing; projections also ignore an event whose entity version is not newer than what they hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.matching import repository
from services.matching.models import (
    ExpertFeature,
    OrganizationProjection,
    OutboxRecord,
    ProcessedEvent,
    Ranking,
    SmeRequest,
)
from services.matching.scoring.features import FeatureMatrix, FeatureStore
from services.matching.scoring.ranker import RankedExpert, RankingInput, rank
from services.matching.scoring.rerank import Digests, OpenRanking, affected_requests
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from services.matching.service import expert_ranking_changed
from services.matching.settings import SERVICE_NAME
from tsunagu.contracts import (
    ExpertFeaturesV1,
    ExpertRankingChangedV1,
    OrganizationV1,
    PermanentEventError,
    RequestRankedV1,
    RequestSubmittedV1,
    parse_event_data,
)
from tsunagu.db import session_scope, utcnow
from tsunagu.events import EventEnvelope, Subjects
from tsunagu.logging import event_context
from tsunagu.messaging import ConsumerSpec
from tsunagu.outbox import add_events, claim_event, claim_events, claimed_events

PROJECTION_CONSUMER = "matching-projections"
SCORER_CONSUMER = "scorer"
SCORER_BATCH = 16  # submitted requests fetched, and ranked in one transaction, at once

log = logging.getLogger(__name__)


# --- projections (the API process) ----------------------------------------------------------------


def apply_expert_features(session: Session, envelope: EventEnvelope) -> None:
    data: ExpertFeaturesV1 = parse_event_data(envelope, Subjects.EXPERT_UPSERTED)
    if not claim_event(session, ProcessedEvent, envelope.id, PROJECTION_CONSUMER):
        return
    current = repository.get_expert_feature(session, data.expert_id)
    if current is not None and current.entity_version >= envelope.entity_version:
        return  # an older or equal version arrived late: what we hold is newer
    values = data.model_dump(exclude={"expert_id"})
    if current is None:
        current = ExpertFeature(expert_id=data.expert_id, entity_version=envelope.entity_version, **values)
        changed = True
    else:
        changed = any(getattr(current, key) != value for key, value in values.items())
        for key, value in values.items():
            setattr(current, key, value)
        current.entity_version = envelope.entity_version
    current.changed_at = datetime.now(UTC)
    current.change_seq = repository.next_change_seq(session)  # the scorers load rows changed since they looked
    session.add(current)
    if changed:
        expert_ranking_changed(session, data.expert_id, "profile")


def apply_organization(session: Session, envelope: EventEnvelope) -> None:
    data: OrganizationV1 = parse_event_data(envelope, Subjects.ORGANIZATION_UPSERTED)
    if not claim_event(session, ProcessedEvent, envelope.id, PROJECTION_CONSUMER):
        return
    current = repository.get_organization(session, data.organization_id)
    if current is not None and current.entity_version >= envelope.entity_version:
        return
    if current is None:
        current = OrganizationProjection(
            organization_id=data.organization_id, entity_version=0, name=data.name, prefecture=data.prefecture
        )
    current.entity_version = envelope.entity_version
    current.name = data.name
    current.prefecture = data.prefecture
    current.industry = data.industry
    session.add(current)
    repository.replace_members(session, data.organization_id, data.member_user_ids)


PROJECTIONS: dict[str, Callable[[Session, EventEnvelope], None]] = {
    Subjects.EXPERT_UPSERTED: apply_expert_features,
    Subjects.ORGANIZATION_UPSERTED: apply_organization,
}


def apply_projections(engine: Engine, envelopes: list[EventEnvelope]) -> None:
    """Apply events to the projections in one transaction (all or nothing)."""
    with session_scope(engine) as session:
        for envelope in envelopes:
            apply = PROJECTIONS.get(envelope.type)
            if apply is None:
                raise PermanentEventError(f"matching does not consume {envelope.type}")
            apply(session, envelope)


def projection_consumers(engine: Engine, events_written: Callable[[], None]) -> list[ConsumerSpec]:
    """``events_written`` wakes the API process's relay: an applied change may have written an event."""

    async def handle(envelope: EventEnvelope) -> None:
        await asyncio.to_thread(apply_projections, engine, [envelope])
        events_written()

    async def handle_batch(envelopes: list[EventEnvelope]) -> None:
        await asyncio.to_thread(apply_projections, engine, envelopes)
        events_written()

    return [
        ConsumerSpec(
            durable=PROJECTION_CONSUMER,
            stream="PROFILES",
            subjects=list(PROJECTIONS),
            handler=handle,
            batch_handler=handle_batch,
            fetch_batch=200,
        )
    ]


# --- ranking (the scorer workers) -----------------------------------------------------------------


def ranking_input(request: SmeRequest | repository.OpenRequestRow) -> RankingInput:
    return RankingInput(
        prefecture=request.prefecture,
        delivery=request.delivery,
        topics=request.topics,
        skills=request.skills,
        industry=request.industry,
        organization_id=request.organization_id,  # conflicted and employer experts never rank for it
        request_id=request.id,  # its own last ranking is not counted as exposure
    )


def _rank(matrix: FeatureMatrix, request: SmeRequest) -> tuple[list[RankedExpert], int]:
    return rank(matrix, ranking_input(request), weights=DEFAULT_WEIGHTS)


@dataclass(frozen=True, slots=True)
class _Planned:
    """A ranking computed from ``request`` as it was read, waiting to be written."""

    request: SmeRequest
    ranked: list[RankedExpert]
    candidates: int
    source_event_id: str
    envelope: EventEnvelope | None = None  # the submission it answers: its ranked event carries its correlation id
    due_at: datetime | None = None  # the re-ranking mark it answers


def _write_rankings(session: Session, matrix: FeatureMatrix, planned: list[_Planned]) -> list[Ranking]:
    """Write the rankings, their requests' new state and their events; returns those written, in order. A
    request cancelled, matched or edited since it was read gets nothing (``set_ranked`` compares its version):
    a ranking must never reopen it, nor answer an older version of it.

    In bulk: one UPDATE of the requests, one INSERT of the rankings, one of the events, whatever the batch's
    size. An UPDATE and an ORM refresh per request, and an ORM flush of each ranking and event, were a third
    of the scorer's CPU, as much as ranking 30,000 experts (docs/performance.md)."""
    due_at = {item.request.id: item.due_at for item in planned if item.due_at is not None}
    versions = repository.set_ranked(session, [item.request for item in planned], due_at=due_at)
    written = [item for item in planned if item.request.id in versions]
    if not written:
        return []
    now = utcnow()
    rankings = [
        Ranking(
            request_id=item.request.id,
            source_event_id=item.source_event_id,
            weights_version=DEFAULT_WEIGHTS.version,
            candidate_count=item.candidates,
            entries=[
                entry.as_entry(i + 1, DEFAULT_WEIGHTS, item.request.topics) for i, entry in enumerate(item.ranked)
            ],
            computed_at=now,
        )
        for item in written
    ]
    columns = [column.name for column in Ranking.__table__.columns]  # type: ignore[attr-defined]
    session.connection().execute(
        Ranking.__table__.insert(),  # type: ignore[attr-defined]
        [{name: getattr(ranking, name) for name in columns} for ranking in rankings],
    )
    envelopes = []
    for item, ranking in zip(written, rankings, strict=True):
        answered = item.envelope
        context = event_context(answered.id, answered.correlation_id) if answered else contextlib.nullcontext()
        with context:  # the ranked event carries the correlation id of the submission it answers
            envelopes.append(
                EventEnvelope.for_change(
                    Subjects.REQUEST_RANKED,
                    SERVICE_NAME,
                    item.request.id,
                    versions[item.request.id],
                    RequestRankedV1(
                        request_id=item.request.id,
                        ranking_id=ranking.id,
                        weights_version=ranking.weights_version,
                        candidate_count=item.candidates,
                        top_expert_ids=[entry.expert_id for entry in item.ranked],
                    ),
                )
            )
    add_events(session, OutboxRecord, envelopes)
    # Once committed, this worker's next ranking counts these rankings' exposure at once (other workers'
    # rankings are read from the database every second); rankings rolled back are never counted.
    exposure = matrix.exposure_source
    if exposure is not None:
        shown = [(ranking.request_id, ranking.computed_at, ranking.entries) for ranking in rankings]
        event.listen(session, "after_commit", lambda _session: [exposure.record(*one) for one in shown], once=True)
    return rankings


def rank_submitted_requests(
    session: Session, store: FeatureStore, envelopes: list[EventEnvelope]
) -> list[tuple[EventEnvelope, Ranking]]:
    """Rank submitted requests in the caller's transaction, with one refresh of the matrix for all of them.

    Each event is claimed by its id, so a repeated event (redelivered, or twice in one batch) ranks nothing
    more; a request no longer open is not ranked (that would reopen it), and one already ranked by an
    earlier event of the batch is not ranked again (that ranking is of its current state). Each ranking's
    event carries the correlation id of the submission it answers. The rankings of one batch do not count
    each other's exposure (they are counted when the transaction commits), as two workers ranking in the
    same second do not: exposure is a four-week signal (scoring/exposure.py).

    Everything is read and ranked before the first write. On SQLite the first write takes the file's one
    write lock until the commit, and the API's submissions wait for it (sleeping in SQLite's busy handler,
    1, 2, 5, 10 ms...): writing first held it through the refresh and the ranking, and a submission's INSERT
    was most of the API process's CPU profile, waiting. The writes then check that nothing changed meanwhile:
    the claims (another worker may have claimed an event) and ``set_ranked`` (each request's version). Reads
    and writes are one statement each for the whole batch (the claims, the requests; ``_write_rankings``)."""
    fresh: list[tuple[EventEnvelope, RequestSubmittedV1]] = []
    seen_events: set[str] = set()
    for envelope in envelopes:
        with event_context(envelope.id, envelope.correlation_id):
            data: RequestSubmittedV1 = parse_event_data(envelope, Subjects.REQUEST_SUBMITTED)
        if envelope.id not in seen_events:
            seen_events.add(envelope.id)
            fresh.append((envelope, data))
    claimed = claimed_events(session, ProcessedEvent, seen_events, SCORER_CONSUMER)
    fresh = [(envelope, data) for envelope, data in fresh if envelope.id not in claimed]
    requests = repository.get_requests(session, [data.request_id for _, data in fresh])
    matrix: FeatureMatrix | None = None
    seen_requests: set[str] = set()
    planned: list[tuple[EventEnvelope, _Planned | None]] = []
    for envelope, data in fresh:
        with event_context(envelope.id, envelope.correlation_id):
            request = requests.get(data.request_id)
            if request is None:
                raise PermanentEventError(f"request {data.request_id} does not exist")
            if request.status not in repository.OPEN_STATUSES or request.id in seen_requests:
                # Cancelled, matched or completed meanwhile (ranking it would reopen it), or ranked by an earlier
                # event of this batch, in its current state: claimed, not ranked.
                planned.append((envelope, None))
                continue
            seen_requests.add(request.id)
            if matrix is None:
                matrix = store.refresh()
            planned.append((envelope, _Planned(request, *_rank(matrix, request), envelope.id, envelope)))
    if not planned:
        return []
    claimed_now = claim_events(session, ProcessedEvent, [envelope.id for envelope, _ in planned], SCORER_CONSUMER)
    to_write = [item for envelope, item in planned if item is not None and envelope.id in claimed_now]
    if not to_write:
        return []
    assert matrix is not None
    rankings = {ranking.source_event_id: ranking for ranking in _write_rankings(session, matrix, to_write)}
    return [(envelope, rankings[envelope.id]) for envelope, _ in planned if envelope.id in rankings]


def rank_submitted_request(session: Session, store: FeatureStore, envelope: EventEnvelope) -> Ranking | None:
    """Rank one submitted request; a repeated event (same id) is ignored, so no duplicate ranking."""
    ranked = rank_submitted_requests(session, store, [envelope])
    return ranked[0][1] if ranked else None


def rank_and_log(engine: Engine, store: FeatureStore, envelopes: list[EventEnvelope]) -> int:
    """Rank submitted requests in one transaction and log each ranking (with its own event's ids) once
    committed; returns how many were ranked."""
    started = time.perf_counter()
    with session_scope(engine) as session:
        ranked = rank_submitted_requests(session, store, envelopes)
    duration_ms = round((time.perf_counter() - started) * 1000, 1)
    for envelope, ranking in ranked:
        with event_context(envelope.id, envelope.correlation_id):
            log.info(
                "request ranked",
                extra={
                    "request_id_ranked": ranking.request_id,
                    "candidates": ranking.candidate_count,
                    "experts_known": store.matrix.size,
                    "batch": len(envelopes),
                    "duration_ms": duration_ms,
                },
            )
    return len(ranked)


class FirstRankings:
    """When this worker last ranked a submitted request. A first ranking is what an SME waits for; a
    re-ranking refreshes one they already have. So while first rankings come in, re-ranking gives way
    (``RerankLoop``): without this, a burst of expert changes (every acceptance changes an expert's open
    load, which marks every open request they are ranked in) kept the workers re-ranking thousands of requests
    while new ones waited (tests/fault/test_nats_outage.py met it: 1,000 submissions, 50 acceptances, half
    the submissions still unranked minutes later on PostgreSQL)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.last = float("-inf")

    def touch(self) -> None:
        self.last = self.clock()

    def active(self) -> bool:
        return self.clock() - self.last < RERANK_YIELD_SECONDS


def scorer_consumers(
    engine: Engine,
    store: FeatureStore,
    events_written: Callable[[], None],
    first_rankings: FirstRankings | None = None,
) -> list[ConsumerSpec]:
    """``events_written`` wakes the worker's outbox relay once a ranking (and its event) is committed;
    ``first_rankings`` is told of each, so the worker's re-ranking gives way to them."""

    async def handle(envelope: EventEnvelope) -> None:
        await handle_batch([envelope])

    async def handle_batch(envelopes: list[EventEnvelope]) -> None:
        if first_rankings is not None:
            first_rankings.touch()
        await asyncio.to_thread(rank_and_log, engine, store, envelopes)
        if first_rankings is not None:
            first_rankings.touch()
        events_written()

    return [
        ConsumerSpec(
            durable=SCORER_CONSUMER,
            stream="MATCHING",
            subjects=[Subjects.REQUEST_SUBMITTED],
            handler=handle,
            # What a fetch finds waiting is ranked together (a failed batch falls back to one by one); a lone
            # submission is fetched alone and ranked at once. SCORER_BATCH bounds how long the first of a
            # batch waits for the last (~5 ms of ranking each at 30,000 experts).
            batch_handler=handle_batch,
            fetch_batch=SCORER_BATCH,
        )
    ]


# --- re-ranking after expert changes (the scorer workers) -------------------------------------------

RERANK_CONSUMER = "rescorer"
RERANK_BATCH = 20  # marked requests re-ranked per transaction
RERANK_POLL_SECONDS = 1.0  # a worker that was not woken looks for marks another worker made this often
# While the worker ranked a submitted request this recently, it re-ranks one request at a time with a pause
# after each (at most ~5 a second), and catches up at full speed once submissions stop (``FirstRankings``).
RERANK_YIELD_SECONDS = 1.0
RERANK_YIELD_PAUSE_SECONDS = 0.2


def mark_affected(
    engine: Engine, store: FeatureStore, envelopes: list[EventEnvelope], digests: Digests | None = None
) -> int:
    """Mark the open requests a batch of expert changes may move; returns how many were newly marked.
    ``digests`` (one per worker) keeps what each ranking holds, so its entries are read once."""
    digests = digests if digests is not None else Digests()
    with session_scope(engine) as session:
        changed = set()
        for envelope in envelopes:
            data: ExpertRankingChangedV1 = parse_event_data(envelope, Subjects.EXPERT_RANKING_CHANGED)
            if claim_event(session, ProcessedEvent, envelope.id, RERANK_CONSUMER):
                changed.add(data.expert_id)
        if not changed:
            return 0
        matrix = store.refresh()  # the changed experts as they are now
        opens = repository.open_requests_with_latest_ranking(session)
        ranking_ids = [row.ranking_id for row in opens]
        digests.add(repository.ranking_entries(session, digests.missing(ranking_ids)))
        digests.keep(ranking_ids)
        open_rankings = [
            OpenRanking(row.id, ranking_input(row), digests.get(row.ranking_id))  # type: ignore[arg-type]
            for row in opens
        ]
        affected = affected_requests(matrix, open_rankings, changed)
        marked = repository.mark_rerank_due(session, affected, datetime.now(UTC))
    log.info("expert changes", extra={"experts": len(changed), "affected": len(affected), "marked": marked})
    return marked


def rerank_due(engine: Engine, store: FeatureStore, limit: int = RERANK_BATCH) -> int:
    """Re-rank up to ``limit`` marked requests in one transaction; returns how many were re-ranked."""
    with session_scope(engine) as session:
        due = repository.requests_due_for_rerank(session, limit)
        if not due:
            return 0
        matrix = store.refresh()
        # Ranked first, written after (see rank_submitted_requests: SQLite's write lock is held for the writes only).
        planned = [
            _Planned(
                request,
                *_rank(matrix, request),
                source_event_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"rerank:{request.id}:{request.rerank_due_at}")),
                due_at=request.rerank_due_at,
            )
            for request in due
        ]
        return len(_write_rankings(session, matrix, planned))


def rerank_consumers(engine: Engine, store: FeatureStore, marked: Callable[[], None]) -> list[ConsumerSpec]:
    """``marked`` wakes this worker's ``rerank_loop`` once marks are committed."""

    async def handle(envelope: EventEnvelope) -> None:
        await handle_batch([envelope])

    digests = Digests()

    async def handle_batch(envelopes: list[EventEnvelope]) -> None:
        if await asyncio.to_thread(mark_affected, engine, store, envelopes, digests):
            marked()

    return [
        ConsumerSpec(
            durable=RERANK_CONSUMER,
            stream="MATCHING",
            subjects=[Subjects.EXPERT_RANKING_CHANGED],
            handler=handle,
            batch_handler=handle_batch,
            fetch_batch=200,  # a bulk import's changes are examined together
        )
    ]


class RerankLoop:
    """Re-ranks marked requests until none are left, then waits to be woken (or polls, for marks made by
    another worker). Runs beside the consumers in every worker."""

    def __init__(
        self,
        engine: Engine,
        store: FeatureStore,
        events_written: Callable[[], None],
        first_rankings: FirstRankings | None = None,
    ) -> None:
        self.engine, self.store, self.events_written = engine, store, events_written
        self.first_rankings = first_rankings
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    def giving_way(self) -> bool:
        """Whether first rankings are coming in, so re-ranking goes one request at a time."""
        return self.first_rankings is not None and self.first_rankings.active()

    async def step(self) -> int:
        """One transaction of re-ranking: a whole batch, or one request while giving way. Returns how many."""
        limit = 1 if self.giving_way() else RERANK_BATCH
        done = await asyncio.to_thread(rerank_due, self.engine, self.store, limit)
        if done:
            self.events_written()
        return done

    async def run(self) -> None:
        while True:
            self._wake.clear()
            try:
                done = await self.step()
            except Exception:  # a database hiccup: log, wait, try again; marks stay until re-ranked
                log.exception("re-ranking failed; retrying")
                done = 0
                await asyncio.sleep(RERANK_POLL_SECONDS)
            if done:
                if self.giving_way():
                    await asyncio.sleep(RERANK_YIELD_PAUSE_SECONDS)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=RERANK_POLL_SECONDS)
