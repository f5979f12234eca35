"""PySpark programs that spark-submit runs on the Spark side.

Airflow-side code never imports these modules; it refers to them by file path
through :func:`job_path`, so the scheduler never loads pyspark. This package is
standard library only at import time (its exception is imported where raised):
the drivers import it, from the installed provider or from the runner's
``--py-files`` zip on YARN (:func:`runner_support_files`).
"""

from __future__ import annotations

from pathlib import Path

_JOBS_DIR = Path(__file__).parent


def job_path(name: str) -> str:
    """The file path of the bundled job ``name`` (for example ``"stream_runner"``)."""
    path = _JOBS_DIR / f"{name}.py"
    if not path.is_file():
        from airflow_spark_streaming.exceptions import SparkSubmissionError

        available = sorted(p.stem for p in _JOBS_DIR.glob("*.py") if not p.stem.startswith("_"))
        raise SparkSubmissionError(f"No bundled Spark job named {name!r}; the bundled jobs are {available}.")
    return str(path)


#: What the Spark-side programs import from the provider: all standard library only at import time.
RUNNER_SUPPORT_MODULES = (
    "__init__.py",
    "utils/__init__.py",
    "utils/moved_modules.py",
    "utils/bounded_json.py",
    "delta/__init__.py",
    "delta/spark_maintenance.py",
    "runner/__init__.py",
    "runner/protocol.py",
    "runner/lease.py",
    "runner/control_auth.py",
    "runner/query.py",
    "runner/jobs/__init__.py",
    "runner/jobs/stream_runner.py",
    "runner/jobs/maintenance_handoff.py",
    "runner/jobs/delta_maintenance.py",
)


def runner_support_files() -> dict[str, Path]:
    """Archive name -> file of each module the drivers import, for a ``--py-files`` zip."""
    package = _JOBS_DIR.parents[1]
    return {f"{package.name}/{name}": package / name for name in RUNNER_SUPPORT_MODULES}
