"""Shared helpers: machine description, result files and printed tables."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def write_result(name: str, rows: list[dict], *, smoke: bool, notes: str = "") -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / (f"{name}.smoke.json" if smoke else f"{name}.json")
    payload = {"benchmark": name, "smoke": smoke, "taken_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine(), "notes": notes, "rows": rows}  # fmt: skip
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(title: str, rows: list[dict]) -> None:
    if not rows:
        return
    columns = list(dict.fromkeys(c for r in rows for c in r))  # cases may measure different things
    widths = {c: max(len(c), *(len(_fmt(r.get(c, ""))) for r in rows)) for c in columns}
    print(f"\n{title}")
    print("  ".join(c.rjust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(_fmt(row.get(c, "")).rjust(widths[c]) for c in columns))


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def bench_main(argv, *, doc: str, name: str, title: str, run, notes: str, hidden_columns=(), add_arguments=None) -> int:
    """The shared command line of a benchmark: ``--smoke``, run, print the table, write the JSON."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small sizes, as the test suite runs them")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    rows = run(args)
    path = write_result(name, rows, smoke=args.smoke, notes=notes)  # first: a long run's figures are kept
    print_table(title, [{k: v for k, v in r.items() if k not in hidden_columns} for r in rows])
    print(f"\nwrote {path}")
    return 0
