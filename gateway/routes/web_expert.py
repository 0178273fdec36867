"""Expert screens: /me/profile (the profile with a public / brokers / private switch per field, the
「活動中」 confirmation with the renewal and training deadlines shown; a new expert creates their entry
here) and /me/proposals (accept, or decline with a reason). Their engagements are on /engagements
(``web_engagements``). Everything goes through the public API as the signed-in expert."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.reference import prefecture_code, prefectures, topics

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

# The profile's visibility settings in words (the keys are profiles' VISIBILITY_FIELDS; the expert's own
# view carries the current map, so a key the service adds later still shows, under its key).
VISIBILITY_LABELS = {
    "name_kana": "ふりがな",
    "renewal_deadline": "更新期限",
    "affiliation": "所属",
    "contact_email": "メールアドレス",
    "contact_phone": "電話番号",
    "prefectures": "対応地域・訪問/リモート",
    "strengths": "得意分野",
    "skills": "スキル",
    "industries": "業種",
    "services": "提供サービス",
    "qualifications": "保有資格",
    "fee": "報酬",
    "capacity": "同時対応可能数",
    "bio": "自己紹介",
    "dss_roles": "デジタルスキル標準の役割",
    "programme": "マナビDX Quest の記録",
    "availability": "稼働状況",
}
TEXT_FIELDS = ("name", "name_kana", "affiliation", "contact_email", "contact_phone", "bio")


def _values_of(expert: dict[str, Any]) -> dict[str, Any]:
    """The form's values from a stored profile."""
    values: dict[str, Any] = {key: expert.get(key) or "" for key in TEXT_FIELDS}
    values.update(
        prefectures="、".join(prefectures()[c].name for c in expert.get("prefectures") or [] if c in prefectures()),
        onsite=bool(expert.get("onsite")),
        remote=bool(expert.get("remote")),
        skills=", ".join(expert.get("skills") or []),
        industries=", ".join(expert.get("industries") or []),
        qualifications=", ".join(expert.get("qualifications") or []),
        fee_min_yen=expert.get("fee_min_yen") if expert.get("fee_min_yen") is not None else "",
        fee_max_yen=expert.get("fee_max_yen") if expert.get("fee_max_yen") is not None else "",
        fee_unit=expert.get("fee_unit") or "",
        capacity=expert.get("capacity") if expert.get("capacity") is not None else 1,
        availability=expert.get("availability") or "",
        strengths={s["topic"]: str(s["depth"]) for s in expert.get("strengths") or []},
        visibility=dict(expert.get("visibility") or {}),
        kind=expert.get("kind") or "sekisupe",
        registration_number=expert.get("registration_number") or "",
        registration_date=expert.get("registration_date") or "",
    )
    return values


def _body_of(form: dict[str, Any], visibility_keys: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The PATCH/POST body and the values to show again if it is refused."""
    codes = [prefecture_code(name) or name for name in forms.tags(form, "prefectures")]
    strengths = [
        {"topic": topic, "depth": int(forms.text(form, f"s-{topic}"))}
        for topic in topics()
        if forms.text(form, f"s-{topic}") in ("1", "2", "3")
    ]
    body: dict[str, Any] = {key: forms.text(form, key) or None for key in TEXT_FIELDS}
    body["name"] = forms.text(form, "name")
    body.update(
        prefectures=codes,
        onsite=forms.flag(form, "onsite"),
        remote=forms.flag(form, "remote"),
        strengths=strengths,
        skills=forms.tags(form, "skills"),
        industries=forms.tags(form, "industries"),
        qualifications=forms.tags(form, "qualifications"),
        fee_min_yen=forms.number(form, "fee_min_yen"),
        fee_max_yen=forms.number(form, "fee_max_yen"),
        fee_unit=forms.text(form, "fee_unit") or None,
        capacity=forms.number(form, "capacity") if forms.text(form, "capacity") else 1,
        availability=forms.text(form, "availability") or None,
        visibility={
            key: forms.text(form, f"v-{key}")
            for key in visibility_keys
            if forms.text(form, f"v-{key}") in ("public", "brokers", "private")
        },
    )
    values = {key: forms.text(form, key) for key in (*TEXT_FIELDS, "prefectures", "skills", "industries")}
    values.update(
        qualifications=forms.text(form, "qualifications"),
        fee_min_yen=forms.text(form, "fee_min_yen"),
        fee_max_yen=forms.text(form, "fee_max_yen"),
        fee_unit=forms.text(form, "fee_unit"),
        capacity=forms.text(form, "capacity"),
        availability=forms.text(form, "availability"),
        onsite=body["onsite"],
        remote=body["remote"],
        strengths={s["topic"]: str(s["depth"]) for s in strengths},
        visibility=body["visibility"],
        kind=forms.text(form, "kind") or "sekisupe",
        registration_number=forms.text(form, "registration_number"),
        registration_date=forms.text(form, "registration_date"),
    )
    return body, values


def _context(expert: dict | None, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    items = list(topics().values())
    keys = list((expert or {}).get("visibility") or VISIBILITY_LABELS)
    return {
        "expert": expert,
        "values": values,
        "errors": errors,
        "visibility_fields": [(key, VISIBILITY_LABELS.get(key, key)) for key in keys],
        "topic_groups": [
            ("情報セキュリティ", [t for t in items if t.area == "security"]),
            ("DX・デジタル化", [t for t in items if t.area != "security"]),
        ],
    }


async def _mine(web: Web) -> dict | None:
    answer = await web.api.call("GET", "/api/v1/experts/me")
    if answer.status == 404:
        return None
    return answer.ok()


async def _corrections(web: Web, expert: dict | None) -> list[dict]:
    if expert is None:
        return []
    answer = await web.api.call("GET", f"/api/v1/experts/{expert['id']}/corrections", params={"limit": 20})
    return answer.data["items"] if answer.is_ok else []


@router.get("/me/profile", response_class=HTMLResponse)
async def profile_page(web: WebDep) -> HTMLResponse:
    web.require(Role.EXPERT)
    expert = await _mine(web)
    values = _values_of(expert) if expert else {"kind": "sekisupe", "capacity": 1, "strengths": {}, "visibility": {}}
    context = _context(expert, values, {}) | {"corrections": await _corrections(web, expert)}
    return web.render("profile.html", context)


@router.post("/me/profile/corrections")
async def ask_correction(web: WebDep) -> RedirectResponse:
    """Regulated data (registration number and dates) is the operator's: the expert asks for a correction."""
    web.require(Role.EXPERT)
    form = await web.form()
    expert = await _mine(web)
    if expert is None:
        return web.redirect("/me/profile", "先にプロフィールを登録してください")
    body = {
        "field": forms.text(form, "field"),
        "proposed_value": forms.text(form, "proposed_value") or None,
        "reason": forms.text(form, "reason"),
    }
    answer = await web.api.post(f"/api/v1/experts/{expert['id']}/corrections", body)
    if answer.is_ok:
        return web.redirect("/me/profile", "訂正を依頼しました。運営者が登録簿と照合して反映します")
    reasons = "、".join(answer.fields.values()) or answer.message_ja
    return web.redirect("/me/profile#corrections", f"訂正を依頼できませんでした: {reasons}")


@router.post("/me/profile", response_class=HTMLResponse)
async def save_profile(web: WebDep):
    web.require(Role.EXPERT)
    form = await web.form()
    expert = await _mine(web)
    keys = list((expert or {}).get("visibility") or VISIBILITY_LABELS)
    body, values = _body_of(form, keys)
    if expert is None:
        body["kind"] = values["kind"]
        if values["kind"] == "sekisupe":
            body["registration_number"] = values["registration_number"]
            body["registration_date"] = values["registration_date"] or None
        else:
            role, level = forms.text(form, "dss_role"), forms.number(form, "dss_level") or 1
            body["dss_roles"] = [{"role": role, "level": level}] if role else []
        body = {key: value for key, value in body.items() if value is not None}
        answer = await web.api.post("/api/v1/experts", body)
    else:
        answer = await web.api.patch(f"/api/v1/experts/{expert['id']}", body)
    if answer.is_ok:
        return web.redirect("/me/profile", "プロフィールを保存しました")
    errors = answer.fields or {"form": answer.message_ja}
    errors.setdefault("form", answer.message_ja)
    context = _context(expert, values, errors) | {"corrections": await _corrections(web, expert)}
    return web.render("profile.html", context, status_code=422)


@router.post("/me/profile/confirm-active")
async def confirm_active(web: WebDep) -> RedirectResponse:
    web.require(Role.EXPERT)
    await web.form()
    expert = await _mine(web)
    if expert is None:
        return web.redirect("/me/profile", "先にプロフィールを登録してください")
    answer = await web.api.post(f"/api/v1/experts/{expert['id']}/confirm-active")
    if not answer.is_ok:
        return web.redirect("/me/profile", answer.message_ja)
    message = answer.data.get("message_ja") or "活動中であることを確認しました。ありがとうございます"
    return web.redirect("/me/profile", message)


@router.get("/me/proposals", response_class=HTMLResponse)
async def proposals_page(web: WebDep) -> HTMLResponse:
    web.require(Role.EXPERT)
    page = await web.api.get("/api/v1/proposals", limit=100)
    waiting = [p for p in page["items"] if p["state"] == "proposed"]
    others = [p for p in page["items"] if p["state"] != "proposed"]
    return web.render("proposals.html", {"waiting": waiting, "others": others})


@router.post("/me/proposals/{proposal_id}/accept")
async def accept(web: WebDep, proposal_id: Id) -> RedirectResponse:
    web.require(Role.EXPERT)
    await web.form()
    answer = await web.api.post(f"/api/v1/proposals/{proposal_id}/accept")
    message = "承諾しました。相談者が決定すると支援が始まります" if answer.is_ok else answer.message_ja
    return web.redirect("/me/proposals", message)


@router.post("/me/proposals/{proposal_id}/decline", response_class=HTMLResponse)
async def decline(web: WebDep, proposal_id: Id):
    web.require(Role.EXPERT)
    form = await web.form()
    reason = forms.text(form, "reason")
    if not reason:
        return web.redirect("/me/proposals", "辞退の理由を入力してください")
    answer = await web.api.post(f"/api/v1/proposals/{proposal_id}/decline", {"reason": reason})
    return web.redirect("/me/proposals", "辞退しました" if answer.is_ok else answer.message_ja)
