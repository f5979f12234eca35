"""Run every benchmark: ``python -m bench [--smoke] [name ...]``."""

from __future__ import annotations

import argparse
import importlib

BENCHMARKS = (
    "import_cost",
    "checkpoint_status",
    "kafka_lag",
    "time_lag",
    "compaction",
    "connect_maintenance",
    "connect_ingest",
    "waiting_cost",
    "runner_overhead",
    "s3",
    "streams_page",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="small sizes, as the test suite runs them")
    parser.add_argument("names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {BENCHMARKS})")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        module.main(["--smoke"] if args.smoke else [])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
