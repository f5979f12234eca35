"""The JVM dependency module: coordinates, resolvers and Java checks, with bad input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import (
    InvalidMavenCoordinateError,
    JavaNotFoundError,
    JavaVersionError,
    JvmEnvironmentError,
    MavenNotFoundError,
    SparkStreamingError,
)
from airflow_spark_streaming.spark import jvm
from devstack import java


def test_spark_packages_validates_and_deduplicates():
    assert jvm.spark_packages(kafka=True, extra_packages=[f" {jvm.KAFKA_SQL_PACKAGE} ", "org.x:y_2.13:1.0"]) == [
        jvm.DELTA_SPARK_PACKAGE,
        jvm.KAFKA_SQL_PACKAGE,
        "org.x:y_2.13:1.0",
    ]
    assert jvm.spark_packages(delta=False) == []


@pytest.mark.parametrize("bad", ["delta", "io.delta:delta-spark", "a:b:c:d", "a b:c:d", ""])
def test_bad_coordinate_names_the_package_and_the_form(bad):
    with pytest.raises(InvalidMavenCoordinateError, match="group:artifact:version") as err:
        jvm.spark_packages(extra_packages=[bad])
    assert repr(bad) in str(err.value)
    assert isinstance(err.value, SparkStreamingError)


def test_packages_resolver_adds_delta_conf_and_the_bundled_ivy_settings():
    deps = jvm.resolve_jvm_dependencies(kafka=True, resolver="packages", extra_jars=["/opt/x.jar"])
    assert deps.packages == (jvm.DELTA_SPARK_PACKAGE, jvm.KAFKA_SQL_PACKAGE)
    assert deps.jars == ("/opt/x.jar",)
    assert deps.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert Path(deps.conf["spark.jars.ivySettings"]).read_text().count("<ibiblio") == 1
    kwargs = deps.submit_kwargs()
    assert kwargs["packages"] == f"{jvm.DELTA_SPARK_PACKAGE},{jvm.KAFKA_SQL_PACKAGE}"
    assert deps.session_conf()["spark.jars.packages"] == kwargs["packages"]


def test_user_ivy_settings_or_repositories_are_kept():
    deps = jvm.resolve_jvm_dependencies(resolver="packages", user_conf={"spark.jars.repositories": "https://mirror"})
    assert "spark.jars.ivySettings" not in deps.conf


def test_resolver_defaults_to_airflow_config(monkeypatch):
    monkeypatch.setenv("AIRFLOW__SPARK_STREAMING__JVM_RESOLVER", "packages")
    assert jvm.default_resolver() == "packages"


def test_unknown_resolver_is_rejected():
    with pytest.raises(SparkStreamingError, match="'ivy2'.*packages, maven"):
        jvm.resolve_jvm_dependencies(resolver="ivy2")


@pytest.mark.parametrize(
    "output, major",
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_392"', 8),
        ('openjdk version "11.0.2-ea" 2019', 11),
    ],
)
def test_parse_java_major(output, major):
    assert java.parse_java_major(output) == major


def _fake_java(tmp_path: Path, version: str) -> Path:
    home = tmp_path / f"jdk-{version}"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{version}\" 2020-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IEXEC)
    return home


def test_too_old_java_names_version_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, "11.0.2")))
    with pytest.raises(JavaVersionError, match=r"Java 11, but Spark 4.2.0 needs Java 17 or newer.*JAVA_HOME"):
        java.check_java()


def test_new_enough_java_passes(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(_fake_java(tmp_path, "21.0.1")))
    assert java.check_java() == 21


def test_java_home_pointing_nowhere(tmp_path, monkeypatch):
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "missing"))
    with pytest.raises(JavaNotFoundError, match="does not exist"):
        java.check_java()


def test_no_java_at_all(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(JavaNotFoundError, match="install a JDK 17"):
        java.check_java()
    assert issubclass(JavaNotFoundError, JvmEnvironmentError)


def test_maven_fallback_without_maven_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MavenNotFoundError, match="'mvn' is not on the PATH"):
        jvm.resolve_with_maven([jvm.DELTA_SPARK_PACKAGE])
    assert not (tmp_path / "cache" / "maven-jars").exists() or not any((tmp_path / "cache" / "maven-jars").iterdir())


def test_maven_cache_is_reused_without_running_maven(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    target = tmp_path / "jars"
    target.mkdir()
    (target / "b.jar").write_bytes(b"")
    (target / "a.jar").write_bytes(b"")
    assert jvm.resolve_with_maven(["g:a:1"], target=target) == [target / "a.jar", target / "b.jar"]


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "c"))
    assert jvm.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("AIRFLOW_SPARK_STREAMING_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert jvm.cache_dir() == tmp_path / "xdg" / "airflow-spark-streaming"


def test_spark_home_is_the_pyspark_folder(monkeypatch):
    monkeypatch.delenv("SPARK_HOME", raising=False)
    home = jvm.spark_home()
    assert home is not None and (home / "bin" / "spark-submit").is_file()
    assert os.access(home / "bin" / "spark-class", os.X_OK)


@pytest.mark.parametrize(
    "file_name, artifact",
    [
        ("zstd-jni-1.5.7-3.jar", "zstd-jni"),
        ("spark-sql-kafka-0-10_2.13-4.2.0.jar", "spark-sql-kafka-0-10_2.13"),
        ("delta-spark_4.2_2.13-4.4.0.jar", "delta-spark_4.2_2.13"),
        ("jsr305-3.0.0.jar", "jsr305"),
        ("hadoop-client-api-3.4.2.jar", "hadoop-client-api"),
        ("no-version.jar", "no-version"),
    ],
)
def test_jar_artifact(file_name, artifact):
    assert jvm.jar_artifact(file_name) == artifact
