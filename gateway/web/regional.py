"""The figures of /map: supply (active experts) against demand (open requests) in each of the 47
prefectures, per 10,000 corporations (the corporation counts are the product's reference data,
``tsunagu.reference``), with the METI regions and the tile positions of the map.

The counts come from the public API paths (profiles' expert list, matching's request list), asked as the
system: a broker sees the whole country's figures, never an object outside their prefectures. They are
kept for ``TTL_SECONDS`` (one map costs 47 + a few calls; the page itself then answers in milliseconds)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.web.upstream import Upstream
from tsunagu.auth import Principal, Role
from tsunagu.reference import prefectures, region_of, regions

log = logging.getLogger(__name__)
TTL_SECONDS = 60.0
COUNTER = Principal(sub="gateway-map", role=Role.SERVICE, name="地域マップの集計")
OPEN_STATES = ("submitted", "ranked")

# Tile positions (column, row) on a 13 x 10 grid: Hokkaido top right, Okinawa bottom left.
TILES: dict[str, tuple[int, int]] = {
    "01": (12, 0), "02": (12, 1), "05": (11, 2), "03": (12, 2),
    "17": (8, 3), "16": (9, 3), "15": (10, 3), "06": (11, 3), "04": (12, 3),
    "32": (3, 4), "31": (4, 4), "28": (5, 4), "26": (6, 4), "18": (7, 4), "21": (8, 4), "20": (9, 4),
    "10": (10, 4), "09": (11, 4), "07": (12, 4),
    "40": (1, 5), "35": (2, 5), "34": (3, 5), "33": (4, 5), "27": (5, 5), "25": (6, 5), "24": (7, 5),
    "23": (8, 5), "19": (9, 5), "11": (10, 5), "08": (11, 5),
    "42": (0, 6), "41": (1, 6), "44": (2, 6), "38": (3, 6), "37": (4, 6), "30": (5, 6), "29": (6, 6),
    "22": (8, 6), "14": (9, 6), "13": (10, 6), "12": (11, 6),
    "43": (1, 7), "45": (2, 7), "39": (3, 7), "36": (4, 7),
    "46": (1, 8),
    "47": (0, 9),
}  # fmt: skip

# Colour levels of the supply-to-demand ratio (experts per open request, both per 10,000 corporations).
LEVELS = (
    ("level-0", "不足（0.5未満）", 0.5),
    ("level-1", "やや不足（0.5〜1）", 1.0),
    ("level-2", "均衡（1〜2）", 2.0),
    ("level-3", "余裕あり（2〜4）", 4.0),
    ("level-4", "十分（4以上）", float("inf")),
)


@dataclass
class Cell:
    code: str
    name: str
    short_name: str
    region_id: str
    region: str
    corporations: int
    experts: int
    requests: int
    column: int
    row: int

    @property
    def supply(self) -> float:
        return self.experts / self.corporations * 10_000

    @property
    def demand(self) -> float:
        return self.requests / self.corporations * 10_000

    @property
    def ratio(self) -> float | None:
        return None if self.requests == 0 else self.experts / self.requests

    @property
    def level(self) -> str:
        if self.ratio is None:
            return "level-none"
        return next(name for name, _label, upper in LEVELS if self.ratio < upper)


_cache: tuple[float, list[Cell]] | None = None
_lock = asyncio.Lock()
_background: set[asyncio.Task] = set()


async def _experts(api: Upstream, code: str) -> int:
    answer = await api.call(
        "GET", "/api/v1/experts", params={"active": "true", "prefecture": code, "limit": 1}, caller=COUNTER
    )
    return int(answer.ok()["total"])


async def _open_requests(api: Upstream) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state in OPEN_STATES:
        offset = 0
        while True:
            answer = await api.call(
                "GET",
                "/api/v1/requests",
                params={"status": state, "limit": 100, "offset": offset},
                caller=COUNTER,
            )
            page = answer.ok()
            for item in page["items"]:
                counts[item["prefecture"]] = counts.get(item["prefecture"], 0) + 1
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                break
    return counts


async def _compute(api: Upstream) -> list[Cell]:
    codes = list(prefectures())
    supply = await asyncio.gather(*(_experts(api, code) for code in codes))
    demand = await _open_requests(api)
    names = regions()
    result = []
    for code, experts in zip(codes, supply, strict=True):
        prefecture = prefectures()[code]
        region_id = region_of(code) or ""
        column, row = TILES[code]
        result.append(
            Cell(
                code=code,
                name=prefecture.name,
                short_name=prefecture.short_name,
                region_id=region_id,
                region=names[region_id].label_ja if region_id in names else prefecture.bureau,
                corporations=prefecture.corporations,
                experts=experts,
                requests=demand.get(code, 0),
                column=column,
                row=row,
            )
        )
    return result


async def _refresh(api: Upstream) -> list[Cell]:
    global _cache  # noqa: PLW0603 - one process-wide cache of a minute-old aggregate
    async with _lock:
        if _cache is not None and time.monotonic() - _cache[0] < TTL_SECONDS:
            return _cache[1]
        result = await _compute(api)
        _cache = (time.monotonic(), result)
        return result


async def _refresh_quietly(api: Upstream) -> None:
    try:
        await _refresh(api)
    except Exception:  # a service down: the old figures stay, the next view tries again
        log.warning("the map's figures could not be refreshed", exc_info=True)


async def cells(api: Upstream) -> list[Cell]:
    """The figures, at most ``TTL_SECONDS`` old. Once there are figures, older ones are answered at once
    while fresh ones are computed in the background (the first map after a start waits for them)."""
    if _cache is None:
        return await _refresh(api)
    if time.monotonic() - _cache[0] >= TTL_SECONDS and not _lock.locked():
        task = asyncio.create_task(_refresh_quietly(api))
        _background.add(task)
        task.add_done_callback(_background.discard)
    return _cache[1]


def forget() -> None:
    """Drop the cached figures (tests)."""
    global _cache  # noqa: PLW0603
    _cache = None
