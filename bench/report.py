"""The benchmark's markdown: every point, time to first byte, the ledger check, and the issue's targets."""

from __future__ import annotations

from typing import Any

GATEWAY_TARGETS = ("sqlite-1", "pg-redis-1", "pg-redis-2")
TARGET_LABELS = {
    "direct": "direct",
    "sqlite-1": "SQLite, 1 process",
    "pg-redis-1": "PG + Redis, 1 process",
    "pg-redis-2": "PG + Redis, 2 processes",
}
TARGET_RPS_AT_C64 = 3000.0
TARGET_ADDED_P50_MS_AT_C1 = {"sqlite-1": 1.0, "pg-redis-1": 2.0, "pg-redis-2": 2.0}
TARGET_CPU_S_PER_1000 = 0.4
TARGET_TTFB_ADDED_MS = 1.0


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def find(points: list[dict[str, Any]], target: str, mode: str, concurrency: int) -> dict[str, Any] | None:
    return next(
        (p for p in points if p["target"] == target and p["mode"] == mode and p["concurrency"] == concurrency), None
    )


def _added(points: list[dict[str, Any]], point: dict[str, Any], field: str) -> float | None:
    direct = find(points, "direct", point["mode"], point["concurrency"])
    if point["target"] == "direct" or direct is None:
        return None
    return float(point[field] - direct[field])


def _fmt_added(value: float | None) -> str:
    # A negative difference of percentiles is noise (the direct run had the worse tail), not a speed-up.
    return "<0" if value is not None and value < 0 else _fmt(value)


def points_table(points: list[dict[str, Any]]) -> str:
    rows = [
        "| target | mode | conc. | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors "
        "| gateway CPU s / 1k req | gateway CPU % | peak RSS MiB | PG+Redis CPU % | other CPU % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for point in points:
        errors = point["non_2xx"] + point["socket_errors"]
        added_p50, added_p99 = _added(points, point, "p50_ms"), _added(points, point, "p99_ms")
        peak = point.get("peak_rss_kib_max_process")
        peak_text = "-" if peak is None else f"{peak / 1024:,.0f}"
        if peak is not None and point.get("processes", 1) > 1:
            peak_text += f" (x{point['processes']})"
        rows.append(
            f"| {TARGET_LABELS.get(point['target'], point['target'])} | {point['mode']} | {point['concurrency']} "
            f"| {_fmt(point['rps'], 0)} | {_fmt(point['p50_ms'])} | {_fmt(point['p99_ms'])} "
            f"| {_fmt_added(added_p50)} | {_fmt_added(added_p99)} | {errors} "
            f"| {_fmt(point.get('gateway_cpu_s_per_1000'), 3)} | {_fmt(point.get('gateway_cpu_pct'), 0)} "
            f"| {peak_text} | {_fmt(point.get('services_cpu_pct'), 0)} | {_fmt(point.get('other_cpu_pct'), 0)} |"
        )
    return "\n".join(rows)


def ttfb_table(probes: list[dict[str, Any]]) -> str:
    direct = next((p for p in probes if p["target"] == "direct"), None)
    rows = [
        "| target | samples | TTFB p50 ms | TTFB p99 ms | added TTFB p50 ms | whole stream p50 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for probe in probes:
        added = probe["ttfb_p50_ms"] - direct["ttfb_p50_ms"] if direct and probe is not direct else None
        rows.append(
            f"| {TARGET_LABELS.get(probe['target'], probe['target'])} | {probe['samples']:,} "
            f"| {_fmt(probe['ttfb_p50_ms'])} | {_fmt(probe['ttfb_p99_ms'])} | {_fmt(added)} "
            f"| {_fmt(probe['total_p50_ms'])} | {probe['errors']} |"
        )
    return "\n".join(rows)


def ledger_table(ledgers: dict[str, dict[str, Any]]) -> str:
    rows = ["| target | spend records (by status) | 2xx replies seen by the generators | every reply recorded |"]
    rows.append("|---|---|---:|---|")
    for target, ledger in ledgers.items():
        records = sum(v["records"] for v in ledger["by_status"].values())
        statuses = ", ".join(f"{status}: {v['records']:,}" for status, v in ledger["by_status"].items())
        verdict = "yes" if records >= ledger["replies"] else "NO"
        rows.append(f"| {TARGET_LABELS.get(target, target)} | {statuses} | {ledger['replies']:,} | {verdict} |")
    return "\n".join(rows)


def _verdict(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "-"
    good = value >= limit if higher_is_better else value < limit
    return f"{_fmt(value, 3 if abs(value) < 10 else 0)} {'meets' if good else 'MISSES'}"


def targets_table(points: list[dict[str, Any]], probes: list[dict[str, Any]]) -> str:
    """The targets of issue 6 item 2 and 4, per gateway target measured (LiteLLM's figures for scale)."""
    measured = [t for t in GATEWAY_TARGETS if any(p["target"] == t for p in points)]
    direct_probe = next((p for p in probes if p["target"] == "direct"), None)
    header = "| metric (target) | " + " | ".join(TARGET_LABELS[t] for t in measured) + " | LiteLLM (for scale) |"
    rows = [header, "|---|" + "---:|" * len(measured) + "---:|"]

    def row(name: str, cells: list[str], litellm: str) -> None:
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {litellm} |")

    added_c1 = []
    for target in measured:
        gateway, direct = find(points, target, "non-streaming", 1), find(points, "direct", "non-streaming", 1)
        value = gateway["p50_ms"] - direct["p50_ms"] if gateway and direct else None
        added_c1.append(_verdict(value, TARGET_ADDED_P50_MS_AT_C1[target]))
    row("added p50 at c1, ms (< 1 SQLite, < 2 PG + Redis)", added_c1, "~15")
    cpu = []
    for target in measured:
        values = [
            p["gateway_cpu_s_per_1000"]
            for p in points
            if p["target"] == target and p["mode"] == "non-streaming" and p.get("gateway_cpu_s_per_1000")
        ]
        cpu.append(_verdict(max(values) if values else None, TARGET_CPU_S_PER_1000))
    row("gateway CPU s / 1k non-streaming requests, worst point (< 0.4)", cpu, "~15")
    rps = []
    for target in measured:
        point = find(points, target, "non-streaming", 64)
        rps.append(_verdict(point["rps"] if point else None, TARGET_RPS_AT_C64, higher_is_better=True))
    row(f"req/s at c64, non-streaming (>= {TARGET_RPS_AT_C64:,.0f})", rps, "60-100")
    ttfb = []
    for target in measured:
        probe = next((p for p in probes if p["target"] == target), None)
        value = probe["ttfb_p50_ms"] - direct_probe["ttfb_p50_ms"] if probe and direct_probe else None
        ttfb.append(_verdict(value, TARGET_TTFB_ADDED_MS))
    row("added TTFB p50 at c1, ms (< 1)", ttfb, "-")
    return "\n".join(rows)
