"""PostgreSQL restarted under load (issue 13, faults): a private PostgreSQL server (tests/fault/pgcluster.py)
holds every service's database; while an SME submits requests and reads them back through the gateway
without pause, the server is stopped (``pg_ctl stop -m fast``: every session ended, as in a restart for an
upgrade or a failover) and started again a few seconds later.

What must hold:
- while it is away, public search (the search engine, not PostgreSQL) goes on answering 200, and every other
  answer is a 2xx or a 503 ``database_unavailable`` with Retry-After and a Japanese
  and an English message, never a 500 or a dropped connection; each service's /readyz says 503;
- when it is back, the same processes (no restart) serve again: writes succeed;
- nothing half-written and nothing lost: the SME's requests are exactly those answered 201 (a 503 wrote
  nothing), and each is ranked exactly once; no event was dead-lettered (the consumers waited for the
  database instead of spending their deliveries: tsunagu/messaging.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import nats
import pytest

from launcher.runner import SERVICES, System
from tests.conftest import Api, running_system, suite_system_config, wait_until
from tests.factories import request_body
from tests.fault.conftest import Stopwatch, rankings_by_event, record_figures, submitted_event_ids
from tests.fault.pgcluster import PrivateCluster, find_binaries
from tsunagu.messaging import list_dead_letters

OUTAGE_SECONDS = 5.0


@dataclass
class Answer:
    at: float  # seconds since the load began, when the call was made
    done: float  # ... and when its answer came
    kind: str  # "write" or "read"
    status: int  # 0: no HTTP answer at all (a transport error)
    code: str | None = None
    retry_after: str | None = None
    message_ja: str | None = None
    message_en: str | None = None
    title: str | None = None


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bindir = find_binaries()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (install Debian's postgresql)")
    private = PrivateCluster(bindir).init()
    try:
        private.start()
        yield private
    finally:
        private.destroy()


@pytest.fixture
def pg_system(cluster: PrivateCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    urls = cluster.create_databases([f"tsunagu_{name}" for name in SERVICES])
    config = suite_system_config(
        tmp_path_factory.mktemp("pgrestart"), {name: urls[f"tsunagu_{name}"] for name in SERVICES}
    )
    with running_system(config) as system:
        yield system


class Load:
    """Through the gateway, without pause: one SME submitting a request and reading its list, and beside it an
    anonymous visitor searching experts (public search reads the search engine, not PostgreSQL)."""

    def __init__(self, system: System, headers: dict[str, str]) -> None:
        self.http = httpx.Client(base_url=system.url("gateway"), timeout=30, headers=headers)
        self.anonymous = httpx.Client(base_url=system.url("gateway"), timeout=30)
        self.answers: list[Answer] = []
        self.clock = Stopwatch()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, name="pg-restart-sme", daemon=True),
            threading.Thread(target=self._search, name="pg-restart-search", daemon=True),
        ]

    def _answer(self, kind: str, call, title: str | None = None) -> None:
        at = self.clock.seconds()
        try:
            response = call()
        except httpx.TransportError:
            self.answers.append(Answer(at, self.clock.seconds(), kind, 0, title=title))
            return
        error = response.json().get("error") if response.status_code >= 400 else None
        self.answers.append(
            Answer(
                at,
                self.clock.seconds(),
                kind,
                response.status_code,
                code=error and error.get("code"),
                retry_after=response.headers.get("retry-after"),
                message_ja=error and error.get("message_ja"),
                message_en=error and error.get("message_en"),
                title=title,
            )
        )

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            title = f"DB再起動の相談 {number:04d}"
            body = request_body(title=title)
            self._answer("write", lambda body=body: self.http.post("/api/v1/requests", json=body), title)
            self._answer("read", lambda: self.http.get("/api/v1/requests", params={"limit": 5}))

    def _search(self) -> None:
        while not self._stop.is_set():
            self._answer("search", lambda: self.anonymous.get("/api/v1/search/experts", params={"q": "東京"}))
            time.sleep(0.05)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self.http.close()
        self.anonymous.close()

    def written_after(self, at: float) -> int:
        return sum(1 for a in self.answers if a.kind == "write" and a.status == 201 and a.at > at)


def _readiness(system: System) -> dict[str, int]:
    return {name: httpx.get(system.url(name) + "/readyz", timeout=10).status_code for name in SERVICES}


def _all_titles(api: Api, headers: dict[str, str]) -> list[str]:
    titles: list[str] = []
    offset = 0
    while True:
        page = api.http.get("/api/v1/requests", params={"limit": 100, "offset": offset}, headers=headers).json()
        titles += [item["title"] for item in page["items"]]
        offset += 100
        if offset >= page["total"]:
            return titles


async def _dead_letters(system: System) -> list[dict]:
    client = await nats.connect(system.nats.url)
    try:
        return await list_dead_letters(client.jetstream(), 200)
    finally:
        await client.close()


def test_postgresql_restarted_under_load_503_while_away_then_recovers_alone(
    cluster: PrivateCluster, pg_system: System
) -> None:
    system = pg_system
    api = Api(system)
    sme = api.register("sme")
    pids = {key: process.pid for key, process in system.processes.items()}
    load = Load(system, sme)
    load.start()
    try:
        wait_until(lambda: load.written_after(0) >= 5, timeout=60, message="requests written before the stop")
        stopped_at = load.clock.seconds()
        cluster.stop("fast")
        away_from = load.clock.seconds()  # the server is down from here until started again
        time.sleep(0.5)  # let the load meet the stopped server (the readiness below is checked meanwhile too)
        readiness_away = _readiness(system)
        wait_until(
            lambda: any(a.status == 503 and a.at > away_from for a in load.answers),
            timeout=OUTAGE_SECONDS,
            message="a 503 while PostgreSQL is away",
        )
        time.sleep(max(0.0, OUTAGE_SECONDS - (load.clock.seconds() - stopped_at)))
        back_from = load.clock.seconds()
        cluster.start()
        back_at = load.clock.seconds()
        wait_until(lambda: load.written_after(back_at) >= 5, timeout=60, message="writes succeeding again")
        recovered_in = round(
            min(a.at for a in load.answers if a.kind == "write" and a.status == 201 and a.at > back_at) - back_at, 2
        )
    finally:
        load.stop()

    answers = load.answers
    away = [a for a in answers if away_from < a.at and a.done < back_from]  # made and answered while down
    searches_away = [a.status for a in away if a.kind == "search"]
    print(
        f"\nPostgreSQL away {back_from - stopped_at:.1f} s; {len(answers)} answers in all, {len(away)} while away "
        f"({sum(a.status == 503 for a in away)} x 503; public searches meanwhile: {searches_away.count(200)} x 200, "
        f"{searches_away.count(503)} x 503); first write after the start in {recovered_in} s"
    )
    # Never a 500, a 502/504 or a dropped connection: a 2xx, or the 503 that says what is wrong.
    assert {a.status for a in answers} <= {200, 201, 503}, sorted({a.status for a in answers})
    refused = [a for a in answers if a.status == 503]
    assert refused, "no request met the stopped database"
    for answer in refused:
        if answer.code == "upstream_unavailable":
            # Seen once in many runs on a machine at load 36: the gateway's hop to the service failed (a kept-alive
            # connection closed under a write, which is never retried). Still a clear 503, never a 500; that
            # nothing was half-written is checked below (exactly the accepted requests exist).
            assert answer.message_ja and answer.message_ja.startswith("サービスに接続できません"), answer
            continue
        assert answer.code == "database_unavailable", answer
        assert answer.retry_after == "5"
        assert answer.message_ja and answer.message_ja.startswith("データベースに一時的に接続できません")
        assert answer.message_en and "temporarily unavailable" in answer.message_en
    assert sum(a.code == "upstream_unavailable" for a in refused) <= max(1, len(refused) // 20), refused
    assert all(a.status == 503 for a in away if a.kind == "write"), "a write succeeded while the server was down"
    # Public search needs only the search engine: it went on answering while PostgreSQL was away.
    assert searches_away and set(searches_away) == {200}, searches_away
    assert all(status == 503 for status in readiness_away.values()), readiness_away
    assert all(status == 200 for status in _readiness(system).values())
    # Recovered alone: the same processes, none restarted or exited.
    assert {key: process.pid for key, process in system.processes.items()} == pids
    assert all(process.poll() is None for process in system.processes.values())

    # Nothing half-written, nothing lost: exactly the requests answered 201 exist, each ranked once.
    accepted = sorted(a.title for a in answers if a.kind == "write" and a.status == 201)
    assert sorted(_all_titles(api, sme)) == accepted
    events = submitted_event_ids(system)
    assert len(events) == len(accepted)

    def all_ranked() -> bool:
        rankings = rankings_by_event(system)
        return all(rankings.get(event_id) == 1 for event_id in events.values())

    wait_until(all_ranked, timeout=90, message="every accepted request ranked")
    rankings = rankings_by_event(system)
    assert all(rankings[event_id] == 1 for event_id in events.values())
    assert asyncio.run(_dead_letters(system)) == []
    record_figures(
        "postgresql_restarted_under_load",
        {
            "database": "a private PostgreSQL cluster (every run)",
            "outage_seconds": round(back_from - stopped_at, 2),
            "answers": len(answers),
            "answers_while_away": len(away),
            "answered_503_while_away": sum(a.status == 503 for a in away),
            "public_searches_200_while_away": searches_away.count(200),
            "answered_500": 0,
            "seconds_from_start_to_first_write": recovered_in,
            "requests_accepted": len(accepted),
            "half_written": 0,
            "lost": 0,
            "ranked_more_than_once": 0,
            "dead_letters": 0,
        },
    )
