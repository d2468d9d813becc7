#!/usr/bin/env python3
"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the gateway's CPU samples went.

    bench/profile_summary.py bench/results/profile-<stamp>.txt [--top 25]

Prints three tables: samples by library (by the innermost frame), the functions with the most self samples,
and the inclusive share of every ledgergate function (how much of the CPU its call tree costs).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "func (path/file.py:123)" -> "func (path/file.py)": one entry per function, whatever the line.
_LINE_NUMBER = re.compile(r":\d+\)$")
_LIBRARIES = (
    "ledgergate",
    "httpx",
    "httpcore",
    "h11",
    "anyio",
    "starlette",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "aiosqlite",
    "sqlite3",
    "asyncio",
    "orjson",
    "pydantic",
    "ssl",
    "email",
    "http",
    "json",
    "uuid",
    "logging",
)


def _frame(raw: str) -> str:
    return _LINE_NUMBER.sub(")", raw.strip())


def _library(frame: str) -> str:
    path = frame[frame.rfind("(") + 1 : -1]
    top = path.split("/", 1)[0].removesuffix(".py")
    return top if top in _LIBRARIES else f"other ({top})"


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([_frame(frame) for frame in stack.split(";")], int(count)))
    return stacks


def summarise(stacks: list[tuple[list[str], int]], top: int) -> str:
    total = sum(count for _, count in stacks) or 1
    by_library: Counter[str] = Counter()
    self_samples: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        leaf = frames[-1]
        by_library[_library(leaf)] += count
        self_samples[leaf] += count
        for frame in set(frames):
            if frame.split("(", 1)[-1].startswith("ledgergate/"):
                inclusive[frame] += count

    def table(title: str, counter: Counter[str], limit: int) -> list[str]:
        rows = [f"### {title}", "", "| share | samples | where |", "|---:|---:|---|"]
        rows += [f"| {100 * n / total:.1f}% | {n} | `{name}` |" for name, n in counter.most_common(limit)]
        return [*rows, ""]

    lines = [f"{total} samples", ""]
    lines += table("By library (innermost frame)", by_library, len(by_library))
    lines += table("Top self time", self_samples, top)
    lines += table("ledgergate functions, inclusive (their whole call tree)", inclusive, top)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarise(load(args.profile), args.top))


if __name__ == "__main__":
    main()
