"""Search engines of the search service, behind one interface (:class:`SearchEngine`).

Documents are PUBLIC expert profiles (already reduced to public fields by the profiles service)::

    {"id": str, "kind": "sekisupe" | "dx_talent", "name": str, "name_kana": str | None,
     "registration_number": str | None, "affiliation": str | None, "bio": str | None,
     "prefectures": [JIS code "01".."47"], "onsite": bool, "remote": bool, "topics": [topic id],
     "topic_labels": [str], "skills": [str], "industries": [str], "services": [str], "dss_roles": [str],
     "active": bool, "updated_at": ISO-8601 str}

Every key but id may be missing or null. Backends:

- ``embedded`` (default): SQLite FTS5 in ``data_dir/search-index.sqlite3``, no server.
- ``meilisearch``: a Meilisearch server (production).
"""

from __future__ import annotations

from pathlib import Path

from .base import MAX_LIMIT, SORTS, SearchEngine, SearchQuery, SearchResult, Suggestion
from .embedded import MATCH_CACHE_SIZE, EmbeddedSearchEngine
from .meili import MeilisearchEngine
from .spec import EXPERTS, FACETS, PROJECTS, REQUESTS, SPECS, SUGGEST_KINDS, IndexSpec

__all__ = [
    "BACKENDS",
    "EXPERTS",
    "FACETS",
    "INDEXES",
    "MAX_LIMIT",
    "PROJECTS",
    "REQUESTS",
    "SORTS",
    "SUGGEST_KINDS",
    "IndexSpec",
    "SearchEngine",
    "SearchQuery",
    "SearchResult",
    "Suggestion",
    "make_engine",
]

BACKENDS = ("embedded", "meilisearch")
INDEXES = tuple(SPECS)  # experts, requests, projects


def make_engine(
    backend: str = "embedded",
    *,
    data_dir: Path | str,
    meili_url: str | None = None,
    meili_key: str | None = None,
    meili_index: str | None = None,
    index: str = "experts",
    match_cache_size: int = MATCH_CACHE_SIZE,
) -> SearchEngine:
    """Build the configured engine of one index (experts, requests or projects; not yet set up: call
    ``setup()``). ``meili_index``: the Meilisearch index uid (default: the index's name).
    ``match_cache_size``: how many unfiltered queries' full-text matches the embedded engine keeps;
    0 keeps none, as the engine benchmark measures."""
    backend = (backend or "embedded").strip().lower()
    spec = SPECS.get(index)
    if spec is None:
        raise ValueError(f"unknown search index {index!r}; expected one of {', '.join(SPECS)}")
    if backend == "embedded":
        # Not "search.sqlite3": that file is the search service's own database (tsunagu.settings).
        name = "search-index.sqlite3" if index == "experts" else f"search-index-{index}.sqlite3"
        return EmbeddedSearchEngine(Path(data_dir) / name, spec, match_cache_size=match_cache_size)
    if backend == "meilisearch":
        if not meili_url:
            raise ValueError("the meilisearch search backend needs a URL (set MEILI_URL)")
        return MeilisearchEngine(meili_url, meili_key or None, index=meili_index or index, spec=spec)
    raise ValueError(f"unknown search backend {backend!r}; expected one of {', '.join(BACKENDS)}")
