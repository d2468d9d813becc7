#!/usr/bin/env python3
"""Flat cost with scale: a SQLite gateway over a big ledger (and many keys) against a small one.

For each size: a governed key (1d + lifetime windows, in a team) is created through the admin API, then the
ledger (records, charges, hourly and daily (UTC, the gateway's timezone) rollups, 90 days, 1,000 keys, 100
teams) is bulk-inserted straight into the SQLite file, and optionally filler key entities. Measured: gateway
start-up to readiness, the counter loads (``SqlLedger.window_sums``) of the key's 1d and lifetime windows
in-process (and the raw pre-rollup sum for comparison), the report query from the daily rollups, the hourly
ones and the raw rows, the first and second request of the key, and ``/spend/report`` over all 90 days.
Then the daily rollups are deleted (a ledger written before they existed) and the gateway restarted: start-up,
the background backfill's duration and ``/spend/report`` again (``backfill_*`` keys).

    bench/scale.py --records 10000,1000000 [--keys 1000,1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if sys.prefix == sys.base_prefix and (BENCH_DIR.parent / ".venv/bin/python").exists():
    os.execv(str(BENCH_DIR.parent / ".venv/bin/python"), [str(BENCH_DIR.parent / ".venv/bin/python"), *sys.argv])
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import procs  # noqa: E402
from stack import BODY, CONFIG_TEMPLATE, MASTER_KEY, MODEL, gateway_command, http_json, start_upstream  # noqa: E402
from steady import filler_secret, steady_latency  # noqa: E402

DAYS = 90
LEDGER_KEYS = 1000
TEAMS = 100
MODELS = ["bench-model", "model-b", "model-c"]
HOUR_S = 3600
RAW_FALLBACK = [False]
KEY = {"key_alias": "scale", "max_budget": 1e9, "budget_limits": [{"budget_duration": "1d", "max_budget": 1e9}]}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def _timed_get(url: str, token: str) -> tuple[float, Any]:
    """Time to the answer's last byte; the client's own JSON parsing (100k rows in Python) is not the gateway's."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=300) as response:
        raw = response.read()
    elapsed_s = time.perf_counter() - started
    return elapsed_s, json.loads(raw)


def _timed_post(url: str, token: str, payload: dict[str, Any]) -> float:
    started = time.perf_counter()
    http_json(url, token, payload)
    return time.perf_counter() - started


def generate(db: Path, records: int, key_id: str, team_id: str, now_s: int, seed: int = 7) -> float:
    """Bulk-insert ``records`` over the last DAYS days (time order), charges to key + team, and their rollups
    (flushed hour by hour); the real key is ledger key 0. Returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(seed)
    keys = [key_id] + [f"lk{i:07d}" for i in range(1, LEDGER_KEYS)]
    teams = [team_id] + [f"lt{i:04d}" for i in range(1, TEAMS)]
    hours = DAYS * 24
    first_hour_s = (now_s // HOUR_S - hours) * HOUR_S
    per_hour, extra = divmod(records, hours)
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    record_sql = (
        "INSERT INTO spend_records (request_id, key_id, user_id, team_id, organization_id, customer_id, tags, model,"
        " deployment_id, route, prompt_tokens, completion_tokens, cost_nanos, status, charged_at_us, ended_at_us)"
        " VALUES (?, ?, NULL, ?, NULL, NULL, '[]', ?, 'd', '/v1/chat/completions', ?, ?, ?, 'success', ?, ?)"
    )
    charge_sql = "INSERT INTO spend_charges VALUES (?, ?, ?, ?, ?)"
    rollup_sql = "INSERT INTO spend_rollups VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    daily_sql = "INSERT INTO spend_daily_rollups VALUES ('UTC', ?, ?, ?, ?, ?, ?, ?, ?)"
    daily: dict[tuple[str, str, str, int], list[int]] = {}
    written = 0
    connection.execute("BEGIN")
    for hour in range(hours):
        hour_s = first_hour_s + hour * HOUR_S
        # the last hour may end in the future: keep its records before now (what a live ledger holds)
        span_us = min(HOUR_S, now_s - 60 - hour_s) * 1_000_000
        count = per_hour + (1 if hour < extra else 0)
        offsets = sorted(rng.randrange(span_us) for _ in range(count))
        rows, charges = [], []
        rollups: dict[tuple[str, str, str], list[int]] = {}
        for offset in offsets:
            k = rng.randrange(LEDGER_KEYS)
            key, team, model = keys[k], teams[k % TEAMS], MODELS[k % len(MODELS)]
            prompt, completion = rng.randrange(10, 2000), rng.randrange(1, 500)
            cost = prompt * 150 + completion * 600
            at_us = hour_s * 1_000_000 + offset
            request_id = f"r{written:010d}"
            written += 1
            rows.append((request_id, key, team, model, prompt, completion, cost, at_us, at_us))
            charges.append((request_id, "key", key, cost, at_us))
            charges.append((request_id, "team", team, cost, at_us))
            day_s = at_us // 1_000_000 // 86_400 * 86_400
            for target in (("key", key), ("team", team), ("record", "*")):
                for sums in (
                    rollups.setdefault((*target, model), [0, 0, 0, 0]),
                    daily.setdefault((*target, model, day_s), [0, 0, 0, 0]),
                ):
                    sums[0] += cost
                    sums[1] += 1
                    sums[2] += prompt
                    sums[3] += completion
        connection.executemany(record_sql, rows)
        connection.executemany(charge_sql, charges)
        connection.executemany(rollup_sql, [(t, i, m, hour_s, *s) for (t, i, m), s in rollups.items()])
        if (hour_s + HOUR_S) % 86_400 == 0:  # a UTC day ended: its daily rows are final
            connection.executemany(daily_sql, [(*key, *sums) for key, sums in daily.items()])
            daily.clear()
        if hour % 24 == 23:
            connection.execute("COMMIT")
            connection.execute("BEGIN")
    connection.executemany(daily_sql, [(*key, *sums) for key, sums in daily.items()])
    # What a gateway that kept daily rows all along records: they hold every record (see daily_rollups.py).
    connection.execute("DELETE FROM rollup_coverage")
    connection.execute("INSERT INTO rollup_coverage VALUES ('UTC', 'complete', NULL, 0)")
    connection.execute("COMMIT")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return time.perf_counter() - started


def add_filler_keys(db: Path, key_id: str, total_keys: int) -> float:
    """Copies of the real key's entity row under other ids (the hashes of ``filler_secret(i)``, so requests can
    use them), until the entities table holds ``total_keys`` keys."""
    started = time.perf_counter()
    connection = sqlite3.connect(db, isolation_level=None)
    columns = [row[1] for row in connection.execute("PRAGMA table_info(entities)")]
    row = dict(
        zip(
            columns,
            connection.execute("SELECT * FROM entities WHERE entity_type='key' AND entity_id=?", (key_id,)).fetchone(),
            strict=True,
        )
    )
    have = connection.execute("SELECT COUNT(*) FROM entities WHERE entity_type='key'").fetchone()[0]
    sql = f"INSERT INTO entities ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    connection.execute("BEGIN")
    batch = []
    for i in range(total_keys - have):
        batch.append([_filler_value(c, i, row) for c in columns])
        if len(batch) == 100_000:
            connection.executemany(sql, batch)
            batch = []
    connection.executemany(sql, batch)
    connection.execute("COMMIT")
    connection.close()
    return time.perf_counter() - started


def _filler_value(column: str, index: int, row: dict[str, Any]) -> Any:
    if column == "entity_id":
        return hashlib.sha256(filler_secret(index).encode()).hexdigest()
    return f"filler-{index}" if column == "alias" else row[column]


async def _median_ms(call: Any, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    return _ms(sorted(times)[len(times) // 2])


async def counter_loads(db: Path, key_id: str, now_s: int) -> dict[str, float]:
    """In-process medians: the key's 1d and lifetime counter loads (rollups + edges), the raw lifetime sum (the
    pre-rollup query), and the report query (rollups; and the raw fallback of a half-hour timezone)."""
    from sqlalchemy import func, select

    from ledgergate.domain.admission import CounterKey
    from ledgergate.domain.windows import FAR_FUTURE_S, LIFETIME, LIFETIME_PERIOD_START_S
    from ledgergate.storage.sql.engine import create_engine
    from ledgergate.storage.sql.ledger import SqlLedger
    from ledgergate.storage.sql.spend_queries import LogFilter, SpendQueries
    from ledgergate.storage.sql.tables import spend_charges

    engine = create_engine(f"sqlite+aiosqlite:///{db}")
    ledger = SqlLedger(engine)
    day_start_s = now_s // 86_400 * 86_400
    result: dict[str, float] = {}
    queries = SpendQueries(engine)
    first_day_s = (now_s // 86_400 - DAYS) * 86_400
    whole_days = [(first_day_s + day * 86_400) * 1_000_000 for day in range(DAYS + 2)]
    half_hour_days = [bound - 1_800_000_000 for bound in whole_days]  # a +00:30 timezone: the raw fallback
    hour_days = [bound - 3_600_000_000 for bound in whole_days]  # a +01:00 timezone: no daily rows, the hourly
    raw = select(func.sum(spend_charges.c.cost_nanos)).where(
        spend_charges.c.entity_type == "key", spend_charges.c.entity_id == key_id
    )
    try:
        await ledger.window_sums([CounterKey("key", "warm", "1d", day_start_s)], [day_start_s + 86_400])
        for name, key, end_s in (
            ("window_sums_1d_ms", CounterKey("key", key_id, "1d", day_start_s), day_start_s + 86_400),
            ("window_sums_lifetime_ms", CounterKey("key", key_id, LIFETIME, LIFETIME_PERIOD_START_S), FAR_FUTURE_S),
        ):
            result[name] = await _median_ms(lambda key=key, end_s=end_s: ledger.window_sums([key], [end_s]))
        async with engine.connect() as connection:
            result["raw_lifetime_sum_ms"] = await _median_ms(lambda: connection.scalar(raw))
        for group in ("key", "team"):
            result[f"report_query_90d_{group}_ms"] = await _median_ms(
                lambda group=group: queries.report(group, whole_days, LogFilter()), runs=3
            )
        result["report_query_90d_key_hourly_ms"] = await _median_ms(
            lambda: queries.report("key", hour_days, LogFilter()), runs=3
        )
        if RAW_FALLBACK[0]:  # minutes at 10M records: only on request
            result["report_query_90d_key_raw_fallback_ms"] = await _median_ms(
                lambda: queries.report("key", half_hour_days, LogFilter()), runs=1
            )
    finally:
        await engine.dispose()
    return result


def measure(records: int, total_keys: int, tmp: Path, upstream_port: int) -> dict[str, Any]:
    db = tmp / f"scale-{records}-{total_keys}.db"
    config = tmp / f"scale-{records}-{total_keys}.yaml"
    config.write_text(
        CONFIG_TEMPLATE.format(
            master_key=MASTER_KEY, database_url=f"sqlite:///{db}", services="", model=MODEL, upstream_port=upstream_port
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERGATE_")}
    argv = [*gateway_command(None), "serve", "--config", str(config)]

    def start() -> tuple[procs.Child, str, float]:
        port = procs.free_port()
        started = time.perf_counter()
        gateway = procs.start(f"gw-{records}-{total_keys}", [*argv, "--port", str(port)], tmp, env=env)
        base = f"http://127.0.0.1:{port}"
        procs.wait_http(gateway, f"{base}/health/readiness", timeout_s=120)
        return gateway, base, time.perf_counter() - started

    gateway, base, _ = start()
    try:
        team, _ = http_json(f"{base}/team/new", MASTER_KEY, {"team_alias": "scale-team"})
        key, _ = http_json(f"{base}/key/generate", MASTER_KEY, {**KEY, "team_id": team["team_id"]})
    finally:
        gateway.stop()
    connection = sqlite3.connect(db)
    (key_id,) = connection.execute(
        "SELECT entity_id FROM entities WHERE entity_type='key' AND alias='scale'"
    ).fetchone()
    connection.close()
    now_s = int(time.time())
    out: dict[str, Any] = {"records": records, "keys": total_keys}
    out["generate_s"] = round(generate(db, records, key_id, team["team_id"], now_s), 1)
    if total_keys > 1:
        out["filler_keys_s"] = round(add_filler_keys(db, key_id, total_keys), 1)
    out["db_mb"] = round(db.stat().st_size / 1e6)
    os.sync()  # the generator's gigabytes written back now, not under the measured requests
    out.update(asyncio.run(counter_loads(db, key_id, now_s)))
    gateway, base, startup_s = start()
    try:
        out["startup_to_ready_s"] = round(startup_s, 2)
        chat = f"{base}/v1/chat/completions"
        out["first_request_ms"] = _ms(_timed_post(chat, key["key"], json.loads(BODY)))
        out["second_request_ms"] = _ms(_timed_post(chat, key["key"], json.loads(BODY)))
        filler_keys = total_keys - 1 if total_keys > 1 else 0
        out.update(
            steady_latency(chat, f"http://127.0.0.1:{upstream_port}/v1/chat/completions", key["key"], filler_keys)
        )
        out.update(_reports(base, now_s, ""))
    finally:
        gateway.stop()
    out["drop_daily_s"] = round(_drop_daily(db), 1)
    gateway, base, startup_s = start()
    try:
        out["backfill_startup_to_ready_s"] = round(startup_s, 2)
        chat = f"{base}/v1/chat/completions"
        out["backfill_first_request_ms"] = _ms(_timed_post(chat, key["key"], json.loads(BODY)))
        out["backfill_s"] = round(_wait_daily_complete(db), 1)  # counted from the first request, after start-up
        out.update(_reports(base, now_s, "backfill_"))
    finally:
        gateway.stop()
    db.unlink(missing_ok=True)
    return out


def _reports(base: str, now_s: int, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    today = datetime.fromtimestamp(now_s, UTC).date()
    span = f"start_date={(today - timedelta(days=DAYS)).isoformat()}&end_date={today.isoformat()}"
    for group in ("key", "team", "model"):
        seconds, body = _timed_get(f"{base}/spend/report?group_by={group}&{span}", MASTER_KEY)
        out[f"{prefix}report_90d_{group}_ms"] = _ms(seconds)
        out[f"{prefix}report_90d_{group}_rows"] = len(body["rows"])
    return out


def _drop_daily(db: Path) -> float:
    """Back to a ledger written before daily rollups: the next start fills them in the background."""
    started = time.perf_counter()
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("DELETE FROM spend_daily_rollups")
    connection.execute("DELETE FROM rollup_coverage")
    connection.close()
    return time.perf_counter() - started


def _wait_daily_complete(db: Path, timeout_s: float = 3600) -> float:
    started = time.perf_counter()
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        while time.perf_counter() - started < timeout_s:
            row = connection.execute("SELECT state FROM rollup_coverage WHERE timezone = 'UTC'").fetchone()
            if row is not None and row[0] != "backfilling":
                return time.perf_counter() - started
            time.sleep(0.2)
    finally:
        connection.close()
    raise RuntimeError("the daily rollup backfill did not finish")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", default="10000,1000000", help="ledger sizes, comma-separated")
    parser.add_argument("--keys", default="1000", help="key entity counts (with the smallest ledger size)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--raw-fallback", action="store_true", help="also time the report without any rollup")
    args = parser.parse_args()
    RAW_FALLBACK[0] = args.raw_fallback
    sizes = [int(size) for size in args.records.split(",")]
    key_counts = [int(count) for count in args.keys.split(",")]
    results = []
    with tempfile.TemporaryDirectory(prefix="lg-scale-") as directory:
        tmp = Path(directory)
        upstream, url = start_upstream(tmp)
        port = int(url.split(":")[2].split("/")[0])
        try:
            plan = [(size, key_counts[0]) for size in sizes] + [(sizes[0], count) for count in key_counts[1:]]
            for size, count in plan:
                result = measure(size, count, tmp, port)
                print(json.dumps(result), flush=True)
                results.append(result)
        finally:
            upstream.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
