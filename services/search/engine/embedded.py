"""Embedded search engine on SQLite FTS5 (no server needed; the default backend).

Layout:
- ``docs``: one row per document: the filterable columns and the original JSON body.
- ``doc_values``: (field, value, doc), the keywords of each document (spec.keywords): the filters (OR
  within, AND across), the facet counts (one GROUP BY over the matching documents), the place words, the
  Latin vocabulary of typo tolerance and the suggestions (a range scan on the primary key).
- ``docs_fts``: a contentless FTS5 index of the normalised text of each field group (text.FIELD_GROUPS), fed
  with the bigram token stream of text.bigram_streams. A query term becomes a phrase of its bigrams (or a
  prefix query for one character), which matches exactly the texts containing the term as a substring, at
  every term length, from the index; bm25 with per-group weights gives the relevance.

Why bigrams rather than the FTS5 ``trigram`` tokenizer: trigram cannot index 1-2 character terms, and a LIKE
scan for them ("佐藤", "札幌", "港" are everyday queries) took 70-130 ms at 30,000 experts; the bigram stream
answers every length in a few ms, and builds faster than a trigram index (bench/bench_search.py).

A text query asks SQLite for its full-text matches and their bm25 ranks only; the filters, the order and the
facet counts come from memory (memory.py: numpy columns of each document and its keywords, kept in step
through a generation number in ``meta`` that every write raises), not from joins and a GROUP BY. Rowids are
never reused (``meta.last_rowid``), which is what lets that memory only ever append. Browsing with column
filters only stays in SQL (an index gives the page at once).

The FTS index is contentless (it stores no text), so replacing or deleting a document re-derives its tokens
from the stored body; text.TEXT_VERSION guards against deriving them with different rules than at insert
time (a changed version rebuilds the index from the bodies).

Writes go through one lock and one transaction per call; each thread reads on its own connection, which WAL
lets run alongside the writer.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from tsunagu.db import use_wal

from . import spec as specs
from . import text
from .base import Plan, SearchEngine, SearchQuery, SearchResult, _Cached, validate_docs
from .memory import CONDITION_FIELDS, IndexMemory

log = logging.getLogger(__name__)

# 2: doc_values (keywords: facets, place words, Latin vocabulary, suggestions) replaces doc_prefs/doc_topics.
SCHEMA_VERSION = 2
# PRAGMA user_version: layout and token rules in one number.
_USER_VERSION = SCHEMA_VERSION * 1000 + text.TEXT_VERSION

_GROUPS = tuple(text.FIELD_GROUPS)  # FTS column order: name, tags, org, bio
if _GROUPS != ("name", "tags", "org", "bio"):  # the statements below spell the columns out
    raise RuntimeError(f"update the FTS statements of the embedded engine for the field groups {_GROUPS}")
# Every non-space character is a token character, so a bigram such as "・初" or "c+" stays one token.
_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co M* P* S*'"

# Every SQL statement is a constant: a list of values is ONE parameter, a JSON array read with
# ``IN (SELECT value FROM json_each(?))`` (no placeholders to count, no limit on host parameters). The only
# SQL put together at run time is the search query, from the constant fragments below (see search()).

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS docs (
        rowid INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        kind TEXT,
        remote INTEGER NOT NULL,
        onsite INTEGER NOT NULL,
        active INTEGER NOT NULL,
        updated_ts REAL,
        body TEXT NOT NULL
    )""",
    # Browsing without q: newest first, straight from an index.
    "CREATE INDEX IF NOT EXISTS docs_browse ON docs(active, updated_ts DESC, id)",
    "CREATE INDEX IF NOT EXISTS docs_kind ON docs(kind, active, updated_ts DESC, id)",
    """CREATE TABLE IF NOT EXISTS doc_values (
        field TEXT NOT NULL, value TEXT NOT NULL, doc INTEGER NOT NULL,
        PRIMARY KEY (field, value, doc)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS doc_values_doc ON doc_values(doc)",
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
        {", ".join(_GROUPS)}, content='', tokenize="{_TOKENIZER}")""",
]
# Run on every setup (idempotent, so an index of layout 2 built before it needs no rebuild): the generation
# every write raises, and the highest rowid ever given (rowids are never reused; see memory.py).
_META = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO meta(key, value) VALUES ('generation', 0)",
    "INSERT OR IGNORE INTO meta(key, value) SELECT 'last_rowid', coalesce(max(rowid), 0) FROM docs",
]
_GENERATION = "SELECT value FROM meta WHERE key = 'generation'"
_NEXT_ROWID = (
    "SELECT max(coalesce((SELECT max(rowid) FROM docs), 0), (SELECT value FROM meta WHERE key = 'last_rowid')) + 1"
)

_DROP = [
    "DROP TABLE IF EXISTS docs_fts",
    "DROP TABLE IF EXISTS doc_prefs",  # layout 1
    "DROP TABLE IF EXISTS doc_topics",  # layout 1
    "DROP TABLE IF EXISTS doc_values",
    "DROP TABLE IF EXISTS docs",
]

_INSERT_FTS = "INSERT INTO docs_fts(rowid, name, tags, org, bio) VALUES (?, ?, ?, ?, ?)"
_DELETE_FTS = "INSERT INTO docs_fts(docs_fts, rowid, name, tags, org, bio) VALUES ('delete', ?, ?, ?, ?, ?)"

# search(): the row source with and without free text. bm25() is computed in a plain FTS subquery (auxiliary
# functions are not allowed in every context); the weights are a hundredfold apart, so the best field a
# document matches in decides first (name > tags > affiliation > bio, as with Meilisearch's attribute rule) and
# bm25 only orders documents within that tier: per-field bm25 values differ far less than 100x in practice.
_TEXT_SOURCE = (
    "(SELECT rowid AS rid, bm25(docs_fts, 1000000.0, 10000.0, 100.0, 1.0) AS rank"
    " FROM docs_fts WHERE docs_fts MATCH ?) f JOIN docs d ON d.rowid = +f.rid"
)
_TEXT_ORDER = "f.rank ASC, d.updated_ts DESC, d.id ASC"
_BROWSE_SOURCE = "docs d"
_BROWSE_ORDER = "d.updated_ts DESC, d.id ASC"
_NEWEST_ORDER = "d.updated_ts DESC, d.id ASC"  # a missing updated_at (NULL) sorts last
_OLDEST_ORDER = "d.updated_ts IS NULL, d.updated_ts ASC, d.id ASC"
# One keyword condition: the documents having one of the values of a field. A plan's condition ORs a few of
# them (UNION ALL); its conditions are ANDed. With free text they test the FTS rowid, so a non-matching
# candidate is dropped before its docs row is read. The unary + keeps SQLite from pushing a rowid constraint
# into FTS5 (in the join too), which would re-run the MATCH once per rowid: seconds instead of milliseconds.
_KEYWORD = "SELECT doc FROM doc_values WHERE field = ? AND value IN (SELECT value FROM json_each(?))"
_TEXT_ROW = "+f.rid"
_BROWSE_ROW = "d.rowid"
_FACETS = (
    "SELECT v.field, v.value, count(*) FROM doc_values v WHERE v.field IN (SELECT value FROM json_each(?))"
    " AND v.doc IN (SELECT d.rowid FROM {source} WHERE {where}) GROUP BY v.field, v.value"
)
_SUGGEST = (
    "SELECT v.value, count(*) FROM doc_values v JOIN docs d ON d.rowid = v.doc"
    " WHERE v.field = '_sugg' AND v.value >= ? AND v.value < ? AND d.active = 1"
    " GROUP BY v.value ORDER BY count(*) DESC, v.value LIMIT ?"
)
# The candidates of a search answered in memory (memory.py): every full-text match with its rank, or every
# document. The weights are a hundredfold apart, as in _TEXT_SOURCE.
_RANKED = "SELECT rowid, bm25(docs_fts, 1000000.0, 10000.0, 100.0, 1.0) FROM docs_fts WHERE docs_fts MATCH ?"
_MATCHED = "SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?"
# The same within a set of rowids (see _selective_filter). The unary + keeps the rowid test out of FTS5 (which
# would run the MATCH once per rowid); the set is built once, each match tested against it.
_WITHIN = " AND +rowid IN (SELECT value FROM json_each(?))"
_RANKED_WITHIN = _RANKED + _WITHIN
_MATCHED_WITHIN = _MATCHED + _WITHIN
_SELECTIVE = 0.5  # the share of the documents below which a filter is applied before ranking
MATCH_CACHE_SIZE = 256  # unfiltered full-text matches kept per index (see _MatchCache)


class _MatchCache:
    """The full-text matches (rowids, and their bm25 ranks) of recent unfiltered queries, for the index
    generation they were read at. bm25 over a broad word (支援, クラウド: thousands of matches) was 40 % of the
    search service's CPU under the load mix (py-spy, bench_load.py), and people search the same few words
    again and again; a generation is a snapshot (every write raises it), so an entry can never be stale: the
    first query of a newer generation empties the cache. Least recently used entries go first."""

    def __init__(self, size: int = MATCH_CACHE_SIZE) -> None:
        self._size = size
        self._generation = -1
        self._entries: OrderedDict[tuple[str, bool], tuple[np.ndarray, np.ndarray | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, generation: int, key: tuple[str, bool]) -> tuple[np.ndarray, np.ndarray | None] | None:
        with self._lock:
            if generation != self._generation:
                return None
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, generation: int, key: tuple[str, bool], value: tuple[np.ndarray, np.ndarray | None]) -> None:
        for array in value:
            if array is not None:
                array.flags.writeable = False  # shared by every query that hits it
        with self._lock:
            if generation < self._generation:
                return  # read from an older snapshot than the cache already holds
            if generation > self._generation:
                self._generation = generation
                self._entries.clear()
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)


_MEMORY_FIELDS = (*specs.FACETS, *CONDITION_FIELDS)
_SUGGEST_ROWS = 400  # keyword rows read per suggestion lookup (ranked and cut in SearchEngine.suggest)


def _fts_string(s: str) -> str:
    # An FTS5 string: quoted, inner quotes doubled; operators inside quotes are plain text.
    return '"' + s.replace('"', '""') + '"'


def _fts_term(term: str) -> str:
    """The FTS5 query for one normalised term: a phrase of its bigrams, or a prefix for one character."""
    if len(term) == 1:
        return _fts_string(term) + " *"
    return _fts_string(" ".join(text.term_bigrams(term)))


def _json_list(values: list[Any] | tuple[Any, ...]) -> str:
    """A list of values as the one parameter of ``IN (SELECT value FROM json_each(?))``."""
    return json.dumps(list(values), ensure_ascii=False)


def _fts_rows(rowids: list[int], texts: list[list[str]]) -> list[tuple[Any, ...]]:
    """(rowid, name, tags, org, bio) token streams for the FTS index, built in one vectorised batch."""
    return [(rowid, *streams) for rowid, streams in zip(rowids, text.streams_of(texts), strict=False)]


class EmbeddedSearchEngine(SearchEngine):
    name = "embedded"

    def __init__(
        self, path: str | Path, spec: specs.IndexSpec = specs.EXPERTS, *, match_cache_size: int = MATCH_CACHE_SIZE
    ) -> None:
        if str(path) == ":memory:":
            raise ValueError("the embedded engine needs a file (each thread opens its own connection)")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._setup_lock = threading.Lock()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._ready = False
        self._closed = False
        self.spec = spec
        self._vocabulary = _Cached(self._read_vocabulary)
        # Filters, order and facets (memory.py): the memory, the lock under which it is used and changed, and the changes
        # of the write transaction in progress (only the writer holding _write_lock touches that list).
        self._memory: IndexMemory | None = None
        self._memory_lock = threading.Lock()
        self._reloading = False  # a background reload is under way (see _current_memory)
        self._pending: list[tuple[str, Any]] = []
        self._matches = _MatchCache(match_cache_size)  # 0: every query reads its matches (bench_search.py)

    # -- connections -------------------------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, with the schema in place (created on first use if setup() was skipped)."""
        conn = self._thread_conn()
        if not self._ready:
            self.setup()
        return conn

    def _thread_conn(self) -> sqlite3.Connection:
        if self._closed:
            raise RuntimeError("search engine is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: autocommit; writes open their own BEGIN IMMEDIATE.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            use_wal(conn)  # only the first connection to a new index file switches (tsunagu.db.use_wal)
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; the index can be rebuilt anyway
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MB: the index of ~30k experts stays in memory
            conn.execute("PRAGMA mmap_size=268435456")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self, conn: sqlite3.Connection | None = None, *, changes: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction. ``changes``: it may change documents, so it raises the generation and
        applies what it recorded in ``_pending`` to the memory (see memory.py)."""
        conn = conn or self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            self._pending = []
            try:
                yield conn
                if changes:
                    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                    generation = conn.execute(_GENERATION).fetchone()[0]
            except BaseException:
                conn.execute("ROLLBACK")
                self._pending = []
                raise
            if not changes:
                conn.execute("COMMIT")
                return
            # Readers of this process wait here rather than see the commit before the memory follows it.
            with self._memory_lock:
                conn.execute("COMMIT")
                self._vocabulary.invalidate()
                self._follow(generation)

    def _follow(self, generation: int) -> None:
        """Move the memory to the generation just committed (with _memory_lock held)."""
        memory, pending, self._pending = self._memory, self._pending, []
        if memory is None or memory.generation != generation - 1:
            return  # not loaded, or another process wrote in between: the next reader reloads it
        try:
            for change, arg in pending:
                if change == "add":
                    memory.add_docs(arg[0])
                    memory.add_keywords(arg[1])
                elif change == "removed":
                    memory.removed(arg)
                elif change == "clear":
                    memory.clear()
                else:  # "reset": the layout changed under it
                    self._memory = None
                    return
        except BaseException:
            self._memory = None  # half applied: reload on the next read
            raise
        memory.generation = generation

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            for conn in self._conns:
                with suppress(sqlite3.ProgrammingError):
                    conn.close()
            self._conns.clear()

    # -- SearchEngine --------------------------------------------------------------------------------------

    def setup(self) -> None:
        carried: list[dict[str, Any]] = []
        with self._setup_lock, self._write(self._thread_conn()) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            elif version // 1000 != SCHEMA_VERSION:
                # Another layout: recreated, and the stored documents carried over (re-derived below), so the
                # index need not wait for a reindex.
                carried = [json.loads(r[0]) for r in conn.execute("SELECT body FROM docs")]
                for statement in _DROP + _SCHEMA:
                    conn.execute(statement)
                self._pending.append(("reset", None))
            elif version % 1000 != text.TEXT_VERSION:
                # Same layout, other token rules: re-derive the FTS index from the stored bodies.
                self._rebuild_fts(conn)
            for statement in _META:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={_USER_VERSION}")
        self._ready = True
        for start in range(0, len(carried), 5000):
            self.upsert(carried[start : start + 5000])
        self._load_memory()  # now rather than on the first query (~0.5 s at 30,000 experts)

    def _load_memory(self) -> None:
        conn = self._conn()
        conn.execute("BEGIN")
        try:
            generation = conn.execute(_GENERATION).fetchone()[0]
            with self._memory_lock:
                if self._memory is None or self._memory.generation < generation:
                    self._memory = IndexMemory.load(conn, _MEMORY_FIELDS, generation)
        finally:
            conn.execute("COMMIT")

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM docs LIMIT 1").fetchall()
            return True
        except (sqlite3.Error, RuntimeError):
            return False

    def count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM docs").fetchone()[0]

    def ids(self) -> set[str]:
        return {r[0] for r in self._conn().execute("SELECT id FROM docs")}

    def get(self, id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT body FROM docs WHERE id = ?", (id,)).fetchone()
        return json.loads(row[0]) if row else None

    def clear(self) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
            conn.execute("DELETE FROM doc_values")
            conn.execute("DELETE FROM docs")
            self._pending.append(("clear", None))

    def delete(self, ids: list[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if isinstance(i, str)]
        if not ids:
            return
        with self._write() as conn:
            self._delete_ids(conn, ids)

    def upsert(self, docs: list[dict[str, Any]]) -> None:
        docs = validate_docs(docs)
        if not docs:
            return
        # Index what is stored: the JSON round trip of each document. A delete re-derives the tokens from the
        # stored body, so they must come from exactly that (a tuple or a set would not survive the trip).
        bodies = [self._body(doc) for doc in docs]
        docs = [json.loads(body) for body in bodies]
        # Normalise and tokenise before taking the write lock: it is the slow part of a bulk load.
        rows = [(*self._doc_row(doc), body) for doc, body in zip(docs, bodies, strict=False)]
        texts = text.doc_texts(docs, self.spec.field_groups)
        fts_rows = _fts_rows(list(range(len(docs))), texts)  # rowids filled in below
        keywords = [specs.keywords(self.spec, doc, " ".join(t)) for doc, t in zip(docs, texts, strict=False)]
        with self._write() as conn:
            self._delete_ids(conn, [doc["id"] for doc in docs])
            # We hold the only write transaction, so allocating rowids here is race-free and lets every table
            # be filled with executemany. Never one given before (the memory relies on it).
            first = conn.execute(_NEXT_ROWID).fetchone()[0]
            conn.execute("UPDATE meta SET value = ? WHERE key = 'last_rowid'", (first + len(docs) - 1,))
            doc_rows = [(first + i, *row) for i, row in enumerate(rows)]
            conn.executemany(
                "INSERT INTO docs(rowid, id, kind, remote, onsite, active, updated_ts, body) VALUES (?,?,?,?,?,?,?,?)",
                doc_rows,
            )
            conn.executemany(_INSERT_FTS, [(first + r[0], *r[1:]) for r in fts_rows])
            keyword_rows = [
                (field, value, first + i)
                for i, fields in enumerate(keywords)
                for field, values in fields.items()
                for value in values
            ]
            conn.executemany("INSERT OR IGNORE INTO doc_values(field, value, doc) VALUES (?, ?, ?)", keyword_rows)
            self._pending.append(("add", ([r[:-1] for r in doc_rows], keyword_rows)))
        if len(docs) >= 1000:
            self._after_bulk_load()

    def _search(self, query: SearchQuery, plan: Plan) -> SearchResult:
        match = " AND ".join(_fts_term(t) for t in plan.terms) if plan.terms else None
        conn = self._conn()
        # A read transaction: the page, the total, the facets and the bodies come from one snapshot even if
        # a write commits meanwhile (WAL readers never block the writer).
        conn.execute("BEGIN")
        try:
            generation = conn.execute(_GENERATION).fetchone()[0]  # the first read: it fixes the snapshot
            found = None
            if match is not None:
                found = self._search_in_memory(conn, generation, query, plan, match)
            elif plan.conditions or query.facets:
                found = self._browse_in_memory(conn, generation, query, plan)
            if found is None:  # browsing with column filters only (indexes give the page at once), or no memory
                found = self._search_in_sql(conn, generation, query, plan, match)
            rowids, total, counted = found
            # Bodies are fetched for the page alone (decoding thousands of JSON bodies cost more than the
            # search itself).
            bodies = (
                dict(
                    conn.execute(
                        "SELECT rowid, body FROM docs WHERE rowid IN (SELECT value FROM json_each(?))",
                        (_json_list(rowids),),
                    )
                )
                if rowids
                else {}
            )
        finally:
            conn.execute("COMMIT")
        facets = {f: dict(sorted(counted.get(f, {}).items(), key=lambda kv: (-kv[1], kv[0]))) for f in query.facets}
        return SearchResult(hits=[json.loads(bodies[r]) for r in rowids], total=total, facets=facets)

    def _search_in_memory(
        self, conn: sqlite3.Connection, generation: int, query: SearchQuery, plan: Plan, match: str | None
    ) -> tuple[list[int], int, dict[str, dict[str, int]]] | None:
        """The page, total and facet counts of a text query: its full-text matches and their ranks from SQL,
        the rest from memory (memory.py); None when the memory was reloaded after this read snapshot began."""
        ranked = query.sort == "relevance"
        # The kept matches of the same words serve a filtered query too: they are a superset of its matches,
        # with the same bm25 ranks (FTS5 ranks against the whole index's statistics, whatever the filter), and
        # ``_answer`` applies the filters from memory. Under the load mix half of the searches name a
        # prefecture or a topic; without this each of them ranked its words again in SQL (a third of the
        # search service's CPU, py-spy).
        cached = self._matches.get(generation, (match, ranked))
        allowed = self._selective_filter(conn, generation, query, plan) if cached is None else None
        if cached is not None:
            rowids, ranks = cached
        else:
            if allowed is None:
                candidates = conn.execute(_RANKED if ranked else _MATCHED, (match,)).fetchall()
            else:
                sql = _RANKED_WITHIN if ranked else _MATCHED_WITHIN
                candidates = conn.execute(sql, (match, json.dumps(allowed.tolist()))).fetchall()
            width = 2 if ranked else 1
            table = np.fromiter(chain.from_iterable(candidates), dtype=np.float64, count=width * len(candidates))
            table = table.reshape(len(candidates), width)
            rowids = table[:, 0].astype(np.int64)
            ranks = np.ascontiguousarray(table[:, 1]) if ranked else None
            if allowed is None:  # a filtered query ranks a few hundred rows: not worth keeping
                self._matches.put(generation, (match, ranked), (rowids, ranks))
        with self._memory_lock:
            memory = self._current_memory(conn, generation)
            if memory is None:
                return None
            return _answer(memory, rowids, ranks, query, plan)

    def _browse_in_memory(
        self, conn: sqlite3.Connection, generation: int, query: SearchQuery, plan: Plan
    ) -> tuple[list[int], int, dict[str, dict[str, int]]] | None:
        """Browsing with keyword conditions or facets, from memory alone; None unless the memory is exactly
        at this read snapshot (it alone knows which documents are in the index: no full-text match says)."""
        with self._memory_lock:
            memory = self._current_memory(conn, generation)
            if memory is None or memory.generation != generation:
                return None
            return _answer(memory, memory.live(), None, query, plan)

    def _selective_filter(
        self, conn: sqlite3.Connection, generation: int, query: SearchQuery, plan: Plan
    ) -> np.ndarray | None:
        """The rowids passing a query's filters when they pass at most _SELECTIVE of the documents, else None.

        bm25 costs ~1 µs per full-text match and is computed only for the rows the WHERE clause lets through,
        so "支援" (in 80% of the profiles) within one prefecture ranks the few hundred there, not 24,000. The
        set may hold removed or newer documents' rowids: no full-text match of this snapshot has them."""
        if not plan.conditions and query.kind is None and query.remote is None and query.onsite is None:
            return None
        with self._memory_lock:
            memory = self._current_memory(conn, generation)
            if memory is None:
                return None
            everything = np.arange(memory.size, dtype=np.int64)
            keep = memory.keep(
                everything,
                active_only=query.active_only,
                kind=query.kind,
                remote=query.remote,
                onsite=query.onsite,
                conditions=plan.conditions,
            )
            if np.count_nonzero(keep) > _SELECTIVE * max(memory.live_docs, 1):
                return None
            return everything[keep]

    def _current_memory(self, conn: sqlite3.Connection, generation: int) -> IndexMemory | None:
        """The memory if it can answer for this read snapshot (``generation``), else None (the SQL path
        answers). A memory older than the snapshot (another process wrote the index, e.g. a reindex) or
        full of removed documents is reloaded in the background: a query never waits the ~0.5-1 s a load
        takes at 30,000 experts, and a reindex writing batch after batch never makes every query reload.
        Call with _memory_lock held."""
        memory = self._memory
        if memory is None or memory.generation < generation:
            self._reload_in_background()
            return None
        if memory.wants_compaction:
            self._reload_in_background()
        if memory.loaded_generation > generation:
            return None
        return memory

    def _reload_in_background(self) -> None:
        """Load the memory afresh on a thread of its own, in its own read snapshot, and put it in place
        unless the memory has meanwhile followed newer writes. One load at a time."""
        if self._reloading or self._closed:
            return
        self._reloading = True

        def load() -> None:
            try:
                conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
                try:
                    conn.execute("BEGIN")
                    generation = conn.execute(_GENERATION).fetchone()[0]
                    memory = IndexMemory.load(conn, _MEMORY_FIELDS, generation)
                    conn.execute("COMMIT")
                finally:
                    conn.close()
                with self._memory_lock:
                    if self._memory is None or self._memory.generation <= generation:
                        self._memory = memory
            except Exception:  # the SQL path keeps answering; the next query tries again
                log.warning("the search index's memory could not be reloaded", exc_info=True)
            finally:
                self._reloading = False

        threading.Thread(target=load, name=f"search-memory-{self.spec.name}", daemon=True).start()

    def _search_in_sql(
        self, conn: sqlite3.Connection, generation: int, query: SearchQuery, plan: Plan, match: str | None
    ) -> tuple[list[int], int, dict[str, dict[str, int]]]:
        """The page, total and facet counts in SQL (browsing, or while the memory cannot answer); facet
        counts from memory when it can."""
        if match is not None:
            source, row = _TEXT_SOURCE, _TEXT_ROW
            source_params: list[Any] = [match]
        else:
            source, row = _BROWSE_SOURCE, _BROWSE_ROW
            source_params = []
        order_sql = {
            "relevance": _TEXT_ORDER if match is not None else _BROWSE_ORDER,
            "newest": _NEWEST_ORDER,
            "oldest": _OLDEST_ORDER,
        }[query.sort]

        where: list[str] = []
        params: list[Any] = []
        if query.active_only:
            where.append("d.active = 1")
        if query.kind is not None:
            where.append("d.kind = ?")
            params.append(query.kind)
        if query.remote is not None:
            where.append("d.remote = ?")
            params.append(int(query.remote))
        if query.onsite is not None:
            where.append("d.onsite = ?")
            params.append(int(query.onsite))
        for condition in plan.conditions:
            # Only the constant fragments _KEYWORD and _TEXT_ROW/_BROWSE_ROW; the values are parameters.
            where.append(f"{row} IN (" + " UNION ALL ".join(_KEYWORD for _ in condition) + ")")
            for field, values in condition:
                params += [field, _json_list(values)]
        where_sql = " AND ".join(where) or "1"
        # Only constant fragments (above) go into the SQL; every value is a parameter.
        page_sql = f"SELECT d.rowid FROM {source} WHERE {where_sql} ORDER BY {order_sql} LIMIT ? OFFSET ?"  # noqa: S608 - constant fragments only
        count_sql = f"SELECT count(*) FROM {source} WHERE {where_sql}"  # noqa: S608 - constant fragments only
        ordered_sql = f"SELECT d.rowid FROM {source} WHERE {where_sql} ORDER BY {order_sql}"  # noqa: S608 - constant fragments only
        base_params = [*source_params, *params]
        if query.facets:
            # Every match in order, in one pass: the page, the total and the facet counts come from it.
            matched = [r[0] for r in conn.execute(ordered_sql, base_params)]
            rowids, total = matched[query.offset : query.offset + query.limit], len(matched)
            if total:
                with self._memory_lock:
                    memory = self._current_memory(conn, generation)
                    if memory is not None:
                        return rowids, total, memory.counts(query.facets, np.array(matched, dtype=np.int64))
        else:
            rowids = [r[0] for r in conn.execute(page_sql, [*base_params, query.limit, query.offset])]
            if rowids and len(rowids) < query.limit:
                total = query.offset + len(rowids)  # the last page: no need to count
            else:
                total = conn.execute(count_sql, base_params).fetchone()[0]
        counted: dict[str, dict[str, int]] = {f: {} for f in query.facets}
        if query.facets and total:
            facet_sql = _FACETS.format(source=source, where=where_sql)
            for field, value, count in conn.execute(facet_sql, [_json_list(query.facets), *base_params]):
                counted[field][value] = count
        return rowids, total, counted

    def _term_exists(self, term: str) -> bool:
        conn = self._conn()
        return (
            conn.execute("SELECT 1 FROM docs_fts WHERE docs_fts MATCH ? LIMIT 1", (_fts_term(term),)).fetchone()
            is not None
        )

    def _latin_vocabulary(self) -> list[str]:
        return self._vocabulary.get()

    def _read_vocabulary(self) -> list[str]:
        return [r[0] for r in self._conn().execute("SELECT DISTINCT value FROM doc_values WHERE field = '_latin'")]

    def _suggestion_entries(self, key: str) -> list[tuple[str, int]]:
        low, high = specs.suggestion_range(key)
        return [(r[0], r[1]) for r in self._conn().execute(_SUGGEST, (low, high, _SUGGEST_ROWS))]

    # -- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def _body(doc: dict[str, Any]) -> str:
        try:
            return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8").decode()
        except UnicodeEncodeError:  # lone surrogates cannot be stored as UTF-8: keep them escaped
            return json.dumps(doc, separators=(",", ":"), default=str)

    @staticmethod
    def _doc_row(doc: dict[str, Any]) -> tuple[Any, ...]:
        """The docs columns of a document, without the body."""
        kind = doc.get("kind")
        return (
            doc["id"],
            kind if isinstance(kind, str) else None,
            1 if doc.get("remote") is True else 0,
            1 if doc.get("onsite") is True else 0,
            0 if doc.get("active") is False else 1,
            text.updated_timestamp(doc.get("updated_at")),
        )

    def _delete_ids(self, conn: sqlite3.Connection, ids: list[str]) -> None:
        found = conn.execute(
            "SELECT rowid, body FROM docs WHERE id IN (SELECT value FROM json_each(?))", (_json_list(ids),)
        ).fetchall()
        if not found:
            return
        rowids = [r[0] for r in found]
        # Contentless FTS: a delete must present the exact tokens that were indexed.
        texts = text.doc_texts([json.loads(r[1]) for r in found], self.spec.field_groups)
        conn.executemany(_DELETE_FTS, _fts_rows(rowids, texts))
        listed = (_json_list(rowids),)
        conn.execute("DELETE FROM doc_values WHERE doc IN (SELECT value FROM json_each(?))", listed)
        conn.execute("DELETE FROM docs WHERE rowid IN (SELECT value FROM json_each(?))", listed)
        self._pending.append(("removed", rowids))

    def _rebuild_fts(self, conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
        cursor = conn.execute("SELECT rowid, body FROM docs")
        while batch := cursor.fetchmany(5000):
            texts = text.doc_texts([json.loads(r[1]) for r in batch], self.spec.field_groups)
            conn.executemany(_INSERT_FTS, _fts_rows([r[0] for r in batch], texts))

    def _after_bulk_load(self) -> None:
        # After a big load: merge the FTS segments and refresh planner statistics, so that filters and the
        # FTS index are combined in the cheap order.
        with self._write(changes=False) as conn:
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")
            conn.execute("PRAGMA analysis_limit=1000")  # sampled statistics: enough for the planner, cheap
            conn.execute("ANALYZE")


def _answer(
    memory: IndexMemory, rowids: np.ndarray, ranks: np.ndarray | None, query: SearchQuery, plan: Plan
) -> tuple[list[int], int, dict[str, dict[str, int]]]:
    """The filters, the page in order and the facet counts of the candidate rows, from memory (under its lock)."""
    keep = memory.keep(
        rowids,
        active_only=query.active_only,
        kind=query.kind,
        remote=query.remote,
        onsite=query.onsite,
        conditions=plan.conditions,
    )
    rowids = rowids[keep]
    if ranks is not None:
        ranks = ranks[keep]
    page = memory.order(rowids, ranks, query.sort, query.offset, query.offset + query.limit)
    counted = memory.counts(query.facets, rowids) if query.facets and len(rowids) else {}
    return page, len(rowids), counted
