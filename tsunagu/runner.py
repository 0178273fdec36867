"""Running the whole system on one machine as plain processes: nats-server, the four services and
the scorer workers. ``make run`` (``tsunagu run``) and the end-to-end tests both use this, so the tests
exercise the same start-up path a developer or a chamber of commerce uses.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tsunagu.natsserver import NatsServer
from tsunagu.settings import KernelSettings, sqlite_url

# service name -> module with create_app() and MIGRATIONS_DIR
SERVICE_MODULES: dict[str, str] = {
    "profiles": "services.profiles.app",
    "matching": "services.matching.app",
    "search": "services.search.app",
    "gateway": "gateway.app",
}
DEFAULT_PORTS = {"gateway": 8000, "profiles": 8101, "matching": 8102, "search": 8103}


def service_module(name: str):  # noqa: ANN201
    if name not in SERVICE_MODULES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICE_MODULES)}")
    return importlib.import_module(SERVICE_MODULES[name])


def migrate(name: str, database_url: str | None = None) -> None:
    from tsunagu.migrations import upgrade

    url = database_url or KernelSettings().database_url_for(name)
    upgrade(service_module(name).MIGRATIONS_DIR, url)


@dataclass
class SystemConfig:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    scorer_workers: int = 1
    env: str = "development"
    token_secret: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)  # empty: SQLite files in data_dir
    extra_env: dict[str, str] = field(default_factory=dict)


class System:
    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(config.data_dir / "nats", port=config.nats_port, monitor_port=config.nats_monitor_port)
        self.processes: dict[str, subprocess.Popen] = {}

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.config.ports[service]}"

    def service_env(self, service: str) -> dict[str, str]:
        env = {
            **os.environ,
            "TSUNAGU_ENV": self.config.env,
            "TSUNAGU_DATA_DIR": str(self.config.data_dir.resolve()),
            "NATS_URL": self.nats.url,
            "TSUNAGU_PROFILES_URL": self.url("profiles"),
            "TSUNAGU_MATCHING_URL": self.url("matching"),
            "TSUNAGU_SEARCH_URL": self.url("search"),
            "PYTHONUNBUFFERED": "1",
            **self.config.extra_env,
        }
        if self.config.token_secret:
            env["TSUNAGU_TOKEN_SECRET"] = self.config.token_secret
        env["DATABASE_URL"] = self.database_url("matching" if service == "scorer" else service)
        return env

    def _spawn(self, key: str, args: list[str], service: str) -> None:
        log = open(self.config.data_dir / f"{key}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        self.processes[key] = subprocess.Popen(
            [sys.executable, "-m", "tsunagu.cli", *args], env=self.service_env(service), stdout=log, stderr=subprocess.STDOUT
        )

    def database_url(self, service: str) -> str:
        return self.config.database_urls.get(service) or sqlite_url(self.config.data_dir, service)

    def migrate_all(self) -> None:
        for name in SERVICE_MODULES:
            migrate(name, self.database_url(name))

    def start_nats(self) -> None:
        self.nats.start()

    def start_service(self, name: str) -> None:
        self._spawn(name, ["serve", name, "--host", "127.0.0.1", "--port", str(self.config.ports[name]), "--no-migrate"], name)

    def start_scorers(self) -> None:
        for index in range(self.config.scorer_workers):
            self._spawn(f"scorer-{index + 1}", ["worker", "scorer"], "scorer")

    def start(self, timeout: float = 90.0) -> None:
        self.migrate_all()
        self.start_nats()
        for name in SERVICE_MODULES:
            self.start_service(name)
        self.start_scorers()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0, services: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        pending = list(services or SERVICE_MODULES)
        while pending:
            for name in list(pending):
                process = self.processes.get(name)
                if process is not None and process.poll() is not None:
                    raise RuntimeError(f"{name} exited with {process.returncode}; see {self.config.data_dir / (name + '.log')}")
                try:
                    if httpx.get(self.url(name) + "/readyz", timeout=1).status_code == 200:
                        pending.remove(name)
                except httpx.TransportError:
                    pass
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}")
            if pending:
                time.sleep(0.2)

    def stop_process(self, key: str) -> None:
        process = self.processes.pop(key, None)
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self) -> None:
        for key in list(self.processes):
            self.stop_process(key)
        self.nats.stop()
