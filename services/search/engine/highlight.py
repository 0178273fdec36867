"""Highlighted snippets, the same for every backend: safe HTML, the matched words marked.

The stored field value is shown after NFKC (so half-width ｾｷｭﾘﾃｨ shows as セキュリティ); matching uses the
search normalisation (lower case, katakana folded to hiragana), which maps that text character for
character, so a match found in the normalised text marks the same characters of the shown text. Every
piece of text is escaped first (html.escape), then the matches are wrapped in ``<mark>``: no markup from a
document can reach the page. A long field is cut to a window around its first match.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jaconv

from . import text

SNIPPET_CHARS = 120  # the window shown around the first match of a long field
_MARK_OPEN, _MARK_CLOSE = "<mark>", "</mark>"
_SEP = "\x00"  # joins a document's values for one normalisation (NFKC and the fold leave it alone)


def _shown(value: str) -> str:
    return text._NON_TEXT.sub(" ", unicodedata.normalize("NFKC", value))


class _FoldTable(dict):
    """code point -> its folded character, computed once per character and then looked up by str.translate
    (folding character by character in Python cost most of a highlighted query)."""

    def __missing__(self, cp: int) -> str:
        ch = chr(cp)
        folded = jaconv.kata2hira(ch.lower())
        value = folded if len(folded) == 1 else ch
        self[cp] = value
        return value


_FOLD = _FoldTable()


def _fold(shown: str) -> str:
    """The search normalisation of already NFKC'd text, one character for one (what the marks index)."""
    return shown.translate(_FOLD)


def _spans(folded: str, marks: list[str]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for mark in marks:
        if not mark:
            continue
        start = folded.find(mark)
        while start != -1:
            spans.append((start, start + len(mark)))
            start = folded.find(mark, start + 1)
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(b, merged[-1][1]))
        else:
            merged.append((a, b))
    return merged


def snippet(value: str, marks: list[str], *, width: int = SNIPPET_CHARS) -> str | None:
    """The value as safe HTML with every occurrence of the (normalised) marks in <mark>, or None when
    nothing in it matches."""
    shown = _shown(value)
    spans = _spans(_fold(shown), marks)
    if not spans:
        return None
    start, end = 0, len(shown)
    if len(shown) > width:
        first = spans[0][0]
        start = max(0, first - width // 3)
        end = min(len(shown), start + width)
    out = ["…" if start > 0 else ""]
    pos = start
    for span_start, span_end in spans:
        if span_end <= start or span_start >= end:
            continue
        a, b = max(span_start, start), min(span_end, end)
        out.append(html.escape(shown[pos:a]))
        out.append(_MARK_OPEN + html.escape(shown[a:b]) + _MARK_CLOSE)
        pos = b
    out.append(html.escape(shown[pos:end]))
    out.append("…" if end < len(shown) else "")
    return "".join(out)


HIGHLIGHT_CACHE_SIZE = 4096  # documents' highlights kept (see ``highlights``)


def highlights(doc: Mapping[str, Any], fields: tuple[str, ...], marks: list[str]) -> dict[str, str]:
    """field -> snippet for every searched field of the document that matches a mark (list fields: the
    matching items joined with " / ").

    Kept for the last ``HIGHLIGHT_CACHE_SIZE`` (searched values, marks): people page through the same few
    searches, and highlighting a page was a quarter of the search service's CPU under the load mix (py-spy).
    The key is the searched values themselves, so a changed document never gets another's snippets."""
    kept_marks = tuple(m for m in marks if m)
    if not kept_marks:
        return {}
    values = tuple(tuple(v) if isinstance(v, list) else v for v in (doc.get(field) for field in fields))
    try:
        return dict(_highlights(fields, values, kept_marks))  # a copy: the kept answer is shared
    except TypeError:  # a value that cannot be a key (no searched field has one): highlighted, not kept
        return _highlights.__wrapped__(fields, values, kept_marks)


@lru_cache(maxsize=HIGHLIGHT_CACHE_SIZE)
def _highlights(fields: tuple[str, ...], values: tuple[Any, ...], marks: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    items: list[tuple[str, str]] = []
    for field, value in zip(fields, values, strict=True):
        if isinstance(value, str):
            items.append((field, value))
        elif value is not None:
            items.extend((field, v) for v in text.as_list(value))
    # Most values match no mark: find those that do with one normalisation of the whole document rather
    # than one per value (that was most of the cost of a highlighted page). The fold maps character for
    # character and a mark holds no control character or space, so a value matches here exactly when
    # snippet() would find a match in it.
    folded = _fold(unicodedata.normalize("NFKC", _SEP.join(v for _, v in items))).split(_SEP)
    if len(folded) != len(items):  # a value holding the separator itself: look at each value alone
        folded = [_fold(_shown(v)) for _, v in items]
    snippets: dict[str, list[str]] = {}
    for (field, value), value_folded in zip(items, folded, strict=True):
        if any(m in value_folded for m in marks):
            found = snippet(value, list(marks))
            if found:
                snippets.setdefault(field, []).append(found)
    for field, value in zip(fields, values, strict=True):
        if field in snippets:
            out[field] = snippets[field][0] if isinstance(value, str) else " / ".join(snippets[field])
    return out
