"""The embedded engine answers filters, order and facet counts from memory (services/search/engine/memory.py),
kept in step with the index by a generation number and append-only columns. These tests hold the counts to a
naive count of the documents through every kind of write (batches, replacements, deletes, clear, another
process writing the same file, the compaction that drops removed documents), and every answer of the memory
(hits in order, total, facets) to the same query answered by SQL alone."""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from services.search.engine import SearchQuery, make_engine
from services.search.engine.embedded import EmbeddedSearchEngine
from tests.conftest import wait_until
from tsunagu import reference

FACETS = ("prefecture", "region", "topic", "skill", "kind", "onsite", "remote")
PREFS = ["01", "13", "14", "27", "40", "47"]
TOPICS = ["ransomware", "cloud_security", "incident_response", "education"]
SKILLS = ["aws", "azure", "linux", "python"]


def doc(n: int, rng: random.Random, **fields: Any) -> dict[str, Any]:
    out = {
        "id": f"expert-{n}",
        "kind": rng.choice(["sekisupe", "dx_talent"]),
        "name": f"専門家 {n}",
        "bio": rng.choice(["ランサムウェア対策を支援", "クラウド移行の相談", "社内教育の講師"]),
        "prefectures": sorted(set(rng.sample(PREFS, rng.choice([1, 1, 2])))),
        "topics": rng.sample(TOPICS, rng.choice([1, 2])),
        "skills": rng.sample(SKILLS, rng.choice([0, 1, 2])),
        "onsite": rng.random() < 0.5,
        "remote": rng.random() < 0.7,
        "active": rng.random() < 0.9,
        "updated_at": f"2026-01-{1 + n % 28:02d}T00:00:00+09:00",
    }
    out.update(fields)
    return out


def naive(docs: dict[str, dict[str, Any]], query: SearchQuery) -> dict[str, dict[str, int]]:
    """The facet counts of the query, counted from the documents themselves (only the filters used here)."""
    counts: dict[str, Counter[str]] = {f: Counter() for f in query.facets}
    for d in docs.values():
        if query.active_only and d.get("active") is False:
            continue
        if query.prefectures and not set(query.prefectures) & set(d["prefectures"]):
            continue
        if query.q and query.q not in d["bio"]:
            continue
        values = {
            "prefecture": d["prefectures"],
            "region": sorted({reference.region_of(p) for p in d["prefectures"]}),
            "topic": d["topics"],
            "skill": d["skills"],
            "kind": [d["kind"]],
            "onsite": ["true" if d["onsite"] else "false"],
            "remote": ["true" if d["remote"] else "false"],
        }
        for f in query.facets:
            counts[f].update(values[f])
    return {f: dict(c) for f, c in counts.items()}


QUERIES = [
    SearchQuery(facets=FACETS),
    SearchQuery(facets=FACETS, active_only=False),
    SearchQuery(q="クラウド", facets=FACETS),
    SearchQuery(prefectures=("13", "47"), facets=FACETS),
]


def check(engine: EmbeddedSearchEngine, docs: dict[str, dict[str, Any]]) -> None:
    for query in QUERIES:
        result = engine.search(query)
        assert result.facets == naive(docs, query), query
        assert result.total == sum(
            1
            for d in docs.values()
            if (not query.active_only or d["active"])
            and (not query.prefectures or set(query.prefectures) & set(d["prefectures"]))
            and (not query.q or query.q in d["bio"])
        )


@pytest.fixture
def engine(tmp_path: Path):
    engine = make_engine("embedded", data_dir=tmp_path)
    engine.setup()
    yield engine
    engine.close()


def test_counts_follow_batches_replacements_deletes_and_clear(engine: EmbeddedSearchEngine) -> None:
    rng = random.Random(5)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(300))}
    engine.upsert(list(docs.values()))
    check(engine, docs)
    for n in rng.sample(range(300), 60):  # one at a time, as events arrive
        docs[f"expert-{n}"] = doc(n, rng)
        engine.upsert([docs[f"expert-{n}"]])
    check(engine, docs)
    gone = [f"expert-{n}" for n in rng.sample(range(300), 40)]
    engine.delete(gone)
    for i in gone:
        del docs[i]
    check(engine, docs)
    assert (
        engine._memory is not None
        and engine._memory.generation
        == engine._conn().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]
    )  # followed its own writes, never reloaded
    engine.clear()
    docs = {}
    check(engine, docs)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(1000, 1050))}
    engine.upsert(list(docs.values()))
    check(engine, docs)


def test_counts_follow_another_process_writing_the_same_index(engine: EmbeddedSearchEngine, tmp_path: Path) -> None:
    rng = random.Random(6)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(200))}
    engine.upsert(list(docs.values()))
    check(engine, docs)
    other = make_engine("embedded", data_dir=tmp_path)  # its own connections and memory: another process
    other.setup()
    try:
        for n in range(150, 250):
            docs[f"expert-{n}"] = doc(n, rng, prefectures=["47"])
        other.upsert([docs[f"expert-{n}"] for n in range(150, 250)])
        other.delete(["expert-0", "expert-1"])
        del docs["expert-0"], docs["expert-1"]
        check(engine, docs)  # the memory is older than the file: SQL answers while it reloads in the background
        caught_up(engine)
        check(engine, docs)
        engine.upsert([doc(7, rng, prefectures=["01"])])  # and follows its own writes again
        docs["expert-7"] = engine.get("expert-7")
        check(engine, docs)
        check(other, docs)
    finally:
        other.close()


def generation_of(engine: EmbeddedSearchEngine) -> int:
    return engine._conn().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0]


def caught_up(engine: EmbeddedSearchEngine) -> None:
    """Wait until the memory has reloaded up to the index file's generation."""
    engine.search(SearchQuery(q="支援", facets=FACETS))  # a query notices and starts the reload

    def current() -> bool:
        memory = engine._memory
        return memory is not None and memory.generation == generation_of(engine)

    wait_until(current, timeout=30, message="the memory reloaded to the file's generation")


def test_a_reload_never_makes_a_query_wait(engine: EmbeddedSearchEngine, tmp_path: Path) -> None:
    rng = random.Random(12)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(300))}
    engine.upsert(list(docs.values()))
    other = make_engine("embedded", data_dir=tmp_path)
    other.setup()
    try:
        for batch in range(5):  # a reindex in another process: batch after batch
            fresh = [doc(n, rng) for n in range(batch * 60, batch * 60 + 60)]
            other.upsert(fresh)
            docs.update({d["id"]: d for d in fresh})
            check(engine, docs)  # right at once, whether the memory has caught up or not
        caught_up(engine)
        check(engine, docs)
    finally:
        other.close()


def test_rowids_are_never_reused(engine: EmbeddedSearchEngine) -> None:
    rng = random.Random(7)
    engine.upsert([doc(n, rng) for n in range(3)])
    conn = engine._conn()
    last = conn.execute("SELECT max(rowid) FROM docs").fetchone()[0]
    engine.delete(["expert-2"])  # the highest rowid
    engine.upsert([doc(9, rng)])
    assert conn.execute("SELECT rowid FROM docs WHERE id = 'expert-9'").fetchone()[0] > last


def test_removed_documents_are_compacted_away(engine: EmbeddedSearchEngine) -> None:
    rng = random.Random(8)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(100))}
    engine.upsert(list(docs.values()))
    for _ in range(12):  # 1,200 replacements: more dead documents than the 1,000 kept before compacting
        batch = [doc(n, rng) for n in range(100)]
        docs.update({d["id"]: d for d in batch})
        engine.upsert(batch)
    memory = engine._memory
    assert memory is not None and memory.wants_compaction
    check(engine, docs)  # the first read reloads in the background, answering from the old memory meanwhile
    wait_until(lambda: engine._memory is not memory, timeout=30, message="the compacted memory")
    assert engine._memory.dead_docs == 0
    assert engine._memory.columns["kind"].n == len(docs)  # one kind pair per live document, nothing dead
    assert engine._memory.live_docs == len(docs)
    check(engine, docs)


def in_sql(engine: EmbeddedSearchEngine, query: SearchQuery):
    """The query answered by SQL alone: as when the memory was reloaded after the read snapshot began."""
    memory = engine._memory
    assert memory is not None
    saved = memory.loaded_generation
    memory.loaded_generation = 10**9
    try:
        return engine.search(query)
    finally:
        memory.loaded_generation = saved


def test_memory_and_sql_give_the_same_answers(engine: EmbeddedSearchEngine) -> None:
    rng = random.Random(10)
    docs = [doc(n, rng) for n in range(400)]
    for d in docs[::7]:
        d["updated_at"] = "2026-02-01T00:00:00+09:00"  # ties of updated_at: broken by id
    for d in docs[::11]:
        d["updated_at"] = None  # a missing one sorts last
    for d in docs[::13]:
        d["bio"] = "Kubernetes の導入と azure の運用。沖縄 の企業を支援"  # typo words and a place word
    engine.upsert(docs)
    engine.upsert([doc(n, rng) for n in range(0, 400, 9)])  # replacements: dead rows in memory
    engine.delete([f"expert-{n}" for n in range(5, 400, 17)])
    texts = ["", "支援", "クラウド", "ランサムウェア", "kubernets", "azrue", "沖縄", "東京 支援", "専門家 1", "教"]
    for i in range(150):
        query = SearchQuery(
            q=rng.choice(texts),
            prefectures=tuple(rng.sample(PREFS, rng.choice([0, 0, 1, 2]))),
            topics=tuple(rng.sample(TOPICS, rng.choice([0, 0, 1]))),
            skills=tuple(rng.sample(SKILLS, rng.choice([0, 0, 0, 1]))),
            kind=rng.choice([None, None, "sekisupe", "dx_talent"]),
            remote=rng.choice([None, None, True, False]),
            onsite=rng.choice([None, None, True]),
            active_only=rng.random() < 0.8,
            sort=rng.choice(["relevance", "relevance", "newest", "oldest"]),
            facets=FACETS if i % 2 else (),
            limit=rng.choice([5, 20, 100]),
            offset=rng.choice([0, 0, 5, 20, 60]),
        )
        got, want = engine.search(query), in_sql(engine, query)
        assert [h["id"] for h in got.hits] == [h["id"] for h in want.hits], query
        assert (got.total, got.facets) == (want.total, want.facets), query


def test_a_snapshot_older_than_the_last_reload_is_answered_in_sql(engine: EmbeddedSearchEngine) -> None:
    rng = random.Random(9)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(50))}
    engine.upsert(list(docs.values()))
    memory = engine._memory
    assert memory is not None
    assert engine._current_memory(engine._conn(), memory.loaded_generation - 1) is None
    memory.loaded_generation += 1  # as if reloaded after the snapshot every search now reads
    memory.generation += 1
    check(engine, docs)  # answered by SQL, with the same counts


def test_a_repeated_query_reuses_its_matches_until_the_index_changes(engine: EmbeddedSearchEngine) -> None:
    """The full-text matches of an unfiltered query are kept for the generation they were read at
    (embedded._MatchCache): the same words again are answered without FTS5, and any write, from this process or
    another, is seen by the next query."""
    rng = random.Random(8)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(100))}
    engine.upsert(list(docs.values()))
    query = SearchQuery(q="クラウド", facets=FACETS)
    first = engine.search(query)
    assert len(engine._matches._entries) == 1
    engine._conn().set_authorizer(lambda action, table, *_: sqlite3.SQLITE_DENY if table == "docs_fts" else 0)
    try:
        again = engine.search(query)  # the full-text table is not read: the kept matches answer
    finally:
        engine._conn().set_authorizer(None)
    assert (again.hits, again.total, again.facets) == (first.hits, first.total, first.facets)
    new = doc(500, rng, bio="クラウド移行の相談")
    engine.upsert([new])
    docs[new["id"]] = new
    after = engine.search(query)
    assert after.total == first.total + 1 and new["id"] in {
        hit["id"] for hit in engine.search(SearchQuery(q="クラウド", limit=200)).hits
    }
    check(engine, docs)


def test_a_filtered_query_is_answered_from_the_kept_matches_of_its_words(engine: EmbeddedSearchEngine) -> None:
    """A query with a prefecture filter reuses the kept matches of the same words (a superset, ranked alike) and
    gives exactly the answer the full-text table gives it."""
    rng = random.Random(9)
    docs = {d["id"]: d for d in (doc(n, rng) for n in range(200))}
    engine.upsert(list(docs.values()))
    filtered = SearchQuery(q="クラウド", prefectures=("13",), facets=FACETS)
    from_sql = engine.search(filtered)  # nothing kept yet: ranked in SQL within the filter
    engine.search(SearchQuery(q="クラウド"))  # the unfiltered words: their matches are kept
    engine._conn().set_authorizer(lambda action, table, *_: sqlite3.SQLITE_DENY if table == "docs_fts" else 0)
    try:
        kept = engine.search(filtered)
    finally:
        engine._conn().set_authorizer(None)
    assert 0 < kept.total < len(docs)
    assert (kept.hits, kept.total, kept.facets) == (from_sql.hits, from_sql.total, from_sql.facets)
    check(engine, docs)
