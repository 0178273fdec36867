"""The traffic of the load benchmark (``bench/bench_load.py``): a locustfile, and the bare FastAPI app that is
the ceiling it is compared with.

Kept apart from ``bench_load.py`` because locust runs it in its own process (gevent, monkey-patched), and
uvicorn serves ``bare_app`` in another: neither should import the whole system to do so. What the users
need (tokens, expert ids, ranked requests, the pairs a broker may propose) comes from a plan file that
``bench_load.py`` writes (``LOAD_PLAN``). Every request's time is recorded exactly (not locust's rounded
histogram) and written to ``LOAD_TIMINGS`` when locust stops.

One user class does the mix, so the shares are exact whatever the latencies: each iteration picks one
action by weight, as the person who would do it (anonymous, an SME, a broker of the request's prefecture).
"""

from __future__ import annotations

import json
import os
import random
from collections import defaultdict

MIX = {  # action -> weight (percent of requests)
    "search": 35,
    "profile": 30,
    "ranking": 20,
    "submit": 10,
    "propose": 5,
}
if os.environ.get("LOAD_MIX"):  # e.g. "submit=100" to load one path alone (bench_load.py --mix)
    MIX = {name: int(weight) for name, _, weight in (part.partition("=") for part in os.environ["LOAD_MIX"].split(","))}
SEARCH_WORDS = ["", "ランサム", "aws", "クラウド", "やま", "東京", "ネットワーク", "バックアップ", "dx", "edr"]


def bare_app():
    """The ceiling: a bare FastAPI endpoint served by the same uvicorn (uvloop, httptools) as the services."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"status": "ok"}

    return app


if os.environ.get("LOAD_PLAN"):  # only inside locust (uvicorn imports this module for bare_app)
    from locust import FastHttpUser, constant, constant_throughput, events, task

    PLAN = json.loads(open(os.environ["LOAD_PLAN"], encoding="utf-8").read())  # noqa: SIM115
    TIMINGS: dict[str, list[float]] = defaultdict(list)
    STATUSES: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    _pairs = iter(PLAN.get("pairs", []))
    _rng = random.Random(int(os.environ.get("LOAD_SEED", "1")))
    RATE = float(os.environ.get("LOAD_USER_RATE", "0"))  # requests per second per user; 0 = as fast as possible

    @events.request.add_listener
    def _record(request_type, name, response_time, response_length, response, exception, **_kw):
        TIMINGS[name].append(response_time)
        status = getattr(response, "status_code", 0) if response is not None else 0
        STATUSES[name][str(status if exception is None else f"{status}:{type(exception).__name__}")] += 1

    @events.quitting.add_listener
    def _write(environment, **_kw):
        with open(os.environ["LOAD_TIMINGS"], "w", encoding="utf-8") as out:
            json.dump({"timings_ms": TIMINGS, "statuses": STATUSES}, out)

    def _pick(choices: dict[str, int]) -> str:
        return _rng.choices(list(choices), list(choices.values()))[0]

    class BareUser(FastHttpUser):
        """The ceiling's client: the same client settings as the mix, one tiny JSON endpoint."""

        wait_time = constant_throughput(RATE) if RATE else constant(0)

        @task
        def ping(self) -> None:
            self.client.get("/ping", name="bare")

    class MixUser(FastHttpUser):
        """One visitor of Tsunagu; each iteration is one action of the mix."""

        wait_time = constant_throughput(RATE) if RATE else constant(0)

        def _auth(self, token: str) -> dict[str, str]:
            return {"authorization": f"Bearer {token}"}

        @task
        def act(self) -> None:
            action = _pick(MIX)
            getattr(self, action)()

        def search(self) -> None:
            params: dict[str, str] = {"q": _rng.choice(SEARCH_WORDS), "limit": "20"}
            if _rng.random() < 0.5:
                params["prefecture"] = _rng.choice(["13", "27", "40", "14", "23"])
            if _rng.random() < 0.3:
                params["topic"] = _rng.choice(PLAN["topics"])
            self.client.get("/api/v1/search/experts", params=params, name="search")

        def profile(self) -> None:
            self.client.get(f"/api/v1/experts/{_rng.choice(PLAN['experts'])}", name="profile")

        def ranking(self) -> None:
            request = _rng.choice(PLAN["requests"])
            token = PLAN["brokers"][request["prefecture"]]
            self.client.get(f"/api/v1/requests/{request['id']}/ranking", headers=self._auth(token), name="ranking")

        def submit(self) -> None:
            body = {
                "title": "負荷試験の相談",
                "prefecture": _rng.choice(["13", "27", "40"]),
                "delivery": _rng.choice(["onsite", "remote", "either"]),
                "topics": _rng.sample(PLAN["topics"], _rng.randint(1, 4)),
            }
            self.client.post(
                "/api/v1/requests", json=body, headers=self._auth(_rng.choice(PLAN["smes"])), name="submit"
            )

        def propose(self) -> None:
            pair = next(_pairs, None)
            if pair is None:  # every prepared pair used: read a shortlist instead
                self.ranking()
                return
            token = PLAN["brokers"][pair["prefecture"]]
            self.client.post(
                f"/api/v1/requests/{pair['request_id']}/proposals",
                json={"expert_id": pair["expert_id"], "message": "ご検討ください"},
                headers=self._auth(token),
                name="propose",
            )
