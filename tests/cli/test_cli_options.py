"""Start-up cost, --version, `options`, and the copier.yml ↔ flags sync."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from fastcelery import __version__, cli
from fastcelery.answers import collect_answers
from fastcelery.options import task_config, template_config
from fastcelery.paths import TemplateNotFoundError, template_root
from fastcelery.questions import NAME_QUESTION, format_value, load_config, parse_config

from .clihelpers import REPO_ROOT, run_cli

HEAVY = ("copier", "jinja2", "celery", "rich", "pydantic", "yaml")


@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["new", "--help"], ["add", "task", "--help"], []]
)
def test_startup_does_not_import_heavy_modules(args: list[str]) -> None:
    code = (
        "import sys\n"
        f"sys.argv = ['fastcelery', *{args!r}]\n"
        "from fastcelery import cli\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules})\n"
        "print('LOADED', ' '.join(loaded))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = proc.stdout.split("LOADED", 1)[1].split()
    # `new --help` and `add task --help` read a copier.yml (PyYAML) for their options.
    heavy = ("copier", "jinja2", "celery") if "--help" in args[1:] else HEAVY
    assert not set(heavy) & set(loaded), set(heavy) & set(loaded)


def test_help_lists_the_commands_via_the_console_script() -> None:
    result = run_cli(["--help"])
    assert result.exit_code == 0
    assert "new" in result.stdout
    assert "options" in result.stdout


def test_version() -> None:
    result = run_cli(["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"fastcelery {__version__}"


def _new_params() -> dict[str, Any]:
    group = typer.main.get_command(cli.app)
    new = group.commands["new"]  # type: ignore[attr-defined]
    return {opt: p for p in new.params for opt in [*p.opts, *p.secondary_opts]}


def test_every_question_has_a_flag_with_its_choices_and_default() -> None:
    """Fails when copier.yml and the CLI drift apart."""
    config = load_config(template_root() / "copier.yml")
    params = _new_params()
    for q in config.questions:
        if q.name == NAME_QUESTION:
            continue
        assert q.flag in params, f"copier.yml question {q.name} has no flag {q.flag}"
        param = params[q.flag]
        if q.is_bool:
            assert params[q.flag].secondary_opts == ["--no-" + q.flag[2:]]
        if q.choices is not None:
            choices = ", ".join(format_value(c) for c in q.choices)
            assert f"[choices: {choices}]" in param.help
            for choice in q.choices:
                answers = collect_answers(config, {q.name: format_value(choice)}, [])
                assert format_value(answers[q.name]) == format_value(choice)
        if q.has_default:
            assert f"[default: {format_value(q.default)}]" in param.help
        assert param.default is None  # "not given" is distinguishable from the default


def test_options_text_lists_every_question(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["options"])
    assert result.exit_code == 0
    config = template_config()
    for q in config.questions:
        assert q.name in result.stdout
    assert "--result-backend" in result.stdout
    assert "not offered: rpc" in result.stdout
    assert "--data NAME=VALUE" in result.stdout


def test_options_json_matches_copier_yml(runner: CliRunner) -> None:
    result = runner.invoke(cli.app, ["options", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    for command, config in (("new", template_config()), ("add task", task_config())):
        asked = [q for q in config.questions if not q.is_computed]
        mine = [r for r in rows if r["command"] == command]
        assert [r["name"] for r in mine] == [q.name for q in asked]
        by_name = {r["name"]: r for r in mine}
        for q in asked:
            row = by_name[q.name]
            assert row["type"] == q.type
            assert row["default"] == q.default
            assert row["choices"] == (list(q.choices) if q.choices is not None else None)
            assert row["help"] == q.help
    new = {r["name"]: r for r in rows if r["command"] == "new"}
    assert new["project_name"]["flag"] == "NAME"
    assert new["pydantic"]["flag"] == "--pydantic/--no-pydantic"
    assert "rpc" in new["result_backend"]["refused"]
    task = {r["name"]: r for r in rows if r["command"] == "add task"}
    assert task["task_name"]["flag"] == "NAME"
    assert task["route"]["flag"] == "--route/--no-route"
    assert task["package_name"]["flag"] == "(the project's answer)"
    assert task["pydantic"]["default_text"] == "the project's answer"


def test_add_help_lists_the_task_sub_templates_questions(runner: CliRunner) -> None:
    """`add --help` and `add task --help` take their options from the task's copier.yml."""
    shown = runner.invoke(cli.app, ["add", "--help"])
    assert shown.exit_code == 0, shown.output
    detailed = runner.invoke(cli.app, ["add", "task", "--help"])
    assert detailed.exit_code == 0, detailed.output
    text = runner.invoke(cli.app, ["options"]).stdout
    assert "fastcelery add task NAME:" in text
    for q in task_config().questions:
        if q.is_computed or q.name in ("task_name", "package_name"):
            assert q.flag not in detailed.stdout
            continue
        for flag in (q.flag, f"--no-{q.flag[2:]}") if q.is_bool else (q.flag,):
            assert flag in shown.stdout
            assert flag in detailed.stdout
        assert q.name in text


def test_template_root_source_checkout_and_wheel_layout(tmp_path: Path) -> None:
    # Source checkout / editable install: the repository root.
    assert template_root() == REPO_ROOT
    # Wheel layout: <site-packages>/fastcelery/_template/copier.yml wins.
    package = tmp_path / "site-packages" / "fastcelery"
    (package / "_template").mkdir(parents=True)
    (package / "_template" / "copier.yml").write_text("a: 1\n")
    assert template_root(package) == package / "_template"
    with pytest.raises(TemplateNotFoundError):
        template_root(tmp_path / "elsewhere" / "x" / "fastcelery")


def test_parse_config_variants() -> None:
    text = """
_subdirectory: t
short: 3
flag: true
labelled:
  type: str
  choices: {"Redis (default)": redis, "RabbitMQ": rabbitmq}
  default: redis
pairs:
  choices: [["One", 1], ["Two", 2]]
  default: 1
---
later: text
"""
    config = parse_config(text, Path("copier.yml"))
    assert config.names == ("short", "flag", "labelled", "pairs", "later")
    assert config.settings == {"_subdirectory": "t"}
    assert config.question("short").type == "int"
    assert config.question("flag").is_bool
    assert config.question("labelled").choices == ("redis", "rabbitmq")
    assert config.question("pairs").choices == (1, 2)
    assert config.question("pairs").type == "int"
    assert config.question("later").flag == "--later"
    answers = collect_answers(config, {"pairs": "2"}, ["short=7", "flag=no"])
    assert answers == {"pairs": 2, "short": 7, "flag": False}
