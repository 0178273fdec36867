"""The embedded engine's filter and facet columns in memory: numpy instead of SQL joins and GROUP BYs.

Why: at 30,000 experts a query that matched thousands of them spent most of its time in SQL that is not
search: counting facets with one GROUP BY over ``doc_values`` (each match has ~13 keyword rows) cost 50-150
ms, and joining every full-text match to its ``docs`` row to filter and order it cost a third of a text query.
Here, loaded once:

- per rowid, the document's filter and order columns (active, kind, remote, on-site, updated_at, id);
- per keyword field (the facets, place words ``_mention``, Latin words ``_latin``), two parallel arrays: the
  document's rowid and the value's code.

A text query then asks SQLite only for the full-text matches and their bm25 ranks; filters are boolean masks,
the order one ``np.lexsort``, the facet counts one ``np.bincount`` per field (a few ms in all, whatever the
number of matches).

How it stays in step with the index without re-reading it (embedded.py does the bookkeeping):

- every write transaction of the engine raises a *generation* number stored in the index (``meta``);
- the writer applies its own change (the documents and keyword rows it inserted, the number it removed) to
  this memory right after COMMIT, still holding the lock readers take to use the memory, and moves the
  memory to the new generation;
- a reader reads the generation of its own read snapshot first. A memory older than the snapshot (another
  process wrote the file, or nothing is loaded yet) is reloaded inside that snapshot. A memory newer than
  the snapshot still answers for it exactly: rowids are never reused (``meta.last_rowid``) and a document's
  columns never change under its rowid (a replacement is a new rowid), so memory only ever appends, and the
  rowids a reader asks about always come from its own snapshot (full-text matches, or ``docs``). The rows of
  removed documents are dead weight, never wrong answers; only a reload drops them (when they outnumber the
  live ones), and a reader whose snapshot is older than the last reload is answered by SQL instead.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

_INITIAL = 1024
# Keyword fields kept besides the facets: what the planner's conditions filter on.
CONDITION_FIELDS = ("_mention", "_latin")
# A document's columns, in the order of the docs table: rowid, id, kind, remote, onsite, active, updated_ts.
DocRow = tuple[int, str, Any, int, int, int, Any]


def _grown(array: np.ndarray, size: int, fill: Any = 0) -> np.ndarray:
    if size <= len(array):
        return array
    out = np.full(max(size, 2 * len(array)), fill, dtype=array.dtype)
    out[: len(array)] = array
    return out


class _Column:
    """One keyword field: (rowid, value code) pairs, appended, grown by doubling."""

    __slots__ = ("codes", "docs", "n", "vals", "values")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []
        self.docs = np.empty(_INITIAL, dtype=np.int64)
        self.vals = np.empty(_INITIAL, dtype=np.int32)
        self.n = 0

    def extend(self, docs: Sequence[int], values: Sequence[str]) -> None:
        codes = self.codes
        out = []
        for value in values:
            code = codes.get(value)
            if code is None:
                code = codes[value] = len(self.values)
                self.values.append(value)
            out.append(code)
        end = self.n + len(docs)
        self.docs = _grown(self.docs, end)
        self.vals = _grown(self.vals, end)
        self.docs[self.n : end] = docs
        self.vals[self.n : end] = out
        self.n = end

    def counts(self, mask: np.ndarray) -> dict[str, int]:
        hit = mask[self.docs[: self.n]]
        counted = np.bincount(self.vals[: self.n][hit], minlength=len(self.values))
        return {self.values[i]: int(counted[i]) for i in np.flatnonzero(counted).tolist()}

    def having(self, values: Iterable[str], mask: np.ndarray) -> None:
        """Set ``mask`` at the rowids of the documents having any of the values."""
        codes = [self.codes[v] for v in values if v in self.codes]
        if codes:
            pick = np.isin(self.vals[: self.n], codes)
            mask[self.docs[: self.n][pick]] = True


class IndexMemory:
    """The filter and keyword columns of one index at one generation (see the module docstring)."""

    def __init__(self, fields: Iterable[str], generation: int) -> None:
        self.columns = {field: _Column() for field in fields}
        self.generation = generation  # the index generation this memory reflects
        self.loaded_generation = generation  # the generation of the last full load (dead rows dropped then)
        self.size = 1  # rowids below this have their columns here (rowid 0 is never used)
        self.alive = np.zeros(_INITIAL, dtype=bool)  # in the index at ``generation`` (browsing needs it)
        self.active = np.zeros(_INITIAL, dtype=bool)
        self.remote = np.zeros(_INITIAL, dtype=bool)
        self.onsite = np.zeros(_INITIAL, dtype=bool)
        self.kind = np.full(_INITIAL, -1, dtype=np.int32)
        self.updated = np.full(_INITIAL, np.nan, dtype=np.float64)
        self.ids: list[str | None] = [None]
        self.kinds: dict[str, int] = {}
        self.live_docs = 0
        self.dead_docs = 0

    @classmethod
    def load(cls, conn: sqlite3.Connection, fields: Iterable[str], generation: int) -> IndexMemory:
        """Read every document's columns and keywords (call inside the read snapshot of ``generation``)."""
        memory = cls(fields, generation)
        memory.add_docs(conn.execute("SELECT rowid, id, kind, remote, onsite, active, updated_ts FROM docs").fetchall())
        for field, column in memory.columns.items():
            rows = conn.execute("SELECT doc, value FROM doc_values WHERE field = ?", (field,)).fetchall()
            if rows:
                docs, values = zip(*rows, strict=True)
                column.extend(docs, values)
        return memory

    # -- following the writer ---------------------------------------------------------------------------------

    def add_docs(self, rows: Sequence[DocRow]) -> None:
        """Append the columns of newly inserted documents (rowids above every one held)."""
        if not rows:
            return
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        end = int(rowids.max()) + 1
        for name, fill in (
            ("alive", False),
            ("active", False),
            ("remote", False),
            ("onsite", False),
            ("kind", -1),
            ("updated", np.nan),
        ):
            setattr(self, name, _grown(getattr(self, name), end, fill))
        self.alive[rowids] = True
        self.active[rowids] = [bool(r[5]) for r in rows]
        self.remote[rowids] = [bool(r[3]) for r in rows]
        self.onsite[rowids] = [bool(r[4]) for r in rows]
        self.kind[rowids] = [self._kind_code(r[2]) for r in rows]
        self.updated[rowids] = [np.nan if r[6] is None else r[6] for r in rows]
        if end > len(self.ids):
            self.ids.extend([None] * (end - len(self.ids)))
        for r in rows:
            self.ids[r[0]] = r[1]
        self.size = max(self.size, end)
        self.live_docs += len(rows)

    def add_keywords(self, rows: Iterable[tuple[str, str, int]]) -> None:
        """Append the keyword rows (field, value, rowid) of newly inserted documents."""
        by_field: dict[str, tuple[list[int], list[str]]] = {}
        for field, value, doc in rows:
            if field in self.columns:
                docs, values = by_field.setdefault(field, ([], []))
                docs.append(doc)
                values.append(value)
        for field, (docs, values) in by_field.items():
            self.columns[field].extend(docs, values)

    def removed(self, rowids: Sequence[int]) -> None:
        """Documents were removed: their rows stay, never asked about, until the next reload."""
        self.alive[np.asarray(rowids, dtype=np.int64)] = False
        self.live_docs -= len(rowids)
        self.dead_docs += len(rowids)

    def clear(self) -> None:
        """Every document was removed."""
        fresh = IndexMemory(self.columns, self.generation)
        self.__dict__.update(fresh.__dict__)

    @property
    def wants_compaction(self) -> bool:
        return self.dead_docs > max(1000, self.live_docs)

    def _kind_code(self, kind: Any) -> int:
        if kind is None:
            return -1
        return self.kinds.setdefault(kind, len(self.kinds))

    # -- answering --------------------------------------------------------------------------------------------

    def mask(self, rowids: np.ndarray | None = None) -> np.ndarray:
        """A boolean array over every rowid held (and any of ``rowids``), all False."""
        size = self.size if rowids is None or not len(rowids) else max(self.size, int(rowids.max()) + 1)
        return np.zeros(size, dtype=bool)

    def keep(
        self,
        rowids: np.ndarray,
        *,
        active_only: bool,
        kind: str | None,
        remote: bool | None,
        onsite: bool | None,
        conditions: Iterable[Iterable[tuple[str, Iterable[str]]]],
    ) -> np.ndarray:
        """Which of the rowids pass the query's filters (a boolean array beside them). A condition ORs its
        (field, values) and the conditions are ANDed, as in SQL."""
        keep = np.ones(len(rowids), dtype=bool)
        if active_only:
            keep &= self.active[rowids]
        if kind is not None:
            keep &= self.kind[rowids] == self.kinds.get(kind, -2)
        if remote is not None:
            keep &= self.remote[rowids] == remote
        if onsite is not None:
            keep &= self.onsite[rowids] == onsite
        for condition in conditions:
            having = self.mask(rowids)
            for field, values in condition:
                self.columns[field].having(values, having)
            keep &= having[rowids]
        return keep

    def order(self, rowids: np.ndarray, ranks: np.ndarray | None, sort: str, start: int, stop: int) -> list[int]:
        """The rowids from position ``start`` to ``stop`` in the query's order: rank ascending (when ranked),
        then updated_at (newest first, or oldest first for ``oldest``; a missing one last), then id."""
        if not len(rowids) or start >= stop:
            return []
        updated = self.updated[rowids]
        when = np.where(np.isnan(updated), np.inf, updated if sort == "oldest" else -updated)
        primary = ranks if ranks is not None and sort == "relevance" else np.zeros(len(rowids))
        order = np.lexsort((when, primary))
        p, w = primary[order], when[order]
        # Ties of (rank, updated_at) are broken by id, in Python, only for the tie groups the page touches.
        cuts = np.flatnonzero((p[1:] != p[:-1]) | (w[1:] != w[:-1])) + 1
        stop = min(stop, len(order))
        if start >= stop:
            return []
        lo = int(cuts[np.searchsorted(cuts, start, side="right") - 1]) if len(cuts) and cuts[0] <= start else 0
        at = np.searchsorted(cuts, stop, side="left")
        hi = int(cuts[at]) if at < len(cuts) else len(order)
        window = [int(r) for r in rowids[order[lo:hi]]]
        keys = {int(r): (float(a), float(b)) for r, a, b in zip(rowids[order[lo:hi]], p[lo:hi], w[lo:hi], strict=True)}
        ids = self.ids
        window.sort(key=lambda r: (*keys[r], ids[r]))
        return window[start - lo : stop - lo]

    def live(self) -> np.ndarray:
        """The rowids of the documents in the index at this memory's generation (for browsing)."""
        return np.flatnonzero(self.alive[: self.size]).astype(np.int64)

    def counts(self, fields: Iterable[str], rowids: np.ndarray) -> dict[str, dict[str, int]]:
        """Value counts of each field over the rowids."""
        mask = self.mask(rowids)
        mask[rowids] = True
        return {field: self.columns[field].counts(mask) for field in fields}
