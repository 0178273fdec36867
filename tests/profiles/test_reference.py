"""Reference data copied into the project (tsunagu/reference): complete and consistent."""

from __future__ import annotations

from tsunagu.reference import (
    digitalization_stages,
    dss_roles,
    prefecture_code,
    prefectures,
    self_diagnosis_questions,
    topics,
)


def test_the_47_prefectures_with_their_bureau() -> None:
    all_prefectures = prefectures()
    assert len(all_prefectures) == 47
    assert sorted(all_prefectures) == [f"{code:02d}" for code in range(1, 48)]
    assert all(prefecture.bureau.endswith(("経済産業局", "総合事務局")) for prefecture in all_prefectures.values())
    assert prefectures()["13"].bureau == "関東経済産業局"
    assert all(prefecture.corporations > 0 for prefecture in all_prefectures.values())


def test_neighbours_are_symmetric_and_real() -> None:
    all_prefectures = prefectures()
    for code, prefecture in all_prefectures.items():
        assert code not in prefecture.neighbours
        for neighbour in prefecture.neighbours:
            assert neighbour in all_prefectures
            assert code in all_prefectures[neighbour].neighbours, f"{code} -> {neighbour} is one-way"
    # Only Okinawa has no neighbour; a few known pairs, fixed links included.
    assert [code for code, prefecture in all_prefectures.items() if not prefecture.neighbours] == ["47"]
    assert {"11", "12", "14", "19"} == set(all_prefectures["13"].neighbours)
    assert "02" in all_prefectures["01"].neighbours  # Seikan tunnel
    assert "36" in all_prefectures["28"].neighbours  # Onaruto bridge


def test_prefectures_are_found_by_code_name_and_english() -> None:
    assert prefecture_code("東京都") == prefecture_code("東京") == prefecture_code("13") == prefecture_code(13) == "13"
    assert prefecture_code("Hokkaido") == prefecture_code("北海道") == "01"
    assert prefecture_code("火星") is None


def test_every_self_diagnosis_question_maps_to_a_known_topic() -> None:
    questions = self_diagnosis_questions()
    assert sorted(questions) == list(range(1, 26))
    known = topics()
    for question in questions.values():
        assert question.topic in known, f"question {question.no} maps to unknown topic {question.topic}"
        assert question.question


def test_topics_roles_and_stages() -> None:
    assert {topic.area for topic in topics().values()} == {"security", "dx"}
    assert {"ransomware", "incident_response", "management_guidance", "scs_3", "scs_4"} <= set(topics())
    assert set(dss_roles()) == {
        "business_architect",
        "designer",
        "data_scientist",
        "software_engineer",
        "cybersecurity",
    }
    assert sorted(digitalization_stages()) == [1, 2, 3, 4]
