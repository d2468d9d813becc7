"""The fake upstream for the benchmark: ledgergate's mock provider alone in its own uvicorn process.

Run as ``python bench/mock_upstream.py --port N``; it serves until terminated.
"""

from __future__ import annotations

import argparse

import uvicorn

from ledgergate.upstream.mock_provider import create_mock_provider_app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        create_mock_provider_app(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        lifespan="off",
        backlog=2048,
    )


if __name__ == "__main__":
    main()
