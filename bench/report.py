"""The benchmark's markdown: one row per (target, concurrency), then the comparison against the targets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TARGET_RPS_AT_C64 = 1500.0
TARGET_ADDED_P50_MS_AT_C1 = 2.0
TARGET_CPU_S_PER_1000 = 1.0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def points_table(points: list[dict[str, Any]]) -> str:
    rows = [
        "| target | conc. | req/s | p50 ms | p99 ms | errors | gateway CPU s / 1k req | gateway CPU % "
        "| upstream CPU % | generator CPU % | other CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point in points:
        errors = point["non_2xx"] + point["socket_errors"]
        rows.append(
            f"| {point['target']} | {point['concurrency']} | {_fmt(point['rps'], 0)} | {_fmt(point['p50_ms'])} "
            f"| {_fmt(point['p99_ms'])} | {errors} | {_fmt(point.get('gateway_cpu_s_per_1000'), 3)} "
            f"| {_fmt(point.get('gateway_cpu_pct'), 0)} | {_fmt(point['upstream_cpu_pct'], 0)} "
            f"| {_fmt(point['generator_cpu_pct'], 0)} | {_fmt(point.get('other_cpu_pct'), 0)} |"
        )
    return "\n".join(rows)


def _find(points: list[dict[str, Any]], target: str, concurrency: int) -> dict[str, Any] | None:
    return next((p for p in points if p["target"] == target and p["concurrency"] == concurrency), None)


def targets_table(points: list[dict[str, Any]], peak_rss_kib: int | None) -> str:
    """Each target of the brief, measured, with a verdict; LiteLLM's published-scale numbers for context."""
    gateway_c64 = _find(points, "ledgergate", 64)
    gateway_c1, direct_c1 = _find(points, "ledgergate", 1), _find(points, "direct", 1)
    added_p50 = gateway_c1["p50_ms"] - direct_c1["p50_ms"] if gateway_c1 and direct_c1 else None
    gateway_points = [p for p in points if p["target"] == "ledgergate" and p.get("gateway_cpu_s_per_1000")]
    worst_cpu = max((p["gateway_cpu_s_per_1000"] for p in gateway_points), default=None)
    checks: list[tuple[str, float | None, str, str, Callable[[float], bool], int]] = [
        (
            "req/s at c64",
            gateway_c64["rps"] if gateway_c64 else None,
            f">= {TARGET_RPS_AT_C64:,.0f}",
            "60-100",
            lambda v: v >= TARGET_RPS_AT_C64,
            0,
        ),
        (
            "added p50 at c1 (ms)",
            added_p50,
            f"< {TARGET_ADDED_P50_MS_AT_C1:g}",
            "+15",
            lambda v: v < TARGET_ADDED_P50_MS_AT_C1,
            2,
        ),
        (
            "CPU s per 1,000 requests (worst point)",
            worst_cpu,
            f"< {TARGET_CPU_S_PER_1000:g}",
            "15",
            lambda v: v < TARGET_CPU_S_PER_1000,
            3,
        ),
    ]
    rows = ["| metric | ledgergate | target | LiteLLM (for scale) | verdict |", "|---|---:|---:|---:|---|"]
    for name, value, target, litellm, passes, digits in checks:
        verdict = "-" if value is None else ("meets" if passes(value) else "MISSES")
        rows.append(f"| {name} | {_fmt(value, digits)} | {target} | {litellm} | {verdict} |")
    if peak_rss_kib:
        rows.append(f"| gateway peak RSS (MiB) | {peak_rss_kib / 1024:,.0f} | - | - | - |")
    return "\n".join(rows)
