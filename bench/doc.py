"""docs/benchmarks.md: the generated results block (tables + raw JSON) between two markers.

Only the text between ``BEGIN`` and ``END`` is replaced, so the hand-written method and discussion around it
survive reruns. A missing doc is created with just a title and the block.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import report

BEGIN = "<!-- bench/run.py results: begin (generated, do not edit by hand) -->"
END = "<!-- bench/run.py results: end -->"


def _commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + (" plus uncommitted changes" if dirty.stdout.strip() else "")


def results_markdown(result: dict[str, Any]) -> str:
    machine, plan = result["machine"], result["plan"]
    lines = [
        f"Run `{result['stamp']}` at commit {_commit()}: {machine['cpus']} CPUs ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB, Linux {machine['kernel']}, Python {machine['python']}, load average "
        f"{machine['load_average_at_start']} at the start. Generator {plan['generator']}, {plan['warmup_s']} s "
        f"warm-up + {plan['duration_s']} s per point, time to first byte probed for {plan['ttfb_s']} s; the "
        f"whole suite took {result['suite_wall_s']:.0f} s.",
        "",
    ]
    lines += [f"Note: {note}\n" for note in result["notes"]]
    for name, info in result["deployments"].items():
        if info.get("log_tails"):
            lines.append(
                f"Note: {report.TARGET_LABELS.get(name, name)} answered errors; the end of its gateway logs is "
                f"in the raw JSON (`deployments.{name}.log_tails`).\n"
            )
    lines += ["", "### Every point", "", report.points_table(result["points"]), ""]
    lines += ["### Streaming: time to first byte at concurrency 1", "", report.ttfb_table(result["ttfb"]), ""]
    lines += ["### Against the targets of issue 6", "", report.targets_table(result["points"], result["ttfb"]), ""]
    ledgers = {name: info["ledger"] for name, info in result["deployments"].items() if "ledger" in info}
    lines += ["### Ledger check", "", report.ledger_table(ledgers), ""]
    return "\n".join(lines)


def write(path: Path, result: dict[str, Any]) -> None:
    raw = json.dumps(result, indent=1)
    block = (
        f"{BEGIN}\n\n{results_markdown(result)}\n<details><summary>Raw JSON of this run</summary>\n\n"
        f"```json\n{raw}\n```\n\n</details>\n\n{END}"
    )
    text = path.read_text() if path.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
