"""The audit consumer (durable ``gateway-audit``): an admin's verification or rejection of an expert profile,
decided in profiles, lands in the gateway's audit log once per event (in-process, then through the running
system on real NATS: an expert's own entry, verified by an admin, appears in GET /api/v1/admin/audit)."""

from __future__ import annotations

import uuid

import pytest

from gateway import service
from gateway.consumers import AuditConsumer
from gateway.models import AuditEvent
from gateway.settings import GatewaySettings
from tests.conftest import Api, wait_until
from tests.e2e.helpers import create_expert, verifying_admin
from tsunagu.contracts import ExpertVerificationV1, PermanentEventError
from tsunagu.db import make_engine
from tsunagu.events import EventEnvelope, Subjects


def verification(subject: str, **overrides) -> EventEnvelope:
    data = ExpertVerificationV1(
        expert_id=str(uuid.uuid4()), user_id="expert-user", expert_name="山田 太郎", registration_number="812345"
    )
    return EventEnvelope.for_change(subject, "profiles", data.expert_id, 2, data.model_copy(update=overrides))


def test_verifications_and_rejections_are_audited_once(settings: GatewaySettings) -> None:
    from sqlmodel import Session, select

    engine = make_engine(settings.database_url_for("gateway"))
    consumer = AuditConsumer(engine)
    verified = verification(Subjects.EXPERT_VERIFIED)
    rejected = verification(Subjects.EXPERT_REJECTED, reason="登録簿と氏名が一致しません")
    assert consumer.apply(verified) is True
    assert consumer.apply(verified) is False  # a redelivery writes nothing
    assert consumer.apply(rejected) is True
    with Session(engine) as session:
        events = {event.kind: event for event in session.exec(select(AuditEvent))}
    assert set(events) == {"expert_verified", "expert_rejected"}
    assert events["expert_verified"].target == verified.data["expert_id"]
    assert events["expert_verified"].user_id == "expert-user"
    assert events["expert_rejected"].details["reason"] == "登録簿と氏名が一致しません"

    with pytest.raises(PermanentEventError):  # not a subject it audits: dead-lettered, not misread
        consumer.apply(verification(Subjects.EXPERT_CORRECTION_DECIDED))
    broken = EventEnvelope(type=Subjects.EXPERT_VERIFIED, source="profiles", subject_id="x", entity_version=1, data={})
    with pytest.raises(PermanentEventError):
        consumer.apply(broken)
    engine.dispose()
    assert service.AUDIT_CONSUMER == "gateway-audit"


@pytest.mark.e2e
def test_an_admins_verification_reaches_the_audit_log(api: Api) -> None:
    expert = api.register("expert")
    profile = create_expert(api, expert, verify=False)
    assert profile["verification"] == "pending"
    admin = verifying_admin(api)
    assert api.http.post(f"/api/v1/admin/experts/{profile['id']}/verify", headers=admin).status_code == 200

    def audited() -> list[dict]:
        response = api.http.get("/api/v1/admin/audit", headers=admin, params={"kind": "expert_verified"})
        assert response.status_code == 200, response.text
        return [event for event in response.json()["items"] if event["target"] == profile["id"]]

    event = wait_until(audited, timeout=30, message="the verification in the audit log")[0]
    me = api.http.get("/api/v1/auth/me", headers=expert).json()
    assert event["user_id"] == me["id"] and event["details"]["registration_number"] == profile["registration_number"]
