"""The search engine interface and its contract.

A document is a public expert profile (see services/search/engine/__init__.py). The contract every backend
follows (checked by tests/contract/test_search_engine_contract.py):

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

The interface is synchronous: the service calls it from a worker thread.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Any

MAX_LIMIT = 100


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

    def __post_init__(self) -> None:
        # Callers often hold lists (query params); accept them but keep the dataclass hashable and immutable.
        for name in ("prefectures", "topics"):
            value = getattr(self, name)
            if value is None:
                value = ()
            elif isinstance(value, str):
                value = (value,)
            object.__setattr__(self, name, tuple(str(v) for v in value if v is not None and str(v) != ""))

    def bounded(self) -> "SearchQuery":
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


class SearchEngine(abc.ABC):
    """One search backend. Implementations must be safe to call from several threads."""

    name: str = "abstract"

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

    @abc.abstractmethod
    def search(self, query: SearchQuery) -> SearchResult: ...

    @abc.abstractmethod
    def count(self) -> int:
        """Number of documents in the index, active or not."""

    @abc.abstractmethod
    def clear(self) -> None:
        """Remove every document (the index and its settings stay)."""

    @abc.abstractmethod
    def ping(self) -> bool:
        """True when the backend is reachable and usable."""

    def close(self) -> None:
        """Release connections. Optional; the default does nothing."""


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
