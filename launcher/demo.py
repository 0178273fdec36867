"""Demo data for ``make run``: accounts, experts, SME organisations and requests, loaded through the
public API exactly as real users would create them (so events, projections and rankings are real)."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import httpx
from tenacity import retry, retry_if_result, stop_after_delay, wait_fixed

from gateway.service import ensure_user
from services.profiles.demo import generate_experts
from tsunagu.db import make_engine, session_scope
from tsunagu.reference import prefectures, self_diagnosis_questions, topics

DEMO_PASSWORD = "tsunagu-demo-2026"  # noqa: S105 - the printed password of the local demo accounts
ADMIN_EMAIL = "admin@tsunagu.example"

REQUEST_TEMPLATES = [
    (
        "取引先からセキュリティ対策の状況を聞かれて困っている",
        ["supply_chain", "scs_3"],
        "取引先の親会社からSCS評価制度への対応を求められました。何から始めればよいか相談したいです。",
    ),
    (
        "ランサムウェア対策を見直したい",
        ["ransomware", "backup_bcp"],
        "同業他社がランサムウェア被害に遭い、バックアップと復旧手順を見直したいです。",
    ),
    (
        "SECURITY ACTION 二つ星を宣言したい",
        ["security_action_2", "security_policy"],
        "自社診断を行い、情報セキュリティ基本方針を作りたいです。",
    ),
    (
        "社員向けのセキュリティ研修をお願いしたい",
        ["education", "targeted_attack"],
        "不審メールの見分け方など、従業員教育を年1回実施したいです。",
    ),
    (
        "クラウド移行の安全な進め方",
        ["cloud_security", "cloud_tools"],
        "会計と顧客管理をクラウドに移行予定です。安全な設定を相談したいです。",
    ),
    (
        "ホームページが改ざんされないか心配",
        ["vulnerability_mgmt", "asm"],
        "自社サイトとメールサーバの脆弱性を確認してほしいです。",
    ),
    (
        "紙の受発注をデジタル化したい",
        ["paperless", "dx_strategy"],
        "FAXと電話中心の受発注を、段階的にデジタル化したいです。",
    ),
    (
        "インシデント発生時の手順を決めたい",
        ["incident_response", "management_guidance"],
        "ウイルス感染時に誰が何をするか、手順書を整備したいです。",
    ),
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
            raise RuntimeError(
                f"demo load failed: {response.request.method} {response.request.url}: {response.status_code} {response.text[:500]}"
            )
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
        self._bootstrap_admin()
        admin = self._login(ADMIN_EMAIL)
        accounts = [f"admin: {ADMIN_EMAIL} / {DEMO_PASSWORD}"]

        # Brokers: one chamber-of-commerce account for each of a few regions.
        for email, name, codes in [
            ("broker.tokyo@tsunagu.example", "東京商工会議所 相談窓口", ["13", "11", "12", "14"]),
            ("broker.osaka@tsunagu.example", "大阪商工会議所 相談窓口", ["27", "26", "28", "29"]),
            ("broker.fukuoka@tsunagu.example", "福岡県よろず支援拠点", ["40", "41", "43"]),
        ]:
            self._ok(
                self.http.post(
                    "/api/v1/admin/users",
                    headers=admin,
                    json={
                        "email": email,
                        "password": DEMO_PASSWORD,
                        "display_name": name,
                        "role": "broker",
                        "prefectures": codes,
                    },
                )
            )
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
            self._ok(
                self.http.post(
                    "/api/v1/auth/register",
                    json={"email": email, "password": DEMO_PASSWORD, "display_name": f"{name} 総務部", "role": "sme"},
                )
            )
            headers = self._login(email)
            organization = self._ok(
                self.http.post(
                    "/api/v1/organizations",
                    headers=headers,
                    json={
                        "name": name,
                        "prefecture": code,
                        "industry": self.random.choice(INDUSTRIES),
                        "employees": self.random.choice([8, 15, 30, 60, 120, 250]),
                        "digitalization_stage": self.random.randint(1, 3),
                        "security_action": self.random.choice(["none", "none", "one_star", "two_star"]),
                        "scs_target": self.random.choice(["none", "scs_3"]),
                    },
                )
            )
            sme_headers.append((headers, organization["id"], code))
            if index < 3:
                accounts.append(f"sme: {email} / {DEMO_PASSWORD}  ({name}, {prefectures()[code].name})")

        created = 0
        for index in range(requests):
            headers, organization_id, code = sme_headers[index % len(sme_headers)]
            title, wanted, description = self.random.choice(REQUEST_TEMPLATES)
            diagnosis = {
                str(no): self.random.choice(["yes", "yes", "partly", "no"])
                for no in self.random.sample(sorted(self_diagnosis_questions()), 8)
            }
            body = {
                "organization_id": organization_id,
                "title": title,
                "description": description,
                "prefecture": code,
                "delivery": self.random.choice(["onsite", "remote", "either", "either"]),
                "topics": [t for t in wanted if t in topics()],
                "self_diagnosis": diagnosis,
                "budget_yen_max": self.random.choice([None, 100_000, 300_000, 500_000]),
                "urgency": self.random.choice(["low", "normal", "normal", "high"]),
            }
            self._ok(self._submit(headers, body))
            created += 1

        accounts.extend(self._load_roles(admin))
        accounts.extend(self._load_trust(admin))
        accounts.extend(self._load_sessions_and_projects(admin, len(sme_headers)))
        (self.data_dir / "demo-accounts.txt").write_text("\n".join(accounts) + "\n", encoding="utf-8")
        demo_marker(self.data_dir).write_text("ok\n")
        return {"experts": len(bodies), "organizations": len(sme_headers), "requests": created}

    # --- issue 10: an account of every role with something to do in the web UI ------------------------

    def _retry_until_created(self, send, *, what: str, seconds: float = 60.0) -> dict:
        """POST until 201: matching learns of a new expert or organisation through events."""
        deadline = time.monotonic() + seconds
        while True:
            response = send()
            if response.status_code in (200, 201):
                return response.json()
            if time.monotonic() > deadline or response.status_code not in (404, 409, 422):
                return self._ok(response)
            time.sleep(0.3)

    def _load_roles(self, admin: dict[str, str]) -> list[str]:
        """A hub staff member, an expert whose own profile has a proposal waiting, and an SME (Tokyo) with
        requests in every state (draft, waiting for the expert, waiting for the SME, in progress, completed
        and rated, cancelled), brokered by the Tokyo broker, so each role has work on its screens."""
        lines = []
        hub_email, expert_email, sme_email = "hub@tsunagu.example", "expert@tsunagu.example", "sme@tsunagu.example"
        self._ok(
            self.http.post(
                "/api/v1/admin/users",
                headers=admin,
                json={
                    "email": hub_email,
                    "password": DEMO_PASSWORD,
                    "display_name": "マナビDX Quest 東京ハブ",
                    "role": "hub",
                    "prefectures": ["13", "14"],
                },
            )
        )
        lines.append(f"hub: {hub_email} / {DEMO_PASSWORD}  (東京都・神奈川県)")
        account = self._ok(
            self.http.post(
                "/api/v1/admin/users",
                headers=admin,
                json={
                    "email": expert_email,
                    "password": DEMO_PASSWORD,
                    "display_name": "東京 セキュ子",
                    "role": "expert",
                },
            )
        )
        # The expert's entry (created by the operator from the register, so verified), owned by the account.
        profile = None
        for attempt in range(20):
            body = next(iter(generate_experts(1, seed=self.random.randint(0, 10**9) + attempt)))
            if body.get("kind") != "sekisupe":
                continue
            body.update(
                name="東京 セキュ子",
                name_kana="とうきょう せきゅこ",
                prefectures=["13", "14", "11"],
                onsite=True,
                remote=True,
                capacity=6,
                strengths=[
                    {"topic": "ransomware", "depth": 3},
                    {"topic": "backup_bcp", "depth": 3},
                    {"topic": "security_policy", "depth": 2},
                    {"topic": "education", "depth": 2},
                ],
                owner_user_id=account["id"],
                bio="都内の中小製造業・卸売業を中心に、ランサムウェア対策、バックアップ設計、基本方針づくりを支援しています。",
            )
            response = self.http.post("/api/v1/experts", headers=admin, json=body)
            if response.status_code == 201:
                profile = response.json()
                break
        if profile is None:
            raise RuntimeError("demo load failed: no registration number left for the demo expert")
        lines.append(f"expert: {expert_email} / {DEMO_PASSWORD}  (東京 セキュ子: 回答待ちの提案あり /me/proposals)")

        self._ok(
            self.http.post(
                "/api/v1/auth/register",
                json={
                    "email": sme_email,
                    "password": DEMO_PASSWORD,
                    "display_name": "株式会社つなぐ精工 総務部",
                    "role": "sme",
                },
            )
        )
        sme = self._login(sme_email)
        organization = self._ok(
            self.http.post(
                "/api/v1/organizations",
                headers=sme,
                json={"name": "株式会社つなぐ精工", "prefecture": "13", "industry": "製造業", "employees": 45},
            )
        )
        broker, expert = self._login("broker.tokyo@tsunagu.example"), self._login(expert_email)
        answers = {str(no): ("no" if no % 4 == 0 else "yes") for no in sorted(self_diagnosis_questions())}

        def request(title: str, topics_: list[str], *, draft: bool = False) -> dict:
            body = {
                "organization_id": organization["id"],
                "title": title,
                "description": "デモ用の相談です。",
                "prefecture": "13",
                "delivery": "either",
                "topics": topics_,
                "self_diagnosis": answers,
                "urgency": "normal",
                "draft": draft,
            }
            return self._ok(self._submit(sme, body))

        def propose(request_id: str) -> dict:
            return self._retry_until_created(
                lambda: self.http.post(
                    f"/api/v1/requests/{request_id}/proposals",
                    headers=broker,
                    json={"expert_id": profile["id"], "message": "ランサムウェア対策の経験が豊富な方です。"},
                ),
                what="a proposal",
            )

        def post(path: str, headers: dict[str, str], body: dict | None = None) -> dict:
            # A move may meet the scorer ranking the same request (both compare-and-set): try again.
            for _ in range(50):
                response = self.http.post(path, headers=headers, json=body)
                if response.status_code != 409 or '"conflict"' not in response.text:
                    break
                time.sleep(0.2)
            return self._ok(response)

        request("（下書き）ホームページの改ざんが心配", ["vulnerability_mgmt"], draft=True)
        waiting_expert = request("ランサムウェア対策を見直したい（専門家の回答待ち）", ["ransomware", "backup_bcp"])
        propose(waiting_expert["id"])
        waiting_sme = request("情報セキュリティ基本方針を作りたい（決定待ち）", ["security_policy"])
        post(f"/api/v1/proposals/{propose(waiting_sme['id'])['id']}/accept", expert)
        active = request("社員向けセキュリティ研修（支援中）", ["education"])
        accepted = propose(active["id"])
        post(f"/api/v1/proposals/{accepted['id']}/accept", expert)
        post(f"/api/v1/proposals/{accepted['id']}/confirm", sme)
        done = request("バックアップと復旧手順の整備（完了）", ["backup_bcp"])
        proposal = propose(done["id"])
        post(f"/api/v1/proposals/{proposal['id']}/accept", expert)
        engagement_id = post(f"/api/v1/proposals/{proposal['id']}/confirm", sme)["engagement_id"]
        post(f"/api/v1/engagements/{engagement_id}/complete", sme)
        post(f"/api/v1/engagements/{engagement_id}/ratings", sme, {"stars": 5, "comment": "丁寧に教えていただきました"})
        post(f"/api/v1/engagements/{engagement_id}/ratings", expert, {"stars": 5, "comment": "準備が整っていました"})
        cancelled = request("クラウド移行の相談（取消し）", ["cloud_security"])
        post(f"/api/v1/requests/{cancelled['id']}/cancel", sme, {"reason": "社内で方針が変わったため"})
        lines.append(
            f"sme: {sme_email} / {DEMO_PASSWORD}  (株式会社つなぐ精工: 下書き・回答待ち・決定待ち・支援中・完了・取消しの相談)"
        )
        return lines

    # --- issue 9: work for the operator (a claim to verify, a contested claim) and an invitation ------------

    def _load_trust(self, admin: dict[str, str]) -> list[str]:
        """An expert who wrote their own profile (pending: the admin verifies it against the register), a second
        account claiming a number already on the list (a contested claim for the admin), and an invitation to an
        SME organisation waiting for the invited user's answer."""
        lines = []
        pending_email, claimant_email, invitee_email = (
            "pending.expert@tsunagu.example",
            "claimant@tsunagu.example",
            "invitee@tsunagu.example",
        )
        for email, name, role in (
            (pending_email, "新規 登録者", "expert"),
            (claimant_email, "申立て 太郎", "expert"),
            (invitee_email, "招待 花子", "sme"),
        ):
            self._ok(
                self.http.post(
                    "/api/v1/auth/register",
                    json={"email": email, "password": DEMO_PASSWORD, "display_name": name, "role": role},
                )
            )
        pending = self._login(pending_email)
        for attempt in range(20):
            body = next(iter(generate_experts(1, seed=self.random.randint(0, 10**9) + attempt)))
            body.update(name="新規 登録者", name_kana="しんき とうろくしゃ")
            response = self.http.post("/api/v1/experts", headers=pending, json=body)
            if response.status_code == 201:
                break
        lines.append(f"expert: {pending_email} / {DEMO_PASSWORD}  (自分で登録したプロフィール: 管理者の確認待ち)")

        listed = self._ok(self.http.get("/api/v1/experts", headers=admin, params={"kind": "sekisupe", "limit": 1}))
        if listed["items"]:
            held = listed["items"][0]
            body = next(body for body in generate_experts(20, seed=7) if body.get("kind") == "sekisupe")
            claim = self.http.post(
                "/api/v1/experts",
                headers=self._login(claimant_email),
                json=body | {"name": held["name"], "registration_number": held["registration_number"]},
            )
            if claim.status_code not in (201, 409):
                self._ok(claim)
            lines.append(
                f"expert: {claimant_email} / {DEMO_PASSWORD}  (登録番号 {held['registration_number']} の申立て: 管理者が判断)"
            )

        # The operator invites the new user into an SME organisation (any member could); they have not answered.
        organizations = self._ok(self.http.get("/api/v1/organizations", headers=admin, params={"limit": 1}))["items"]
        invitee_id = self._ok(self.http.get("/api/v1/auth/me", headers=self._login(invitee_email)))["id"]
        if organizations:
            self._ok(
                self.http.post(
                    f"/api/v1/organizations/{organizations[0]['id']}/members",
                    headers=admin,
                    json={"user_id": invitee_id},
                )
            )
            lines.append(f"sme: {invitee_email} / {DEMO_PASSWORD}  ({organizations[0]['name']} からの招待: 承諾待ち)")
        return lines

    # --- issue 11: a 相談会 solved and published, a hub project with a proposed team --------------------------

    def _demo_profile(self, admin: dict[str, str], kind: str, changes: dict) -> dict:
        """An expert entry the operator creates (so verified), from a generated body of this kind with changes;
        another seed when the generated registration number is taken."""
        for attempt in range(40):
            share = 1.0 if kind == "dx_talent" else 0.0
            body = next(iter(generate_experts(1, seed=self.random.randint(0, 10**9) + attempt, dx_share=share)))
            body.pop("training", None)  # registered recently: no training due yet
            body.pop("renewal_deadline", None)
            response = self.http.post("/api/v1/experts", headers=admin, json=body | changes)
            if response.status_code == 201:
                return response.json()
            if response.status_code != 409:
                self._ok(response)
        raise RuntimeError(f"demo load failed: no free registration number for a {kind} entry")

    def _load_sessions_and_projects(self, admin: dict[str, str], smes: int) -> list[str]:
        """A 相談会 of the Tokyo broker a month ahead: 東京 セキュ子 and two more on-site experts invited, the demo
        SME and up to four other SMEs registered (one with a topic nobody invited covers, so the plan says why it
        is unserved), solved and published (everyone concerned is told). A hub project of the Tokyo hub for the
        demo SME with five learners who finished the case study (one with an account) and a proposed team."""
        lines = []
        broker = self._login("broker.tokyo@tsunagu.example")
        today = date.today()
        recent = (today - timedelta(days=60)).isoformat()
        invited = []
        for index, (name, kana, strengths) in enumerate(
            (
                ("品川 守", "しながわ まもる", ["ransomware", "incident_response", "security_policy"]),
                ("多摩 明子", "たま あきこ", ["education", "targeted_attack", "backup_bcp"]),
            )
        ):
            profile = self._demo_profile(
                admin,
                "sekisupe",
                {
                    "name": name,
                    "name_kana": kana,
                    "registration_date": recent,
                    "prefectures": ["13"],
                    "onsite": True,
                    "remote": True,
                    "strengths": [{"topic": topic, "depth": 3 - index % 2} for topic in strengths],
                },
            )
            invited.append({"expert_id": profile["id"], "max_meetings": 2})
        day = today + timedelta(days=30)
        own = self._ok(self.http.get("/api/v1/experts/me", headers=self._login("expert@tsunagu.example")))
        deadline = own.get("renewal_deadline")
        if own.get("active") and own.get("onsite") and (deadline is None or date.fromisoformat(deadline) >= day):
            invited.insert(0, {"expert_id": own["id"], "max_meetings": 2})  # 東京 セキュ子, when registered on the day
        session = self._retry_until_created(
            lambda: self.http.post(
                "/api/v1/sessions",
                headers=broker,
                json={
                    "title": "東京 中小企業サイバーセキュリティ相談会",
                    "date": day.isoformat(),
                    "venue_prefecture": "13",
                    "venue": "東京商工会議所 相談室",
                    "slots": [
                        {"start": "10:00", "end": "10:45"},
                        {"start": "11:00", "end": "11:45"},
                        {"start": "13:30", "end": "14:15"},
                        {"start": "14:30", "end": "15:15"},
                    ],
                    "experts": invited,
                },
            ),
            what="a 相談会",
        )
        organizations = self._ok(self.http.get("/api/v1/organizations", headers=self._login("sme@tsunagu.example")))
        registrants = [("sme@tsunagu.example", ["ransomware", "backup_bcp"], organizations["items"][0]["id"])]
        wanted = [["security_policy"], ["education", "targeted_attack"], ["incident_response"], ["paperless"]]
        for index, topics_ in enumerate(wanted[: max(0, smes)]):
            email = f"sme{index + 1:03d}@tsunagu.example"
            mine = self._ok(self.http.get("/api/v1/organizations", headers=self._login(email)))["items"]
            registrants.append((email, topics_, mine[0]["id"] if mine else None))
        for email, topics_, organization_id in registrants:
            headers = self._login(email)
            self._retry_until_created(
                lambda headers=headers, topics_=topics_, organization_id=organization_id: self.http.post(
                    f"/api/v1/sessions/{session['id']}/registrations",
                    headers=headers,
                    json={"topics": topics_, "organization_id": organization_id, "note": "デモ用の申込です。"},
                ),
                what="a registration",
            )
        plan = self._ok(self.http.post(f"/api/v1/sessions/{session['id']}/assignment", headers=broker))
        lines.append(
            f"相談会: {session['title']} ({day.isoformat()}, 東京商工会議所): broker.tokyo@tsunagu.example が割当済み "
            f"({plan['served']}/{plan['registrations']} 社に面談), sme@ / expert@ に通知 "
            f"(GET /api/v1/sessions, /api/v1/sessions/{{id}}/schedule.ics)"
        )

        # The hub project: learners in Tokyo and Kanagawa who finished the case study.
        learner_email = "learner@tsunagu.example"
        learner = self._ok(
            self.http.post(
                "/api/v1/admin/users",
                headers=admin,
                json={
                    "email": learner_email,
                    "password": DEMO_PASSWORD,
                    "display_name": "多摩川 データ子",
                    "role": "expert",
                },
            )
        )
        for index, (name, roles) in enumerate(
            (
                ("多摩川 データ子", {"data_scientist": 3}),
                ("横浜 開発郎", {"software_engineer": 3}),
                ("川崎 設計", {"designer": 2}),
                ("新宿 分析", {"data_scientist": 2, "business_architect": 2}),
                ("町田 構築", {"software_engineer": 2}),
            )
        ):
            self._demo_profile(
                admin,
                "dx_talent",
                {
                    "external_id": f"MDQ-DEMO-{index + 1:03d}",
                    "name": name,
                    "prefectures": ["13" if index % 2 == 0 else "14"],
                    "remote": True,
                    "dss_roles": [{"role": role, "level": level} for role, level in roles.items()],
                    "programme": {
                        "status": "graduate",
                        "cohort_year": 2025,
                        "case_study_completed": True,
                        "regional_collaboration": True,
                    },
                    "availability": "available",
                }
                | ({"owner_user_id": learner["id"]} if index == 0 else {}),
            )
        hub = self._login("hub@tsunagu.example")
        project = self._retry_until_created(
            lambda: self.http.post(
                "/api/v1/projects",
                headers=hub,
                json={
                    "title": "受注データで需要予測し、在庫を減らす",
                    "summary": "精密部品の受注実績から需要を予測し、材料在庫と欠品を減らしたい。",
                    "organization_id": organizations["items"][0]["id"],
                    "topics": ["demand_forecast", "data_driven_ops"],
                    "requirements": [
                        {"role": "data_scientist", "level": 2},
                        {"role": "software_engineer", "level": 2},
                    ],
                    "prefecture": "13",
                    "remote_ok": True,
                    "start_on": (today + timedelta(days=45)).isoformat(),
                    "weeks": 8,
                    "team_size": 4,
                    "cohort": "2026",
                },
            ),
            what="a hub project",
        )
        deadline = time.monotonic() + 60
        while True:  # matching learns of the learners through events: solve until the team is full
            teams = self._ok(
                self.http.post("/api/v1/projects/teams", headers=hub, json={"project_ids": [project["id"]]})
            )
            members = teams["projects"][0]["members"] if teams["projects"] else []
            if len(members) >= 4 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        lines.append(
            f"expert (DX人材): {learner_email} / {DEMO_PASSWORD}  (ハブプロジェクト「{project['title']}」の編成案に "
            f"{len(members)} 名: hub@ が確定できます /hub)"
        )
        return lines
