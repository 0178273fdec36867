"""The ``tsunagu`` command line: run the whole system, serve one service, run workers and jobs."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from pathlib import Path

import typer

from gateway import cli as gateway_cli
from launcher.runner import DEFAULT_PORTS, SERVICES, System, SystemConfig, migrate, service_entry
from services.matching import cli as matching_cli
from services.profiles import cli as profiles_cli
from services.search import cli as search_cli

app = typer.Typer(help="つなぐ (Tsunagu) — 中小企業と専門家のマッチング基盤", no_args_is_help=True)
deadletters_app = typer.Typer(help="Dead-lettered events: list and replay")
app.add_typer(matching_cli.app, name="worker")
app.add_typer(matching_cli.jobs_app, name="matching")
app.add_typer(matching_cli.sessions_app, name="sessions")
app.add_typer(profiles_cli.app, name="experts")
app.add_typer(deadletters_app, name="deadletters")
app.command("create-user")(gateway_cli.create_user)
app.add_typer(gateway_cli.keys_app, name="keys")
app.add_typer(gateway_cli.maintenance_app, name="gateway")
app.add_typer(search_cli.app, name="search")


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
    uvicorn.run(
        service_entry(service).app_factory,
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
    for name in SERVICES if service == "all" else [service]:
        migrate(name)
        typer.echo(f"migrated {name}")


@app.command()
def run(
    data_dir: Path = typer.Option(Path(".tsunagu"), help="where databases, the JetStream store and logs go"),
    port: int = typer.Option(8000, help="the gateway's port (the services use 8101-8103)"),
    nats_port: int = 4222,
    smtp_port: int = typer.Option(1025, help="the local SMTP sink's port (mails land in <data-dir>/mail)"),
    scorers: int = typer.Option(1, min=1, max=16, help="number of scorer workers"),
    demo: bool = typer.Option(True, help="load demo data on the first start"),
    demo_experts: int = typer.Option(400, min=0, max=30000),
    demo_requests: int = typer.Option(120, min=0, max=5000),
    metrics_port: int = typer.Option(
        9100,
        min=0,
        help="Prometheus /metrics: gateway here, profiles +1, matching +2, search +3, scorer N +10+N (0: free)",
    ),
) -> None:
    """Start everything (nats-server, the local mail sink, four services, scorer workers), load demo data,
    print the URLs and where the mails are."""
    from launcher.demo import DemoLoader, demo_marker

    config = SystemConfig(data_dir=data_dir, nats_port=nats_port, smtp_port=smtp_port, scorer_workers=scorers)
    config.metrics_base_port = metrics_port
    config.ports["gateway"] = port
    system = System(config)
    stopping = False

    def _stop(_signum, _frame) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        typer.echo("つなぐ を起動しています (starting Tsunagu)…")
        system.start()
        if demo and not demo_marker(data_dir).exists():
            typer.echo(
                f"デモデータを投入しています (loading demo data: {demo_experts} experts, {demo_requests} requests)…"
            )
            summary = DemoLoader(system.url("gateway"), data_dir, system.database_url("gateway")).load(
                experts=demo_experts, requests=demo_requests
            )
            typer.echo(json.dumps(summary, ensure_ascii=False))
        credentials = data_dir / "demo-accounts.txt"
        typer.echo("")
        typer.echo(f"  Web UI:  {system.url('gateway')}/")
        typer.echo(f"  API:     {system.url('gateway')}/api/v1  (OpenAPI: {system.url('gateway')}/docs)")
        typer.echo(f"  メール (mail sink): {system.maildir}/  (Maildir; SMTP 127.0.0.1:{smtp_port})")
        metrics_list = ", ".join(f"{key} :{port}" for key, port in system.metrics_ports.items())
        typer.echo(f"  メトリクス (Prometheus /metrics on 127.0.0.1): {metrics_list}")
        if credentials.exists():
            # Every role, each with data to work on (launcher/demo.py says what): printed, and kept in the file.
            typer.echo(f"  デモ用アカウント (demo accounts, also in {credentials}):")
            for line in credentials.read_text(encoding="utf-8").splitlines():
                typer.echo(f"    {line}")
        typer.echo("  停止するには Ctrl-C (press Ctrl-C to stop)")
        while not stopping:
            for key, process in list(system.processes.items()):
                if process.poll() is not None:
                    typer.echo(
                        f"{key} が停止しました (exited with {process.returncode}); log: {data_dir / (key + '.log')}",
                        err=True,
                    )
                    system.processes.pop(key)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        typer.echo("停止しています (stopping)…")
        system.stop()
        typer.echo("停止しました (stopped)")


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
