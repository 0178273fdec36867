"""``tsunagu search reindex [--check]``: rebuild the search indexes from the owning services' APIs (never
their tables), and compare counts and versions between the sources and the indexes.

Why through the gateway with an admin's credentials: only the gateway holds a signing key (gateway/keys.py);
a service verifies tokens and cannot mint one, and neither can this command. So it signs in at the gateway
as an admin (``POST /api/v1/auth/token``) and reads the sources as any admin client would, through the
public API, where the gateway signs a per-call token for the owning service:

- experts: ``GET /api/v1/admin/experts/published`` (profiles: each listed entry's public view, exactly as
  its latest ``profiles.expert.published`` event carries it, and that event's version);
- requests, projects: ``GET /api/v1/admin/search-sources/requests|projects`` (matching: the fields the
  events carry for the index, no people, and the version).

What the command writes is the search service's own: the index (the engine) and the version tables in the
search database, so it runs where the search service's settings are (the same environment variables).

Rebuilding never empties an index first: every source document is upserted, documents no source has any
more are removed, and the version tables are set to the sources' versions. A document an event indexed
after the reading began, newer than what was read, is left as it is (and so is one that arrived new).

The check reports, per index: the counts (source, index, version table), the documents missing from the
index, those in the index that no source has, and those whose recorded version differs from the source's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.search import repository
from services.search.consumers import project_document_of, request_document_of
from services.search.engine import SearchEngine
from services.search.schemas import ExpertSource, ProjectSource, RequestSource

PAGE_SIZE = 100  # the API's largest page
WRITE_BATCH = 500

SOURCES: dict[str, tuple[str, type[BaseModel]]] = {
    "experts": ("/api/v1/admin/experts/published", ExpertSource),
    "requests": ("/api/v1/admin/search-sources/requests", RequestSource),
    "projects": ("/api/v1/admin/search-sources/projects", ProjectSource),
}

# One document of a source: id -> (version, index document).
Sources = dict[str, tuple[int, dict[str, Any]]]
Progress = Callable[..., Any]


class SourceError(Exception):
    """The gateway refused or failed (sign-in, a source page): the message says which, in both languages."""


class GatewayClient:
    """The public API as an admin: signs in once, then reads the sources page by page."""

    def __init__(self, base_url: str, email: str, password: str, *, timeout: float = 30.0) -> None:
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)
        response = self.http.post("/api/v1/auth/token", json={"email": email, "password": password})
        if response.status_code != 200:
            raise SourceError(
                f"ゲートウェイにサインインできません / cannot sign in at the gateway "
                f"({response.status_code}): {response.text[:300]}"
            )
        self.http.cookies.clear()  # the bearer token says who we are
        self.http.headers["authorization"] = f"Bearer {response.json()['access_token']}"

    def pages(self, path: str) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """(items, total) of each page of a source, in the source's (id) order."""
        offset = 0
        while True:
            response = self.http.get(path, params={"limit": PAGE_SIZE, "offset": offset})
            if response.status_code != 200:
                raise SourceError(
                    f"取得に失敗しました / reading {path} failed ({response.status_code}): {response.text[:300]}"
                )
            body = response.json()
            yield body["items"], body["total"]
            offset += len(body["items"])
            if not body["items"] or offset >= body["total"]:
                return

    def close(self) -> None:
        self.http.close()


def document_of(index: str, item: dict[str, Any]) -> tuple[str, int, dict[str, Any]]:
    """(id, version, index document) of one source item, built by the same functions as the consumers."""
    if index == "experts":
        expert = ExpertSource.model_validate(item)
        return expert.data.id, expert.version, expert.data.model_dump(mode="json")
    if index == "requests":
        request = RequestSource.model_validate(item)
        document = request_document_of(
            request.request_id, request.title, request.status, request.sme_name, request, request.updated_at
        )
        return request.request_id, request.version, document
    project = ProjectSource.model_validate(item)
    return project.data.project_id, project.version, project_document_of(project.data)


def fetch_sources(client: GatewayClient, index: str, progress: Progress | None = None) -> Sources:
    """Every document the index should hold, from its owning service's API."""
    path, _ = SOURCES[index]
    found: Sources = {}
    bar = None
    for items, total in client.pages(path):
        if progress is not None and bar is None:
            bar = progress(total=total, desc=f"{index}: read", unit="doc")
        for item in items:
            doc_id, version, document = document_of(index, item)
            found[doc_id] = (version, document)
        if bar is not None:
            bar.update(len(items))
    if bar is not None:
        bar.close()
    return found


@dataclass
class IndexReport:
    index: str
    source_count: int
    index_count: int
    recorded_count: int
    missing: list[str] = field(default_factory=list)  # in the source, not in the index
    extra: list[str] = field(default_factory=list)  # in the index, in no source
    versions: list[tuple[str, int | None, int]] = field(default_factory=list)  # (id, recorded, source)

    @property
    def agrees(self) -> bool:
        return (
            not (self.missing or self.extra or self.versions)
            and self.source_count == self.index_count == self.recorded_count
        )

    def lines(self, limit: int = 20) -> list[str]:
        """The report in words, at most ``limit`` ids per kind of difference."""
        head = (
            f"{self.index}: source {self.source_count}, index {self.index_count}, "
            f"versions recorded {self.recorded_count} — {'一致 / agree' if self.agrees else '不一致 / differ'}"
        )
        out = [head]
        for label, ids in (
            ("索引にない / missing from the index", self.missing),
            ("元データにない / in the index but in no source", self.extra),
        ):
            if ids:
                out.append(f"  {label}: {len(ids)}")
                out += [f"    {doc_id}" for doc_id in ids[:limit]]
        if self.versions:
            out.append(f"  版が違う / version differs: {len(self.versions)}")
            out += [
                f"    {doc_id}: recorded {recorded if recorded is not None else '-'}, source {source}"
                for doc_id, recorded, source in self.versions[:limit]
            ]
        return out


def check(index: str, sources: Sources, engine: SearchEngine, database: Engine) -> IndexReport:
    """Counts and versions of the index against its sources."""
    with Session(database) as session:
        recorded = repository.all_versions(session, index)
    held = engine.ids()
    return IndexReport(
        index=index,
        source_count=len(sources),
        index_count=len(held),
        recorded_count=len(recorded),
        missing=sorted(set(sources) - held),
        extra=sorted(held - set(sources)),
        versions=sorted(
            (doc_id, recorded.get(doc_id), version)
            for doc_id, (version, _) in sources.items()
            if recorded.get(doc_id) != version
        ),
    )


@dataclass
class RebuildSummary:
    index: str
    written: int
    removed: int
    kept_newer: int


def rebuild(
    index: str,
    sources: Sources,
    engine: SearchEngine,
    database: Engine,
    progress: Progress | None = None,
    *,
    read_from: datetime | None = None,
) -> RebuildSummary:
    """Upsert every source document, remove what no source has, record the sources' versions.

    ``read_from``: when the sources were first read; a document an event indexed since then, in a version
    newer than the source's, is left alone (the event is newer than what we read). Any other difference is
    repaired: the source is the truth."""
    now = datetime.now(UTC)
    with Session(database) as session:
        recorded = repository.all_versions(session, index)
        fresh = repository.indexed_since(session, index, read_from or now)
        newer = {
            doc_id for doc_id, (version, _) in sources.items() if doc_id in fresh and recorded.get(doc_id, -1) > version
        }
        write = [(doc_id, version, doc) for doc_id, (version, doc) in sorted(sources.items()) if doc_id not in newer]
        bar = progress(total=len(write), desc=f"{index}: write", unit="doc") if progress else None
        for start in range(0, len(write), WRITE_BATCH):
            batch = write[start : start + WRITE_BATCH]
            engine.upsert([doc for _, _, doc in batch])
            repository.set_versions(session, index, {doc_id: version for doc_id, version, _ in batch}, now)
            session.commit()
            if bar is not None:
                bar.update(len(batch))
        if bar is not None:
            bar.close()
        gone = sorted(engine.ids() - set(sources) - fresh)
        engine.delete(gone)
        stale_rows = sorted(set(recorded) - set(sources) - fresh)
        for start in range(0, len(stale_rows), WRITE_BATCH):
            repository.forget_versions(session, index, stale_rows[start : start + WRITE_BATCH])
        session.commit()
    return RebuildSummary(index=index, written=len(write), removed=len(gone), kept_newer=len(newer))
