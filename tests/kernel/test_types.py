"""tsunagu/types.py: one rule per shared input, with Japanese and English messages."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from tsunagu.types import (
    Email,
    Line,
    Phone,
    PrefectureCode,
    RegistrationNumber,
    Tag,
    TopicId,
    clean_line,
    normalize_prefecture,
    normalize_registration_number,
    normalize_tag,
    optional_text,
)


def _error(type_, value) -> str:
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(type_).validate_python(value)
    return str(refused.value)


@pytest.mark.parametrize("value", ["東京", "東京都", "13", 13])
def test_a_prefecture_is_its_jis_code_however_it_is_written(value) -> None:
    assert TypeAdapter(PrefectureCode).validate_python(value) == "13"
    assert normalize_prefecture(value) == "13"


def test_an_unknown_prefecture_is_refused_in_both_languages() -> None:
    message = _error(PrefectureCode, "火星県")
    assert "都道府県「火星県」が見つかりません" in message and "Unknown prefecture" in message
    assert "都道府県" in _error(PrefectureCode, None)


def test_tags_are_one_normalisation_everywhere() -> None:
    tag = TypeAdapter(Tag)
    assert tag.validate_python("Cloud  Security") == tag.validate_python("cloud security") == "cloud security"
    assert normalize_tag("ＡＷＳ") == normalize_tag(" aws ") == "aws"
    assert "Empty tags" in _error(Tag, "   ")
    assert "制御文字" in _error(Tag, "a\x00b")
    assert _error(Tag, "x" * 51)


def test_registration_numbers_lose_their_decoration() -> None:
    assert TypeAdapter(RegistrationNumber).validate_python("第０１２３４５号") == "012345"
    assert normalize_registration_number(" 012345 ") == "012345"
    for bad in ("12AB", "000000", "1234567"):
        message = _error(RegistrationNumber, bad)
        assert "登録番号は6桁の数字で入力してください" in message and "six digits" in message


def test_topic_ids_come_from_the_topic_list() -> None:
    assert TypeAdapter(TopicId).validate_python(" ransomware ") == "ransomware"
    assert "Unknown topic" in _error(TopicId, "no_such_topic")


def test_a_line_is_one_line_and_not_empty() -> None:
    assert TypeAdapter(Line).validate_python("  山田\n 太郎 ") == "山田 太郎" == clean_line("山田　太郎")
    assert "空にはできません" in _error(Line, " \t ")


def test_bad_email_and_phone_are_refused_in_japanese_and_english() -> None:
    assert TypeAdapter(Email).validate_python(" Someone@Example.JP ") == "Someone@example.jp"
    message = _error(Email, "not-an-address")
    assert "メールアドレスの形式が正しくありません" in message and "Not a valid e-mail address" in message
    assert TypeAdapter(Phone).validate_python("０３-１２３４-５６７８") == "03-1234-5678"
    assert TypeAdapter(Phone).validate_python("+81 3 1234 5678") == "+81 3 1234 5678"
    for bad in ("call me", "12", "03-1234-5678-9999-0000-1111"):
        message = _error(Phone, bad)
        assert "電話番号の形式が正しくありません" in message and "Not a valid phone number" in message


def test_optional_text_reads_blank_as_none_and_keeps_its_limit() -> None:
    class Form(BaseModel):
        note: optional_text(5) = None

    assert Form(note="  ").note is None
    assert Form(note="abc").note == "abc"
    with pytest.raises(ValidationError):
        Form(note="abcdef")
