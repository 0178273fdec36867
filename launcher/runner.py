"""Running the whole system on one machine as plain processes: nats-server, a local SMTP sink (mails land
in the Maildir ``<data_dir>/mail``), the four services and the scorer workers. ``make run`` (``tsunagu run``) and the end-to-end tests both use this, so the tests
exercise the same start-up path a developer or a chamber of commerce uses.

Metrics: with ``metrics_base_port`` set, each process serves Prometheus ``/metrics`` on 127.0.0.1 at a port of
its own (``TSUNAGU_METRICS_PORT``): the gateway at the base, profiles +1, matching +2, search +3, scorer N at
+10+N (``tsunagu run``: 9100...; 0 picks a free port for each, as the tests do). ``System.metrics_ports``
says which process has which; ``make run`` prints them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_fixed

from gateway import settings as gateway_settings
from services.matching import settings as matching_settings
from services.profiles import settings as profiles_settings
from services.search import settings as search_settings
from tsunagu.mailsink import MailSink
from tsunagu.migrations import upgrade
from tsunagu.natsserver import NatsServer, free_port
from tsunagu.settings import KernelSettings, sqlite_url

DEVELOPMENT_GATEWAY_LIMITS = {"TSUNAGU_REGISTER_RATE_LIMIT": "1000/hour", "TSUNAGU_WRITE_RATE_LIMIT": "6000/minute"}


class _NotReady(Exception):
    """Some services do not answer /readyz yet (retried by ``System.wait_ready``)."""


@dataclass(frozen=True)
class ServiceEntry:
    migrations_dir: Path
    app_factory: str  # "module:function" for uvicorn (imported in the service's own process only)
    port: int


SERVICES: dict[str, ServiceEntry] = {
    "profiles": ServiceEntry(profiles_settings.MIGRATIONS_DIR, "services.profiles.app:create_app", 8101),
    "matching": ServiceEntry(matching_settings.MIGRATIONS_DIR, "services.matching.app:create_app", 8102),
    "search": ServiceEntry(search_settings.MIGRATIONS_DIR, "services.search.app:create_app", 8103),
    "gateway": ServiceEntry(gateway_settings.MIGRATIONS_DIR, "gateway.app:create_app", 8000),
}
DEFAULT_PORTS = {name: entry.port for name, entry in SERVICES.items()}


def service_entry(name: str) -> ServiceEntry:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}; one of {', '.join(SERVICES)}")
    return SERVICES[name]


def migrate(name: str, database_url: str | None = None) -> None:
    url = database_url or KernelSettings().database_url_for(name)
    upgrade(service_entry(name).migrations_dir, url)


@dataclass
class SystemConfig:
    data_dir: Path
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    nats_port: int = 4222
    nats_monitor_port: int = 8222
    # The local SMTP sink's port, which the gateway sends its mails to (``tsunagu run``: 1025). None: no
    # sink; the gateway's mail settings come from the environment (empty host: mail stays pending).
    smtp_port: int | None = None
    scorer_workers: int = 1
    env: str = "development"
    token_secret: str | None = None
    database_urls: dict[str, str] = field(default_factory=dict)  # empty: SQLite files in data_dir
    extra_env: dict[str, str] = field(default_factory=dict)
    # The gateway's own settings on top (e.g. TSUNAGU_OIDC_PROVIDERS, rate limits): only its process gets them.
    gateway_env: dict[str, str] = field(default_factory=dict)
    # Prometheus /metrics per process (see the module's docstring): None = none, 0 = a free port each.
    metrics_base_port: int | None = None


class System:
    def __init__(self, config: SystemConfig) -> None:
        self.config = config
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        self.nats = NatsServer(config.data_dir / "nats", port=config.nats_port, monitor_port=config.nats_monitor_port)
        self.processes: dict[str, subprocess.Popen] = {}
        self.mail_sink = MailSink(self.maildir, config.smtp_port) if config.smtp_port else None
        self.metrics_ports = metrics_ports(config)

    @property
    def maildir(self) -> Path:
        """Where the local SMTP sink keeps every mail it received (a Maildir: ``tsunagu.mailsink.read_mails``)."""
        return self.config.data_dir / "mail"

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
        }
        if self.mail_sink is not None:
            env |= {"TSUNAGU_SMTP_HOST": "127.0.0.1", "TSUNAGU_SMTP_PORT": str(self.mail_sink.port)}
            env |= {"TSUNAGU_SMTP_STARTTLS": "false", "TSUNAGU_SMTP_USERNAME": "", "TSUNAGU_SMTP_PASSWORD": ""}
            env["TSUNAGU_PUBLIC_URL"] = self.url("gateway")
        env |= self.config.extra_env
        if service == "gateway":
            if self.config.env in ("development", "test"):
                # `make run` loads its demo data through the public API from 127.0.0.1 (hundreds of entries
                # by one admin, dozens of sign-ups), and the benchmarks submit as fast as they can: the
                # production limits would stop both. Set either variable to try the real limits locally.
                for name, value in DEVELOPMENT_GATEWAY_LIMITS.items():
                    if name not in os.environ:
                        env[name] = value
            env |= self.config.gateway_env
        # The gateway alone holds secrets and signing keys (a key file under the data directory, made on its
        # first start); every service verifies the gateway's tokens with its published public keys.
        if self.config.token_secret and service == "gateway":
            env["TSUNAGU_TOKEN_SECRET"] = self.config.token_secret
        env["TSUNAGU_GATEWAY_JWKS_URL"] = self.url("gateway") + "/.well-known/jwks.json"
        env["DATABASE_URL"] = self.database_url("matching" if service == "scorer" else service)
        return env

    def metrics_url(self, key: str) -> str:
        """Where process ``key`` (gateway, profiles, matching, search, scorer-1...) serves its metrics."""
        return f"http://127.0.0.1:{self.metrics_ports[key]}/metrics"

    def _spawn(self, key: str, args: list[str], service: str) -> None:
        log = open(self.config.data_dir / f"{key}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        env = self.service_env(service)
        if key in self.metrics_ports:
            env |= {"TSUNAGU_METRICS_PORT": str(self.metrics_ports[key]), "TSUNAGU_METRICS_HOST": "127.0.0.1"}
        self.processes[key] = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def database_url(self, service: str) -> str:
        return self.config.database_urls.get(service) or sqlite_url(self.config.data_dir, service)

    def migrate_all(self) -> None:
        for name in SERVICES:
            migrate(name, self.database_url(name))

    def start_nats(self) -> None:
        self.nats.start()

    def start_mail_sink(self) -> None:
        if self.mail_sink is not None:
            self.mail_sink.start()

    def start_service(self, name: str) -> None:
        self._spawn(
            name, ["serve", name, "--host", "127.0.0.1", "--port", str(self.config.ports[name]), "--no-migrate"], name
        )

    def start_scorers(self) -> None:
        for index in range(self.config.scorer_workers):
            self.start_scorer(index + 1)

    def start_scorer(self, number: int) -> None:
        """Scorer worker ``scorer-<number>`` (from 1); the fault tests start one again after killing it."""
        self._spawn(f"scorer-{number}", ["worker", "scorer"], "scorer")

    def start(self, timeout: float = 90.0) -> None:
        self.migrate_all()
        self.start_nats()
        self.start_mail_sink()
        for name in SERVICES:
            self.start_service(name)
        self.start_scorers()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0, services: list[str] | None = None) -> None:
        """Poll every 0.2 s until each service answers ``/readyz`` with 200; a process that exits meanwhile
        fails at once (RuntimeError), a service still not ready after ``timeout`` seconds is a TimeoutError."""
        pending = list(services or SERVICES)

        def check() -> None:
            for name in list(pending):
                if self._ready(name):
                    pending.remove(name)
            if pending:
                raise _NotReady

        retrying = Retrying(
            retry=retry_if_exception_type(_NotReady),
            wait=wait_fixed(0.2),
            stop=stop_after_delay(timeout),
            reraise=True,
        )
        try:
            retrying(check)
        except _NotReady:
            raise TimeoutError(f"not ready after {timeout}s: {', '.join(pending)}") from None

    def _ready(self, name: str) -> bool:
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}; see {self.config.data_dir / (name + '.log')}")
        try:
            return httpx.get(self.url(name) + "/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

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
        if self.mail_sink is not None:
            self.mail_sink.stop()
        self.nats.stop()


def metrics_ports(config: SystemConfig) -> dict[str, int]:
    """Process key -> its metrics port (empty when ``metrics_base_port`` is None)."""
    base = config.metrics_base_port
    if base is None:
        return {}
    offsets = {"gateway": 0, "profiles": 1, "matching": 2, "search": 3}
    offsets |= {f"scorer-{index + 1}": 10 + index + 1 for index in range(config.scorer_workers)}
    return {key: (base + offset if base else free_port()) for key, offset in offsets.items()}
