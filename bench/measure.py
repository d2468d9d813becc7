"""One benchmark point: warm up, then one measured load run against a target, with the CPU of every process.

Around the measured run it reads /proc for the gateway process(es), the upstream, the PostgreSQL and Redis
processes and the whole machine, and getrusage(RUSAGE_CHILDREN) for the load generator (the only child reaped
in between), so the CPU left over is what unrelated processes used during the point.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import procs

BENCH_DIR = Path(__file__).resolve().parent
TTFB_CONCURRENCY = 1


@dataclass(frozen=True)
class Plan:
    duration_s: int
    warmup_s: int
    concurrencies: tuple[int, ...]
    generator: str  # "wrk" or "python"
    ttfb_s: int  # duration of the time-to-first-byte probe at concurrency 1 (Python generator)


@dataclass(frozen=True)
class Load:
    """Where a point's requests go, with which body and token."""

    target: str  # "direct", "sqlite-1", "pg-redis-1", "pg-redis-2"
    mode: str  # "non-streaming" or "streaming"
    urls: list[str]
    body: str
    token: str
    gateway_pids: list[int]


def generator_argv(generator: str, urls: list[str], concurrency: int, duration_s: int) -> list[str]:
    if generator == "wrk" and (len(urls) == 1 or concurrency >= len(urls)):
        # One wrk thread per server process (BENCH_PORTS in post.lua maps thread i to port i); one thread
        # keeps 256 connections busy easily and leaves the cores to the servers.
        return [
            "wrk",
            f"-t{len(urls)}",
            f"-c{concurrency}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH_DIR / "post.lua"),
            urls[0],
        ]
    url_args = [arg for url in urls for arg in ("--url", url)]
    return [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        *url_args,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration_s),
    ]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # only children already waited for: the generators
    return usage.ru_utime + usage.ru_stime


def generate(generator: str, load: Load, concurrency: int, duration_s: int) -> dict[str, Any]:
    ports = ",".join(str(urlsplit(url).port) for url in load.urls)
    env = {**os.environ, "BENCH_BODY": load.body, "BENCH_TOKEN": load.token, "BENCH_PORTS": ports}
    argv = generator_argv(generator, load.urls, concurrency, duration_s)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return summary
    raise RuntimeError(f"{argv[0]} printed no summary (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def _memory(pids: list[int]) -> dict[str, int]:
    per_process = [procs.memory_kib(pid) for pid in pids]
    return {
        "rss_kib": sum(m["rss_kib"] for m in per_process),
        "peak_rss_kib_max_process": max((m["peak_rss_kib"] for m in per_process), default=0),
        "peak_rss_kib_sum": sum(m["peak_rss_kib"] for m in per_process),
    }


def measure(plan: Plan, load: Load, upstream_pid: int, concurrency: int) -> tuple[dict[str, Any], int]:
    """Warm up, then one measured run; returns the point and the 2xx replies the gateway sent (both runs)."""
    served = 0
    if plan.warmup_s:
        warm = generate(plan.generator, load, concurrency, plan.warmup_s)
        served += warm["requests"] - warm["non_2xx"]
    gateway_cpu0 = sum(procs.cpu_seconds(pid) for pid in load.gateway_pids)
    upstream_cpu0, services_cpu0 = procs.cpu_seconds(upstream_pid), procs.services_cpu_seconds()
    generator_cpu0, machine_cpu0, wall0 = _children_cpu_s(), procs.machine_busy_cpu_seconds(), time.monotonic()
    summary = generate(plan.generator, load, concurrency, plan.duration_s)
    wall_s = time.monotonic() - wall0
    machine_cpu_s = procs.machine_busy_cpu_seconds() - machine_cpu0
    gateway_cpu_s = sum(procs.cpu_seconds(pid) for pid in load.gateway_pids) - gateway_cpu0
    upstream_cpu_s = procs.cpu_seconds(upstream_pid) - upstream_cpu0
    # Clamped: a PostgreSQL backend that exits during the run takes its CPU time out of the sum.
    services_cpu_s = max(0.0, procs.services_cpu_seconds() - services_cpu0)
    generator_cpu_s = _children_cpu_s() - generator_cpu0
    ok = summary["requests"] - summary["non_2xx"]
    accounted = gateway_cpu_s + upstream_cpu_s + services_cpu_s + generator_cpu_s
    point: dict[str, Any] = {
        "target": load.target,
        "mode": load.mode,
        "concurrency": concurrency,
        "processes": len(load.gateway_pids),
        **summary,
        "ok_requests": ok,
        "rps": ok / summary["duration_s"],
        "wall_s": wall_s,
        "upstream_cpu_pct": 100 * upstream_cpu_s / wall_s,
        "generator_cpu_pct": 100 * generator_cpu_s / wall_s,
        # PostgreSQL and Redis processes machine-wide: includes other users of those servers.
        "services_cpu_pct": 100 * services_cpu_s / wall_s,
        # Everything else on the machine (other jobs, the kernel): high values make req/s unreliable.
        "other_cpu_pct": 100 * max(0.0, machine_cpu_s - accounted) / wall_s,
    }
    if load.gateway_pids:
        served += ok
        point.update(_memory(load.gateway_pids))
        point["gateway_cpu_s"] = gateway_cpu_s
        point["gateway_cpu_pct"] = 100 * gateway_cpu_s / wall_s
        point["gateway_cpu_s_per_1000"] = 1000 * gateway_cpu_s / ok if ok else None
    return point, served


def ttfb(plan: Plan, load: Load) -> dict[str, Any]:
    """Time to the first streamed chunk at concurrency 1 (Python generator: wrk cannot see chunks)."""
    summary = generate("python", load, TTFB_CONCURRENCY, plan.ttfb_s)
    return {
        "target": load.target,
        "concurrency": TTFB_CONCURRENCY,
        "samples": summary["ttfb_samples"],
        "ttfb_p50_ms": summary["ttfb_p50_ms"],
        "ttfb_p99_ms": summary["ttfb_p99_ms"],
        "total_p50_ms": summary["p50_ms"],
        "errors": summary["non_2xx"] + summary["socket_errors"],
        "served": summary["requests"] - summary["non_2xx"],
    }
