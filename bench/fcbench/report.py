"""docs/benchmarks.md (and docs/img/benchmarks-growth.png) from a results dict."""

from __future__ import annotations

import importlib
import statistics
from pathlib import Path
from typing import Any

from fcbench.systems import REPO

ANALYSIS = REPO / "bench" / "analysis.md"
PLOT = REPO / "docs" / "img" / "benchmarks-growth.png"

Res = dict[str, Any]


def med(rows: list[Res], system: str, key: str, variant: str | None = None) -> float | None:
    vals = [
        float(r[key])
        for r in rows
        if r.get("system") == system
        and (variant is None or r.get("variant") == variant)
        and r.get(key) is not None
    ]
    return statistics.median(vals) if vals else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def f(x: float | None, fmt: str = ".1f", suffix: str = "") -> str:
    return "n/a" if x is None else f"{x:{fmt}}{suffix}"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**missed**")


def le(x: float | None, bound: float) -> bool | None:
    return None if x is None else x <= bound


def lt(x: float | None, bound: float | None) -> bool | None:
    return None if x is None or bound is None else x < bound


def ge(x: float | None, bound: float) -> bool | None:
    return None if x is None else x >= bound


def section_cli(res: Res, targets: list[tuple[str, str, str]]) -> list[str]:
    cli = res.get("cli")
    if not cli:
        return []
    h, r = cli["help"], cli["render"]
    fh, ch = h["fastcelery --help"]["median_s"], h["copier --help"]["median_s"]
    fr, cr = r["fastcelery new"]["median_s"], r["copier copy"]["median_s"]
    rh, rr = ratio(fh, ch), ratio(fr, cr)
    failed = [k for k, v in {**h, **r}.items() if v["exit_code"] != 0]
    targets += [
        ("`fastcelery --help` median ≤ 0.15 s", f"{fh:.3f} s", verdict(le(fh, 0.15))),
        ("`fastcelery --help` ≤ 0.2x `copier --help`", f(rh, ".2f", "x"), verdict(le(rh, 0.2))),
        ("`fastcelery new` ≤ 1.1x `copier copy`", f(rr, ".2f", "x"), verdict(le(rr, 1.1))),
    ]
    out = [
        "## CLI",
        "",
        f"Runs interleaved (A, B, A, B, …), {h['fastcelery --help']['runs']} timed runs of each "
        f"`--help` and {r['fastcelery new']['runs']} of each render after warm-up; "
        "wall time of the installed entry points in `.venv/bin`. Copier renders the source "
        f"and ref that `fastcelery new` recorded (`{cli['template_src']}` at "
        f"`{cli.get('template_ref')}`).",
        "",
        "| command | median | min | ratio |",
        "| --- | ---: | ---: | ---: |",
        f"| `fastcelery --help` | {fh:.3f} s | {h['fastcelery --help']['min_s']:.3f} s "
        f"| {f(rh, '.2f', 'x')} |",
        f"| `copier --help` | {ch:.3f} s | {h['copier --help']['min_s']:.3f} s | 1x |",
        f"| `fastcelery new x --defaults --no-git` | {fr:.3f} s "
        f"| {r['fastcelery new']['min_s']:.3f} s | {f(rr, '.2f', 'x')} |",
        f"| `copier copy --defaults` (same template) | {cr:.3f} s "
        f"| {r['copier copy']['min_s']:.3f} s | 1x |",
        "",
    ]
    if failed:
        out += [f"Non-zero exit codes: {', '.join(failed)} (the figure is not meaningful).", ""]
    return out


CPU_PARTS = ("api", "worker", "postgres", "redis")


def cpu_all(rows: list[dict[str, Any]], key: str) -> float | None:
    """All the service's processes' CPU per unit of work (median parts, summed)."""
    parts = [med(rows, key, f"cpu_ms_{p}") for p in CPU_PARTS]
    present = [p for p in parts if p is not None]
    return sum(present) if len(present) == len(parts) else None


def cpu_split(rows: list[dict[str, Any]], key: str) -> str:
    parts = " / ".join(f(med(rows, key, f"cpu_ms_{p}"), ".2f") for p in CPU_PARTS)
    return f"{parts} = {f(cpu_all(rows, key), '.1f')} ms"


def cpu_bound_note(rows: list[dict[str, Any]], cpus: Any, unit: str) -> list[str]:
    """What the CPU each unit of work costs allows on this machine at most, per system."""
    if not isinstance(cpus, int) or cpus <= 0:
        return []
    bounds = []
    for key in ("baseline", "generated"):
        total = cpu_all(rows, key)
        if total:
            bounds.append(f"{key} {cpus * 1000 / total:.0f}")
    if not bounds:
        return []
    return [
        f"Everything runs on the same {cpus} cores, so the CPU one {unit} costs in all "
        f"processes together bounds the rate: {cpus} * 1000 ms / (ms per {unit}) = "
        + ", ".join(bounds)
        + " per second at most (the load generator and the kernel not counted)."
    ]


def section_service(res: Res, targets: list[tuple[str, str, str]]) -> list[str]:
    enq, e2e, noop = res.get("enqueue") or [], res.get("e2e") or [], res.get("noop") or []
    if not (enq or e2e or noop):
        return []
    rounds = res["context"]["sizes"]["rounds"]
    out = ["## Service: the seed baseline and the generated service, side by side", ""]
    systems = res.get("systems", {})
    out += [
        f"Medians over {rounds} round(s); each round runs both systems in turn (order "
        "alternating), each measurement on a fresh Redis and a freshly created database.",
        "Process budget for both: 1 uvicorn process, 1 Celery worker process `-c 2` (prefork), "
        "Redis broker and result backend, PostgreSQL.",
        "",
    ]
    for key, s in systems.items():
        out.append(
            f"- {key}: uvicorn {' '.join(s['uvicorn']) or '(defaults)'}"
            + (f"; rendered with `{s['render']}`" if s.get("render") else "")
        )
    out.append("")
    b_rps, g_rps = med(enq, "baseline", "rps"), med(enq, "generated", "rps")
    b_p99, g_p99 = med(enq, "baseline", "p99_ms"), med(enq, "generated", "p99_ms")
    if enq:
        sizes = res["context"]["sizes"]
        share = max((float(r.get("loadgen_core_share", 0)) for r in enq), default=0.0)
        out += [
            "### Enqueue: `POST /orders`, 32 clients",
            "",
            f"wrk, 2 threads, 32 connections, {sizes['enqueue_s']:.0f} s after a 2 s warm-up; "
            "the worker runs during the test.",
            "",
            "| system | requests/s | p50 | p90 | p99 | non-2xx "
            "| CPU per request: API / worker / PostgreSQL / Redis = all "
            "| API RSS | worker RSS |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key in ("baseline", "generated"):
            if med(enq, key, "rps") is None:
                continue
            out.append(
                f"| {key} | {f(med(enq, key, 'rps'))} | {f(med(enq, key, 'p50_ms'))} ms "
                f"| {f(med(enq, key, 'p90_ms'))} ms | {f(med(enq, key, 'p99_ms'))} ms "
                f"| {f(med(enq, key, 'non_2xx'), '.0f')} "
                f"| {cpu_split(enq, key)} "
                f"| {f(med(enq, key, 'api_rss_mb'))} MB "
                f"| {f(med(enq, key, 'worker_rss_mb'))} MB |"
            )
        subs = " ".join(
            f"{key}: {f(med(enq, key, 'redis_pubsub_channels'), '.0f')} channels, "
            f"{f(med(enq, key, 'redis_used_mb'))} MB;"
            for key in ("baseline", "generated")
        )
        rr, rp = ratio(g_rps, b_rps), ratio(g_p99, b_p99)
        out += [
            "",
            f"Ratios (generated / baseline): requests/s **{f(rr, '.2f', 'x')}**, "
            f"p99 **{f(rp, '.2f', 'x')}**.",
            "Redis after the test (pub/sub channels still subscribed, memory used): "
            f"{subs.rstrip(';')}.",
            f"The load generator used at most {share * 100:.0f}% of one core "
            "(its own CPU time over its wall time), so it is not the bottleneck.",
            *cpu_bound_note(enq, res["context"].get("cpus"), "request"),
            "",
        ]
        targets += [
            ("enqueue requests/s ≥ 1.5x baseline", f(rr, ".2f", "x"), verdict(ge(rr, 1.5))),
            ("enqueue p99 ≤ 0.5x baseline", f(rp, ".2f", "x"), verdict(le(rp, 0.5))),
        ]
    if e2e or noop:
        out += [
            "### End to end and the engine's ceiling",
            "",
            "End to end: a fixed number of orders posted by 32 clients with the worker "
            "running, timed from the first post until every row is `processed` (rows read "
            "from PostgreSQL). Ceiling: the same number of a no-op task registered on the "
            "same Celery app (same settings, same broker), published with the worker "
            "stopped, then drained by the same worker (`-c 2`).",
            "",
            "| system | orders/s end to end | no-op tasks/s | end to end / no-op | failed "
            "| CPU per order: API / worker / PostgreSQL / Redis = all "
            "| worker CPU per no-op task |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for key in ("baseline", "generated"):
            eo, nt = med(e2e, key, "orders_per_s"), med(noop, key, "tasks_per_s")
            out.append(
                f"| {key} | {f(eo)} | {f(nt)} | {f(ratio(eo, nt), '.0%')} "
                f"| {f(med(e2e, key, 'failed'), '.0f')} | {cpu_split(e2e, key)} "
                f"| {f(med(noop, key, 'cpu_ms_worker'), '.2f')} ms |"
            )
        be, ge_ = med(e2e, "baseline", "orders_per_s"), med(e2e, "generated", "orders_per_s")
        gn = med(noop, "generated", "tasks_per_s")
        re, rc = ratio(ge_, be), ratio(ge_, gn)
        out += [
            "",
            f"Ratios: generated / baseline end to end **{f(re, '.2f', 'x')}**; "
            f"generated end to end / its no-op ceiling **{f(rc, '.0%')}**.",
            "",
        ]
        targets += [
            ("end to end ≥ 1.0x baseline (aim 1.5x)", f(re, ".2f", "x"), verdict(ge(re, 1.0))),
            (
                "CPU per order, all processes, below the baseline's",
                f"{f(cpu_all(e2e, 'generated'), '.2f')} / {f(cpu_all(e2e, 'baseline'), '.2f')} ms",
                verdict(lt(cpu_all(e2e, "generated"), cpu_all(e2e, "baseline"))),
            ),
            ("end to end ≥ 50% of the no-op ceiling", f(rc, ".0%"), verdict(ge(rc, 0.5))),
        ]
    return out


def section_outage(res: Res) -> list[str]:
    rows = res.get("outage") or []
    if not rows:
        return []
    n_posts = "three" if rows[0].get("post_seconds_each") else "one"
    out = [
        "### Broker outage: does publishing freeze the API?",
        "",
        f"Redis stopped under a running API (no worker): {n_posts} `POST /orders` in a row, and "
        "meanwhile a cheap `GET /openapi.json` every 0.2 s. A blocking `delay()` in the async "
        "route holds the event loop, so every other request waits with it. The generated "
        "service commits the order and its task record, answers 202, and leaves the publish "
        "to the relay once the broker is back (503 only past `OUTBOX__MAX_UNPUBLISHED` "
        "waiting tasks).",
        "",
        "| system | POST /orders answers | each after | slowest GET meanwhile | median GET |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        each = r.get("post_seconds_each") or [r["post_seconds"]]
        out.append(
            f"| {r['system']} | {r['post_status']} "
            f"| {' / '.join(f'{t:.1f}' for t in each)} s "
            f"| {r['probe_max_s']:.2f} s | {r['probe_median_s'] * 1000:.0f} ms |"
        )
    return [*out, ""]


def section_tunings(res: Res) -> list[str]:
    rows = res.get("tunings") or []
    if not rows:
        return []
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    ref = med(rows, "generated", "rps", variants[0])
    out = [
        "## Tunings of the generated service, one undone at a time",
        "",
        "The enqueue, end-to-end and no-op tests above, on the generated service with one "
        "setting changed at a time (Celery settings overridden by `bench/overlay`, without "
        "editing the service), side by side in this run; ratios against 'as generated' in "
        "brackets. CPU per unit of work is the figure least disturbed by other load on the "
        "machine.",
        "",
        "| variant | requests/s | p99 | API CPU per request | orders/s end to end "
        "| worker CPU per order | CPU per order, all processes | no-op tasks/s "
        "| worker CPU per no-op task |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    ref_e2e = med(rows, "generated", "e2e_orders_per_s", variants[0])
    ref_noop = med(rows, "generated", "noop_tasks_per_s", variants[0])
    untimed_noop = False
    for v in variants:

        def col(key: str, fmt: str = ".1f", v: str = v) -> str:
            return f(med(rows, "generated", key, v), fmt)

        rps = med(rows, "generated", "rps", v)
        e2e = med(rows, "generated", "e2e_orders_per_s", v)
        # 0: the drain was over before the bench saw the worker start (no "ready" line).
        noop = med(rows, "generated", "noop_tasks_per_s", v) or None
        untimed_noop |= noop is None
        noop_cells = (
            f"{f(noop)} ({f(ratio(noop, ref_noop), '.2f', 'x')}) "
            f"| {col('noop_cpu_ms_worker', '.2f')} ms"
            if noop
            else "n/a | n/a"
        )
        out.append(
            f"| {v} | {f(rps)} ({f(ratio(rps, ref), '.2f', 'x')}) | {col('p99_ms', '.0f')} ms "
            f"| {col('cpu_ms_api', '.2f')} ms | {f(e2e)} ({f(ratio(e2e, ref_e2e), '.2f', 'x')}) "
            f"| {col('e2e_cpu_ms_worker', '.2f')} ms | {col('e2e_cpu_ms_all', '.2f')} ms "
            f"| {noop_cells} |"
        )
    if untimed_noop:
        out += [
            "",
            "n/a: the worker logs no `ready.` line at that log level, so the no-op drain was "
            "over before the bench could time it.",
        ]
    return [*out, ""]


def section_flame(res: Res) -> list[str]:
    flame = res.get("flame")
    if not flame:
        return []
    return [
        "## Flame graphs (generated service)",
        "",
        f"py-spy, {flame['seconds']} s at 250 samples/s of the threads holding the GIL (where "
        "the CPU goes, not where the processes wait), under 32 clients posting orders "
        f"({flame['rps']:.0f} requests/s meanwhile), with the worker draining them: "
        "[the API](img/flame-api.svg) and [the worker with its pool processes]"
        "(img/flame-worker.svg). Open them in a browser to search and zoom.",
        "",
    ]


def section_growth(res: Res, targets: list[tuple[str, str, str]]) -> list[str]:
    g = res.get("growth")
    if not g:
        return []
    out = [
        "## Growth: backlog and worker concurrency (generated service)",
        "",
        "Each backlog is enqueued with the worker stopped, through the service's own `Order` "
        "model, task record and `process_order` task (`bench/overlay/bench_enqueue.py`: "
        "posting 100,000 orders over HTTP would take longer than everything else; the "
        "database, the broker and the worker see the same rows and messages), with the API "
        "running; then a worker starts and is timed "
        f"over {g['window']} orders (all of them for smaller "
        "backlogs). On the largest backlog, what is left is then drained by one window per "
        "concurrency level. RSS: process tree (worker = main process + pool children).",
        "",
        "| backlog | enqueue time | API RSS | Redis used by backlog "
        "| drain orders/s (-c 2) | worker CPU per order | worker RSS 1st → 2nd half of window "
        "| Redis RSS |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for lv in g["levels"]:
        out.append(
            f"| {lv['backlog']:,} | {lv['enqueue_s']:.0f} s | {lv['api_rss_mb_with_backlog']} MB "
            f"| {lv['redis_used_mb_backlog']:.1f} MB "
            f"| {lv['orders_per_s']:.1f} | {lv.get('cpu_ms_worker', 0):.2f} ms "
            f"| {lv['worker_rss_mb_first_half']} → "
            f"{lv['worker_rss_mb_second_half']} MB | {lv['redis_rss_mb']} MB |"
        )
    out += [
        "",
        "| concurrency (`-c`) | backlog at start | orders/s | worker CPU per order "
        "| worker RSS 1st → 2nd half | Redis used before → after window |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in g["concurrency"]:
        out.append(
            f"| {c['concurrency']} | {c['backlog_at_start']:,} | {c['orders_per_s']:.1f} "
            f"| {c.get('cpu_ms_worker', 0):.2f} ms "
            f"| {c['worker_rss_mb_first_half']} → {c['worker_rss_mb_second_half']} MB "
            f"| {c['redis_used_mb_before']:.1f} → {c['redis_used_mb_after']:.1f} MB |"
        )
    rates = [lv["orders_per_s"] for lv in g["levels"]]
    flat = min(rates) >= 0.8 * max(rates) if rates else None
    cpus = [float(lv.get("cpu_ms_worker", 0)) for lv in g["levels"]]
    if cpus and min(cpus) > 0:
        targets.append(
            (
                "worker CPU per order does not grow with backlog (largest ≤ 1.2x smallest backlog)",
                " / ".join(f"{x:.1f}" for x in cpus) + " ms",
                verdict(cpus[-1] <= 1.2 * cpus[0]),
            )
        )
    growth_mb = max(
        (lv["worker_rss_mb_second_half"] - lv["worker_rss_mb_first_half"] for lv in g["levels"]),
        default=0.0,
    )
    targets.append(
        (
            "throughput does not fall with backlog (slowest level ≥ 80% of fastest)",
            " / ".join(f"{x:.0f}" for x in rates) + " orders/s",
            verdict(flat),
        )
    )
    targets.append(
        (
            "worker memory bounded while draining (2nd half - 1st half of a window)",
            f"{growth_mb:+.1f} MB",
            verdict(growth_mb < 20),
        )
    )
    if plot(g):
        out += ["", f"![throughput against backlog and concurrency](img/{PLOT.name})"]
    return [*out, ""]


def plot(g: Res) -> bool:
    try:
        matplotlib = importlib.import_module("matplotlib")
        matplotlib.use("Agg")
        plt = importlib.import_module("matplotlib.pyplot")
    except ImportError:
        return False
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=110)
    lv = g["levels"]
    ax1.plot([x["backlog"] for x in lv], [x["orders_per_s"] for x in lv], "o-", label="orders/s")
    ax1.set_xscale("log")
    ax1.set_xlabel("backlog (orders queued before the worker starts)")
    ax1.set_ylabel("orders/s (worker -c 2)")
    ax1.set_ylim(bottom=0)
    ax1r = ax1.twinx()
    ax1r.plot(
        [x["backlog"] for x in lv],
        [x["worker_rss_mb_peak"] for x in lv],
        "s--",
        color="tab:red",
        label="worker RSS (MB)",
    )
    ax1r.set_ylabel("worker RSS, MB", color="tab:red")
    ax1r.set_ylim(bottom=0)
    cs = g["concurrency"]
    ax2.bar([str(c["concurrency"]) for c in cs], [c["orders_per_s"] for c in cs], color="tab:blue")
    ax2.set_xlabel("worker concurrency (-c)")
    ax2.set_ylabel("orders/s")
    ax2r = ax2.twinx()
    ax2r.plot(
        [str(c["concurrency"]) for c in cs],
        [c["worker_rss_mb_peak"] for c in cs],
        "s--",
        color="tab:red",
    )
    ax2r.set_ylabel("worker RSS, MB", color="tab:red")
    ax2r.set_ylim(bottom=0)
    fig.suptitle("Generated service: drain throughput and worker memory")
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT)
    plt.close(fig)
    return True


def write(res: Res, doc: Path) -> None:
    ctx = res["context"]
    targets: list[tuple[str, str, str]] = []
    body: list[str] = []
    body += section_cli(res, targets)
    body += section_service(res, targets)
    body += section_outage(res)
    body += section_tunings(res)
    body += section_growth(res, targets)
    body += section_flame(res)
    tests = res.get("tests")
    if tests:
        body += [
            "## The repository's test suite",
            "",
            f"`uv run pytest -n auto`: {tests['seconds']:.0f} s wall "
            f"(exit {tests['exit_code']}; {tests['summary']}).",
            "",
        ]
    head = [
        "# Benchmarks",
        "",
        "Run them all and rewrite this page (about 25 minutes on an idle 2-core machine, up to "
        "50 on a busy one; `--quick` takes about a third of that):",
        "",
        "```bash",
        "bash bench/run.sh            # full run",
        "bash bench/run.sh --quick    # smaller sizes, one round",
        "bash bench/run.sh --only cli,enqueue --rounds 5   # some phases",
        "bash bench/run.sh --only tests --merge   # add a phase to the last results",
        "bash bench/run.sh --only tunings --variants pools,ping --rounds 5 --merge"
        "   # 3 more rounds of some tunings",
        "```",
        "",
        "The script installs what it needs (wrk from Debian, the `bench` dependency group with "
        "uv), starts its own throwaway Redis servers and its own PostgreSQL databases "
        "(`bench_baseline`, `bench_generated` on 127.0.0.1:5432), and stops every process it "
        "started. Raw results: `bench/results/latest.json` (not committed). Figures are medians "
        "and ratios measured side by side in the same run on a shared, noisy 2-core machine: "
        "compare ratios, not absolute numbers; no test asserts on time.",
        "",
        f"This run: {ctx['date']}, commit `{ctx['commit']}`, {ctx['mode']} mode, "
        f"{ctx['cpus']} CPUs, kernel {ctx['kernel']}, total {ctx.get('total_s', 0):.0f} s.",
        *(
            f"Measured again and merged in (`--merge`): {', '.join(m.get('phases', []))} on "
            f"{m['date']}, commit `{m['commit']}`, total {m.get('total_s', 0):.0f} s."
            for m in res.get("merged", [])
        ),
        "",
        "The baseline (`bench/baseline/`) is the seed's code as a user would write it by hand: "
        "its Celery configuration, its `process_order` task and its two routes as written "
        "(blocking `delay()` inside the async route, commit then enqueue, Redis results), "
        "plus only the glue the seed leaves out (settings, the `Order` model, an async session "
        "for the route, the sync session for the task).",
        "",
    ]
    if targets:
        head += ["## Targets", "", "| target | measured | |", "| --- | ---: | --- |"]
        head += [f"| {t} | {m} | {v} |" for t, m, v in targets]
        head.append("")
    tail: list[str] = []
    if ANALYSIS.exists():
        tail = ["", ANALYSIS.read_text().rstrip(), ""]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text("\n".join(head + body + tail).rstrip() + "\n")
