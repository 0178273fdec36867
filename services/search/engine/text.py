"""Text normalisation and n-gram streams shared by every search backend.

Both the documents and the queries go through :func:`normalize`, so matching never depends on how a user typed
a word: full-width "ＡＷＳ" equals "aws", half-width "ﾗﾝｻﾑ" equals "らんさむ", and katakana equals hiragana
("ヤマダ" finds "やまだ").

Japanese has no spaces between words, so the engines match a query term as a *substring* of the normalised
text. Both do it the same way: the text is indexed as a stream with one token per character position, the
bigram starting there ("札幌市" -> "札幌", "幌市", "市"; the last character of a run stands alone). Then

- a term of 2+ characters is the phrase of its overlapping bigrams ("札幌市" -> "札幌 幌市"): consecutive
  positions, so exactly the texts that contain the term;
- a 1-character term is a prefix match on the tokens (every occurrence of a character starts a token).

This keeps every term length indexed, including the 1-2 character ones that are common in Japanese ("札幌",
"佐藤", "港").
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import jaconv
import numpy as np

# Bump when normalize() or the token streams change: indexes built with another version must be rebuilt.
# 2: katakana folded by jaconv.kata2hira, which also folds the iteration marks ヽ ヾ to ゝ ゞ.
TEXT_VERSION = 2

# Control, format and line/paragraph separator characters (which NFKC leaves alone) become plain spaces, so
# after normalize() the only whitespace left is " ". Lone surrogates (invalid, cannot be stored) too.
_NON_TEXT = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u1680\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)

# Guards against abusive queries: terms beyond these limits add cost but no meaning.
MAX_TERMS = 8
MAX_TERM_CHARS = 64

# Searchable text, grouped by weight (most important first). Every backend ranks a match in an earlier group
# above a match in a later one.
FIELD_GROUPS: dict[str, tuple[str, ...]] = {
    "name": ("name", "name_kana", "registration_number"),
    "tags": ("topic_labels", "skills", "services", "industries"),
    "org": ("affiliation",),
    "bio": ("bio",),
}


def normalize(text: str) -> str:
    """NFKC, lowercase, katakana folded to hiragana, control/format characters turned into spaces.

    NFKC comes first: it turns half-width katakana ("ﾗﾝｻﾑ") into full-width, which jaconv.kata2hira then folds
    ("らんさむ"); ヷ-ヺ and ー have no hiragana twin and stay. For many texts at once (indexing),
    normalize_many() gives the same result much faster.
    """
    return jaconv.kata2hira(_NON_TEXT.sub(" ", unicodedata.normalize("NFKC", text)).lower())


def query_terms(q: str | None) -> list[str]:
    """Split a free-text query into normalised, de-duplicated terms (ANDed by the engines)."""
    if not q:
        return []
    seen: dict[str, None] = {}
    for term in normalize(q).split(" "):
        if term:
            seen.setdefault(term[:MAX_TERM_CHARS], None)
            if len(seen) >= MAX_TERMS:
                break
    return list(seen)


def term_bigrams(term: str) -> list[str]:
    """The overlapping bigrams of a 2+ character term ("ランサム" -> ["ラン", "ンサ", "サム"])."""
    return [term[i : i + 2] for i in range(len(term) - 1)]


def as_list(value: Any) -> list[str]:
    """A field that should be a list of strings, tolerating None, a bare string or other scalars."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        return [str(v) for v in value if v is not None and str(v) != ""]
    return [str(value)]


def _raw_group_texts(doc: Mapping[str, Any], groups: Mapping[str, tuple[str, ...]] | None = None) -> list[str]:
    """The searchable fields of a document, not yet normalised, one string per field group.

    List items and fields are joined with a space: query terms never contain one, so a term cannot match
    across two items ("aws" + "sec" is not "awssec").
    """
    out: list[str] = []
    for fields in (groups or FIELD_GROUPS).values():
        parts: list[str] = []
        for field in fields:
            value = doc.get(field)
            if value is None or value == "":
                continue
            if isinstance(value, str):
                parts.append(value)
            else:
                parts.extend(as_list(value))
        out.append(" ".join(parts))
    return out


def group_texts(doc: Mapping[str, Any], groups: Mapping[str, tuple[str, ...]] | None = None) -> dict[str, str]:
    """The normalised searchable text of a document, one string per field group (name, tags, org, bio)."""
    groups = groups or FIELD_GROUPS
    return dict(zip(groups, normalize_many(_raw_group_texts(doc, groups)), strict=False))


def doc_texts(docs: list[Mapping[str, Any]], groups: Mapping[str, tuple[str, ...]] | None = None) -> list[list[str]]:
    """group_texts for a batch of documents (as lists in the groups' order), normalised in one pass."""
    groups = groups or FIELD_GROUPS
    flat = normalize_many([t for doc in docs for t in _raw_group_texts(doc, groups)])
    g = len(groups)
    return [flat[i * g : (i + 1) * g] for i in range(len(docs))]


def doc_streams(
    docs: list[Mapping[str, Any]], *, encoded: bool = False, groups: Mapping[str, tuple[str, ...]] | None = None
) -> list[list[str]]:
    """For each document, the token stream (see :func:`bigram_streams`) of each field group, in order."""
    return streams_of(doc_texts(docs, groups), encoded=encoded)


def streams_of(texts: list[list[str]], *, encoded: bool = False) -> list[list[str]]:
    """The token streams of documents' group texts (as doc_texts gives them), in one vectorised pass."""
    if not texts:
        return []
    g = len(texts[0])
    streams = bigram_streams([t for group in texts for t in group], encoded=encoded)
    return [streams[i * g : (i + 1) * g] for i in range(len(texts))]


@functools.cache
def _bmp_tables() -> tuple[np.ndarray, np.ndarray]:
    """Per BMP code point: what normalize() makes of it alone, and whether it may depend on its neighbours.

    A character "depends on its neighbours" when NFKC may compose or reorder it with the previous one (it
    combines, is the second half of a canonical composition, or its decomposition starts with such a
    character), when it normalises to several characters, or when lowercasing is contextual (Greek final
    sigma). A text with none of those normalises character by character, which numpy does for a whole batch
    at once. Built once, on first use (~0.2 s).
    """
    size = 0x10000
    second: set[int] = set()  # second halves of canonical compositions (NFD of precomposed characters)
    for cp in range(size):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        nfd = unicodedata.normalize("NFD", chr(cp))
        second.update(ord(ch) for ch in nfd[1:])
    table = np.arange(size, dtype=np.uint32)
    contextual = np.zeros(size, dtype=bool)
    for cp in range(size):
        ch = chr(cp)
        if 0xD800 <= cp <= 0xDFFF:
            table[cp] = 0x20  # lone surrogates: not text
            continue
        nfkd = unicodedata.normalize("NFKD", ch)
        # Only the first character of the decomposition can compose with the previous character; a mark that
        # follows this one is itself flagged.
        if nfkd and (unicodedata.combining(nfkd[0]) or ord(nfkd[0]) in second):
            contextual[cp] = True
            continue
        out = normalize(ch)
        if len(out) != 1 or "\u03a3" in unicodedata.normalize("NFKC", ch):
            contextual[cp] = True
            continue
        table[cp] = ord(out)
    return table, contextual


def normalize_many(texts: list[str]) -> list[str]:
    """[normalize(t) for t in texts], vectorised: a bulk load normalises ~10 million characters.

    Texts containing a character that needs context (see _bmp_tables) or lies outside the BMP go through
    normalize() itself; the rest are mapped code point by code point.
    """
    if len(texts) < 8:
        return [normalize(t) for t in texts]
    table, contextual = _bmp_tables()
    joined = "".join(texts)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    outside = cps > 0xFFFF
    low = np.where(outside, 0, cps)
    needs_context = outside | contextual[low]
    mapped = table[low].tobytes().decode("utf-32-le")
    ends = np.cumsum([len(t) for t in texts])
    # Per text: does it contain any character that needs context? (prefix sums over the flags)
    flagged = np.concatenate(([0], np.cumsum(needs_context)))
    starts = ends - np.array([len(t) for t in texts])
    dirty = flagged[ends] - flagged[starts] > 0
    return [
        normalize(t) if d else mapped[a:b]
        for t, d, a, b in zip(texts, dirty.tolist(), starts.tolist(), ends.tolist(), strict=False)
    ]


# Each code point is spelled as 4 letters a-z (26**4 = 456,976 covers every assigned character up to
# U+6F90F); used where a backend's own tokenizer must not re-segment the tokens (Meilisearch).
_ENC_BASE = np.array([26**3, 26**2, 26, 1], dtype=np.uint32)
_ENC_MAX = 26**4 - 1


def bigram_streams(texts: list[str], *, encoded: bool = False) -> list[str]:
    """For each normalised text, its token stream: per character, the bigram starting there, space-separated.

    Spaces separate runs; the last character of a run is a token of its own. With ``encoded`` each character
    is spelled with 4 ASCII letters, so a bigram is an 8-letter word and a lone character a 4-letter word.
    Vectorised over the whole batch (a bulk load has millions of characters).
    """
    if not texts:
        return []
    # NUL separates the texts of the batch; normalize() guarantees they contain none.
    cps = np.frombuffer("\x00".join(texts).encode("utf-32-le"), dtype=np.uint32)
    n = len(cps)
    boundary = (cps == 0x20) | (cps == 0)
    nxt = np.zeros(n, dtype=np.uint32)
    nxt[:-1] = cps[1:]
    next_boundary = np.ones(n, dtype=bool)
    next_boundary[:-1] = boundary[1:]
    if not encoded:
        out = np.empty((n, 3), dtype=np.uint32)
        out[:, 0] = np.where(boundary, 0x20, cps)
        out[:, 1] = np.where(boundary | next_boundary, 0x20, nxt)
        out[:, 2] = np.where(cps == 0, 0, 0x20)  # keep the batch separator to split on
        return out.tobytes().decode("utf-32-le").split("\x00")
    letters = (np.minimum(cps, _ENC_MAX)[:, None] // _ENC_BASE % 26 + ord("a")).astype(np.uint8)
    out8 = np.full((n, 9), ord(" "), dtype=np.uint8)
    out8[:, 0:4] = np.where(boundary[:, None], ord(" "), letters)
    second = np.zeros((n, 4), dtype=np.uint8)
    second[:-1] = letters[1:]
    out8[:, 4:8] = np.where((boundary | next_boundary)[:, None], ord(" "), second)
    out8[cps == 0, 8] = ord("|")
    return out8.tobytes().decode("ascii").split("|")


@functools.lru_cache(maxsize=65536)
def encode_char(ch: str) -> str:
    """One character spelled with the 4-letter code of :func:`bigram_streams`."""
    cp = min(ord(ch), _ENC_MAX)
    return "".join(chr(ord("a") + (cp // int(b)) % 26) for b in _ENC_BASE)


def encode_chars(text: str) -> str:
    """A normalised string spelled with the 4-letter code of :func:`bigram_streams` (no separators)."""
    return "".join(encode_char(c) for c in text)


def updated_timestamp(value: Any) -> float | None:
    """updated_at as epoch seconds, so that "…Z" and "…+09:00" order correctly; None if absent or unparsable.

    A naive timestamp is taken as UTC.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        dt = value
    else:
        try:
            dt = datetime.fromisoformat(str(value).strip())
        except ValueError:
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


# -- words for typo tolerance and place names (issue 12) ---------------------------------------------------

# A Latin word as people type product and vendor names: letters and digits, with + # . - _ inside.
_LATIN_WORD = re.compile(r"[a-z0-9](?:[a-z0-9+#._-]*[a-z0-9+#])?")
_HAS_LETTER = re.compile(r"[a-z]")
# Typo tolerance starts at this term length (shorter words have too many neighbours to guess from).
TYPO_MIN_CHARS = 4
LATIN_MIN_CHARS = 3  # shorter words are not kept in the vocabulary


def latin_words(normalized: str) -> list[str]:
    """The distinct Latin words of a normalised text that typo tolerance may correct a term to."""
    return list(
        dict.fromkeys(w for w in _LATIN_WORD.findall(normalized) if len(w) >= LATIN_MIN_CHARS and _HAS_LETTER.search(w))
    )


def is_latin_term(term: str) -> bool:
    """A query term typo tolerance applies to: one Latin word of TYPO_MIN_CHARS or more, with a letter."""
    return len(term) >= TYPO_MIN_CHARS and _LATIN_WORD.fullmatch(term) is not None and bool(_HAS_LETTER.search(term))


def max_typos(term: str) -> int:
    """Edits allowed between a term and a vocabulary word: 1 up to 7 characters, 2 from 8."""
    return 1 if len(term) < 8 else 2
