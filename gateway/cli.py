"""The gateway's commands: ``tsunagu create-user`` (accounts made from a terminal, such as the first admin of
a new installation) and ``tsunagu keys`` (the signing keys: generate, rotate, print the public set; see
gateway/keys.py). Mounted by the composition root (``launcher.cli``)."""

from __future__ import annotations

import typer


def create_user(
    email: str,
    password: str = typer.Option(..., prompt=True, hide_input=True),
    display_name: str = typer.Option("管理者"),
    role: str = typer.Option("admin", help="admin | broker | hub | sme | expert"),
    prefecture: list[str] = typer.Option([], help="a broker's or hub's prefectures (repeat)"),
) -> None:
    """Create an account directly in the gateway database (the first admin of a new installation)."""
    from gateway.schemas import AdminCreateUserBody
    from gateway.service import admin_create
    from gateway.settings import SERVICE_NAME, GatewaySettings
    from tsunagu.db import make_engine, session_scope

    body = AdminCreateUserBody(
        email=email, password=password, display_name=display_name, role=role, prefectures=prefecture
    )
    engine = make_engine(GatewaySettings().database_url_for(SERVICE_NAME))
    with session_scope(engine) as session:
        user = admin_create(session, body)
        typer.echo(f"created {user.role} {user.email} ({user.id})")


keys_app = typer.Typer(help="the gateway's signing keys (Ed25519 JWK set; gateway/keys.py)", no_args_is_help=True)


def _path(file: str | None):
    from pathlib import Path

    from gateway.keys import key_file
    from gateway.settings import GatewaySettings

    return Path(file) if file else key_file(GatewaySettings())


@keys_app.command("rotate")
def rotate_keys(
    file: str = typer.Option(None, help="the key file (default: TSUNAGU_SIGNING_KEYS_FILE or the data directory)"),
    keep: int = typer.Option(2, min=0, max=10, help="older keys kept published"),
) -> None:
    """Put a new signing key in front (creates the file with one key if it does not exist yet)."""
    from gateway.keys import rotate

    keys = rotate(_path(file), keep=keep)
    typer.echo(f"signing with {keys.keys[0].kid}; published: {', '.join(k.kid or '' for k in keys.keys)}")


@keys_app.command("public")
def public_keys(file: str = typer.Option(None, help="the key file")) -> None:
    """Print the public key set (what /.well-known/jwks.json serves), e.g. for TSUNAGU_GATEWAY_JWKS."""
    import json

    from tsunagu.auth import SigningKeys

    typer.echo(json.dumps(SigningKeys.from_jwks(_path(file).read_text()).public_jwks()))


maintenance_app = typer.Typer(
    help="the gateway's upkeep: `prune` forgets ended sessions and old audit entries", no_args_is_help=True
)


@maintenance_app.command("prune")
def prune_command() -> None:
    """Delete sessions ended more than TSUNAGU_SESSION_RETENTION_DAYS ago (30; with their refresh tokens) and
    audit entries older than TSUNAGU_AUDIT_RETENTION_DAYS (400). Runs daily as the CronJob gateway-prune
    (deploy/k8s/38-gateway-prune-cronjob.yaml); needs only the gateway's DATABASE_URL, none of its secrets."""
    from gateway.service import prune
    from gateway.settings import SERVICE_NAME, SessionSettings
    from tsunagu.db import make_engine, session_scope

    settings = SessionSettings()
    engine = make_engine(settings.database_url_for(SERVICE_NAME))
    with session_scope(engine) as session:
        report = prune(session, settings)
    engine.dispose()
    typer.echo(
        f"pruned {report.sessions} sessions ({report.refresh_tokens} refresh tokens) ended over "
        f"{settings.session_retention_days} days ago, and {report.audit_events} audit entries over "
        f"{settings.audit_retention_days} days old"
    )
