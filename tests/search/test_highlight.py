"""Highlighted snippets (services/search/engine/highlight.py). What the engines mark is the contract suite's
business; here: the shortcut that finds the matching values of a document with one normalisation gives
exactly what looking at each value alone gives, on awkward text too."""

from __future__ import annotations

import random

from services.search.engine import highlight, text

FIELDS = ("name", "name_kana", "skills", "topic_labels", "affiliation", "bio")
PIECES = [
    "ランサム",
    "ﾗﾝｻﾑ",
    "ＡＷＳ",
    "aws",
    "が",
    "か\u3099",  # か + combining voiced mark: NFKC composes it to が
    "\u3099",  # a combining mark alone, at the start of a value
    "\x00",  # the separator the shortcut joins values with
    "\u200b",
    "\n",
    "<b>",
    "&",
    "札幌",
    "セキュリティ",
    "ｾｷｭﾘﾃｨ",
    " ",
    "Σ",
    "ß",
    "ﬁ",  # NFKC: "fi"
]
MARKS = ["らんさむ", "aws", "が", "札幌", "せきゅりてぃ", "fi", "ss", "σ", "<b>", "ら"]


def reference(doc: dict, fields: tuple[str, ...], marks: list[str]) -> dict[str, str]:
    """Each value on its own, as highlight.highlights did before the shortcut."""
    out: dict[str, str] = {}
    for field in fields:
        value = doc.get(field)
        if isinstance(value, str):
            found = highlight.snippet(value, marks)
            if found:
                out[field] = found
        elif value is not None:
            items = [s for s in (highlight.snippet(v, marks) for v in text.as_list(value)) if s]
            if items:
                out[field] = " / ".join(items)
    return out


def test_the_shortcut_marks_exactly_what_each_value_alone_would() -> None:
    rng = random.Random(3)

    def value() -> str:
        return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))

    for _ in range(3000):
        doc = {
            "name": value(),
            "name_kana": value() if rng.random() < 0.5 else None,
            "skills": [value() for _ in range(rng.randint(0, 4))],
            "topic_labels": value() if rng.random() < 0.2 else [value(), value()],
            "bio": value() * rng.randint(1, 30),
        }
        marks = rng.sample(MARKS, rng.randint(1, 3))
        assert highlight.highlights(doc, FIELDS, marks) == reference(doc, FIELDS, marks), (doc, marks)


def test_snippets_are_escaped_and_marked() -> None:
    doc = {"name": "<script>ﾗﾝｻﾑ</script>", "skills": ["AWS", "linux", "ＡＷＳ運用"]}
    assert highlight.highlights(doc, FIELDS, ["らんさむ", "aws"]) == {
        "name": "&lt;script&gt;<mark>ランサム</mark>&lt;/script&gt;",
        "skills": "<mark>AWS</mark> / <mark>AWS</mark>運用",
    }


def test_kept_highlights_follow_the_document_and_are_not_shared() -> None:
    """Highlights are kept per (searched values, marks): the same page again gets the same snippets, a changed
    document gets its own, and a caller changing its answer changes nobody else's."""
    doc = {"name": "山田", "bio": "ランサムウェア対策の支援"}
    first = highlight.highlights(doc, FIELDS, ["らんさむ"])
    assert first == {"bio": "<mark>ランサム</mark>ウェア対策の支援"}
    first["bio"] = "changed by a caller"
    assert highlight.highlights(dict(doc), FIELDS, ["らんさむ"]) == {"bio": "<mark>ランサム</mark>ウェア対策の支援"}
    changed = {**doc, "bio": "クラウドとランサム"}
    assert highlight.highlights(changed, FIELDS, ["らんさむ"]) == {"bio": "クラウドと<mark>ランサム</mark>"}
    assert highlight.highlights({**doc, "skills": [{"odd": "shape"}]}, FIELDS, ["らんさむ"])["bio"]  # not a key
