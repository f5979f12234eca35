"""The Maven fallback resolves the same coordinates as Spark's --packages, and fails clearly offline."""

from __future__ import annotations

import time

import pytest

from airflow_spark_streaming.exceptions import MavenResolutionError
from airflow_spark_streaming.spark import jvm
from devstack.process import free_port


def test_maven_resolves_delta_and_kafka_connector_without_spark_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path))
    jars = {p.name for p in jvm.resolve_with_maven([jvm.DELTA_SPARK_PACKAGE, jvm.KAFKA_SQL_PACKAGE])}
    assert "delta-spark_4.2_2.13-4.4.0.jar" in jars
    assert "spark-sql-kafka-0-10_2.13-4.2.0.jar" in jars
    assert any(name.startswith("kafka-clients-") for name in jars)
    assert any(name.startswith("delta-storage-") for name in jars)
    # Cached: a second call answers from the folder at once, with the same files.
    started = time.monotonic()
    again = {p.name for p in jvm.resolve_with_maven([jvm.KAFKA_SQL_PACKAGE, jvm.DELTA_SPARK_PACKAGE])}
    assert again == jars and time.monotonic() - started < 1

    # What Spark already ships (Scala, Hadoop, Jackson, Parquet, ...) is not shipped again.
    deps = jvm.resolve_jvm_dependencies(delta=True, kafka=True, resolver="maven")
    shipped = {jvm.jar_artifact(j.rsplit("/", 1)[-1]) for j in deps.jars}
    assert {"delta-spark_4.2_2.13", "spark-sql-kafka-0-10_2.13", "kafka-clients", "delta-storage"} <= shipped
    provided = jvm.provided_artifacts(jvm.spark_home() / "jars")
    assert {"scala-library", "hadoop-client-runtime", "jackson-databind"} <= provided
    assert not shipped & provided
    assert "spark.jars.ivySettings" not in deps.conf and not deps.packages


def test_unreachable_repository_gives_a_clear_error_and_no_half_filled_cache(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".m2").mkdir(parents=True)
    (home / ".m2" / "settings.xml").write_text(
        "<settings><mirrors><mirror><id>down</id><mirrorOf>*</mirrorOf>"
        f"<url>http://127.0.0.1:{free_port()}/maven2</url></mirror></mirrors></settings>"
    )
    monkeypatch.setenv("MAVEN_OPTS", f"-Duser.home={home}")
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MavenResolutionError, match=r"Maven could not resolve io\.delta:delta-spark.*reachable"):
        jvm.resolve_with_maven([jvm.DELTA_SPARK_PACKAGE], timeout=300)
    leftovers = list((tmp_path / "cache" / "maven-jars").iterdir())
    assert leftovers == []
