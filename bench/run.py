#!/usr/bin/env python3
"""The benchmark suite: direct to a fake upstream vs ledgergate on SQLite (1 process) vs ledgergate on
PostgreSQL + Redis (1 and 2 processes), non-streaming and streaming, with governance on.

    bench/run.py            # full matrix: 2 s warm-up + 5 s per point, c 1/16/64/256 (~6 min); writes
                            # docs/benchmarks.md (between its markers) and bench/results/bench-<stamp>.json
    bench/run.py --quick    # no warm-up, 1 s per point at c 1/64 (~40 s); prints only; CI runs it, never fails
    bench/run.py --profile  # also py-spy the SQLite gateway at the top concurrency

Everything runs on 127.0.0.1 in separate processes: the mock upstream (uvicorn), the gateway process(es) and
the load generator (wrk, or bench/loadgen.py without wrk). PostgreSQL + Redis targets need
postgresql://postgres@127.0.0.1:5432 and redis://127.0.0.1:6379; when either is unreachable they are skipped
with a note. Each gets a fresh database (dropped afterwards) and a fresh Redis key prefix (deleted).
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
import platform  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict  # noqa: E402
from typing import Any  # noqa: E402

import doc  # noqa: E402
import measure  # noqa: E402
import procs  # noqa: E402
import services  # noqa: E402
import stack  # noqa: E402
from measure import Load, Plan  # noqa: E402

PROFILE_RATE_HZ = 250
NOISY_OTHER_CPU_PCT = 25.0  # % of one core used by unrelated processes during a point
MODES = (("non-streaming", stack.BODY), ("streaming", stack.STREAM_BODY))
DEPLOYMENTS = {"sqlite-1": (1, False), "pg-redis-1": (1, True), "pg-redis-2": (2, True)}  # processes, PG+Redis


def _print_point(point: dict[str, Any]) -> None:
    print(
        f"  {point['target']:>10} {point['mode']:>13} c={point['concurrency']:<3} {point['rps']:>8,.0f} req/s  "
        f"p50 {point['p50_ms']:7.2f} ms  p99 {point['p99_ms']:8.2f} ms  "
        f"CPU/1k {point.get('gateway_cpu_s_per_1000') or 0:.3f} s  other CPU {point['other_cpu_pct']:.0f}%",
        flush=True,
    )


def _profile(plan: Plan, load: Load, results_dir: Path, stamp: str) -> tuple[dict[str, Any], int]:
    """py-spy at the highest concurrency: raw collapsed stacks for profile_summary.py."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return {"error": "py-spy is not installed: .venv/bin/pip install py-spy"}, 0
    concurrency = max(plan.concurrencies)
    out = results_dir / f"profile-{stamp}.txt"
    argv = [py_spy, "record", "--pid", str(load.gateway_pids[0]), "--rate", str(PROFILE_RATE_HZ), "--nonblocking"]
    argv += ["--duration", str(plan.duration_s), "--format", "raw", "--output", str(out)]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)  # let py-spy attach before the load starts
    summary = measure.generate(plan.generator, load, concurrency, plan.duration_s)
    _, err = recorder.communicate(timeout=plan.duration_s + 60)
    served = summary["requests"] - summary["non_2xx"]
    if recorder.returncode != 0:
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-500:]}"}, served
    return {"concurrency": concurrency, "rate_hz": PROFILE_RATE_HZ, "file": str(out)}, served


def _bench_deployment(
    plan: Plan, args: argparse.Namespace, name: str, upstream: procs.Child, upstream_url: str, tmp: Path
) -> dict[str, Any]:
    processes, needs_services = DEPLOYMENTS[name]
    provisioned = services.provision() if needs_services else None
    result: dict[str, Any] = {"points": [], "ttfb": None, "profile": None}
    try:
        command = stack.gateway_command(args.gateway_command)
        deployment = stack.start_deployment(name, tmp, command, upstream_url, processes, provisioned)
        served = 2 * processes  # the sanity check: one completion and one stream per process
        try:
            for mode, body in MODES:
                load = Load(name, mode, deployment.urls, body, deployment.token, deployment.pids)
                for concurrency in plan.concurrencies:
                    point, ok = measure.measure(plan, load, upstream.pid, concurrency)
                    result["points"].append(point)
                    served += ok
                    _print_point(point)
            stream_load = Load(name, "streaming", deployment.urls, stack.STREAM_BODY, deployment.token, deployment.pids)
            result["ttfb"] = measure.ttfb(plan, stream_load)
            served += result["ttfb"]["served"]
            if args.profile and name == "sqlite-1":
                args.results_dir.mkdir(parents=True, exist_ok=True)
                load = Load(name, "non-streaming", deployment.urls, stack.BODY, deployment.token, deployment.pids)
                result["profile"], profiled = _profile(plan, load, args.results_dir, args.stamp)
                served += profiled
            result["peak_rss_kib"] = [procs.memory_kib(pid)["peak_rss_kib"] for pid in deployment.pids]
            result["setup"] = deployment.setup
        finally:
            deployment.stop()
        if any(p["non_2xx"] or p["socket_errors"] for p in result["points"]):
            result["log_tails"] = {g.name: g.log_tail(40) for g in deployment.gateways}  # why the errors
        if provisioned is None:
            assert deployment.sqlite_path is not None
            by_status = stack.sqlite_ledger_summary(deployment.sqlite_path)
        else:
            by_status = services.ledger_summary(provisioned)
        result["ledger"] = {"by_status": by_status, "replies": served}
    finally:
        if provisioned is not None:
            services.release(provisioned)
    return result


def run(plan: Plan, args: argparse.Namespace, targets: list[str]) -> dict[str, Any]:
    points: list[dict[str, Any]] = []
    probes: list[dict[str, Any]] = []
    deployments: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ledgergate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        upstream, upstream_url = stack.start_upstream(tmp)
        try:
            for mode, body in MODES:
                load = Load("direct", mode, [upstream_url], body, "none", [])
                for concurrency in plan.concurrencies:
                    point, _ = measure.measure(plan, load, upstream.pid, concurrency)
                    points.append(point)
                    _print_point(point)
            probes.append(measure.ttfb(plan, Load("direct", "streaming", [upstream_url], stack.STREAM_BODY, "", [])))
            for name in targets:
                result = _bench_deployment(plan, args, name, upstream, upstream_url, tmp)
                points += result.pop("points")
                probes.append(result.pop("ttfb"))
                deployments[name] = result
        finally:
            upstream.stop()
    return {"points": points, "ttfb": probes, "deployments": deployments}


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gib": round(int(meminfo[1]) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def _parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="no warm-up, 1 s per point, c 1/64; never fails")
    parser.add_argument("--duration", type=int, help="measured seconds per point (default 5, quick 1)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per point (default 2, quick 0)")
    parser.add_argument("--concurrency", help="comma-separated (default 1,16,64,256; quick 1,64)")
    parser.add_argument("--targets", default=",".join(DEPLOYMENTS), help="gateway targets (direct always runs)")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--profile", action="store_true", help="also py-spy the SQLite gateway")
    parser.add_argument("--doc", type=Path, default=BENCH_DIR.parent / "docs" / "benchmarks.md")
    parser.add_argument("--no-doc", action="store_true", help="do not write the doc (--quick never writes it)")
    parser.add_argument(
        "--gateway-command",
        help="serve the gateway with this command instead of `ledgergate` (e.g. a patched build); "
        "`serve --config FILE --port N` is appended",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH_DIR / "results")
    return parser.parse_args(argv)


def _exit_on_sigterm(signum: int, _frame: Any) -> None:
    sys.exit(128 + signum)  # SystemExit unwinds the finally blocks, which stop every child and drop the DBs


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    args = _parse_args(argv)
    args.stamp = time.strftime("%Y%m%dT%H%M%S")
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if shutil.which("wrk") else "python"
    default_concurrency = "1,64" if args.quick else "1,16,64,256"
    plan = Plan(
        duration_s=max(1, args.duration if args.duration is not None else (1 if args.quick else 5)),
        warmup_s=max(0, args.warmup if args.warmup is not None else (0 if args.quick else 2)),
        concurrencies=tuple(int(c) for c in (args.concurrency or default_concurrency).split(",")),
        generator=generator,
        ttfb_s=1 if args.quick else 3,
    )
    targets = [t for t in args.targets.split(",") if t]
    notes = []
    if any(DEPLOYMENTS[t][1] for t in targets):
        reason = services.unavailable_reason()
        if reason:
            notes.append(f"PostgreSQL + Redis targets skipped: {reason}")
            targets = [t for t in targets if not DEPLOYMENTS[t][1]]
    print(
        f"ledgergate bench: {plan.warmup_s} s warm-up + {plan.duration_s} s per point, "
        f"concurrency {list(plan.concurrencies)}, generator {generator}, targets direct + {targets}",
        flush=True,
    )
    for note in notes:
        print(f"note: {note}", flush=True)
    started = time.monotonic()
    try:
        result = run(plan, args, targets)
    except Exception as exc:  # --quick only prints for the record (CI); a full run reports the failure
        print(f"benchmark failed: {type(exc).__name__}: {exc}", flush=True)
        return 0 if args.quick else 1
    result = {
        "stamp": args.stamp,
        "machine": _machine(),
        "plan": {**asdict(plan), "targets": targets, "quick": args.quick},
        "governance": stack.GOVERNANCE,
        "body": json.loads(stack.BODY),
        "notes": notes,
        "suite_wall_s": round(time.monotonic() - started, 1),
        **result,
    }
    args.results_dir.mkdir(parents=True, exist_ok=True)
    out = args.results_dir / f"bench-{args.stamp}{'-quick' if args.quick else ''}.json"
    out.write_text(json.dumps(result, indent=2))
    print()
    print(doc.results_markdown(result))
    busiest = max((point.get("other_cpu_pct") or 0.0 for point in result["points"]), default=0.0)
    if busiest > NOISY_OTHER_CPU_PCT:
        print(
            f"\nnote: other processes used up to {busiest:.0f}% CPU during a point: req/s and latencies are "
            "understated; CPU s / 1k requests is the figure to compare. Rerun on an idle machine."
        )
    if not args.quick and not args.no_doc:
        doc.write(args.doc, result)
        print(f"doc: {args.doc}")
    print(f"results: {out} ({result['suite_wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
