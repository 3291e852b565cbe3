"""Read the questions of the Copier template from ``copier.yml``.

``copier.yml`` is the single source of truth for questions, choices and
defaults: the CLI builds its flags from what this module returns, at run time.

This module is imported when the CLI starts (``fastcelery --help``), so it must
stay cheap: PyYAML (with the C loader when available) is imported only when a
``copier.yml`` is actually read, and nothing from Copier or Jinja.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


def _yaml_load(text: str) -> Any:
    import yaml  # noqa: PLC0415 - lazy: `fastcelery --help` never reads copier.yml

    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def _yaml_load_all(text: str) -> list[Any]:
    import yaml  # noqa: PLC0415

    return list(yaml.load_all(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


COPIER_YML = "copier.yml"
#: The question answered by the NAME argument of ``fastcelery new`` (the project's folder).
NAME_QUESTION = "project_name"
#: The question that names the Python package (its directory in the project).
PACKAGE_QUESTION = "package_name"
#: The task sub-template (``subtemplates/task``) and the question ``add task NAME`` answers.
TASK_KIND = "task"
TASK_NAME_QUESTION = "task_name"
#: Questions answered by a command's NAME argument, never by a flag.
NAME_QUESTIONS = (NAME_QUESTION, TASK_NAME_QUESTION)
#: Questions of the task sub-template that the project answers (its ``.copier-answers.yml``).
PROJECT_ANSWERS = (PACKAGE_QUESTION,)
#: Types Copier knows (``CAST_STR_TO_NATIVE`` in Copier).
KNOWN_TYPES = ("bool", "float", "int", "json", "str", "yaml")


class QuestionError(ValueError):
    """A value given for a question cannot be used (bad type, unknown choice)."""


@dataclass(frozen=True)
class Question:
    """One question of ``copier.yml``, as the CLI sees it."""

    name: str
    type: str
    help: str = ""
    default: Any = None
    has_default: bool = False
    choices: tuple[Any, ...] | None = None
    validator: str = ""
    when: str | bool = True
    multiselect: bool = False

    @property
    def flag(self) -> str:
        """The long option of this question: underscores become dashes."""
        return "--" + self.name.replace("_", "-")

    @property
    def is_bool(self) -> bool:
        return self.type == "bool"

    @property
    def is_computed(self) -> bool:
        """``when: false``: never asked nor recorded, a value derived from the answers."""
        return self.when is False

    @property
    def choice_strings(self) -> tuple[str, ...] | None:
        if self.choices is None:
            return None
        return tuple(format_value(c) for c in self.choices)

    def describe_default(self) -> str:
        if not self.has_default:
            return "(required)"
        if isinstance(self.default, str) and "{{" in self.default:
            # A Jinja default; the task sub-template's come from the project's answers.
            if "_external_data.project" in self.default:
                return "the project's answer"
            return "computed from the other answers"
        return format_value(self.default)


@dataclass(frozen=True)
class TemplateConfig:
    """The parsed ``copier.yml``: settings (``_x`` keys) and questions, in order."""

    path: Path
    settings: Mapping[str, Any] = field(default_factory=dict)
    questions: tuple[Question, ...] = ()

    def question(self, name: str) -> Question:
        for q in self.questions:
            if q.name == name:
                return q
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(q.name for q in self.questions)


def format_value(value: Any) -> str:
    """Show a value the way a user would type it on the command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value)
    return str(value)


def _choice_values(raw: Any) -> tuple[Any, ...] | None:
    """Values of Copier's ``choices`` (list, ``[label, value]`` pairs or a mapping).

    A Jinja-templated choices string cannot be known before rendering: ``None``.
    """
    if raw is None or isinstance(raw, str):
        return None
    items: Sequence[Any] = list(raw.items()) if isinstance(raw, dict) else raw
    values: list[Any] = []
    for item in items:
        value = item[1] if isinstance(item, list | tuple) and len(item) == 2 else item
        if isinstance(value, dict) and "value" in value:
            value = value["value"]
        values.append(value)
    return tuple(values) or None


def _infer_type(default: Any) -> str:
    """Copier's rule: no ``type`` means the type of the default, else ``yaml``."""
    name = type(default).__name__
    return name if name in KNOWN_TYPES else "yaml"


def _question(name: str, spec: Any) -> Question:
    if not isinstance(spec, dict):
        spec = {"default": spec}
    has_default = "default" in spec
    default = spec.get("default")
    qtype = str(spec.get("type") or _infer_type(default))
    return Question(
        name=name,
        type=qtype,
        help=" ".join(str(spec.get("help") or "").split()),
        default=default,
        has_default=has_default,
        choices=_choice_values(spec.get("choices")),
        validator=str(spec.get("validator") or ""),
        when=spec.get("when", True),
        multiselect=bool(spec.get("multiselect", False)),
    )


def parse_config(text: str, path: Path) -> TemplateConfig:
    """Parse the text of a ``copier.yml`` (several YAML documents are merged, as Copier does)."""
    data: dict[str, Any] = {}
    for doc in _yaml_load_all(text):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: expected a mapping of questions")
        data.update(doc)
    settings = {k: v for k, v in data.items() if k.startswith("_")}
    questions = tuple(_question(k, v) for k, v in data.items() if not k.startswith("_"))
    return TemplateConfig(path=path, settings=settings, questions=questions)


@cache
def load_config(path: Path) -> TemplateConfig:
    return parse_config(path.read_text(encoding="utf-8"), path)


def parse_value(question: Question, raw: str) -> Any:
    """Turn a command-line string into an answer of the question's type.

    Raises :class:`QuestionError` with a one-line message when it cannot.
    """
    if question.multiselect:
        loaded = _yaml_load(raw)
        items = loaded if isinstance(loaded, list) else [s.strip() for s in raw.split(",")]
        return [parse_scalar(question, str(item)) for item in items]
    return parse_scalar(question, raw)


_TRUE = {"y", "yes", "t", "true", "on", "1"}
_FALSE = {"n", "no", "f", "false", "off", "0"}


def parse_scalar(question: Question, raw: str) -> Any:
    kind = question.type
    value: Any
    try:
        if kind == "bool":
            low = raw.strip().lower()
            if low in _TRUE:
                value = True
            elif low in _FALSE:
                value = False
            else:
                raise ValueError(raw)
        elif kind == "int":
            value = int(raw)
        elif kind == "float":
            value = float(raw)
        elif kind == "json":
            value = json.loads(raw)
        elif kind == "yaml":
            value = _yaml_load(raw)
        else:
            value = raw
    except ValueError as exc:
        raise QuestionError(
            f"invalid {question.flag} {raw!r}: expected a value of type {kind}"
        ) from exc
    return value


def check_choice(question: Question, value: Any) -> None:
    """Raise :class:`QuestionError` when ``value`` is not one of the question's choices."""
    choices = question.choice_strings
    if choices is None:
        return
    given = value if isinstance(value, list) else [value]
    for item in given:
        if format_value(item) not in choices:
            raise QuestionError(
                f"invalid {question.flag} {format_value(item)!r}: "
                f"choose one of {', '.join(choices)}"
            )
