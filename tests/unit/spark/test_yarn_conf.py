"""The Spark conf and spark-submit environment for Python drivers on YARN."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import SparkSubmissionError
from airflow_spark_streaming.spark.yarn_conf import yarn_jars, yarn_submit_settings


@pytest.fixture
def spark_home(tmp_path) -> Path:
    home = tmp_path / "pyspark"
    (home / "jars").mkdir(parents=True)
    (home / "python" / "lib").mkdir(parents=True)
    (home / "python" / "lib" / "pyspark.zip").write_bytes(b"")
    (home / "python" / "lib" / "py4j-0.10.9.9-src.zip").write_bytes(b"")
    return home


@pytest.fixture
def conf_dir(tmp_path) -> Path:
    folder = tmp_path / "hadoop-conf"
    folder.mkdir()
    (folder / "yarn-site.xml").write_text("<configuration/>")
    return folder


def test_shared_paths_use_jars_pyspark_and_python_in_place(spark_home, conf_dir):
    settings = yarn_submit_settings(
        spark_home=spark_home,
        python="/venv/bin/python",
        environ={"HADOOP_CONF_DIR": str(conf_dir)},
        local_ip="127.0.0.1",
    )
    assert settings.conf["spark.yarn.jars"] == f"local:{spark_home}/jars/*"
    for key in ("spark.pyspark.python", "spark.yarn.appMasterEnv.PYSPARK_PYTHON", "spark.executorEnv.PYSPARK_PYTHON"):
        assert settings.conf[key] == "/venv/bin/python"
    assert settings.conf["spark.executorEnv.SPARK_LOCAL_IP"] == "127.0.0.1"
    lib = spark_home / "python" / "lib"
    assert settings.env == {
        "HADOOP_CONF_DIR": str(conf_dir),
        "YARN_CONF_DIR": str(conf_dir),
        "PYSPARK_ARCHIVES_PATH": f"local:{lib / 'pyspark.zip'},local:{lib / 'py4j-0.10.9.9-src.zip'}",
    }


def test_python_defaults_to_this_interpreter(spark_home, conf_dir):
    settings = yarn_submit_settings(spark_home=spark_home, environ={"YARN_CONF_DIR": str(conf_dir)})
    assert settings.conf["spark.pyspark.python"] == sys.executable
    assert settings.env["HADOOP_CONF_DIR"] == str(conf_dir)


def test_without_shared_paths_nothing_points_at_this_host(spark_home, conf_dir):
    settings = yarn_submit_settings(
        spark_home=spark_home, shared_paths=False, environ={"HADOOP_CONF_DIR": str(conf_dir)}
    )
    assert settings.conf == {}
    assert "PYSPARK_ARCHIVES_PATH" not in settings.env
    named = yarn_submit_settings(
        spark_home=spark_home,
        shared_paths=False,
        python="./venv/bin/python",
        environ={"HADOOP_CONF_DIR": str(conf_dir)},
    )
    assert named.conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] == "./venv/bin/python"


def test_missing_hadoop_conf_dir_is_refused_with_the_fix(spark_home, tmp_path):
    with pytest.raises(SparkSubmissionError, match="HADOOP_CONF_DIR or YARN_CONF_DIR"):
        yarn_submit_settings(spark_home=spark_home, environ={})
    with pytest.raises(SparkSubmissionError, match="no yarn-site.xml"):
        yarn_submit_settings(spark_home=spark_home, environ={"HADOOP_CONF_DIR": str(tmp_path)})


def test_not_a_spark_home_is_refused(tmp_path, conf_dir):
    with pytest.raises(SparkSubmissionError, match="not a Spark installation"):
        yarn_submit_settings(spark_home=tmp_path / "nowhere", environ={"HADOOP_CONF_DIR": str(conf_dir)})


def test_yarn_jars_makes_local_files_local_uris_only_when_shared(tmp_path):
    jar = tmp_path / "delta-spark_4.2_2.13-4.4.0.jar"
    remote = "hdfs://nn:8020/jars/x.jar"
    assert yarn_jars([str(jar), f"file:{jar}", remote, "local:/opt/y.jar"]) == [
        f"local:{jar}", f"local:{jar}", remote, "local:/opt/y.jar"
    ]  # fmt: skip
    assert yarn_jars([str(jar)], shared_paths=False) == [str(jar)]


def _site(tmp_path, **props) -> dict[str, str]:
    body = "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items())
    (tmp_path / "yarn-site.xml").write_text(f"<?xml version='1.0'?><configuration>{body}</configuration>")
    return {"HADOOP_CONF_DIR": str(tmp_path)}


@pytest.mark.parametrize(
    ("props", "url"),
    [
        ({"yarn.resourcemanager.webapp.address": "rm.example:8088"}, "http://rm.example:8088"),
        ({"yarn.resourcemanager.hostname": "rm.example"}, "http://rm.example:8088"),
        ({"yarn.resourcemanager.hostname": "rm.example", "yarn.http.policy": "HTTPS_ONLY"}, "https://rm.example:8090"),
        ({"yarn.resourcemanager.hostname": "rm.example",
          "yarn.resourcemanager.webapp.address": "${yarn.resourcemanager.hostname}:18088"}, "http://rm.example:18088"),
        ({"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1, rm2",
          "yarn.resourcemanager.hostname.rm1": "a.example", "yarn.resourcemanager.hostname.rm2": "b.example"},
         "http://a.example:8088"),
        ({"yarn.resourcemanager.ha.enabled": "true", "yarn.resourcemanager.ha.rm-ids": "rm1,rm2",
          "yarn.resourcemanager.webapp.address.rm1": "a.example:8188"}, "http://a.example:8188"),
        ({"yarn.resourcemanager.webapp.address": "0.0.0.0:8088"}, None),
        ({"yarn.resourcemanager.webapp.address": "${undefined.host}:8088"}, None),
        ({"yarn.resourcemanager.webapp.address": "${unterminated:8088"}, None),
        ({}, None),
    ],
)  # fmt: skip
def test_resource_manager_web_url_from_yarn_site(tmp_path, props, url):
    from airflow_spark_streaming.spark.yarn_conf import resource_manager_web_url

    assert resource_manager_web_url(_site(tmp_path, **props)) == url


def test_resource_manager_web_url_refuses_a_file_that_is_not_a_yarn_site(tmp_path):
    from airflow_spark_streaming.exceptions import SparkSubmissionError
    from airflow_spark_streaming.spark.yarn_conf import MAX_SITE_FILE_BYTES, resource_manager_web_url

    (tmp_path / "yarn-site.xml").write_text("<configuration><property>")
    with pytest.raises(SparkSubmissionError, match="not valid XML"):
        resource_manager_web_url({"HADOOP_CONF_DIR": str(tmp_path)})
    (tmp_path / "yarn-site.xml").write_bytes(b" " * (MAX_SITE_FILE_BYTES + 1))
    with pytest.raises(SparkSubmissionError, match="larger than"):
        resource_manager_web_url({"YARN_CONF_DIR": str(tmp_path)})
    assert resource_manager_web_url({}) is None
