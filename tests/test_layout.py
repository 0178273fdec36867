"""Every service has the same files (issue 7), so a newcomer who knows one knows them all:

settings.py (name, migrations, settings: a leaf), models.py, schemas.py, repository.py (all SQL), service.py
(rules), routes/ (module-level routers), consumers.py (event handlers), app.py (composition), migrations/.
The import rules themselves are import-linter's contracts in pyproject.toml (``make lint``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ["services/profiles", "services/matching", "services/search", "gateway"]
SHAPE = [
    "settings.py",
    "models.py",
    "schemas.py",
    "repository.py",
    "service.py",
    "routes",
    "consumers.py",
    "app.py",
    "migrations",
]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_files(service: str) -> None:
    folder = ROOT / service
    missing = [name for name in SHAPE if not (folder / name).exists()]
    assert not missing, f"{service} lacks {missing}"
    assert (folder / "migrations" / "versions").is_dir()


@pytest.mark.parametrize("service", SERVICES)
def test_routes_are_module_level_routers(service: str) -> None:
    for module in sorted((ROOT / service / "routes").glob("*.py")):
        if module.name == "__init__.py":
            continue
        tree = ast.parse(module.read_text(encoding="utf-8"))
        assigned = {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert "router" in assigned, f"{module.relative_to(ROOT)} has no module-level `router`"
        functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert "build_router" not in functions, f"{module.relative_to(ROOT)} builds its router in a closure"


@pytest.mark.parametrize("service", SERVICES)
def test_sql_lives_in_the_repository(service: str) -> None:
    """Queries (select/update/delete/insert statements, session.exec) only in repository.py and migrations."""
    offenders = []
    for module in sorted((ROOT / service).rglob("*.py")):
        relative = module.relative_to(ROOT / service)
        if relative.parts[0] in ("migrations",) or module.name == "repository.py":
            continue
        text = module.read_text(encoding="utf-8")
        if "session.exec(" in text or (
            "from sqlmodel import" in text and "select" in text.split("from sqlmodel import", 1)[1].split("\n", 1)[0]
        ):
            offenders.append(str(relative))
    assert not offenders, f"{service}: SQL outside repository.py in {offenders}"
