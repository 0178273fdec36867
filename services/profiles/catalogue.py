"""The profiles domain's fixed vocabulary (a leaf module: imports nothing of the service).

What services an expert can offer, which profile fields each visibility setting governs and their
defaults, what the law makes public, and the registration cycle of a 登録セキスペ. The schemas validate
against these, the visibility rules read them, the freshness rules count in registration years, and the
demo data draws from them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

Level = Literal["public", "brokers", "private"]

# The first 登録セキスペ were registered on 2017-04-01 (情報処理の促進に関する法律, 2016 amendment).
FIRST_REGISTRATION_DATE = date(2017, 4, 1)
REGISTRATION_YEARS = 3

# Services an expert can offer (id -> Japanese label). Labels are accepted on input as well as ids.
SERVICE_CATALOGUE: dict[str, str] = {
    "management_guidance": "マネジメント指導",
    "policy_drafting": "規程・基本方針の策定",
    "self_diagnosis_support": "自社診断の支援",
    "security_action_support": "SECURITY ACTION 宣言支援",
    "scs_3": "SCS★3 対応",
    "scs_4": "SCS★4 対応",
    "incident_first_response": "インシデント初動",
    "employee_training": "従業員教育",
    "vulnerability_assessment": "脆弱性診断",
    "cloud_review": "クラウド利用の点検",
    "otasuketai_selection": "お助け隊サービスの選定支援",
    "bcp_planning": "事業継続計画（BCP）策定支援",
    "dx_planning": "DX計画の策定支援",
    "data_analysis": "データ分析・活用支援",
    "system_selection": "ITツール・システム選定支援",
}

# Which profile fields each visibility setting governs. The mandatory registration data
# (MANDATORY_PUBLIC) has no setting: the law makes it public.
VISIBILITY_FIELDS: dict[str, tuple[str, ...]] = {
    "name_kana": ("name_kana",),
    "renewal_deadline": ("renewal_deadline",),
    "affiliation": ("affiliation",),
    "contact_email": ("contact_email",),
    "contact_phone": ("contact_phone",),
    "prefectures": ("prefectures", "onsite", "remote"),
    "strengths": ("strengths",),
    "skills": ("skills",),
    "industries": ("industries",),
    "services": ("services",),
    "qualifications": ("qualifications",),
    "fee": ("fee_min_yen", "fee_max_yen", "fee_unit"),
    "capacity": ("capacity",),
    "bio": ("bio",),
    "dss_roles": ("dss_roles",),
    "programme": ("programme",),
    "availability": ("availability",),
}
MANDATORY_PUBLIC: tuple[str, ...] = ("kind", "registration_number", "name", "registration_date", "training")
DEFAULT_VISIBILITY: dict[str, Level] = dict.fromkeys(VISIBILITY_FIELDS, "public") | {
    "contact_email": "private",
    "contact_phone": "private",
    "fee": "brokers",
    "capacity": "brokers",
    "availability": "brokers",
}


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def first_renewal_deadline(registration_date: date) -> date:
    """Registration is valid for three years: registered 2024-04-01 -> renew by 2027-03-31."""
    return add_years(registration_date, REGISTRATION_YEARS) - timedelta(days=1)
