"""tsunagu/deps.py: the role dependencies on a tiny app (401 anonymous, 403 wrong role, admins pass), and the
session dependency (one transaction per request: what the route did not commit is not written)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlmodel import Field, Session, select

from tests.factories import GATEWAY_KEYS, service_token
from tsunagu.auth import Principal, PublicKeys, Role, principal_dependency
from tsunagu.db import make_engine, service_base
from tsunagu.deps import (
    AdminDep,
    BrokerDep,
    CallerDep,
    ExpertDep,
    PageDep,
    RegionalStaffDep,
    SessionDep,
    SmeDep,
    UserDep,
)
from tsunagu.errors import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    # The runtime as the dependencies see it: only its principal dependency is used here.
    app.state.runtime = SimpleNamespace(
        principal=principal_dependency("test", PublicKeys.from_jwks(GATEWAY_KEYS.public_jwks()))
    )

    @app.get("/caller")
    def caller(who: CallerDep) -> dict:
        return {"role": who.role}

    @app.get("/user")
    def user(who: UserDep) -> dict:
        return {"role": who.role}

    @app.get("/admin")
    def admin(who: AdminDep) -> dict:
        return {"role": who.role}

    @app.get("/broker")
    def broker(who: BrokerDep) -> dict:
        return {"role": who.role}

    @app.get("/regional")
    def regional(who: RegionalStaffDep) -> dict:
        return {"role": who.role}

    @app.get("/sme")
    def sme(who: SmeDep) -> dict:
        return {"role": who.role}

    @app.get("/expert")
    def expert(who: ExpertDep) -> dict:
        return {"role": who.role}

    @app.get("/page")
    def page(page: PageDep) -> dict:
        return page.model_dump()

    return app


def _as(role: Role) -> dict[str, str]:
    token = service_token(Principal(sub=f"{role}-1", role=role), "test")
    return {"authorization": f"Bearer {token}"}


# Which roles each route admits (admins and the system pass every role check).
ADMITTED = {
    "/user": {Role.SME, Role.EXPERT, Role.BROKER, Role.HUB, Role.ADMIN, Role.SERVICE},
    "/admin": {Role.ADMIN, Role.SERVICE},
    "/broker": {Role.BROKER, Role.ADMIN, Role.SERVICE},
    "/regional": {Role.BROKER, Role.HUB, Role.ADMIN, Role.SERVICE},
    "/sme": {Role.SME, Role.ADMIN, Role.SERVICE},
    "/expert": {Role.EXPERT, Role.ADMIN, Role.SERVICE},
}


@pytest.mark.parametrize("path", sorted(ADMITTED))
def test_anonymous_callers_get_a_401_on_every_protected_route(path: str) -> None:
    response = TestClient(_app()).get(path)
    assert response.status_code == 401
    assert response.json()["error"]["message_ja"] == "ログインが必要です"


@pytest.mark.parametrize("path", sorted(ADMITTED))
def test_each_role_route_admits_its_roles_and_admins_and_refuses_the_rest_with_a_403(path: str) -> None:
    client = TestClient(_app())
    for role in set(Role) - {Role.ANONYMOUS}:
        response = client.get(path, headers=_as(role))
        if role in ADMITTED[path]:
            assert response.status_code == 200 and response.json() == {"role": role}, (path, role)
        else:
            assert response.status_code == 403, (path, role)
            assert response.json()["error"]["message_en"] == "You may not do this"


def test_the_caller_is_anonymous_without_a_token_and_a_bad_token_is_a_401() -> None:
    client = TestClient(_app())
    assert client.get("/caller").json() == {"role": "anonymous"}
    assert client.get("/caller", headers={"authorization": "Bearer nonsense"}).status_code == 401
    assert client.get("/caller", headers={"authorization": "Basic abc"}).status_code == 401


def test_page_parameters_as_a_dependency() -> None:
    client = TestClient(_app())
    assert client.get("/page", params={"limit": 5, "offset": 10}).json() == {"limit": 5, "offset": 10}
    assert client.get("/page", params={"limit": 0}).status_code == 422


def test_what_needs_a_sign_in_says_so_in_the_document() -> None:
    """A route behind UserDep or a role declares the bearer scheme (the fuzzer then checks it refuses a call
    without a token or with a bad one: tests/fuzz); one open to anyone (CallerDep) declares nothing."""
    document = _app().openapi()
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": document["components"]["securitySchemes"]["bearer"]["description"],
    }
    assert document["paths"]["/user"]["get"]["security"] == [{"bearer": []}]
    assert document["paths"]["/admin"]["get"]["security"] == [{"bearer": []}]
    assert "security" not in document["paths"]["/caller"]["get"]
    client = TestClient(_app())
    assert client.get("/user", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


def test_the_caller_is_answered_on_the_event_loop_once_its_token_is_known() -> None:
    """Speed (issue 13): no token, or a token verified before, needs no worker thread; a new token is verified
    in one (a key fetch may block), and a forged one is still a 401."""
    import threading

    keys = PublicKeys.from_jwks(GATEWAY_KEYS.public_jwks())
    dependency = principal_dependency("test", keys)
    threads: list[str] = []

    def principal(request):
        threads.append(threading.current_thread().name)
        return dependency(request)

    principal.remembered = dependency.remembered  # type: ignore[attr-defined]
    app = _app()
    app.state.runtime = SimpleNamespace(principal=principal)
    client = TestClient(app)
    headers = _as(Role.SME)
    assert client.get("/caller").json() == {"role": "anonymous"} and threads == []
    assert client.get("/caller", headers=headers).json() == {"role": "sme"} and len(threads) == 1
    assert client.get("/caller", headers=headers).json() == {"role": "sme"} and len(threads) == 1  # remembered
    forged = {"authorization": headers["authorization"][:-4] + "AAAA"}
    assert client.get("/caller", headers=forged).status_code == 401 and len(threads) == 2


DepsModel = service_base("depstest")


class Note(DepsModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    text: str


def test_the_session_commits_what_the_route_commits_and_nothing_else(tmp_path: Path) -> None:
    """A route's session (opened on the event loop, used in the route's thread): a commit is written and wakes
    the relay; a route that fails after writing leaves nothing; a route that only reads gives its connection
    back."""
    engine = make_engine(f"sqlite:///{tmp_path / 'deps.sqlite3'}")
    DepsModel.metadata.create_all(engine)
    woken: list[bool] = []
    app = FastAPI()
    install_error_handlers(app)
    app.state.runtime = SimpleNamespace(engine=engine, events_written=lambda: woken.append(True))

    @app.post("/notes")
    def add(session: SessionDep) -> dict:
        session.add(Note(text="kept"))
        session.commit()
        return {}

    @app.post("/broken")
    def broken(session: SessionDep) -> dict:
        session.add(Note(text="half"))
        session.flush()  # written inside the transaction, then the route fails
        raise RuntimeError("after the write")

    @app.get("/notes")
    def read(session: SessionDep) -> list[str]:
        return [note.text for note in session.exec(select(Note))]

    client = TestClient(app, raise_server_exceptions=False)
    assert client.post("/notes").status_code == 200
    assert woken == [True]
    assert client.post("/broken").status_code == 500
    assert client.get("/notes").json() == ["kept"]
    assert engine.pool.checkedout() == 0  # every session gave its connection back
    with Session(engine) as session:
        assert [note.text for note in session.exec(select(Note))] == ["kept"]
    engine.dispose()
