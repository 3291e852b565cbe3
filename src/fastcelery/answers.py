"""Answers from the command line: typed, choice-checked, validated by copier.yml's rules.

Pure functions over :mod:`fastcelery.questions`; the CLI turns their
:class:`~fastcelery.errors.UsageError` into one error line and exit code 2.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastcelery.errors import UsageError
from fastcelery.questions import (
    Question,
    QuestionError,
    TemplateConfig,
    check_choice,
    parse_value,
)

#: Values deliberately not offered, with the reason shown to the user. Keep it small.
REFUSED_VALUES: dict[str, dict[str, str]] = {
    "result_backend": {
        "rpc": (
            "the rpc backend's results can be read only once and only by the process that "
            "sent the task, so no GET /tasks/{id} status endpoint can work on it"
        ),
    },
}


def check_refused(question: Question, raw: str, via: str) -> None:
    reason = REFUSED_VALUES.get(question.name, {}).get(raw)
    if reason:
        choices = ", ".join(question.choice_strings or ())
        tail = f"; choose one of {choices}" if choices else ""
        shown = f"{via}{raw!r}" if via.endswith("=") else f"{via} {raw!r}"
        raise UsageError(f"{shown} is not offered: {reason}{tail}")


def _answer(question: Question, raw: Any, via: str) -> Any:
    if isinstance(raw, bool):
        return raw
    check_refused(question, str(raw), via)
    value = parse_value(question, str(raw))
    check_choice(question, value)
    return value


def collect_answers(
    config: TemplateConfig,
    flag_values: Mapping[str, Any],
    data: Sequence[str],
    *,
    fixed: Mapping[str, Any] | None = None,
    fixed_labels: Mapping[str, str] | None = None,
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """Answers from NAME/flags/``--data``: typed, choice-checked, refused values explained.

    Raises :class:`UsageError` for malformed or unknown ``--data`` and for a key given twice.
    """
    answers: dict[str, Any] = dict(fixed or {})
    source: dict[str, str] = dict(fixed_labels or {})
    for name, raw in flag_values.items():
        if name not in config.names:
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} is not a question of the chosen template")
        question = config.question(name)
        answers[name] = _answer(question, raw, question.flag)
        source[name] = question.flag
    for item in data:
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"malformed --data {item!r}: expected KEY=VALUE")
        if key not in config.names and allow_unknown:
            if key in answers:
                raise UsageError(f"--data {key}=... given twice: give it once")
            answers[key] = raw  # another template's question: Copier parses and checks it
            source[key] = f"--data {key}=..."
            continue
        if key not in config.names:
            raise UsageError(f"unknown --data key {key!r}: choose one of {', '.join(config.names)}")
        if key in answers:
            raise UsageError(f"--data {key}=... conflicts with {source[key]}: give it once")
        question = config.question(key)
        try:
            answers[key] = _answer(question, raw, f"--data {key}=")
        except QuestionError as exc:
            raise UsageError(
                str(exc).replace(f"invalid {question.flag} ", f"invalid --data {key}=", 1)
            ) from exc
        source[key] = f"--data {key}=..."
    return answers


def validate_answers(
    config: TemplateConfig,
    given: Mapping[str, Any],
    *,
    interactive: bool,
    labels: Mapping[str, str] | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run copier.yml's validators; returns the given answers completed with defaults.

    Without prompts every question's validator runs on the complete answers
    (given + defaults); with prompts only the given ones are checked now and
    Copier checks what the user types.
    """
    from fastcelery import validation  # noqa: PLC0415 - lazy: keeps --help fast

    complete = validation.complete_answers(config, given, extra_context or {})
    check = config.names if not interactive else tuple(given)
    try:
        validation.validate(config, complete, check, extra_context)
    except QuestionError as exc:
        message = str(exc)
        for name, label in (labels or {}).items():
            message = message.replace(
                f"invalid {config.question(name).flag} ", f"invalid {label} ", 1
            )
        raise UsageError(message) from exc
    return complete
