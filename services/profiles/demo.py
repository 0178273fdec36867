"""Deterministic, realistic demo data: 登録セキスペ and DX talent (POST /experts bodies) and the import
CSV. The same seed and day give the same data.

Experts live in all 47 prefectures, weighted by the number of corporations there (the reference data),
so Tokyo and Osaka have many and Tottori a few, as in the real list. A small share is deliberately not
in order (registration expired, training lapsed, confirmation stale: the latter only through the CSV,
which carries the confirmation time) so that the freshness job has work to do. Contact data uses
reserved example domains and unallocated numbers.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from services.profiles.catalogue import REGISTRATION_YEARS, SERVICE_CATALOGUE, add_years
from services.profiles.csv_format import EXPORT_HEADER, body_cells
from tsunagu.reference import dss_roles, prefectures, topics

# (kanji, kana) — common family names and given names.
SURNAMES = [
    ("佐藤", "さとう"),
    ("鈴木", "すずき"),
    ("高橋", "たかはし"),
    ("田中", "たなか"),
    ("伊藤", "いとう"),
    ("渡辺", "わたなべ"),
    ("山本", "やまもと"),
    ("中村", "なかむら"),
    ("小林", "こばやし"),
    ("加藤", "かとう"),
    ("吉田", "よしだ"),
    ("山田", "やまだ"),
    ("佐々木", "ささき"),
    ("山口", "やまぐち"),
    ("松本", "まつもと"),
    ("井上", "いのうえ"),
    ("木村", "きむら"),
    ("林", "はやし"),
    ("斎藤", "さいとう"),
    ("清水", "しみず"),
    ("山崎", "やまざき"),
    ("森", "もり"),
    ("池田", "いけだ"),
    ("橋本", "はしもと"),
    ("阿部", "あべ"),
    ("石川", "いしかわ"),
    ("山下", "やました"),
    ("中島", "なかじま"),
    ("石井", "いしい"),
    ("小川", "おがわ"),
    ("前田", "まえだ"),
    ("岡田", "おかだ"),
    ("長谷川", "はせがわ"),
    ("藤田", "ふじた"),
    ("後藤", "ごとう"),
    ("近藤", "こんどう"),
    ("村上", "むらかみ"),
    ("遠藤", "えんどう"),
    ("青木", "あおき"),
    ("坂本", "さかもと"),
    ("金子", "かねこ"),
    ("藤井", "ふじい"),
    ("西村", "にしむら"),
    ("福田", "ふくだ"),
    ("太田", "おおた"),
    ("三浦", "みうら"),
    ("岡本", "おかもと"),
    ("松田", "まつだ"),
    ("中川", "なかがわ"),
    ("比嘉", "ひが"),
    ("新垣", "あらかき"),
    ("工藤", "くどう"),
    ("菊地", "きくち"),
    ("千葉", "ちば"),
    ("大野", "おおの"),
]
GIVEN_NAMES = [
    ("太郎", "たろう"),
    ("健太", "けんた"),
    ("翔太", "しょうた"),
    ("大輔", "だいすけ"),
    ("拓也", "たくや"),
    ("直樹", "なおき"),
    ("誠", "まこと"),
    ("浩二", "こうじ"),
    ("隆", "たかし"),
    ("亮", "りょう"),
    ("和也", "かずや"),
    ("哲也", "てつや"),
    ("修", "おさむ"),
    ("剛", "つよし"),
    ("悠斗", "ゆうと"),
    ("陽介", "ようすけ"),
    ("慎一", "しんいち"),
    ("勇気", "ゆうき"),
    ("光", "ひかる"),
    ("蓮", "れん"),
    ("花子", "はなこ"),
    ("美咲", "みさき"),
    ("陽子", "ようこ"),
    ("恵", "めぐみ"),
    ("裕子", "ゆうこ"),
    ("由美", "ゆみ"),
    ("真理", "まり"),
    ("彩", "あや"),
    ("智子", "ともこ"),
    ("愛", "あい"),
    ("さくら", "さくら"),
    ("結衣", "ゆい"),
    ("千尋", "ちひろ"),
    ("直美", "なおみ"),
    ("明美", "あけみ"),
]
COMPANY_STEMS = [
    "東和",
    "北斗",
    "大和",
    "中央",
    "みなと",
    "新光",
    "三協",
    "あおば",
    "富士",
    "旭",
    "双葉",
    "日進",
    "栄光",
    "桜",
    "海星",
]
AFFILIATION_PATTERNS = [
    "株式会社{stem}システムズ",
    "{stem}セキュリティ合同会社",
    "{stem}情報技術株式会社",
    "株式会社{stem}ネットワークス",
    "{pref}{stem}信用金庫 システム部",
    "{stem}ITコンサルティング",
    "個人事業主（{pref}）",
    "{stem}監査法人 IT監査部",
]
SECURITY_SKILLS = [
    "AWS",
    "Azure",
    "Google Cloud",
    "Microsoft 365",
    "Google Workspace",
    "Active Directory",
    "Linux",
    "Windows Server",
    "ファイアウォール",
    "UTM",
    "EDR",
    "SIEM",
    "WAF",
    "VPN",
    "ネットワーク設計",
    "無線LAN",
    "ペネトレーションテスト",
    "脆弱性診断",
    "フォレンジック",
    "ログ分析",
    "ISMS",
    "Pマーク",
    "CSIRT構築",
    "BCP",
    "リスクアセスメント",
    "Python",
]
DX_SKILLS = [
    "Python",
    "SQL",
    "Excel VBA",
    "Power BI",
    "Tableau",
    "kintone",
    "RPA",
    "UI/UXデザイン",
    "Figma",
    "機械学習",
    "データ分析",
    "統計",
    "JavaScript",
    "React",
    "AWS",
    "業務フロー分析",
    "要件定義",
    "ノーコード",
    "生成AI",
]
INDUSTRIES = [
    "製造業",
    "卸売業",
    "小売業",
    "建設業",
    "運輸業",
    "宿泊業",
    "飲食サービス業",
    "医療・福祉",
    "情報通信業",
    "金融業",
    "不動産業",
    "教育・学習支援業",
    "農業",
    "サービス業",
]
QUALIFICATIONS = [
    "ITストラテジスト",
    "システム監査技術者",
    "ネットワークスペシャリスト",
    "プロジェクトマネージャ",
    "中小企業診断士",
    "CISSP",
    "CISA",
    "技術士（情報工学部門）",
    "ISMS審査員補",
    "AWS Certified Security - Specialty",
    "G検定",
]
SECURITY_SERVICES = [
    key for key in SERVICE_CATALOGUE if key not in ("dx_planning", "data_analysis", "system_selection")
]
DX_SERVICES = ["dx_planning", "data_analysis", "system_selection", "self_diagnosis_support"]
BIO_FOCUS = {
    "ransomware": "ランサムウェア対策とバックアップ設計",
    "incident_response": "インシデント対応と手順書整備",
    "management_guidance": "経営層向けのセキュリティマネジメント指導",
    "supply_chain": "取引先管理とサプライチェーン対策",
    "cloud_security": "クラウドの安全な設定と運用",
    "education": "従業員教育と標的型メール訓練",
    "security_policy": "情報セキュリティ基本方針と規程の策定",
    "vulnerability_mgmt": "脆弱性診断とパッチ管理",
}
Encoding = Literal["utf-8", "cp932"]


class _Generator:
    def __init__(self, seed: int, today: date) -> None:
        self.random = random.Random(seed)
        self.today = today
        codes = sorted(prefectures())
        self.codes = codes
        self.weights = [prefectures()[code].corporations for code in codes]
        self.security_topics = [topic.id for topic in topics().values() if topic.area == "security"]
        self.dx_topics = [topic.id for topic in topics().values() if topic.area == "dx"]
        self.roles = list(dss_roles())
        self.number_offset = self.random.randrange(1, 400_000)
        self.count = 0

    def prefecture(self) -> str:
        return self.random.choices(self.codes, self.weights)[0]

    def served(self, home: str) -> list[str]:
        served = [home]
        neighbours = list(prefectures()[home].neighbours)
        self.random.shuffle(neighbours)
        served += neighbours[: self.random.choice([0, 0, 1, 1, 2, 3])]
        return served

    def name(self) -> tuple[str, str]:
        (family, family_kana), (given, given_kana) = self.random.choice(SURNAMES), self.random.choice(GIVEN_NAMES)
        return f"{family} {given}", f"{family_kana} {given_kana}"

    def affiliation(self, home: str) -> str:
        pattern = self.random.choice(AFFILIATION_PATTERNS)
        return pattern.format(stem=self.random.choice(COMPANY_STEMS), pref=prefectures()[home].short_name)

    def fee(self) -> dict[str, Any]:
        if self.random.random() < 0.2:
            low = self.random.randrange(40_000, 120_001, 10_000)
            return {
                "fee_min_yen": low,
                "fee_max_yen": low + self.random.randrange(0, 80_001, 10_000),
                "fee_unit": "day",
            }
        low = self.random.randrange(5_000, 25_001, 1_000)
        return {"fee_min_yen": low, "fee_max_yen": low + self.random.randrange(0, 15_001, 1_000), "fee_unit": "hour"}

    def visibility(self) -> dict[str, str]:
        levels: dict[str, str] = {}
        if self.random.random() < 0.2:
            levels["affiliation"] = "brokers"
        if self.random.random() < 0.15:
            levels["fee"] = "public"
        if self.random.random() < 0.1:
            levels["contact_email"] = "brokers"
        if self.random.random() < 0.05:
            levels["bio"] = "private"
        return levels

    def contact(self) -> dict[str, str]:
        self.count += 1
        domain = self.random.choice(["example.jp", "example.com", "example.net"])
        return {
            "contact_email": f"expert{self.count:05d}@{domain}",
            "contact_phone": f"090-0000-{self.count % 10000:04d}",
        }

    def registration(self) -> dict[str, Any]:
        """Registration on 1 April or 1 October; the current cycle's deadline; training of that cycle."""
        years = list(range(2017, self.today.year + 1))
        while True:
            year = self.random.choices(years, [3 if y == 2017 else 1 for y in years])[0]  # many registered at the start
            registered = date(year, self.random.choice([4, 10]), 1)
            if registered <= self.today:
                break
        deadline = add_years(registered, REGISTRATION_YEARS) - timedelta(days=1)
        while deadline < self.today:
            deadline = add_years(deadline, REGISTRATION_YEARS)
        fate = self.random.random()
        if fate < 0.05 and add_years(deadline, -REGISTRATION_YEARS) > registered:
            deadline = add_years(deadline, -REGISTRATION_YEARS)  # did not renew: expired
        cycle_start = add_years(deadline, -REGISTRATION_YEARS) + timedelta(days=1)
        online, practical = [], []
        for year in range(REGISTRATION_YEARS):
            start = add_years(cycle_start, year)
            if start > self.today:
                break
            if fate < 0.09 and year == 0 and add_years(start, 1) <= self.today:
                continue  # skipped the first year's online course: training lapsed
            day = start + timedelta(days=self.random.randrange(30, 300))
            if day <= self.today and day >= registered:
                online.append(day.isoformat())
        practical_day = cycle_start + timedelta(days=self.random.randrange(60, 700))
        if practical_day <= self.today and practical_day >= registered:
            practical.append(practical_day.isoformat())
        body: dict[str, Any] = {"registration_date": registered.isoformat(), "renewal_deadline": deadline.isoformat()}
        if self.random.random() < 0.9:  # some have not entered their training yet
            body["training"] = {"online": online, "practical": practical}
        return body

    def sekisupe(self) -> dict[str, Any]:
        home = self.prefecture()
        name, kana = self.name()
        strengths = self.random.sample(self.security_topics, self.random.randint(2, 5))
        focus = next((BIO_FOCUS[topic] for topic in strengths if topic in BIO_FOCUS), "中小企業の情報セキュリティ対策")
        affiliation = self.affiliation(home)
        body: dict[str, Any] = {
            "kind": "sekisupe",
            "registration_number": f"{(self.number_offset + self.count * 7) % 1_000_000 or 1:06d}",
            "name": name,
            "name_kana": kana,
            **self.registration(),
            "affiliation": affiliation,
            **self.contact(),
            "prefectures": self.served(home),
            "onsite": self.random.random() < 0.8,
            "remote": self.random.random() < 0.85,
            "strengths": [{"topic": topic, "depth": self.random.choice([1, 2, 2, 3, 3])} for topic in strengths],
            "skills": self.random.sample(SECURITY_SKILLS, self.random.randint(2, 7)),
            "industries": self.random.sample(INDUSTRIES, self.random.randint(1, 4)),
            "services": self.random.sample(SECURITY_SERVICES, self.random.randint(2, 5)),
            "qualifications": self.random.sample(QUALIFICATIONS, self.random.randint(0, 3)),
            **self.fee(),
            "capacity": self.random.choice([1, 2, 2, 3, 3, 4, 5]),
            "bio": f"{affiliation}にて{self.random.randint(5, 30)}年、{focus}に取り組んできました。"
            f"{prefectures()[home].name}を中心に、中小企業の実情に合わせた無理のない対策をご提案します。",
            "availability": self.random.choice(["available", "available", "limited"]),
            "visibility": self.visibility(),
        }
        if not body["onsite"] and not body["remote"]:
            body["remote"] = True
        return body

    def dx_talent(self) -> dict[str, Any]:
        home = self.prefecture()
        name, kana = self.name()
        roles = self.random.sample(self.roles, self.random.choice([1, 1, 2]))
        cohort = self.random.randint(2022, min(self.today.year, 2026))
        graduate = cohort < self.today.year and self.random.random() < 0.7
        return {
            "kind": "dx_talent",
            "external_id": f"MDQ-{cohort}-{self.count + 1:05d}",
            "name": name,
            "name_kana": kana,
            "affiliation": self.affiliation(home),
            **self.contact(),
            "prefectures": [home],
            "onsite": self.random.random() < 0.5,
            "remote": True,
            "strengths": [
                {"topic": topic, "depth": self.random.choice([1, 2, 3])}
                for topic in self.random.sample(self.dx_topics, 2)
            ],
            "skills": self.random.sample(DX_SKILLS, self.random.randint(2, 6)),
            "industries": self.random.sample(INDUSTRIES, self.random.randint(1, 3)),
            "services": self.random.sample(DX_SERVICES, self.random.randint(1, 3)),
            "capacity": self.random.choice([1, 1, 2]),
            "bio": "マナビDX Quest でケーススタディに取り組み、地域企業の課題をデータで解くことに関心があります。",
            "dss_roles": [{"role": role, "level": self.random.randint(1, 4)} for role in roles],
            "programme": {
                "status": "graduate" if graduate else "participant",
                "cohort_year": cohort,
                "case_study_completed": graduate or self.random.random() < 0.3,
                "regional_collaboration": self.random.random() < 0.4,
            },
            "availability": self.random.choice(["available", "limited", "unavailable"]),
            "visibility": self.visibility(),
        }

    def confirmation(self, now: datetime) -> datetime:
        """When an imported entry last confirmed: mostly recent, some long ago (stale)."""
        days = self.random.randrange(0, 120) if self.random.random() < 0.93 else self.random.randrange(200, 400)
        return (now - timedelta(days=days, seconds=self.random.randrange(0, 86_400))).replace(microsecond=0)


def generate_experts(
    n: int, seed: int = 0, *, dx_share: float = 0.1, today: date | None = None
) -> Iterator[dict[str, Any]]:
    """n POST /experts bodies; about ``dx_share`` of them DX talent, the rest 登録セキスペ."""
    generator = _Generator(seed, today or date.today())
    for _ in range(n):
        yield generator.dx_talent() if generator.random.random() < dx_share else generator.sekisupe()


def write_import_csv(
    path: str | Path,
    n: int,
    *,
    encoding: Encoding = "utf-8",
    seed: int = 0,
    dx_share: float = 0.1,
    today: date | None = None,
) -> Path:
    """The import CSV of n generated experts (with their last confirmation), streamed to disk."""
    path = Path(path)
    generator = _Generator(seed + 1, today or date.today())
    now = datetime.combine(generator.today, datetime.min.time(), UTC)
    with path.open("w", encoding="utf-8-sig" if encoding == "utf-8" else "cp932", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(EXPORT_HEADER)
        for body in generate_experts(n, seed, dx_share=dx_share, today=generator.today):
            writer.writerow(body_cells(body | {"last_confirmed_at": generator.confirmation(now).isoformat()}))
    return path
