"""What each index holds, and the keywords every backend derives from a document in the same way.

Three indexes share one engine design (issue 12): ``experts`` (public profiles, anyone searches),
``requests`` (open SME requests) and ``projects`` (マナビDX Quest hub projects), the last two for brokers
and hub staff of the document's prefecture only (the routes check the caller). An :class:`IndexSpec` says
which document fields feed the four ranked field groups (name > tags > org > bio); the FTS columns and
Meilisearch attributes are the same for every index.

Besides its text, each document yields *keywords* (:func:`keywords`), exact values a query can filter,
count or look up, derived here once so that both backends agree:

- facets: ``prefecture``, ``region`` (METI region of each prefecture, tsunagu.reference), ``topic``,
  ``skill``, ``role``, ``kind``, ``onsite``, ``remote``, ``state``;
- ``_mention``: the place words (tsunagu.reference.place_words) the document's text contains, so a place
  word in a query matches "serves the prefecture OR mentions the word" as one filter;
- ``_latin``: the Latin words of the text, the vocabulary typo tolerance corrects a term to;
- ``_sugg``: suggestion entries ``normalised text \\x1f kind \\x1f display`` (names, also by each word and by
  their reading, skills, topic labels), looked up by prefix.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tsunagu import reference

from . import text

# Facets a caller may filter on and count (keywords without a leading underscore).
FACETS = ("prefecture", "region", "topic", "skill", "role", "kind", "onsite", "remote", "state")
SUGGEST_KINDS = ("name", "skill", "topic")
_SEP = "\x1f"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    # group (name, tags, org, bio: ranked in this order) -> document fields
    field_groups: dict[str, tuple[str, ...]]
    # suggestion kind -> document fields whose values are suggested
    suggest_fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reading_field: str | None = None  # a name is suggested by its reading too (name_kana)

    @property
    def searched_fields(self) -> tuple[str, ...]:
        return tuple(f for fields in self.field_groups.values() for f in fields)


EXPERTS = IndexSpec(
    "experts",
    dict(text.FIELD_GROUPS),
    suggest_fields={"name": ("name",), "skill": ("skills",), "topic": ("topic_labels",)},
    reading_field="name_kana",
)
REQUESTS = IndexSpec(
    "requests",
    {"name": ("title",), "tags": ("topic_labels", "skills", "industries"), "org": ("sme_name",), "bio": ("summary",)},
)
PROJECTS = IndexSpec(
    "projects",
    {"name": ("title",), "tags": ("topic_labels", "role_labels"), "org": ("sme_name",), "bio": ("summary",)},
)
SPECS = {spec.name: spec for spec in (EXPERTS, REQUESTS, PROJECTS)}
if any(tuple(s.field_groups) != ("name", "tags", "org", "bio") for s in SPECS.values()):
    raise RuntimeError("every index has the field groups name, tags, org, bio (the FTS columns)")


@functools.cache
def _places_by_first_char() -> dict[str, tuple[tuple[str, str], ...]]:
    by_char: dict[str, list[tuple[str, str]]] = {}
    for word, code in reference.place_words().items():
        normalized = text.normalize(word)
        by_char.setdefault(normalized[0], []).append((normalized, code))
    return {c: tuple(words) for c, words in by_char.items()}


def mentioned_places(normalized: str) -> list[str]:
    """The place words (normalised) a normalised text contains as substrings."""
    table = _places_by_first_char()
    found = []
    for ch in set(normalized) & table.keys():
        found.extend(word for word, _ in table[ch] if word in normalized)
    return sorted(found)


def _flag(value: Any) -> str:
    return "true" if value is True else "false"


def suggestion_entries(spec: IndexSpec, doc: Mapping[str, Any]) -> list[str]:
    """The ``_sugg`` keywords of a document: what its names, skills and topics are suggested for."""
    out: dict[str, None] = {}
    for kind, fields in spec.suggest_fields.items():
        for f in fields:
            for value in text.as_list(doc.get(f)):
                display = " ".join(value.split())
                if not display:
                    continue
                keys = [text.normalize(display)]
                if kind == "name":
                    keys += keys[0].split(" ")[1:]  # the given name alone
                    reading = doc.get(spec.reading_field) if spec.reading_field else None
                    if isinstance(reading, str) and reading.strip():
                        norm_reading = " ".join(text.normalize(reading).split())
                        keys += [norm_reading, *norm_reading.split(" ")[1:]]
                for key in keys:
                    if key.strip():
                        out[f"{key.strip()[:64]}{_SEP}{kind}{_SEP}{display[:200]}"] = None
    return list(out)


def split_suggestion(entry: str) -> tuple[str, str, str]:
    """(normalised key, kind, display) of a ``_sugg`` keyword."""
    key, kind, display = entry.split(_SEP, 2)
    return key, kind, display


def suggestion_range(prefix: str) -> tuple[str, str]:
    """The [low, high) range of ``_sugg`` keywords whose key starts with the normalised prefix."""
    return prefix, prefix + "\U0010ffff"


def keywords(spec: IndexSpec, doc: Mapping[str, Any], normalized_text: str) -> dict[str, list[str]]:
    """Every keyword of a document (see the module docstring); ``normalized_text``: its groups' normalised
    texts joined with spaces."""
    prefectures = list(dict.fromkeys(text.as_list(doc.get("prefectures"))))
    kind = doc.get("kind")
    state = doc.get("state")
    out = {
        "prefecture": prefectures,
        "region": list(dict.fromkeys(r for r in map(reference.region_of, prefectures) if r)),
        "topic": list(dict.fromkeys(text.as_list(doc.get("topics")))),
        "skill": list(dict.fromkeys(text.as_list(doc.get("skills")))),
        "role": list(dict.fromkeys(text.as_list(doc.get("dss_roles")))),
        "kind": [kind] if isinstance(kind, str) and kind else [],
        "onsite": [_flag(doc.get("onsite"))],
        "remote": [_flag(doc.get("remote"))],
        "state": [state] if isinstance(state, str) and state else [],
        "_mention": mentioned_places(normalized_text),
        "_latin": text.latin_words(normalized_text),
        "_sugg": suggestion_entries(spec, doc),
    }
    return {k: v for k, v in out.items() if v}
