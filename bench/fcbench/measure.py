"""The measurements: enqueue (wrk), end to end, the no-op ceiling, growth, the CLI."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis

from fastcelery.history import git_config_env, open_history, redirect_settings
from fcbench import procs
from fcbench.systems import DEFAULT, REPO, System, Variant, postgres_pid, stack

WRK_SCRIPT = REPO / "bench" / "wrk" / "post_orders.lua"
Result = dict[str, Any]


# -- the load generator -------------------------------------------------------------
@dataclass
class Wrk:
    """wrk posting orders with 32 connections on 2 threads; its CPU time is kept."""

    popen: subprocess.Popen[str]
    started: float

    @classmethod
    def start(
        cls,
        port: int,
        *,
        duration: float | None = None,
        total: int | None = None,
        connections: int = 32,
        threads: int = 2,
    ) -> Wrk:
        argv = [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{int(duration) if duration else 3600}s",
            "--timeout",
            "30s",
            "-s",
            str(WRK_SCRIPT),
            f"http://127.0.0.1:{port}",
        ]
        if total:
            argv += ["--", str(total // threads)]
        popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return cls(popen, time.monotonic())

    def interrupt(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 7200) -> Result:
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.interrupt()
                deadline += 30
            time.sleep(0.05)
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - self.started
        out = self.popen.stdout.read() if self.popen.stdout else ""
        line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{out}")
        res: Result = json.loads(line.removeprefix("BENCH_JSON "))
        cpu = usage.ru_utime + usage.ru_stime
        res["loadgen_cpu_s"] = round(cpu, 3)
        res["loadgen_core_share"] = round(cpu / wall, 3) if wall else 0.0
        return res


def run_wrk(port: int, duration: float) -> Result:
    return Wrk.start(port, duration=duration).finish()


# -- enqueue throughput and latency ---------------------------------------------------
def service_pids(api: int, worker: int, redis_pid: int) -> dict[str, int]:
    """The process trees whose CPU the service tests account for, PostgreSQL's when local."""
    pids = {"api": api, "worker": worker, "redis": redis_pid}
    if (postmaster := postgres_pid()) is not None:
        pids["postgres"] = postmaster
    return pids


def enqueue(system: System, logdir: Path, duration: float, variant: Variant = DEFAULT) -> Result:
    """Requests/s and latency of POST /orders, API + worker (-c 2) running, 32 clients."""
    with procs.redis_server(logdir) as (rport, rproc):
        system.reset_db(rport)
        port = procs.free_port()
        api = system.start_api(rport, port, logdir, variant)
        wk = None
        try:
            wk = system.start_worker(rport, logdir, variant=variant)
            run_wrk(port, 2)  # warm-up: pools, imports, JIT-free but cache-warm
            pids = service_pids(api.pid, wk.pid, rproc.pid)
            cpu0 = procs.cpu_snapshot(pids)
            with procs.RssSampler({"api": api.pid, "worker": wk.pid}) as rss:
                res = run_wrk(port, duration)
            res.update(procs.cpu_ms_per(cpu0, procs.cpu_snapshot(pids), res["requests"]))
            res.update(redis_subscriptions(rport))
            res["api_rss_mb"] = round(rss.peak("api") / 2**20, 1)
            res["worker_rss_mb"] = round(rss.peak("worker") / 2**20, 1)
        finally:
            for p in (wk, api):
                if p:
                    p.stop()
    res["system"] = system.key
    res["variant"] = variant.label
    return res


def redis_subscriptions(port: int) -> Result:
    """Pub/sub channels subscribed on the server and the memory used, after a test."""
    client = redis.Redis(port=port)
    try:
        channels = len(client.pubsub_channels())
        used = int(client.info("memory")["used_memory"])
        clients = client.info("clients")
        return {
            "redis_pubsub_channels": channels,
            "redis_used_mb": round(used / 2**20, 2),
            "redis_clients": int(clients.get("connected_clients", 0)),
        }
    finally:
        client.close()


# -- end to end -------------------------------------------------------------------------
def wait_done(
    system: System,
    total: int,
    *,
    on_all_posted: Callable[[], None] | None = None,
    stall: float = 90.0,
    interval: float = 0.1,
) -> tuple[float, int, int]:
    """Poll the order table until `total` rows exist and are done; (time, rows, failed)."""
    last_progress = time.monotonic()
    last = (-1, -1)
    posted_seen = False
    with psycopg.connect(system.db_url, autocommit=True) as conn:
        while True:
            rows, done = system.counts(conn)
            now = time.monotonic()
            if (rows, done) != last:
                last, last_progress = (rows, done), now
            if rows >= total and not posted_seen:
                posted_seen = True
                if on_all_posted:
                    on_all_posted()
            if rows >= total and done >= rows:
                failed_row = conn.execute(
                    f"SELECT count(*) FROM \"{system.table}\" WHERE status = 'failed'"  # noqa: S608
                ).fetchone()
                return now, rows, int(failed_row[0]) if failed_row else 0
            if now - last_progress > stall:
                raise TimeoutError(f"{system.key}: stalled at {rows} rows, {done} done")
            time.sleep(interval)


def end_to_end(system: System, logdir: Path, total: int, variant: Variant = DEFAULT) -> Result:
    """Post `total` orders (32 clients) with the worker running; orders/s until all processed."""
    with procs.redis_server(logdir) as (rport, rproc):
        system.reset_db(rport)
        port = procs.free_port()
        with stack(system, rport, logdir, api_port=port, variant=variant) as (api, wk):
            assert api is not None
            assert wk is not None
            pids = service_pids(api.pid, wk.pid, rproc.pid)
            cpu0 = procs.cpu_snapshot(pids)
            t0 = time.monotonic()
            wrk = Wrk.start(port, total=total)
            t1, rows, failed = wait_done(system, total, on_all_posted=wrk.interrupt)
            cpu = procs.cpu_ms_per(cpu0, procs.cpu_snapshot(pids), rows)
            post = wrk.finish()
    return cpu | {
        "system": system.key,
        "variant": variant.label,
        "orders": rows,
        "failed": failed,
        "seconds": round(t1 - t0, 3),
        "orders_per_s": round(rows / (t1 - t0), 2),
        "post_rps": post["rps"],
        "post_p99_ms": post["p99_ms"],
    }


# -- flame graphs ----------------------------------------------------------------------
FLAME_SECONDS = 20


def flame_graphs(system: System, logdir: Path, outdir: Path) -> Result:
    """py-spy flame graphs (SVG, samples while holding the GIL: where the CPU goes) of the
    API and of the worker with its pool processes, under 32 clients posting orders."""
    spy = str(REPO / ".venv" / "bin" / "py-spy")
    outdir.mkdir(parents=True, exist_ok=True)
    with procs.redis_server(logdir) as (rport, _):
        system.reset_db(rport)
        port = procs.free_port()
        with stack(system, rport, logdir, api_port=port) as (api, wk):
            assert api is not None
            assert wk is not None
            run_wrk(port, 2)  # warm-up
            load = Wrk.start(port, duration=FLAME_SECONDS + 5)
            targets = {
                "flame-api.svg": (api.pid, []),
                "flame-worker.svg": (wk.pid, ["--subprocesses"]),
            }
            spies = [
                subprocess.Popen(
                    [
                        spy,
                        "record",
                        "--gil",
                        "-d",
                        str(FLAME_SECONDS),
                        "-r",
                        "250",
                        "-f",
                        "flamegraph",
                        "-o",
                        str(outdir / name),
                        *extra,
                        "-p",
                        str(pid),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for name, (pid, extra) in targets.items()
            ]
            codes = [p.wait() for p in spies]
            res = load.finish()
    return {
        "files": sorted(targets),
        "exit_codes": codes,
        "rps": res["rps"],
        "seconds": FLAME_SECONDS,
    }


# -- broker outage: does publishing freeze the event loop? ---------------------------
def _timed_request(
    port: int, method: str, path: str, body: bytes | None, timeout: float
) -> tuple[float, int]:
    t0 = time.monotonic()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Content-Type": "application/json"} if body else {}
        conn.request(method, path, body=body, headers=headers)
        status = conn.getresponse().status
        conn.close()
    except OSError:
        status = 0
    return time.monotonic() - t0, status


def outage(system: System, logdir: Path, probe_path: str = "/openapi.json") -> Result:
    """Redis stopped under a running API: 3 POST /orders in a row, a cheap GET every 0.2 s."""
    body = b'{"product_id": "sku-1", "quantity": 1}'
    with procs.redis_server(logdir) as (rport, rproc):
        system.reset_db(rport)
        port = procs.free_port()
        api = system.start_api(rport, port, logdir)
        try:
            _timed_request(port, "POST", "/orders", body, 30)  # warm: connections, imports
            _timed_request(port, "GET", probe_path, None, 30)
            rproc.stop()
            post: list[tuple[float, int]] = []

            def posts() -> None:
                for _ in range(3):
                    post.append(_timed_request(port, "POST", "/orders", body, 60))

            thread = threading.Thread(target=posts)
            thread.start()
            probes: list[float] = []
            while thread.is_alive() and len(probes) < 200:
                probes.append(_timed_request(port, "GET", probe_path, None, 60)[0])
                time.sleep(0.2)
            thread.join()
        finally:
            api.stop()
    seconds = max((t for t, _ in post), default=0.0)
    return {
        "system": system.key,
        "post_seconds": round(seconds, 2),
        "post_seconds_each": [round(t, 2) for t, _ in post],
        "post_status": "/".join(str(c or "no answer") for _, c in post),
        "probe_max_s": round(max(probes, default=0.0), 2),
        "probe_median_s": round(statistics.median(probes), 3) if probes else 0.0,
        "probes": len(probes),
    }


# -- the engine's ceiling: a no-op task with the same worker settings --------------------
def queue_depth(client: redis.Redis) -> int:
    """Messages waiting or unacknowledged in a kombu Redis broker db."""
    depth = 0
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        if kind == b"list":
            depth += int(client.llen(key))
        elif kind == b"hash" and key.startswith(b"unacked") and key != b"unacked_index":
            depth += int(client.hlen(key))
    return depth


def busiest_list(client: redis.Redis) -> bytes:
    """The broker's longest list: the queue the published tasks went to."""
    lists = [k for k in client.scan_iter(count=1000) if client.type(k) == b"list"]
    return max(lists, key=lambda k: int(client.llen(k)), default=b"celery")


def drain_rate(samples: Sequence[tuple[float, int]], skip: int = 50) -> tuple[float, int, float]:
    """From (time, remaining) samples: (tasks/s, tasks counted, seconds), warm-up skipped."""
    start_n = samples[0][1]
    t_a, n_a = next(((t, n) for t, n in samples if n <= start_n - skip), samples[0])
    t_b, n_b = samples[-1]
    secs = t_b - t_a
    return ((n_a - n_b) / secs if secs > 0 else 0.0), n_a - n_b, secs


def noop_ceiling(
    system: System, logdir: Path, total: int, concurrency: int = 2, variant: Variant = DEFAULT
) -> Result:
    """Publish `total` no-op tasks with the worker stopped, then time the worker draining them."""
    with procs.redis_server(logdir) as (rport, rproc):
        system.publish_noops(rport, total, variant)
        client = redis.Redis(port=rport, db=0)
        before = queue_depth(client)
        wk = system.start_worker(
            rport,
            logdir,
            concurrency=concurrency,
            app="bench_overlay",
            name="noop",
            variant=variant,
        )
        samples: list[tuple[float, int]] = []
        queue = busiest_list(client)
        pids = {"worker": wk.pid, "redis": rproc.pid}
        cpu_a: tuple[int, dict[str, float]] | None = None
        cpu_b: dict[str, float] = {}
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                n = int(client.llen(queue))
                samples.append((time.monotonic(), n))
                if cpu_a is None and n <= before - 50:
                    cpu_a = (n, procs.cpu_snapshot(pids))
                if n == 0:
                    cpu_b = procs.cpu_snapshot(pids)
                    break
                time.sleep(0.02)
        finally:
            wk.stop()
            client.close()
    cpu = procs.cpu_ms_per(cpu_a[1], cpu_b, cpu_a[0]) if cpu_a and cpu_b else {}
    rate, counted, secs = drain_rate(samples)
    return cpu | {
        "system": system.key,
        "variant": variant.label,
        "published": before,
        "counted": counted,
        "seconds": round(secs, 3),
        "tasks_per_s": round(rate, 2),
    }


# -- growth: backlog and concurrency ---------------------------------------------------
def redis_mem(port: int) -> int:
    client = redis.Redis(port=port)
    try:
        info = client.info("memory")
        return int(info["used_memory"])
    finally:
        client.close()


def drain_window(
    system: System,
    *,
    rport: int,
    logdir: Path,
    concurrency: int,
    target_done: int,
    redis_proc: procs.Proc,
    api: procs.Proc,
) -> Result:
    """Run a worker until `target_done` more orders are done; rate over that window."""
    with psycopg.connect(system.db_url, autocommit=True) as conn:
        rows, done0 = system.counts(conn)
        mem0 = redis_mem(rport)
        wk = system.start_worker(
            rport, logdir, concurrency=concurrency, name=f"drain-c{concurrency}"
        )
        samples: list[tuple[float, int]] = []
        try:
            pids = {"worker": wk.pid, "api": api.pid, "redis": redis_proc.pid}
            cpu0 = procs.cpu_snapshot(pids)
            with procs.RssSampler(pids, interval=1.0) as rss:
                last, last_t = -1, time.monotonic()
                while True:
                    _, done = system.counts(conn)
                    now = time.monotonic()
                    samples.append((now, target_done - (done - done0)))
                    if done - done0 >= target_done:
                        break
                    if done != last:
                        last, last_t = done, now
                    elif now - last_t > 60:
                        raise TimeoutError(f"{system.key}: draining stalled at {done} orders")
                    time.sleep(0.25)
            cpu = procs.cpu_ms_per(cpu0, procs.cpu_snapshot(pids), done - done0)
        finally:
            wk.stop()
        mem1 = redis_mem(rport)
    rate, counted, secs = drain_rate(samples, skip=max(10, target_done // 50))
    worker_samples = [v for _, v in rss.samples["worker"]]
    tail = worker_samples[len(worker_samples) // 2 :] or [0]
    head = worker_samples[: max(1, len(worker_samples) // 2)] or [0]
    return cpu | {
        "concurrency": concurrency,
        "backlog_at_start": rows - done0,
        "counted": counted,
        "seconds": round(secs, 2),
        "orders_per_s": round(rate, 2),
        "worker_rss_mb_first_half": round(statistics.median(head) / 2**20, 1),
        "worker_rss_mb_second_half": round(statistics.median(tail) / 2**20, 1),
        "worker_rss_mb_peak": round(rss.peak("worker") / 2**20, 1),
        "api_rss_mb": round(rss.last("api") / 2**20, 1),
        "redis_rss_mb": round(rss.last("redis") / 2**20, 1),
        "redis_used_mb_before": round(mem0 / 2**20, 2),
        "redis_used_mb_after": round(mem1 / 2**20, 2),
    }


def growth(
    system: System,
    logdir: Path,
    backlogs: Sequence[int],
    window: int,
    concurrencies: Sequence[int],
) -> Result:
    """Backlogs enqueued with the worker stopped, then drained by windows.

    For each backlog: enqueue it through the service's own model and task
    (bench_enqueue; the API runs, idle), start a `-c 2` worker and time `window`
    orders (all of them if fewer). On the largest backlog, what is left is drained by
    one window per concurrency level.
    """
    levels: list[Result] = []
    sweep: list[Result] = []
    for i, backlog in enumerate(backlogs):
        with procs.redis_server(logdir) as (rport, rproc):
            system.reset_db(rport)
            port = procs.free_port()
            api = system.start_api(rport, port, logdir)
            try:
                rss_api0 = procs.rss_tree(api.pid)
                mem0 = redis_mem(rport)
                t0 = time.monotonic()
                system.enqueue_direct(rport, backlog)
                level: Result = {
                    "backlog": backlog,
                    "enqueue_s": round(time.monotonic() - t0, 1),
                    "api_rss_mb_before": round(rss_api0 / 2**20, 1),
                    "api_rss_mb_with_backlog": round(procs.rss_tree(api.pid) / 2**20, 1),
                    "redis_used_mb_empty": round(mem0 / 2**20, 2),
                    "redis_used_mb_backlog": round(redis_mem(rport) / 2**20, 2),
                    "redis_rss_mb_backlog": round(procs.rss_tree(rproc.pid) / 2**20, 1),
                }
                level.update(
                    drain_window(
                        system,
                        rport=rport,
                        logdir=logdir,
                        concurrency=2,
                        target_done=min(backlog, window),
                        redis_proc=rproc,
                        api=api,
                    )
                )
                levels.append(level)
                if i == len(backlogs) - 1:
                    for c in concurrencies:
                        sweep.append(
                            drain_window(
                                system,
                                rport=rport,
                                logdir=logdir,
                                concurrency=c,
                                target_done=window,
                                redis_proc=rproc,
                                api=api,
                            )
                        )
            finally:
                api.stop()
    return {"system": system.key, "levels": levels, "concurrency": sweep, "window": window}


# -- the CLI -------------------------------------------------------------------------------
def interleaved(
    commands: dict[str, list[str]],
    runs: int,
    *,
    warmup: int = 2,
    prepare: Callable[[str], None] | None = None,
    cwd: Path | None = None,
    envs: dict[str, dict[str, str]] | None = None,
) -> dict[str, Result]:
    """Wall time of each command, runs interleaved (A B A B ...) so noise hits both alike;
    `envs` gives a command an environment of its own."""
    times: dict[str, list[float]] = {k: [] for k in commands}
    codes: dict[str, int] = {}
    for i in range(warmup + runs):
        for key, argv in commands.items():
            if prepare:
                prepare(key)
            t0 = time.perf_counter()
            res = subprocess.run(
                argv,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=cwd,
                env=(envs or {}).get(key),
                check=False,
            )
            dt = time.perf_counter() - t0
            codes[key] = res.returncode
            if i >= warmup:
                times[key].append(dt)
    return {
        k: {
            "median_s": round(statistics.median(v), 4),
            "min_s": round(min(v), 4),
            "runs": len(v),
            "exit_code": codes[k],
        }
        for k, v in times.items()
    }


def answers_source(project: Path) -> tuple[str, str | None] | None:
    """(_src_path, _commit) recorded in a rendered project's .copier-answers.yml."""
    answers = project / ".copier-answers.yml"
    if not answers.exists():
        return None
    values: dict[str, str] = {}
    for line in answers.read_text().splitlines():
        key, sep, value = line.partition(":")
        if sep and key in {"_src_path", "_commit"}:
            values[key] = value.strip().strip("'\"")
    if "_src_path" not in values:
        return None
    return values["_src_path"], values.get("_commit")


def compile_bytecode() -> None:
    """Writes .pyc files for the CLI's environment, as `pip install` does. uv installs without
    them and this machine sets PYTHONDONTWRITEBYTECODE=1, so otherwise every timed run would
    compile every module it imports (about 0.2 s of `fastcelery --help`, and more of copier's)."""
    python = str(REPO / ".venv" / "bin" / "python")
    subprocess.run(
        [python, "-m", "compileall", "-q", "-j0", str(REPO / ".venv" / "lib"), str(REPO / "src")],
        stdout=subprocess.DEVNULL,
        check=True,
    )


def cli(workdir: Path, runs: int) -> Result:
    compile_bytecode()
    venv = REPO / ".venv" / "bin"
    fastcelery, copier = str(venv / "fastcelery"), str(venv / "copier")
    helps = interleaved(
        {"fastcelery --help": [fastcelery, "--help"], "copier --help": [copier, "--help"]}, runs
    )
    out = workdir / "render"
    dirs = {"fastcelery new": out / "a", "copier copy": out / "b"}

    def fresh(key: str) -> None:
        shutil.rmtree(dirs[key], ignore_errors=True)
        dirs[key].mkdir(parents=True)

    new = [
        fastcelery,
        "new",
        "x",
        "--defaults",
        "--no-git",
        "--output",
        str(dirs["fastcelery new"]),
    ]
    # Copier renders exactly what `fastcelery new` rendered: the source and ref it recorded.
    fresh("fastcelery new")
    subprocess.run(new, cwd=workdir, capture_output=True, check=False)
    rendered = sorted(p.parent for p in dirs["fastcelery new"].rglob(".copier-answers.yml"))
    source = answers_source(rendered[0]) if rendered else None
    src, ref = source or (str(REPO), None)
    copy = [copier, "copy", "--trust", "--defaults", "--quiet", "--data", "project_name=x"]
    if ref:
        copy += ["--vcs-ref", ref]
    copy += [src, str(dirs["copier copy"] / "x")]
    # The recorded source is a URL: Copier reads it, as fastcelery does, from the template
    # history the package ships (git's insteadOf, for the copier processes only: fastcelery
    # would take it for a redirect of the user's own and render from it).
    with open_history(REPO) as history:
        settings = redirect_settings({src: history.location})
        renders = interleaved(
            {"fastcelery new": new, "copier copy": copy},
            max(3, runs // 2),
            warmup=1,
            prepare=fresh,
            cwd=workdir,
            envs={"copier copy": {**os.environ, **git_config_env(settings)}},
        )
    shutil.rmtree(out, ignore_errors=True)
    return {"help": helps, "render": renders, "template_src": src, "template_ref": ref}


def test_suite() -> Result:
    t0 = time.monotonic()
    res = subprocess.run(
        ["uv", "run", "pytest", "-q", "-n", "auto", "-p", "no:cacheprovider"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    secs = time.monotonic() - t0
    tail = [ln for ln in res.stdout.splitlines() if ln.strip()][-1:] or [""]
    return {"seconds": round(secs, 1), "exit_code": res.returncode, "summary": tail[0]}
