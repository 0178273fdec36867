"""Demo data for ``make run``: accounts, experts, SME organisations and requests, loaded through the
public API exactly as real users would create them (so events, projections and rankings are real)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from tsunagu.reference import prefectures, self_diagnosis_questions, topics

DEMO_PASSWORD = "tsunagu-demo-2026"
ADMIN_EMAIL = "admin@tsunagu.example"

REQUEST_TEMPLATES = [
    ("取引先からセキュリティ対策の状況を聞かれて困っている", ["supply_chain", "scs_3"], "取引先の親会社からSCS評価制度への対応を求められました。何から始めればよいか相談したいです。"),
    ("ランサムウェア対策を見直したい", ["ransomware", "backup_bcp"], "同業他社がランサムウェア被害に遭い、バックアップと復旧手順を見直したいです。"),
    ("SECURITY ACTION 二つ星を宣言したい", ["security_action_2", "security_policy"], "自社診断を行い、情報セキュリティ基本方針を作りたいです。"),
    ("社員向けのセキュリティ研修をお願いしたい", ["education", "targeted_attack"], "不審メールの見分け方など、従業員教育を年1回実施したいです。"),
    ("クラウド移行の安全な進め方", ["cloud_security", "cloud_tools"], "会計と顧客管理をクラウドに移行予定です。安全な設定を相談したいです。"),
    ("ホームページが改ざんされないか心配", ["vulnerability_mgmt", "asm"], "自社サイトとメールサーバの脆弱性を確認してほしいです。"),
    ("紙の受発注をデジタル化したい", ["paperless", "dx_strategy"], "FAXと電話中心の受発注を、段階的にデジタル化したいです。"),
    ("インシデント発生時の手順を決めたい", ["incident_response", "management_guidance"], "ウイルス感染時に誰が何をするか、手順書を整備したいです。"),
]
SME_NAMES = ["精密工業", "食品", "運輸", "建設", "印刷", "商事", "製作所", "電機", "酒造", "旅館"]
SME_PREFIXES = ["山田", "丸三", "東和", "北斗", "さくら", "大和", "中央", "みなと", "新光", "三協", "あおば", "富士"]
INDUSTRIES = ["製造業", "卸売業", "小売業", "建設業", "運輸業", "宿泊業", "飲食サービス業", "医療・福祉", "情報通信業"]


def demo_marker(data_dir: Path) -> Path:
    return data_dir / "demo-loaded"


class DemoLoader:
    def __init__(self, gateway_url: str, data_dir: Path, gateway_database_url: str, seed: int = 20261122) -> None:
        self.gateway_url = gateway_url.rstrip("/")
        self.data_dir = data_dir
        self.gateway_database_url = gateway_database_url
        self.random = random.Random(seed)
        self.http = httpx.Client(base_url=self.gateway_url, timeout=60)

    def _bootstrap_admin(self) -> None:
        from gateway.users.service import ensure_user
        from tsunagu.db import make_engine, session_scope

        # No admin exists on a new installation, so the first one is written straight into the gateway's database.
        engine = make_engine(self.gateway_database_url)
        with session_scope(engine) as session:
            ensure_user(session, email=ADMIN_EMAIL, password=DEMO_PASSWORD, display_name="運営管理者", role="admin")
        engine.dispose()

    def _login(self, email: str) -> dict[str, str]:
        response = self.http.post("/api/v1/auth/token", json={"email": email, "password": DEMO_PASSWORD})
        response.raise_for_status()
        return {"authorization": f"Bearer {response.json()['access_token']}"}

    def _ok(self, response: httpx.Response) -> dict:
        if response.status_code >= 400:
            raise RuntimeError(f"demo load failed: {response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}")
        return response.json() if response.content else {}

    @retry(
        stop=stop_after_delay(30),
        wait=wait_fixed(0.2),
        # Matching learns of a new organisation through an event; until then it answers 422 for it.
        retry=retry_if_result(lambda response: response.status_code == 422 and "organization_id" in response.text),
    )
    def _submit(self, headers: dict[str, str], body: dict) -> httpx.Response:
        return self.http.post("/api/v1/requests", headers=headers, json=body)

    def load(self, *, experts: int = 400, requests: int = 120) -> dict[str, int]:
        from services.profiles.demo import generate_experts

        self._bootstrap_admin()
        admin = self._login(ADMIN_EMAIL)
        accounts = [f"admin: {ADMIN_EMAIL} / {DEMO_PASSWORD}"]

        # Brokers: one chamber-of-commerce account for each of a few regions.
        for email, name, codes in [
            ("broker.tokyo@tsunagu.example", "東京商工会議所 相談窓口", ["13", "11", "12", "14"]),
            ("broker.osaka@tsunagu.example", "大阪商工会議所 相談窓口", ["27", "26", "28", "29"]),
            ("broker.fukuoka@tsunagu.example", "福岡県よろず支援拠点", ["40", "41", "43"]),
        ]:
            self._ok(self.http.post("/api/v1/admin/users", headers=admin, json={"email": email, "password": DEMO_PASSWORD, "display_name": name, "role": "broker", "prefectures": codes}))
            accounts.append(f"broker: {email} / {DEMO_PASSWORD}  ({'・'.join(prefectures()[c].name for c in codes)})")

        bodies = list(generate_experts(experts, seed=self.random.randint(0, 10**9)))
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda body: self._ok(self.http.post("/api/v1/experts", headers=admin, json=body)), bodies))

        # SMEs: a user and an organisation each, then their requests.
        codes = list(prefectures())
        weights = [prefectures()[c].corporations for c in codes]
        sme_headers: list[tuple[dict[str, str], str, str]] = []
        for index in range(max(1, requests // 2) if requests else 0):
            email = f"sme{index + 1:03d}@tsunagu.example"
            code = self.random.choices(codes, weights)[0]
            name = f"株式会社{self.random.choice(SME_PREFIXES)}{self.random.choice(SME_NAMES)}"
            self._ok(self.http.post("/api/v1/auth/register", json={"email": email, "password": DEMO_PASSWORD, "display_name": f"{name} 総務部", "role": "sme"}))
            headers = self._login(email)
            organization = self._ok(self.http.post("/api/v1/organizations", headers=headers, json={
                "name": name, "prefecture": code, "industry": self.random.choice(INDUSTRIES),
                "employees": self.random.choice([8, 15, 30, 60, 120, 250]), "digitalization_stage": self.random.randint(1, 3),
                "security_action": self.random.choice(["none", "none", "one_star", "two_star"]), "scs_target": self.random.choice(["none", "scs_3"]),
            }))
            sme_headers.append((headers, organization["id"], code))
            if index < 3:
                accounts.append(f"sme: {email} / {DEMO_PASSWORD}  ({name}, {prefectures()[code].name})")

        created = 0
        for index in range(requests):
            headers, organization_id, code = sme_headers[index % len(sme_headers)]
            title, wanted, description = self.random.choice(REQUEST_TEMPLATES)
            diagnosis = {str(no): self.random.choice(["yes", "yes", "partly", "no"]) for no in self.random.sample(sorted(self_diagnosis_questions()), 8)}
            body = {
                "organization_id": organization_id, "title": title, "description": description, "prefecture": code,
                "delivery": self.random.choice(["onsite", "remote", "either", "either"]),
                "topics": [t for t in wanted if t in topics()], "self_diagnosis": diagnosis,
                "budget_yen_max": self.random.choice([None, 100_000, 300_000, 500_000]),
                "urgency": self.random.choice(["low", "normal", "normal", "high"]),
            }
            self._ok(self._submit(headers, body))
            created += 1

        (self.data_dir / "demo-accounts.txt").write_text("\n".join(accounts) + "\n", encoding="utf-8")
        demo_marker(self.data_dir).write_text("ok\n")
        return {"experts": len(bodies), "organizations": len(sme_headers), "requests": created}
