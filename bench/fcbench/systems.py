"""The two services under test: the seed baseline and the service fastcelery renders."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from fcbench import procs

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "bench"
OVERLAY_DIR = BENCH / "overlay"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def uv_env() -> dict[str, str]:
    """The environment for `uv` and the services: pyenv's Pythons visible, no venv leaking in."""
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
    root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    pyenv = shutil.which("pyenv") or (str(root / "bin" / "pyenv") if root.exists() else None)
    # Always: pyenv's own shims export PYENV_VERSION with a single version.
    if pyenv:
        out = subprocess.run(
            [pyenv, "versions", "--bare"], capture_output=True, text=True, check=False
        )
        env["PYENV_VERSION"] = ":".join(out.stdout.split())
    return env


def postgres_pid() -> int | None:
    """The postmaster's pid: its process tree (backends, reaped ones included, checkpointer,
    WAL writer) is PostgreSQL's share of the CPU. None when the server is not local to us."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    try:
        return int((Path(str(row[0])) / "postmaster.pid").read_text().split()[0]) if row else None
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Variant:
    """One configuration of a system: uvicorn flags, environment, Celery overrides."""

    label: str = "as generated"
    uvicorn_args: tuple[str, ...] | None = None  # None: the system's default flags
    env: tuple[tuple[str, str], ...] = ()
    celery_conf: str = ""  # JSON object applied by bench_overlay

    @property
    def overlay(self) -> bool:
        # BENCH_* settings are the overlay's own (bench/overlay).
        return bool(self.celery_conf) or any(name.startswith("BENCH_") for name, _ in self.env)


DEFAULT = Variant()


@dataclass
class System:
    key: str
    label: str
    project: Path
    db_name: str
    schema: list[str]
    celery_app: str = "app.core.celery:celery_app"
    asgi_app: str = "app.main:app"
    worker_app: str = "app.core.celery"
    table: str = "orders"
    health_path: str = "/health"
    uvicorn_extra: list[str] = field(default_factory=list)
    render_note: str = ""

    def bin(self, name: str) -> str:
        return str(self.project / ".venv" / "bin" / name)

    @property
    def db_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:5432/{self.db_name}"

    def env(
        self, redis_port: int, concurrency: int = 2, variant: Variant = DEFAULT
    ) -> dict[str, str]:
        env = uv_env()
        env.update(
            {
                "DATABASE__URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db_name}",
                "REDIS__HOST": "127.0.0.1",
                "REDIS__PORT": str(redis_port),
                "CELERY__BROKER_URL": f"redis://127.0.0.1:{redis_port}/0",
                "CELERY__RESULT_BACKEND": f"redis://127.0.0.1:{redis_port}/1",
                "CELERY__WORKER_CONCURRENCY": str(concurrency),
                "BENCH_CELERY_APP": self.celery_app,
                "PYTHONPATH": f"{self.project}:{OVERLAY_DIR}",
            }
        )
        env.update(dict(variant.env))
        if variant.celery_conf:
            env["BENCH_CELERY_CONF"] = variant.celery_conf
        return env

    def has_module(self, *modules: str) -> bool:
        code = "import " + ", ".join(modules)
        return (
            subprocess.run(
                [self.bin("python"), "-c", code], capture_output=True, check=False
            ).returncode
            == 0
        )

    # -- database -----------------------------------------------------------
    def reset_db(self, redis_port: int) -> None:
        """Drop and recreate this system's own database, then create its schema."""
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        subprocess.run(
            [self.bin(self.schema[0]), *self.schema[1:]],
            cwd=self.project,
            env=self.env(redis_port),
            check=True,
            capture_output=True,
        )

    def truncate(self) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            ).fetchall()
            if rows:
                names = ", ".join(f'"{r[0]}"' for r in rows)
                conn.execute(f"TRUNCATE {names}")

    def counts(self, conn: psycopg.Connection[tuple[int, int]]) -> tuple[int, int]:
        """(orders, orders done) where done means processed or failed."""
        row = conn.execute(
            f"SELECT count(*), count(*) FILTER (WHERE status IN ('processed', 'failed'))"  # noqa: S608
            f' FROM "{self.table}"'
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])

    # -- processes ------------------------------------------------------------
    def start_api(
        self, redis_port: int, port: int, logdir: Path, variant: Variant = DEFAULT
    ) -> procs.Proc:
        flags = self.uvicorn_extra if variant.uvicorn_args is None else list(variant.uvicorn_args)
        target = "bench_overlay_asgi:app" if variant.overlay else self.asgi_app
        argv = [
            self.bin("uvicorn"),
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *flags,
        ]
        proc = procs.start(
            f"{self.key}-api",
            argv,
            cwd=self.project,
            env=self.env(redis_port, variant=variant),
            logdir=logdir,
        )
        try:
            procs.wait_http(port, self.health_path)
        except TimeoutError:
            proc.stop()
            raise
        return proc

    def start_worker(
        self,
        redis_port: int,
        logdir: Path,
        *,
        concurrency: int = 2,
        app: str | None = None,
        name: str = "worker",
        variant: Variant = DEFAULT,
    ) -> procs.Proc:
        app = app or ("bench_overlay" if variant.overlay else self.worker_app)
        argv = [
            self.bin("celery"),
            "-A",
            app,
            "worker",
            "--loglevel=info",
            "-c",
            str(concurrency),
            "-n",
            f"{self.key}-{name}@%h",
        ]
        proc = procs.start(
            f"{self.key}-{name}",
            argv,
            cwd=self.project,
            env=self.env(redis_port, concurrency, variant),
            logdir=logdir,
        )
        if not procs.wait_log(proc, " ready.", timeout=60):
            time.sleep(2)  # a logging setup that hides the banner: give it time
        return proc

    def enqueue_direct(self, redis_port: int, count: int) -> None:
        subprocess.run(
            [self.bin("python"), "-m", "bench_enqueue", str(count)],
            cwd=self.project,
            env=self.env(redis_port),
            check=True,
            capture_output=True,
        )

    def publish_noops(self, redis_port: int, count: int, variant: Variant = DEFAULT) -> None:
        subprocess.run(
            [self.bin("python"), "-m", "bench_overlay", str(count)],
            cwd=self.project,
            env=self.env(redis_port, variant=variant),
            check=True,
            capture_output=True,
        )


@contextlib.contextmanager
def stack(
    system: System,
    redis_port: int,
    logdir: Path,
    *,
    api_port: int | None = None,
    worker: bool = True,
    concurrency: int = 2,
    variant: Variant = DEFAULT,
) -> Iterator[tuple[procs.Proc | None, procs.Proc | None]]:
    api = system.start_api(redis_port, api_port, logdir, variant) if api_port else None
    wk = None
    try:
        wk = (
            system.start_worker(redis_port, logdir, concurrency=concurrency, variant=variant)
            if worker
            else None
        )
        yield api, wk
    finally:
        for p in (wk, api):
            if p:
                p.stop()


def baseline() -> System:
    project = BENCH / "baseline"
    return System(
        key="baseline",
        label="seed baseline",
        project=project,
        db_name="bench_baseline" + os.environ.get("BENCH_DB_SUFFIX", ""),
        schema=["python", "-m", "app.create_schema"],
        health_path="/openapi.json",
    )


def sync(project: Path) -> None:
    # Compiled bytecode, as the generated Dockerfile builds it (UV_COMPILE_BYTECODE=1): this
    # machine sets PYTHONDONTWRITEBYTECODE=1, so without it every process start, and every
    # pool process a worker forks anew, would compile each module it imports from source.
    subprocess.run(
        ["uv", "sync", "-q", "--compile-bytecode"], cwd=project, env=uv_env(), check=True
    )


def render_generated(workdir: Path) -> tuple[Path, str]:
    """Render the default service, with the CLI when it works, else with plain Copier."""
    out = workdir / "generated"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    venv_bin = REPO / ".venv" / "bin"
    attempts = [
        (
            "fastcelery new benchsvc --defaults --no-git",
            [
                str(venv_bin / "fastcelery"),
                "new",
                "benchsvc",
                "--defaults",
                "--no-git",
                "--output",
                str(out),
            ],
        ),
        (
            "copier copy --defaults (the CLI failed)",
            [
                str(venv_bin / "copier"),
                "copy",
                "--trust",
                "--defaults",
                "--quiet",
                "--vcs-ref",
                "HEAD",
                "--data",
                "project_name=benchsvc",
                str(REPO),
                str(out / "benchsvc"),
            ],
        ),
    ]
    for note, argv in attempts:
        res = subprocess.run(
            argv, cwd=workdir, env=uv_env(), capture_output=True, text=True, check=False
        )
        found = sorted(p.parent for p in out.rglob("alembic.ini"))
        if res.returncode == 0 and found:
            return found[0], note
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
    raise RuntimeError("could not render the generated service")


def generated(workdir: Path) -> System:
    project, note = render_generated(workdir)
    return System(
        key="generated",
        label="fastcelery service",
        project=project,
        db_name="bench_generated" + os.environ.get("BENCH_DB_SUFFIX", ""),
        schema=["alembic", "upgrade", "head"],
        render_note=note,
    )


def prepare(system: System) -> None:
    sync(system.project)
    if system.has_module("uvloop", "httptools"):
        system.uvicorn_extra = ["--loop", "uvloop", "--http", "httptools"]
