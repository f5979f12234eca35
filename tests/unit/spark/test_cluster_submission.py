"""Cluster managers that cannot run here (YARN, Kubernetes): submission, state and kill plumbing.

A fake ``spark-submit`` on the PATH prints what the real one prints for each
cluster manager, so the Spark provider's own log parsing runs; the
ResourceManager's REST API and the Kubernetes API are replaced at their client.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import types
from pathlib import Path

import pytest

from airflow_spark_streaming.exceptions import ClusterManagerError, SparkSubmissionError
from airflow_spark_streaming.hooks.submission import (
    ACTIVE_STATES,
    DriverState,
    SparkSubmission,
    StreamingSubmitHook,
)
from tests.support.fake_spark_submit import FakeSparkSubmit, install_fake_spark_submit

YARN_APP = "application_1700000000000_0042"
K8S_POD = "orders-stream-8f2a1c-driver"


@pytest.fixture
def fake_spark_submit(tmp_path, monkeypatch):
    """Put a ``spark-submit`` on the PATH that records its arguments and properties file, and prints ``output``."""

    def install(output: str, exit_code: int = 0) -> FakeSparkSubmit:
        return install_fake_spark_submit(tmp_path / "bin", monkeypatch, output, exit_code)

    return install


def _conn(monkeypatch, conn_id: str, **conn) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


class _Response:
    def __init__(self, payload: dict, status: int = 200):
        self.status_code, self._payload, self.text = status, payload, json.dumps(payload)

    def json(self):
        return self._payload

    def raise_for_status(self):
        if self.status_code >= 400:
            raise __import__("requests").HTTPError(f"HTTP {self.status_code}")


# --- YARN ---------------------------------------------------------------------------------------


@pytest.fixture
def yarn_conn(monkeypatch, tmp_path):
    (tmp_path / "hadoop-conf").mkdir()
    (tmp_path / "hadoop-conf" / "yarn-site.xml").write_text("<configuration/>")
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path / "hadoop-conf"))
    extra = {"deploy-mode": "cluster", "yarn_resourcemanager_webapp_address": "http://rm.example:8088"}
    return _conn(monkeypatch, "spark_yarn", conn_type="spark", host="yarn", extra=extra)


def test_yarn_submission_returns_at_once_with_the_application_id(yarn_conn, fake_spark_submit):
    argv_file = fake_spark_submit(f"INFO Client: Submitted application {YARN_APP}")
    hook = StreamingSubmitHook(spark_conn_id=yarn_conn, conf={"spark.ui.enabled": "false"})
    hook.set_application(["--spec-uri", "hdfs:///ckpt/_staging/spec-x.json"])

    submission = hook.submit_driver("/opt/jobs/stream_runner.py", tag="tag-1")

    assert (submission.deployment, submission.submission_id, submission.tag) == ("yarn", YARN_APP, "tag-1")
    seen = argv_file.seen()
    assert seen.settings["spark.yarn.submit.waitAppCompletion"] == "false"  # spark-submit must not wait for a stream
    assert seen.settings["spark.airflow_spark_streaming.submission"] == "tag-1"  # the runner puts it in its lease
    assert seen.argv[seen.argv.index("--deploy-mode") + 1] == "cluster"


def test_yarn_states_come_from_the_resource_manager(yarn_conn, mocker):
    answers = {
        "RUNNING": ("RUNNING", "UNDEFINED"),
        "ACCEPTED": ("ACCEPTED", "UNDEFINED"),
        "SUCCEEDED": ("FINISHED", "SUCCEEDED"),
        "FAILED": ("FINISHED", "FAILED"),
        "KILLED": ("KILLED", "KILLED"),
    }
    submission = SparkSubmission("yarn", YARN_APP, "t", yarn_conn, "yarn", 0.0)
    hook = StreamingSubmitHook(spark_conn_id=yarn_conn)
    for expected, (state, final) in answers.items():
        get = mocker.patch("requests.request", return_value=_Response({"app": {"state": state, "finalStatus": final}}))
        assert hook.get_driver_state(submission) == expected
        assert get.call_args.args[1] == f"http://rm.example:8088/ws/v1/cluster/apps/{YARN_APP}"
    assert {"RUNNING", "ACCEPTED"} <= ACTIVE_STATES and "FAILED" not in ACTIVE_STATES


def test_yarn_kill_goes_to_the_resource_manager(yarn_conn, mocker):
    answers = [_Response({}, 202), _Response({"app": {"state": "RUNNING"}}), _Response({"app": {"state": "KILLED"}})]
    request = mocker.patch("requests.request", side_effect=answers)
    StreamingSubmitHook(spark_conn_id=yarn_conn).kill_driver(
        SparkSubmission("yarn", YARN_APP, "t", yarn_conn, "yarn", 0.0)
    )
    put = request.call_args_list[0]
    assert put.args[:2] == ("PUT", f"http://rm.example:8088/ws/v1/cluster/apps/{YARN_APP}/state")
    assert put.kwargs["json"] == {"state": "KILLED"}
    assert request.call_count == 3  # the RM kills asynchronously: the kill waits until it reports KILLED


def test_a_yarn_kill_the_resource_manager_refuses_is_an_error(yarn_conn, mocker):
    mocker.patch("requests.request", return_value=_Response({"RemoteException": {"message": "denied"}}, 403))
    with pytest.raises(ClusterManagerError, match="HTTP 403"):
        StreamingSubmitHook(spark_conn_id=yarn_conn).kill_driver(
            SparkSubmission("yarn", YARN_APP, "t", yarn_conn, "yarn", 0.0)
        )


def test_yarn_submission_gets_yarn_settings_and_one_attempt_unless_conf_says_otherwise(
    yarn_conn, fake_spark_submit, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__SPARK_STREAMING__YARN_SHARED_PATHS", "true")
    argv_file = fake_spark_submit(f"INFO Client: Submitted application {YARN_APP}")
    hook = StreamingSubmitHook(spark_conn_id=yarn_conn, conf={"spark.yarn.jars": "hdfs:///spark/jars/*"},
                               jars="/opt/jars/delta.jar")  # fmt: skip
    hook.submit_driver("/opt/jobs/stream_runner.py", tag="t")
    seen = argv_file.seen()
    assert seen.settings["spark.yarn.maxAppAttempts"] == "1"
    assert seen.settings["spark.yarn.jars"] == "hdfs:///spark/jars/*"  # the job's own setting wins
    assert seen.settings["spark.pyspark.python"] == sys.executable
    assert seen.argv[seen.argv.index("--jars") + 1] == "local:/opt/jars/delta.jar"


def test_yarn_without_a_resource_manager_address_fails_before_submitting(monkeypatch, fake_spark_submit):
    argv_file = fake_spark_submit(f"Submitted application {YARN_APP}")
    conn_id = _conn(monkeypatch, "spark_yarn_bare", conn_type="spark", host="yarn", extra={"deploy-mode": "cluster"})
    with pytest.raises(SparkSubmissionError, match="yarn_resourcemanager_webapp_address"):
        StreamingSubmitHook(spark_conn_id=conn_id).submit_driver("/opt/jobs/app.py", tag="t")
    assert not argv_file.exists()


def test_a_submission_without_an_id_is_an_error_not_an_untracked_driver(yarn_conn, fake_spark_submit):
    fake_spark_submit("INFO Client: something else entirely")
    with pytest.raises(SparkSubmissionError, match="without reporting the driver's id"):
        StreamingSubmitHook(spark_conn_id=yarn_conn).submit_driver("/opt/jobs/app.py", tag="t")


def test_a_failing_spark_submit_is_a_submission_error(yarn_conn, fake_spark_submit):
    fake_spark_submit("Exception in thread main: queue 'nope' does not exist", exit_code=1)
    with pytest.raises(SparkSubmissionError, match="queue 'nope' does not exist"):
        StreamingSubmitHook(spark_conn_id=yarn_conn).submit_driver("/opt/jobs/app.py", tag="t")


# --- Kubernetes ---------------------------------------------------------------------------------


class _ApiException(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP {status}")
        self.status = status


@pytest.fixture
def fake_kubernetes(monkeypatch, mocker):
    """The Kubernetes API client, as the Spark provider reaches it (cncf provider + kubernetes package)."""
    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    api = mocker.MagicMock()
    monkeypatch.setattr(
        spark_submit,
        "kube_client",
        types.SimpleNamespace(get_kube_client=lambda: api, ApiException=_ApiException),
        raising=False,  # absent without the cncf-kubernetes provider
    )
    kubernetes = types.ModuleType("kubernetes")
    kubernetes.client = types.SimpleNamespace(V1DeleteOptions=lambda: "delete-options")
    monkeypatch.setitem(sys.modules, "kubernetes", kubernetes)
    return api


@pytest.fixture
def k8s_conn(monkeypatch):
    extra = {"deploy-mode": "cluster", "namespace": "streams"}
    return _conn(monkeypatch, "spark_k8s", conn_type="spark", host="k8s://https://api.example:6443", extra=extra)


def test_kubernetes_submission_returns_the_driver_pod(k8s_conn, fake_kubernetes, fake_spark_submit):
    argv_file = fake_spark_submit(f"\t pod name: {K8S_POD}\n\t phase: Pending")
    submission = StreamingSubmitHook(spark_conn_id=k8s_conn).submit_driver("local:///opt/jobs/app.py", tag="t")

    assert (submission.deployment, submission.submission_id) == ("kubernetes", f"streams:{K8S_POD}")
    assert argv_file.seen().settings["spark.kubernetes.submission.waitAppCompletion"] == "false"


def test_kubernetes_state_is_the_pod_phase_and_kill_deletes_the_pod(k8s_conn, fake_kubernetes):
    submission = SparkSubmission("kubernetes", f"streams:{K8S_POD}", "t", k8s_conn, "k8s://", 0.0)
    hook = StreamingSubmitHook(spark_conn_id=k8s_conn)

    fake_kubernetes.read_namespaced_pod.return_value = types.SimpleNamespace(
        status=types.SimpleNamespace(phase="Running")
    )
    assert hook.get_driver_state(submission) == "RUNNING"
    fake_kubernetes.read_namespaced_pod.assert_called_with(K8S_POD, "streams")
    fake_kubernetes.read_namespaced_pod.side_effect = _ApiException(404)
    assert hook.get_driver_state(submission) == "NOT_FOUND"  # garbage-collected: not active, so resubmit
    fake_kubernetes.read_namespaced_pod.side_effect = _ApiException(500)
    with pytest.raises(ClusterManagerError, match=K8S_POD):
        hook.get_driver_state(submission)

    hook.kill_driver(submission)
    assert fake_kubernetes.delete_namespaced_pod.call_args.args[:2] == (K8S_POD, "streams")


# --- standalone and client mode ---------------------------------------------------------------


def test_standalone_status_without_a_rest_server_names_the_fix(monkeypatch):
    conn_id = _conn(
        monkeypatch, "spark_sa", conn_type="spark", host="spark://127.0.0.1:1",
        extra={"deploy-mode": "cluster", "rest-port": 1},
    )  # fmt: skip
    submission = SparkSubmission("standalone", "driver-20260101000000-0000", "t", conn_id, "spark://", 0.0)
    with pytest.raises(ClusterManagerError, match=r"spark\.master\.rest\.enabled=true"):
        StreamingSubmitHook(spark_conn_id=conn_id).get_driver_state(submission)


def test_cluster_mode_on_an_unsupported_master_is_refused(monkeypatch):
    conn_id = _conn(
        monkeypatch, "spark_mesos", conn_type="spark", host="mesos://m:5050", extra={"deploy-mode": "cluster"}
    )
    hook = StreamingSubmitHook(spark_conn_id=conn_id)
    with pytest.raises(SparkSubmissionError, match="spark://, yarn or k8s://"):
        hook.submit_driver("/opt/jobs/app.py", tag="t")


def test_a_client_mode_driver_is_tracked_by_its_process_and_killed_with_its_children(tmp_path, monkeypatch):
    """The detached driver's state follows the real process; a reused pid without the tag is not ours."""
    import time

    conn_id = _conn(monkeypatch, "spark_local", conn_type="spark", host="local[1]")
    hook = StreamingSubmitHook(spark_conn_id=conn_id)
    monkeypatch.setattr(
        hook.spark_submit, "_build_spark_submit_command", lambda app: [sys.executable, "-c", CHILD_AND_SLEEP, "tag-77"]
    )
    submission = hook.submit_driver("app.py", tag="tag-77", log_path=tmp_path / "driver.log")
    assert submission.deployment == "client" and submission.submission_id.endswith(f":{submission.pid}")
    assert hook.get_driver_state(submission) == "RUNNING"
    reused = SparkSubmission.from_dict({**submission.to_dict(), "pid": os.getppid()})  # alive, not ours
    assert hook.get_driver_state(reused) == "EXITED"

    deadline = time.monotonic() + 10
    while not (tmp_path / "driver.log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int((tmp_path / "driver.log").read_text().split()[0])
    hook.kill_driver(submission)
    assert hook.get_driver_state(submission) == "EXITED"
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)  # its child went too


def _wait_for_exec(pid: int) -> None:
    """Until the new program's command line shows in /proc (it reads empty for a moment after the fork)."""
    import time

    deadline = time.monotonic() + 10
    while not Path(f"/proc/{pid}/cmdline").read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a parent that does not reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


CHILD_AND_SLEEP = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(120)\n"
)


def test_credentials_in_conf_are_refused_on_a_standalone_master_before_anything_runs(
    monkeypatch, fake_spark_submit, tmp_path
):
    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    argv_file = fake_spark_submit("Driver successfully submitted as driver-20260101000000-0000")
    conn_id = _conn(
        monkeypatch, "spark_sa2", conn_type="spark", host="spark://127.0.0.1:7077", extra={"deploy-mode": "cluster"}
    )
    task = SparkStreamingSubmitOperator(
        task_id="start", application="/opt/jobs/app.py", checkpoint=str(tmp_path / "ckpt"), long_running=True,
        spark_conn_id=conn_id, conf={"spark.hadoop.fs.s3a.secret.key": "hunter2", "spark.ui.enabled": "false"},
    )  # fmt: skip
    with pytest.raises(SparkSubmissionError, match=r"spark\.hadoop\.fs\.s3a\.secret\.key") as refused:
        task.execute({})
    assert "hunter2" not in str(refused.value)
    assert not argv_file.exists() and not (tmp_path / "ckpt").exists()


def test_storage_connection_keys_are_refused_on_a_standalone_master_before_anything_runs(
    monkeypatch, fake_spark_submit, tmp_path
):
    """S3A keys from storage_conn_id would become -D flags on the driver's command line, as conf would."""
    import json

    from airflow_spark_streaming.operators.streaming import SparkStreamingSubmitOperator

    argv_file = fake_spark_submit("Driver successfully submitted as driver-20260101000000-0000")
    conn_id = _conn(
        monkeypatch, "spark_sa3", conn_type="spark", host="spark://127.0.0.1:7077", extra={"deploy-mode": "cluster"}
    )
    monkeypatch.setenv("AIRFLOW_CONN_LAKE_SA", json.dumps(
        {"conn_type": "aws", "login": "AKIDEXAMPLE", "password": "s3cr3t-sa", "extra": {"region_name": "eu-west-1"}}
    ))  # fmt: skip
    task = SparkStreamingSubmitOperator(
        task_id="start", application="/opt/jobs/app.py", checkpoint="s3://lake/ckpt", long_running=True,
        spark_conn_id=conn_id, storage_conn_id="lake_sa", jvm_resolver="packages",
    )  # fmt: skip
    with pytest.raises(SparkSubmissionError, match=r"spark\.hadoop\.fs\.s3a\.secret\.key.*client mode") as refused:
        task.execute({})
    assert "s3cr3t-sa" not in str(refused.value)
    assert not argv_file.exists()


def test_a_foreign_driver_is_killed_by_its_lease_pid_only_while_the_pid_is_still_that_process(monkeypatch, tmp_path):
    """StopStreamingQueryOperator's kill of a driver another starter ran: only a signed lease, and only the process
    that carries its tag and started when it says; a reused pid is never signalled."""
    import socket
    import subprocess
    import time
    import uuid

    from airflow_spark_streaming.exceptions import DriverProcessMismatchError
    from airflow_spark_streaming.hooks.control_key import ControlKeyHook
    from airflow_spark_streaming.hooks.runner_control import CheckpointLease, RunnerControlHook
    from airflow_spark_streaming.runner.control_auth import LEASE, process_start_ticks
    from airflow_spark_streaming.runner.protocol import SUBMISSION_ENV

    hook = StreamingSubmitHook(spark_conn_id=_conn(monkeypatch, "spark_local2", conn_type="spark", host="local[1]"))
    checkpoint, key, tag = RunnerControlHook(str(tmp_path / "ckpt")), ControlKeyHook().get_key(), uuid.uuid4().hex
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              env={**os.environ, SUBMISSION_ENV: tag})  # fmt: skip
    _wait_for_exec(driver.pid)

    def lease(host=None, started=None):
        body = {"owner": "o", "heartbeat_ms": int(time.time() * 1000), "ttl_ms": 10_000, "host": host or
                socket.gethostname(), "pid": driver.pid, "app_id": "local-1", "submission": tag,
                "pid_start": started or process_start_ticks(driver.pid), "checkpoint": checkpoint.location}  # fmt: skip
        return CheckpointLease("local-1", body["host"], driver.pid, 0.0, 10.0, tag, key.sign(LEASE, body, scope=tag))

    try:
        started = time.time()
        assert hook.kill_lease_holder(lease(host="another-host"), checkpoint=checkpoint, key=key) is False
        # A lease whose recorded start time is not the process's: the pid was reused, so it is left alone.
        with pytest.raises(DriverProcessMismatchError, match="was reused"):
            hook.kill_lease_holder(lease(started=1), checkpoint=checkpoint, key=key)
        assert driver.poll() is None
        assert hook.kill_lease_holder(lease(), checkpoint=checkpoint, key=key) is True
        assert not _alive(driver.pid) and time.time() - started < 20  # the kill reaps it: no exit status left
    finally:
        driver.kill()
        driver.wait()


def test_yarn_refuses_a_checkpoint_without_a_scheme(yarn_conn, fake_spark_submit):
    from airflow_spark_streaming.hooks.submission import SparkJob

    argv_file = fake_spark_submit(f"Submitted application {YARN_APP}")
    spec = {"checkpoint_location": "/data/ckpt", "sink": {"path": "file:///data/table"}}
    with pytest.raises(
        SparkSubmissionError, match=r"checkpoint_location '/data/ckpt' has no scheme.*file:///data/ckpt"
    ):
        StreamingSubmitHook(spark_conn_id=yarn_conn).backend.prepare(SparkJob("app.py", spec=spec), tag="t",
                                                                     checkpoint=None)  # fmt: skip
    assert not argv_file.exists()


def test_yarn_ships_the_runner_with_its_provider_modules_which_need_no_airflow(yarn_conn, tmp_path, monkeypatch):
    """spark-submit ships stream_runner.py alone: a --py-files zip carries what it imports, stdlib-only."""
    import subprocess
    import zipfile

    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.submission import SparkJob
    from airflow_spark_streaming.runner.jobs import job_path

    bin_dir, kept = tmp_path / "bin", tmp_path / "shipped.zip"
    bin_dir.mkdir()
    script = bin_dir / "spark-submit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "shutil.copy(sys.argv[sys.argv.index('--py-files') + 1], " + repr(str(kept)) + ")\n"
        f"print('INFO Client: Submitted application {YARN_APP}')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    job = SparkJob(job_path("stream_runner"), spec={"query_name": "q"}, label="q")
    StreamingSubmitHook(spark_conn_id=yarn_conn).start_driver(
        job, checkpoint=RunnerControlHook(str(tmp_path / "ckpt")), owner="t"
    )
    shipped = zipfile.ZipFile(kept).namelist()
    assert "airflow_spark_streaming/runner/jobs/maintenance_handoff.py" in shipped
    assert "airflow_spark_streaming/delta/spark_maintenance.py" in shipped  # what the hand-off and the job run

    # A container's Python without the provider, Airflow or site-packages (-I -S) imports them from the zip.
    probe = (
        f"import sys; sys.path.insert(0, {str(kept)!r})\n"
        "from airflow_spark_streaming.runner.jobs import stream_runner\n"
        "handoff = stream_runner._maintenance_handoff()\n"
        "from airflow_spark_streaming.runner.jobs import delta_maintenance\n"
        "assert handoff.spark_maintenance is delta_maintenance.spark_maintenance\n"
        "assert sorted(handoff.spark_maintenance.ACTIONS) == ['convert', 'optimize', 'vacuum']\n"
        "assert handoff.spark_maintenance.__file__.startswith(sys.path[0])  # from the zip, not an installed copy\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'airflow', 'pyspark', 'airflow_spark_streaming'}))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["['airflow_spark_streaming']"]


def test_yarn_without_the_connection_extra_finds_the_resource_manager_in_yarn_site(
    monkeypatch, fake_spark_submit, tmp_path, mocker
):
    (tmp_path / "hadoop-conf").mkdir()
    (tmp_path / "hadoop-conf" / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.hostname</name><value>rm.example</value>"
        "</property></configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path / "hadoop-conf"))
    conn_id = _conn(monkeypatch, "spark_yarn_site", conn_type="spark", host="yarn", extra={"deploy-mode": "cluster"})
    fake_spark_submit(f"INFO Client: Submitted application {YARN_APP}")
    hook = StreamingSubmitHook(spark_conn_id=conn_id)
    submission = hook.submit_driver("/opt/jobs/app.py", tag="t")
    calls = mocker.patch("requests.request", return_value=_Response({"app": {"state": "RUNNING"}}))
    assert hook.get_driver_state(submission) == DriverState.RUNNING
    assert calls.call_args.args[1] == f"http://rm.example:8088/ws/v1/cluster/apps/{YARN_APP}"
