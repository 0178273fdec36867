"""Search engine benchmark: 30,000 synthetic public expert profiles.

Measures, per backend (embedded always; Meilisearch too when MEILI_URL is set, MEILI_MASTER_KEY optional):
bulk upsert time, single-document upsert latency, and p50/p95 latency of ~200 mixed queries (text only,
filters only, text + filters). Issue 12 adds, in the same run: the same queries with facet counts and
highlights, Latin typos, place words, prefix suggestions, and a floor measured beside them (reading one
document by id through the same engine: what any call costs); and the requests index at 5,000 open
requests (build, queries with facets). Each issue-12 figure has the searching thread's CPU time beside the
wall time (``cpu_p95_ms``: what a query costs whatever else a shared machine runs), and ``reopen`` times
opening the built index again as the service does at start (the embedded engine loads its in-memory columns
there). Prints a table and writes bench/results/search.json (~2-4 minutes on a quiet machine).

    python bench/bench_search.py [--docs 30000] [--queries 200] [--seed 7]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.profiles.demo import GIVEN_NAMES, SURNAMES  # noqa: E402
from services.search.engine import SearchEngine, SearchQuery, make_engine  # noqa: E402

try:
    from tqdm import tqdm
except ImportError:  # progress bars are a nicety only
    tqdm = None

REFERENCE = ROOT / "tsunagu" / "reference" / "data"
RESULTS = ROOT / "bench" / "results" / "search.json"

# The same name lists as the demo data, so search is measured on the names people will type.
GIVEN = GIVEN_NAMES
SKILLS = [
    "aws",
    "azure",
    "gcp",
    "microsoft 365",
    "active directory",
    "linux",
    "windows server",
    "python",
    "ネットワーク",
    "ファイアウォール",
    "utm",
    "vpn",
    "edr",
    "siem",
    "フォレンジック",
    "脆弱性診断",
    "ペネトレーションテスト",
    "isms",
    "pマーク",
    "ゼロトラスト",
    "無線lan",
    "バックアップ",
    "kintone",
    "rpa",
    "データ分析",
    "機械学習",
    "sql",
    "excel vba",
    "webアプリ開発",
    "iot",
]
INDUSTRIES = [
    "製造業",
    "建設業",
    "小売業",
    "卸売業",
    "医療・福祉",
    "運輸業",
    "宿泊業",
    "飲食サービス業",
    "情報通信業",
    "金融・保険業",
    "不動産業",
    "農業",
    "教育・学習支援",
    "士業",
    "自治体",
]
SERVICES = [
    "インシデント初動",
    "脆弱性診断",
    "セキュリティ教育",
    "規程策定支援",
    "リスクアセスメント",
    "相談対応",
    "SECURITY ACTION宣言支援",
    "SCS評価制度対応",
    "クラウド移行支援",
    "DX戦略立案",
    "業務改善",
    "データ活用支援",
]
DSS_ROLES = ["business_architect", "designer", "data_scientist", "software_engineer", "cybersecurity"]
ORG_FORMS = [
    "株式会社{c}セキュリティ",
    "{c}情報システム合同会社",
    "{c}ITサポート株式会社",
    "フリーランス",
    "{c}商工会議所",
    "{c}デジタル研究所",
    "個人事務所",
]
BIO_TEMPLATES = [
    "{pref}を中心に{label}を支援しています。{industry}の現場経験が長く、{skill}に詳しいです。",
    "{city}で{industry}向けに{label}のご相談を受けています。{service}もお任せください。",
    "元{industry}の情報システム担当。{label}と{label2}が得意です。{skill}の設計・運用経験あり。",
    "中小企業の{label}を、経営者の目線で分かりやすく説明します。{pref}内は訪問可能、全国オンライン対応。",
]

# Queries users really type: topic words, places, skills, names, full-width and half-width forms, 1-2 chars.
TEXT_QUERIES = [
    "ランサム",
    "ランサムウェア",
    "インシデント",
    "初動",
    "クラウド",
    "aws",
    "ＡＷＳ",
    "Azure",
    "ﾗﾝｻﾑ",
    "脆弱性",
    "標的型",
    "バックアップ",
    "製造業",
    "医療",
    "札幌",
    "福岡",
    "横浜",
    "大阪",
    "港",
    "教育",
    "規程",
    "SECURITY ACTION",
    "SCS",
    "DX認定",
    "データ",
    "rpa",
    "kintone",
    "ゼロトラスト",
    "佐藤",
    "やまだ",
    "タナカ",
    "山",
    "製造業 クラウド",
    "ランサム 製造業",
    "aws 初動",
    "フォレンジック",
    "お助け隊",
    "テレワーク",
    "内部不正",
    "ネットワーク 無線",
    "DX 戦略",
    "需要予測",
]


def load_reference() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    with open(REFERENCE / "prefectures.csv", encoding="utf-8") as f:
        prefectures = list(csv.DictReader(f))
    with open(REFERENCE / "topics.csv", encoding="utf-8") as f:
        topics = list(csv.DictReader(f))
    return prefectures, topics


def make_docs(n: int, rng: random.Random) -> list[dict[str, Any]]:
    prefectures, topics = load_reference()
    codes = [p["code"] for p in prefectures]
    # Experts live where the companies are: weight prefectures by number of corporations.
    weights = [int(p["corporations"]) for p in prefectures]
    names = {p["code"]: p["name"] for p in prefectures}
    security = [t for t in topics if t["area"] == "security"]
    dx = [t for t in topics if t["area"] == "dx"]
    now = datetime(2025, 6, 1, tzinfo=UTC)
    docs = []
    for _i in range(n):
        kind = "sekisupe" if rng.random() < 0.75 else "dx_talent"
        surname, s_kana = rng.choice(SURNAMES)
        given, g_kana = rng.choice(GIVEN)
        home = rng.choices(codes, weights)[0]
        prefs = {home} | {rng.choice(codes) for _ in range(rng.choice([0, 0, 0, 1, 2]))}
        pool = security if kind == "sekisupe" else dx + security[:6]
        chosen = rng.sample(pool, rng.randint(1, 5))
        pref_name = names[home]
        city = pref_name.rstrip("都府県") if pref_name != "北海道" else rng.choice(["札幌", "旭川", "函館"])
        label, label2 = chosen[0]["label_ja"], chosen[-1]["label_ja"]
        doc: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "kind": kind,
            "name": f"{surname} {given}",
            "name_kana": f"{s_kana} {g_kana}" if rng.random() < 0.8 else None,
            "registration_number": f"{rng.randint(1, 30000):06d}" if kind == "sekisupe" else None,
            "affiliation": rng.choice(ORG_FORMS).format(c=city) if rng.random() < 0.85 else None,
            "bio": " ".join(
                rng.choice(BIO_TEMPLATES).format(
                    pref=pref_name,
                    city=city,
                    label=label,
                    label2=label2,
                    industry=rng.choice(INDUSTRIES),
                    skill=rng.choice(SKILLS),
                    service=rng.choice(SERVICES),
                )
                for _ in range(rng.randint(1, 3))
            ),
            "prefectures": sorted(prefs),
            "onsite": rng.random() < 0.6,
            "remote": rng.random() < 0.8,
            "topics": [t["id"] for t in chosen],
            "topic_labels": [t["label_ja"] for t in chosen],
            "skills": rng.sample(SKILLS, rng.randint(1, 6)),
            "industries": rng.sample(INDUSTRIES, rng.randint(0, 3)),
            "services": rng.sample(SERVICES, rng.randint(0, 3)),
            "dss_roles": rng.sample(DSS_ROLES, rng.randint(1, 2)) if kind == "dx_talent" else ["cybersecurity"],
            "active": rng.random() < 0.9,
            "updated_at": (now - timedelta(seconds=rng.randint(0, 730 * 86400))).isoformat(),
        }
        # Experts hide fields: drop a few keys at random.
        for key in ("bio", "affiliation", "industries", "services"):
            if rng.random() < 0.05:
                del doc[key]
        docs.append(doc)
    return docs


def make_queries(n: int, rng: random.Random) -> list[tuple[str, SearchQuery]]:
    prefectures, topics = load_reference()
    codes = [p["code"] for p in prefectures]
    topic_ids = [t["id"] for t in topics]

    def filters() -> dict[str, Any]:
        f: dict[str, Any] = {"prefectures": tuple(rng.sample(codes, rng.choice([1, 1, 2, 3])))}
        if rng.random() < 0.6:
            f["topics"] = tuple(rng.sample(topic_ids, rng.choice([1, 2, 3])))
        if rng.random() < 0.4:
            f["kind"] = rng.choice(["sekisupe", "dx_talent"])
        if rng.random() < 0.3:
            f["remote"] = True
        if rng.random() < 0.2:
            f["onsite"] = True
        return f

    queries = []
    for i in range(n):
        category = ("text", "filters", "text+filters")[i % 3]
        page = {"limit": 20, "offset": rng.choice([0, 0, 0, 20, 40])}
        if category == "text":
            q = SearchQuery(q=rng.choice(TEXT_QUERIES), **page)
        elif category == "filters":
            q = SearchQuery(**filters(), **page)
        else:
            q = SearchQuery(q=rng.choice(TEXT_QUERIES), **filters(), **page)
        queries.append((category, q))
    return queries


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summarise(ms: list[float], cpu: list[float] | None = None) -> dict[str, float]:
    out = {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p95_ms": round(percentile(ms, 95), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }
    if cpu:
        # CPU time of the searching thread: what a query costs whatever else the machine runs (the wall
        # figures above are the ones that count on a quiet machine).
        out |= {"cpu_p50_ms": round(statistics.median(cpu), 3), "cpu_p95_ms": round(percentile(cpu, 95), 3)}
    return out


def progress(iterable, **kw):
    return tqdm(iterable, **kw) if tqdm and sys.stderr.isatty() else iterable


def run_backend(engine: SearchEngine, docs, queries, batch: int) -> dict[str, Any]:
    engine.setup()
    engine.clear()
    started = time.perf_counter()
    for start in progress(range(0, len(docs), batch), desc=f"{engine.name} upsert", unit="batch"):
        engine.upsert(docs[start : start + batch])
    bulk_s = time.perf_counter() - started
    assert engine.count() == len(docs), (engine.count(), len(docs))

    # Event-driven updates arrive one expert at a time.
    single = []
    for doc in docs[:50]:
        t0 = time.perf_counter()
        engine.upsert([{**doc, "updated_at": datetime.now(UTC).isoformat()}])
        single.append((time.perf_counter() - t0) * 1000)

    for _, q in queries[:20]:  # warm caches
        engine.search(q)
    by_category: dict[str, list[float]] = {}
    totals: dict[str, list[int]] = {}
    for category, q in progress(queries, desc=f"{engine.name} queries", unit="q"):
        t0 = time.perf_counter()
        result = engine.search(q)
        by_category.setdefault(category, []).append((time.perf_counter() - t0) * 1000)
        totals.setdefault(category, []).append(result.total)
    all_ms = [v for values in by_category.values() for v in values]
    return {
        "docs": len(docs),
        "bulk_upsert_s": round(bulk_s, 3),
        "bulk_upsert_docs_per_s": round(len(docs) / bulk_s),
        "batch_size": batch,
        "single_upsert": summarise(single),
        "queries": {
            "all": summarise(all_ms),
            **{
                c: {**summarise(v), "median_total_hits": int(statistics.median(totals[c]))}
                for c, v in by_category.items()
            },
        },
    }


def _typo(word: str, rng: random.Random) -> str:
    """A word with two neighbouring letters swapped (the commonest typo)."""
    i = rng.randrange(1, len(word) - 1)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


PLACE_QUERIES = ["東京", "大阪", "北海道", "福岡 ランサム", "京都 aws", "沖縄", "tokyo", "愛知県 支援", "宮城 クラウド"]
FACETS = ("prefecture", "region", "topic", "kind", "onsite")


def run_issue12(engine: SearchEngine, docs, queries, rng: random.Random) -> dict[str, Any]:
    """Facets, highlights, typos, place words and suggestions, against a floor measured in the same run."""

    def timed(calls) -> tuple[list[float], list[float]]:
        wall, cpu = [], []
        for call in calls:
            t0, c0 = time.perf_counter(), time.thread_time()
            call()
            wall.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.thread_time() - c0) * 1000)
        return wall, cpu

    ids = [d["id"] for d in rng.sample(docs, 200)]
    floor = timed([lambda i=i: engine.get(i) for i in ids])
    plain = timed([lambda q=q: engine.search(q) for _, q in queries])
    faceted = timed([lambda q=q: engine.search(replace(q, facets=FACETS, highlight=True)) for _, q in queries])
    latin = sorted({w for w in SKILLS if w.isascii() and len(w) >= 5 and " " not in w})
    typo_terms = [_typo(rng.choice(latin), rng) for _ in range(100)]
    typo_hits = []
    typos: tuple[list[float], list[float]] = ([], [])
    for term in typo_terms:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = engine.search(SearchQuery(q=term, facets=FACETS, highlight=True))
        typos[0].append((time.perf_counter() - t0) * 1000)
        typos[1].append((time.thread_time() - c0) * 1000)
        typo_hits.append(result.total)
    places = timed(
        [lambda q=q: engine.search(SearchQuery(q=q, facets=FACETS, highlight=True)) for q in PLACE_QUERIES * 10]
    )
    prefixes = []
    for _ in range(300):
        kind = rng.random()
        if kind < 0.5:
            surname, kana = rng.choice(SURNAMES)
            word = surname if rng.random() < 0.5 else kana
        elif kind < 0.8:
            word = rng.choice(SKILLS)
        else:
            word = rng.choice(["ランサムウェア", "クラウド", "インシデント", "セキュリティ", "データ", "DX"])
        prefixes.append(word[: rng.choice([1, 2, 2, 3])])
    suggest = timed([lambda p=p: engine.suggest(p) for p in prefixes])
    return {
        "floor_get_by_id": summarise(*floor),
        "queries_plain": summarise(*plain),
        "queries_with_facets_and_highlights": summarise(*faceted),
        "typo_queries": {
            **summarise(*typos),
            "share_with_hits": round(sum(1 for t in typo_hits if t) / len(typo_hits), 3),
        },
        "place_queries": summarise(*places),
        "suggest": summarise(*suggest),
    }


def memory_load(data_dir: Path) -> dict[str, float]:
    """Opening the built index again, as the search service does at start: the embedded engine loads its
    in-memory columns (filters, order, facets) once there, not on the first query."""
    t0 = time.perf_counter()
    engine = make_engine("embedded", data_dir=data_dir)
    engine.setup()
    first = time.perf_counter()
    engine.search(SearchQuery(q="クラウド", facets=FACETS, highlight=True))
    done = time.perf_counter()
    engine.close()
    return {"open_and_load_s": round(first - t0, 3), "first_query_ms": round((done - first) * 1000, 3)}


def make_requests(n: int, rng: random.Random) -> list[dict[str, Any]]:
    prefectures, topics = load_reference()
    codes = [p["code"] for p in prefectures]
    out = []
    for i in range(n):
        chosen = rng.sample(topics, rng.choice([1, 2]))
        out.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "title": f"{chosen[0]['label_ja'][:30]}の相談",
                "summary": "".join(rng.choice(TEXT_QUERIES) + "について。" for _ in range(8)),
                "prefectures": [rng.choice(codes)],
                "onsite": rng.random() < 0.6,
                "remote": rng.random() < 0.7,
                "topics": [t["id"] for t in chosen],
                "topic_labels": [t["label_ja"] for t in chosen],
                "skills": rng.sample(SKILLS, 2),
                "state": rng.choice(["open", "open", "open", "matched", "completed", "cancelled"]),
                "active": True,
                "updated_at": (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)).isoformat(),
            }
        )
    return out


def run_requests(engine: SearchEngine, n: int, rng: random.Random) -> dict[str, Any]:
    """The requests index at ``n`` requests: build time, and a broker's queries (own prefectures, facets)."""
    requests = make_requests(n, rng)
    engine.setup()
    t0 = time.perf_counter()
    engine.upsert(requests)
    build_s = time.perf_counter() - t0
    prefectures, _ = load_reference()
    codes = [p["code"] for p in prefectures]
    ms = []
    for _ in range(200):
        scope = tuple(rng.sample(codes, rng.choice([1, 2, 5])))
        q = rng.choice(["", "", *TEXT_QUERIES])
        query = SearchQuery(q=q, prefectures=scope, facets=("state", "topic", "region"), highlight=True)
        t1 = time.perf_counter()
        engine.search(query)
        ms.append((time.perf_counter() - t1) * 1000)
    return {"docs": n, "build_s": round(build_s, 3), "queries_with_facets": summarise(ms)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=30_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    t0 = time.perf_counter()
    docs = make_docs(args.docs, rng)
    queries = make_queries(args.queries, rng)
    print(f"generated {len(docs)} docs and {len(queries)} queries in {time.perf_counter() - t0:.1f} s")

    results: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            # The machine is shared: a high load average means noisy figures.
            "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "backends": {},
    }
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        # Every query reads its full-text matches (no kept matches): the figures are the engine's work per query,
        # not how often the mix repeats itself. The service keeps the matches of repeated queries
        # (embedded._MatchCache; bench_load.py measures the service as deployed).
        engine = make_engine("embedded", data_dir=Path(tmp), match_cache_size=0)
        try:
            results["backends"]["embedded"] = run_backend(engine, docs, queries, batch=args.docs)
            results["backends"]["embedded"]["file_mb"] = round(
                sum(p.stat().st_size for p in Path(tmp).iterdir()) / 1e6, 1
            )
            results["backends"]["embedded"]["issue12"] = run_issue12(engine, docs, queries, rng)
        finally:
            engine.close()
        results["backends"]["embedded"]["reopen"] = memory_load(Path(tmp))
        requests_engine = make_engine("embedded", data_dir=Path(tmp), index="requests", match_cache_size=0)
        try:
            results["backends"]["embedded"]["requests_index"] = run_requests(requests_engine, args.requests, rng)
        finally:
            requests_engine.close()

    meili_url = os.environ.get("MEILI_URL")
    if meili_url:
        index = f"bench_{uuid.uuid4().hex[:8]}"
        engine = make_engine(
            "meilisearch",
            data_dir=Path("."),
            meili_url=meili_url,
            meili_key=os.environ.get("MEILI_MASTER_KEY"),
            meili_index=index,
        )
        try:
            results["backends"]["meilisearch"] = run_backend(engine, docs, queries, batch=1000)
            results["backends"]["meilisearch"]["issue12"] = run_issue12(engine, docs, queries, rng)
        finally:
            engine.drop_index()  # type: ignore[attr-defined]
    else:
        results["backends"]["meilisearch"] = {"skipped": "MEILI_URL not set"}

    for name, r in results["backends"].items():
        if "skipped" in r:
            print(f"\n[{name}] skipped: {r['skipped']}")
            continue
        print(
            f"\n[{name}] {r['docs']} docs: bulk upsert {r['bulk_upsert_s']} s ({r['bulk_upsert_docs_per_s']}/s),"
            f" single upsert p50 {r['single_upsert']['p50_ms']} ms"
        )
        print(f"  {'queries':<14}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
        for cat, s in r["queries"].items():
            print(f"  {cat:<14}{s['n']:>5}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['max_ms']:>10}")
        for cat, s in r.get("issue12", {}).items():
            print(
                f"  {cat:<36}{s['n']:>5}{s['p50_ms']:>10}{s['p95_ms']:>10}{s['max_ms']:>10}"
                f"   cpu p95 {s.get('cpu_p95_ms', '-')}"
            )
        if "requests_index" in r:
            ri = r["requests_index"]
            s = ri["queries_with_facets"]
            print(
                f"  requests index: {ri['docs']} built in {ri['build_s']} s; p50 {s['p50_ms']} ms, p95 {s['p95_ms']} ms"
            )

    results["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"\nload average: {results['machine']['load_avg_at_start']} at start, "
        f"{results['machine']['load_avg_at_end']} at end (2 CPUs, shared)"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
