"""Text normalisation shared by the engines (services/search/engine/text.py). What a query finds is the
engine contract's business (test_engine_contract.py); here: the folding itself and its version guard."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from services.search.engine import SearchQuery, embedded, text
from services.search.engine.embedded import EmbeddedSearchEngine


def test_width_case_and_katakana_fold_to_one_spelling() -> None:
    assert text.normalize("ﾗﾝｻﾑｳｪｱ ＡＷＳ ランサムウェア") == "らんさむうぇあ aws らんさむうぇあ"
    assert text.normalize("ヽヾ ヷ ー") == "ゝゞ ヷ ー"  # iteration marks fold; ヷ and ー have no hiragana twin
    assert text.normalize("a\u200bb\nc") == "a b c"


def test_normalize_many_agrees_with_normalize() -> None:
    texts = ["ﾃﾞｰﾀ分析", "ＡＷＳ", "ヽヾ", "Σσς ΟΔΟΣ", "が", "か\u3099", "\U0001f600", "佐藤"] * 2
    assert text.normalize_many(texts) == [text.normalize(t) for t in texts]


def test_an_index_built_with_other_token_rules_is_rebuilt_on_open(tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite3"
    engine = EmbeddedSearchEngine(path)
    engine.upsert([{"id": "a", "name": "コヽロ"}])
    engine.close()
    with sqlite3.connect(path) as conn:  # as if written by TEXT_VERSION 1, which left ヽ unfolded
        conn.execute("INSERT INTO docs_fts(docs_fts) VALUES ('delete-all')")
        conn.execute(embedded._INSERT_FTS, (1, "こヽろ", "", "", ""))
        conn.execute(f"PRAGMA user_version={embedded.SCHEMA_VERSION * 1000 + 1}")

    reopened = EmbeddedSearchEngine(path)
    reopened.setup()
    assert [hit["id"] for hit in reopened.search(SearchQuery(q="こゝろ")).hits] == ["a"]
    reopened.delete(["a"])  # a delete presents the current tokens: they must match what is indexed
    assert reopened.count() == 0
    reopened.close()
