"""Assignments that respect limits, solved to optimality as 0-1 programs with HiGHS (through
scipy.optimize.milp) (issue 11): who meets whom in which slot of a 相談会 (consultation day), and which
learners form the team of each マナビDX Quest hub project. Rules only: no SQL, no HTTP; service.py builds the
instances from the database and the scorer, and ``tsunagu sessions solve INSTANCE.json`` feeds one from a
file, so a solver can be compared from outside.

Why a program and not a greedy loop: a greedy pass that gives each SME its best free expert can leave a
later SME with nobody, although swapping two meetings would serve both. The program states the limits (one
place per slot for an expert and for an SME, expert capacities, never a conflicted pair, at most one meeting
per (SME, expert)) and the solver proves the optimum (relative gap 0).

- 相談会: lexicographic, in two stages, the second fixing the optimum of the first: (1) the number of SMEs
  with at least one meeting, then (2) the total match score. So "every SME gets a meeting whenever that is
  feasible" holds exactly, and among the plans that serve the most SMEs the best-scoring one is chosen.
- Hub teams: one weighted objective: COVER_POINTS per required role/level covered and per security mentor
  placed, PLACE_POINTS per place filled, plus each member's fit (role fit, interest, region; 0-100).

Session scores are the scorer's floats rounded to 4 decimals and handled as integers (x 10,000), so the
reported objective is exactly the sum of the chosen pairs' ``pair_scores`` and anyone can check it. When not
everyone can be served, the reasons count demand against capacity per topic, in words a broker can act on
(「ランサムウェアの相談が12件に対し、対応できる専門家の枠が8件」). We first tried OR-Tools CP-SAT: it proved
the small cases but stopped at its time limit short of the optimum at 300 SMEs x 60 experts x 6 slots and at
100 projects x 2,000 learners, where HiGHS proves optimality (bench/bench_assignment.py).

The hub-team program is solved with HiGHS's MIP presolve switched off: at 100 projects x 2,000 learners
(~77,000 binaries) presolve and the root set-up it feeds (probing, clique table, symmetry detection) took
85-95% of the 9-20 s, while the LP relaxation is already integral or nearly so (HiGHS proves the optimum at
the root node, in about 300 simplex iterations). Without it the same optimum is proven in about 1-2 s.
Presolve changes only how HiGHS searches, never the program or the proof (relative gap 0);
tests/matching/test_hub_solver.py solves random cohorts both ways and finds the same optimum.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

SCALE = 10_000  # scores carry 4 decimals; the solver works on integers
DEFAULT_TIME_LIMIT = 20.0  # seconds per stage; a stage that stops early reports "feasible", not "optimal"


def to_units(score: float) -> int:
    return round(score * SCALE)


class AssignmentInputError(ValueError):
    """An instance that contradicts itself (an unknown id, a slot out of range, a pin twice): ``field`` names
    the input at fault so the API can answer 422 with it."""

    def __init__(self, field_name: str, message_ja: str, message_en: str) -> None:
        super().__init__(message_en)
        self.field = field_name
        self.message_ja = message_ja
        self.message_en = message_en


class _Mip:
    """A 0-1 program in the shape HiGHS takes (through scipy.optimize.milp): rows of (column, coefficient)
    with bounds. Every variable is binary."""

    def __init__(self) -> None:
        self.columns = 0
        self.rows: list[tuple[list[tuple[int, float]], float, float]] = []
        self.fixed_one: list[int] = []

    def var(self) -> int:
        self.columns += 1
        return self.columns - 1

    def at_most(self, entries: list[tuple[int, float]], bound: float) -> None:
        self.rows.append((entries, -np.inf, bound))

    def at_least(self, entries: list[tuple[int, float]], bound: float) -> None:
        self.rows.append((entries, bound, np.inf))

    def solve_staged(
        self, stages: list[np.ndarray], time_limit: float, *, presolve: bool = True
    ) -> tuple[np.ndarray, str, float, list[int]]:
        """Maximise each stage's integer objective in turn, fixing each optimum (as a row) before the next.
        Returns the 0/1 values, "optimal" or "feasible" (a stage hit the time limit), seconds, stage values.
        ``presolve=False`` skips HiGHS's MIP presolve (see ``solve_teams`` for why); the proof of optimality
        (relative gap 0) is the same either way."""
        # SciPy (HiGHS) is imported here, not at the top: the scorer workers import this module through the
        # service's rules and never solve, and SciPy would add some 60 MB to each of them.
        from scipy.optimize import Bounds, LinearConstraint, milp  # noqa: PLC0415 - kept out of the scorer workers
        from scipy.sparse import csr_matrix  # noqa: PLC0415 - as above

        status, seconds, values = "optimal", 0.0, []
        lower = np.zeros(self.columns)
        lower[self.fixed_one] = 1.0
        values_x = np.zeros(self.columns)
        rows = list(self.rows)
        for objective in stages:
            data, row_index, col_index, lo, hi = [], [], [], [], []
            for number, (entries, low, high) in enumerate(rows):
                for column, coefficient in entries:
                    row_index.append(number)
                    col_index.append(column)
                    data.append(coefficient)
                lo.append(low)
                hi.append(high)
            constraints = []
            if rows:
                matrix = csr_matrix((data, (row_index, col_index)), shape=(len(rows), self.columns))
                constraints.append(LinearConstraint(matrix, lo, hi))
            started = time.perf_counter()
            result = milp(
                -objective,
                constraints=constraints,
                integrality=np.ones(self.columns),
                bounds=Bounds(lower, np.ones(self.columns)),
                options={"mip_rel_gap": 0.0, "time_limit": time_limit, "presolve": presolve},
            )
            seconds += time.perf_counter() - started
            if result.x is None:
                raise AssignmentInputError(
                    "pins",
                    "固定・除外の指定を満たす割当がありません",
                    "No assignment satisfies the pins and exclusions",
                )
            if result.status != 0:
                status = "feasible"  # stopped at the time limit with a solution that may not be optimal
            values_x = np.round(result.x)
            value = round(float(objective @ values_x))
            values.append(value)
            rows.append(([(int(c), float(objective[c])) for c in np.flatnonzero(objective)], value - 0.5, np.inf))
        return values_x, status, seconds, values


# --- 相談会 -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seat:
    """An invited expert: how many meetings they take, and in which slots they are there (None: all)."""

    expert_id: str
    max_meetings: int
    slots: frozenset[int] | None = None
    topics: frozenset[str] = frozenset()  # what they cover (for the reasons only)


@dataclass(frozen=True)
class Registration:
    registration_id: str
    topics: tuple[str, ...] = ()
    max_meetings: int = 1
    blocked_expert_ids: frozenset[str] = frozenset()  # conflicts of interest (for the reasons only)


@dataclass
class SessionInstance:
    slot_count: int
    seats: list[Seat]
    registrations: list[Registration]
    # (registration_id, expert_id) -> score, for eligible pairs only (absent: may never meet)
    pair_scores: dict[tuple[str, str], float]
    topic_labels: dict[str, str] = field(default_factory=dict)

    def validate(self) -> None:
        if self.slot_count < 1:
            raise AssignmentInputError("slots", "時間帯を1つ以上指定してください", "Give at least one time slot")
        experts = [seat.expert_id for seat in self.seats]
        if len(set(experts)) != len(experts):
            raise AssignmentInputError("experts", "同じ専門家が2回指定されています", "An expert is listed twice")
        registrations = [r.registration_id for r in self.registrations]
        if len(set(registrations)) != len(registrations):
            raise AssignmentInputError("registrations", "同じ登録が2回あります", "A registration is listed twice")
        for seat in self.seats:
            if seat.slots is not None and any(s < 0 or s >= self.slot_count for s in seat.slots):
                raise AssignmentInputError(
                    "experts", "専門家の時間帯の番号が範囲外です", "An expert's slot index is out of range"
                )
        known_e, known_r = set(experts), set(registrations)
        for registration_id, expert_id in self.pair_scores:
            if registration_id not in known_r or expert_id not in known_e:
                raise AssignmentInputError(
                    "pair_scores",
                    "未登録の専門家または登録の組合せがあります",
                    "A pair names an unknown expert or registration",
                )


@dataclass(frozen=True)
class Meeting:
    slot: int
    expert_id: str
    registration_id: str
    score: float


@dataclass
class SessionSolution:
    meetings: list[Meeting]
    objective: float
    served: int
    status: str  # "optimal" | "feasible"
    unserved: list[tuple[str, str, str]]  # (registration_id, reason_ja, reason_en)
    reasons_ja: list[str]
    reasons_en: list[str]
    solve_seconds: float


def solve_session(instance: SessionInstance, *, time_limit: float = DEFAULT_TIME_LIMIT) -> SessionSolution:
    """The optimal plan of a consultation day (see the module docstring for the objective).

    When every invited expert is there all day, the slots need not be in the model: a set of (SME, expert)
    meetings in which no expert has more than min(capacity, slots) and no SME more than min(its limit,
    slots) always fits into the slots (König: a bipartite multigraph of maximum degree d has a proper edge
    colouring with d colours), so the program chooses pairs (a b-matching, whose LP is integral) and
    ``schedule_into_slots`` colours them. With experts there only part of the day, slots are variables."""
    instance.validate()
    seats = {seat.expert_id: seat for seat in instance.seats}
    limits = {r.registration_id: max(1, min(r.max_meetings, instance.slot_count)) for r in instance.registrations}
    whole_day = all(seat.slots is None for seat in instance.seats)
    mip = _Mip()
    keys: list[tuple[str, str, int]] = []  # (registration, expert, slot or -1)
    for registration_id, expert_id in sorted(instance.pair_scores):
        seat = seats[expert_id]
        if seat.max_meetings <= 0:
            continue
        for slot in [-1] if whole_day else range(instance.slot_count):
            if slot == -1 or seat.slots is None or slot in seat.slots:
                mip.var()
                keys.append((registration_id, expert_id, slot))
    groups: dict[tuple, list[tuple[int, float]]] = defaultdict(list)
    for column, (registration_id, expert_id, slot) in enumerate(keys):
        groups["expert", expert_id].append((column, 1.0))
        groups["registration", registration_id].append((column, 1.0))
        groups["pair", registration_id, expert_id].append((column, 1.0))
        if slot >= 0:
            groups["expert_slot", expert_id, slot].append((column, 1.0))
            groups["registration_slot", registration_id, slot].append((column, 1.0))
    for key, entries in groups.items():
        if key[0] == "expert":
            mip.at_most(entries, min(seats[key[1]].max_meetings, instance.slot_count))
        elif key[0] == "registration":
            mip.at_most(entries, limits[key[1]])
        elif len(entries) > 1:
            mip.at_most(entries, 1)  # one place per slot for each; never the same pair twice
    served: dict[str, int] = {}
    for registration_id in sorted({key[0] for key in keys}):
        served[registration_id] = column = mip.var()
        # served only if at least one meeting: served - sum(x) <= 0
        mip.at_most([(column, 1.0), *((c, -1.0) for c, _ in groups["registration", registration_id])], 0)
    units = np.zeros(mip.columns)
    for column, (registration_id, expert_id, _slot) in enumerate(keys):
        units[column] = to_units(instance.pair_scores[registration_id, expert_id])
    first = np.zeros(mip.columns)
    first[list(served.values())] = 1.0
    if not keys:
        solution = SessionSolution([], 0.0, 0, "optimal", [], [], [], 0.0)
    else:
        values, status, seconds, _stages = mip.solve_staged([first, units], time_limit)
        chosen = [keys[column] for column in range(len(keys)) if values[column] > 0.5]
        placed = schedule_into_slots([(r, e) for r, e, _ in chosen], instance.slot_count) if whole_day else chosen
        meetings = sorted(
            (
                Meeting(slot, expert_id, registration_id, round(instance.pair_scores[registration_id, expert_id], 4))
                for registration_id, expert_id, slot in placed
            ),
            key=lambda m: (m.slot, m.expert_id, m.registration_id),
        )
        solution = SessionSolution(
            meetings=meetings,
            objective=sum(to_units(m.score) for m in meetings) / SCALE,
            served=len({m.registration_id for m in meetings}),
            status=status,
            unserved=[],
            reasons_ja=[],
            reasons_en=[],
            solve_seconds=seconds,
        )
    explain_unserved(instance, solution)
    return solution


def schedule_into_slots(pairs: list[tuple[str, str]], slot_count: int) -> list[tuple[str, str, int]]:
    """Give each (registration, expert) meeting a slot so that nobody is in two places at once: a proper
    edge colouring of the bipartite graph with ``slot_count`` colours (König's theorem; the alternating-path
    method). Every vertex's degree must be at most ``slot_count``, which the program guarantees."""
    colour_at: dict[tuple[str, str], dict[int, tuple[str, str]]] = defaultdict(dict)  # vertex -> colour -> other

    def free(vertex: tuple[str, str]) -> int:
        used = colour_at[vertex]
        return next(c for c in range(slot_count) if c not in used)

    for registration_id, expert_id in pairs:
        u, v = ("r", registration_id), ("e", expert_id)
        a, b = free(u), free(v)
        if a != b and a in colour_at[v]:
            # Swap colours a and b along the path from v that alternates a, b, a...; afterwards a is free at v
            # (the path cannot reach u, since the graph is bipartite and a is free at u).
            path, vertex, colour = [], v, a
            while colour in colour_at[vertex]:
                other = colour_at[vertex][colour]
                path.append((vertex, other, colour))
                vertex, colour = other, (b if colour == a else a)
            for x, y, c in path:
                del colour_at[x][c]
                del colour_at[y][c]
            for x, y, c in path:
                swapped = b if c == a else a
                colour_at[x][swapped] = y
                colour_at[y][swapped] = x
        colour_at[u][a] = v
        colour_at[v][a] = u
    placed = []
    for (kind, registration_id), colours in colour_at.items():
        if kind == "r":
            placed.extend((registration_id, expert[1], slot) for slot, expert in colours.items())
    return placed


def _slot_capacity(seat: Seat, slot_count: int) -> int:
    available = slot_count if seat.slots is None else len(seat.slots)
    return max(0, min(seat.max_meetings, available))


def explain_unserved(instance: SessionInstance, solution: SessionSolution) -> None:
    """Fill ``unserved`` and ``reasons_ja/en``: demand against capacity per topic, the registrations no
    invited expert can take (none covers their topics, or only conflicted ones), and the day's total."""
    label = instance.topic_labels.get
    served = {m.registration_id for m in solution.meetings}
    seats = {seat.expert_id: seat for seat in instance.seats}
    eligible: dict[str, list[str]] = defaultdict(list)
    for registration_id, expert_id in instance.pair_scores:
        if seats[expert_id].max_meetings > 0:
            eligible[registration_id].append(expert_id)
    demand: dict[str, int] = defaultdict(int)
    for registration in instance.registrations:
        for topic in registration.topics:
            demand[topic] += 1
    supply = {
        topic: sum(_slot_capacity(s, instance.slot_count) for s in instance.seats if topic in s.topics)
        for topic in demand
    }
    short = [
        topic for topic in sorted(demand, key=lambda t: (-(demand[t] - supply[t]), t)) if demand[topic] > supply[topic]
    ]
    reasons_ja, reasons_en = [], []
    total_capacity = sum(_slot_capacity(seat, instance.slot_count) for seat in instance.seats)
    if len(instance.registrations) > total_capacity:
        reasons_ja.append(f"登録{len(instance.registrations)}件に対し、面談枠は合計{total_capacity}件")
        reasons_en.append(f"{len(instance.registrations)} registrations for {total_capacity} meeting places in all")
    for topic in short:
        gap = demand[topic] - supply[topic]
        reasons_ja.append(
            f"{label(topic, topic)}の相談が{demand[topic]}件に対し、対応できる専門家の枠が{supply[topic]}件"
            f"（あと{gap}件分の枠が必要）"
        )
        reasons_en.append(
            f"{demand[topic]} requests on {topic} for {supply[topic]} places of experts who cover it ({gap} short)"
        )
    unserved = []
    for registration in instance.registrations:
        if registration.registration_id in served:
            continue
        mine = eligible.get(registration.registration_id, [])
        names = "・".join(label(t, t) for t in registration.topics) or "相談テーマ"
        if not mine:
            covering = [s for s in instance.seats if s.topics & set(registration.topics)]
            conflicted = [s for s in covering if s.expert_id in registration.blocked_expert_ids]
            if covering and len(conflicted) == len(covering):
                ja = f"{names}に対応できる招待専門家{len(covering)}名は、いずれも利益相反のため面談できません"
                en = f"all {len(covering)} invited experts covering the topics have a conflict of interest"
            else:
                ja = f"{names}に対応できる招待専門家がいません（対応できる専門家の招待が必要）"
                en = "no invited expert covers the topics (invite one who does)"
        else:
            mine_short = [t for t in short if t in registration.topics]
            if mine_short:
                topic = mine_short[0]
                ja = f"{label(topic, topic)}の相談が{demand[topic]}件に対し、対応できる専門家の枠が{supply[topic]}件"
                en = f"{demand[topic]} requests on {topic} for {supply[topic]} places"
            else:
                places = sum(_slot_capacity(seats[e], instance.slot_count) for e in mine)
                rivals = sum(
                    1 for other in instance.registrations if set(eligible.get(other.registration_id, [])) & set(mine)
                )
                ja = (
                    f"対応できる専門家{len(mine)}名の枠{places}件に対し、同じ専門家を必要とする相談が{rivals}件"
                    "（枠か時間帯を増やすと面談できます）"
                )
                en = f"{len(mine)} suitable experts with {places} places for {rivals} registrations that need them"
        unserved.append((registration.registration_id, ja, en))
    solution.unserved = unserved
    solution.reasons_ja = reasons_ja if unserved else []
    solution.reasons_en = reasons_en if unserved else []


def brute_force_session(instance: SessionInstance) -> tuple[int, float]:
    """(SMEs served, total score) of the best plan by enumerating every plan: each (expert, slot) cell holds
    one registration or none. Exponential: for tests on tiny instances only, as an independent check."""
    seats = [seat for seat in instance.seats if seat.max_meetings > 0]
    cells = [
        (seat, slot)
        for seat in seats
        for slot in range(instance.slot_count)
        if seat.slots is None or slot in seat.slots
    ]
    limits = {r.registration_id: max(1, r.max_meetings) for r in instance.registrations}
    best = (0, 0)
    choice: list[str | None] = []

    def visit(index: int) -> None:
        nonlocal best
        if index == len(cells):
            units = sum(
                to_units(instance.pair_scores[r, cell[0].expert_id])
                for cell, r in zip(cells, choice, strict=True)
                if r is not None
            )
            served = len({r for r in choice if r is not None})
            best = max(best, (served, units))
            return
        seat, slot = cells[index]
        choice.append(None)
        visit(index + 1)
        choice.pop()
        used_by_seat = sum(1 for cell, r in zip(cells, choice, strict=False) if cell[0] is seat and r is not None)
        if used_by_seat >= seat.max_meetings:
            return
        for registration in instance.registrations:
            r = registration.registration_id
            if (r, seat.expert_id) not in instance.pair_scores:
                continue
            clash = any(
                other == r and (cell[1] == slot or cell[0] is seat) for cell, other in zip(cells, choice, strict=False)
            )
            if clash or sum(1 for other in choice if other == r) >= limits[r]:
                continue
            choice.append(r)
            visit(index + 1)
            choice.pop()

    visit(0)
    return best[0], best[1] / SCALE


# --- hub teams ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeamProject:
    project_id: str
    team_size: int
    requirements: tuple[tuple[str, int], ...] = ()  # (デジタルスキル標準 role, minimum level)
    needs_mentor: bool = False
    pinned: frozenset[str] = frozenset()
    excluded: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Learner:
    learner_id: str
    roles: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass
class TeamInstance:
    projects: list[TeamProject]
    learners: list[Learner]
    fit: dict[tuple[str, str], int]  # (learner_id, project_id) -> fit points, eligible pairs only
    mentor_fit: dict[tuple[str, str], int] = field(default_factory=dict)  # (mentor_id, project_id) -> points
    mentor_capacity: dict[str, int] = field(default_factory=dict)


@dataclass
class TeamSolution:
    members: dict[str, list[str]]  # project_id -> learner ids
    mentors: dict[str, str]  # project_id -> mentor id (security projects that got one)
    covered: dict[str, list[tuple[str, int]]]  # project_id -> requirements covered
    uncovered: dict[str, list[tuple[str, int]]]  # project_id -> requirements nobody could cover
    objective: int
    status: str
    solve_seconds: float


COVER_POINTS = 1_000  # a required role/level covered, or a security mentor placed
PLACE_POINTS = 100  # a place in a team filled; each member adds their fit (0-100) on top


def solve_teams(
    instance: TeamInstance, *, time_limit: float = DEFAULT_TIME_LIMIT, presolve: bool = False
) -> TeamSolution:
    """Teams for every project at once: each learner in at most one project, team sizes, pins and
    exclusions held, maximising COVER_POINTS per requirement covered (and mentor placed) + PLACE_POINTS per
    member + each member's and mentor's fit. A covered requirement outweighs any one member (at most 200).
    ``presolve=True`` runs HiGHS's MIP presolve (slower here; the module docstring says why it is off)."""
    projects = {p.project_id: p for p in instance.projects}
    learners = {learner.learner_id: learner for learner in instance.learners}
    pinned_to: dict[str, str] = {}
    for project in instance.projects:
        for learner_id in sorted(project.pinned):
            if learner_id in pinned_to:
                raise AssignmentInputError(
                    "pins", "同じ人が2つのプロジェクトに固定されています", "A person is pinned to two projects"
                )
            if learner_id in project.excluded:
                raise AssignmentInputError(
                    "pins", "同じ人が固定と除外の両方に指定されています", "A person is both pinned and excluded"
                )
            if (learner_id, project.project_id) not in instance.fit:
                raise AssignmentInputError(
                    "pins",
                    "固定された人はこのプロジェクトに参加できません（ケーススタディ未修了・地域・利益相反）",
                    "A pinned person may not join this project (case study, region or conflict)",
                )
            pinned_to[learner_id] = project.project_id
        if len(project.pinned) > project.team_size:
            raise AssignmentInputError("pins", "固定した人数がチームの人数を超えています", "More pins than places")
    mip = _Mip()
    x: dict[tuple[str, str], int] = {}
    for learner_id, project_id in sorted(instance.fit):
        project = projects.get(project_id)
        if project is None or learner_id not in learners or learner_id in project.excluded:
            continue
        if learner_id in pinned_to and pinned_to[learner_id] != project_id:
            continue
        x[learner_id, project_id] = column = mip.var()
        if pinned_to.get(learner_id) == project_id:
            mip.fixed_one.append(column)
    per_learner: dict[str, list[tuple[int, float]]] = defaultdict(list)
    per_project: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (learner_id, project_id), column in x.items():
        per_learner[learner_id].append((column, 1.0))
        per_project[project_id].append((column, 1.0))
    for entries in per_learner.values():
        if len(entries) > 1:
            mip.at_most(entries, 1)
    for project_id, entries in per_project.items():
        mip.at_most(entries, projects[project_id].team_size)
    columns_of_project: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (learner_id, project_id), column in x.items():
        columns_of_project[project_id].append((learner_id, column))
    cover: dict[tuple[str, int], int] = {}
    for project in instance.projects:
        for index, (role, level) in enumerate(project.requirements):
            able = [
                (column, -1.0)
                for learner_id, column in columns_of_project[project.project_id]
                if learners[learner_id].roles.get(role, 0) >= level
            ]
            if able:
                cover[project.project_id, index] = column = mip.var()
                mip.at_most([(column, 1.0), *able], 0)  # covered only if someone able is in the team
    y: dict[tuple[str, str], int] = {}
    for mentor_id, project_id in sorted(instance.mentor_fit):
        if (
            project_id in projects
            and projects[project_id].needs_mentor
            and instance.mentor_capacity.get(mentor_id, 0) > 0
        ):
            y[mentor_id, project_id] = mip.var()
    mentors_of_project: dict[str, list[tuple[int, float]]] = defaultdict(list)
    projects_of_mentor: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (mentor_id, project_id), column in y.items():
        mentors_of_project[project_id].append((column, 1.0))
        projects_of_mentor[mentor_id].append((column, 1.0))
    for entries in mentors_of_project.values():
        mip.at_most(entries, 1)
    for mentor_id, entries in projects_of_mentor.items():
        mip.at_most(entries, instance.mentor_capacity[mentor_id])
    if not x and not y:
        return TeamSolution({}, {}, {}, _uncovered(instance, {}), 0, "optimal", 0.0)
    objective = np.zeros(mip.columns)
    for key, column in x.items():
        objective[column] = PLACE_POINTS + instance.fit[key]
    for column in cover.values():
        objective[column] = COVER_POINTS
    for key, column in y.items():
        objective[column] = COVER_POINTS + instance.mentor_fit[key]
    values, status, seconds, [value] = mip.solve_staged([objective], time_limit, presolve=presolve)
    members: dict[str, list[str]] = defaultdict(list)
    for (learner_id, project_id), column in x.items():
        if values[column] > 0.5:
            members[project_id].append(learner_id)
    mentors = {project_id: mentor_id for (mentor_id, project_id), column in y.items() if values[column] > 0.5}
    covered: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for project in instance.projects:
        for role, level in project.requirements:
            if any(learners[m].roles.get(role, 0) >= level for m in members.get(project.project_id, [])):
                covered[project.project_id].append((role, level))
    return TeamSolution(
        {p: sorted(ids) for p, ids in members.items()},
        mentors,
        dict(covered),
        _uncovered(instance, covered),
        value,
        status,
        seconds,
    )


def team_objective(instance: TeamInstance, members: dict[str, list[str]], mentors: dict[str, str]) -> int:
    """The objective ``solve_teams`` maximises, for given teams (tests and the CLI check solutions with it)."""
    learners = {learner.learner_id: learner for learner in instance.learners}
    value = 0
    for project in instance.projects:
        ids = members.get(project.project_id, [])
        value += sum(PLACE_POINTS + instance.fit[i, project.project_id] for i in ids)
        value += COVER_POINTS * sum(
            1 for role, level in project.requirements if any(learners[i].roles.get(role, 0) >= level for i in ids)
        )
        if project.project_id in mentors:
            value += COVER_POINTS + instance.mentor_fit[mentors[project.project_id], project.project_id]
    return value


def _uncovered(instance: TeamInstance, covered: dict[str, list[tuple[str, int]]]) -> dict[str, list[tuple[str, int]]]:
    return {
        p.project_id: [req for req in p.requirements if req not in covered.get(p.project_id, [])]
        for p in instance.projects
    }


def brute_force_teams(instance: TeamInstance) -> int:
    """The objective of the best teams found by trying every assignment (each learner: one of their eligible
    projects or none; each security project: one of its mentors or none). Exponential: tiny instances only."""
    projects = {p.project_id: p for p in instance.projects}
    options: list[tuple[str, list[str | None]]] = []
    for learner in instance.learners:
        pinned = [p.project_id for p in instance.projects if learner.learner_id in p.pinned]
        eligible = [
            p.project_id
            for p in instance.projects
            if (learner.learner_id, p.project_id) in instance.fit and learner.learner_id not in p.excluded
        ]
        options.append((learner.learner_id, list(pinned) if pinned else [None, *eligible]))
    mentor_options = [
        (p.project_id, [None, *(m for (m, q) in instance.mentor_fit if q == p.project_id)])
        for p in instance.projects
        if p.needs_mentor
    ]
    best = 0

    def mentors(index: int, assigned: dict[str, list[str]], used: dict[str, int], chosen: dict[str, str]) -> None:
        nonlocal best
        if index == len(mentor_options):
            best = max(best, team_objective(instance, assigned, chosen))
            return
        project_id, choices = mentor_options[index]
        for mentor in choices:
            if mentor is None:
                mentors(index + 1, assigned, used, chosen)
            elif used.get(mentor, 0) < instance.mentor_capacity.get(mentor, 0):
                mentors(index + 1, assigned, {**used, mentor: used.get(mentor, 0) + 1}, {**chosen, project_id: mentor})

    def visit(index: int, assigned: dict[str, list[str]]) -> None:
        if index == len(options):
            mentors(0, assigned, {}, {})
            return
        learner_id, choices = options[index]
        for project_id in choices:
            if project_id is None:
                visit(index + 1, assigned)
            elif len(assigned.get(project_id, [])) < projects[project_id].team_size:
                visit(index + 1, {**assigned, project_id: [*assigned.get(project_id, []), learner_id]})

    visit(0, {})
    return best


# --- instance files (``tsunagu sessions solve INSTANCE.json``) ------------------------------------------


def session_instance_from_json(data: dict) -> SessionInstance:
    """The API's ``POST /sessions`` body plus ``registrations`` (``[{"id", "topics"}]``) and the scores
    (``pair_scores``: ``[{"registration_id", "expert_id", "score"}]``, eligible pairs only)."""
    try:
        slots = data["slots"]
        limit = int(data.get("max_meetings_per_sme", 1))
        instance = SessionInstance(
            slot_count=len(slots),
            seats=[
                Seat(
                    str(e["expert_id"]),
                    int(e.get("max_meetings", 2)),
                    frozenset(e["slots"]) if e.get("slots") is not None else None,
                    frozenset(e.get("topics", [])),
                )
                for e in data["experts"]
            ],
            registrations=[
                Registration(str(r["id"]), tuple(r.get("topics", [])), limit) for r in data.get("registrations", [])
            ],
            pair_scores={
                (str(p["registration_id"]), str(p["expert_id"])): float(p["score"]) for p in data["pair_scores"]
            },
        )
    except (KeyError, TypeError, ValueError) as error:
        raise AssignmentInputError(
            "instance", f"インスタンスの形式が正しくありません: {error}", f"Malformed instance: {error}"
        ) from error
    instance.validate()
    return instance


def session_solution_json(
    instance: SessionInstance, solution: SessionSolution, slots: list[dict] | None = None
) -> dict:
    """The answer in the API's shape (slots by index; ``start``/``end`` added when the slots are known)."""
    return {
        "status": solution.status,
        "meetings": [
            {
                "slot": m.slot,
                **({"start": slots[m.slot]["start"], "end": slots[m.slot]["end"]} if slots else {}),
                "expert_id": m.expert_id,
                "registration_id": m.registration_id,
                "score": m.score,
            }
            for m in solution.meetings
        ],
        "objective": solution.objective,
        "served": solution.served,
        "pair_scores": [
            {"registration_id": r, "expert_id": e, "score": s} for (r, e), s in sorted(instance.pair_scores.items())
        ],
        "unserved": [{"registration_id": r, "reason_ja": ja, "reason_en": en} for r, ja, en in solution.unserved],
        "reasons_ja": solution.reasons_ja,
        "reasons_en": solution.reasons_en,
        "solve_seconds": round(solution.solve_seconds, 3),
    }
