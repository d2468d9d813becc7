#!/usr/bin/env python3
"""Gateway overhead benchmark: non-streaming chat completions, direct to a fake upstream vs through ledgergate.

    bench/run.py            # 3 s warm-up + 10 s per point, concurrency 1, 16, 64
    bench/run.py --quick    # 1 s + 2 s per point (CI prints it; never fails)
    bench/run.py --profile  # also records a py-spy profile of the gateway at the highest concurrency

Everything runs on 127.0.0.1 in separate processes: the mock upstream (uvicorn), ``ledgergate serve`` on a
SQLite file in a temp dir, and the load generator (wrk, or bench/loadgen.py when wrk is missing). Prints a
markdown table and writes bench/results/<stamp>.json (gitignored).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_DIR = BENCH_DIR.parent / ".venv"

# Re-run under the project's venv so `bench/run.py` works from any shell (and imports ledgergate/uvicorn).
if (VENV_DIR / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV_DIR.resolve():
    os.execv(str(VENV_DIR / "bin" / "python"), [str(VENV_DIR / "bin" / "python"), __file__, *sys.argv[1:]])

import argparse  # noqa: E402 - after the venv re-exec on purpose
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import procs  # noqa: E402
import report  # noqa: E402
import stack  # noqa: E402
from stack import BODY, KEY_BUDGET, Stack  # noqa: E402

PROFILE_RATE_HZ = 250
NOISY_OTHER_CPU_PCT = 25.0  # % of one core used by unrelated processes during a point


@dataclass(frozen=True)
class Plan:
    duration_s: int
    warmup_s: int
    concurrencies: tuple[int, ...]
    generator: str  # "wrk" or "python"
    profile: bool
    gateway_command: list[str]


def _generator_argv(plan: Plan, url: str, concurrency: int, duration_s: int) -> list[str]:
    if plan.generator == "wrk":
        # One wrk thread: it keeps 64 connections busy easily and leaves the 2 cores to the servers.
        return [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{duration_s}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH_DIR / "post.lua"),
            url,
        ]
    return [
        sys.executable,
        str(BENCH_DIR / "loadgen.py"),
        "--url",
        url,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration_s),
    ]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # only children already waited for: the generators
    return usage.ru_utime + usage.ru_stime


def _generate(plan: Plan, url: str, token: str, concurrency: int, duration_s: int) -> dict[str, Any]:
    env = {**os.environ, "BENCH_BODY": BODY, "BENCH_TOKEN": token}
    argv = _generator_argv(plan, url, concurrency, duration_s)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=duration_s + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            summary: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return summary
    raise RuntimeError(f"{argv[0]} printed no summary (exit {done.returncode}): {done.stdout}\n{done.stderr}")


def _measure(plan: Plan, bench: Stack, target: str, concurrency: int) -> tuple[dict[str, Any], int]:
    """Warm up, then one measured run; returns the point and how many 2xx replies the gateway sent."""
    url = bench.gateway_url if target == "ledgergate" else bench.upstream_url
    served = 0
    if plan.warmup_s:
        warm = _generate(plan, url, bench.token, concurrency, plan.warmup_s)
        served += warm["requests"] - warm["non_2xx"] if target == "ledgergate" else 0
    gateway_pid, upstream_pid = bench.gateway.pid, bench.upstream.pid
    gateway_cpu0, upstream_cpu0 = procs.cpu_seconds(gateway_pid), procs.cpu_seconds(upstream_pid)
    generator_cpu0, machine_cpu0, wall0 = _children_cpu_s(), procs.machine_busy_cpu_seconds(), time.monotonic()
    summary = _generate(plan, url, bench.token, concurrency, plan.duration_s)
    wall_s = time.monotonic() - wall0
    machine_cpu_s = procs.machine_busy_cpu_seconds() - machine_cpu0
    gateway_cpu_s = procs.cpu_seconds(gateway_pid) - gateway_cpu0
    upstream_cpu_s = procs.cpu_seconds(upstream_pid) - upstream_cpu0
    generator_cpu_s = _children_cpu_s() - generator_cpu0
    ok = summary["requests"] - summary["non_2xx"]
    point: dict[str, Any] = {
        "target": target,
        "concurrency": concurrency,
        **summary,
        "ok_requests": ok,
        "rps": ok / summary["duration_s"],
        "wall_s": wall_s,
        "upstream_cpu_pct": 100 * upstream_cpu_s / wall_s,
        "generator_cpu_s": generator_cpu_s,
        "generator_cpu_pct": 100 * generator_cpu_s / wall_s,
        # Everything else on the machine (other users' jobs, the kernel): high values make req/s unreliable.
        "other_cpu_pct": 100 * max(0.0, machine_cpu_s - gateway_cpu_s - upstream_cpu_s - generator_cpu_s) / wall_s,
        **procs.memory_kib(gateway_pid),
    }
    if target == "ledgergate":
        served += ok
        point["gateway_cpu_s"] = gateway_cpu_s
        point["gateway_cpu_pct"] = 100 * gateway_cpu_s / wall_s
        point["gateway_cpu_s_per_1000"] = 1000 * gateway_cpu_s / ok if ok else None
    return point, served


def _profile(plan: Plan, bench: Stack, results_dir: Path, stamp: str) -> tuple[dict[str, Any], int]:
    """py-spy at the highest concurrency: a flame graph and raw collapsed stacks (for profile_summary.py)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed: .venv/bin/pip install py-spy"}, 0
    concurrency = max(plan.concurrencies)
    files, served = {}, 0
    for fmt, suffix in (("flamegraph", "svg"), ("raw", "txt")):
        out = results_dir / f"profile-{stamp}.{suffix}"
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(bench.gateway.pid),
                "--rate",
                str(PROFILE_RATE_HZ),
                "--nonblocking",
                "--duration",
                str(plan.duration_s),
                "--format",
                fmt,
                "--output",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(0.5)  # let py-spy attach before the load starts
        summary = _generate(plan, bench.gateway_url, bench.token, concurrency, plan.duration_s)
        served += summary["requests"] - summary["non_2xx"]
        _, err = recorder.communicate(timeout=plan.duration_s + 60)
        if recorder.returncode != 0:
            return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}, served
        files[fmt] = {"file": str(out), "rps_while_profiled": summary["requests"] / summary["duration_s"]}
    return {"concurrency": concurrency, "rate_hz": PROFILE_RATE_HZ, **files}, served


def _machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def run(plan: Plan, results_dir: Path) -> dict[str, Any]:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    with tempfile.TemporaryDirectory(prefix="ledgergate-bench-") as tmp_name:
        bench = stack.start(Path(tmp_name), plan.gateway_command)
        served, points, profile = 1, [], None  # 1: the sanity-check request
        try:
            for target in ("direct", "ledgergate"):
                for concurrency in plan.concurrencies:
                    point, ok = _measure(plan, bench, target, concurrency)
                    points.append(point)
                    served += ok
                    print(
                        f"  {target:>10} c={concurrency:<3} {point['rps']:>8,.0f} req/s  "
                        f"p50 {point['p50_ms']:.2f} ms  p99 {point['p99_ms']:.2f} ms",
                        flush=True,
                    )
            peak_rss_kib = procs.memory_kib(bench.gateway.pid)["peak_rss_kib"]
            if plan.profile:
                results_dir.mkdir(parents=True, exist_ok=True)
                profile, profiled = _profile(plan, bench, results_dir, stamp)
                served += profiled
        finally:
            bench.gateway.stop()
            bench.upstream.stop()
        ledger = stack.ledger_summary(bench.tmp / "bench.db")
    return {
        "stamp": stamp,
        "machine": _machine(),
        "plan": {
            "duration_s": plan.duration_s,
            "warmup_s": plan.warmup_s,
            "concurrencies": list(plan.concurrencies),
            "generator": plan.generator,
            "gateway_command": plan.gateway_command,
            "body": json.loads(BODY),
            "key_budget": KEY_BUDGET,
        },
        "points": points,
        "gateway_peak_rss_kib": peak_rss_kib,
        "ledger": {"by_status": ledger, "gateway_2xx_replies_measured_by_generators": served},
        "profile": profile,
    }


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 s warm-up + 2 s per point; never fails")
    parser.add_argument("--duration", type=float, help="measured seconds per point (default 10, quick 2)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per point (default 3, quick 1)")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated (default 1,16,64)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--profile", action="store_true", help="also py-spy the gateway at the top concurrency")
    parser.add_argument(
        "--gateway-command",
        help="serve the gateway with this command instead of `ledgergate` (e.g. a patched build); "
        "`serve --config FILE --port N` is appended",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    sys.exit(128 + signum)  # SystemExit unwinds the finally blocks, which stop the gateway and the upstream


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = _parse_args(argv)
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    default_duration, default_warmup = (2, 1) if args.quick else (10, 3)
    plan = Plan(
        duration_s=max(1, math.ceil(args.duration if args.duration is not None else default_duration)),
        warmup_s=max(0, math.ceil(args.warmup if args.warmup is not None else default_warmup)),
        concurrencies=tuple(int(c) for c in args.concurrency.split(",")),
        generator=generator,
        profile=args.profile,
        gateway_command=stack.gateway_command(args.gateway_command),
    )
    print(
        f"ledgergate bench: {plan.warmup_s} s warm-up + {plan.duration_s} s per point, "
        f"concurrency {list(plan.concurrencies)}, generator {generator}",
        flush=True,
    )
    try:
        result = run(plan, args.results_dir)
    except Exception as exc:  # --quick only prints for the record (CI); a full run reports the failure
        print(f"benchmark failed: {type(exc).__name__}: {exc}", flush=True)
        return 0 if args.quick else 1
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"bench-{result['stamp']}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    machine = result["machine"]
    print(
        f"\nmachine: {machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}; "
        f"generator {generator}; {plan.duration_s} s per point\n"
    )
    print(report.points_table(result["points"]))
    print()
    print(report.targets_table(result["points"], result["gateway_peak_rss_kib"]))
    ledger = result["ledger"]
    print(
        f"\nledger: {ledger['by_status']} | 2xx replies counted by the generators: "
        f"{ledger['gateway_2xx_replies_measured_by_generators']}"
    )
    if result["profile"]:
        print(f"profile: {result['profile']}")
    busiest = max((point.get("other_cpu_pct") or 0.0 for point in result["points"]), default=0.0)
    if busiest > NOISY_OTHER_CPU_PCT:
        print(
            f"note: other processes used up to {busiest:.0f}% CPU during a point: req/s and latencies are "
            "understated; CPU s / 1k requests is the figure to compare. Rerun on an idle machine."
        )
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
