"""Reference data copied from the seed documents (see data/): prefectures with their METI regional
bureau and neighbours, the topic taxonomy, the デジタルスキル標準 roles, the digitalisation stages and
the 25 questions of 5分でできる情報セキュリティ自社診断 (each mapped to a topic).

Loaded once per process from CSV files shipped inside the package; the product never reads ../shared.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Prefectures that share a land border, plus the fixed links people drive or ride across daily
# (Seikan tunnel 01-02, Onaruto bridge 28-36, Seto-Ohashi 33-37, Shimanami 34-38, Kanmon 35-40).
# Written once per pair; both directions are derived, so neighbours are symmetric by construction.
NEIGHBOUR_PAIRS: tuple[tuple[str, str], ...] = (
    ("01", "02"),
    ("02", "03"),
    ("02", "05"),
    ("03", "04"),
    ("03", "05"),
    ("04", "05"),
    ("04", "06"),
    ("04", "07"),
    ("05", "06"),
    ("06", "07"),
    ("06", "15"),
    ("07", "08"),
    ("07", "09"),
    ("07", "10"),
    ("07", "15"),
    ("08", "09"),
    ("08", "11"),
    ("08", "12"),
    ("09", "10"),
    ("09", "11"),
    ("10", "11"),
    ("10", "15"),
    ("10", "20"),
    ("11", "12"),
    ("11", "13"),
    ("11", "19"),
    ("11", "20"),
    ("12", "13"),
    ("13", "14"),
    ("13", "19"),
    ("14", "19"),
    ("14", "22"),
    ("15", "16"),
    ("15", "20"),
    ("16", "17"),
    ("16", "20"),
    ("16", "21"),
    ("17", "18"),
    ("17", "21"),
    ("18", "21"),
    ("18", "25"),
    ("18", "26"),
    ("19", "20"),
    ("19", "22"),
    ("20", "21"),
    ("20", "22"),
    ("20", "23"),
    ("21", "23"),
    ("21", "24"),
    ("21", "25"),
    ("22", "23"),
    ("23", "24"),
    ("24", "25"),
    ("24", "26"),
    ("24", "29"),
    ("24", "30"),
    ("25", "26"),
    ("26", "27"),
    ("26", "28"),
    ("26", "29"),
    ("27", "28"),
    ("27", "29"),
    ("27", "30"),
    ("28", "31"),
    ("28", "33"),
    ("28", "36"),
    ("29", "30"),
    ("31", "32"),
    ("31", "33"),
    ("31", "34"),
    ("32", "34"),
    ("32", "35"),
    ("33", "34"),
    ("33", "37"),
    ("34", "35"),
    ("34", "38"),
    ("35", "40"),
    ("36", "37"),
    ("36", "38"),
    ("36", "39"),
    ("37", "38"),
    ("38", "39"),
    ("40", "41"),
    ("40", "43"),
    ("40", "44"),
    ("41", "42"),
    ("43", "44"),
    ("43", "45"),
    ("43", "46"),
    ("44", "45"),
    ("45", "46"),
)


@dataclass(frozen=True)
class Prefecture:
    code: str
    name: str
    name_en: str
    bureau: str
    corporations: int
    dx_certified: int
    neighbours: tuple[str, ...]

    @property
    def short_name(self) -> str:
        """東京都 -> 東京, 北海道 stays 北海道."""
        return self.name if self.name == "北海道" else self.name[:-1]


@dataclass(frozen=True)
class Topic:
    id: str
    area: str  # "security" or "dx"
    label_ja: str
    source: str


@dataclass(frozen=True)
class DssRole:
    id: str
    label_ja: str
    label_en: str


@dataclass(frozen=True)
class DigitalizationStage:
    stage: int
    label_ja: str
    example: str


@dataclass(frozen=True)
class SelfDiagnosisQuestion:
    no: int
    group: str
    question: str
    topic: str


def _rows(filename: str) -> list[dict[str, str]]:
    text = resources.files(__package__).joinpath("data", filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@cache
def prefectures() -> dict[str, Prefecture]:
    neighbours: dict[str, set[str]] = {}
    for a, b in NEIGHBOUR_PAIRS:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    return {
        row["code"]: Prefecture(
            code=row["code"],
            name=row["name"],
            name_en=row["name_en"],
            bureau=row["bureau"],
            corporations=int(row["corporations"]),
            dx_certified=int(row["dx_certified_2024_09"]),
            neighbours=tuple(sorted(neighbours.get(row["code"], ()))),
        )
        for row in _rows("prefectures.csv")
    }


@cache
def _prefecture_aliases() -> dict[str, str]:
    aliases: dict[str, str] = {}
    for code, prefecture in prefectures().items():
        for alias in (code, str(int(code)), prefecture.name, prefecture.short_name, prefecture.name_en.lower()):
            aliases[alias] = code
    return aliases


def prefecture_code(value: str | int) -> str | None:
    """'13', 13, '東京都', '東京' or 'Tokyo' -> '13'; None when it names no prefecture."""
    key = str(value).strip()
    return _prefecture_aliases().get(key) or _prefecture_aliases().get(key.lower())


@cache
def topics() -> dict[str, Topic]:
    return {
        row["id"]: Topic(id=row["id"], area=row["area"], label_ja=row["label_ja"], source=row["where_it_comes_from"])
        for row in _rows("topics.csv")
    }


@cache
def dss_roles() -> dict[str, DssRole]:
    return {row["id"]: DssRole(row["id"], row["label_ja"], row["label_en"]) for row in _rows("dss_roles.csv")}


@cache
def digitalization_stages() -> dict[int, DigitalizationStage]:
    return {
        int(row["stage"]): DigitalizationStage(int(row["stage"]), row["label_ja"], row["example"])
        for row in _rows("digitalization_stages.csv")
    }


@cache
def self_diagnosis_questions() -> dict[int, SelfDiagnosisQuestion]:
    return {
        int(row["no"]): SelfDiagnosisQuestion(int(row["no"]), row["group"], row["question"], row["topic"])
        for row in _rows("self_diagnosis_25.csv")
    }


# --- METI regions and place names as words (issue 12: search) ----------------------------------------------

# The METI regional bureau (経済産業局; Okinawa: 沖縄総合事務局) of each prefecture, as a stable id.
_REGION_IDS: dict[str, tuple[str, str]] = {
    "北海道経済産業局": ("hokkaido", "Hokkaido"),
    "東北経済産業局": ("tohoku", "Tohoku"),
    "関東経済産業局": ("kanto", "Kanto"),
    "中部経済産業局": ("chubu", "Chubu"),
    "近畿経済産業局": ("kinki", "Kinki"),
    "中国経済産業局": ("chugoku", "Chugoku"),
    "四国経済産業局": ("shikoku", "Shikoku"),
    "九州経済産業局": ("kyushu", "Kyushu"),
    "沖縄総合事務局": ("okinawa", "Okinawa"),
}


@dataclass(frozen=True)
class Region:
    id: str
    label_ja: str  # the bureau's name
    label_en: str
    prefectures: tuple[str, ...]


@cache
def regions() -> dict[str, Region]:
    """The METI regions by id ("kanto"...), each with its prefectures."""
    out: dict[str, Region] = {}
    for bureau, (region_id, label_en) in _REGION_IDS.items():
        codes = tuple(code for code, p in prefectures().items() if p.bureau == bureau)
        out[region_id] = Region(region_id, bureau, label_en, codes)
    return out


@cache
def _region_by_prefecture() -> dict[str, str]:
    return {code: region.id for region in regions().values() for code in region.prefectures}


def region_of(prefecture: str) -> str | None:
    """The METI region id of a prefecture code ("13" -> "kanto"), None for an unknown code."""
    return _region_by_prefecture().get(prefecture)


@cache
def place_words() -> dict[str, str]:
    """Every word that names a prefecture as a place -> its code: the name (東京都), the short form (東京)
    and the English name in lower case (tokyo); never a number (a term "13" is text, not Tokyo)."""
    words: dict[str, str] = {}
    for code, prefecture in prefectures().items():
        for word in (prefecture.name, prefecture.short_name, prefecture.name_en.lower()):
            words[word] = code
    return words


def place_prefecture(word: str) -> str | None:
    """The one rule for "a place name typed as a word": the prefecture code ``word`` names (see
    place_words), or None. The search service matches such a word to the experts who serve there."""
    return place_words().get(word.strip().lower())
