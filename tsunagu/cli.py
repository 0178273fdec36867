"""The ``tsunagu`` command line: run the whole system, serve one service, run workers and jobs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import typer

from tsunagu.runner import (
    DEFAULT_PORTS,
    SERVICE_MODULES,
    System,
    SystemConfig,
    migrate,
    service_module,
)

app = typer.Typer(help="つなぐ (Tsunagu) — 中小企業と専門家のマッチング基盤", no_args_is_help=True)
worker_app = typer.Typer(help="Background workers")
experts_app = typer.Typer(help="登録セキスペ名簿の一括取込・出力・鮮度チェック (active list jobs)")
deadletters_app = typer.Typer(help="Dead-lettered events: list and replay")
app.add_typer(worker_app, name="worker")
app.add_typer(experts_app, name="experts")
app.add_typer(deadletters_app, name="deadletters")


@app.command()
def serve(
    service: str = typer.Argument(..., help="profiles | matching | search | gateway"),
    host: str = "127.0.0.1",
    port: int | None = None,
    no_migrate: bool = typer.Option(False, "--no-migrate", help="skip Alembic migrations at start"),
) -> None:
    """Run one service as its own process (uvicorn)."""
    import uvicorn

    from tsunagu.logging import configure_logging
    from tsunagu.settings import KernelSettings

    settings = KernelSettings()
    configure_logging(service, settings.log_level)
    if not no_migrate:
        migrate(service)
    module = service_module(service)
    uvicorn.run(
        f"{module.__name__}:create_app",
        factory=True,
        host=host,
        port=port or DEFAULT_PORTS[service],
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command("migrate")
def migrate_command(service: str = typer.Argument(..., help="profiles | matching | search | gateway | all")) -> None:
    """Apply the service's Alembic migrations to its database (DATABASE_URL or the SQLite default)."""
    for name in SERVICE_MODULES if service == "all" else [service]:
        migrate(name)
        typer.echo(f"migrated {name}")


@worker_app.command("scorer")
def scorer_worker() -> None:
    """A scorer worker; run several for more throughput (they share one durable consumer)."""
    from services.matching.worker import run_worker
    from tsunagu.logging import configure_logging
    from tsunagu.settings import KernelSettings

    configure_logging("scorer", KernelSettings().log_level)
    asyncio.run(run_worker())


@app.command()
def run(
    data_dir: Path = typer.Option(Path(".tsunagu"), help="where databases, the JetStream store and logs go"),
    port: int = typer.Option(8000, help="the gateway's port (the services use 8101-8103)"),
    nats_port: int = 4222,
    scorers: int = typer.Option(1, min=1, max=16, help="number of scorer workers"),
    demo: bool = typer.Option(True, help="load demo data on the first start"),
    demo_experts: int = typer.Option(400, min=0, max=30000),
    demo_requests: int = typer.Option(120, min=0, max=5000),
) -> None:
    """Start everything (nats-server, four services, scorer workers), load demo data, print the URL."""
    from tsunagu.demo import DemoLoader, demo_marker

    config = SystemConfig(data_dir=data_dir, nats_port=nats_port, scorer_workers=scorers)
    config.ports["gateway"] = port
    system = System(config)
    stopping = False

    def _stop(_signum, _frame) -> None:  # noqa: ANN001
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        typer.echo("つなぐ を起動しています (starting Tsunagu)…")
        system.start()
        if demo and not demo_marker(data_dir).exists():
            typer.echo(f"デモデータを投入しています (loading demo data: {demo_experts} experts, {demo_requests} requests)…")
            summary = DemoLoader(system.url("gateway"), data_dir, system.database_url("gateway")).load(experts=demo_experts, requests=demo_requests)
            typer.echo(json.dumps(summary, ensure_ascii=False))
        credentials = (data_dir / "demo-accounts.txt")
        typer.echo("")
        typer.echo(f"  Web UI:  {system.url('gateway')}/")
        typer.echo(f"  API:     {system.url('gateway')}/api/v1  (OpenAPI: {system.url('gateway')}/docs)")
        if credentials.exists():
            typer.echo(f"  デモ用アカウント (demo accounts): {credentials}")
        typer.echo("  停止するには Ctrl-C (press Ctrl-C to stop)")
        while not stopping:
            for key, process in list(system.processes.items()):
                if process.poll() is not None:
                    typer.echo(f"{key} が停止しました (exited with {process.returncode}); log: {data_dir / (key + '.log')}", err=True)
                    system.processes.pop(key)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("停止しています (stopping)…")
        system.stop()
        typer.echo("停止しました (stopped)")


@experts_app.command("import")
def experts_import(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True, help="CSV (UTF-8 or Shift_JIS/CP932)"),
    encoding: str = typer.Option("auto", help="auto | utf-8 | cp932"),
    dry_run: bool = typer.Option(False, "--dry-run", help="validate and report only; write nothing"),
) -> None:
    """登録セキスペ名簿のCSV取込 (import the expert list; bad rows are reported, good rows upserted)."""
    from services.profiles.importer import import_experts_file
    from tsunagu.errors import ApiError

    try:
        report = import_experts_file(file, progress=True, encoding=encoding, dry_run=dry_run)
    except ApiError as error:
        typer.echo(f"{error.message_ja} / {error.message_en}", err=True)
        raise typer.Exit(2) from error
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    if report.get("rejected"):
        raise typer.Exit(1)


@experts_app.command("export")
def experts_export(
    file: Path = typer.Argument(..., dir_okay=False, help="where to write the CSV"),
    encoding: str = typer.Option("utf-8", help="utf-8 | cp932 (Excel)"),
) -> None:
    """名簿のCSV出力 (export the list in the import format)."""
    from services.profiles.importer import export_experts_file

    if encoding not in ("utf-8", "cp932"):
        raise typer.BadParameter("utf-8 か cp932 を指定してください (utf-8 or cp932)")
    rows = export_experts_file(file, encoding=encoding)  # type: ignore[arg-type]
    typer.echo(f"{rows}件を出力しました (exported {rows} rows) -> {file}")


@experts_app.command("freshness")
def experts_freshness() -> None:
    """名簿の鮮度チェック: deactivate expired / lapsed / unconfirmed entries, send reminders (run daily)."""
    from services.profiles.freshness import run_freshness_job

    typer.echo(json.dumps(run_freshness_job(), ensure_ascii=False, indent=2, default=str))


@app.command("create-user")
def create_user(
    email: str,
    password: str = typer.Option(..., prompt=True, hide_input=True),
    display_name: str = typer.Option("管理者"),
    role: str = typer.Option("admin", help="admin | broker | hub | sme | expert"),
    prefecture: list[str] = typer.Option([], help="a broker's or hub's prefectures (repeat)"),
) -> None:
    """Create an account directly in the gateway database (the first admin of a new installation)."""
    from gateway.users.schemas import AdminCreateUserBody
    from gateway.users.service import admin_create
    from tsunagu.db import make_engine, session_scope
    from tsunagu.settings import KernelSettings

    body = AdminCreateUserBody(email=email, password=password, display_name=display_name, role=role, prefectures=prefecture)
    engine = make_engine(KernelSettings().database_url_for("gateway"))
    with session_scope(engine) as session:
        user = admin_create(session, body)
        typer.echo(f"created {user.role} {user.email} ({user.id})")


@deadletters_app.command("list")
def deadletters_list(limit: int = 20) -> None:
    """Show the newest dead-lettered events."""
    from tsunagu.messaging import list_dead_letters

    async def main() -> None:
        import nats

        from tsunagu.settings import KernelSettings

        client = await nats.connect(KernelSettings().nats_url)
        try:
            for record in await list_dead_letters(client.jetstream(), limit):
                typer.echo(json.dumps(record, ensure_ascii=False))
        finally:
            await client.close()

    asyncio.run(main())


@deadletters_app.command("replay")
def deadletters_replay(sequence: int) -> None:
    """Publish a dead-lettered event again to its original subject."""
    from tsunagu.messaging import replay_dead_letter

    async def main() -> None:
        import nats

        from tsunagu.settings import KernelSettings

        client = await nats.connect(KernelSettings().nats_url)
        try:
            subject = await replay_dead_letter(client.jetstream(), sequence)
            typer.echo(f"replayed to {subject}")
        finally:
            await client.close()

    asyncio.run(main())


def main() -> None:  # pragma: no cover
    sys.exit(app())


if __name__ == "__main__":
    app()
