"""Write docs/cli.md from the --help output of every ledgergate command.

Usage: .venv/bin/python scripts/gen_cli_docs.py [--check]
(--check: exit 1 if docs/cli.md is stale instead of writing it; tests/cli/test_docs.py does the same).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ledgergate.cli.docs import render_markdown

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "cli.md"


def main(argv: list[str]) -> int:
    markdown = render_markdown()
    if "--check" in argv:
        current = DOCS_PATH.read_text(encoding="utf-8") if DOCS_PATH.exists() else ""
        if current != markdown:
            print(f"{DOCS_PATH} is stale: run scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOCS_PATH.write_text(markdown, encoding="utf-8")
    print(f"wrote {DOCS_PATH}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
