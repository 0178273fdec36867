"""相談会 (consultation days, issue 11) on screens: brokers plan a day (/broker/sessions/new: date, venue,
time slots, invited experts with their meeting limits), read its registrations and solve the plan
(/broker/sessions/{id}: "割り当てを計算" previews, "計算して公開" publishes; the meetings with each reason,
the unserved with theirs); SMEs see the days announced (/sessions) and register with topics and/or the
self-diagnosis answers (/sessions/{id}), then see their meeting once the plan is published.

Everything goes through the public /api/v1/sessions paths (matching owns the rules: who may plan where,
which expert serves the venue, the solver); the forms only turn rows of inputs into the JSON body and mark
the fields matching names when it refuses, keeping what was typed."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse

from gateway.routes.web_sme import ANSWERS, diagnosis_groups
from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.reference import prefectures, self_diagnosis_questions, topics

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
SLOT_ROWS = 6
EXPERT_ROWS = 6
SESSION_STATE_JA = {"open": "受付中", "published": "割当て公開済み", "cancelled": "中止"}


def _labels() -> dict[str, Any]:
    return {"session_state": SESSION_STATE_JA}


# --- brokers -----------------------------------------------------------------------------------------------
@router.get("/broker/sessions", response_class=HTMLResponse)
async def broker_sessions(web: WebDep) -> HTMLResponse:
    web.require(Role.BROKER, Role.HUB)
    page = await web.api.get("/api/v1/sessions", limit=100)
    return web.render(
        "sessions_broker.html",
        {**_labels(), "sessions": page["items"], "total": page["total"], "can_plan": web.caller.role != Role.HUB},
    )


def _new_context(web: Web, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "prefecture_options": [(p.code, p.name) for p in prefectures().values()],
        "slot_rows": SLOT_ROWS,
        "expert_rows": EXPERT_ROWS,
    }


@router.get("/broker/sessions/new", response_class=HTMLResponse)
async def new_session_page(web: WebDep) -> HTMLResponse:
    web.require(Role.BROKER)
    values: dict[str, Any] = {
        "venue_prefecture": (web.caller.prefectures or [""])[0],
        "max_meetings_per_sme": "1",
        "slots": [("10:00", "10:45"), ("11:00", "11:45"), ("13:00", "13:45")],
        "experts": [],
    }
    return web.render("session_new.html", _new_context(web, values, {}))


@router.post("/broker/sessions/new", response_class=HTMLResponse)
async def new_session(web: WebDep):
    web.require(Role.BROKER)
    form = await web.form()
    slots = [(forms.text(form, f"slot_start_{i}"), forms.text(form, f"slot_end_{i}")) for i in range(SLOT_ROWS)]
    experts = [(forms.text(form, f"expert_id_{i}"), forms.text(form, f"expert_max_{i}")) for i in range(EXPERT_ROWS)]
    body: dict[str, Any] = {
        "title": forms.text(form, "title"),
        "date": forms.text(form, "date") or None,
        "venue_prefecture": forms.text(form, "venue_prefecture"),
        "venue": forms.text(form, "venue"),
        "max_meetings_per_sme": forms.number(form, "max_meetings_per_sme") or 1,
        "slots": [{"start": start, "end": end} for start, end in slots if start or end],
        "experts": [
            {"expert_id": expert_id, "max_meetings": forms.number({"n": most}, "n") or 2}
            for expert_id, most in experts
            if expert_id
        ],
    }
    values = {
        **{key: forms.text(form, key) for key in ("title", "date", "venue_prefecture", "venue")},
        "max_meetings_per_sme": forms.text(form, "max_meetings_per_sme"),
        "slots": slots,
        "experts": experts,
    }
    answer = await web.api.post("/api/v1/sessions", body)
    if answer.is_ok:
        return web.redirect(
            f"/broker/sessions/{answer.data['id']}", "相談会を作成しました。中小企業の申込みを受け付けています"
        )
    errors = answer.fields or {"form": answer.message_ja}
    return web.render("session_new.html", _new_context(web, values, errors), status_code=answer.status)


async def _plan(web: Web, session_id: str) -> dict[str, Any] | None:
    answer = await web.api.call("GET", f"/api/v1/sessions/{session_id}/assignment")
    return answer.data if answer.is_ok else None


def _session_context(consultation: dict[str, Any], plan: dict[str, Any] | None, preview: bool) -> dict[str, Any]:
    names = {m["registration_id"]: m.get("organization_name") for m in (plan or {}).get("meetings", [])}
    return {
        **_labels(),
        "s": consultation,
        "plan": plan,
        "preview": preview,
        "org_names": names,
        "experts": {e["expert_id"]: e["display_name"] for e in consultation.get("experts", [])},
    }


@router.get("/broker/sessions/{session_id}", response_class=HTMLResponse)
async def broker_session(web: WebDep, session_id: Id) -> HTMLResponse:
    web.require(Role.BROKER, Role.HUB)
    consultation = await web.api.get(f"/api/v1/sessions/{session_id}")
    plan = await _plan(web, session_id) if consultation["state"] == "published" else None
    context = _session_context(consultation, plan, preview=False)
    context["can_solve"] = web.caller.role != Role.HUB
    return web.render("session_broker.html", context)


@router.post("/broker/sessions/{session_id}/assignment", response_class=HTMLResponse)
async def solve(web: WebDep, session_id: Id):
    """ "割り当てを計算" (a preview, rendered here; solving again is harmless) or "計算して公開" (redirect)."""
    web.require(Role.BROKER)
    form = await web.form()
    publish = forms.text(form, "action") == "publish"
    answer = await web.api.post(f"/api/v1/sessions/{session_id}/assignment", {"publish": publish})
    if not answer.is_ok:
        return web.redirect(f"/broker/sessions/{session_id}", answer.message_ja)
    if publish:
        plan = answer.data
        done = f"割当てを公開しました（{plan['served']}/{plan['registrations']}社に面談）。参加者に通知しました"
        return web.redirect(f"/broker/sessions/{session_id}", done)
    consultation = await web.api.get(f"/api/v1/sessions/{session_id}")
    context = _session_context(consultation, answer.data, preview=True)
    context["can_solve"] = True
    return web.render("session_broker.html", context)


# --- SMEs --------------------------------------------------------------------------------------------------
@router.get("/sessions", response_class=HTMLResponse)
async def sme_sessions(web: WebDep) -> HTMLResponse:
    caller = web.require(Role.SME)
    if caller.is_regional_staff:
        return web.redirect("/broker/sessions")  # type: ignore[return-value]
    page = await web.api.get("/api/v1/sessions", limit=100)
    return web.render("sessions_sme.html", {**_labels(), "sessions": page["items"], "total": page["total"]})


async def _organizations(web: Web) -> list[dict]:
    answer = await web.api.call("GET", "/api/v1/organizations", params={"limit": 50})
    return answer.data["items"] if answer.is_ok else []


def _register_context(
    consultation: dict[str, Any], values: dict[str, Any], errors: dict[str, str], organizations: list[dict]
) -> dict:
    items = list(topics().values())
    return {
        **_labels(),
        "s": consultation,
        "organizations": organizations,
        "values": values,
        "errors": errors,
        "topic_groups": [
            ("情報セキュリティ", [t for t in items if t.area == "security"]),
            ("DX・デジタル化", [t for t in items if t.area != "security"]),
        ],
        "diagnosis_groups": diagnosis_groups(),
        "answers": ANSWERS,
    }


@router.get("/sessions/{session_id}", response_class=HTMLResponse)
async def sme_session(web: WebDep, session_id: Id) -> HTMLResponse:
    caller = web.require(Role.SME)
    if caller.is_regional_staff:
        return web.redirect(f"/broker/sessions/{session_id}")  # type: ignore[return-value]
    consultation, organizations = await web.api.gather(
        web.api.get(f"/api/v1/sessions/{session_id}"), _organizations(web)
    )
    values = {"topics": [], "diagnosis": {}, "organization_id": organizations[0]["id"] if organizations else ""}
    return web.render("session_sme.html", _register_context(consultation, values, {}, organizations))


@router.post("/sessions/{session_id}/register", response_class=HTMLResponse)
async def sme_register(web: WebDep, session_id: Id):
    web.require(Role.SME)
    form = await web.form()
    diagnosis = {
        str(no): forms.text(form, f"q{no}")
        for no in self_diagnosis_questions()
        if forms.text(form, f"q{no}") in ("yes", "no", "unknown")
    }
    body: dict[str, Any] = {
        "topics": forms.many(form, "topics"),
        "self_diagnosis": diagnosis,
        "note": forms.text(form, "note"),
    }
    if forms.text(form, "organization_id"):
        body["organization_id"] = forms.text(form, "organization_id")
    values = {**body, "diagnosis": diagnosis}
    errors: dict[str, str] = {}
    if not body["topics"] and not [a for a in diagnosis.values() if a != "yes"]:
        errors["topics"] = "相談したいテーマを1つ以上選ぶか、自社診断に回答してください"
    else:
        answer = await web.api.post(f"/api/v1/sessions/{session_id}/registrations", body)
        for _ in range(10):  # a company registered a moment ago reaches matching through an event
            if answer.status != 422 or "organization_id" not in answer.fields:
                break
            await asyncio.sleep(0.3)
            answer = await web.api.post(f"/api/v1/sessions/{session_id}/registrations", body)
        if answer.is_ok:
            return web.redirect(f"/sessions/{session_id}", "相談会に申し込みました。割当てが決まるとお知らせします")
        errors = answer.fields or {"form": answer.message_ja}
        if "self_diagnosis" in errors:
            errors["diagnosis"] = errors.pop("self_diagnosis")
    consultation, organizations = await web.api.gather(
        web.api.get(f"/api/v1/sessions/{session_id}"), _organizations(web)
    )
    return web.render(
        "session_sme.html", _register_context(consultation, values, errors, organizations), status_code=422
    )
