"""Shared helpers: machine description, result files and printed tables."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def local_connect_server(home: Path, conn_id: str) -> Iterator[float]:
    """A local Spark Connect server in ``home`` and a ``spark_connect`` connection ``conn_id`` to it, stopped at
    the end; yields the seconds its start took."""
    from devstack import spark_connect

    started = time.perf_counter()
    server = spark_connect.start(home, port=0)
    seconds = time.perf_counter() - started
    os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(
        {"conn_type": "spark_connect", "host": "127.0.0.1", "port": server.port}
    )
    try:
        yield seconds
    finally:
        spark_connect.stop(Path(server.home))


def add_speed_up(rows: list[dict], column: str, baseline: str = "spark-submit") -> None:
    """Each row's ``vs_spark_submit``: the ``baseline`` row's ``column`` over its own."""
    reference = next(r[column] for r in rows if r["path"] == baseline)
    for row in rows:
        row["vs_spark_submit"] = round(reference / row[column], 1) if row[column] else None
