"""The hub-team solver on instances too large for brute force (issue 11): ``solve_teams`` skips HiGHS's MIP
presolve to meet its 5-second aim (presolve spent most of the time on 77,000 binaries whose LP relaxation is
already nearly integral). Skipping it must never change the answer: these tests solve random cohorts (scarce
and plentiful learners, pins, exclusions, security mentors) both ways and require the same proven optimum,
the same objective recomputed from the teams, and every limit kept."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from services.matching.assignment import Learner, TeamInstance, TeamProject, solve_teams, team_objective

ROLES = ["business_architect", "data_scientist", "software_engineer", "designer", "cyber_security"]


def _cohort(seed: int, projects_count: int, learners_count: int) -> TeamInstance:
    """A cohort shaped like bench/bench_assignment.py's (regions, remote work, three roles per project, 30%
    security projects), with some pins and exclusions."""
    rng = random.Random(seed)
    hubs = ["13", "27", "23", "40", "47"]
    home = {f"l{j:04d}": rng.choice(hubs) for j in range(learners_count)}
    remote = {lid: rng.random() < 0.6 for lid in home}
    learners = [
        Learner(lid, {role: rng.randint(1, 4) for role in rng.sample(ROLES, rng.randint(1, 2))}) for lid in home
    ]
    projects: list[TeamProject] = []
    fit: dict[tuple[str, str], int] = {}
    mentor_fit: dict[tuple[str, str], int] = {}
    taken: set[str] = set()
    for i in range(projects_count):
        pid = f"p{i:03d}"
        hub = hubs[i % len(hubs)]
        remote_ok = rng.random() < 0.5
        requirements = tuple((role, rng.randint(1, 3)) for role in rng.sample(ROLES, 3))
        candidates = []
        for learner in learners:
            lid = learner.learner_id
            if home[lid] == hub:
                region = 10
            elif remote_ok and remote[lid]:
                region = 0
            else:
                continue
            credit = sum(
                1.0 if learner.roles.get(r, 0) >= lv else 0.5 if learner.roles.get(r, 0) else 0.0
                for r, lv in requirements
            )
            fit[lid, pid] = round(60 * credit / 3) + (30 if rng.random() < 0.05 else 0) + region
            candidates.append(lid)
        free = [lid for lid in candidates if lid not in taken]
        pinned = frozenset(rng.sample(free, 1)) if free and rng.random() < 0.2 else frozenset()
        taken |= pinned
        excluded = (
            frozenset(rng.sample(candidates, 2)) - pinned if len(candidates) > 2 and rng.random() < 0.2 else frozenset()
        )
        security = rng.random() < 0.3
        projects.append(TeamProject(pid, rng.randint(3, 5), requirements, security, pinned, excluded))
        if security:
            for m in rng.sample(range(20), 4):
                mentor_fit[f"m{m:02d}", pid] = rng.randint(20, 100)
    return TeamInstance(projects, learners, fit, mentor_fit, {f"m{m:02d}": rng.randint(0, 2) for m in range(20)})


@pytest.mark.parametrize(
    ("seed", "projects_count", "learners_count"),
    [(1, 20, 60), (2, 20, 100), (3, 30, 400), (4, 40, 160), (5, 12, 30)],
)
def test_skipping_presolve_finds_the_same_optimum(seed: int, projects_count: int, learners_count: int) -> None:
    instance = _cohort(seed, projects_count, learners_count)
    fast = solve_teams(instance)
    with_presolve = solve_teams(instance, presolve=True)
    assert fast.status == with_presolve.status == "optimal"
    assert fast.objective == with_presolve.objective
    assert fast.objective == team_objective(instance, fast.members, fast.mentors)
    projects = {p.project_id: p for p in instance.projects}
    placed = [lid for ids in fast.members.values() for lid in ids]
    assert len(placed) == len(set(placed))
    for project_id, ids in fast.members.items():
        project = projects[project_id]
        assert len(ids) <= project.team_size
        assert project.pinned <= set(ids)
        assert not project.excluded & set(ids)
        assert all((lid, project_id) in instance.fit for lid in ids)
    uses = Counter(fast.mentors.values())
    assert all(uses[m] <= instance.mentor_capacity[m] for m in uses)
    assert all(projects[p].needs_mentor and (m, p) in instance.mentor_fit for p, m in fast.mentors.items())
