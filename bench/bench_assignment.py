"""相談会 and hub-team solver benchmark (issue 11): solve time and objective at realistic scale.

- The R6 pilot: about 30 SMEs over 6 consultation days in 3 regions (5 SMEs, 4 experts, 6 slots a day).
- A large 相談会: 300 SMEs, 60 experts, 6 slots (the issue's figure) and 8 slots.
- Hub teams: 100 projects from 2,000 learners (マナビDX Quest: ~10 hubs, ~400 learners a year; a cohort
  of five years), teams of 5, three roles needed each, 30% security projects with 200 mentors available.

Pair scores come from the real scorer (ranker.rank over a matrix of the invited experts, on site at the
venue), as the service computes them; learners' fit as service.team_instance computes it (roles, interest,
region). Each solve is checked: "optimal" is HiGHS's proof (relative gap 0), and the plan is re-checked for
slot clashes and capacities. Writes bench/results/assignment.json. Run: ``python bench/bench_assignment.py``.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.matching.assignment import (
    Learner,
    Registration,
    Seat,
    SessionInstance,
    TeamInstance,
    TeamProject,
    solve_session,
    solve_teams,
)
from services.matching.scoring.features import FeatureMatrix, FeatureRow
from services.matching.scoring.ranker import RankingInput, rank
from tsunagu.reference import dss_roles, prefectures, topics

RESULTS = Path(__file__).resolve().parent / "results" / "assignment.json"
DAY = date(2027, 1, 20)
SECURITY_TOPICS = sorted(t for t, topic in topics().items() if topic.area == "security")
DX_TOPICS = sorted(t for t, topic in topics().items() if topic.area == "dx")


def _expert_row(rng: random.Random, index: int, prefecture: str) -> FeatureRow:
    near = [prefecture, *prefectures()[prefecture].neighbours]
    return FeatureRow(
        expert_id=f"e{index:04d}",
        entity_version=1,
        change_seq=index,
        display_name=f"専門家{index}",
        active=True,
        prefectures=rng.sample(near, min(len(near), rng.randint(1, 3))),
        onsite=True,
        remote=rng.random() < 0.7,
        topics={t: rng.randint(1, 3) for t in rng.sample(SECURITY_TOPICS, rng.randint(2, 6))},
        skills=[],
        industries=rng.sample(["製造業", "小売業", "建設業", "食品"], 1),
        capacity=3,
        registration_expires_on=date(2029, 3, 31),
        last_confirmed_at=None,
        conflicted_organization_ids=[f"org{rng.randrange(400)}"] if rng.random() < 0.1 else [],
        employer_organization_id=None,
        public_fields=["prefectures", "strengths"],
        broker_fields=["prefectures", "strengths"],
    )


def session_instance(rng: random.Random, smes: int, experts: int, slots: int, prefecture: str) -> SessionInstance:
    matrix = FeatureMatrix()
    rows = [_expert_row(rng, i, prefecture) for i in range(experts)]
    for row in rows:
        matrix.upsert(row)
    matrix.set_dynamic({}, {}, {})
    popular = SECURITY_TOPICS[:8]  # demand concentrates on a few topics, as in the pilot (ransomware etc.)
    scores: dict[tuple[str, str], float] = {}
    registrations = []
    for j in range(smes):
        wanted = rng.sample(popular, rng.randint(1, 2)) + (rng.sample(SECURITY_TOPICS, 1) if rng.random() < 0.3 else [])
        organization = f"org{rng.randrange(400)}"
        ranked, _ = rank(
            matrix,
            RankingInput(prefecture, "onsite", wanted, [], None, organization_id=organization),
            today=DAY,
            limit=experts,
        )
        for entry in ranked:
            if entry.covered_topics:
                scores[f"r{j:04d}", entry.expert_id] = round(entry.score, 4)
        registrations.append(Registration(f"r{j:04d}", tuple(wanted)))
    seats = [Seat(row.expert_id, rng.randint(3, slots), None, frozenset(row.topics)) for row in rows]
    return SessionInstance(slots, seats, registrations, scores, {t: topics()[t].label_ja for t in topics()})


def check_session(instance: SessionInstance, solution) -> None:
    cells = [(m.slot, m.expert_id) for m in solution.meetings] + [
        (m.slot, m.registration_id) for m in solution.meetings
    ]
    assert len(cells) == len(set(cells)), "someone is in two places"
    for seat in instance.seats:
        assert sum(1 for m in solution.meetings if m.expert_id == seat.expert_id) <= seat.max_meetings


def run_session(name: str, smes: int, experts: int, slots: int, days: int = 1, seed: int = 1) -> dict:
    rng = random.Random(seed)
    figures = []
    for day in range(days):
        prefecture = ["13", "27", "47"][day % 3]
        instance = session_instance(rng, smes, experts, slots, prefecture)
        started = time.perf_counter()
        solution = solve_session(instance)
        wall = time.perf_counter() - started
        check_session(instance, solution)
        figures.append(
            {
                "seconds": round(wall, 3),
                "solver_seconds": round(solution.solve_seconds, 3),
                "status": solution.status,
                "objective": solution.objective,
                "served": solution.served,
                "registrations": len(instance.registrations),
                "meetings": len(solution.meetings),
                "eligible_pairs": len(instance.pair_scores),
                "reasons_ja": solution.reasons_ja[:3],
            }
        )
    return {
        "name": name,
        "smes_per_day": smes,
        "experts": experts,
        "slots": slots,
        "days": days,
        "max_seconds": max(f["seconds"] for f in figures),
        "all_optimal": all(f["status"] == "optimal" for f in figures),
        "runs": figures,
    }


def run_teams(projects_count: int, learners_count: int, seed: int = 2) -> dict:
    rng = random.Random(seed)
    roles = sorted(dss_roles())
    hubs = ["13", "27", "23", "40", "01", "04", "34", "37", "47", "15"]
    learner_home = {f"l{j:05d}": rng.choice(hubs) for j in range(learners_count)}
    learners = [
        Learner(lid, {role: rng.randint(1, 4) for role in rng.sample(roles, rng.randint(1, 2))}) for lid in learner_home
    ]
    remote = {lid: rng.random() < 0.6 for lid in learner_home}
    projects = []
    fit: dict[tuple[str, str], int] = {}
    mentor_fit: dict[tuple[str, str], int] = {}
    for i in range(projects_count):
        pid = f"p{i:03d}"
        home = hubs[i % len(hubs)]
        remote_ok = rng.random() < 0.5
        requirements = tuple((role, rng.randint(1, 3)) for role in rng.sample(roles, 3))
        security = rng.random() < 0.3
        projects.append(TeamProject(pid, 5, requirements, security))
        for learner in learners:
            lid = learner.learner_id
            if learner_home[lid] == home:
                region = 10
            elif remote_ok and remote[lid]:
                region = 0
            else:
                continue
            credit = sum(
                1.0 if learner.roles.get(r, 0) >= lv else 0.5 if learner.roles.get(r, 0) else 0.0
                for r, lv in requirements
            )
            interest = 30 if rng.random() < 0.02 else 0
            fit[lid, pid] = round(60 * credit / len(requirements)) + interest + region
        if security:
            for m in rng.sample(range(200), 15):
                mentor_fit[f"m{m:03d}", pid] = rng.randint(20, 100)
    instance = TeamInstance(projects, learners, fit, mentor_fit, {f"m{m:03d}": 2 for m in range(200)})
    started = time.perf_counter()
    solution = solve_teams(instance)
    wall = time.perf_counter() - started
    placed = [lid for ids in solution.members.values() for lid in ids]
    assert len(placed) == len(set(placed))
    covered = sum(len(v) for v in solution.covered.values())
    return {
        "name": "hub teams",
        "projects": projects_count,
        "learners": learners_count,
        "eligible_pairs": len(fit),
        "seconds": round(wall, 3),
        "solver_seconds": round(solution.solve_seconds, 3),
        "status": solution.status,
        "objective": solution.objective,
        "members_placed": len(placed),
        "places": 5 * projects_count,
        "requirements_covered": covered,
        "requirements": sum(len(p.requirements) for p in projects),
        "mentors_placed": len(solution.mentors),
        "security_projects": sum(1 for p in projects if p.needs_mentor),
    }


def main() -> None:
    results = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "solver": "HiGHS via scipy.optimize.milp, relative gap 0 (hub teams without HiGHS's MIP presolve)",
        "sessions": [
            run_session("R6 pilot: 6 days, 5 SMEs and 4 experts a day", smes=5, experts=4, slots=6, days=6),
            run_session("large day, 6 slots", smes=300, experts=60, slots=6),
            run_session("large day, 8 slots", smes=300, experts=60, slots=8),
        ],
        "teams": [run_teams(100, 2000)],
    }
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for run in results["sessions"]:
        last = run["runs"][-1]
        print(
            f"{run['name']}: max {run['max_seconds']} s, optimal={run['all_optimal']}, served {last['served']}/{last['registrations']}, objective {last['objective']}"
        )
    team = results["teams"][0]
    print(
        f"teams {team['projects']}x{team['learners']}: {team['seconds']} s, {team['status']}, objective {team['objective']}, placed {team['members_placed']}/{team['places']}, covered {team['requirements_covered']}/{team['requirements']}, mentors {team['mentors_placed']}/{team['security_projects']}"
    )


if __name__ == "__main__":
    main()
