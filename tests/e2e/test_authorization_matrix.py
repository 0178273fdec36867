"""The authorization matrix (issue 9): every public endpoint × every role × own / another's object, against the
running system through the gateway.

The endpoints come from the gateway's merged OpenAPI (``/openapi.json``), so an endpoint added anywhere is in the
matrix at once, and the test fails while it has no rule here (``RULES``). Roles: anonymous, an SME, another SME,
an expert, another expert, a broker of the objects' prefecture (Okinawa), a broker of another prefecture, hub
staff of Okinawa, an admin. Objects come in two sets: set A belongs to the SME and the expert, set B to the
other SME and the other expert (both in Okinawa). Each case is one call:

- a denial must be a 401, 403 or 404, and its body must contain no value of the object (ids, names, titles);
- an allowed read must answer 2xx, and a list must not hold objects of a set the role may not read;
- an allowed change must not be refused as unauthorised (a 409 for a state the object is already in is fine);
- nothing answers 5xx.

Denials run first (and must change nothing: the objects' versions are compared after them), then allowed
reads, then allowed changes in an order that leaves later cases something to act on (each change's ``order``).
The test prints the matrix's size and what it found.
"""

from __future__ import annotations

import io
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from launcher.runner import System
from tests.conftest import PASSWORD, Api, wait_until
from tests.e2e.helpers import create_expert, create_organization, in_projection, submit_request, wait_ranked
from tests.factories import expert_body, organization_body, project_body, request_body, session_body, unique_name

pytestmark = pytest.mark.e2e

ROLES = (
    "anonymous",
    "sme",
    "another sme",
    "expert",
    "another expert",
    "broker",
    "broker elsewhere",
    "hub",
    "admin",
)
SIDE = {"sme": "A", "expert": "A", "another sme": "B", "another expert": "B"}
SETS = ("A", "B")
DENIED = (401, 403, 404)

# --- rules: (role, object set or None) -> allowed ----------------------------------------------------

Rule = Callable[[str, str | None], bool]


def anyone(role: str, s: str | None) -> bool:
    return True


def signed_in(role: str, s: str | None) -> bool:
    return role != "anonymous"


def only(*roles: str) -> Rule:
    return lambda role, s: role in roles


def admin(role: str, s: str | None) -> bool:
    return role == "admin"


def own(*roles: str) -> Rule:
    """The role's own object (set A for the SME and the expert, B for the others), or an admin."""
    return lambda role, s: role == "admin" or (role in roles and SIDE.get(role) == s)


def own_only(*roles: str) -> Rule:
    """The role's own object; not even an admin (it is that person's answer to give)."""
    return lambda role, s: role in roles and SIDE.get(role) == s


def either(*rules: Rule) -> Rule:
    return lambda role, s: any(rule(role, s) for rule in rules)


SMES = ("sme", "another sme")
EXPERTS = ("expert", "another expert")
OKINAWA_STAFF = only("broker", "hub")
REGIONAL = only("broker", "broker elsewhere", "hub")
REQUEST_READER = either(own(*SMES), OKINAWA_STAFF)
PROPOSAL_READER = either(REQUEST_READER, own_only(*EXPERTS))
OPERATOR = either(own(*SMES), only("broker"))  # a request's SME or a covering broker (admins act as brokers)
SESSION_READER = either(only(*SMES, "broker", "hub"), own(*EXPERTS))
PROJECT_READER = either(own(*SMES), OKINAWA_STAFF)


def nobody(role: str, s: str | None) -> bool:
    return False


@dataclass
class Spec:
    rule: Rule
    body: Callable[[World, str | None], Any] | None = None
    params: dict[str, str] = field(default_factory=dict)  # path parameter -> object kind, when not the default
    order: int = 50  # allowed changes run in this order
    ok: Callable[[httpx.Response], bool] | None = None  # an allowed call's acceptable answer (default: see module)
    hides: str | None = None  # a list: objects of this kind a role may not read must not be in it
    reader: Rule | None = None  # who may read one object of ``hides``
    kind: str = "default"  # "authentication": signing in itself (no allow/deny, only no 5xx and no leak)
    multipart: bool = False
    query: dict[str, str] | None = None  # query parameters the endpoint requires


def _reason(world: World, s: str | None) -> dict:
    return {"reason": "権限確認テスト"}


def _member_missing(response: httpx.Response) -> bool:
    return response.status_code == 404 and "Member" in response.json()["error"]["message_en"]


def _any_answer(response: httpx.Response) -> bool:
    return response.status_code < 500


RULES: dict[tuple[str, str], Spec] = {
    # --- gateway: reference data, accounts, notifications, dead letters --------------------------------
    **{("get", f"/api/v1/reference/{name}"): Spec(anyone) for name in ("prefectures", "topics", "dss-roles")},
    ("get", "/api/v1/reference/self-diagnosis"): Spec(anyone),
    ("get", "/api/v1/reference/digitalization-stages"): Spec(anyone),
    ("post", "/api/v1/auth/register"): Spec(
        anyone,
        body=lambda w, s: {
            "email": f"matrix-{uuid.uuid4().hex[:10]}@example.jp",
            "password": PASSWORD,
            "display_name": "マトリクス",
            "role": "sme",
        },
        ok=lambda r: r.status_code in (201, 429),
    ),
    ("post", "/api/v1/auth/token"): Spec(anyone, kind="authentication"),
    ("post", "/api/v1/auth/refresh"): Spec(anyone, kind="authentication"),
    # Last: they may end the caller's session (and so its token, for every later case).
    ("post", "/api/v1/auth/logout"): Spec(anyone, kind="authentication", order=99),
    ("get", "/api/v1/auth/me"): Spec(signed_in),
    ("get", "/api/v1/auth/oidc/providers"): Spec(anyone),
    ("post", "/api/v1/auth/password"): Spec(signed_in, kind="authentication", order=99),
    ("get", "/api/v1/notifications"): Spec(signed_in, hides="notification", reader=own_only(*SMES)),
    ("post", "/api/v1/notifications/read-all"): Spec(signed_in),
    ("post", "/api/v1/notifications/{notification_id}/read"): Spec(own_only(*SMES)),
    ("get", "/api/v1/admin/dead-letters"): Spec(admin),
    ("post", "/api/v1/admin/dead-letters/{sequence}/replay"): Spec(admin, ok=lambda r: r.status_code in (200, 404)),
    ("get", "/api/v1/admin/users"): Spec(admin),
    ("post", "/api/v1/admin/users"): Spec(
        admin,
        body=lambda w, s: {
            "email": f"matrix-{uuid.uuid4().hex[:10]}@example.jp",
            "password": PASSWORD,
            "display_name": "マトリクス職員",
            "role": "hub",
            "prefectures": ["47"],
        },
    ),
    ("patch", "/api/v1/admin/users/{user_id}"): Spec(
        admin, body=lambda w, s: {"display_name": "名前変更"}, params={"user_id": "spare_user"}
    ),
    ("post", "/api/v1/admin/users/{user_id}/block"): Spec(
        admin, body=_reason, params={"user_id": "spare_user"}, order=60
    ),
    ("post", "/api/v1/admin/users/{user_id}/unblock"): Spec(admin, params={"user_id": "spare_user"}, order=61),
    ("get", "/api/v1/admin/audit"): Spec(admin),
    # --- profiles: experts ------------------------------------------------------------------------------
    ("post", "/api/v1/experts"): Spec(
        only("expert", "another expert", "admin"),
        body=lambda w, s: expert_body(name=unique_name(), prefectures=["47"]),
        ok=lambda r: r.status_code in (201, 409),  # an expert who has a profile already: 409
    ),
    ("get", "/api/v1/experts"): Spec(either(REGIONAL, admin), hides="pending_expert", reader=admin),
    ("get", "/api/v1/experts/me"): Spec(only(*EXPERTS)),
    ("get", "/api/v1/experts/{expert_id}"): Spec(anyone),
    ("patch", "/api/v1/experts/{expert_id}"): Spec(own(*EXPERTS), body=lambda w, s: {"bio": "権限確認で更新"}),
    ("put", "/api/v1/experts/{expert_id}/visibility"): Spec(own(*EXPERTS), body=lambda w, s: {"visibility": {}}),
    ("post", "/api/v1/experts/{expert_id}/confirm-active"): Spec(own(*EXPERTS)),
    ("post", "/api/v1/experts/{expert_id}/corrections"): Spec(
        own(*EXPERTS),
        body=lambda w, s: {"field": "registration_date", "proposed_value": "2025-04-02", "reason": "誤記"},
    ),
    ("get", "/api/v1/experts/{expert_id}/corrections"): Spec(own(*EXPERTS)),
    # --- profiles: the operator's work ------------------------------------------------------------------
    ("post", "/api/v1/admin/experts/import"): Spec(admin, multipart=True),
    ("get", "/api/v1/admin/experts/export"): Spec(admin),
    ("post", "/api/v1/admin/experts/freshness/run"): Spec(admin),
    ("get", "/api/v1/admin/experts/pending"): Spec(admin),
    ("post", "/api/v1/admin/experts/{expert_id}/verify"): Spec(admin, params={"expert_id": "pending_expert"}, order=71),
    ("post", "/api/v1/admin/experts/{expert_id}/reject"): Spec(
        admin, body=_reason, params={"expert_id": "pending_expert"}, order=70
    ),
    ("get", "/api/v1/admin/experts/claims"): Spec(admin),
    ("post", "/api/v1/admin/experts/claims/{claim_id}/reject"): Spec(admin, body=_reason, order=80),
    ("post", "/api/v1/admin/experts/claims/{claim_id}/accept"): Spec(admin, order=81),  # 409 after the reject
    ("get", "/api/v1/admin/experts/corrections"): Spec(admin),
    ("post", "/api/v1/admin/experts/corrections/{correction_id}/reject"): Spec(admin, body=_reason, order=80),
    ("post", "/api/v1/admin/experts/corrections/{correction_id}/accept"): Spec(admin, order=81),
    # --- profiles: organisations and invitations --------------------------------------------------------
    ("post", "/api/v1/organizations"): Spec(
        only("sme", "another sme", "broker", "hub", "admin"),
        body=lambda w, s: organization_body(prefecture="47"),
    ),
    ("get", "/api/v1/organizations"): Spec(
        only("sme", "another sme", "broker", "broker elsewhere", "hub", "admin"),
        hides="organization",
        reader=either(own(*SMES), OKINAWA_STAFF),
    ),
    ("get", "/api/v1/organizations/invitations"): Spec(signed_in, hides="invitation", reader=own_only(*SMES)),
    ("post", "/api/v1/organizations/invitations/{invitation_id}/decline"): Spec(own_only(*SMES), order=85),
    ("post", "/api/v1/organizations/invitations/{invitation_id}/accept"): Spec(own_only(*SMES), order=86),
    ("get", "/api/v1/organizations/{organization_id}"): Spec(either(own(*SMES), OKINAWA_STAFF)),
    ("patch", "/api/v1/organizations/{organization_id}"): Spec(own(*SMES), body=lambda w, s: {"employees": 31}),
    ("post", "/api/v1/organizations/{organization_id}/members"): Spec(
        own(*SMES), body=lambda w, s: {"user_id": f"matrix-{uuid.uuid4().hex[:8]}"}
    ),
    ("delete", "/api/v1/organizations/{organization_id}/members/{user_id}"): Spec(
        own(*SMES), params={"user_id": "absent_user"}, ok=_member_missing
    ),
    ("get", "/api/v1/organizations/{organization_id}/invitations"): Spec(own(*SMES)),
    ("delete", "/api/v1/organizations/{organization_id}/invitations/{invitation_id}"): Spec(
        own(*SMES), params={"invitation_id": "org_invitation"}, order=84
    ),
    # --- matching: requests, proposals, engagements ---------------------------------------------------------
    ("post", "/api/v1/requests"): Spec(only("sme", "another sme", "admin"), body=lambda w, s: request_body()),
    ("get", "/api/v1/requests"): Spec(
        only("sme", "another sme", "broker", "broker elsewhere", "hub", "admin"),
        hides="request",
        reader=REQUEST_READER,
    ),
    ("get", "/api/v1/requests/{request_id}"): Spec(REQUEST_READER),
    ("get", "/api/v1/requests/{request_id}/ranking"): Spec(REQUEST_READER),
    # The proposed expert also reads the request's proposals and history, narrowed to their own proposal.
    ("get", "/api/v1/requests/{request_id}/history"): Spec(PROPOSAL_READER),
    ("get", "/api/v1/requests/{request_id}/proposals"): Spec(PROPOSAL_READER),
    ("patch", "/api/v1/requests/{request_id}"): Spec(own_only(*SMES), body=lambda w, s: {"title": "権限確認の相談"}),
    ("post", "/api/v1/requests/{request_id}/submit"): Spec(own_only(*SMES)),
    ("post", "/api/v1/requests/{request_id}/cancel"): Spec(OPERATOR, body=_reason, order=95),
    ("post", "/api/v1/requests/{request_id}/proposals"): Spec(
        only("broker", "admin"), body=lambda w, s: {"expert_id": w.ids[s]["expert"]}
    ),
    ("get", "/api/v1/proposals"): Spec(signed_in, hides="proposal", reader=PROPOSAL_READER),
    ("get", "/api/v1/proposals/{proposal_id}"): Spec(PROPOSAL_READER),
    ("post", "/api/v1/proposals/{proposal_id}/accept"): Spec(own_only(*EXPERTS), order=55),
    ("post", "/api/v1/proposals/{proposal_id}/decline"): Spec(own_only(*EXPERTS), body=_reason, order=56),
    ("post", "/api/v1/proposals/{proposal_id}/withdraw"): Spec(only("broker", "admin"), body=_reason, order=57),
    ("post", "/api/v1/proposals/{proposal_id}/confirm"): Spec(own_only(*SMES), order=54),
    ("get", "/api/v1/engagements"): Spec(signed_in, hides="engagement", reader=PROPOSAL_READER),
    ("get", "/api/v1/engagements/{engagement_id}"): Spec(PROPOSAL_READER),
    ("post", "/api/v1/engagements/{engagement_id}/ratings"): Spec(
        either(own_only(*SMES), own_only(*EXPERTS)), body=lambda w, s: {"stars": 4}, order=91
    ),
    ("post", "/api/v1/engagements/{engagement_id}/complete"): Spec(
        either(own_only(*SMES), own_only(*EXPERTS), only("broker", "admin")), order=90
    ),
    ("post", "/api/v1/engagements/{engagement_id}/cancel"): Spec(
        either(own_only(*SMES), own_only(*EXPERTS), only("broker", "admin")), body=_reason, order=89
    ),
    # --- search -------------------------------------------------------------------------------------------
    ("get", "/api/v1/search/experts"): Spec(anyone, hides="pending_expert", reader=lambda role, s: False),
    ("get", "/api/v1/search/suggest"): Spec(
        anyone, hides="pending_expert", reader=lambda role, s: False, query={"q": "検証"}
    ),
    ("get", "/api/v1/search/requests"): Spec(
        either(REGIONAL, admin), hides="request", reader=either(OKINAWA_STAFF, admin)
    ),
    ("get", "/api/v1/search/projects"): Spec(either(REGIONAL, admin)),
    # The search index's sources (tsunagu search reindex, issue 12): admins only.
    ("get", "/api/v1/admin/experts/published"): Spec(admin),
    ("get", "/api/v1/admin/search-sources/requests"): Spec(admin),
    ("get", "/api/v1/admin/search-sources/projects"): Spec(admin),
    # --- matching: 相談会 (issue 11). Set A's day invites the expert and has the SME registered, set B's the
    # others; both in Okinawa, created, solved and published by its broker. Every SME reads every day (it is
    # announced so they can register) but only their own meetings; invited experts read their own day.
    ("post", "/api/v1/sessions"): Spec(only("broker", "admin"), body=lambda w, s: session_body([w.ids["A"]["expert"]])),
    ("get", "/api/v1/sessions"): Spec(signed_in, hides="session", reader=SESSION_READER),
    ("get", "/api/v1/sessions/{session_id}"): Spec(SESSION_READER),
    ("get", "/api/v1/sessions/{session_id}/schedule.ics"): Spec(SESSION_READER),
    ("get", "/api/v1/sessions/{session_id}/schedule.csv"): Spec(SESSION_READER),
    ("get", "/api/v1/sessions/{session_id}/assignment"): Spec(either(OKINAWA_STAFF, admin)),
    # Any SME registers for any day (a 409 for the one they are registered for); an admin may for them.
    ("post", "/api/v1/sessions/{session_id}/registrations"): Spec(
        only(*SMES, "admin"), body=lambda w, s: {"topics": ["ransomware"]}, order=30
    ),
    # Solving changes the day: only the broker of the venue (hub staff of Okinawa read it but 403 here).
    ("post", "/api/v1/sessions/{session_id}/assignment"): Spec(only("broker", "admin"), order=31),
    # --- matching: hub projects (issue 11). Set A's project is for the SME's organisation, set B's for the
    # other's; both in Okinawa, created by its hub staff. The matrix's experts are 登録セキスペ in no team, so
    # none may state interest (learners: tests/matching/test_hub.py) and their list of projects is empty.
    ("post", "/api/v1/projects"): Spec(
        only("hub", "admin"), body=lambda w, s: project_body(title=unique_name(), sme_name=None)
    ),
    ("get", "/api/v1/projects"): Spec(signed_in, hides="project", reader=PROJECT_READER),
    ("get", "/api/v1/projects/{project_id}"): Spec(PROJECT_READER),
    ("post", "/api/v1/projects/{project_id}/interests"): Spec(nobody),
    ("post", "/api/v1/projects/teams"): Spec(
        only("hub", "admin"), body=lambda w, s: {"project_ids": [w.ids["A"]["project"]]}, order=40
    ),
    ("post", "/api/v1/projects/{project_id}/team/confirm"): Spec(only("hub", "admin"), order=41),
}

# Path parameters and the kind of object each names (a Spec's ``params`` overrides it).
PARAMETER_KINDS = {
    "expert_id": "expert",
    "organization_id": "organization",
    "request_id": "request",
    "proposal_id": "proposal",
    "engagement_id": "engagement",
    "invitation_id": "invitation",
    "notification_id": "notification",
    "correction_id": "correction",
    "claim_id": "claim",
    "user_id": "spare_user",
    "sequence": "sequence",
    "session_id": "session",
    "project_id": "project",
}


@dataclass
class World:
    headers: dict[str, dict[str, str]]
    ids: dict[str, dict[str, str]]  # set -> kind -> id
    values: dict[str, list[str]]  # set -> values no denial may show

    def versions(self, api: Api) -> dict[str, Any]:
        admin = self.headers["admin"]
        seen = {}
        for s in SETS:
            for kind, path in (
                ("expert", "/api/v1/experts/"),
                ("organization", "/api/v1/organizations/"),
                ("request", "/api/v1/requests/"),
                ("session", "/api/v1/sessions/"),
                ("project", "/api/v1/projects/"),
            ):
                body = api.http.get(path + self.ids[s][kind], headers=admin).json()
                seen[f"{kind} {s}"] = body.get("version", body.get("updated_at"))
        return seen


def _me(api: Api, headers: dict[str, str]) -> str:
    return api.http.get("/api/v1/auth/me", headers=headers).json()["id"]


def _ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()


def _build_world(api: Api, system: System) -> World:
    headers = {
        "anonymous": {},
        "sme": api.register("sme", name="権限 SME"),
        "another sme": api.register("sme", name="別の SME"),
        "expert": api.register("expert", name="権限 専門家"),
        "another expert": api.register("expert", name="別の 専門家"),
        "broker": api.account("broker", prefectures=["47"]),
        "broker elsewhere": api.account("broker", prefectures=["13"]),
        "hub": api.account("hub", prefectures=["47"]),
        "admin": api.account("admin"),
    }
    admin = headers["admin"]
    ids: dict[str, dict[str, str]] = {"A": {}, "B": {}}
    values: dict[str, list[str]] = {"A": [], "B": []}
    for s, sme, expert in (("A", "sme", "expert"), ("B", "another sme", "another expert")):
        name = unique_name()
        profile = create_expert(api, headers[expert], name=name, prefectures=["47"])
        expert_id = profile["id"]
        wait_until(lambda: in_projection(system, expert_id), timeout=60, message="the expert in matching")  # noqa: B023
        organization = create_organization(api, system, headers[sme], prefecture="47")
        title = f"権限確認{uuid.uuid4().hex[:8]}"
        request = submit_request(api, headers[sme], title=title, organization_id=organization["id"])
        engaged = submit_request(api, headers[sme], title=title + "成立", organization_id=organization["id"])
        for submitted in (request, engaged):  # ranked first, so no ranking races the steps below
            wait_ranked(api, headers[sme], submitted["id"])
        broker = headers["broker"]
        proposal = _ok(
            api.http.post(
                f"/api/v1/requests/{request['id']}/proposals", headers=broker, json={"expert_id": profile["id"]}
            ),
            201,
        )
        accepted = _ok(
            api.http.post(
                f"/api/v1/requests/{engaged['id']}/proposals", headers=broker, json={"expert_id": profile["id"]}
            ),
            201,
        )
        _ok(api.http.post(f"/api/v1/proposals/{accepted['id']}/accept", headers=headers[expert]))
        _ok(api.http.post(f"/api/v1/proposals/{accepted['id']}/confirm", headers=headers[sme]))
        engagement = next(
            item
            for item in _ok(api.http.get("/api/v1/engagements", headers=headers[sme], params={"limit": 100}))["items"]
            if item["proposal_id"] == accepted["id"]
        )
        correction = _ok(
            api.http.post(
                f"/api/v1/experts/{profile['id']}/corrections",
                headers=headers[expert],
                json={"field": "registration_date", "proposed_value": "2025-04-03", "reason": "誤記"},
            ),
            201,
        )
        claimant = api.register("expert", name="申立人")
        claimed = api.http.post(
            "/api/v1/experts",
            headers=claimant,
            json=expert_body(registration_number=profile["registration_number"], name=name),
        )
        assert claimed.status_code == 409, claimed.text
        pending = create_expert(api, api.register("expert"), verify=False, name=unique_name())
        ids[s] |= {
            "expert": profile["id"],
            "organization": organization["id"],
            "request": request["id"],
            "proposal": proposal["id"],
            "engagement": engagement["id"],
            "correction": correction["id"],
            "pending_expert": pending["id"],
            "sme_user": _me(api, headers[sme]),
            "spare_user": _me(api, api.register("sme", name="予備")),
            "absent_user": f"absent-{uuid.uuid4().hex[:8]}",
            "sequence": str(10**9),
        }
        values[s] += [name, organization["name"], title, pending["name"], profile["id"], organization["id"]]
        values[s] += [request["id"], engaged["id"], proposal["id"], accepted["id"], engagement["id"]]
        values[s] += [correction["id"], pending["id"]]
    # Invitations: each SME is invited into the other's organisation (set A's invitation is the SME's own).
    for s, inviter, other in (("A", "another sme", "B"), ("B", "sme", "A")):
        invitation = _ok(
            api.http.post(
                f"/api/v1/organizations/{ids[other]['organization']}/members",
                headers=headers[inviter],
                json={"user_id": ids[s]["sme_user"]},
            ),
            201,
        )
        ids[s]["invitation"] = invitation["id"]
        ids[other]["org_invitation"] = invitation["id"]
        values[s].append(invitation["id"])
    claims = _ok(api.http.get("/api/v1/admin/experts/claims", headers=admin, params={"limit": 100}))["items"]
    for s in SETS:
        claim = next(item for item in claims if item["expert_id"] == ids[s]["expert"])
        ids[s]["claim"] = claim["id"]
        values[s].append(claim["id"])
    # Each SME is told of the proposal: that notification is theirs.
    for s, sme in (("A", "sme"), ("B", "another sme")):

        def told(sme: str = sme) -> str | None:
            items = _ok(api.http.get("/api/v1/notifications", headers=headers[sme], params={"limit": 100}))["items"]
            return next((item["id"] for item in items if item["kind"] == "matching.proposal.proposed"), None)

        ids[s]["notification"] = wait_until(told, timeout=60, message="the SME's notification")
        values[s].append(ids[s]["notification"])
    _sessions_and_projects(api, headers, ids, values)
    return World(headers=headers, ids=ids, values=values)


def _sessions_and_projects(
    api: Api, headers: dict[str, dict[str, str]], ids: dict[str, dict[str, str]], values: dict[str, list[str]]
) -> None:
    """Issue 11: per set a 相談会 (its expert invited, its SME registered, solved and published by the broker of
    Okinawa) and a hub project for its SME's organisation (created by the hub staff of Okinawa)."""
    for s, sme in (("A", "sme"), ("B", "another sme")):
        title = f"権限確認の相談会{uuid.uuid4().hex[:8]}"
        day = _ok(
            api.http.post(
                "/api/v1/sessions", headers=headers["broker"], json=session_body([ids[s]["expert"]], title=title)
            ),
            201,
        )
        registration = _ok(
            api.http.post(
                f"/api/v1/sessions/{day['id']}/registrations",
                headers=headers[sme],
                json={"topics": ["ransomware"], "organization_id": ids[s]["organization"]},
            ),
            201,
        )
        plan = _ok(api.http.post(f"/api/v1/sessions/{day['id']}/assignment", headers=headers["broker"]))
        assert [m["registration_id"] for m in plan["meetings"]] == [registration["id"]], plan
        project_title = f"権限確認のプロジェクト{uuid.uuid4().hex[:8]}"
        project = _ok(
            api.http.post(
                "/api/v1/projects",
                headers=headers["hub"],
                json=project_body(title=project_title, sme_name=None, organization_id=ids[s]["organization"]),
            ),
            201,
        )
        ids[s] |= {"session": day["id"], "project": project["id"]}
        values[s] += [day["id"], title, registration["id"], project["id"], project_title]


def _operations(document: dict) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


@dataclass
class Case:
    method: str
    template: str
    role: str
    set: str | None
    spec: Spec

    @property
    def allowed(self) -> bool:
        return self.spec.rule(self.role, self.set)

    def path(self, world: World) -> str:
        def fill(match: re.Match) -> str:
            name = match.group(1)
            kind = self.spec.params.get(name, PARAMETER_KINDS[name])
            return world.ids[self.set or "A"][kind]

        return re.sub(r"\{([^}]+)\}", fill, self.template)

    def call(self, api: Api, world: World) -> httpx.Response:
        headers = world.headers[self.role]
        url = self.path(world)
        if self.spec.multipart:
            files = {"file": ("list.csv", io.BytesIO("ID,氏名\n".encode()), "text/csv")}
            return api.http.request(self.method, url, headers=headers, files=files, data={"dry_run": "true"})
        body = self.spec.body(world, self.set) if self.spec.body else None
        return api.http.request(self.method, url, headers=headers, json=body, params=self.spec.query)

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.template} as {self.role}" + (f" on set {self.set}" if self.set else "")


def _cases(operations: list[tuple[str, str]]) -> list[Case]:
    cases = []
    for method, template in operations:
        spec = RULES[(method, template)]
        sets: tuple[str | None, ...] = SETS if "{" in template else (None,)
        cases += [Case(method, template, role, s, spec) for role in ROLES for s in sets]
    return cases


def _leaks(world: World, case: Case, response: httpx.Response) -> list[str]:
    text = response.text
    sets = (case.set,) if case.set else SETS
    return [value for s in sets for value in world.values[s] if value and value in text]


def test_every_endpoint_every_role_own_and_anothers_object(api: Api, system: System) -> None:
    response = api.http.get("/api/v1/openapi.json")
    if response.status_code == 404:
        response = api.http.get("/openapi.json")  # where the gateway serves the merged document
    document = _ok(response)
    operations = _operations(document)
    missing = [f"{method.upper()} {path}" for method, path in operations if (method, path) not in RULES]
    operations = [operation for operation in operations if operation in RULES]

    world = _build_world(api, system)
    cases = _cases(operations)
    # An endpoint with no rule fails the test (after the others have been checked, so all is reported at once).
    findings: list[str] = [f"{endpoint}: no rule in the authorization matrix" for endpoint in missing]
    tally: Counter[str] = Counter()
    before = world.versions(api)

    def check(case: Case) -> None:
        response = case.call(api, world)
        tally["allowed" if case.allowed else "denied"] += 1
        if response.status_code >= 500:
            findings.append(f"{case}: {response.status_code} {response.text[:200]}")
            return
        if case.spec.kind == "authentication":
            if leaked := _leaks(world, case, response):
                findings.append(f"{case}: the answer shows {leaked}")
            return
        if not case.allowed:
            if response.status_code not in DENIED:
                findings.append(f"{case}: expected a denial, got {response.status_code} {response.text[:200]}")
            elif leaked := _leaks(world, case, response):
                findings.append(f"{case}: the denial shows {leaked}")
            return
        if case.spec.ok is not None:
            good = case.spec.ok(response)
        elif case.method == "get":
            good = 200 <= response.status_code < 300
        else:
            good = response.status_code not in DENIED
        if not good:
            findings.append(f"{case}: expected it allowed, got {response.status_code} {response.text[:200]}")
        if case.spec.hides and good:
            reader = case.spec.reader or (lambda role, s: False)
            for s in SETS:
                hidden = world.ids[s][case.spec.hides]
                if not reader(case.role, s) and hidden in response.text:
                    findings.append(f"{case}: the list shows {case.spec.hides} of set {s}")

    # 1. Every denial (they must change nothing), 2. allowed reads, 3. allowed changes in their order.
    for case in (case for case in cases if not case.allowed):
        check(case)
    assert world.versions(api) == before, "a denied call changed an object"
    for case in (case for case in cases if case.allowed and case.method == "get"):
        check(case)
    changes = sorted((case for case in cases if case.allowed and case.method != "get"), key=lambda c: c.spec.order)
    for case in changes:
        check(case)

    print(
        f"\nauthorization matrix: {len(operations)} endpoints x {len(ROLES)} roles x own/another's object = "
        f"{len(cases)} cases ({tally['denied']} denials, {tally['allowed']} allowed); findings: {len(findings)}"
    )
    for finding in findings:
        print("  " + finding)
    assert not findings, "\n".join(findings)
