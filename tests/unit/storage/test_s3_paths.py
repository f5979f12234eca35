"""One path, three S3 clients: users write s3:// or s3a://; each consumer gets its own scheme."""

from __future__ import annotations

import json

import pytest

from airflow_spark_streaming.storage.access import delta_rs_options, spark_spec, spark_storage, spec_paths
from airflow_spark_streaming.storage.locations import DELTA_RS, FSSPEC, SPARK, is_s3_uri, same_store, uri_for


@pytest.mark.parametrize(
    ("location", "spark", "other"),
    [
        ("s3://lake/t", "s3a://lake/t", "s3://lake/t"),
        ("s3a://lake/t/", "s3a://lake/t/", "s3://lake/t/"),
        ("S3N://lake/t", "s3a://lake/t", "s3://lake/t"),
        ("/tmp/t", "/tmp/t", "/tmp/t"),
        ("file:///tmp/t", "file:///tmp/t", "file:///tmp/t"),
        ("gs://b/t", "gs://b/t", "gs://b/t"),
        (
            "abfss://c@a.dfs.core.windows.net/t",
            "abfss://c@a.dfs.core.windows.net/t",
            "abfss://c@a.dfs.core.windows.net/t",
        ),
    ],
)
def test_each_consumer_gets_its_scheme(location, spark, other):
    assert uri_for(location, SPARK) == spark
    assert uri_for(location, FSSPEC) == uri_for(location, DELTA_RS) == other


def test_unknown_consumer_is_refused():
    with pytest.raises(ValueError, match="consumer"):
        uri_for("s3://a/b", "hive")


def test_s3_uri_detection():
    assert is_s3_uri("s3a://a") and is_s3_uri("S3://a") and not is_s3_uri("gs://a")
    assert not is_s3_uri(None) and not is_s3_uri("/tmp/s3://x")


def test_spark_spec_rewrites_only_paths_and_leaves_the_original_alone():
    spec = {
        "checkpoint_location": "s3://lake/_chk/orders",
        "source": {"format": "kafka", "options": {"subscribe": "s3://not-a-path"}},
        "sink": {"format": "delta", "path": "s3://lake/orders"},
    }
    original = json.dumps(spec)
    spark = spark_spec(spec)
    assert spark["checkpoint_location"] == "s3a://lake/_chk/orders" and spark["sink"]["path"] == "s3a://lake/orders"
    assert spark["source"]["options"]["subscribe"] == "s3://not-a-path"
    assert json.dumps(spec) == original
    assert spec_paths(spark) == ["s3a://lake/_chk/orders", None, "s3a://lake/orders"]


def test_no_connection_or_no_s3_path_adds_nothing():
    assert spark_storage(None, ["s3a://lake/t"]).s3 is True
    assert spark_storage(None, ["s3a://lake/t"]).conf == {}
    assert spark_storage("lake_s3", ["/tmp/t", None]).conf == {}  # the connection is not even looked up
    assert delta_rs_options("/tmp/t", "lake_s3", {"k": "v"}) == {"k": "v"}
    assert delta_rs_options("s3://a/t", None, None) is None


def test_connection_gives_s3a_settings_with_secrets_apart(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_LAKE_S3",
        json.dumps({"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "s3cr3t-value",
                    "extra": {"endpoint_url": "http://127.0.0.1:1", "region_name": "eu-west-1"}}),
    )  # fmt: skip
    storage = spark_storage("lake_s3", ["s3://lake/t"])
    assert storage.s3 and storage.conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:1"
    assert storage.secret_conf["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t-value"
    assert "s3cr3t-value" not in json.dumps(storage.conf) and "s3cr3t-value" not in repr(storage)
    options = delta_rs_options("s3a://lake/t", "lake_s3", {"AWS_REGION": "override"})
    assert options["AWS_SECRET_ACCESS_KEY"] == "s3cr3t-value" and options["AWS_REGION"] == "override"


@pytest.mark.parametrize(
    ("location", "other", "same"),
    [
        ("/lake/ckpt", "/lake/orders", True),
        ("file:/lake/ckpt", "/elsewhere/orders", True),
        ("s3://lake/ckpt", "s3a://lake/orders", True),
        ("s3://lake/ckpt", "S3N://LAKE/orders", True),
        ("s3://lake/ckpt", "s3://other-bucket/orders", False),
        ("s3://lake/ckpt", "/lake/orders", False),
        ("/lake/ckpt", "gs://lake/orders", False),
    ],
)
def test_same_store_is_one_disk_or_one_bucket(location, other, same):
    assert same_store(location, other) is same
