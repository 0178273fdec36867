"""The search engine interface and its contract.

A document is a public expert profile (see services/search/engine/__init__.py). The contract every backend
follows (checked by tests/search/test_engine_contract.py):

- filters are ANDed; within ``prefectures`` and within ``topics`` the values are ORed;
- ``q`` is free text matched against name, name_kana, registration_number, topic_labels, skills, services,
  industries, affiliation and bio, after normalisation (NFKC, lowercase, katakana folded to hiragana) on both
  sides; each whitespace-separated term must occur as a substring of one field value (any length, Japanese
  without spaces included); several terms are ANDed (the first 8 distinct terms count, each cut to 64
  characters);
- without ``q``: ordered by updated_at desc, then id; with ``q``: by relevance (a match in the name beats a
  match in the tags, which beats affiliation, which beats bio), then updated_at desc, then id;
- ``total`` counts every match, not just the page; ``limit`` is capped at :data:`MAX_LIMIT`;
- ``upsert`` with an existing id replaces the whole document; ``delete`` of an unknown id is a no-op;
- a missing key is tolerated everywhere; a missing ``active`` counts as active (only ``active: false``
  is hidden by ``active_only``), a missing ``remote``/``onsite`` counts as false.

Issue 12 adds, for every backend alike (planned here, in :meth:`SearchEngine.plan`, so both agree):

- filters on ``regions``, ``skills``, ``roles`` and ``states`` (OR within, AND across, like prefectures);
- ``facets``: value counts of the named facets (spec.FACETS) over every match (all filters applied);
- ``sort``: ``relevance`` (as above), ``newest`` or ``oldest`` (updated_at; a missing one last);
- place words: a term that names a prefecture (tsunagu.reference.place_prefecture: 東京, 東京都, tokyo)
  matches the documents serving that prefecture OR containing the word;
- typo tolerance: a Latin term of 4+ characters that occurs in no document at all matches the documents
  holding a Latin word within 1 edit (2 from 8 characters; a swap of neighbours is 1) of it (rapidfuzz,
  over the index's vocabulary):
  decided on the whole index, never on a page, so recall does not depend on paging;
- ``highlight``: per hit, field -> safe HTML snippet with the matched words in ``<mark>`` (highlight.py);
- :meth:`SearchEngine.suggest`: prefix suggestions for names (also by reading and given name), skills and
  topic labels of active documents, most frequent first.

The interface is synchronous: the service calls it from a worker thread.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from rapidfuzz import process
from rapidfuzz.distance import OSA

from tsunagu import reference

from . import text
from .highlight import highlights
from .spec import EXPERTS, FACETS, SUGGEST_KINDS, IndexSpec, split_suggestion

MAX_LIMIT = 100
SORTS = ("relevance", "newest", "oldest")
MAX_SUGGESTIONS = 20
# A condition: documents having any of these keyword values (OR); a plan ANDs its conditions.
Condition = tuple[tuple[str, tuple[str, ...]], ...]
_TUPLE_FIELDS = ("prefectures", "topics", "regions", "skills", "roles", "states", "facets")


@dataclass(frozen=True)
class SearchQuery:
    q: str = ""
    prefectures: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    kind: str | None = None
    remote: bool | None = None
    onsite: bool | None = None
    active_only: bool = True
    limit: int = 20
    offset: int = 0
    regions: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    facets: tuple[str, ...] = ()
    sort: str = "relevance"
    highlight: bool = False

    def __post_init__(self) -> None:
        # Callers often hold lists (query params); accept them but keep the dataclass hashable and immutable.
        for name in _TUPLE_FIELDS:
            value = getattr(self, name)
            if value is None:
                value = ()
            elif isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(str(v) for v in value if v is not None and str(v) != ""))

    def bounded(self) -> SearchQuery:
        """The same query with limit in [0, MAX_LIMIT] and offset >= 0."""
        limit = max(0, min(int(self.limit), MAX_LIMIT))
        offset = max(0, int(self.offset))
        if limit == self.limit and offset == self.offset:
            return self
        return replace(self, limit=limit, offset=offset)


@dataclass(frozen=True)
class SearchResult:
    hits: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    highlights: list[dict[str, str]] = field(default_factory=list)  # one per hit when asked for


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str  # name | skill | topic
    count: int  # active documents it comes from


@dataclass(frozen=True)
class Plan:
    """A query as every backend runs it: ranked full-text terms, keyword conditions, words to mark."""

    terms: tuple[str, ...] = ()
    conditions: tuple[Condition, ...] = ()
    marks: tuple[str, ...] = ()

    @property
    def impossible(self) -> bool:
        """A condition with no value at all (a typo with no close word): nothing can match."""
        return any(not any(values for _, values in condition) for condition in self.conditions)


class _Cached:
    """A value computed at most every ``ttl`` seconds, and again after a write of this process."""

    def __init__(self, compute: Callable[[], Any], ttl: float = 5.0) -> None:
        self._compute, self._ttl = compute, ttl
        self._value: Any = None
        self._at = -1.0
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._at < 0 or time.monotonic() - self._at > self._ttl:
                self._value = self._compute()
                self._at = time.monotonic()
            return self._value

    def invalidate(self) -> None:
        with self._lock:
            self._at = -1.0


class SearchEngine(abc.ABC):
    """One search backend. Implementations must be safe to call from several threads."""

    name: str = "abstract"
    spec: IndexSpec = EXPERTS

    @abc.abstractmethod
    def setup(self) -> None:
        """Create the index and its settings. Idempotent."""

    @abc.abstractmethod
    def upsert(self, docs: list[dict[str, Any]]) -> None:
        """Insert or fully replace documents (by id). Visible to reads as soon as this returns."""

    @abc.abstractmethod
    def delete(self, ids: list[str]) -> None:
        """Remove documents by id; unknown ids are ignored."""

    @abc.abstractmethod
    def get(self, id: str) -> dict[str, Any] | None:
        """The stored document, or None."""

    def search(self, query: SearchQuery) -> SearchResult:
        query = query.bounded()
        if query.sort not in SORTS:
            raise ValueError(f"unknown sort {query.sort!r}; expected one of {', '.join(SORTS)}")
        unknown = [f for f in query.facets if f not in FACETS]
        if unknown:
            raise ValueError(f"unknown facets {unknown}; expected some of {', '.join(FACETS)}")
        plan = self.plan(query)
        if plan.impossible:
            return SearchResult(facets={f: {} for f in query.facets})
        result = self._search(query, plan)
        if query.highlight:
            fields = self.spec.searched_fields
            result = replace(result, highlights=[highlights(hit, fields, list(plan.marks)) for hit in result.hits])
        return result

    def plan(self, query: SearchQuery) -> Plan:
        """The query's terms split into ranked text terms and keyword conditions (place words, typos),
        plus its filters as conditions (see the module docstring)."""
        terms: list[str] = []
        conditions: list[Condition] = []
        marks: list[str] = []
        for term in text.query_terms(query.q):
            code = reference.place_prefecture(term)
            if code is not None:
                conditions.append((("prefecture", (code,)), ("_mention", (term,))))
                marks.append(term)
            elif text.is_latin_term(term) and not self._term_exists(term):
                variants = self.typo_variants(term)
                conditions.append((("_latin", variants),))
                marks.extend(variants)
            else:
                terms.append(term)
                marks.append(term)
        for facet, values in (
            ("prefecture", query.prefectures),
            ("region", query.regions),
            ("topic", query.topics),
            ("skill", query.skills),
            ("role", query.roles),
            ("state", query.states),
        ):
            if values:
                conditions.append(((facet, tuple(dict.fromkeys(values))),))
        return Plan(tuple(terms), tuple(conditions), tuple(dict.fromkeys(marks)))

    def typo_variants(self, term: str) -> tuple[str, ...]:
        """The vocabulary's Latin words within max_typos(term) edits of the term, closest first. Edits are
        those of the optimal string alignment distance: a swap of two neighbouring letters ("azrue") is one
        edit, as people make it."""
        vocabulary = self._latin_vocabulary()
        found = process.extract(term, vocabulary, scorer=OSA.distance, score_cutoff=text.max_typos(term), limit=20)
        return tuple(word for word, _, _ in sorted(found, key=lambda f: (f[1], f[0])))

    def suggest(self, prefix: str, *, kinds: tuple[str, ...] = SUGGEST_KINDS, limit: int = 10) -> list[Suggestion]:
        """Names, skills and topic labels of active documents whose key starts with the prefix (after
        normalisation), most frequent first, then shortest, then alphabetically."""
        key = " ".join(text.normalize(prefix or "").split())[: text.MAX_TERM_CHARS]
        limit = max(0, min(int(limit), MAX_SUGGESTIONS))
        if not key or limit == 0:
            return []
        best: dict[tuple[str, str], tuple[int, str]] = {}
        for entry, count in self._suggestion_entries(key):
            entry_key, kind, display = split_suggestion(entry)
            if kind not in kinds or not entry_key.startswith(key):
                continue
            held = best.get((kind, display))
            if held is None or held[0] < count:
                best[(kind, display)] = (count, entry_key)
        ranked = sorted(best.items(), key=lambda item: (-item[1][0], len(item[0][1]), item[0][1], item[0][0]))
        return [Suggestion(text=display, kind=kind, count=count) for (kind, display), (count, _) in ranked[:limit]]

    @abc.abstractmethod
    def _search(self, query: SearchQuery, plan: Plan) -> SearchResult:
        """Run a planned, bounded query (sort and facets already checked)."""

    @abc.abstractmethod
    def _term_exists(self, term: str) -> bool:
        """Whether any document at all (active or not) contains the normalised term."""

    @abc.abstractmethod
    def _latin_vocabulary(self) -> list[str]:
        """Every ``_latin`` keyword of the index."""

    @abc.abstractmethod
    def _suggestion_entries(self, key: str) -> list[tuple[str, int]]:
        """(``_sugg`` keyword, number of active documents) for the keywords starting with the key."""

    @abc.abstractmethod
    def ids(self) -> set[str]:
        """The id of every document in the index, active or not (the reindex check compares them)."""

    @abc.abstractmethod
    def count(self) -> int:
        """Number of documents in the index, active or not."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every document (the index and its settings stay)."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the backend is reachable and usable."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections (the engine is not used afterwards)."""


def validate_docs(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Check ids and drop duplicates within one batch (the last occurrence wins, as if applied in order)."""
    by_id: dict[str, dict[str, Any]] = {}
    for doc in docs:
        if not isinstance(doc, dict):
            raise ValueError(f"a search document must be a dict, got {type(doc).__name__}")
        doc_id = doc.get("id")
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise ValueError("a search document needs a non-empty string id")
        by_id.pop(doc_id, None)  # re-insert so the batch order follows the last occurrence
        by_id[doc_id] = doc
    return list(by_id.values())
