"""The documentation site builds with warnings treated as errors, and covers every error class."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from airflow_spark_streaming import exceptions

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").exists() and (tmp_path / "troubleshooting" / "index.html").exists()


def test_troubleshooting_lists_every_concrete_error():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    concrete = [
        name
        for name, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, exceptions.SparkStreamingError) and not cls.__subclasses__()
    ]
    assert concrete
    assert [name for name in concrete if f"`{name}`" not in page] == []
