"""launcher/runner.py: the service table, each process's environment and waiting for readiness."""

from __future__ import annotations

import subprocess
import sys

import pytest

from launcher.runner import SERVICES, System, service_entry


def test_every_service_has_an_app_named_by_string_and_migrations() -> None:
    assert set(SERVICES) == {"profiles", "matching", "search", "gateway"}
    for name, entry in SERVICES.items():
        assert entry.app_factory.endswith(":create_app") and name in entry.app_factory
        assert (entry.migrations_dir / "env.py").exists()
    with pytest.raises(ValueError, match="unknown service 'billing'"):
        service_entry("billing")


def test_the_scorer_works_on_matchings_database(system: System) -> None:
    env = system.service_env("scorer")
    assert env["DATABASE_URL"] == system.database_url("matching")
    assert env["TSUNAGU_MATCHING_URL"] == system.url("matching")
    assert env["NATS_URL"] == system.nats.url
    assert system.service_env("search")["DATABASE_URL"].endswith("search.sqlite3")


def test_wait_ready_returns_once_readyz_answers_200(system: System, readyz) -> None:
    server = readyz([503, 503, 200])
    system.config.ports["search"] = server.port
    system.wait_ready(timeout=10, services=["search"])
    assert server.calls == 3  # polled until ready, then no more


def test_wait_ready_times_out_naming_who_is_not_ready(system: System, readyz) -> None:
    server = readyz([503])
    system.config.ports["search"] = server.port
    with pytest.raises(TimeoutError, match=r"not ready after 0.5s: search"):
        system.wait_ready(timeout=0.5, services=["search"])
    assert server.calls >= 2  # it kept asking until the deadline


def test_wait_ready_fails_at_once_when_a_process_exits(system: System) -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    system.processes["profiles"] = process
    with pytest.raises(RuntimeError, match="profiles exited with 3"):
        system.wait_ready(timeout=60, services=["profiles"])


def test_each_process_gets_a_metrics_port_of_its_own(tmp_path) -> None:
    from launcher.runner import SystemConfig, metrics_ports

    assert metrics_ports(SystemConfig(data_dir=tmp_path)) == {}  # none unless asked for
    fixed = metrics_ports(SystemConfig(data_dir=tmp_path, scorer_workers=2, metrics_base_port=9100))
    assert fixed == {
        "gateway": 9100,
        "profiles": 9101,
        "matching": 9102,
        "search": 9103,
        "scorer-1": 9111,
        "scorer-2": 9112,
    }
    free = metrics_ports(SystemConfig(data_dir=tmp_path, scorer_workers=2, metrics_base_port=0))
    assert set(free) == set(fixed) and len(set(free.values())) == len(free)
