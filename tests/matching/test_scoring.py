"""The scorer (scoring/) on a real matching database: filters, region levels, topics, explanations, and the
incremental load of the projection."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy.engine import Engine

from services.matching.models import ExpertFeature
from services.matching.repository import next_change_seq
from services.matching.scoring.features import FeatureStore
from services.matching.scoring.ranker import BROKERS, PUBLIC, RankingInput, entry_for_reader, rank
from services.matching.scoring.weights import DEFAULT_WEIGHTS
from tsunagu.db import session_scope

TODAY = date(2026, 11, 22)
# profiles' default visibility: everything public but contact data, fee, capacity and availability.
PUBLIC_FIELDS = ["affiliation", "bio", "dss_roles", "industries", "name_kana", "prefectures", "programme"]
PUBLIC_FIELDS += ["qualifications", "renewal_deadline", "services", "skills", "strengths"]
BROKER_FIELDS = [*PUBLIC_FIELDS, "availability", "capacity", "fee"]


def add(engine: Engine, expert_id: str, **overrides) -> None:
    values = dict(
        expert_id=expert_id,
        entity_version=1,
        kind="sekisupe",
        display_name=f"専門家 {expert_id}",
        active=True,
        prefectures=["13"],
        onsite=True,
        remote=False,
        topics={"ransomware": 3},
        capacity=2,
        registration_expires_on=TODAY + timedelta(days=400),
        last_confirmed_at=datetime(2026, 11, 10, tzinfo=UTC),
        public_fields=PUBLIC_FIELDS,
        broker_fields=BROKER_FIELDS,
    )
    values.update(overrides)
    with session_scope(engine) as session:
        values["change_seq"] = next_change_seq(session)
        existing = session.get(ExpertFeature, expert_id)
        if existing is None:
            session.add(ExpertFeature(**values))
        else:
            for key, value in values.items():
                setattr(existing, key, value)
            session.add(existing)


def ids(ranked) -> list[str]:
    return [entry.expert_id for entry in ranked]


def test_region_levels_order_same_prefecture_neighbour_bureau_remote(engine: Engine) -> None:
    add(engine, "same", prefectures=["13"])
    add(engine, "neighbour", prefectures=["11"])  # 埼玉 borders 東京
    add(engine, "bureau", prefectures=["08"], remote=True)  # 茨城: 関東局, not a neighbour of 東京
    add(engine, "remote", prefectures=["47"], onsite=False, remote=True)  # 沖縄, remote only
    store = FeatureStore(engine)
    ranked, candidates = rank(store.refresh(), RankingInput("13", "either", ["ransomware"], [], None), today=TODAY)
    assert ids(ranked) == ["same", "neighbour", "bureau", "remote"]
    assert candidates == 4
    levels = [entry.region_level for entry in ranked]
    assert levels == ["same_prefecture", "neighbour", "same_bureau", "remote"]
    assert ranked[0].contributions["region"] > ranked[1].contributions["region"] > ranked[2].contributions["region"]


def test_hard_filters_remove_inactive_expired_full_and_unreachable(engine: Engine) -> None:
    add(engine, "ok")
    add(engine, "inactive", active=False)
    add(engine, "expired", registration_expires_on=TODAY - timedelta(days=1))
    add(engine, "full", capacity=0)
    add(engine, "far-onsite", prefectures=["01"])  # 北海道, on site only: cannot reach 東京
    add(engine, "remote-only", prefectures=["13"], onsite=False, remote=True)
    store = FeatureStore(engine)
    onsite, count = rank(store.refresh(), RankingInput("13", "onsite", ["ransomware"], [], None), today=TODAY)
    assert ids(onsite) == ["ok"] and count == 1
    remote, _ = rank(store.refresh(), RankingInput("13", "remote", ["ransomware"], [], None), today=TODAY)
    assert ids(remote) == ["remote-only"]


def test_topic_depth_and_coverage_decide_between_equal_regions(engine: Engine) -> None:
    add(engine, "deep-both", topics={"ransomware": 3, "backup_bcp": 3})
    add(engine, "shallow-both", topics={"ransomware": 1, "backup_bcp": 1})
    add(engine, "deep-one", topics={"ransomware": 3})
    add(engine, "none", topics={"dx_strategy": 3})
    store = FeatureStore(engine)
    ranked, _ = rank(store.refresh(), RankingInput("13", "either", ["ransomware", "backup_bcp"], [], None), today=TODAY)
    assert ids(ranked) == ["deep-both", "deep-one", "shallow-both", "none"]
    assert ranked[0].covered_topics == ["ransomware", "backup_bcp"]
    assert ranked[3].covered_topics == []


def test_skills_industry_and_freshness_break_ties(engine: Engine) -> None:
    add(engine, "skilled", skills=["aws", "m365"], industries=["製造業"])
    add(engine, "plain")
    add(engine, "stale", last_confirmed_at=datetime(2026, 3, 1, tzinfo=UTC))
    store = FeatureStore(engine)
    ranked, _ = rank(store.refresh(), RankingInput("13", "either", ["ransomware"], ["aws"], "製造業"), today=TODAY)
    assert ids(ranked) == ["skilled", "plain", "stale"]
    assert ranked[0].matched_skills == 1
    assert ranked[2].contributions["freshness"] == 0.0


def test_entries_explain_the_rank_in_japanese_with_the_weights_version(engine: Engine) -> None:
    add(engine, "a", topics={"ransomware": 3, "backup_bcp": 2})
    store = FeatureStore(engine)
    ranked, _ = rank(
        store.refresh(), RankingInput("13", "either", ["ransomware", "backup_bcp", "education"], [], None), today=TODAY
    )
    entry = ranked[0].as_entry(
        1,
        DEFAULT_WEIGHTS,
        ["ransomware", "backup_bcp", "education"],
    )
    broker = entry_for_reader(entry, BROKERS)
    assert broker["reason_ja"].startswith("同じ都道府県で対応")
    assert "相談テーマ3件中2件が得意分野（ランサムウェア対策など2件）" in broker["reason_ja"]
    assert "活動確認は12日前" in broker["reason_ja"]
    assert entry["weights_version"] == DEFAULT_WEIGHTS.version == "2026-11-v2"
    assert set(broker["contributions"]) == {"region", "topic", "skill", "industry", "freshness", "outcome", "fairness"}
    assert abs(sum(broker["contributions"].values()) - entry["score"]) < 1e-3
    # An SME reads the public facts only: freshness, ratings and exposure are broker-level.
    sme = entry_for_reader(entry, PUBLIC)
    assert "views" not in sme and "活動確認" not in sme["reason_ja"]
    assert set(sme["contributions"]) == {"region", "topic", "skill", "industry", "undisclosed"}
    assert abs(sum(sme["contributions"].values()) - entry["score"]) < 1e-3


def test_refresh_is_incremental_and_sees_updates(engine: Engine) -> None:
    add(engine, "x", topics={"ransomware": 1})
    store = FeatureStore(engine)
    assert store.refresh().size == 1
    add(engine, "y", topics={"ransomware": 3})
    add(engine, "x", topics={"education": 3}, entity_version=2)
    add(engine, "y", topics={"ransomware": 3})  # same version again: skipped, nothing changes
    matrix = store.refresh()
    assert matrix.size == 2
    ranked, _ = rank(matrix, RankingInput("13", "either", ["ransomware"], [], None), today=TODAY)
    assert ids(ranked)[0] == "y"
    assert ranked[1].covered_topics == []  # x's old strength is gone


def test_many_experts_grow_the_matrix(engine: Engine) -> None:
    for index in range(1500):
        add(engine, f"e{index:04d}", prefectures=[f"{index % 47 + 1:02d}"], remote=index % 3 == 0)
    store = FeatureStore(engine)
    matrix = store.refresh()
    assert matrix.size == 1500
    ranked, candidates = rank(matrix, RankingInput("27", "either", ["ransomware"], [], None), today=TODAY, limit=20)
    assert len(ranked) == 20 and candidates > 20
    assert ranked[0].region_level == "same_prefecture"


def test_experts_alike_share_one_copy_of_their_tags_and_field_sets_and_still_rank(engine: Engine) -> None:
    """The scorer's memory (issue 8: under 200 MB per worker at 30,000 experts): equal skills, industries and
    visibility sets are held once, not once per expert; a changed expert gets its own again."""
    add(engine, "a", skills=["aws", "edr"], industries=["製造業"])
    add(engine, "b", skills=["aws", "edr"], industries=["製造業"])
    store = FeatureStore(engine)
    matrix = store.refresh()
    a, b = matrix.row_of["a"], matrix.row_of["b"]
    assert matrix.row_skills[a] is matrix.row_skills[b] and matrix.row_skills[a] == ("aws", "edr")
    assert matrix.row_industries[a] is matrix.row_industries[b]
    assert matrix.row_public[a] is matrix.row_public[b] and matrix.row_brokers[a] is matrix.row_brokers[b]
    add(engine, "b", entity_version=2, skills=["aws"], public_fields=["skills"])
    matrix = store.refresh()
    assert matrix.row_skills[b] == ("aws",) and matrix.row_public[b] == frozenset({"skills"})
    assert matrix.row_skills[a] == ("aws", "edr") and "bio" in matrix.row_public[a]
    ranked, _ = rank(matrix, RankingInput("13", "either", ["ransomware"], ["edr"], None), today=TODAY)
    assert ids(ranked)[0] == "a"  # the skill still counts
