"""Nothing but flags on spark-submit's command line: every Spark setting goes through the 0600 properties file.

Each backend's real submission path runs against a ``spark-submit`` stand-in that records its argv
and its properties file (tests/support/fake_spark_submit.py). Kubernetes is covered here only, at
the command level: no cluster runs on this machine. That ``--load-spark-defaults`` brings the
cluster's ``spark-defaults.conf`` to the driver is shown by real runs in the integration tests
(tests/support/spark_defaults.py).
"""

from __future__ import annotations

import json
import os
import time
import types

import pytest

from airflow_spark_streaming.exceptions import SparkSubmissionError
from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
from airflow_spark_streaming.hooks.submission import SparkJob, StreamingSubmitHook
from airflow_spark_streaming.spark.submission.spark_compat import (
    LOAD_SPARK_DEFAULTS,
    seal_spark_settings,
    split_spark_settings,
)
from tests.support.fake_spark_submit import install_fake_spark_submit, read_properties

SECRET = {"spark.hadoop.fs.s3a.secret.key": "hunter2=x:y"}
CONF = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "3"}
TAG = "5e7a9c"


def _conn(monkeypatch, conn_id: str, **conn) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def _assert_only_flags(argv: list[str]) -> None:
    assert not {"--conf", "-c"} & set(argv), f"a Spark setting is on the command line: {argv}"
    assert not [a for a in argv if a.startswith("spark.")], argv
    assert LOAD_SPARK_DEFAULTS in argv and "--properties-file" in argv


def test_split_takes_every_conf_pair_and_keeps_switches_and_option_values():
    options = ["--master", "yarn", "--conf", "spark.a=1", "--verbose", "-c", "spark.b=x=y", "--name", "--conf",
               "--conf", "spark.a=2", "--properties-file", "/p", "--supervise"]  # fmt: skip
    flags, settings = split_spark_settings(options)
    assert flags == ["--master", "yarn", "--verbose", "--name", "--conf", "--properties-file", "/p", "--supervise"]
    assert settings == {"spark.b": "x=y", "spark.a": "2"}  # a later --conf wins, and is written later
    assert list(settings) == ["spark.b", "spark.a"]


def test_settings_are_appended_after_the_secrets_so_they_win_as_conf_did(tmp_path):
    from airflow_spark_streaming.spark.submission.private_files import write_private_files

    _, path = write_private_files(tmp_path, secret_conf={"spark.x": "from-file", **SECRET})
    hook = types.SimpleNamespace(_properties_file=path)
    flags = seal_spark_settings(hook, ["--master", "local[1]", "--conf", "spark.x=from-conf"])
    assert flags == ["--master", "local[1]", LOAD_SPARK_DEFAULTS]
    text = open(path).read()
    assert read_properties(text) == {"spark.x": "from-conf", **SECRET}
    assert text.index("spark.x=from-file") < text.index("spark.x=from-conf")
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_settings_are_never_written_to_a_file_others_can_read(tmp_path):
    shared = tmp_path / "shared.properties"
    shared.write_text("")
    shared.chmod(0o644)
    with pytest.raises(SparkSubmissionError, match="readable by others"):
        seal_spark_settings(types.SimpleNamespace(_properties_file=str(shared)), ["--conf", "spark.a=1"])
    assert shared.read_text() == ""


def test_without_a_properties_file_settings_are_refused_not_put_on_the_command_line():
    with pytest.raises(SparkSubmissionError, match=r"spark\.a.*command line"):
        seal_spark_settings(types.SimpleNamespace(_properties_file=None), ["--conf", "spark.a=1"])


def test_client_mode_detached_driver_gets_flags_only_and_its_file_goes_on_release(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_SPARK_STREAMING_CACHE", str(tmp_path / "cache"))
    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch)
    conn_id = _conn(monkeypatch, "spark_argv_local", conn_type="spark", host="local[2]")
    hook = StreamingSubmitHook(spark_conn_id=conn_id, conf=CONF, name="orders", env_vars={"APP_MODE": "x"})
    job = SparkJob("/opt/jobs/stream_runner.py", spec={"query_name": "q"}, secret_conf=SECRET, label="q")
    checkpoint = RunnerControlHook(str(tmp_path / "ckpt"))

    submission = hook.start_driver(job, checkpoint=checkpoint, owner="t")
    deadline = time.monotonic() + 20
    while hook.get_driver_state(submission).is_active and time.monotonic() < deadline:
        time.sleep(0.1)

    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert seen.argv[:4] == ["--master", "local[2]", "--properties-file", seen.properties_path]
    assert seen.properties_mode == 0o600
    assert seen.settings == {**SECRET, **CONF, "spark.airflow_spark_streaming.submission": submission.tag}
    assert os.path.exists(seen.properties_path)  # the detached driver reads it later...
    hook.release_private_files(submission, checkpoint)
    assert not os.path.exists(seen.properties_path)  # ...and it goes once the driver holds the lease


def test_the_delta_spark_engine_waits_with_flags_only_and_removes_its_file(tmp_path, monkeypatch):
    from airflow_spark_streaming.operators.delta import DeltaOptimizeOperator

    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch)
    conn_id = _conn(monkeypatch, "spark_argv_delta", conn_type="spark", host="local[1]")
    task = DeltaOptimizeOperator(task_id="optimize", table_uri=str(tmp_path / "table"), engine="spark",
                                 spark_conn_id=conn_id, spark_conf={**SECRET, **CONF})  # fmt: skip
    task._submit_spark_job({"action": "optimize", "table": str(tmp_path / "table")})

    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert "hunter2" not in " ".join(seen.argv) and seen.properties_mode == 0o600
    assert seen.settings.items() >= {**SECRET, **CONF}.items()
    assert not os.path.exists(seen.properties_path)  # removed once spark-submit returned


def test_standalone_cluster_submission_gets_flags_only_and_removes_its_file(tmp_path, monkeypatch):
    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch,
                                     "Driver successfully submitted as driver-20260101000000-0000")  # fmt: skip
    conn_id = _conn(monkeypatch, "spark_argv_sa", conn_type="spark", host="spark://127.0.0.1:7077",
                    extra={"deploy-mode": "cluster", "rest-port": 6066})  # fmt: skip
    hook = StreamingSubmitHook(spark_conn_id=conn_id, conf=CONF, total_executor_cores=1)
    job = SparkJob("/opt/jobs/stream_runner.py", spec={"query_name": "q"}, label="q")

    submission = hook.start_driver(job, checkpoint=RunnerControlHook(str(tmp_path / "ckpt")), owner="t")

    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert seen.argv[seen.argv.index("--class") + 1] == "org.apache.spark.deploy.PythonRunner"
    assert seen.argv[seen.argv.index("--deploy-mode") + 1] == "cluster"
    assert seen.properties_mode == 0o600
    assert seen.settings == {**CONF, "spark.airflow_spark_streaming.submission": submission.tag}
    assert not os.path.exists(seen.properties_path)


def test_yarn_submission_gets_flags_only_with_the_connections_and_env_settings_in_the_file(tmp_path, monkeypatch):
    (tmp_path / "hadoop-conf").mkdir()
    (tmp_path / "hadoop-conf" / "yarn-site.xml").write_text("<configuration/>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path / "hadoop-conf"))
    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch,
                                     "INFO Client: Submitted application application_1700000000000_0042")  # fmt: skip
    conn_id = _conn(monkeypatch, "spark_argv_yarn", conn_type="spark", host="yarn",
                    extra={"deploy-mode": "cluster", "queue": "streams",
                           "yarn_resourcemanager_webapp_address": "http://rm.example:8088"})  # fmt: skip
    hook = StreamingSubmitHook(spark_conn_id=conn_id, conf=CONF, env_vars={"APP_MODE": "x"}, num_executors=1)
    job = SparkJob("/opt/jobs/stream_runner.py", spec={"query_name": "q"}, secret_conf=SECRET, label="q")

    hook.start_driver(job, checkpoint=RunnerControlHook(str(tmp_path / "ckpt")), owner="t")

    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert seen.argv[seen.argv.index("--queue") + 1] == "streams" and "--num-executors" in seen.argv
    settings = seen.settings
    assert settings.items() >= {**SECRET, **CONF, "spark.yarn.submit.waitAppCompletion": "false",
                                "spark.yarn.maxAppAttempts": "1",
                                "spark.yarn.appMasterEnv.APP_MODE": "x"}.items()  # fmt: skip
    assert seen.properties_mode == 0o600 and not os.path.exists(seen.properties_path)


def test_kubernetes_submission_gets_flags_only_with_the_namespace_in_the_file(tmp_path, monkeypatch):
    """Kubernetes cannot run here: the command and the file are checked, not a driver pod."""
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    monkeypatch.setattr(spark_submit, "kube_client", types.SimpleNamespace(), raising=False)
    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch, "\t pod name: q-8f2a1c-driver\n\t phase: Pending")
    conn_id = _conn(monkeypatch, "spark_argv_k8s", conn_type="spark", host="k8s://https://api.example:6443",
                    extra={"deploy-mode": "cluster", "namespace": "streams"})  # fmt: skip
    hook = StreamingSubmitHook(spark_conn_id=conn_id, conf=CONF, env_vars={"APP_MODE": "x"})
    job = SparkJob("local:///opt/jobs/stream_runner.py", spec={"query_name": "q"}, secret_conf=SECRET, label="q")

    submission = hook.start_driver(job, checkpoint=RunnerControlHook(str(tmp_path / "ckpt")), owner="t")

    assert submission.submission_id == "streams:q-8f2a1c-driver"
    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert seen.argv[seen.argv.index("--master") + 1] == "k8s://https://api.example:6443"
    assert seen.settings.items() >= {**SECRET, **CONF, "spark.kubernetes.namespace": "streams",
                                     "spark.kubernetes.submission.waitAppCompletion": "false",
                                     "spark.kubernetes.driverEnv.APP_MODE": "x"}.items()  # fmt: skip
    assert seen.properties_mode == 0o600 and not os.path.exists(seen.properties_path)


def test_a_bare_submit_gets_a_private_file_for_the_call_only(tmp_path, monkeypatch):
    """StreamingSubmitHook.submit without a prepared job: a 0600 file is made for spark-submit and removed."""
    fake = install_fake_spark_submit(tmp_path / "bin", monkeypatch)
    conn_id = _conn(monkeypatch, "spark_argv_bare", conn_type="spark", host="local[1]")
    hook = StreamingSubmitHook(spark_conn_id=conn_id, conf=CONF)
    hook.set_application(["--table", "t"])
    hook.submit("/opt/jobs/app.py")

    seen = fake.seen()
    _assert_only_flags(seen.argv)
    assert seen.argv[-3:] == ["/opt/jobs/app.py", "--table", "t"]
    assert seen.settings == CONF and seen.properties_mode == 0o600
    assert not os.path.exists(os.path.dirname(seen.properties_path))
