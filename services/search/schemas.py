"""What the search API takes and gives: the query parameters of ``GET /search/experts``, ``/requests``,
``/projects`` and ``/suggest`` (validated with the kernel's rules: a prefecture is a JIS code whatever the
caller wrote, a topic is one of the topic list, a region one of the METI regions, a skill a tag), one hit of
each index (with its highlighted snippets: safe HTML), the facet counts and the suggestions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError

from tsunagu import reference
from tsunagu.contracts import ExpertKind, ExpertPublicV1, HubProjectChangedV1
from tsunagu.pagination import Page
from tsunagu.types import TopicId, normalize_prefecture, normalize_tag

_TOPIC = TypeAdapter(TopicId)
T = TypeVar("T")
Sort = Literal["relevance", "newest", "oldest"]
ExpertFacet = Literal["prefecture", "region", "topic", "skill", "role", "kind", "onsite", "remote"]
RequestFacet = Literal["prefecture", "region", "topic", "skill", "onsite", "remote", "state"]
ProjectFacet = Literal["prefecture", "region", "topic", "role", "onsite", "remote", "state"]
SuggestKind = Literal["name", "skill", "topic"]


def _prefectures(values: list[str]) -> list[str]:
    # Validated as a whole list, so an error names the parameter ("prefecture"), not an item of it.
    return [normalize_prefecture(value) for value in values]


def _topics(values: list[str]) -> list[str]:
    valid, unknown = [], []
    for value in values:
        try:
            valid.append(_TOPIC.validate_python(value))
        except ValidationError:
            unknown.append(value)
    if unknown:
        listed = ", ".join(unknown)
        raise ValueError(f"不明な相談テーマです: {listed} / Unknown topics: {listed}")
    return valid


def _one_of(known, label_ja: str, label_en: str):
    def check(values: list[str]) -> list[str]:
        unknown = [v for v in values if v not in known()]
        if unknown:
            listed = ", ".join(unknown)
            raise ValueError(f"不明な{label_ja}です: {listed} / Unknown {label_en}: {listed}")
        return list(dict.fromkeys(values))

    return check


def _skills(values: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in (normalize_tag(v) for v in values) if t))


Prefectures = Annotated[list[str], Field(max_length=47), AfterValidator(_prefectures)]
Regions = Annotated[list[str], Field(max_length=9), AfterValidator(_one_of(reference.regions, "地域", "regions"))]
Topics = Annotated[list[str], Field(max_length=50), AfterValidator(_topics)]
Skills = Annotated[list[Annotated[str, Field(max_length=50)]], Field(max_length=20), AfterValidator(_skills)]
Roles = Annotated[list[str], Field(max_length=20), AfterValidator(_one_of(reference.dss_roles, "ロール", "roles"))]
Text = Annotated[str, Field(max_length=200, description="free text; each space-separated term must occur")]


class _SearchParams(BaseModel):
    """What every search takes: free text, the region, topics, on-site/remote, sort and a page. Filters are
    ANDed, the values of one filter ORed; a place name typed as a word finds what serves that prefecture."""

    q: Text = ""
    prefecture: Prefectures = []
    region: Regions = []
    topic: Topics = []
    remote: bool | None = None
    onsite: bool | None = None
    sort: Sort = "relevance"
    highlight: bool = Field(default=True, description="add highlighted snippets (safe HTML, <mark>) to each hit")
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000)


class ExpertSearchParams(_SearchParams):
    """The filters of an expert search (anyone may search: the index holds public fields only)."""

    skill: Skills = []
    role: Roles = []
    kind: ExpertKind | None = None
    facet: list[ExpertFacet] = Field(default=[], max_length=9, description="facets to count over every match")


class RequestSearchParams(_SearchParams):
    """The filters of a search of SME requests (brokers and hub staff, in the prefectures they cover)."""

    skill: Skills = []
    state: list[Literal["open", "matched", "completed", "cancelled"]] = Field(default=[], max_length=4)
    facet: list[RequestFacet] = Field(default=[], max_length=9, description="facets to count over every match")


class ProjectSearchParams(_SearchParams):
    """The filters of a search of hub projects (hub staff and brokers, in the prefectures they cover)."""

    role: Roles = []
    state: list[Annotated[str, Field(max_length=30, pattern=r"^[a-z_]+$")]] = Field(default=[], max_length=10)
    facet: list[ProjectFacet] = Field(default=[], max_length=9, description="facets to count over every match")


class SuggestParams(BaseModel):
    """Prefix suggestions for names, skills and topics of (active, public) experts."""

    q: str = Field(min_length=1, max_length=64, description="what has been typed so far")
    kind: list[SuggestKind] = Field(default=[], max_length=3, description="kinds to suggest (default: all)")
    limit: int = Field(default=10, ge=1, le=20)


class ExpertHit(BaseModel):
    """One expert as the index holds it: the public fields of profiles.expert.published (ExpertPublicV1)."""

    id: str
    kind: ExpertKind
    name: str
    name_kana: str | None = None
    registration_number: str | None = None
    affiliation: str | None = None
    bio: str | None = None
    prefectures: list[str] | None = None
    onsite: bool | None = None
    remote: bool | None = None
    topics: list[str] | None = None
    topic_labels: list[str] | None = None
    skills: list[str] | None = None
    industries: list[str] | None = None
    services: list[str] | None = None
    dss_roles: list[str] | None = None
    active: bool
    updated_at: datetime
    highlights: dict[str, str] = Field(default={}, description="field -> snippet, safe HTML with <mark>")


class RequestHit(BaseModel):
    """One SME request as the requests index holds it (no contact, no people; the SME's name only when the
    SME allowed it)."""

    id: str
    title: str
    summary: str | None = None
    prefectures: list[str]
    onsite: bool
    remote: bool
    topics: list[str] = []
    topic_labels: list[str] = []
    skills: list[str] = []
    industries: list[str] = []
    sme_name: str | None = None
    state: str
    updated_at: datetime
    highlights: dict[str, str] = Field(default={}, description="field -> snippet, safe HTML with <mark>")


class ProjectHit(BaseModel):
    """One マナビDX Quest hub project as the projects index holds it."""

    id: str
    title: str
    summary: str | None = None
    prefectures: list[str]
    onsite: bool
    remote: bool
    topics: list[str] = []
    topic_labels: list[str] = []
    dss_roles: list[str] = []
    role_labels: list[str] = []
    sme_name: str | None = None
    team_size: int | None = None
    start_on: str | None = None
    weeks: int | None = None
    state: str
    updated_at: datetime
    highlights: dict[str, str] = Field(default={}, description="field -> snippet, safe HTML with <mark>")


class FacetValue(BaseModel):
    value: str
    count: int
    label: str | None = Field(default=None, description="the value in words (Japanese), where it has one")


class SearchPage(Page[T], Generic[T]):
    """A page of hits with the total and, for each facet asked for, the counts over every match."""

    facets: dict[str, list[FacetValue]] = Field(default_factory=dict)


class SuggestionRead(BaseModel):
    text: str
    kind: SuggestKind
    count: int = Field(description="active experts it comes from")


# --- the indexes' sources, as the owning services' APIs give them (tsunagu search reindex) -------------


class ExpertSource(BaseModel):
    """GET /api/v1/admin/experts/published (profiles): an expert's public view and its version."""

    version: int
    data: ExpertPublicV1


class RequestSource(BaseModel):
    """GET /api/v1/admin/search-sources/requests (matching): a request's indexed fields and its version."""

    version: int
    request_id: str
    title: str
    summary: str | None = None
    prefecture: str
    delivery: str | None = None
    topics: list[str] = Field(default_factory=list)
    skills: list[str] = Field(default_factory=list)
    industry: str | None = None
    status: str
    sme_name: str | None = None
    updated_at: datetime


class ProjectSource(BaseModel):
    """GET /api/v1/admin/search-sources/projects (matching): a hub project's indexed fields and version."""

    version: int
    data: HubProjectChangedV1
