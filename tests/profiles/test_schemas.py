"""Normalisation and validation of profile input (shared by the API and the CSV import)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from services.profiles.schemas import ExpertCreate, ExpertIn, OrganizationCreate
from tests.factories import dx_body
from tests.profiles.conftest import expert_body
from tsunagu.types import normalize_tag


def errors_of(body: dict, model: type = ExpertIn) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in caught.value.errors()}


def test_skills_are_normalised_so_that_aws_is_one_tag() -> None:
    assert normalize_tag("AWS") == normalize_tag("ＡＷＳ") == normalize_tag(" aws ") == "aws"
    expert = ExpertIn.model_validate(expert_body(skills=["AWS", "ＡＷＳ", "aws", "Microsoft　365"]))
    assert expert.skills == ["aws", "microsoft 365"]


def test_registration_number_forms() -> None:
    assert ExpertIn.model_validate(expert_body(registration_number="第０１２３４５号")).registration_number == "012345"
    assert ExpertIn.model_validate(expert_body(registration_number=12345)).registration_number == "012345"
    for bad in ("12AB", "1234567", "000000", "", "01234５6"):
        assert "registration_number" in errors_of(expert_body(registration_number=bad))


def test_prefectures_by_name_become_codes_and_unknown_ones_are_named() -> None:
    expert = ExpertIn.model_validate(expert_body(prefectures=["東京都", "神奈川", "13"]))
    assert expert.prefectures == ["13", "14"]
    assert "prefectures.1" in errors_of(expert_body(prefectures=["13", "火星県"]))
    assert "prefectures" in errors_of(expert_body(prefectures=[]))


def test_the_renewal_deadline_defaults_to_three_years() -> None:
    expert = ExpertIn.model_validate(expert_body(registration_date="2024-04-01"))
    assert expert.renewal_deadline == date(2027, 3, 31)


def test_dates_in_the_wrong_order_are_refused() -> None:
    assert "renewal_deadline" in errors_of(expert_body(registration_date="2024-04-01", renewal_deadline="2024-03-31"))
    assert "training" in errors_of(expert_body(registration_date="2024-04-01", training={"online": ["2023-05-01"]}))
    assert "fee_max_yen" in errors_of(expert_body(fee_min_yen=20000, fee_max_yen=10000))
    assert "registration_date" in errors_of(expert_body(registration_date="2016-10-01"))
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    assert "registration_date" in errors_of(expert_body(registration_date=tomorrow))
    assert "training.online.0" in errors_of(expert_body(training={"online": [tomorrow]}))


def test_messages_are_japanese_and_english() -> None:
    message = errors_of(expert_body(prefectures=["火星"]))["prefectures.0"]
    assert "都道府県「火星」が見つかりません / Unknown prefecture: 火星" in message


def test_kana_names_and_contacts() -> None:
    assert ExpertIn.model_validate(expert_body(name_kana="ﾔﾏﾀﾞ ﾀﾛｳ")).name_kana == "ヤマダ タロウ"
    assert "name_kana" in errors_of(expert_body(name_kana="山田"))
    assert "contact_email" in errors_of(expert_body(contact_email="not-an-address"))
    assert "contact_phone" in errors_of(expert_body(contact_phone="電話して"))
    assert (
        ExpertIn.model_validate(expert_body(contact_phone="０３－１２３４－５６７８")).contact_phone == "03-1234-5678"
    )


def test_oversized_fields_are_refused() -> None:
    assert "bio" in errors_of(expert_body(bio="あ" * 2001))
    assert "name" in errors_of(expert_body(name="あ" * 101))
    assert "affiliation" in errors_of(expert_body(affiliation="あ" * 201))
    assert "skills.0" in errors_of(expert_body(skills=["x" * 51]))
    assert "skills" in errors_of(expert_body(skills=[f"skill{i}" for i in range(51)]))


def test_topics_services_and_visibility_must_be_known() -> None:
    assert "strengths.0.topic" in errors_of(expert_body(strengths=[{"topic": "no_such", "depth": 1}]))
    assert "strengths.0.depth" in errors_of(expert_body(strengths=[{"topic": "ransomware", "depth": 4}]))
    assert "strengths" in errors_of(expert_body(strengths=[{"topic": "ransomware", "depth": 1}] * 2))
    expert = ExpertIn.model_validate(
        expert_body(services=["マネジメント指導", "incident_first_response", "SCS★3 対応"])
    )
    assert expert.services == ["management_guidance", "incident_first_response", "scs_3"]
    assert "services.0" in errors_of(expert_body(services=["占い"]))
    assert "visibility" in errors_of(expert_body(visibility={"registration_number": "private"}))
    assert "visibility" in errors_of(expert_body(visibility={"shoe_size": "public"}))
    assert "visibility.bio" in errors_of(expert_body(visibility={"bio": "secret"}))
    assert "unexpected" in errors_of(expert_body(unexpected=1))


def test_the_two_kinds_have_their_own_fields() -> None:
    assert "registration_number" in errors_of(expert_body(registration_number=None))
    assert "registration_date" in errors_of(expert_body(registration_date=None))
    assert "programme" in errors_of(expert_body(programme={"status": "graduate"}))
    talent = ExpertIn.model_validate(dx_body())
    assert talent.prefectures == ["27"] and talent.dss_roles[0].role == "data_scientist"
    assert "registration_number" in errors_of(dx_body(registration_number="012345"))
    assert "dss_roles" in errors_of(dx_body(dss_roles=[]))
    assert "dss_roles.0.level" in errors_of(dx_body(dss_roles=[{"role": "designer", "level": 5}]))
    assert "dss_roles.0.role" in errors_of(dx_body(dss_roles=[{"role": "astronaut", "level": 1}]))


def test_owner_and_organisation_input() -> None:
    assert ExpertCreate.model_validate(expert_body(owner_user_id="")).owner_user_id is None
    organization = OrganizationCreate.model_validate(
        {"name": "株式会社テスト製作所", "prefecture": "愛知県", "industry": "製造業"}
    )
    assert organization.prefecture == "23"
    errors = errors_of(
        {
            "name": "",
            "prefecture": "火星",
            "digitalization_stage": 5,
            "employees": -1,
            "security_action": "three_star",
            "scs_target": "scs_5",
        },
        OrganizationCreate,
    )
    assert {"name", "prefecture", "digitalization_stage", "employees", "security_action", "scs_target"} <= set(errors)
