"""The option combinations to render, derived from copier.yml.

Every combination of the core questions (broker, database, result backend, pydantic) is
rendered; every other question with choices cycles through its values across those
combinations, so each value of each question is rendered at least once without
multiplying the matrix. Combinations that copier.yml's validators reject are left out
(and tested to be rejected).
"""

import itertools
import re
from pathlib import Path
from typing import Any

import jinja2
import yaml

COPIER_YML = Path(__file__).resolve().parents[2] / "copier.yml"
CORE_QUESTIONS = ("broker", "database", "result_backend", "pydantic")


def questions() -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(COPIER_YML.read_text())
    return {name: spec for name, spec in data.items() if not name.startswith("_")}


def values_of(spec: dict[str, Any]) -> list[Any]:
    if spec.get("type") == "bool":
        return [False, True]
    choices = spec.get("choices")
    if isinstance(choices, dict):
        return list(choices.values())
    return list(choices or [])


def _regex_search(value: str, pattern: str) -> str | None:
    match = re.search(pattern, str(value))
    return match.group(0) if match else None


def validation_errors(answers: dict[str, Any]) -> list[str]:
    """Copier's validators evaluated on a full set of answers (non-empty output = error)."""
    env = jinja2.Environment(autoescape=False)  # noqa: S701 - renders plain text, not HTML
    env.filters["regex_search"] = _regex_search
    errors = []
    for spec in questions().values():
        validator = spec.get("validator")
        if validator:
            message = env.from_string(validator).render(**answers).strip()
            if message:
                errors.append(message)
    return errors


def defaults() -> dict[str, Any]:
    return {name: spec.get("default") for name, spec in questions().items()}


def _all_core_combinations() -> list[dict[str, Any]]:
    specs = questions()
    names = [name for name in CORE_QUESTIONS if name in specs]
    value_lists = [values_of(specs[name]) for name in names]
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*value_lists)]


def combinations() -> list[dict[str, Any]]:
    specs = questions()
    cycled = [
        name for name, spec in specs.items() if name not in CORE_QUESTIONS and values_of(spec)
    ]
    flags = [name for name in cycled if specs[name].get("type") == "bool"]
    choices = [name for name in cycled if name not in flags]
    result = []
    for index, core in enumerate(
        c for c in _all_core_combinations() if not validation_errors({**defaults(), **c})
    ):
        answers = dict(core)
        for offset, name in enumerate(choices):
            options = values_of(specs[name])
            answers[name] = options[(index + offset) % len(options)]
        # The other yes/no options: one on/off pattern per combination, the bits of
        # index * 13 (odd, so one-to-one modulo a power of two) with the lowest flipped on
        # every other pair. It scatters them so that every pair and every triple of options is
        # rendered in all its on/off patterns, and each option both on and off with every
        # core choice (test_matrix checks both); counting in plain binary left a fifth option
        # on only for the last core combinations, and the first one tied to pydantic.
        pattern = (index * 13) % 2 ** len(flags) ^ (index >> 1 & 1)
        for bit, name in enumerate(flags):
            answers[name] = bool(pattern >> bit & 1)
        result.append(answers)
    return result


def rejected_combinations() -> list[dict[str, Any]]:
    return [c for c in _all_core_combinations() if validation_errors({**defaults(), **c})]


def combination_id(answers: dict[str, Any]) -> str:
    return "-".join(
        f"{k}={v}" if not isinstance(v, bool) else (k if v else f"no-{k}")
        for k, v in answers.items()
    )
