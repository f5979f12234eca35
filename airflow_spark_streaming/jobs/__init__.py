"""PySpark programs that spark-submit runs on the Spark side.

Airflow-side code never imports these modules; it refers to them by file path
through :func:`job_path`, so the scheduler never loads pyspark.
"""

from __future__ import annotations

from pathlib import Path

from airflow_spark_streaming.exceptions import SparkSubmissionError

_JOBS_DIR = Path(__file__).parent


def job_path(name: str) -> str:
    """The file path of the bundled job ``name`` (for example ``"stream_runner"``)."""
    path = _JOBS_DIR / f"{name}.py"
    if not path.is_file():
        available = sorted(p.stem for p in _JOBS_DIR.glob("*.py") if not p.stem.startswith("_"))
        raise SparkSubmissionError(f"No bundled Spark job named {name!r}; the bundled jobs are {available}.")
    return str(path)
