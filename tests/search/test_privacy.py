"""Privacy of the search indexes (issue 12): requests and hub projects arrive with the people they concern,
a cancellation reason and the SME's organisation; experts arrive as their public view only. No query,
filter, facet, snippet or suggestion reveals any of that, to any role, through the real app."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from services.search.consumers import index_broker_documents, index_published
from tsunagu.auth import Role
from tsunagu.db import session_scope
from tsunagu.events import Subjects

SECRETS = {
    "organization_id": "orgsecretxyz",
    "sme_user_ids": "smeusersecret",
    "actor_id": "actorsecret",
    "reason": "退職予定の社長",
    "member_user_ids": "learnersecret",
    "hub_organization_id": "hubsecretorg",
}
FACETS = ["prefecture", "region", "topic", "skill", "onsite", "remote", "state"]


def test_no_answer_reveals_a_private_field_to_any_role(
    client, database: Engine, index, broker_indexes, auth, published, request_event, project_event
) -> None:
    events = [
        request_event(
            Subjects.REQUEST_CANCELLED,
            2,
            organization_id=SECRETS["organization_id"],
            sme_user_ids=[SECRETS["sme_user_ids"]],
            actor_id=SECRETS["actor_id"],
            reason=SECRETS["reason"],
            status="cancelled",
        ),
        request_event(Subjects.REQUEST_UPDATED, 1, sme_user_ids=[SECRETS["sme_user_ids"]], prefecture="27"),
    ]
    projects = [
        project_event(
            member_user_ids=[SECRETS["member_user_ids"]],
            actor_id=SECRETS["actor_id"],
            hub_organization_id=SECRETS["hub_organization_id"],
            sme_name=None,
        )
    ]
    hidden_expert = published(1, name="非公開 花子", bio="退職予定の社長と面談", active=False)
    with session_scope(database) as session:
        index_broker_documents(session, broker_indexes, events + projects)
        index_published(session, index, [published(1), hidden_expert])

    callers = {
        "anonymous": {},
        "sme": auth(Role.SME, prefectures=["13", "27"]),
        "expert": auth(Role.EXPERT, prefectures=["13", "27"]),
        "broker elsewhere": auth(Role.BROKER, prefectures=["01"]),
        "broker": auth(Role.BROKER, prefectures=["13", "27"]),
        "hub": auth(Role.HUB, prefectures=["13", "27"]),
        "admin": auth(Role.ADMIN),
    }
    secrets = [*SECRETS.values(), "非公開"]
    for who, headers in callers.items():
        answers = []
        for secret in secrets:
            for path, extra in (
                ("/search/experts", {"facet": ["prefecture", "region", "topic", "skill", "role", "kind"]}),
                ("/search/requests", {"facet": FACETS, "state": ["open", "cancelled"]}),
                ("/search/projects", {"facet": ["prefecture", "region", "topic", "role", "state"]}),
            ):
                answers.append(client.get(path, params={"q": secret, **extra}, headers=headers))
                answers.append(client.get(path, params={"skill": secret, **extra}, headers=headers))
            answers.append(client.get("/search/suggest", params={"q": secret[:3]}, headers=headers))
        # Browsing everything with every facet, and suggestions for every first character of the secrets.
        for path in ("/search/requests", "/search/projects", "/search/experts"):
            answers.append(client.get(path, params={"limit": 100}, headers=headers))
        for secret in secrets:
            answers.append(client.get("/search/suggest", params={"q": secret[0], "limit": 20}, headers=headers))
        for response in answers:
            assert response.status_code in (200, 401, 403), (who, response.request.url, response.text)
            for secret in secrets:
                assert secret not in response.text, (who, response.request.url)
    # The documents were indexed (the test is not vacuous): staff of the region find the requests.
    page = client.get("/search/requests", params={"state": ["open", "cancelled"]}, headers=callers["broker"]).json()
    assert page["total"] == 2
    assert client.get("/search/projects", headers=callers["hub"]).json()["total"] == 1
