"""gateway/web/errors.py: while the gateway's own database is away, a screen answers the 503 page (Japanese
first, English beside, Retry-After) and the API its JSON 503; another database error is still the 500 page.
Real driver errors: an engine pointed at a port where no PostgreSQL listens, a missing SQLite table."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from gateway.web import errors as web_errors
from tsunagu.db import make_engine
from tsunagu.errors import install_error_handlers
from tsunagu.natsserver import free_port


def _app(url: str) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    web_errors.install(app)
    engine = make_engine(url)

    def query() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT * FROM users"))

    app.get("/requests")(query)
    app.get("/api/v1/requests")(query)
    return app


def test_a_screen_answers_the_503_page_and_the_api_its_json_while_the_database_is_away() -> None:
    app = _app(f"postgresql+psycopg://nobody:nothing@127.0.0.1:{free_port()}/none?connect_timeout=2")
    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/requests")
    assert page.status_code == 503
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["retry-after"] == "5"
    assert "データベースに一時的に接続できません" in page.text
    assert "The database is temporarily unavailable" in page.text
    api = client.get("/api/v1/requests")
    assert api.status_code == 503 and api.json()["error"]["code"] == "database_unavailable"


def test_another_database_error_on_a_screen_is_still_the_500_page(tmp_path: Path) -> None:
    client = TestClient(_app(f"sqlite:///{tmp_path / 'empty.sqlite3'}"), raise_server_exceptions=False)
    page = client.get("/requests")
    assert page.status_code == 500 and "システムエラーが発生しました" in page.text
    assert "retry-after" not in page.headers
    assert client.get("/api/v1/requests").status_code == 500
