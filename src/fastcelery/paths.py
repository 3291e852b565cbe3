"""Where the bundled Copier template lives."""

from __future__ import annotations

from pathlib import Path

from fastcelery.errors import FastceleryError
from fastcelery.questions import COPIER_YML

PACKAGE_DIR = Path(__file__).resolve().parent
#: Inside a wheel, ``copier.yml``, ``template/`` and ``subtemplates/`` are shipped here
#: (see pyproject.toml).
WHEEL_TEMPLATE_DIR = PACKAGE_DIR / "_template"
#: Templates applied to a generated project (``fastcelery add``), beside the project's
#: template: ``subtemplates/<kind>/copier.yml``. They are released with it (history.py).
SUBTEMPLATES_DIR = "subtemplates"


class TemplateNotFoundError(FastceleryError):
    """The package's template is missing (a broken install): one error line, exit code 1."""


def template_root(package_dir: Path = PACKAGE_DIR) -> Path:
    """The directory holding ``copier.yml`` (and ``template/``) of the bundled template.

    * Installed from a wheel: ``<site-packages>/fastcelery/_template``.
    * Source checkout or editable install: the repository root, two levels above
      ``src/fastcelery``.
    """
    candidates = (
        package_dir / "_template",
        package_dir.parent.parent,
    )
    for candidate in candidates:
        if (candidate / COPIER_YML).is_file():
            return candidate
    raise TemplateNotFoundError(
        "cannot find the bundled template (copier.yml) next to the fastcelery package; "
        "reinstall fastcelery"
    )


def subtemplate_root(kind: str, root: Path | None = None) -> Path:
    """The directory holding the ``copier.yml`` of the sub-template ``kind`` (e.g. ``task``)."""
    found = (root or template_root()) / SUBTEMPLATES_DIR / kind
    if not (found / COPIER_YML).is_file():
        raise TemplateNotFoundError(
            f"cannot find the {kind} sub-template ({found / COPIER_YML}); reinstall fastcelery"
        )
    return found
