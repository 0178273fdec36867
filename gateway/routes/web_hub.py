"""Hub staff's screens (issue 11's マナビDX Quest hub projects): /hub lists the projects of their
prefectures (teams, interest, what a team still lacks) and the 相談会 there; /hub/projects/new creates a
project; /hub/projects/{id} shows it with its interest, forms its team ("チームを編成": the optimal team over
every learner who finished the case study, each member with the reason), pins or excludes a person and
solves again (matching keeps pins and exclusions on the project), and confirms the team. Brokers of the
region read these pages; only hub staff get the buttons (matching refuses anyone else anyway).

All through the public /api/v1/projects paths: the rules (who may form which team, the solver) are
matching's; the forms only build the JSON body and mark the fields matching names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from gateway.web import forms
from gateway.web.pages import Web, WebDep
from tsunagu.auth import Role
from tsunagu.reference import dss_roles, prefectures, topics

router = APIRouter(include_in_schema=False)
Id = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
REQUIREMENT_ROWS = 4
PROJECT_STATE_JA = {"open": "募集中", "team_proposed": "編成案あり", "team_confirmed": "チーム確定"}


@router.get("/hub", response_class=HTMLResponse)
async def hub_home(web: WebDep) -> HTMLResponse:
    web.require(Role.HUB, Role.BROKER)
    projects, sessions = await web.api.gather(
        web.api.call("GET", "/api/v1/projects", params={"limit": 100}),
        web.api.call("GET", "/api/v1/sessions", params={"limit": 100}),
    )
    return web.render(
        "hub.html",
        {
            "projects": projects.data if projects.is_ok else None,
            "projects_error": "" if projects.is_ok else projects.message_ja,
            "sessions": sessions.data if sessions.is_ok else None,
            "sessions_error": "" if sessions.is_ok else sessions.message_ja,
            "can_edit": web.caller.role in (Role.HUB, Role.ADMIN),
        },
    )


def _new_context(values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": errors,
        "prefecture_options": [(p.code, p.name) for p in prefectures().values()],
        "topic_options": [(t.id, t.label_ja) for t in topics().values() if t.area != "security"]
        + [(t.id, t.label_ja) for t in topics().values() if t.area == "security"],
        "role_options": [(r.id, r.label_ja) for r in dss_roles().values()],
        "requirement_rows": REQUIREMENT_ROWS,
    }


@router.get("/hub/projects/new", response_class=HTMLResponse)
async def new_project_page(web: WebDep) -> HTMLResponse:
    web.require(Role.HUB)
    values: dict[str, Any] = {
        "prefecture": (web.caller.prefectures or [""])[0],
        "weeks": "8",
        "team_size": "4",
        "topics": [],
        "requirements": [],
    }
    return web.render("hub_project_new.html", _new_context(values, {}))


@router.post("/hub/projects/new", response_class=HTMLResponse)
async def new_project(web: WebDep):
    web.require(Role.HUB)
    form = await web.form()
    rows = [(forms.text(form, f"role_{i}"), forms.text(form, f"level_{i}")) for i in range(REQUIREMENT_ROWS)]
    body: dict[str, Any] = {
        "title": forms.text(form, "title"),
        "summary": forms.text(form, "summary"),
        "sme_name": forms.text(form, "sme_name") or None,
        "sme_name_public": forms.flag(form, "sme_name_public"),
        "topics": forms.many(form, "topics"),
        "requirements": [{"role": role, "level": forms.number({"n": level}, "n") or 2} for role, level in rows if role],
        "prefecture": forms.text(form, "prefecture"),
        "remote_ok": forms.flag(form, "remote_ok"),
        "start_on": forms.text(form, "start_on") or None,
        "weeks": forms.number(form, "weeks") or 8,
        "team_size": forms.number(form, "team_size") or 5,
        "cohort": forms.text(form, "cohort"),
    }
    values = {
        **{k: forms.text(form, k) for k in ("title", "summary", "sme_name", "prefecture", "start_on", "cohort")},
        **{k: forms.text(form, k) for k in ("weeks", "team_size")},
        "sme_name_public": body["sme_name_public"],
        "remote_ok": body["remote_ok"],
        "topics": body["topics"],
        "requirements": rows,
    }
    answer = await web.api.post("/api/v1/projects", body)
    if answer.is_ok:
        return web.redirect(f"/hub/projects/{answer.data['id']}", "プロジェクトを作成しました")
    errors = answer.fields or {"form": answer.message_ja}
    return web.render("hub_project_new.html", _new_context(values, errors), status_code=answer.status)


@router.get("/hub/projects/{project_id}", response_class=HTMLResponse)
async def project_page(web: WebDep, project_id: Id) -> HTMLResponse:
    web.require(Role.HUB, Role.BROKER)
    project = await web.api.get(f"/api/v1/projects/{project_id}")
    return web.render("hub_project.html", _project_context(web, project))


def _project_context(web: Web, project: dict[str, Any]) -> dict[str, Any]:
    roles = dss_roles()
    return {
        "p": project,
        "state_ja": PROJECT_STATE_JA,
        "role_ja": {key: value.label_ja for key, value in roles.items()},
        "can_edit": web.caller.role in (Role.HUB, Role.ADMIN),
        "solvable": project["state"] in ("open", "team_proposed"),
    }


@router.post("/hub/projects/{project_id}/teams")
async def form_team(web: WebDep, project_id: Id) -> RedirectResponse:
    """Solve this project's team; with ``pin`` or ``exclude`` (a learner id), that person first."""
    web.require(Role.HUB)
    form = await web.form()
    body: dict[str, Any] = {"project_ids": [project_id]}
    pin, exclude = forms.text(form, "pin"), forms.text(form, "exclude")
    if pin:
        body["pins"] = [{"project_id": project_id, "learner_id": pin}]
    if exclude:
        body["exclusions"] = [{"project_id": project_id, "learner_id": exclude}]
    answer = await web.api.post("/api/v1/projects/teams", body)
    if not answer.is_ok:
        return web.redirect(f"/hub/projects/{project_id}", answer.message_ja)
    solved = answer.data["projects"][0] if answer.data["projects"] else {"members": []}
    done = "固定して" if pin else ("除外して" if exclude else "")
    return web.redirect(
        f"/hub/projects/{project_id}", f"{done}チームを編成しました（{len(solved['members'])}名の編成案）"
    )


@router.post("/hub/projects/{project_id}/confirm")
async def confirm_team(web: WebDep, project_id: Id) -> RedirectResponse:
    web.require(Role.HUB)
    await web.form()
    answer = await web.api.post(f"/api/v1/projects/{project_id}/team/confirm")
    done = "チームを確定しました。メンバーに通知しました" if answer.is_ok else answer.message_ja
    return web.redirect(f"/hub/projects/{project_id}", done)
