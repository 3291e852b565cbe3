"""Typer parameters for the commands, most of them built from ``copier.yml`` questions.

Each question becomes ``--<name-with-dashes>`` (``type: bool`` questions become
``--x/--no-x``), with the help, choices and default of ``copier.yml``. Commands get
their parameters as an :class:`inspect.Signature` assembled at run time.

Imported when the CLI starts (``fastcelery --help``): Typer and fastcelery's
light modules only.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import typer

from fastcelery.questions import NAME_QUESTIONS, Question, TemplateConfig

#: Options of our own; a copier.yml question may not take these flags.
OWN_FLAGS = frozenset(
    {
        "--output",
        "--data",
        "--defaults",
        "--force",
        "--git",
        "--no-git",
        "--template",
        "--vcs-ref",
        "--pretend",
        "--conflict",
        "--source",
        "--from-version",
        "--markdown",
        "--help",
        "--version",
        "--json",
    }
)
#: Keyword names of question options, kept apart from the commands' own parameters.
PARAM_PREFIX = "q__"


def keyword(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    """One keyword-only parameter; ``default`` is a ``typer.Option`` or ``typer.Argument``."""
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation
    )


def option(
    name: str, annotation: Any, default: Any, *decls: str, **settings: Any
) -> inspect.Parameter:
    """The parameter ``name`` as the option ``decls`` (``settings`` go to ``typer.Option``)."""
    return keyword(name, annotation, typer.Option(default, *decls, **settings))


def with_signature(
    func: Callable[..., None],
    fixed: Sequence[inspect.Parameter],
    extra: Sequence[inspect.Parameter],
) -> Callable[..., None]:
    """Give ``func(**kwargs)`` the parameters Typer reads: ``fixed`` then ``extra``."""
    func.__signature__ = inspect.Signature([*fixed, *extra])  # type: ignore[attr-defined]
    func.__annotations__ = {}
    return func


# --------------------------------------------------------------------------- questions → flags


def flag_names(question: Question) -> tuple[str, ...]:
    """``--x`` for a question; ``--x`` and ``--no-x`` for a bool one."""
    if question.is_bool:
        return question.flag, "--no-" + question.flag[2:]
    return (question.flag,)


def flag_declaration(question: Question) -> str:
    """The flag as Typer declares it (and ``options`` shows it): ``--x`` or ``--x/--no-x``."""
    return "/".join(flag_names(question))


def flag_questions(
    config: TemplateConfig, *, with_name: bool = False, fixed: Sequence[str] = ()
) -> list[Question]:
    """The questions that get their own flag: all but NAME's, computed ones, ``fixed`` ones
    (answered by the project), and any whose flag would clash with ours."""
    result = []
    for question in config.questions:
        if question.name in NAME_QUESTIONS and not with_name:
            continue
        if question.is_computed or question.name in fixed:
            continue
        if OWN_FLAGS.intersection(flag_names(question)):
            continue
        result.append(question)
    return result


def option_help(question: Question, *, for_update: bool = False) -> str:
    parts = [question.help or question.name.replace("_", " ")]
    if question.choices is not None:
        parts.append(f"[choices: {', '.join(question.choice_strings or ())}]")
    if for_update:
        parts.append("[default: the recorded answer]")
    elif question.has_default:
        parts.append(f"[default: {question.describe_default()}]")
    return " ".join(parts)


def question_parameter(question: Question, *, for_update: bool = False) -> inspect.Parameter:
    """A Typer option for one question; ``None`` means "not given on the command line"."""
    settings: dict[str, Any] = {
        "help": option_help(question, for_update=for_update),
        "show_default": False,
    }
    annotation: Any = bool | None
    if not question.is_bool:
        metavar = "|".join(question.choice_strings) if question.choice_strings else "TEXT"
        settings["metavar"] = metavar if question.type == "str" else question.type.upper()
        annotation = str | None
    return option(
        PARAM_PREFIX + question.name, annotation, None, flag_declaration(question), **settings
    )


def question_parameters(
    config: TemplateConfig | None, *, for_update: bool, fixed: Sequence[str] = ()
) -> list[inspect.Parameter]:
    """The question options of ``new``, ``add task`` or (``for_update``) ``update``, which
    also has NAME's.

    Without a ``copier.yml`` (commands that do not need it) there are none.
    """
    if config is None:
        return []
    return [
        question_parameter(q, for_update=for_update)
        for q in flag_questions(config, with_name=for_update, fixed=fixed)
    ]


def flag_values(
    config: TemplateConfig,
    kwargs: Mapping[str, Any],
    *,
    with_name: bool = False,
    fixed: Sequence[str] = (),
) -> dict[str, Any]:
    """The questions answered by their flags, from the command's keyword arguments."""
    values: dict[str, Any] = {}
    for question in flag_questions(config, with_name=with_name, fixed=fixed):
        value = kwargs.get(PARAM_PREFIX + question.name)
        if value is not None:
            values[question.name] = value
    return values
