"""The matching service's commands, mounted by the composition root (``launcher.cli``):

- ``app`` as ``tsunagu worker ...``: ``scorer`` (a scorer worker process) and ``expire-proposals``;
- ``jobs_app`` as ``tsunagu matching ...``: ``expire-proposals`` (what the Kubernetes CronJob runs).
"""

from __future__ import annotations

import asyncio

import typer

app = typer.Typer(help="Background workers", no_args_is_help=True)
jobs_app = typer.Typer(help="Matching service jobs", no_args_is_help=True)


@app.command("scorer")
def scorer_worker() -> None:
    """A scorer worker; run several for more throughput (they share one durable consumer)."""
    from services.matching.settings import MatchingSettings
    from services.matching.worker import run_worker
    from tsunagu.logging import configure_logging

    settings = MatchingSettings()
    configure_logging("scorer", settings.log_level)
    asyncio.run(run_worker(settings))


@app.command("expire-proposals")
@jobs_app.command("expire-proposals")
def expire_proposals() -> None:
    """Expire proposals left unanswered past MATCHING_PROPOSAL_TTL_DAYS (events go out via the outbox)."""
    from services.matching.jobs import expire_due
    from services.matching.settings import SERVICE_NAME, MatchingSettings
    from tsunagu.db import make_engine
    from tsunagu.logging import configure_logging

    settings = MatchingSettings()
    configure_logging("matching-expiry", settings.log_level)
    engine = make_engine(settings.database_url_for(SERVICE_NAME))
    try:
        expired = expire_due(engine)
    finally:
        engine.dispose()
    typer.echo(f"期限切れにした提案: {expired}件 / proposals expired: {expired}")


# --- 相談会 (issue 11): ``tsunagu sessions solve INSTANCE.json`` -----------------------------------------

sessions_app = typer.Typer(help="相談会 (consultation days): solve an instance file", no_args_is_help=True)


@sessions_app.command("solve")
def solve_instance(
    instance: str = typer.Argument(..., help="JSON: the POST /sessions body + registrations + pair_scores"),
) -> None:
    """Solve a 相談会 instance file and print the optimal plan as JSON (the API's answer shape), so another
    solver's answer can be compared with it."""
    import json
    from pathlib import Path

    from services.matching.assignment import (
        AssignmentInputError,
        session_instance_from_json,
        session_solution_json,
        solve_session,
    )

    data = json.loads(Path(instance).read_text(encoding="utf-8"))
    try:
        problem = session_instance_from_json(data)
    except AssignmentInputError as error:
        typer.echo(f"{error.message_ja} / {error.message_en}", err=True)
        raise typer.Exit(2) from error
    solution = solve_session(problem)
    typer.echo(json.dumps(session_solution_json(problem, solution, data.get("slots")), ensure_ascii=False, indent=2))
