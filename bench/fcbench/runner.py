"""Run the benchmarks and write docs/benchmarks.md. Entry point: `bash bench/run.sh`."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fcbench import measure, report, systems
from fcbench.systems import REPO

RESULTS = REPO / "bench" / "results"
PHASES = ("cli", "enqueue", "e2e", "noop", "outage", "tunings", "growth", "flame", "tests")


@dataclass(frozen=True)
class Sizes:
    rounds: int
    enqueue_s: float
    e2e_orders: int
    noop_tasks: int
    backlogs: tuple[int, ...]
    window: int
    concurrencies: tuple[int, ...]
    cli_runs: int


FULL = Sizes(3, 15, 2000, 3000, (1000, 10_000, 100_000), 3000, (1, 2, 4), 20)
QUICK = Sizes(1, 6, 500, 1500, (1000, 5000), 1000, (1, 2, 4), 8)


def log(msg: str, results: dict[str, Any] | None = None) -> None:
    """Print progress; with results, also save them so far (a crash keeps what was measured)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)
    if results is not None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "partial.json").write_text(json.dumps(results, indent=2))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__)
    p.add_argument("--quick", action="store_true", help="small sizes, one round (~5 min)")
    p.add_argument("--only", default="", help=f"comma-separated phases of {','.join(PHASES)}")
    p.add_argument("--skip", default="", help="comma-separated phases to leave out")
    p.add_argument("--rounds", type=int, help="side-by-side rounds (medians over rounds)")
    p.add_argument(
        "--variants",
        default="",
        help="comma-separated parts of the tuning variants' labels to run (default: all); "
        "'as generated' always runs beside them",
    )
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--no-doc", action="store_true", help="keep results in bench/results only")
    p.add_argument(
        "--merge",
        action="store_true",
        help="add this run's phases to bench/results/latest.json instead of "
        "replacing it (e.g. --only tests --merge)",
    )
    p.add_argument(
        "--report-only", action="store_true", help="rewrite the doc from bench/results/latest.json"
    )
    return p.parse_args(argv)


def phases(ns: argparse.Namespace) -> list[str]:
    chosen = [x for x in ns.only.split(",") if x] or list(PHASES)
    if ns.quick and not ns.only:
        chosen = [x for x in chosen if x != "tests"]
    skip = {x for x in ns.skip.split(",") if x}
    bad = (set(chosen) | skip) - set(PHASES)
    if bad:
        raise SystemExit(f"unknown phase(s): {', '.join(sorted(bad))}")
    return [x for x in chosen if x not in skip]


def context(sizes: Sizes, quick: bool) -> dict[str, Any]:
    def out(*argv: str) -> str:
        try:
            return subprocess.run(
                argv, capture_output=True, text=True, check=False, cwd=REPO
            ).stdout.strip()
        except OSError:
            return ""

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": out("git", "rev-parse", "--short", "HEAD"),
        "mode": "quick" if quick else "full",
        "sizes": sizes.__dict__,
        "cpus": out("nproc"),
        "kernel": platform.release(),
        "redis": out("redis-server", "--version").split(" ")[2:3],
        "postgres": out("psql", "--version"),
        "wrk": shutil.which("wrk") or "",
    }


def run(ns: argparse.Namespace) -> dict[str, Any]:
    sizes = QUICK if ns.quick else FULL
    if ns.rounds:
        sizes = Sizes(**{**sizes.__dict__, "rounds": ns.rounds})
    todo = phases(ns)
    # Outside the repository: mypy would otherwise crawl the rendered project.
    work = Path(tempfile.gettempdir()) / "fastcelery-bench"
    logdir = RESULTS / "logs"
    shutil.rmtree(logdir, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"context": context(sizes, ns.quick), "phases": todo}

    if "cli" in todo:
        log("CLI start-up and render (interleaved runs)")
        results["cli"] = measure.cli(work, sizes.cli_runs)

    if {"enqueue", "e2e", "noop", "outage", "growth", "tunings", "flame"} & set(todo):
        only = [part for part in ns.variants.split(",") if part]
        services(todo, sizes, work, logdir, results, only_variants=only)
    if "tests" in todo:
        log("the repository's test suite (pytest -n auto)")
        results["tests"] = measure.test_suite()
    return results


def services(
    todo: list[str],
    sizes: Sizes,
    work: Path,
    logdir: Path,
    results: dict[str, Any],
    *,
    only_variants: list[str],
) -> None:
    base = systems.baseline()
    log("preparing the baseline (uv sync)")
    systems.prepare(base)
    log("rendering and syncing the generated service")
    gen = systems.generated(work)
    systems.prepare(gen)
    results["systems"] = {
        s.key: {"project": str(s.project), "uvicorn": s.uvicorn_extra, "render": s.render_note}
        for s in (base, gen)
    }
    pair = [base, gen]
    # Only the phases run now: a --merge run keeps the others' results.
    for name in ("enqueue", "e2e", "noop"):
        if name in todo:
            results[name] = []
    for r in range(sizes.rounds):
        order = pair if r % 2 == 0 else pair[::-1]
        for s in order:
            if "enqueue" in todo:
                log(f"round {r + 1}: enqueue {s.key} ({sizes.enqueue_s:.0f} s)", results)
                results["enqueue"].append(measure.enqueue(s, logdir, sizes.enqueue_s))
            if "e2e" in todo:
                log(f"round {r + 1}: end to end {s.key} ({sizes.e2e_orders} orders)", results)
                results["e2e"].append(measure.end_to_end(s, logdir, sizes.e2e_orders))
            if "noop" in todo:
                log(f"round {r + 1}: no-op ceiling {s.key} ({sizes.noop_tasks} tasks)", results)
                results["noop"].append(measure.noop_ceiling(s, logdir, sizes.noop_tasks))
    if "outage" in todo:
        results["outage"] = []
        for s in pair:
            log(f"broker outage: {s.key}", results)
            results["outage"].append(measure.outage(s, logdir))
    if "tunings" in todo:
        results["tunings"] = tunings(gen, logdir, sizes, results, only_variants)
    if "flame" in todo:
        log("flame graphs of the API and the worker under load (py-spy)", results)
        results["flame"] = measure.flame_graphs(gen, logdir, REPO / "docs" / "img")
    if "growth" in todo:
        log(f"growth: backlogs {sizes.backlogs}, concurrency {sizes.concurrencies}", results)
        results["growth"] = measure.growth(
            gen, logdir, sizes.backlogs, sizes.window, sizes.concurrencies
        )


TUNING_VARIANTS = (
    systems.Variant("metrics off (METRICS__ENABLED=false)", env=(("METRICS__ENABLED", "false"),)),
    systems.Variant("uvicorn --loop asyncio --http h11", uvicorn_args=()),
    systems.Variant(
        "task events on (CELERY__TASK_EVENTS=true, as with Flower)",
        env=(("CELERY__TASK_EVENTS", "true"),),
    ),
    systems.Variant("task_track_started on", env=(("CELERY__TRACK_STARTED", "true"),)),
    systems.Variant("prefetch multiplier 4", env=(("CELERY__WORKER_PREFETCH_MULTIPLIER", "4"),)),
    systems.Variant("result_extended off", celery_conf='{"result_extended": false}'),
    systems.Variant(
        "pool processes recycled every 1,000 tasks (the default before 0.2.1)",
        env=(("CELERY__WORKER_MAX_TASKS_PER_CHILD", "1000"),),
    ),
    systems.Variant(
        "durable results written to the result backend too (TASKS__STORE_BACKEND_RESULTS=true)",
        env=(("TASKS__STORE_BACKEND_RESULTS", "true"),),
    ),
    systems.Variant(
        "pool_pre_ping on (DATABASE__POOL_PRE_PING=true)",
        env=(("DATABASE__POOL_PRE_PING", "true"),),
    ),
    systems.Variant(
        "database pools of 10 + 10 overflow (the defaults before 0.2.1)",
        env=(("DATABASE__POOL_SIZE", "10"), ("DATABASE__MAX_OVERFLOW", "10")),
    ),
    systems.Variant(
        "every published task marked queued within 50 ms (the default before 0.2.1)",
        env=(("OUTBOX__MARK_QUEUED_INTERVAL_SECONDS", "0.05"),),
    ),
    systems.Variant("no per-task log lines (LOG_LEVEL=WARNING)", env=(("LOG_LEVEL", "WARNING"),)),
    systems.Variant(
        "no time limits (task_time_limit, task_soft_time_limit unset)",
        celery_conf='{"task_time_limit": null, "task_soft_time_limit": null}',
    ),
    systems.Variant("thread pool (-P threads -c 2)", celery_conf='{"worker_pool": "threads"}'),
    systems.Variant(
        "one message per task, no batches (OUTBOX__BATCH_MAX_TASKS=1)",
        env=(("OUTBOX__BATCH_MAX_TASKS", "1"),),
    ),
    systems.Variant(
        "batches of what is already waiting, no linger (OUTBOX__BATCH_LINGER_SECONDS=0)",
        env=(("OUTBOX__BATCH_LINGER_SECONDS", "0"),),
    ),
    systems.Variant(
        "a 5 ms batch linger (OUTBOX__BATCH_LINGER_SECONDS=0.005)",
        env=(("OUTBOX__BATCH_LINGER_SECONDS", "0.005"),),
    ),
    systems.Variant(
        "Python's default garbage collector in the API (no gc.freeze, thresholds 700/10/10)",
        env=(("BENCH_DEFAULT_GC", "1"),),
    ),
)


def tunings(
    gen: systems.System,
    logdir: Path,
    sizes: Sizes,
    results: dict[str, Any],
    only: list[str],
) -> list[dict[str, Any]]:
    """The generated service with one setting changed at a time, side by side (the variants
    whose label contains one of `only`, or all)."""
    chosen = [v for v in TUNING_VARIANTS if not only or any(part in v.label for part in only)]
    variants = [systems.DEFAULT, *chosen]
    out: list[dict[str, Any]] = results.setdefault("tunings", [])
    for r in range(max(1, sizes.rounds - 2)):
        for v in variants if r % 2 == 0 else variants[::-1]:
            log(f"round {r + 1}: variant '{v.label}'", results)
            row = measure.enqueue(gen, logdir, sizes.enqueue_s, v)
            e2e = measure.end_to_end(gen, logdir, sizes.e2e_orders, v)
            row["e2e_orders_per_s"] = e2e["orders_per_s"]
            row["e2e_cpu_ms_worker"] = e2e.get("cpu_ms_worker")
            row["e2e_cpu_ms_all"] = round(
                sum(ms for key, ms in e2e.items() if key.startswith("cpu_ms_")), 3
            )
            noop = measure.noop_ceiling(gen, logdir, sizes.noop_tasks, variant=v)
            row["noop_tasks_per_s"] = noop["tasks_per_s"]
            row["noop_cpu_ms_worker"] = noop.get("cpu_ms_worker")
            out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    latest = RESULTS / "latest.json"
    if ns.report_only:
        results = json.loads(latest.read_text())
    else:
        if not shutil.which("wrk"):
            print("wrk is not installed: run bench/run.sh (it installs it)", file=sys.stderr)
            return 2
        t0 = time.monotonic()
        results = run(ns)
        results["context"]["total_s"] = round(time.monotonic() - t0, 1)
        if ns.merge and latest.exists():
            merged = json.loads(latest.read_text())
            new_phases = [p for p in results["phases"] if p not in merged.get("phases", [])]
            merged["phases"] = [*merged.get("phases", []), *new_phases]
            merged.setdefault("merged", []).append(
                {**results["context"], "phases": results["phases"]}
            )
            if ns.variants and "tunings" in results:
                # Some variants again: more rounds of them, beside the rounds measured before.
                results["tunings"] = [*merged.get("tunings", []), *results["tunings"]]
            merged.update(
                {k: v for k, v in results.items() if k not in {"context", "phases", "merged"}}
            )
            results = merged
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for path in (RESULTS / f"results-{stamp}.json", latest):
            path.write_text(json.dumps(results, indent=2))
        log(f"results: {latest}")
    if not ns.no_doc:
        report.write(results, ns.doc)
        log(f"wrote {ns.doc}")
    return 0
