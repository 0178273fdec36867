"""Meilisearch engine (production), with the same contract as the embedded engine.

Meilisearch matches whole words and segments Japanese with its own dictionary, so a substring such as "サム"
in "ランサムウェア" or "幌市" in "札幌市" would not be found, and its typo tolerance would find words that were
not typed. To keep the contract (substring semantics after our normalisation), each document carries extra
fields with the same bigram token stream as the embedded engine (text.bigram_streams), every character
spelled as 4 ASCII letters so that Meilisearch's tokenizer keeps each bigram as one plain word:

- ``idx_name``, ``idx_tags``, ``idx_org``, ``idx_bio``: the token streams, the only searchable attributes, in
  that priority order (the "attribute" ranking rule then ranks name matches first);
- a query term of 2+ characters is sent as a quoted phrase of its encoded bigrams (consecutive words:
  exactly the texts containing the term); typo tolerance is off;
- a 1-character term is a filter on ``idx_chars`` (the distinct characters of the document's text), because
  Meilisearch only prefix-matches the last word of a query;
- ``idx_updated``: updated_at as epoch seconds, for sorting (strings with different offsets do not sort).

Those ``idx_*`` fields are removed from every document handed back. Writes wait for their task, so a read
after upsert/delete sees the change (the contract tests rely on it).
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import meilisearch
from meilisearch.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchError,
)

from . import text
from .base import SearchEngine, SearchQuery, SearchResult, validate_docs

_IDX = "idx_"
_SEARCHABLE = [f"{_IDX}{group}" for group in text.FIELD_GROUPS]  # idx_name, idx_tags, idx_org, idx_bio
_FILTERABLE = ["prefectures", "topics", "kind", "remote", "onsite", "active", "id", f"{_IDX}chars"]
_SORTABLE = [f"{_IDX}updated", "updated_at", "id"]
# Relevance first, then our sort (updated_at desc, id); typo is a no-op with typo tolerance off.
_RANKING = ["words", "typo", "proximity", "attribute", "exactness", "sort"]
_SORT = [f"{_IDX}updated:desc", "id:asc"]
# Documents per add request: keeps requests well under Meilisearch's default 100 MB payload limit.
_BATCH = 1000
# Meilisearch's own id rule: letters, digits, hyphens and underscores, at most 511 bytes.
_VALID_ID = re.compile(r"^[A-Za-z0-9_-]{1,511}$")
# Exact totals need page/hitsPerPage pagination, which counts up to maxTotalHits.
_MAX_TOTAL_HITS = 200_000


def _quote(value: str) -> str:
    """A filter string literal: double-quoted, with backslashes and quotes escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _in_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(_quote(v) for v in values) + "]"


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if not k.startswith(_IDX)}


class MeilisearchEngine(SearchEngine):
    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        index: str = "experts",
        *,
        timeout_s: int = 30,
        task_timeout_ms: int = 120_000,
    ) -> None:
        self.url = url
        self.index_uid = index
        self._api_key = api_key or None
        self._timeout_s = timeout_s
        self._task_timeout_ms = task_timeout_ms
        self._local = threading.local()

    # The client keeps per-request state (the Content-Type header) on shared objects, so concurrent calls
    # from several threads could send a POST without its Content-Type: each thread gets its own client.
    @property
    def _client(self) -> meilisearch.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = meilisearch.Client(self.url, self._api_key, timeout=self._timeout_s)
        return client

    @property
    def _index(self) -> Any:
        index = getattr(self._local, "index", None)
        if index is None:
            index = self._local.index = self._client.index(self.index_uid)
        return index

    # -- tasks ---------------------------------------------------------------------------------------------

    def _wait(self, task_info: Any, *, ok_codes: tuple[str, ...] = ()) -> None:
        """Wait for a task; raise if it failed (unless its error code is one of ok_codes)."""
        task = self._client.wait_for_task(
            task_info.task_uid, timeout_in_ms=self._task_timeout_ms, interval_in_ms=25
        )
        if task.status != "succeeded":
            error = task.error or {}
            if error.get("code") in ok_codes:
                return
            raise MeilisearchError(f"Meilisearch task {task.uid} ({task.type}) {task.status}: {error}")

    # -- SearchEngine --------------------------------------------------------------------------------------

    def setup(self) -> None:
        self._wait(
            self._client.create_index(self.index_uid, {"primaryKey": "id"}), ok_codes=("index_already_exists",)
        )
        self._wait(
            self._index.update_settings(
                {
                    "searchableAttributes": _SEARCHABLE,
                    "filterableAttributes": _FILTERABLE,
                    "sortableAttributes": _SORTABLE,
                    "rankingRules": _RANKING,
                    "typoTolerance": {"enabled": False},
                    "pagination": {"maxTotalHits": _MAX_TOTAL_HITS},
                    "stopWords": [],
                    "synonyms": {},
                }
            )
        )

    def ping(self) -> bool:
        try:
            return bool(self._client.is_healthy())
        except MeilisearchError:
            return False

    def count(self) -> int:
        return int(self._index.get_stats().number_of_documents)

    def get(self, id: str) -> dict[str, Any] | None:
        if not isinstance(id, str) or not _VALID_ID.match(id):
            return None  # cannot exist: upsert refuses such ids
        try:
            document = self._index.get_document(id)
        except MeilisearchApiError as exc:
            if exc.code == "document_not_found":
                return None
            raise
        return _public(dict(document))

    def clear(self) -> None:
        self._wait(self._index.delete_all_documents())

    def delete(self, ids: list[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if isinstance(i, str) and _VALID_ID.match(i)]
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            # Deleting by filter (the by-id list form is deprecated in the client); unknown ids match nothing.
            self._wait(self._index.delete_documents(filter=f"id IN {_in_list(tuple(chunk))}"))

    def upsert(self, docs: list[dict[str, Any]]) -> None:
        # Store (and index) the JSON form, as the embedded engine does: tuples become lists, dates strings.
        docs = [json.loads(json.dumps(doc, default=str)) for doc in validate_docs(docs)]
        for doc in docs:
            if not _VALID_ID.match(doc["id"]):
                raise ValueError(f"Meilisearch ids are letters, digits, - and _ only: {doc['id']!r}")
        for start in range(0, len(docs), _BATCH):
            batch = self._with_index_fields(docs[start : start + _BATCH])
            # add_documents replaces a stored document with the same id entirely (no partial update).
            self._wait(self._index.add_documents(batch, primary_key="id"))

    def search(self, query: SearchQuery) -> SearchResult:
        query = query.bounded()
        terms = text.query_terms(query.q)
        phrases = [
            '"' + " ".join(text.encode_chars(b) for b in text.term_bigrams(t)) + '"' for t in terms if len(t) > 1
        ]
        filters = [f"{_IDX}chars = {_quote(text.encode_char(t))}" for t in terms if len(t) == 1]
        if query.active_only:
            filters.append("active != false")  # a missing flag counts as active
        if query.kind is not None:
            filters.append(f"kind = {_quote(query.kind)}")
        for flag in ("remote", "onsite"):
            value = getattr(query, flag)
            if value is True:
                filters.append(f"{flag} = true")
            elif value is False:
                filters.append(f"{flag} != true")  # a missing flag counts as false
        if query.prefectures:
            filters.append(f"prefectures IN {_in_list(query.prefectures)}")
        if query.topics:
            filters.append(f"topics IN {_in_list(query.topics)}")

        # page/hitsPerPage gives an exhaustive totalHits (offset/limit only estimates it). An offset that is
        # not a multiple of the limit is served from a first page that covers it.
        limit, offset = query.limit, query.offset
        if limit > 0 and offset % limit == 0:
            page, per_page, skip = offset // limit + 1, limit, 0
        else:
            page, per_page, skip = 1, max(offset + limit, 1), offset
        params: dict[str, Any] = {
            "sort": _SORT,
            "page": page,
            "hitsPerPage": per_page,
            "matchingStrategy": "all",  # every term must match (terms are ANDed)
        }
        if filters:
            params["filter"] = filters  # a list of expressions is ANDed
        result = self._index.search(" ".join(phrases), params)
        hits = [_public(h) for h in result.get("hits", [])][skip : skip + limit]
        return SearchResult(hits=hits, total=int(result.get("totalHits", 0)))

    # -- extras ------------------------------------------------------------------------------------------

    def drop_index(self) -> None:
        """Delete the whole index (tests and benchmarks use throw-away indexes)."""
        self._wait(self._client.delete_index(self.index_uid), ok_codes=("index_not_found",))

    def _with_index_fields(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = text.doc_texts(docs)
        streams = text.bigram_streams([t for group in texts for t in group], encoded=True)
        g = len(text.FIELD_GROUPS)
        out = []
        for i, doc in enumerate(docs):
            # Our own fields win over any incoming idx_* key: the stored copy must stay searchable.
            extra: dict[str, Any] = dict(zip(_SEARCHABLE, streams[i * g : (i + 1) * g]))
            chars = set("".join(texts[i]))
            chars.discard(" ")
            extra[f"{_IDX}chars"] = sorted(text.encode_char(c) for c in chars)
            ts = text.updated_timestamp(doc.get("updated_at"))
            if ts is not None:  # absent rather than null: missing sort values go last
                extra[f"{_IDX}updated"] = ts
            out.append({**_public(doc), **extra})
        return out


__all__ = ["MeilisearchEngine", "MeilisearchCommunicationError"]
