"""The search service's commands (``tsunagu search ...``), mounted by the composition root (launcher.cli).

``reindex`` rebuilds the indexes from the owning services' APIs through the gateway, signed in as an admin
(the command holds no signing key: only the gateway does); ``reindex --check`` only compares and exits
non-zero when an index differs from its sources. How and why: services/search/reindex.py, docs/search.md.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

import typer

app = typer.Typer(help="検索インデックスの再構築と整合性チェック (search indexes)", no_args_is_help=True)


@app.callback()
def _search() -> None:
    """検索インデックスの再構築と整合性チェック (search indexes)."""


@app.command("reindex")
def reindex(
    check: bool = typer.Option(False, "--check", help="compare counts and versions only; exit 1 when they differ"),
    index: list[str] = typer.Option(None, "--index", help="experts | requests | projects (default: all)"),
    gateway: str = typer.Option(
        os.environ.get("TSUNAGU_GATEWAY_URL", "http://127.0.0.1:8000"), help="the gateway (env TSUNAGU_GATEWAY_URL)"
    ),
    email: str = typer.Option(
        os.environ.get("TSUNAGU_ADMIN_EMAIL", ""), help="an admin's e-mail (env TSUNAGU_ADMIN_EMAIL)"
    ),
) -> None:
    """インデックスを各サービスのAPIから再構築 (rebuild every index from the owning services' APIs).

    The admin's password is read from TSUNAGU_ADMIN_PASSWORD, or asked for."""
    from tqdm import tqdm

    from services.search import reindex as rebuild
    from services.search.engine import INDEXES, make_engine
    from services.search.settings import SERVICE_NAME, SearchSettings
    from tsunagu.db import make_engine as make_database

    names = list(dict.fromkeys(index or INDEXES))
    unknown = [n for n in names if n not in INDEXES]
    if unknown:
        typer.echo(f"不明なインデックス / unknown index: {', '.join(unknown)} ({' | '.join(INDEXES)})", err=True)
        raise typer.Exit(2)
    if not email:
        email = typer.prompt("admin e-mail")
    password = os.environ.get("TSUNAGU_ADMIN_PASSWORD") or typer.prompt("password", hide_input=True)
    settings = SearchSettings()
    database = make_database(settings.database_url_for(SERVICE_NAME))
    progress = tqdm if sys.stderr.isatty() or os.environ.get("TSUNAGU_PROGRESS") == "1" else None
    try:
        client = rebuild.GatewayClient(gateway, email, password)
    except rebuild.SourceError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    differ = False
    try:
        for name in names:
            engine = make_engine(
                settings.backend,
                data_dir=settings.data_dir,
                meili_url=settings.meili_url,
                meili_key=settings.meili_master_key,
                index=name,
            )
            try:
                engine.setup()
                read_from = datetime.now(UTC)
                sources = rebuild.fetch_sources(client, name, progress)
                if not check:
                    summary = rebuild.rebuild(name, sources, engine, database, progress, read_from=read_from)
                    typer.echo(
                        f"{name}: {summary.written} written, {summary.removed} removed, "
                        f"{summary.kept_newer} kept (newer than the source)"
                    )
                report = rebuild.check(name, sources, engine, database)
            finally:
                engine.close()
            differ = differ or not report.agrees
            typer.echo("\n".join(report.lines()))
    except rebuild.SourceError as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from error
    finally:
        client.close()
        database.dispose()
    if differ:
        raise typer.Exit(1)
