"""The pinned stack is mutually compatible: one pyspark, matching Delta coordinates, exact pins."""

from __future__ import annotations

import importlib.metadata as metadata
import re
import tomllib
from pathlib import Path

import pytest

from airflow_spark_streaming.spark import jvm

ROOT = Path(__file__).resolve().parents[3]


def _pins(text: str) -> dict[str, str]:
    return {
        m["name"].lower(): m["version"]
        for m in re.finditer(r"^(?P<name>[A-Za-z0-9_.\-]+)==(?P<version>\S+)", text, re.M)
    }


def test_pyspark_and_pyspark_client_share_one_version_and_one_folder(monkeypatch):
    import pyspark

    monkeypatch.delenv("SPARK_HOME", raising=False)
    client = metadata.distribution("pyspark-client")
    full = metadata.distribution("pyspark")
    assert client.version == full.version == pyspark.__version__ == jvm.SPARK_VERSION
    # Both install into site-packages/pyspark; a version skew would mix their files.
    client_files = {str(f) for f in client.files if str(f).startswith("pyspark/") and str(f).endswith(".py")}
    full_files = {str(f) for f in full.files if str(f).startswith("pyspark/") and str(f).endswith(".py")}
    assert client_files and client_files <= full_files
    assert Path(pyspark.__file__).parent == jvm.spark_home()


def test_delta_python_package_matches_the_delta_jar_coordinates():
    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    assert metadata.version("delta-spark") == jvm.DELTA_VERSION
    builder = configure_spark_with_delta_pip(SparkSession.builder, extra_packages=[jvm.KAFKA_SQL_PACKAGE])
    computed = builder._options["spark.jars.packages"].split(",")
    assert computed == [jvm.DELTA_SPARK_PACKAGE, jvm.KAFKA_SQL_PACKAGE]
    assert jvm.DELTA_SPARK_PACKAGE == "io.delta:delta-spark_4.2_2.13:4.4.0"
    assert jvm.KAFKA_SQL_PACKAGE == "org.apache.spark:spark-sql-kafka-0-10_2.13:4.2.0"


def test_constraints_pin_what_pyproject_requires_and_what_is_installed():
    constraints = _pins((ROOT / "constraints.txt").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    exact = _pins("\n".join(project["dependencies"]))
    for name, version in exact.items():
        assert constraints[name] == version, name
    for name in ("apache-airflow", "apache-airflow-providers-apache-spark", "pyspark", "delta-spark", "pytest-mock",
                 "apache-airflow-providers-apache-kafka", "confluent-kafka", "deltalake", "pandas"):  # fmt: skip
        assert constraints[name] == metadata.version(name), f"{name} installed differs from constraints.txt"
    assert constraints["apache-airflow"].startswith("3.3.")
    assert constraints["apache-airflow-providers-apache-spark"].startswith("6.3.")
    assert int(constraints["pandas"].split(".")[0]) < 3


@pytest.mark.parametrize(
    "extra, needs", [("kafka", "confluent-kafka"), ("native", "deltalake"), ("dev", "pytest-mock")]
)
def test_extras_name_their_packages(extra, needs):
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith(needs) for req in extras[extra])
