"""Test data, in one place (as Netflix dispatch's ``tests/factories.py``): request bodies a real client
would send, with defaults a test overrides by keyword. Every builder returns a fresh dict.

Registration numbers come from a range of their own: demo data (services.profiles.demo) stays below 500000
for the sizes the tests import, and the tests that name a number pick it from 800000 up, so a generated
number never collides with either, nor with another test in the same run.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from typing import Any

from tsunagu.auth import Principal, SigningKeys, issue_token

_registration_numbers = itertools.count(random.Random().randrange(500_000, 790_000))


def registration_number() -> str:
    return f"{next(_registration_numbers):06d}"


def expert_body(**overrides: Any) -> dict[str, Any]:
    """A 登録セキスペ profile: Tokyo, on-site and remote, strong on ransomware."""
    body = {
        "kind": "sekisupe",
        "registration_number": registration_number(),
        "name": "山田 太郎",
        "name_kana": "やまだ たろう",
        "registration_date": "2024-04-01",
        "prefectures": ["13"],
        "onsite": True,
        "remote": True,
        "strengths": [{"topic": "ransomware", "depth": 3}],
        "skills": ["AWS"],
        "capacity": 3,
    }
    body.update(overrides)
    return body


def dx_body(**overrides: Any) -> dict[str, Any]:
    """A マナビDX Quest graduate (DX人材) in Osaka, remote only."""
    body = {
        "kind": "dx_talent",
        "external_id": "MDQ-2024-00001",
        "name": "佐藤 花子",
        "name_kana": "さとう はなこ",
        "prefectures": ["大阪府"],
        "remote": True,
        "dss_roles": [{"role": "data_scientist", "level": 2}],
        "programme": {
            "status": "graduate",
            "cohort_year": 2024,
            "case_study_completed": True,
            "regional_collaboration": True,
        },
        "availability": "available",
    }
    body.update(overrides)
    return body


def request_body(**overrides: Any) -> dict[str, Any]:
    """An SME's consultation request: ransomware and backups, in Okinawa, on-site or remote."""
    body = {
        "title": "ランサムウェア対策を見直したい",
        "description": "バックアップと復旧手順を見直したいです。",
        "prefecture": "沖縄県",
        "delivery": "either",
        "topics": ["ransomware", "backup_bcp"],
    }
    body.update(overrides)
    return body


def organization_body(**overrides: Any) -> dict[str, Any]:
    """An SME organisation (a small manufacturer in Tokyo)."""
    body = {"name": f"株式会社テスト{uuid.uuid4().hex[:6]}", "prefecture": "13", "industry": "製造業", "employees": 30}
    body.update(overrides)
    return body


def unique_name() -> str:
    return "検証" + uuid.uuid4().hex[:6]


def expert_features_data(**overrides: Any) -> dict[str, Any]:
    """The data of a profiles.expert.upserted event (matching's expert projection): an active 登録セキスペ in
    Okinawa, on site and remote, strong on ransomware, with room for two more clients."""
    body = {
        "expert_id": str(uuid.uuid4()),
        "kind": "sekisupe",
        "display_name": "山田 太郎",
        "active": True,
        "prefectures": ["47"],
        "onsite": True,
        "remote": True,
        "topics": {"ransomware": 3},
        "skills": ["aws"],
        "capacity": 2,
        # What profiles sends with the default visibility: what SMEs and brokers may read (reasons per reader).
        "public_fields": list(PUBLIC_FIELDS),
        "broker_fields": [*PUBLIC_FIELDS, "availability", "capacity", "fee"],
    }
    body.update(overrides)
    return body


# profiles' default visibility: every setting public but contact data, fee, capacity and availability.
PUBLIC_FIELDS = ("affiliation", "bio", "dss_roles", "industries", "name_kana", "prefectures", "programme")
PUBLIC_FIELDS += ("qualifications", "renewal_deadline", "services", "skills", "strengths")


def organization_data(**overrides: Any) -> dict[str, Any]:
    """The data of a profiles.organization.upserted event: an SME organisation and the users who act for it."""
    body = {
        "organization_id": str(uuid.uuid4()),
        "name": f"株式会社テスト{uuid.uuid4().hex[:6]}",
        "prefecture": "47",
        "industry": "製造業",
        "member_user_ids": ["sme-1"],
    }
    body.update(overrides)
    return body


def expert_published_data(**overrides: Any) -> dict[str, Any]:
    """The data of a profiles.expert.published event (what search indexes): an active 登録セキスペ in Tokyo,
    strong on ransomware, with only public fields."""
    body = {
        "id": str(uuid.uuid4()),
        "kind": "sekisupe",
        "name": "山田 太郎",
        "name_kana": "やまだ たろう",
        "prefectures": ["13"],
        "onsite": True,
        "remote": True,
        "topics": ["ransomware"],
        "topic_labels": ["ランサムウェア対策"],
        "skills": ["aws"],
        "active": True,
        "updated_at": "2024-04-01T09:00:00+09:00",
    }
    body.update(overrides)
    return body


def request_changed_data(**overrides: Any) -> dict[str, Any]:
    """The data of a matching.request.* RequestChangedV1 event (what the search requests index reads): an
    open request in Tokyo about ransomware, with the people concerned (which the index must never hold)."""
    body = {
        "request_id": str(uuid.uuid4()),
        "request_title": "ランサムウェア被害の初動対応",
        "prefecture": "13",
        "organization_id": "org-secret-1",
        "sme_user_ids": ["sme-user-secret"],
        "actor_id": "actor-secret",
        "reason": None,
        "status": "submitted",
        "summary": "社内のPCが暗号化されました。初動対応を相談したい。",
        "delivery": "either",
        "topics": ["ransomware"],
        "skills": ["フォレンジック"],
        "industry": "製造業",
        "updated_at": "2026-11-01T09:00:00+09:00",
    }
    body.update(overrides)
    return body


def hub_project_data(**overrides: Any) -> dict[str, Any]:
    """The data of a matching.project.* HubProjectChangedV1 event: a hub project in Osaka."""
    body = {
        "project_id": str(uuid.uuid4()),
        "title": "受発注データの可視化",
        "summary": "紙の受発注台帳をデータ化し、ダッシュボードで可視化する。",
        "prefecture": "27",
        "remote_ok": True,
        "topics": ["customer_data"],
        "skills": ["data_scientist"],
        "state": "open",
        "hub_organization_id": "hub-1",
        "sme_name": None,
        "team_size": 5,
        "member_user_ids": ["learner-secret"],
        "actor_id": "hub-staff-1",
        "occurred_at": "2026-11-02T09:00:00+09:00",
    }
    body.update(overrides)
    return body


# --- tokens: the suite's stand-in for the gateway's signing keys (tsunagu/auth.py) ---------------------------

GATEWAY_KEYS = SigningKeys.generate()
# What a service started in-process is configured with (TSUNAGU_GATEWAY_JWKS): the public keys only.
GATEWAY_JWKS = json.dumps(GATEWAY_KEYS.public_jwks())


def service_token(principal: Principal, audience: str, ttl_seconds: int = 300) -> str:
    """A per-call token as the gateway signs it, for a service under test."""
    return issue_token(principal, keys=GATEWAY_KEYS, audience=audience, ttl_seconds=ttl_seconds)


# --- 相談会 and hub projects (issue 11) ---------------------------------------------------------------


def session_body(expert_ids: list[str], **overrides: Any) -> dict[str, Any]:
    """A 相談会 in Okinawa (the venue of expert_features_data's experts), three 45-minute slots, each invited
    expert taking two meetings."""
    body = {
        "title": "沖縄 セキュリティ相談会",
        "date": "2027-01-20",
        "venue_prefecture": "47",
        "venue": "那覇商工会議所",
        "slots": [
            {"start": "10:00", "end": "10:45"},
            {"start": "11:00", "end": "11:45"},
            {"start": "13:00", "end": "13:45"},
        ],
        "experts": [{"expert_id": expert_id, "max_meetings": 2} for expert_id in expert_ids],
    }
    body.update(overrides)
    return body


def registration_body(**overrides: Any) -> dict[str, Any]:
    """An SME's registration for a 相談会: ransomware."""
    body: dict[str, Any] = {"topics": ["ransomware"]}
    body.update(overrides)
    return body


def learner_features_data(**overrides: Any) -> dict[str, Any]:
    """A マナビDX Quest learner (DX人材) in Okinawa who finished the case study: a data scientist (level 2)."""
    body = expert_features_data(
        kind="dx_talent",
        display_name="比嘉 花子",
        topics={},
        dss_roles={"data_scientist": 2},
        capacity=1,
        case_study_completed=True,
    )
    body.update(overrides)
    return body


def project_body(**overrides: Any) -> dict[str, Any]:
    """A hub project in Okinawa: demand forecasting for a food maker, a data scientist and a software engineer."""
    body = {
        "title": "需要予測で在庫を減らす",
        "summary": "食品メーカーの需要予測と在庫最適化",
        "sme_name": "株式会社沖縄テスト食品",
        "topics": ["demand_forecast"],
        "requirements": [{"role": "data_scientist", "level": 2}, {"role": "software_engineer", "level": 2}],
        "prefecture": "47",
        "start_on": "2027-02-01",
        "weeks": 8,
        "team_size": 3,
        "cohort": "2026",
    }
    body.update(overrides)
    return body
