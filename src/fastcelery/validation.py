"""Check answers against ``copier.yml`` before anything is written to disk.

The rules live only in ``copier.yml``: this module evaluates its ``validator``,
``when`` and templated ``default`` Jinja expressions itself, in a sandboxed Jinja
environment configured like Copier's (same filters, ``_envops`` and
``_jinja_extensions``), with the answers as context. Imported lazily by the
commands that need it (never by ``fastcelery --help``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.sandbox import SandboxedEnvironment

from fastcelery.questions import (
    Question,
    QuestionError,
    TemplateConfig,
    check_choice,
    parse_scalar,
)

_ANSIBLE_FILTERS = "jinja2_ansible_filters.AnsibleCoreFiltersExtension"


def regex_search(value: Any, regex: str, *args: str, **kwargs: Any) -> Any:
    """Copier's ``regex_search`` filter (from jinja2-ansible-filters): the match or ``None``."""
    groups: list[str | int] = []
    for arg in args:
        if named := re.match(r"\\g<(\S+)>", arg):
            groups.append(named.group(1))
        elif numbered := re.match(r"\\(\d+)", arg):
            groups.append(int(numbered.group(1)))
        else:
            raise ValueError("Unknown argument")
    flags = 0
    if kwargs.get("ignorecase"):
        flags |= re.IGNORECASE
    if kwargs.get("multiline"):
        flags |= re.MULTILINE
    match = re.search(regex, str(value), flags)
    if not match:
        return None
    if not groups:
        return match.group()
    return [match.group(g) for g in groups]


def make_env(settings: Mapping[str, Any]) -> SandboxedEnvironment:
    """A sandboxed Jinja environment configured like the one Copier renders with."""
    envops = dict(settings.get("_envops") or {})
    envops.pop("undefined", None)  # Copier accepts only the two stock classes; keep the default
    extensions = [str(e) for e in settings.get("_jinja_extensions") or ()]
    try:
        env = SandboxedEnvironment(extensions=[_ANSIBLE_FILTERS, *extensions], **envops)
    except ImportError:
        env = SandboxedEnvironment(extensions=extensions, **envops)
        env.filters["regex_search"] = regex_search
    return env


def render(env: SandboxedEnvironment, source: str, context: Mapping[str, Any]) -> str:
    return env.from_string(source).render(dict(context))


def _truthy(value: Any) -> bool:
    """Copier's ``cast_to_bool``."""
    try:
        return bool(float(value))
    except (TypeError, ValueError):
        pass
    if isinstance(value, str):
        low = value.strip().lower()
        return low not in {"", "n", "no", "f", "false", "off", "~", "null", "none"}
    return bool(value)


def is_asked(env: SandboxedEnvironment, question: Question, context: Mapping[str, Any]) -> bool:
    if isinstance(question.when, str):
        return _truthy(render(env, question.when, context))
    return _truthy(question.when)


def default_of(env: SandboxedEnvironment, question: Question, context: Mapping[str, Any]) -> Any:
    """The question's default, rendered with the answers so far and cast to its type."""
    default = question.default
    if isinstance(default, str):
        default = render(env, default, context)
        if question.type != "str" and not question.multiselect:
            with contextlib.suppress(QuestionError):
                default = parse_scalar(question, default)
    return default


def complete_answers(
    config: TemplateConfig, answers: Mapping[str, Any], extra_context: Mapping[str, Any]
) -> dict[str, Any]:
    """The given answers plus every other question's default, in ``copier.yml`` order."""
    env = make_env(config.settings)
    context: dict[str, Any] = {**extra_context, **answers}
    for question in config.questions:
        if question.name in answers or not question.has_default:
            continue
        context[question.name] = default_of(env, question, context)
    return {k: v for k, v in context.items() if k in config.names}


def validate(
    config: TemplateConfig,
    answers: Mapping[str, Any],
    check: Iterable[str],
    extra_context: Mapping[str, Any] | None = None,
) -> None:
    """Run choice checks and ``validator`` expressions of the questions named in ``check``.

    ``answers`` should be complete (see :func:`complete_answers`): combination
    rules such as "result_backend postgresql needs database postgresql" read
    other answers. Raises :class:`QuestionError` with a one-line message.
    """
    env = make_env(config.settings)
    context = {**(extra_context or {}), **answers}
    wanted = set(check)
    for question in config.questions:
        if question.name not in wanted or question.name not in answers:
            continue
        if not is_asked(env, question, context):
            continue
        value = answers[question.name]
        check_choice(question, value)
        if question.validator:
            try:
                message = render(env, question.validator, context).strip()
            except Exception as exc:
                message = str(exc)
            if message:
                one_line = " ".join(message.split())
                raise QuestionError(f"invalid {question.flag} {value!r}: {one_line}")
