"""``fastcelery options``: every template question, from copier.yml, as data, text or a table.

The root README's option table is :func:`format_markdown`'s output (a test keeps them equal).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastcelery.answers import REFUSED_VALUES
from fastcelery.params import flag_declaration, flag_questions
from fastcelery.paths import template_root
from fastcelery.questions import (
    COPIER_YML,
    NAME_QUESTION,
    TemplateConfig,
    format_value,
    load_config,
)

Row = dict[str, Any]


def template_config() -> TemplateConfig:
    """The bundled template's copier.yml."""
    return load_config(template_root() / COPIER_YML)


def describe_questions(config: TemplateConfig | None = None) -> list[Row]:
    """One row per question: name, flag, type, choices, default, help, refused values."""
    config = config or template_config()
    flags = {q.name for q in flag_questions(config)}
    rows = []
    for q in config.questions:
        if q.name == NAME_QUESTION:
            flag = "NAME"
        elif q.name in flags:
            flag = flag_declaration(q)
        else:
            flag = f"--data {q.name}=VALUE"
        rows.append(
            {
                "name": q.name,
                "flag": flag,
                "type": q.type,
                "choices": list(q.choices) if q.choices is not None else None,
                "default": q.default,
                "has_default": q.has_default,
                "help": q.help,
                "refused": dict(REFUSED_VALUES.get(q.name, {})),
            }
        )
    return rows


def _default(row: Row) -> str:
    return format_value(row["default"]) if row["has_default"] else "(required)"


def format_text(rows: Sequence[Row]) -> str:
    lines = []
    for row in rows:
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
        default = f"`{_default(row)}`" if row["has_default"] else _default(row)
        help_text = str(row["help"]).replace("|", "\\|")
        lines.append(f"| `{row['flag']}` | {choices} | {default} | {help_text} |")
    return "\n".join(lines)
