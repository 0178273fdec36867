"""services/search/reindex.py without the network: the check names every kind of difference; a rebuild
repairs them, and leaves alone a document an event indexed, newer, while the sources were being read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from services.search import reindex, repository
from services.search.engine import make_engine
from tests import factories


def _sources(*pairs):
    return {data["id"]: (version, data) for version, data in pairs}


def test_check_and_rebuild(tmp_path, database):
    engine = make_engine("embedded", data_dir=tmp_path)
    a, b, c = (factories.expert_published_data(name=f"索引 {n}") for n in ("一", "二", "三"))
    try:
        engine.upsert([a, c])
        with Session(database) as session:
            repository.set_versions(session, "experts", {a["id"]: 1, c["id"]: 4}, datetime.now(UTC))
            session.commit()
        sources = _sources((2, a), (1, b))
        report = reindex.check("experts", sources, engine, database)
        assert not report.agrees
        assert report.missing == [b["id"]] and report.extra == [c["id"]]
        assert report.versions == sorted([(a["id"], 1, 2), (b["id"], None, 1)])
        assert any("missing from the index" in line for line in report.lines())

        summary = reindex.rebuild("experts", sources, engine, database)
        assert (summary.written, summary.removed, summary.kept_newer) == (2, 1, 0)
        assert reindex.check("experts", sources, engine, database).agrees

        # An event indexed version 5 of b after the reading began: kept, not overwritten with version 1.
        began = datetime.now(UTC) - timedelta(seconds=1)
        with Session(database) as session:
            repository.set_versions(session, "experts", {b["id"]: 5}, datetime.now(UTC))
            session.commit()
        engine.upsert([{**b, "name": "索引 新"}])
        summary = reindex.rebuild("experts", sources, engine, database, read_from=began)
        assert summary.kept_newer == 1 and engine.get(b["id"])["name"] == "索引 新"
    finally:
        engine.close()
