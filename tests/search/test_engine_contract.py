"""One contract for every search backend (services/search/engine).

Runs against the embedded SQLite engine always, and against Meilisearch when MEILI_URL is set
(MEILI_MASTER_KEY optional; each test uses its own throw-away index). Expected results come from explicit ids
and, for the full match sets, from a deliberately naive reference implementation of the contract (`expected`).
"""

from __future__ import annotations

import os
import threading
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest

from services.search.engine import MAX_LIMIT, SearchEngine, SearchQuery, embedded, make_engine, text
from services.search.engine.embedded import EmbeddedSearchEngine

MEILI_URL = os.environ.get("MEILI_URL")
BACKENDS = [
    "embedded",
    pytest.param("meilisearch", marks=pytest.mark.skipif(not MEILI_URL, reason="MEILI_URL not set")),
]


# -- data --------------------------------------------------------------------------------------------------


def _id(n: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://tsunagu.example/experts/{n}"))


def expert(n: int, name: str, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": _id(n),
        "kind": "sekisupe",
        "name": name,
        "name_kana": None,
        "registration_number": None,
        "affiliation": None,
        "bio": None,
        "prefectures": [],
        "onsite": False,
        "remote": False,
        "topics": [],
        "topic_labels": [],
        "skills": [],
        "industries": [],
        "services": [],
        "dss_roles": ["cybersecurity"],
        "active": True,
        # Distinct times by default, so that the expected order does not depend on ids.
        "updated_at": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00+09:00",
    }
    doc.update(fields)
    return doc


YAMADA = expert(
    1,
    "山田 太郎",
    name_kana="やまだ たろう",
    registration_number="012345",
    affiliation="株式会社札幌セキュリティ",
    bio="北海道札幌市を拠点に、ランサムウェア被害の初動対応とフォレンジックを行います。",
    prefectures=["01"],
    onsite=True,
    remote=True,
    topics=["ransomware", "incident_response"],
    topic_labels=["ランサムウェア対策", "インシデント対応（検知・初動・報告・復旧）と手順書整備"],
    skills=["aws", "フォレンジック"],
    industries=["製造業"],
    services=["インシデント初動"],
)
SATO = expert(
    2,
    "佐藤 花子",
    name_kana="さとう はなこ",
    registration_number="023456",
    affiliation="東京クラウド合同会社",
    bio="ＡＷＳとAzureのクラウド設計、ゼロトラスト導入を支援。",
    prefectures=["13", "14"],
    remote=True,
    topics=["cloud_security"],
    topic_labels=["クラウドサービスの安全な選定・利用"],
    skills=["azure", "aws"],
    industries=["情報通信業"],
    services=["クラウド移行支援"],
)
SUZUKI = expert(
    3,
    "鈴木 一郎",
    name_kana="すずき いちろう",
    registration_number="034567",
    bio="大阪府内の製造業向けにSECURITY ACTION宣言を支援しています。",
    prefectures=["27"],
    onsite=True,
    topics=["security_action_1", "security_action_2"],
    topic_labels=["SECURITY ACTION ★一つ星（情報セキュリティ5か条）の宣言支援"],
    skills=["isms"],
    industries=["製造業"],
)
TAKAHASHI = expert(
    4,
    "高橋 美咲",
    kind="dx_talent",
    name_kana="たかはし みさき",
    bio="福岡でデータ分析とRPAによる業務自動化を担当。",
    prefectures=["40"],
    remote=True,
    topics=["rpa", "customer_data"],
    topic_labels=["RPAによる業務自動化", "顧客データの一元管理・データ利活用"],
    skills=["python", "データ分析"],
    dss_roles=["data_scientist"],
)
TANAKA = expert(  # half-width katakana on the document side
    5,
    "田中 健太",
    name_kana="ﾀﾅｶ ｹﾝﾀ",
    bio="ｾｷｭﾘﾃｨ教育と標的型攻撃メール訓練を実施",
    prefectures=["23"],
    onsite=True,
    topics=["education", "targeted_attack"],
    topic_labels=["従業員へのセキュリティ教育・注意喚起"],
)
ITO_INACTIVE = expert(
    6,
    "伊藤 直樹",
    bio="ランサムウェア対策の専門家。札幌在住。",
    prefectures=["01"],
    onsite=True,
    remote=True,
    topics=["ransomware"],
    topic_labels=["ランサムウェア対策"],
    active=False,
)
WATANABE_MINIMAL = {"id": _id(7), "name": "渡辺 恵"}  # every optional key hidden, even updated_at
YAMAMOTO_NULLS = {  # keys present but null
    "id": _id(8),
    "kind": "sekisupe",
    "name": "山本 誠",
    "name_kana": None,
    "registration_number": None,
    "affiliation": None,
    "bio": None,
    "prefectures": None,
    "onsite": None,
    "remote": None,
    "topics": None,
    "topic_labels": None,
    "skills": None,
    "industries": None,
    "services": None,
    "dss_roles": None,
    "active": None,
    "updated_at": "2023-01-01T00:00:00+09:00",
}
NAKAMURA = expert(
    9,
    "中村 彩",
    affiliation="ヤマダ情報サービス",
    bio="中小企業の情報システム全般を支援。",
    prefectures=["13"],
    remote=True,
    topics=["management_guidance"],
    topic_labels=["経営者向けマネジメント指導"],
)
KOBAYASHI_SYMBOLS = expert(
    10,
    "小林 亮",
    bio='バックアップ復旧率100%。C++/C#でツール開発。"引用" AND OR NOT NEAR(x) * ^ _ %',
    prefectures=["11"],
    remote=True,
    topics=["backup_bcp"],
    skills=["c++", "c#"],
)
KATO = expert(
    11,
    "加藤 裕子",
    kind="dx_talent",
    bio="DX戦略の策定とDX認定の申請支援。",
    prefectures=["13"],
    onsite=True,
    topics=["dx_strategy", "dx_nintei"],
    topic_labels=["DX戦略・経営ビジョンの策定", "DX認定の申請支援"],
    dss_roles=["business_architect"],
)
YOSHIDA = expert(
    12,
    "吉田 浩二",
    bio="沖縄県那覇市。観光業・宿泊業のセキュリティ。",
    prefectures=["47"],
    onsite=True,
    remote=True,
    topics=["byod_telework"],
    industries=["宿泊業"],
)
YAMAGUCHI = expert(
    13,
    "山口 千尋",
    bio="東北三県の取引先管理を支援。",
    prefectures=["01", "02", "03"],
    remote=True,
    topics=["supply_chain", "scs_3"],
    topic_labels=["サプライチェーン・取引先のセキュリティ管理", "SCS評価制度 ★3（専門家確認付き自己評価）の取得支援"],
    skills=["ネットワーク"],
)
# Relevance: the same word in the tags, the affiliation and the bio.
FORENSIC_BIO = expert(
    15,
    "井上 隆",
    bio="以前は通信会社で勤務し、ネットワーク監視やログ解析のほか、社内のフォレンジック業務にも携わった。",
    prefectures=["26"],
)
FORENSIC_ORG = expert(16, "木村 翔", affiliation="フォレンジック研究所", prefectures=["26"])
SUZUKI_IN_BIO = expert(17, "林 陽子", bio="鈴木さんと協業しています。", prefectures=["27"])
# Identical text, different updated_at: relevance ties, newest first.
TWIN_OLD = expert(18, "松本 蓮", bio="同一プロフィール", prefectures=["34"], updated_at="2023-03-01T00:00:00+09:00")
TWIN_NEW = expert(19, "松本 蓮", bio="同一プロフィール", prefectures=["34"], updated_at="2023-03-02T00:00:00+09:00")
# Same instant written with different offsets, and a tie broken by id.
TZ_LATE = expert(20, "清水 隼", prefectures=["22"], updated_at="2024-06-01T01:00:00Z")  # 10:00 JST
TZ_EARLY = expert(21, "斎藤 拓也", prefectures=["22"], updated_at="2024-06-01T09:00:00+09:00")  # 00:00 UTC
SAME_TIME_A = expert(22, "森 由美", prefectures=["22"], updated_at="2022-01-01T00:00:00+09:00")
SAME_TIME_B = expert(23, "池田 大輔", prefectures=["22"], updated_at="2022-01-01T00:00:00+09:00")

_PREFS = ["04", "07", "13", "15", "23", "27", "28", "33", "38", "40", "43", "46"]
_TOPICS = ["ransomware", "cloud_security", "education", "rpa", "supply_chain", "backup_bcp"]
FILLERS = [
    expert(
        100 + i,
        f"{family} {given}",
        kind="dx_talent" if i % 3 == 0 else "sekisupe",
        bio=f"{['宮城', '福島', '東京', '新潟', '愛知', '大阪', '兵庫', '岡山', '愛媛', '福岡', '熊本', '鹿児島'][i]}"
        "の中小企業を支援しています。",
        prefectures=[_PREFS[i]] + ([_PREFS[(i + 5) % 12]] if i % 4 == 0 else []),
        onsite=i % 2 == 0,
        remote=i % 3 != 1,
        topics=[_TOPICS[i % 6]] + ([_TOPICS[(i + 2) % 6]] if i % 5 == 0 else []),
        skills=["aws"] if i % 4 == 1 else ["linux"],
        active=i != 7,
    )
    for i, (family, given) in enumerate(
        [
            ("青木", "翼"),
            ("坂本", "葵"),
            ("遠藤", "樹"),
            ("村上", "結衣"),
            ("後藤", "陸"),
            ("近藤", "紬"),
            ("藤田", "湊"),
            ("前田", "凛"),
            ("岡田", "蒼"),
            ("長谷川", "陽菜"),
            ("石川", "悠真"),
            ("小川", "芽依"),
        ]
    )
]

DOCS: list[dict[str, Any]] = [
    YAMADA,
    SATO,
    SUZUKI,
    TAKAHASHI,
    TANAKA,
    ITO_INACTIVE,
    WATANABE_MINIMAL,
    YAMAMOTO_NULLS,
    NAKAMURA,
    KOBAYASHI_SYMBOLS,
    KATO,
    YOSHIDA,
    YAMAGUCHI,
    FORENSIC_BIO,
    FORENSIC_ORG,
    SUZUKI_IN_BIO,
    TWIN_OLD,
    TWIN_NEW,
    TZ_LATE,
    TZ_EARLY,
    SAME_TIME_A,
    SAME_TIME_B,
    *FILLERS,
]
BY_ID = {d["id"]: d for d in DOCS}
assert len(BY_ID) == len(DOCS) >= 30


# -- the reference implementation of the contract (naive on purpose) -----------------------------------------

SEARCHED = (
    "name",
    "name_kana",
    "registration_number",
    "topic_labels",
    "skills",
    "services",
    "industries",
    "affiliation",
    "bio",
)


def _norm(s: str) -> str:
    s = unicodedata.normalize("NFKC", s).lower()
    return "".join(chr(ord(c) - 0x60) if "ァ" <= c <= "ヶ" else c for c in s)


def _values(doc: dict[str, Any]) -> list[str]:
    out = []
    for field in SEARCHED:
        value = doc.get(field)
        items = value if isinstance(value, list) else [value] if value else []
        out.extend(_norm(str(v)) for v in items if v)
    return out


def _ts(doc: dict[str, Any]) -> float | None:
    from datetime import datetime

    return datetime.fromisoformat(doc["updated_at"]).timestamp() if doc.get("updated_at") else None


def expected(query: SearchQuery, docs: list[dict[str, Any]] = DOCS) -> list[str]:
    """Ids matching `query`, in the no-q order (updated_at desc, missing last, then id)."""
    terms = _norm(query.q).split()
    out = []
    for d in docs:
        if query.active_only and d.get("active") is False:
            continue
        if query.kind is not None and d.get("kind") != query.kind:
            continue
        if query.remote is not None and (d.get("remote") is True) != query.remote:
            continue
        if query.onsite is not None and (d.get("onsite") is True) != query.onsite:
            continue
        if query.prefectures and not set(query.prefectures) & set(d.get("prefectures") or []):
            continue
        if query.topics and not set(query.topics) & set(d.get("topics") or []):
            continue
        values = _values(d)
        if all(any(t in v for v in values) for t in terms):
            out.append(d)
    out.sort(key=lambda d: d["id"])
    out.sort(key=lambda d: -_ts(d) if _ts(d) is not None else float("inf"))
    return [d["id"] for d in out]


# -- fixtures ------------------------------------------------------------------------------------------------


def _new_engine(backend: str, data_dir: Path) -> SearchEngine:
    if backend == "embedded":
        engine = make_engine("embedded", data_dir=data_dir)
    else:
        engine = make_engine(
            "meilisearch",
            data_dir=data_dir,
            meili_url=MEILI_URL,
            meili_key=os.environ.get("MEILI_MASTER_KEY"),
            meili_index=f"contract_{uuid.uuid4().hex[:12]}",
        )
    engine.setup()
    return engine


def _dispose(engine: SearchEngine) -> None:
    if hasattr(engine, "drop_index"):
        engine.drop_index()
    engine.close()


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    """An empty engine, fresh for each test."""
    eng = _new_engine(request.param, tmp_path)
    yield eng
    _dispose(eng)


@pytest.fixture(scope="module", params=BACKENDS)
def loaded(request, tmp_path_factory):
    """An engine holding DOCS, shared by the read-only tests of this module."""
    eng = _new_engine(request.param, tmp_path_factory.mktemp("search"))
    eng.upsert([dict(d) for d in DOCS])
    yield eng
    _dispose(eng)


def ids(result) -> list[str]:
    return [h["id"] for h in result.hits]


def everything(engine: SearchEngine, **kw: Any) -> list[str]:
    """All hits of a query, page by page (never more than MAX_LIMIT at a time)."""
    out: list[str] = []
    while True:
        page = engine.search(SearchQuery(**kw, limit=MAX_LIMIT, offset=len(out)))
        out += ids(page)
        if len(page.hits) < MAX_LIMIT:
            return out


# -- lifecycle -------------------------------------------------------------------------------------------------


def test_setup_is_idempotent_and_engine_is_usable(engine):
    engine.setup()
    engine.setup()
    assert engine.ping() is True
    assert engine.count() == 0
    assert engine.search(SearchQuery()).total == 0
    assert engine.get(_id(1)) is None


def test_get_returns_the_document_as_upserted(loaded):
    for doc in DOCS:
        assert loaded.get(doc["id"]) == doc
    assert loaded.get(_id(999)) is None


def test_count_includes_inactive_documents(loaded):
    assert loaded.count() == len(DOCS)


def test_ids_lists_every_document_active_or_not(loaded):
    # What the reindex check compares with the sources (services/search/reindex.py).
    assert loaded.ids() == {d["id"] for d in DOCS}


def test_hits_are_the_stored_documents(loaded):
    result = loaded.search(SearchQuery(q="札幌"))
    assert result.hits and all(h == BY_ID[h["id"]] for h in result.hits)


# -- ordering, activity, missing fields ---------------------------------------------------------------------------


def test_without_q_newest_first_then_id(loaded):
    got = everything(loaded)
    assert got == expected(SearchQuery())
    # Real instants, not strings: 01:00Z is later than 09:00+09:00 (00:00Z).
    assert got.index(TZ_LATE["id"]) < got.index(TZ_EARLY["id"])
    first, second = sorted([SAME_TIME_A["id"], SAME_TIME_B["id"]])
    assert got.index(first) == got.index(second) - 1
    assert got[-1] == WATANABE_MINIMAL["id"]  # no updated_at: last


def test_inactive_excluded_by_default_and_included_on_request(loaded):
    assert ITO_INACTIVE["id"] not in everything(loaded)
    assert ITO_INACTIVE["id"] not in ids(loaded.search(SearchQuery(q="伊藤")))
    assert ids(loaded.search(SearchQuery(q="伊藤", active_only=False))) == [ITO_INACTIVE["id"]]
    assert everything(loaded, active_only=False) == expected(SearchQuery(active_only=False))
    assert loaded.search(SearchQuery(active_only=False)).total == len(DOCS)


def test_documents_with_hidden_or_null_fields_are_searchable(loaded):
    # A missing/null "active" counts as active; missing lists match no filter; names stay searchable.
    assert ids(loaded.search(SearchQuery(q="渡辺"))) == [WATANABE_MINIMAL["id"]]
    assert ids(loaded.search(SearchQuery(q="山本 誠"))) == [YAMAMOTO_NULLS["id"]]
    assert WATANABE_MINIMAL["id"] in everything(loaded)
    assert YAMAMOTO_NULLS["id"] not in everything(loaded, prefectures=("13",))
    assert YAMAMOTO_NULLS["id"] not in everything(loaded, remote=True)
    assert YAMAMOTO_NULLS["id"] in everything(loaded, remote=False)  # a missing flag counts as false


# -- text ------------------------------------------------------------------------------------------------------

TEXT_CASES = {
    # query: ids that must be among the hits (the full set is checked against `expected`)
    "ランサム": [YAMADA["id"]],  # 3+ characters, prefix of ランサムウェア
    "サムウェ": [YAMADA["id"]],  # substring in the middle of a word
    "ランサムウェア対策": [YAMADA["id"]],
    "札幌": [YAMADA["id"]],  # 2 characters, in the affiliation and the bio
    "札": [YAMADA["id"]],  # 1 character
    "彩": [NAKAMURA["id"]],  # 1 character given name
    "aws": [YAMADA["id"], SATO["id"]],
    "ＡＷＳ": [YAMADA["id"], SATO["id"]],  # full-width query
    "AWS": [YAMADA["id"], SATO["id"]],  # upper case query
    "azure": [SATO["id"]],  # "Azure" in the bio and "azure" in the skills
    "ｾｷｭﾘﾃｨ": [SUZUKI["id"], TANAKA["id"]],  # half-width query, full- and half-width documents
    "セキュリティ教育": [TANAKA["id"]],  # full-width query, half-width document
    "ヤマダ": [YAMADA["id"], NAKAMURA["id"]],  # katakana finds hiragana (name_kana) and katakana
    "やまだ": [YAMADA["id"], NAKAMURA["id"]],
    "たなか": [TANAKA["id"]],  # hiragana finds half-width katakana
    "012345": [YAMADA["id"]],  # registration number
    "2345": [YAMADA["id"]],
    "製造業 ランサム": [YAMADA["id"]],  # terms are ANDed
    "　ランサム　　札幌　": [YAMADA["id"]],  # full-width and repeated spaces separate terms
    "インシデント初動": [YAMADA["id"]],  # services
    "情報通信業": [SATO["id"]],  # industries
    "東京クラウド": [SATO["id"]],  # affiliation
    "security action": [SUZUKI["id"]],
    "★3": [YAMAGUCHI["id"]],
    "100%": [KOBAYASHI_SYMBOLS["id"]],  # characters that mean something to FTS/LIKE/filters
    "c++": [KOBAYASHI_SYMBOLS["id"]],
    "c#": [KOBAYASHI_SYMBOLS["id"]],
    '"引用"': [KOBAYASHI_SYMBOLS["id"]],
    "near(x)": [KOBAYASHI_SYMBOLS["id"]],
    "and": [KOBAYASHI_SYMBOLS["id"]],
    "*": [KOBAYASHI_SYMBOLS["id"]],
    "_": [KOBAYASHI_SYMBOLS["id"]],
    "%": [KOBAYASHI_SYMBOLS["id"]],
    "^": [KOBAYASHI_SYMBOLS["id"]],
    "東京 存在しない語": [],
    "ランサム 福岡": [],
    "xyz": [],
    "'; DROP TABLE docs; --": [],
}


@pytest.mark.parametrize("q", list(TEXT_CASES))
def test_text_query(loaded, q):
    result = loaded.search(SearchQuery(q=q, limit=MAX_LIMIT))
    want = expected(SearchQuery(q=q))
    assert set(ids(result)) == set(want)
    assert result.total == len(want)
    assert set(TEXT_CASES[q]) <= set(want), "the test data does not say what the case claims"


def test_text_never_matches_across_list_items(loaded):
    # skills ["aws", "フォレンジック"]: "awsフォ" is not in any single item.
    assert loaded.search(SearchQuery(q="awsフォ")).total == 0


def test_empty_and_blank_queries_are_no_text_filter(loaded):
    for q in ("", "   ", "\u3000"):
        assert everything(loaded, q=q) == expected(SearchQuery())


# -- relevance -----------------------------------------------------------------------------------------------


def test_name_match_ranks_above_bio_match(loaded):
    assert ids(loaded.search(SearchQuery(q="鈴木"))) == [SUZUKI["id"], SUZUKI_IN_BIO["id"]]


def test_tags_beat_affiliation_beat_bio(loaded):
    got = ids(loaded.search(SearchQuery(q="フォレンジック")))
    assert got == [YAMADA["id"], FORENSIC_ORG["id"], FORENSIC_BIO["id"]]


def test_equal_relevance_is_ordered_newest_first(loaded):
    assert ids(loaded.search(SearchQuery(q="同一プロフィール"))) == [TWIN_NEW["id"], TWIN_OLD["id"]]
    assert ids(loaded.search(SearchQuery(q="松本"))) == [TWIN_NEW["id"], TWIN_OLD["id"]]


# -- filters -------------------------------------------------------------------------------------------------

FILTER_CASES = [
    dict(prefectures=("01",)),
    dict(prefectures=("01", "13")),  # OR within prefectures
    dict(prefectures=("99",)),
    dict(topics=("ransomware",)),
    dict(topics=("ransomware", "cloud_security")),  # OR within topics
    dict(kind="dx_talent"),
    dict(kind="sekisupe"),
    dict(kind="nobody"),
    dict(remote=True),
    dict(remote=False),
    dict(onsite=True),
    dict(onsite=False),
    dict(prefectures=("13", "27"), kind="sekisupe"),  # AND across filters
    dict(prefectures=("01", "13", "27", "40"), topics=("ransomware", "rpa", "education"), remote=True),
    dict(prefectures=("22",), onsite=False, remote=False),
    dict(topics=("ransomware",), active_only=False),
    dict(q="支援", prefectures=("13",)),
    dict(q="中小企業", kind="dx_talent", onsite=True),
    dict(q="aws", topics=("cloud_security", "supply_chain")),
    dict(q="ランサム", prefectures=("01",), active_only=False),
]


@pytest.mark.parametrize("kw", FILTER_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()))
def test_filters(loaded, kw):
    result = loaded.search(SearchQuery(**kw, limit=MAX_LIMIT))
    want = expected(SearchQuery(**kw))
    assert result.total == len(want)
    if kw.get("q"):
        assert set(ids(result)) == set(want)
    else:
        assert ids(result) == want


def test_filter_examples(loaded):
    assert set(everything(loaded, prefectures=("01",))) == {YAMADA["id"], YAMAGUCHI["id"]}  # ITO is inactive
    assert set(everything(loaded, topics=("ransomware",), prefectures=("01",), active_only=False)) == {
        YAMADA["id"],
        ITO_INACTIVE["id"],
    }
    assert KATO["id"] in everything(loaded, kind="dx_talent", prefectures=("13",), onsite=True)
    assert SATO["id"] not in everything(loaded, kind="dx_talent")


def test_filter_values_cannot_inject(loaded):
    hostile = ['01" OR active = false OR kind = "x', "13' OR '1'='1", "\\", '"', "13) OR (1=1"]
    for value in hostile:
        assert loaded.search(SearchQuery(prefectures=(value,))).total == 0
        assert loaded.search(SearchQuery(topics=(value,))).total == 0
        assert loaded.search(SearchQuery(kind=value)).total == 0


def test_query_accepts_lists(loaded):
    # Callers pass lists from query strings; the dataclass stores tuples.
    q = SearchQuery(prefectures=["01", "13"], topics=["ransomware"])
    assert q.prefectures == ("01", "13") and q.topics == ("ransomware",)
    assert ids(loaded.search(q)) == expected(q)


# -- pagination --------------------------------------------------------------------------------------------


def test_pages_cover_the_result_exactly_once(loaded):
    want = expected(SearchQuery())
    pages, offset = [], 0
    while offset < len(want) + 7:
        result = loaded.search(SearchQuery(limit=7, offset=offset))
        assert result.total == len(want)
        pages += ids(result)
        offset += 7
    assert pages == want


def test_pages_of_a_text_query_follow_its_order(loaded):
    full = ids(loaded.search(SearchQuery(q="支援", limit=MAX_LIMIT)))
    assert len(full) > 6
    paged = []
    for offset in range(0, len(full), 4):
        result = loaded.search(SearchQuery(q="支援", limit=4, offset=offset))
        assert result.total == len(full)
        paged += ids(result)
    assert paged == full
    # An offset that is not a multiple of the limit.
    assert ids(loaded.search(SearchQuery(q="支援", limit=3, offset=5))) == full[5:8]


def test_past_the_end_and_zero_limit_still_count(loaded):
    total = len(expected(SearchQuery()))
    result = loaded.search(SearchQuery(offset=total + 10))
    assert result.hits == [] and result.total == total
    result = loaded.search(SearchQuery(limit=0))
    assert result.hits == [] and result.total == total
    result = loaded.search(SearchQuery(q="札幌", limit=0))
    assert result.hits == [] and result.total == len(expected(SearchQuery(q="札幌")))


def test_negative_paging_values_are_clamped(loaded):
    result = loaded.search(SearchQuery(limit=-5, offset=-3))
    assert result.hits == [] and result.total == len(expected(SearchQuery()))
    assert ids(loaded.search(SearchQuery(limit=3, offset=-3))) == expected(SearchQuery())[:3]


def test_limit_is_capped(engine):
    docs = [expert(1000 + i, f"大量 {i}", prefectures=["13"], bio="一括登録テスト") for i in range(MAX_LIMIT + 30)]
    engine.upsert(docs)
    result = engine.search(SearchQuery(limit=1000))
    assert len(result.hits) == MAX_LIMIT and result.total == MAX_LIMIT + 30
    result = engine.search(SearchQuery(q="一括", limit=10_000))
    assert len(result.hits) == MAX_LIMIT and result.total == MAX_LIMIT + 30


# -- writes ------------------------------------------------------------------------------------------------


def test_upsert_replaces_the_whole_document(engine):
    engine.upsert([dict(d) for d in DOCS])
    replacement = {
        "id": YAMADA["id"],
        "kind": "sekisupe",
        "name": "山田 太郎",
        "bio": "沖縄で活動しています。",
        "prefectures": ["47"],
        "topics": ["education"],
        "active": True,
        "updated_at": "2025-01-01T00:00:00Z",
    }
    engine.upsert([replacement])
    assert engine.get(YAMADA["id"]) == replacement  # hidden keys are gone, not merged
    assert engine.count() == len(DOCS)
    assert YAMADA["id"] not in ids(engine.search(SearchQuery(q="フォレンジック")))  # old skills
    assert YAMADA["id"] not in ids(engine.search(SearchQuery(q="札幌")))  # old affiliation and bio
    assert YAMADA["id"] not in everything(engine, prefectures=("01",))
    assert YAMADA["id"] not in everything(engine, topics=("ransomware",))
    assert YAMADA["id"] in everything(engine, prefectures=("47",), topics=("education",))
    assert ids(engine.search(SearchQuery(q="沖縄で"))) == [YAMADA["id"]]
    assert everything(engine)[0] == YAMADA["id"]  # newest now
    docs = [replacement if d["id"] == YAMADA["id"] else d for d in DOCS]
    assert everything(engine) == expected(SearchQuery(), docs)


def test_upsert_can_deactivate_and_reactivate(engine):
    engine.upsert([dict(YAMADA)])
    engine.upsert([{**YAMADA, "active": False}])
    assert engine.search(SearchQuery(q="山田")).total == 0
    engine.upsert([{**YAMADA, "active": True}])
    assert ids(engine.search(SearchQuery(q="山田"))) == [YAMADA["id"]]


def test_last_duplicate_in_a_batch_wins(engine):
    engine.upsert([{**SATO, "bio": "最初"}, dict(YAMADA), {**SATO, "bio": "最後"}])
    assert engine.count() == 2
    assert engine.get(SATO["id"])["bio"] == "最後"
    assert engine.search(SearchQuery(q="最初")).total == 0


def test_invalid_documents_are_rejected_without_writing(engine):
    for bad in ([{"name": "id なし"}], [{"id": ""}], [{"id": 42, "name": "数値 id"}], ["not a dict"]):
        with pytest.raises(ValueError):
            engine.upsert([dict(YAMADA), *bad])
    assert engine.count() == 0


def test_delete(engine):
    engine.upsert([dict(d) for d in DOCS])
    engine.delete([SATO["id"], _id(999)])  # unknown ids are ignored
    assert engine.get(SATO["id"]) is None
    assert engine.count() == len(DOCS) - 1
    assert SATO["id"] not in ids(engine.search(SearchQuery(q="aws", limit=MAX_LIMIT)))
    assert SATO["id"] not in everything(engine, prefectures=("13", "14"))
    engine.delete([SATO["id"]])  # again: no-op
    engine.delete([])
    engine.delete([_id(998)])
    assert engine.count() == len(DOCS) - 1
    engine.upsert([dict(SATO)])  # and back
    assert ids(engine.search(SearchQuery(q="東京クラウド"))) == [SATO["id"]]


def test_clear(engine):
    engine.upsert([dict(d) for d in DOCS])
    engine.clear()
    assert engine.count() == 0
    assert engine.search(SearchQuery(active_only=False)).total == 0
    assert engine.search(SearchQuery(q="札幌")).total == 0
    engine.upsert([dict(YAMADA)])  # usable after clear
    assert ids(engine.search(SearchQuery(q="札幌"))) == [YAMADA["id"]]


def test_concurrent_reads_during_writes(engine):
    engine.upsert([dict(d) for d in DOCS])
    errors: list[BaseException] = []

    def reader():
        try:
            for _ in range(20):
                result = engine.search(SearchQuery(q="支援", limit=5))
                assert result.total >= 1 and len(result.hits) <= 5
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def writer():
        try:
            for i in range(10):
                engine.upsert([expert(2000 + i, f"追加 {i}", bio="並行書き込みで支援")])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=writer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert engine.search(SearchQuery(q="並行書き込み")).total == 10


# -- embedded backend and factory ---------------------------------------------------------------------------


def test_embedded_index_persists_across_reopen(tmp_path):
    engine = make_engine("embedded", data_dir=tmp_path)
    engine.setup()
    engine.upsert([dict(d) for d in DOCS])
    engine.close()
    reopened = make_engine("embedded", data_dir=tmp_path)
    try:
        assert reopened.count() == len(DOCS)
        assert ids(reopened.search(SearchQuery(q="札幌"))) == [YAMADA["id"]]
        reopened.delete([YAMADA["id"]])  # the contentless index still deletes exactly
        assert reopened.search(SearchQuery(q="札幌")).total == 0
    finally:
        reopened.close()


def test_embedded_fts_index_stays_consistent_through_replacements(tmp_path):
    # The FTS index is contentless: every replace/delete must remove exactly the tokens once indexed.
    engine = EmbeddedSearchEngine(tmp_path / "search.sqlite3")
    try:
        engine.upsert([dict(d) for d in DOCS])
        changed = [{**d, "bio": f"{d.get('bio') or ''} 改訂{i}", "skills": ["gcp"]} for i, d in enumerate(DOCS)]
        engine.upsert(changed)
        engine.delete([d["id"] for d in changed[::2]])
        conn = engine._conn()
        conn.execute("INSERT INTO docs_fts(docs_fts, rank) VALUES ('integrity-check', 0)")
        live = {r[0] for r in conn.execute("SELECT rowid FROM docs")}
        remaining = changed[1::2]
        for q in ("改訂", "gcp", "aws", "札幌", "支援", "フォレンジック", "山"):
            assert set(everything(engine, q=q, active_only=False)) == set(
                expected(SearchQuery(q=q, active_only=False), remaining)
            )
            # No stale tokens left behind for replaced or deleted rows (the join above would hide them).
            match = " AND ".join(embedded._fts_term(t) for t in text.query_terms(q))
            assert {r[0] for r in conn.execute("SELECT rowid FROM docs_fts WHERE docs_fts MATCH ?", (match,))} <= live
    finally:
        engine.close()


def test_make_engine_validates_backend(tmp_path):
    assert make_engine("embedded", data_dir=tmp_path).name == "embedded"
    with pytest.raises(ValueError, match="MEILI_URL"):
        make_engine("meilisearch", data_dir=tmp_path, meili_url=None)
    with pytest.raises(ValueError, match="unknown search backend"):
        make_engine("elastic", data_dir=tmp_path)


# == issue 12: facets, more filters, sort, highlights, suggestions, typos, place words, relevance ============

_REGION = {"01": "hokkaido", "02": "tohoku", "03": "tohoku", "04": "tohoku", "07": "tohoku", "11": "kanto"}


def _region(code: str) -> str:
    from tsunagu import reference

    return reference.region_of(code)


def naive_facets(query: SearchQuery, facet: str) -> dict[str, int]:
    """What the facet counts must be: over every document `expected` returns for the query."""
    counts: dict[str, int] = {}
    for doc_id in expected(query):
        doc = BY_ID[doc_id]
        values = {
            "prefecture": doc.get("prefectures") or [],
            "region": {_region(p) for p in doc.get("prefectures") or []},
            "topic": doc.get("topics") or [],
            "skill": doc.get("skills") or [],
            "role": doc.get("dss_roles") or [],
            "kind": [doc["kind"]] if doc.get("kind") else [],
            "onsite": ["true" if doc.get("onsite") is True else "false"],
        }[facet]
        for value in set(values):
            counts[value] = counts.get(value, 0) + 1
    return counts


FACET_CASES = [
    dict(),
    dict(q="支援"),
    dict(prefectures=("13", "27")),
    dict(q="aws", remote=True),
    dict(kind="dx_talent"),
    dict(q="存在しない語"),
]


@pytest.mark.parametrize("kw", FACET_CASES, ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "all")
def test_facet_counts_cover_every_match_not_the_page(loaded, kw):
    names = ("prefecture", "region", "topic", "skill", "role", "kind", "onsite")
    result = loaded.search(SearchQuery(**kw, facets=names, limit=2))
    assert result.total == len(expected(SearchQuery(**kw)))
    for name in names:
        assert result.facets[name] == naive_facets(SearchQuery(**kw), name), name
    # Most frequent first.
    counts = list(result.facets["prefecture"].values())
    assert counts == sorted(counts, reverse=True)


def test_unknown_facet_or_sort_is_refused(loaded):
    with pytest.raises(ValueError):
        loaded.search(SearchQuery(facets=("bio",)))
    with pytest.raises(ValueError):
        loaded.search(SearchQuery(sort="random"))


def test_region_skill_role_filters(loaded):
    tohoku = {
        d["id"]
        for d in DOCS
        if d.get("active") is not False and {"02", "03", "04", "07"} & set(d.get("prefectures") or [])
    }
    assert set(everything(loaded, regions=("tohoku",))) == tohoku and tohoku
    hokkaido_or_tohoku = set(everything(loaded, regions=("tohoku", "hokkaido")))
    assert {YAMADA["id"], YAMAGUCHI["id"]} <= hokkaido_or_tohoku and tohoku <= hokkaido_or_tohoku
    assert set(everything(loaded, skills=("azure",))) == {SATO["id"]}
    assert set(everything(loaded, skills=("python", "isms"))) == {TAKAHASHI["id"], SUZUKI["id"]}
    assert set(everything(loaded, roles=("data_scientist",))) == {TAKAHASHI["id"]}
    assert set(everything(loaded, roles=("business_architect",), prefectures=("13",))) == {KATO["id"]}
    assert loaded.search(SearchQuery(roles=("nobody",))).total == 0
    assert set(everything(loaded, q="支援", regions=("kanto",))) == {
        i
        for i in expected(SearchQuery(q="支援"))
        if any(_region(p) == "kanto" for p in BY_ID[i].get("prefectures") or [])
    }


def test_sort_newest_and_oldest_with_and_without_text(loaded):
    newest = everything(loaded, sort="newest")
    assert newest == expected(SearchQuery())
    oldest = everything(loaded, sort="oldest")
    dated = [i for i in newest if BY_ID[i].get("updated_at")]
    assert [i for i in oldest if BY_ID[i].get("updated_at")][:3] == sorted(dated, key=lambda i: (_ts(BY_ID[i]), i))[:3]
    assert oldest[-1] == WATANABE_MINIMAL["id"]  # no updated_at: last either way
    with_text = everything(loaded, q="支援", sort="newest")
    assert with_text == expected(SearchQuery(q="支援"))


# -- highlights ---------------------------------------------------------------------------------------------


def _highlight_of(engine, q, doc_id, **kw):
    result = engine.search(SearchQuery(q=q, highlight=True, limit=MAX_LIMIT, **kw))
    assert len(result.highlights) == len(result.hits)
    return dict(zip(ids(result), result.highlights, strict=True))[doc_id]


def test_highlights_mark_the_matched_words(loaded):
    marks = _highlight_of(loaded, "ランサム", YAMADA["id"])
    assert "<mark>ランサム</mark>ウェア" in marks["bio"]
    assert "<mark>ランサム</mark>ウェア対策" in marks["topic_labels"]
    assert "name" not in marks
    # Half-width document text is shown in full width, the match marked; katakana query, hiragana reading.
    assert "<mark>セキュリティ</mark>教育" in _highlight_of(loaded, "ｾｷｭﾘﾃｨ", TANAKA["id"])["bio"]
    assert _highlight_of(loaded, "ヤマダ", YAMADA["id"])["name_kana"] == "<mark>やまだ</mark> たろう"
    assert _highlight_of(loaded, "aws", SATO["id"])["bio"].startswith("<mark>AWS</mark>とAzure")
    # Every term marked.
    both = _highlight_of(loaded, "製造業 ランサム", YAMADA["id"])
    assert both["industries"] == "<mark>製造業</mark>" and "<mark>ランサム</mark>" in both["bio"]


def test_highlights_are_safe_html(loaded):
    marks = _highlight_of(loaded, "引用", KOBAYASHI_SYMBOLS["id"])["bio"]
    assert "&quot;<mark>引用</mark>&quot;" in marks
    assert '"' not in marks.replace("<mark>", "").replace("</mark>", "")


def test_highlights_escape_markup_in_documents(engine):
    hostile = expert(500, "<script>alert(1)</script> 攻撃", bio='<img src=x onerror="alert(1)">攻撃者 & <b>太字</b>')
    engine.upsert([hostile])
    marks = engine.search(SearchQuery(q="攻撃", highlight=True)).highlights[0]
    for html in marks.values():
        stripped = html.replace("<mark>", "").replace("</mark>", "")
        assert "<" not in stripped and ">" not in stripped
    assert marks["name"] == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>攻撃</mark>"
    assert "&amp;" in marks["bio"]
    # A mark never spans markup from the document: a query for "<b>" marks the escaped text.
    assert engine.search(SearchQuery(q="<b>", highlight=True)).highlights[0]["bio"].count("<mark>&lt;b&gt;</mark>") == 1


def test_long_fields_are_cut_around_the_first_match(engine):
    bio = "前置き。" * 100 + "フォレンジックの専門家です。" + "後書き。" * 100
    engine.upsert([expert(501, "長文 太郎", bio=bio)])
    snippet = engine.search(SearchQuery(q="フォレンジック", highlight=True)).highlights[0]["bio"]
    assert snippet.startswith("…") and snippet.endswith("…")
    assert "<mark>フォレンジック</mark>" in snippet and len(snippet) < 200


def test_no_highlights_unless_asked(loaded):
    assert loaded.search(SearchQuery(q="札幌")).highlights == []


# -- suggestions ------------------------------------------------------------------------------------------


def _suggested(engine, prefix, **kw):
    return [(s.text, s.kind) for s in engine.suggest(prefix, **kw)]


def test_suggest_names_by_prefix_reading_and_given_name(loaded):
    assert ("山田 太郎", "name") in _suggested(loaded, "山田")
    assert ("山田 太郎", "name") in _suggested(loaded, "やま")  # by reading
    assert ("山田 太郎", "name") in _suggested(loaded, "ヤマダ")  # katakana typed, hiragana reading
    assert ("山田 太郎", "name") in _suggested(loaded, "太郎")  # the given name
    assert ("田中 健太", "name") in _suggested(loaded, "たなか")  # half-width reading in the document
    assert all(
        text.startswith("山") for text, kind in _suggested(loaded, "山") if kind == "name" and "やま" not in text
    )


def test_suggest_skills_and_topics_most_frequent_first(loaded):
    got = loaded.suggest("a")
    assert ("aws", "skill") in [(s.text, s.kind) for s in got]
    assert got[0].text == "aws" and got[0].count == 2 + sum(1 for i in range(12) if i % 4 == 1 and i != 7)
    assert ("フォレンジック", "skill") in _suggested(loaded, "ふぉれ")
    assert ("ランサムウェア対策", "topic") in _suggested(loaded, "ランサム")
    assert _suggested(loaded, "ランサム", kinds=("name",)) == []
    assert [s.kind for s in loaded.suggest("ランサム", kinds=("topic",))] == ["topic"]


def test_suggest_leaves_out_inactive_documents_and_bounds_its_answer(loaded):
    assert _suggested(loaded, "伊藤") == []  # ITO_INACTIVE only
    assert loaded.suggest("") == [] and loaded.suggest("   ") == []
    assert len(loaded.suggest("あ", limit=1000)) <= 20
    assert loaded.suggest("支", limit=0) == []
    assert _suggested(loaded, "存在しない") == []


def test_suggest_follows_replacements_and_deletes(engine):
    engine.upsert([dict(YAMADA)])
    assert ("山田 太郎", "name") in _suggested(engine, "山田")
    engine.upsert([{**YAMADA, "name": "山田 次郎", "name_kana": "やまだ じろう"}])
    assert _suggested(engine, "山田", kinds=("name",)) == [("山田 次郎", "name")]
    engine.delete([YAMADA["id"]])
    assert _suggested(engine, "山田") == []


# -- typo tolerance for Latin words -------------------------------------------------------------------------


def test_latin_typos_find_the_word_meant(loaded):
    assert set(everything(loaded, q="pythn")) == {TAKAHASHI["id"]}
    assert set(everything(loaded, q="Azurre")) == {SATO["id"]}
    assert set(everything(loaded, q="ｐｙｔｈｏｍ")) == {TAKAHASHI["id"]}
    assert set(everything(loaded, q="awss")) == set(expected(SearchQuery(q="aws")))
    assert set(everything(loaded, q="azuer")) == {SATO["id"]}  # two neighbours swapped: one edit
    assert everything(loaded, q="qwertyuiop") == []
    # Typos combine with other terms and filters.
    assert set(everything(loaded, q="pythn 福岡")) == {TAKAHASHI["id"]}
    assert set(everything(loaded, q="awss", prefectures=("13",))) == set(
        expected(SearchQuery(q="aws", prefectures=("13",)))
    )


def test_exact_latin_words_are_never_corrected(loaded):
    assert set(everything(loaded, q="linu")) == set(expected(SearchQuery(q="linu")))
    assert set(everything(loaded, q="linux")) == set(expected(SearchQuery(q="linux")))
    # An exact hit anywhere (even only in an inactive document) means the term is not a typo.
    assert everything(loaded, q="sato") == []


def test_typo_recall_does_not_depend_on_the_page(loaded):
    full = everything(loaded, q="awss")
    assert len(full) > 3
    paged = []
    for offset in range(0, len(full), 2):
        result = loaded.search(SearchQuery(q="awss", limit=2, offset=offset))
        assert result.total == len(full)
        paged += ids(result)
    assert paged == full


def test_typos_are_marked_as_the_word_found(loaded):
    assert _highlight_of(loaded, "pythn", TAKAHASHI["id"])["skills"] == "<mark>python</mark>"


# -- place names as words -------------------------------------------------------------------------------------


def expected_place(term: str, code: str, **kw: Any) -> set[str]:
    """A place word matches the documents serving the prefecture OR containing the word."""
    served = {d["id"] for d in DOCS if code in (d.get("prefectures") or [])}
    in_text = set(expected(SearchQuery(q=term, active_only=False)))
    active = set(expected(SearchQuery(**kw)))
    return (served | in_text) & active


@pytest.mark.parametrize(
    "term,code",
    [
        ("北海道", "01"),
        ("大阪", "27"),
        ("大阪府", "27"),
        ("東京", "13"),
        ("tokyo", "13"),
        ("Osaka", "27"),
        ("京都", "26"),
        ("沖縄", "47"),
    ],
)
def test_a_place_word_finds_the_experts_serving_it(loaded, term, code):
    got = set(everything(loaded, q=term))
    assert got == expected_place(term.lower(), code)
    assert got >= {d["id"] for d in DOCS if code in (d.get("prefectures") or []) and d.get("active") is not False}


def test_place_words_examples(loaded):
    hokkaido = set(everything(loaded, q="北海道"))
    assert {YAMADA["id"], YAMAGUCHI["id"]} <= hokkaido and ITO_INACTIVE["id"] not in hokkaido
    # 大阪: SUZUKI serves 27 (and writes 大阪府), SUZUKI_IN_BIO only serves 27.
    assert {SUZUKI["id"], SUZUKI_IN_BIO["id"]} <= set(everything(loaded, q="大阪"))
    # With another term: the place narrows, the other term ranks.
    assert everything(loaded, q="フォレンジック 京都") == [FORENSIC_ORG["id"], FORENSIC_BIO["id"]]
    assert everything(loaded, q="ランサム 北海道") == [YAMADA["id"]]
    # A number is never a place: "13" is text (no document has it).
    assert everything(loaded, q="13") == expected(SearchQuery(q="13"))
    # A place word is marked where it occurs.
    assert "<mark>北海道</mark>" in _highlight_of(loaded, "北海道", YAMADA["id"])["bio"]


# -- relevance: short fields above long biographies, common words do not bury the right expert -----------------


def test_a_short_field_match_beats_a_word_buried_in_a_long_biography(engine):
    filler = "中小企業の情報セキュリティ対策とクラウド活用、社内教育、規程整備を幅広く支援しています。"
    docs = [
        expert(
            600 + i,
            f"候補 {i}",
            bio=filler * 8 + "過去にフォレンジック調査にも関わった。" + filler * 8,
            prefectures=["13"],
        )
        for i in range(40)
    ]
    right = expert(700, "正解 太郎", skills=["フォレンジック"], bio=filler, prefectures=["13"])
    engine.upsert([*docs, right])
    assert ids(engine.search(SearchQuery(q="フォレンジック", limit=5)))[0] == right["id"]


def test_a_very_common_word_does_not_push_the_right_expert_off_the_first_page(engine):
    common = "セキュリティ"
    crowd = [
        expert(
            800 + i,
            f"多数 {i}",
            skills=[common, "ネットワーク"],
            topic_labels=[f"{common}教育", f"{common}診断"],
            affiliation=f"{common}サービス株式会社",
            bio=(f"{common}の専門家。" * 30) + ("ログ解析も担当。" if i % 3 == 0 else ""),
            prefectures=["13"],
        )
        for i in range(150)
    ]
    right = expert(900, "的中 花子", skills=["ログ解析"], bio=f"{common}監視の経験があります。", prefectures=["13"])
    engine.upsert([*crowd, right])
    first_page = ids(engine.search(SearchQuery(q=f"{common} ログ解析", limit=10)))
    assert first_page[0] == right["id"]
    assert engine.search(SearchQuery(q=f"ログ解析 {common}")).hits[0]["id"] == right["id"]


# -- the broker indexes: requests and hub projects ----------------------------------------------------------------


def request_doc(n: int, title: str, **fields: Any) -> dict[str, Any]:
    doc = {
        "id": _id(3000 + n),
        "title": title,
        "summary": None,
        "prefectures": ["13"],
        "onsite": False,
        "remote": True,
        "topics": [],
        "topic_labels": [],
        "skills": [],
        "industries": [],
        "state": "open",
        "active": True,
        "updated_at": f"2026-0{1 + n % 9}-01T00:00:00+09:00",
    }
    doc.update(fields)
    return doc


@pytest.fixture(params=BACKENDS)
def requests_engine(request, tmp_path):
    if request.param == "embedded":
        eng = make_engine("embedded", data_dir=tmp_path, index="requests")
    else:
        eng = make_engine(
            "meilisearch",
            data_dir=tmp_path,
            meili_url=MEILI_URL,
            meili_key=os.environ.get("MEILI_MASTER_KEY"),
            meili_index=f"contract_requests_{uuid.uuid4().hex[:12]}",
            index="requests",
        )
    eng.setup()
    yield eng
    _dispose(eng)


def test_requests_index_searches_titles_summaries_and_tags(requests_engine):
    a = request_doc(
        1,
        "ランサムウェア被害の初動対応",
        summary="社内PCが暗号化された。",
        topics=["ransomware"],
        topic_labels=["ランサムウェア対策"],
        prefectures=["01"],
        onsite=True,
        state="open",
    )
    b = request_doc(
        2,
        "クラウド移行の相談",
        summary="AWSへの移行とランサムウェア対策の見直し",
        topics=["cloud_security"],
        skills=["aws"],
        prefectures=["13"],
        state="matched",
    )
    c = request_doc(
        3,
        "DX認定の申請",
        summary="申請書類の作成支援",
        prefectures=["27"],
        topics=["dx_nintei"],
        state="open",
        sme_name="株式会社なにわ製作所",
    )
    requests_engine.upsert([a, b, c])
    assert ids(requests_engine.search(SearchQuery(q="ランサム"))) == [a["id"], b["id"]]  # title before summary
    assert ids(requests_engine.search(SearchQuery(q="なにわ"))) == [c["id"]]
    assert ids(requests_engine.search(SearchQuery(states=("open",), sort="newest"))) == [c["id"], a["id"]]
    facets = requests_engine.search(SearchQuery(facets=("state", "prefecture", "region", "onsite"))).facets
    assert facets["state"] == {"open": 2, "matched": 1}
    assert facets["region"] == {"hokkaido": 1, "kanto": 1, "kinki": 1}
    assert facets["onsite"] == {"false": 2, "true": 1}
    assert ids(requests_engine.search(SearchQuery(q="北海道"))) == [a["id"]]  # a place word
    assert ids(requests_engine.search(SearchQuery(q="awss"))) == [b["id"]]  # a typo
    marks = requests_engine.search(SearchQuery(q="申請", highlight=True)).highlights[0]
    assert marks == {"title": "DX認定の<mark>申請</mark>", "summary": "<mark>申請</mark>書類の作成支援"}
    assert requests_engine.suggest("ランサム") == []  # nothing of a request is suggested


def test_make_engine_knows_the_indexes(tmp_path):
    assert make_engine("embedded", data_dir=tmp_path, index="projects").spec.name == "projects"
    with pytest.raises(ValueError, match="unknown search index"):
        make_engine("embedded", data_dir=tmp_path, index="people")
