"""S3A packages in jvm.py: chosen when a job touches S3, and matching the Hadoop client Spark ships."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.spark import jvm


def test_s3_adds_hadoop_aws_and_its_sdk_after_delta_and_kafka():
    assert jvm.spark_packages(kafka=True, s3=True) == [
        jvm.DELTA_SPARK_PACKAGE,
        jvm.KAFKA_SQL_PACKAGE,
        "org.apache.hadoop:hadoop-aws:3.5.0",
        "software.amazon.awssdk:bundle:2.35.4",
    ]
    assert jvm.spark_packages(s3=False) == [jvm.DELTA_SPARK_PACKAGE]
    # A user naming hadoop-aws again does not load it twice.
    assert jvm.spark_packages(delta=False, s3=True, extra_packages=[jvm.HADOOP_AWS_PACKAGE]) == list(jvm.S3A_PACKAGES)


def test_hadoop_aws_matches_the_hadoop_client_inside_pyspark():
    home = jvm.spark_home()
    assert home is not None
    shipped = {p.name for p in (home / "jars").glob("hadoop-client-*.jar")}
    assert f"hadoop-client-api-{jvm.HADOOP_VERSION}.jar" in shipped
    assert f"hadoop-client-runtime-{jvm.HADOOP_VERSION}.jar" in shipped
    assert jvm.HADOOP_AWS_PACKAGE.endswith(f":{jvm.HADOOP_VERSION}")


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (("s3a://lake/t", None), True),
        (("/tmp/chk", "S3://Lake/t"), True),
        ((" s3n://old/t",), True),
        (("/tmp/chk", "file:///tmp/t", "gs://b/t", "abfss://c@a.dfs.core.windows.net/t"), False),
        ((None, ""), False),
        ((), False),
    ],
)
def test_uses_s3_detects_s3_paths(paths, expected):
    assert jvm.uses_s3(*paths) is expected


def test_resolver_passes_s3_packages_to_spark():
    deps = jvm.resolve_jvm_dependencies(s3=True, resolver="packages")
    assert deps.packages == (jvm.DELTA_SPARK_PACKAGE, *jvm.S3A_PACKAGES)
    assert deps.submit_kwargs()["packages"].endswith("hadoop-aws:3.5.0,software.amazon.awssdk:bundle:2.35.4")


def test_maven_resolver_hands_s3_jars_without_a_second_hadoop_client(monkeypatch, tmp_path):
    seen = {}

    def fake_resolve(coordinates):
        seen["coordinates"] = list(coordinates)
        return [
            tmp_path / "hadoop-aws-3.5.0.jar",
            tmp_path / "bundle-2.35.4.jar",
            tmp_path / "hadoop-client-api-3.5.0.jar",
        ]

    monkeypatch.setattr(jvm, "resolve_with_maven", fake_resolve)
    deps = jvm.resolve_jvm_dependencies(delta=False, s3=True, resolver="maven")
    assert seen["coordinates"] == list(jvm.S3A_PACKAGES)
    assert [p.rsplit("/", 1)[-1] for p in deps.jars] == ["hadoop-aws-3.5.0.jar", "bundle-2.35.4.jar"]
    assert deps.packages == ()
