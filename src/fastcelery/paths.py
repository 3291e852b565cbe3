"""Where the bundled Copier template lives."""

from __future__ import annotations

from pathlib import Path

from fastcelery.errors import FastceleryError
from fastcelery.questions import COPIER_YML

PACKAGE_DIR = Path(__file__).resolve().parent
#: Inside a wheel, ``copier.yml`` and ``template/`` are shipped here (see pyproject.toml).
WHEEL_TEMPLATE_DIR = PACKAGE_DIR / "_template"


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
