"""Rendered projects of the end-to-end tests: one per answer combination, shared by xdist
workers, each with a durable task added by `fastcelery add task` and written as a user would."""

from __future__ import annotations

import contextlib
import fcntl
import re
import shutil
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import copier
import yaml

from tests.support import REPO_ROOT, run, uv_bin


@dataclass(frozen=True)
class Project:
    path: Path
    answers: Mapping[str, Any]

    @property
    def package(self) -> str:
        return str(self.answers.get("package_name", "app"))

    def bin(self, name: str) -> str:
        return str(self.path / ".venv" / "bin" / name)

    @property
    def broker(self) -> str:
        return str(self.answers.get("broker", "redis"))

    @property
    def result_backend(self) -> str:
        return str(self.answers.get("result_backend", "redis"))


def combo_key(answers: Mapping[str, Any]) -> str:
    return "-".join(f"{k}={v}" for k, v in sorted(answers.items()))


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# The user's edits of the added task `invoices` (POST /invoices): its arguments and its body.
# The fault tests run every guarantee on it as well as on the order example: it logs
# "sending invoice" with its invoice_id, and `crash` makes it a poison message. It is added
# with --batch: invoices published together share a message (durable/batch.py), as orders do.
INVOICE_EDITS = (
    ("import logging\n", "import logging\nimport os\nimport signal\n"),
    (
        "    reference: str = Field(min_length=1, max_length=200, strict=True)\n",
        # Strict, as the generated field is: 0 or "yes" is no bool (schemathesis checks).
        "    invoice_id: str = Field(min_length=1, max_length=200, strict=True)\n"
        "    crash: bool = Field(default=False, strict=True)\n",
    ),
    ("\n    reference: str\n", "\n    invoice_id: str\n"),
    (
        '    logger.info("invoices ran", extra={"reference": args.reference})\n',
        "    if args.crash:  # a poison message: it kills its worker process, every time\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        '    logger.info("sending invoice", extra={"invoice_id": args.invoice_id})\n',
    ),
    ("Result(reference=args.reference)", "Result(invoice_id=args.invoice_id)"),
)


def add_invoice_task(project: Path, package: str) -> None:
    """`fastcelery add task invoices`, then its arguments and body written as a user would."""
    fastcelery = str(Path(sys.executable).parent / "fastcelery")
    run([fastcelery, "add", "task", "invoices", "--batch", "--no-git", str(project)], cwd=REPO_ROOT)
    module = project / package / "tasks" / "invoices.py"
    text = module.read_text()
    for old, new in INVOICE_EDITS:
        assert text.count(old) == 1, f"the added task changed: {old!r} is not in {module}"
        text = text.replace(old, new)
    module.write_text(text)


def render_project(answers: Mapping[str, Any], cache_root: Path) -> Project:
    """Renders (once per combination, shared by xdist workers) and `uv sync`s a project,
    with the durable task `invoices` added (see add_invoice_task)."""
    key = combo_key(answers)
    target = cache_root / re.sub(r"[^A-Za-z0-9_.=-]", "_", key)
    with file_lock(cache_root / f"{target.name}.lock"):
        if not (target / ".rendered").exists():
            shutil.rmtree(target, ignore_errors=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # DirtyLocalWarning: a working tree is fine
                copier.run_copy(
                    src_path=str(REPO_ROOT),
                    dst_path=str(target),
                    data=dict(answers),
                    defaults=True,
                    unsafe=True,
                    vcs_ref="HEAD",
                    quiet=True,
                )
            add_invoice_task(target, str(answers.get("package_name", "app")))
            run([uv_bin(), "sync", "--quiet", "--no-dev"], cwd=target)
            (target / ".rendered").write_text(key)
    # Every answer, the defaults included, as Copier recorded them.
    recorded = yaml.safe_load((target / ".copier-answers.yml").read_text())
    return Project(path=target, answers={**recorded, **answers})
