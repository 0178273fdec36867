"""The profiles service's commands (``tsunagu experts ...``): the active-list jobs an operator runs from a
terminal or a CronJob. Mounted by the composition root (``launcher.cli``)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

app = typer.Typer(help="登録セキスペ名簿の一括取込・出力・鮮度チェック (active list jobs)", no_args_is_help=True)


@app.command("import")
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


@app.command("export")
def experts_export(
    file: Path = typer.Argument(..., dir_okay=False, help="where to write the CSV"),
    encoding: str = typer.Option("utf-8", help="utf-8 | cp932 (Excel)"),
) -> None:
    """名簿のCSV出力 (export the list in the import format)."""
    from services.profiles.exporter import export_experts_file

    if encoding not in ("utf-8", "cp932"):
        raise typer.BadParameter("utf-8 か cp932 を指定してください (utf-8 or cp932)")
    rows = export_experts_file(file, encoding=encoding)  # type: ignore[arg-type]
    typer.echo(f"{rows}件を出力しました (exported {rows} rows) -> {file}")


@app.command("freshness")
def experts_freshness() -> None:
    """名簿の鮮度チェック: deactivate expired / lapsed / unconfirmed entries, send reminders (run daily)."""
    from services.profiles.freshness import run_freshness_job

    typer.echo(json.dumps(run_freshness_job(), ensure_ascii=False, indent=2, default=str))
