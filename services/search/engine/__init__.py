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

from .base import MAX_LIMIT, SearchEngine, SearchQuery, SearchResult

__all__ = ["MAX_LIMIT", "SearchEngine", "SearchQuery", "SearchResult", "make_engine", "BACKENDS"]

BACKENDS = ("embedded", "meilisearch")


def make_engine(
    backend: str = "embedded",
    *,
    data_dir: Path | str,
    meili_url: str | None = None,
    meili_key: str | None = None,
    meili_index: str = "experts",
) -> SearchEngine:
    """Build the configured engine (not yet set up: call ``setup()``)."""
    backend = (backend or "embedded").strip().lower()
    if backend == "embedded":
        from .embedded import EmbeddedSearchEngine

        # Not "search.sqlite3": that file is the search service's own database (tsunagu.settings).
        return EmbeddedSearchEngine(Path(data_dir) / "search-index.sqlite3")
    if backend == "meilisearch":
        if not meili_url:
            raise ValueError("the meilisearch search backend needs a URL (set MEILI_URL)")
        from .meili import MeilisearchEngine

        return MeilisearchEngine(meili_url, meili_key or None, index=meili_index)
    raise ValueError(f"unknown search backend {backend!r}; expected one of {', '.join(BACKENDS)}")
