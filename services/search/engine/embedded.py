"""Embedded search engine on SQLite FTS5 (no server needed; the default backend).

Layout:
- ``docs``: one row per document: the filterable columns and the original JSON body.
- ``doc_prefs`` / ``doc_topics``: side tables (value, doc) for the OR-within, AND-across filters.
- ``docs_fts``: a contentless FTS5 index of the normalised text of each field group (text.FIELD_GROUPS), fed
  with the bigram token stream of text.bigram_streams. A query term becomes a phrase of its bigrams (or a
  prefix query for one character), which matches exactly the texts containing the term as a substring, at
  every term length, from the index; bm25 with per-group weights gives the relevance.

Why bigrams rather than the FTS5 ``trigram`` tokenizer: trigram cannot index 1-2 character terms, and a LIKE
scan for them ("佐藤", "札幌", "港" are everyday queries) took 70-130 ms at 30,000 experts; the bigram stream
answers every length in a few ms, and builds faster than a trigram index (bench/bench_search.py).

The FTS index is contentless (it stores no text), so replacing or deleting a document re-derives its tokens
from the stored body; text.TEXT_VERSION guards against deriving them with different rules than at insert
time (a changed version rebuilds the index from the bodies).

Writes go through one lock and one transaction per call; each thread reads on its own connection, which WAL
lets run alongside the writer.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from . import text
from .base import SearchEngine, SearchQuery, SearchResult, validate_docs

SCHEMA_VERSION = 1
# PRAGMA user_version: layout and token rules in one number.
_USER_VERSION = SCHEMA_VERSION * 1000 + text.TEXT_VERSION

_GROUPS = tuple(text.FIELD_GROUPS)  # FTS column order: name, tags, org, bio
# bm25 weights of the FTS columns, in the same order. A hundredfold apart, so the best field a document
# matches in decides first (name > tags > affiliation > bio, as with Meilisearch's attribute rule) and bm25
# only orders documents within that tier: per-field bm25 values differ far less than 100x in practice.
_BM25 = "bm25(docs_fts, 1000000.0, 10000.0, 100.0, 1.0)"

# Every non-space character is a token character, so a bigram such as "・初" or "c+" stays one token.
_TOKENIZER = "unicode61 remove_diacritics 0 categories 'L* N* Co M* P* S*'"

# SQLite limits host parameters per statement; keep IN lists well under it.
_CHUNK = 500

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
    """CREATE TABLE IF NOT EXISTS doc_prefs (
        pref TEXT NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (pref, doc)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS doc_prefs_doc ON doc_prefs(doc)",
    """CREATE TABLE IF NOT EXISTS doc_topics (
        topic TEXT NOT NULL, doc INTEGER NOT NULL, PRIMARY KEY (topic, doc)) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS doc_topics_doc ON doc_topics(doc)",
    f"""CREATE VIRTUAL TABLE IF NOT EXISTS docs_fts USING fts5(
        {", ".join(_GROUPS)}, content='', tokenize="{_TOKENIZER}")""",
]

_DROP = [
    "DROP TABLE IF EXISTS docs_fts",
    "DROP TABLE IF EXISTS doc_prefs",
    "DROP TABLE IF EXISTS doc_topics",
    "DROP TABLE IF EXISTS docs",
]

_INSERT_FTS = f"INSERT INTO docs_fts(rowid, {', '.join(_GROUPS)}) VALUES (?{', ?' * len(_GROUPS)})"
_DELETE_FTS = (
    f"INSERT INTO docs_fts(docs_fts, rowid, {', '.join(_GROUPS)}) VALUES ('delete', ?{', ?' * len(_GROUPS)})"
)


def _fts_string(s: str) -> str:
    # An FTS5 string: quoted, inner quotes doubled; operators inside quotes are plain text.
    return '"' + s.replace('"', '""') + '"'


def _fts_term(term: str) -> str:
    """The FTS5 query for one normalised term: a phrase of its bigrams, or a prefix for one character."""
    if len(term) == 1:
        return _fts_string(term) + " *"
    return _fts_string(" ".join(text.term_bigrams(term)))


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


def _fts_rows(rowids: list[int], docs: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(rowid, name, tags, org, bio) token streams for the FTS index, built in one vectorised batch."""
    return [(rowid, *streams) for rowid, streams in zip(rowids, text.doc_streams(docs))]


class EmbeddedSearchEngine(SearchEngine):
    name = "embedded"

    def __init__(self, path: str | Path) -> None:
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
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # durable at checkpoints; the index can be rebuilt anyway
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA cache_size=-65536")  # 64 MB: the index of ~30k experts stays in memory
            conn.execute("PRAGMA mmap_size=268435456")
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    @contextmanager
    def _write(self, conn: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        conn = conn or self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._conns_lock:
            self._closed = True
            for conn in self._conns:
                try:
                    conn.close()
                except sqlite3.ProgrammingError:
                    pass
            self._conns.clear()

    # -- SearchEngine --------------------------------------------------------------------------------------

    def setup(self) -> None:
        with self._setup_lock, self._write(self._thread_conn()) as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
            elif version // 1000 != SCHEMA_VERSION:
                # The index is derived data (rebuilt from events): an older layout is simply recreated.
                for statement in _DROP + _SCHEMA:
                    conn.execute(statement)
            elif version % 1000 != text.TEXT_VERSION:
                # Same layout, other token rules: re-derive the FTS index from the stored bodies.
                self._rebuild_fts(conn)
            conn.execute(f"PRAGMA user_version={_USER_VERSION}")
        self._ready = True

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1 FROM docs LIMIT 1").fetchall()
            return True
        except (sqlite3.Error, RuntimeError):
            return False

    def count(self) -> int:
        return self._conn().execute("SELECT count(*) FROM docs").fetchone()[0]

    def get(self, id: str) -> dict[str, Any] | None:
        row = self._conn().execute("SELECT body FROM docs WHERE id = ?", (id,)).fetchone()
        return json.loads(row[0]) if row else None

    def clear(self) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
            conn.execute("DELETE FROM doc_prefs")
            conn.execute("DELETE FROM doc_topics")
            conn.execute("DELETE FROM docs")

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
        rows = [(*self._doc_row(doc), body) for doc, body in zip(docs, bodies)]
        fts_rows = _fts_rows(list(range(len(docs))), docs)  # rowids filled in below
        with self._write() as conn:
            self._delete_ids(conn, [doc["id"] for doc in docs])
            # We hold the only write transaction, so allocating rowids here is race-free and lets every table
            # be filled with executemany.
            first = conn.execute("SELECT coalesce(max(rowid), 0) + 1 FROM docs").fetchone()[0]
            conn.executemany(
                "INSERT INTO docs(rowid, id, kind, remote, onsite, active, updated_ts, body)"
                " VALUES (?,?,?,?,?,?,?,?)",
                [(first + i, *row) for i, row in enumerate(rows)],
            )
            conn.executemany(_INSERT_FTS, [(first + r[0], *r[1:]) for r in fts_rows])
            prefs, topics = [], []
            for i, doc in enumerate(docs):
                prefs.extend((p, first + i) for p in dict.fromkeys(text.as_list(doc.get("prefectures"))))
                topics.extend((t, first + i) for t in dict.fromkeys(text.as_list(doc.get("topics"))))
            conn.executemany("INSERT INTO doc_prefs(pref, doc) VALUES (?, ?)", prefs)
            conn.executemany("INSERT INTO doc_topics(topic, doc) VALUES (?, ?)", topics)
        if len(docs) >= 1000:
            self._after_bulk_load()

    def search(self, query: SearchQuery) -> SearchResult:
        query = query.bounded()
        terms = text.query_terms(query.q)

        source_params: list[Any] = []
        if terms:
            # bm25() is computed in a plain FTS subquery (auxiliary functions are not allowed in every context).
            source = (
                f"(SELECT rowid AS rid, {_BM25} AS rank FROM docs_fts WHERE docs_fts MATCH ?) f"
                " JOIN docs d ON d.rowid = +f.rid"
            )
            source_params.append(" AND ".join(_fts_term(t) for t in terms))
            order_sql = "f.rank ASC, d.updated_ts DESC, d.id ASC"
            # Side-table filters test the FTS rowid, so a non-matching candidate is dropped before its docs
            # row is read. The unary + keeps SQLite from pushing a rowid constraint into FTS5 (in the join
            # too), which would re-run the MATCH once per rowid: seconds instead of milliseconds.
            rowid_sql = "+f.rid"
        else:
            source = "docs d"
            order_sql = "d.updated_ts DESC, d.id ASC"
            rowid_sql = "d.rowid"

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
        for table, column, values in (
            ("doc_prefs", "pref", query.prefectures),
            ("doc_topics", "topic", query.topics),
        ):
            if values:
                marks = _placeholders(len(values))
                where.append(f"{rowid_sql} IN (SELECT doc FROM {table} WHERE {column} IN ({marks}))")
                params.extend(values)
        where_sql = " AND ".join(where) or "1"

        conn = self._conn()
        base_params = [*source_params, *params]
        # A read transaction: the page, the total and the bodies come from one snapshot even if a write
        # commits meanwhile (WAL readers never block the writer).
        conn.execute("BEGIN")
        try:
            # Sort only the keys; bodies are fetched for the page alone (sorting thousands of JSON bodies
            # cost more than the search itself).
            rowids = [
                r[0]
                for r in conn.execute(
                    f"SELECT d.rowid FROM {source} WHERE {where_sql} ORDER BY {order_sql} LIMIT ? OFFSET ?",
                    [*base_params, query.limit, query.offset],
                )
            ]
            if rowids and len(rowids) < query.limit:
                total = query.offset + len(rowids)  # the last page: no need to count
            else:
                total = conn.execute(f"SELECT count(*) FROM {source} WHERE {where_sql}", base_params).fetchone()[0]
            bodies = dict(
                conn.execute(f"SELECT rowid, body FROM docs WHERE rowid IN ({_placeholders(len(rowids))})", rowids)
            ) if rowids else {}
        finally:
            conn.execute("COMMIT")
        return SearchResult(hits=[json.loads(bodies[r]) for r in rowids], total=total)

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

    @staticmethod
    def _delete_ids(conn: sqlite3.Connection, ids: list[str]) -> None:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            found = conn.execute(
                f"SELECT rowid, body FROM docs WHERE id IN ({_placeholders(len(chunk))})", chunk
            ).fetchall()
            if not found:
                continue
            rowids = [r[0] for r in found]
            # Contentless FTS: a delete must present the exact tokens that were indexed.
            conn.executemany(_DELETE_FTS, _fts_rows(rowids, [json.loads(r[1]) for r in found]))
            marks = _placeholders(len(rowids))
            conn.execute(f"DELETE FROM doc_prefs WHERE doc IN ({marks})", rowids)
            conn.execute(f"DELETE FROM doc_topics WHERE doc IN ({marks})", rowids)
            conn.execute(f"DELETE FROM docs WHERE rowid IN ({marks})", rowids)

    @staticmethod
    def _rebuild_fts(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
        cursor = conn.execute("SELECT rowid, body FROM docs")
        while batch := cursor.fetchmany(5000):
            conn.executemany(_INSERT_FTS, _fts_rows([r[0] for r in batch], [json.loads(r[1]) for r in batch]))

    def _after_bulk_load(self) -> None:
        # After a big load: merge the FTS segments and refresh planner statistics, so that filters and the
        # FTS index are combined in the cheap order.
        with self._write() as conn:
            conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('optimize')")
            conn.execute("PRAGMA analysis_limit=1000")  # sampled statistics: enough for the planner, cheap
            conn.execute("ANALYZE")
