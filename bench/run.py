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
import sqlite3  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import procs  # noqa: E402
import report  # noqa: E402

MASTER_KEY = "sk-bench-master"
MODEL = "bench-model"
BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the benchmark."}], "max_tokens": 16},
    separators=(",", ":"),
)
KEY_BUDGET = {  # two concurrent windows, so every request holds and settles on two counter lines
    "key_alias": "bench",
    "max_budget": 1000,
    "budget_duration": "1h",
    "budget_limits": [{"budget_duration": "1d", "max_budget": 10000}],
}
CONFIG_TEMPLATE = """\
general_settings:
  master_key: {master_key}
  database_url: sqlite:///{db_path}
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/mock-gpt
      api_base: http://127.0.0.1:{upstream_port}/v1
      api_key: sk-upstream-unused
    model_info:
      input_cost_per_token: 0.00000015
      output_cost_per_token: 0.0000006
      max_output_tokens: 1024
"""
PROFILE_RATE_HZ = 250


@dataclass(frozen=True)
class Plan:
    duration_s: int
    warmup_s: int
    concurrencies: tuple[int, ...]
    generator: str  # "wrk" or "python"
    profile: bool


@dataclass
class Stack:
    upstream: procs.Child
    gateway: procs.Child
    upstream_url: str
    gateway_url: str
    token: str
    tmp: Path


def _http_json(url: str, token: str, payload: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    data = json.dumps(payload).encode() if payload is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read()), response.headers


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


def _measure(plan: Plan, stack: Stack, target: str, concurrency: int) -> tuple[dict[str, Any], int]:
    """Warm up, then one measured run; returns the point and how many 2xx replies the gateway sent."""
    url = stack.gateway_url if target == "ledgergate" else stack.upstream_url
    served = 0
    if plan.warmup_s:
        warm = _generate(plan, url, stack.token, concurrency, plan.warmup_s)
        served += warm["requests"] - warm["non_2xx"] if target == "ledgergate" else 0
    gateway_pid, upstream_pid = stack.gateway.pid, stack.upstream.pid
    gateway_cpu0, upstream_cpu0 = procs.cpu_seconds(gateway_pid), procs.cpu_seconds(upstream_pid)
    generator_cpu0, wall0 = _children_cpu_s(), time.monotonic()
    summary = _generate(plan, url, stack.token, concurrency, plan.duration_s)
    wall_s = time.monotonic() - wall0
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
        **procs.memory_kib(gateway_pid),
    }
    if target == "ledgergate":
        served += ok
        point["gateway_cpu_s"] = gateway_cpu_s
        point["gateway_cpu_pct"] = 100 * gateway_cpu_s / wall_s
        point["gateway_cpu_s_per_1000"] = 1000 * gateway_cpu_s / ok if ok else None
    return point, served


def _sanity_check(stack: Stack) -> None:
    """One request each way: both answer a completion, and the gateway charged it."""
    direct, _ = _http_json(stack.upstream_url, stack.token, json.loads(BODY))
    through, headers = _http_json(stack.gateway_url, stack.token, json.loads(BODY))
    if not direct.get("choices") or not through.get("choices"):
        raise RuntimeError(f"unexpected completion replies: {direct!r} / {through!r}")
    if not headers.get("x-ledgergate-cost-nanos"):
        raise RuntimeError("the gateway reply has no x-ledgergate-cost-nanos header: was it charged?")


def _start_stack(tmp: Path) -> Stack:
    upstream_port, gateway_port = procs.free_port(), procs.free_port()
    upstream = procs.start(
        "upstream", [sys.executable, str(BENCH_DIR / "mock_upstream.py"), "--port", str(upstream_port)], tmp
    )
    gateway = None
    try:
        procs.wait_http(upstream, f"http://127.0.0.1:{upstream_port}/v1/models")
        config = tmp / "ledgergate.yaml"
        config.write_text(
            CONFIG_TEMPLATE.format(
                master_key=MASTER_KEY, db_path=tmp / "bench.db", model=MODEL, upstream_port=upstream_port
            )
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERGATE_")}  # the config file rules
        console_script = Path(sys.executable).parent / "ledgergate"
        command = [str(console_script)] if console_script.exists() else [sys.executable, "-m", "ledgergate.cli.main"]
        gateway = procs.start(
            "gateway", [*command, "serve", "--config", str(config), "--port", str(gateway_port)], tmp, env=env
        )
        gateway_base = f"http://127.0.0.1:{gateway_port}"
        procs.wait_http(gateway, f"{gateway_base}/health/liveliness")
        created, _ = _http_json(f"{gateway_base}/key/generate", MASTER_KEY, KEY_BUDGET)
        stack = Stack(
            upstream=upstream,
            gateway=gateway,
            upstream_url=f"http://127.0.0.1:{upstream_port}/v1/chat/completions",
            gateway_url=f"{gateway_base}/v1/chat/completions",
            token=created["key"],
            tmp=tmp,
        )
        _sanity_check(stack)
        return stack
    except BaseException:
        if gateway is not None:
            gateway.stop()
        upstream.stop()
        raise


def _ledger_summary(db_path: Path) -> dict[str, Any]:
    """Spend records by status, read after the gateway stopped (its writer flushed and closed)."""
    connection = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = connection.execute("SELECT status, count(*), sum(cost_nanos) FROM spend_records GROUP BY status")
        by_status = {status: {"records": count, "cost_nanos": cost} for status, count, cost in rows}
    finally:
        connection.close()
    return by_status


def _profile(plan: Plan, stack: Stack, results_dir: Path, stamp: str) -> tuple[dict[str, Any], int]:
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
                str(stack.gateway.pid),
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
        summary = _generate(plan, stack.gateway_url, stack.token, concurrency, plan.duration_s)
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
        stack = _start_stack(Path(tmp_name))
        served, points, profile = 1, [], None  # 1: the sanity-check request
        try:
            for target in ("direct", "ledgergate"):
                for concurrency in plan.concurrencies:
                    point, ok = _measure(plan, stack, target, concurrency)
                    points.append(point)
                    served += ok
                    print(
                        f"  {target:>10} c={concurrency:<3} {point['rps']:>8,.0f} req/s  "
                        f"p50 {point['p50_ms']:.2f} ms  p99 {point['p99_ms']:.2f} ms",
                        flush=True,
                    )
            peak_rss_kib = procs.memory_kib(stack.gateway.pid)["peak_rss_kib"]
            if plan.profile:
                results_dir.mkdir(parents=True, exist_ok=True)
                profile, profiled = _profile(plan, stack, results_dir, stamp)
                served += profiled
        finally:
            stack.gateway.stop()
            stack.upstream.stop()
        ledger = _ledger_summary(stack.tmp / "bench.db")
    return {
        "stamp": stamp,
        "machine": _machine(),
        "plan": {
            "duration_s": plan.duration_s,
            "warmup_s": plan.warmup_s,
            "concurrencies": list(plan.concurrencies),
            "generator": plan.generator,
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
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
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
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
