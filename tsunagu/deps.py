"""FastAPI dependencies as types, shared by every service (as in full-stack-fastapi-template's
``api/deps.py``): a route says what it needs in its signature, e.g.

    def submit(body: RequestCreate, session: SessionDep, caller: SmeDep) -> RequestRead: ...

- ``RuntimeDep``: the process's ``ServiceRuntime`` (engine, settings, NATS).
- ``SessionDep``: a database session for this request. The route commits (one transaction per
  request: the change and its outbox events together); anything not committed is rolled back. A commit
  wakes the outbox relay, so events go out at once instead of at its next poll.
- ``CallerDep``: the verified caller, or the anonymous principal when no token was sent.
- ``UserDep``: any signed-in caller (401 otherwise). ``AdminDep``, ``BrokerDep``, ``RegionalStaffDep``,
  ``SmeDep``, ``ExpertDep``: callers of that role (admins and the system pass every role check; 403
  otherwise, and a 403 shows nothing of any object).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPBearer
from sqlalchemy import event
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from tsunagu.auth import Principal, Role, require_authenticated
from tsunagu.errors import forbidden
from tsunagu.pagination import PageParams, page_params
from tsunagu.service import ServiceRuntime


# The dependencies that only read what is at hand are ``async def``: FastAPI runs a plain ``def`` dependency in a
# worker thread, a hand-off that costs more than their work (issue 13, py-spy). What may block stays ``def``.
async def get_runtime(request: Request) -> ServiceRuntime:
    return request.app.state.runtime


RuntimeDep = Annotated[ServiceRuntime, Depends(get_runtime)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    # Opened on the event loop: a new session does no I/O until the route's first statement (in the route's
    # worker thread). A plain ``def`` generator cost two thread hand-offs per request, one in and one out
    # (issue 13: a quarter of a profile read's CPU went to waking worker threads, py-spy).
    session = Session(runtime.engine, expire_on_commit=False)
    event.listen(session, "after_commit", lambda _session: runtime.events_written())
    try:
        yield session
    finally:
        # Whatever the route did not commit is rolled back (nothing half-written). Over a network (PostgreSQL)
        # that waits for the server, so it goes to a worker thread; SQLite's rollback is a call into the
        # library in this process that never waits, and a committed or unused session holds no connection.
        if session.in_transaction() and runtime.engine.dialect.name != "sqlite":
            await run_in_threadpool(_roll_back_and_close, session)
        else:
            _roll_back_and_close(session)


def _roll_back_and_close(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


async def get_caller(request: Request, runtime: RuntimeDep) -> Principal:
    # Answered on the event loop when that needs no I/O (no token, or one already verified: a service's
    # ``principal.remembered``); otherwise verified in a worker thread (a key fetch, the gateway's database).
    remembered = getattr(runtime.principal, "remembered", None)
    known = remembered(request) if remembered is not None else None
    return known if known is not None else await run_in_threadpool(runtime.principal, request)


CallerDep = Annotated[Principal, Depends(get_caller)]


# Only for the OpenAPI document: an operation that needs a signed-in caller says so (``security``), so a client
# knows, and the fuzzer checks that it refuses a call without a token or with a bad one (tests/fuzz). The token
# itself is read and verified by ``runtime.principal`` (bearer header or the web UI's cookie).
_BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="サインインで得たアクセストークン / The access token from POST /api/v1/auth/token",
)


async def get_user(caller: CallerDep, _token: Annotated[object, Security(_BEARER)] = None) -> Principal:
    return require_authenticated(caller)


UserDep = Annotated[Principal, Depends(get_user)]


def require_role(*roles: Role):
    """A dependency admitting callers of these roles (and admins and the system)."""

    async def _caller(caller: UserDep) -> Principal:
        if caller.role not in roles and not caller.is_privileged:
            raise forbidden()
        return caller

    return _caller


AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]
BrokerDep = Annotated[Principal, Depends(require_role(Role.BROKER))]
RegionalStaffDep = Annotated[Principal, Depends(require_role(Role.BROKER, Role.HUB))]
SmeDep = Annotated[Principal, Depends(require_role(Role.SME))]
ExpertDep = Annotated[Principal, Depends(require_role(Role.EXPERT))]
PageDep = Annotated[PageParams, Depends(page_params)]
