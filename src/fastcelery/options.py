"""``fastcelery options``: every template question, from copier.yml, as data, text or a table.

The questions of ``fastcelery new`` come from the template's ``copier.yml``, those of
``fastcelery add task`` from the task sub-template's (``subtemplates/task/copier.yml``).
The root README's option tables are :func:`format_markdown`'s output (a test keeps them
equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastcelery.answers import REFUSED_VALUES
from fastcelery.params import flag_declaration, flag_questions
from fastcelery.paths import subtemplate_root, template_root
from fastcelery.questions import (
    COPIER_YML,
    NAME_QUESTIONS,
    PROJECT_ANSWERS,
    TASK_KIND,
    TemplateConfig,
    format_value,
    load_config,
)

Row = dict[str, Any]


def template_config() -> TemplateConfig:
    """The bundled template's copier.yml."""
    return load_config(template_root() / COPIER_YML)


def task_config() -> TemplateConfig:
    """The task sub-template's copier.yml (the questions of ``fastcelery add task``)."""
    return load_config(subtemplate_root(TASK_KIND) / COPIER_YML)


#: The commands whose options are a template's questions: (command, its fixed questions).
NEW, ADD_TASK = "new", "add task"


def describe_questions(config: TemplateConfig | None = None, command: str = NEW) -> list[Row]:
    """One row per question of ``command``: name, flag, type, choices, default, help,
    refused values (computed questions, never asked, are left out)."""
    fixed = PROJECT_ANSWERS if command == ADD_TASK else ()
    config = config or (task_config() if command == ADD_TASK else template_config())
    flags = {q.name for q in flag_questions(config, fixed=fixed)}
    rows = []
    for q in config.questions:
        if q.is_computed:
            continue
        if q.name in NAME_QUESTIONS:
            flag = "NAME"
        elif q.name in fixed:
            flag = "(the project's answer)"
        elif q.name in flags:
            flag = flag_declaration(q)
        else:
            flag = f"--data {q.name}=VALUE"
        rows.append(
            {
                "command": command,
                "name": q.name,
                "flag": flag,
                "type": q.type,
                "choices": list(q.choices) if q.choices is not None else None,
                "default": q.default,
                "has_default": q.has_default,
                "default_text": q.describe_default(),
                "help": q.help,
                "refused": dict(REFUSED_VALUES.get(q.name, {})),
            }
        )
    return rows


def _default(row: Row) -> str:
    return str(row["default_text"])


def describe_commands() -> list[Row]:
    """The questions of ``new``, then those of ``add task``."""
    return describe_questions(command=NEW) + describe_questions(command=ADD_TASK)


def format_text(rows: Sequence[Row]) -> str:
    lines: list[str] = []
    command = None
    for row in rows:
        if row["command"] != command:
            command = row["command"]
            lines += [*([""] if lines else []), f"fastcelery {command} NAME:", ""]
        lines.append(f"{row['name']}  {row['flag']}  ({row['type']})")
        if row["help"]:
            lines.append(f"    {row['help']}")
        facts = []
        if row["choices"] is not None:
            facts.append("choices: " + ", ".join(format_value(c) for c in row["choices"]))
        facts.append("default: " + _default(row))
        lines.append("    " + "; ".join(facts))
        lines += [f"    not offered: {value}: {why}" for value, why in row["refused"].items()]
    lines += ["", "Any question can also be answered with --data NAME=VALUE."]
    return "\n".join(lines)


def format_markdown(rows: Sequence[Row]) -> str:
    """A Markdown table of the questions (the README's)."""
    lines = ["| Flag | Choices | Default | What it sets |", "| --- | --- | --- | --- |"]
    for row in rows:
        choices = ", ".join(f"`{format_value(c)}`" for c in row["choices"] or ())
        # Values as code; "(required)", "the project's answer" and the like as words.
        literal = row["has_default"] and _default(row) == format_value(row["default"])
        default = f"`{_default(row)}`" if literal else _default(row)
        flag = row["flag"] if row["flag"].startswith("(") else f"`{row['flag']}`"
        help_text = str(row["help"]).replace("|", "\\|")
        lines.append(f"| {flag} | {choices} | {default} | {help_text} |")
    return "\n".join(lines)
