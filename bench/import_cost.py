"""Import cost: the time the provider's public modules add on top of ``airflow.sdk``.

Each measurement is a fresh interpreter: a baseline that imports what any DAG
file with operators imports (``airflow.sdk`` and its ``DAG``, ``BaseHook``,
``BaseOperator``, ``BaseSensorOperator``), and the same plus the provider's
modules; the difference of the medians is the provider's cost. Two rows:

- ``dag-parse path``: the package, operators, sensors and triggers: what DAG
  files import (hooks, the JVM resolver and the submission backends are imported
  inside methods, when a task runs);
- ``every Airflow-side module``: everything but ``runner/jobs/`` (the PySpark programs).

The baseline also imports ``BaseTrigger`` (``airflow.triggers.base``), as a DAG
file with deferrable sensors does.

Every interpreter reads compiled bytecode from a private cache, filled by a
first run, as an installed package would (see :func:`_bytecode_env`).

Both programs end their baseline with ``gc.collect()``: Airflow leaves a large
heap whose full collection (about 90 ms here) otherwise falls on whichever
import crosses the allocation threshold next. It also records whether pyspark,
delta, deltalake or confluent_kafka got loaded.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import bench_main

HEAVY = ("pyspark", "delta", "deltalake", "confluent_kafka")
TARGET_MS = 50.0


def provider_modules() -> list[str]:
    import airflow_spark_streaming

    root = Path(airflow_spark_streaming.__file__).parent
    modules = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        if parts[1:3] == ("runner", "jobs") and parts[-1] != "__init__":
            continue  # Spark-side programs: Airflow never imports them
        modules.append(".".join(parts).removesuffix(".__init__"))
    return modules


_PYCACHE: str | None = None


def _bytecode_env() -> dict[str, str]:
    """Interpreters that keep compiled bytecode, in a private cache: as an installed package has.

    pip compiles ``.pyc`` files at install time and a scheduler writes them on first import, so no
    DAG parse compiles the provider from source. With ``PYTHONDONTWRITEBYTECODE`` set (as on some CI
    machines) every fresh interpreter would, and compiling is most of that time.
    """
    import atexit
    import os
    import shutil
    import tempfile

    global _PYCACHE
    if _PYCACHE is None:
        _PYCACHE = tempfile.mkdtemp(prefix="bench-pycache-")
        atexit.register(shutil.rmtree, _PYCACHE, ignore_errors=True)  # 30 MB of bytecode per run
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": _PYCACHE}


def _timed(code: str) -> tuple[float, list[str], float | None]:
    """Wall time of ``code`` in a fresh interpreter, the heavy modules it loaded, and ``provider_s`` if it set one."""
    program = (
        "import time, sys, json\nstarted = time.perf_counter()\n" + code +
        "\nelapsed = time.perf_counter() - started\n"
        f"print(json.dumps([elapsed, sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}), "
        "globals().get('provider_s')]))"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=300,
                          env=_bytecode_env())  # fmt: skip
    elapsed, heavy, provider_s = json.loads(done.stdout.strip().splitlines()[-1])
    return elapsed * 1000, heavy, provider_s * 1000 if provider_s is not None else None


# The collection ends the baseline in both programs: Airflow leaves a large heap, and a full
# (generation 2) collection of it takes about 90 ms whenever the next allocations cross the
# threshold; without it, that pause lands on whichever import happens to come next.
BASELINE = (
    "import airflow.sdk\nfrom airflow.sdk import DAG, BaseHook, BaseOperator, BaseSensorOperator\n"
    "from airflow.triggers.base import BaseTrigger\nimport gc\ngc.collect()"
)


def _measure(name: str, baseline: str, modules: list[str], repeats: int) -> dict:
    # provider_s times the provider's imports alone, inside the same interpreter, after the baseline:
    # free of the baseline's own run-to-run spread, which on a busy machine exceeds the target.
    full_code = (
        baseline + "\nimport importlib\nprovider_started = time.perf_counter()\nfor m in " + repr(modules)
        + ": importlib.import_module(m)\nprovider_s = time.perf_counter() - provider_started"
    )  # fmt: skip
    _timed(full_code)  # fills the bytecode cache
    base, full, provider, heavy = [], [], [], set()
    for _ in range(repeats):  # interleaved, so machine noise hits both alike
        base.append(_timed(baseline)[0])
        elapsed, loaded, provider_ms = _timed(full_code)
        full.append(elapsed)
        provider.append(provider_ms)
        heavy.update(loaded)
    extra = statistics.median(full) - statistics.median(base)
    return {
        "path": name, "modules": len(modules), "baseline_ms": round(statistics.median(base), 1),
        "with_provider_ms": round(statistics.median(full), 1), "provider_extra_ms": round(extra, 1),
        "provider_import_ms": round(statistics.median(provider), 1),
        "target_ms": TARGET_MS, "heavy_modules_loaded": ",".join(sorted(heavy)) or "none",
    }  # fmt: skip


def dag_parse_modules(modules: list[str]) -> list[str]:
    """What a DAG file imports: the package, its operators, sensors and triggers (they import the rest lazily)."""
    kinds = (".operators.", ".sensors.", ".triggers.")
    return [m for m in modules if m == "airflow_spark_streaming" or any(k in m for k in kinds)]


def run(smoke: bool = False) -> list[dict]:
    modules = provider_modules()
    repeats = 1 if smoke else 15
    return [
        _measure("dag-parse path", BASELINE, dag_parse_modules(modules), repeats),
        _measure("every Airflow-side module", BASELINE, modules, repeats),
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main(argv, doc=__doc__, name="import_cost",
                      title="Import cost of the provider on top of airflow.sdk (median of fresh interpreters)",
                      run=lambda args: run(args.smoke), notes="wall time of fresh interpreters")  # fmt: skip


if __name__ == "__main__":
    raise SystemExit(main())
