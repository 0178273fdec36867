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

Issue 12: the keywords of spec.keywords (facets, place words, the Latin vocabulary, suggestions) are
``kw_<name>`` arrays, all filterable: a plan's conditions become ``(kw_a IN [...] OR kw_b IN [...])``
filters, facet counts come from ``facetDistribution``, and the vocabulary and the suggestions from the
facet distribution of ``kw_latin`` / ``kw_sugg`` (read at most every 5 seconds, and after each write of
this process). Typo tolerance stays off in Meilisearch itself: it would fuzz our bigram words; the typo
rule is the engine-neutral one of base.SearchEngine.plan (rapidfuzz over the vocabulary). The settings are
declared in code and applied by setup() before any document arrives; ``localizedAttributes`` marks the
Japanese display fields as ``jpn``. A failed or timed-out task is retried (tenacity, with back-off) and each
failure is logged and counted (``failed_tasks``).
"""

from __future__ import annotations

import bisect
import json
import logging
import re
import threading
from typing import Any

import meilisearch
from meilisearch.errors import (
    MeilisearchApiError,
    MeilisearchCommunicationError,
    MeilisearchError,
    MeilisearchTimeoutError,
)
from tenacity import Retrying, before_sleep_log, retry_if_exception_type, stop_after_attempt, wait_exponential

from . import spec as specs
from . import text
from .base import Plan, SearchEngine, SearchQuery, SearchResult, _Cached, validate_docs

log = logging.getLogger(__name__)

_IDX = "idx_"
_KW = "kw_"
_SEARCHABLE = [f"{_IDX}{group}" for group in text.FIELD_GROUPS]  # idx_name, idx_tags, idx_org, idx_bio
_KEYWORDS = [*specs.FACETS, "_mention", "_latin", "_sugg"]
_FILTERABLE = [
    "prefectures",
    "topics",
    "kind",
    "remote",
    "onsite",
    "active",
    "id",
    f"{_IDX}chars",
    *(f"{_KW}{k.lstrip('_')}" for k in _KEYWORDS),
]
_SORTABLE = [f"{_IDX}updated", "updated_at", "id"]
# Every hit matches every term (matchingStrategy "all"), so "words" ties them all; then the sort parameter
# when the caller asked for newest/oldest (without one, Meilisearch skips the rule), then relevance, then
# the custom rule: newest first among equals. Typo is a no-op with typo tolerance off.
_RANKING = ["words", "sort", "typo", "proximity", "attribute", "exactness", f"{_IDX}updated:desc"]
_SORTS = {
    "newest": [f"{_IDX}updated:desc", "id:asc"],
    "oldest": [f"{_IDX}updated:asc", "id:asc"],  # documents without the field come last either way
}
# Japanese display fields (not searched themselves: the idx_* streams are), declared as such.
_JAPANESE_FIELDS = sorted({f for s in specs.SPECS.values() for f in s.searched_fields})
# Values per facet in a distribution: every vocabulary word and suggestion must come back.
_MAX_FACET_VALUES = 100_000
_TASK_ATTEMPTS = 4
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
    return {k: v for k, v in doc.items() if not k.startswith((_IDX, _KW))}


def _kw(field: str) -> str:
    return _KW + field.lstrip("_")


class MeilisearchTaskError(MeilisearchError):
    """A task that did not succeed (retried before it is raised)."""


class MeilisearchEngine(SearchEngine):
    name = "meilisearch"

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        index: str = "experts",
        *,
        spec: specs.IndexSpec = specs.EXPERTS,
        timeout_s: int = 30,
        task_timeout_ms: int = 120_000,
    ) -> None:
        self.url = url
        self.index_uid = index
        self.spec = spec
        self.failed_tasks = 0  # failed or timed-out tasks, retried or not (reported by logs and here)
        self._vocabulary = _Cached(lambda: list(self._distribution("_latin")))
        self._suggestions = _Cached(lambda: sorted(self._distribution("_sugg", active_only=True).items()))
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

    def close(self) -> None:
        """Nothing to release: the client opens no connection that outlives a call."""

    # -- tasks ---------------------------------------------------------------------------------------------

    def _wait(self, task_info: Any, *, ok_codes: tuple[str, ...] = ()) -> None:
        """Wait for a task; raise if it failed (unless its error code is one of ok_codes)."""
        try:
            task = self._client.wait_for_task(
                task_info.task_uid, timeout_in_ms=self._task_timeout_ms, interval_in_ms=25
            )
        except MeilisearchTimeoutError:
            self.failed_tasks += 1
            raise
        if task.status != "succeeded":
            error = task.error or {}
            if error.get("code") in ok_codes:
                return
            self.failed_tasks += 1
            log.warning("meilisearch task failed", extra={"task": task.uid, "type": task.type, "error": error})
            raise MeilisearchTaskError(f"Meilisearch task {task.uid} ({task.type}) {task.status}: {error}")

    def _run(self, submit: Any, *, ok_codes: tuple[str, ...] = ()) -> None:
        """Submit a task and wait for it, again with back-off when it fails or Meilisearch cannot be reached
        (every write is idempotent: a replace, a delete or a settings update)."""
        for attempt in Retrying(
            retry=retry_if_exception_type(
                (MeilisearchTaskError, MeilisearchCommunicationError, MeilisearchTimeoutError)
            ),
            stop=stop_after_attempt(_TASK_ATTEMPTS),
            wait=wait_exponential(multiplier=0.2, max=5),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt:
                self._wait(submit(), ok_codes=ok_codes)
        self._vocabulary.invalidate()
        self._suggestions.invalidate()

    # -- SearchEngine --------------------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        """The index settings, declared here and applied by setup() before any document arrives."""
        return {
            "searchableAttributes": _SEARCHABLE,
            "filterableAttributes": _FILTERABLE,
            "sortableAttributes": _SORTABLE,
            "rankingRules": _RANKING,
            "typoTolerance": {"enabled": False},
            "pagination": {"maxTotalHits": _MAX_TOTAL_HITS},
            "faceting": {"maxValuesPerFacet": _MAX_FACET_VALUES},
            "localizedAttributes": [{"attributePatterns": _JAPANESE_FIELDS, "locales": ["jpn"]}],
            "stopWords": [],
            "synonyms": {},
        }

    def setup(self) -> None:
        self._run(
            lambda: self._client.create_index(self.index_uid, {"primaryKey": "id"}), ok_codes=("index_already_exists",)
        )
        self._run(lambda: self._index.update_settings(self.settings()))

    def ping(self) -> bool:
        try:
            return bool(self._client.is_healthy())
        except MeilisearchError:
            return False

    def count(self) -> int:
        return int(self._index.get_stats().number_of_documents)

    def ids(self) -> set[str]:
        found: set[str] = set()
        offset = 0
        while True:
            page = self._index.get_documents({"fields": ["id"], "limit": _BATCH, "offset": offset})
            found.update(str(dict(document)["id"]) for document in page.results)
            offset += _BATCH
            if offset >= page.total:
                return found

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
        self._run(self._index.delete_all_documents)

    def delete(self, ids: list[str]) -> None:
        ids = [i for i in dict.fromkeys(ids) if isinstance(i, str) and _VALID_ID.match(i)]
        for start in range(0, len(ids), _BATCH):
            chunk = ids[start : start + _BATCH]
            # Deleting by filter (the by-id list form is deprecated in the client); unknown ids match nothing.
            self._run(lambda chunk=chunk: self._index.delete_documents(filter=f"id IN {_in_list(tuple(chunk))}"))

    def upsert(self, docs: list[dict[str, Any]]) -> None:
        # Store (and index) the JSON form, as the embedded engine does: tuples become lists, dates strings.
        docs = [json.loads(json.dumps(doc, default=str)) for doc in validate_docs(docs)]
        for doc in docs:
            if not _VALID_ID.match(doc["id"]):
                raise ValueError(f"Meilisearch ids are letters, digits, - and _ only: {doc['id']!r}")
        for start in range(0, len(docs), _BATCH):
            batch = self._with_index_fields(docs[start : start + _BATCH])
            # add_documents replaces a stored document with the same id entirely (no partial update).
            self._run(lambda batch=batch: self._index.add_documents(batch, primary_key="id"))

    def _search(self, query: SearchQuery, plan: Plan) -> SearchResult:
        phrases = [
            '"' + " ".join(text.encode_chars(b) for b in text.term_bigrams(t)) + '"' for t in plan.terms if len(t) > 1
        ]
        filters = [f"{_IDX}chars = {_quote(text.encode_char(t))}" for t in plan.terms if len(t) == 1]
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
        for condition in plan.conditions:
            parts = [f"{_kw(field)} IN {_in_list(values)}" for field, values in condition if values]
            filters.append("(" + " OR ".join(parts) + ")")

        # page/hitsPerPage gives an exhaustive totalHits (offset/limit only estimates it). An offset that is
        # not a multiple of the limit is served from a first page that covers it.
        limit, offset = query.limit, query.offset
        if limit > 0 and offset % limit == 0:
            page, per_page, skip = offset // limit + 1, limit, 0
        else:
            page, per_page, skip = 1, max(offset + limit, 1), offset
        params: dict[str, Any] = {
            "page": page,
            "hitsPerPage": per_page,
            "matchingStrategy": "all",  # every term must match (terms are ANDed)
        }
        if query.sort != "relevance" or not phrases:
            params["sort"] = _SORTS["oldest" if query.sort == "oldest" else "newest"]
        if filters:
            params["filter"] = filters  # a list of expressions is ANDed
        if query.facets:
            params["facets"] = [_kw(f) for f in query.facets]
        result = self._index.search(" ".join(phrases), params)
        hits = [_public(h) for h in result.get("hits", [])][skip : skip + limit]
        distribution = result.get("facetDistribution") or {}
        facets = {
            f: dict(sorted((distribution.get(_kw(f)) or {}).items(), key=lambda kv: (-kv[1], kv[0])))
            for f in query.facets
        }
        return SearchResult(hits=hits, total=int(result.get("totalHits", 0)), facets=facets)

    def _term_exists(self, term: str) -> bool:
        if len(term) == 1:
            params: dict[str, Any] = {"filter": f"{_IDX}chars = {_quote(text.encode_char(term))}", "limit": 1}
            return bool(self._index.search("", params).get("hits"))
        phrase = '"' + " ".join(text.encode_chars(b) for b in text.term_bigrams(term)) + '"'
        return bool(self._index.search(phrase, {"limit": 1, "matchingStrategy": "all"}).get("hits"))

    def _distribution(self, keyword: str, *, active_only: bool = False) -> dict[str, int]:
        params: dict[str, Any] = {"limit": 0, "facets": [_kw(keyword)]}
        if active_only:
            params["filter"] = "active != false"
        return dict((self._index.search("", params).get("facetDistribution") or {}).get(_kw(keyword)) or {})

    def _latin_vocabulary(self) -> list[str]:
        return self._vocabulary.get()

    def _suggestion_entries(self, key: str) -> list[tuple[str, int]]:
        entries: list[tuple[str, int]] = self._suggestions.get()
        low, high = specs.suggestion_range(key)
        i = bisect.bisect_left(entries, (low, -1))
        out = []
        while i < len(entries) and entries[i][0] < high:
            out.append(entries[i])
            i += 1
        return sorted(out, key=lambda e: -e[1])[:400]

    # -- extras ------------------------------------------------------------------------------------------

    def drop_index(self) -> None:
        """Delete the whole index (tests and benchmarks use throw-away indexes)."""
        self._run(lambda: self._client.delete_index(self.index_uid), ok_codes=("index_not_found",))

    def _with_index_fields(self, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = text.doc_texts(docs, self.spec.field_groups)
        streams = text.bigram_streams([t for group in texts for t in group], encoded=True)
        g = len(text.FIELD_GROUPS)
        out = []
        for i, doc in enumerate(docs):
            # Our own fields win over any incoming idx_*/kw_* key: the stored copy must stay searchable.
            extra: dict[str, Any] = dict(zip(_SEARCHABLE, streams[i * g : (i + 1) * g], strict=False))
            for keyword, values in specs.keywords(self.spec, doc, " ".join(texts[i])).items():
                extra[_kw(keyword)] = values
            chars = set("".join(texts[i]))
            chars.discard(" ")
            extra[f"{_IDX}chars"] = sorted(text.encode_char(c) for c in chars)
            ts = text.updated_timestamp(doc.get("updated_at"))
            if ts is not None:  # absent rather than null: missing sort values go last
                extra[f"{_IDX}updated"] = ts
            out.append({**_public(doc), **extra})
        return out


__all__ = ["MeilisearchCommunicationError", "MeilisearchEngine"]
