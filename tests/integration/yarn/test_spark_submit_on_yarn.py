"""Raw spark-submit on a real ResourceManager and NodeManager: cluster deploy mode, detached submit,
kill and failure through the RM's REST API, and where secrets from a properties file end up."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.yarn.conftest import TIMINGS


def _wait_for_state(cluster, app_id: str, states: set[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    report = {}
    while time.monotonic() < deadline:
        report = cluster.application(app_id)
        if report["state"] in states:
            return report
        time.sleep(0.5)
    raise AssertionError(f"{app_id} did not reach {states} within {timeout:.0f}s; last report: {report}")


def _json_files(folder: Path, batches: list[list[int]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n, ids in enumerate(batches):
        (folder / f"part-{n}.json").write_text("".join(json.dumps({"id": i, "name": f"n{i}"}) + "\n" for i in ids))


def test_cluster_mode_available_now_writes_delta_and_succeeds(yarn_cluster, yarn_submit, tmp_path):
    from deltalake import DeltaTable

    _json_files(tmp_path / "in", [[1, 2, 3], [4, 5]])
    table, checkpoint = tmp_path / "table", tmp_path / "checkpoint"
    done = yarn_submit([f"file://{tmp_path / 'in'}", f"file://{table}", f"file://{checkpoint}", "once"])
    TIMINGS["available_now_submit_s"] = done.seconds
    assert done.returncode == 0, done.output[-3000:]
    report = yarn_cluster.application(done.app_id)
    assert (report["state"], report["finalStatus"]) == ("FINISHED", "SUCCEEDED"), report
    assert sorted(DeltaTable(str(table)).to_pandas()["id"]) == [1, 2, 3, 4, 5]
    assert sorted(p.name for p in (checkpoint / "commits").iterdir() if p.name.isdigit()) == ["0"]


def test_detached_submit_returns_app_id_then_rest_kill_ends_killed_without_leaking_secrets(
    yarn_cluster, yarn_submit, tmp_path
):
    _json_files(tmp_path / "in", [[1]])
    secrets = {
        "spark.hadoop.fs.s3a.secret.key": "s3a-SECRET-1f9c",
        "spark.kafka.sasl.jaas.config": 'PlainLoginModule required username="u" password="kafka-SECRET-77ab";',
    }
    properties = tmp_path / "secret.properties"
    properties.write_text("".join(f"{k} {v}\n" for k, v in secrets.items()))
    properties.chmod(0o600)
    # The environment channel, for comparison: YARN writes container environments into launch_container.sh.
    env_secret = {"spark.yarn.appMasterEnv.API_TOKEN": "env-SECRET-5d2e"}

    # The stream keeps its table and checkpoint in HDFS: hdfs:// checkpoints on YARN.
    hdfs_dir = f"/streams/{tmp_path.name}"
    done = yarn_submit(
        [f"file://{tmp_path / 'in'}", f"{yarn_cluster.default_fs}{hdfs_dir}/table",
         f"{yarn_cluster.default_fs}{hdfs_dir}/cp", "forever"],
        wait=False, properties_file=str(properties), extra_conf=env_secret,
    )  # fmt: skip
    TIMINGS["detached_submit_returns_s"] = done.seconds
    assert done.returncode == 0, done.output[-3000:]
    assert done.app_id, done.output[-3000:]
    assert done.seconds < 60, f"spark-submit with waitAppCompletion=false took {done.seconds:.0f}s"
    submitted_at = time.monotonic() - done.seconds
    report = _wait_for_state(yarn_cluster, done.app_id, {"RUNNING"}, timeout=120)
    TIMINGS["submit_to_running_s"] = time.monotonic() - submitted_at
    # RUNNING means the AM registered; wait for the driver's first commit, so its executor has started too.
    # Read back through WebHDFS, as ObjectStoragePath("webhdfs://...") does: hdfs:// needs libhdfs, not on PyPI.
    from airflow.sdk import ObjectStoragePath

    commit = ObjectStoragePath(f"webhdfs://{yarn_cluster.webhdfs_address}{hdfs_dir}/cp/commits/0")
    _wait_for(commit.exists, 180, "the first committed batch")
    assert (ObjectStoragePath(f"webhdfs://{yarn_cluster.webhdfs_address}{hdfs_dir}/table/_delta_log")).is_dir()

    scripts = sorted(yarn_cluster.nodemanager_dirs.rglob("launch_container.sh"))
    app_scripts = [s for s in scripts if done.app_id.removeprefix("application_") in str(s)]
    assert len(app_scripts) >= 2, f"expected AM and executor launch scripts, found {scripts}"
    launch_text = "\n".join(s.read_text(errors="replace") for s in app_scripts)
    report_text = json.dumps(yarn_cluster.rm_get(f"/apps/{done.app_id}")) + json.dumps(
        yarn_cluster.rm_get(f"/apps/{done.app_id}/appattempts")
    )
    for value in secrets.values():
        secret = value.split('"')[-2] if '"' in value else value
        assert secret not in launch_text, f"a --properties-file secret leaked into launch_container.sh: {secret}"
        assert secret not in report_text, f"a --properties-file secret leaked into the RM report: {secret}"
        assert secret not in done.output, "spark-submit printed a --properties-file secret"
    # Environment variables are not a safe channel: launch_container.sh holds them, and the NodeManager
    # serves that script with the container's logs.
    assert env_secret["spark.yarn.appMasterEnv.API_TOKEN"] in launch_text
    # The properties file travels in __spark_conf__.zip (staging dir, then the NodeManager's private file
    # cache of the submitting user): on disk, readable by that user only.
    conf_copies = [
        p
        for p in yarn_cluster.nodemanager_dirs.rglob("__spark_conf__.properties")
        if "s3a-SECRET-1f9c" in p.read_text()
    ]
    assert conf_copies, "the driver's conf was not found in the NodeManager's file cache"
    for copy in conf_copies:
        assert copy.stat().st_mode & 0o077 == 0 and copy.parent.stat().st_mode & 0o077 == 0, oct(copy.stat().st_mode)

    TIMINGS["kill_http_status"] = yarn_cluster.kill(done.app_id)
    assert TIMINGS["kill_http_status"] in (200, 202)
    report = _wait_for_state(yarn_cluster, done.app_id, {"KILLED", "FAILED", "FINISHED"}, timeout=60)
    assert (report["state"], report["finalStatus"]) == ("KILLED", "KILLED"), report


def test_failing_driver_ends_failed_with_diagnostics_in_rm_report(yarn_cluster, yarn_submit, tmp_path):
    _json_files(tmp_path / "in", [[1]])
    done = yarn_submit(
        [f"file://{tmp_path / 'in'}", f"file://{tmp_path / 'table'}", f"file://{tmp_path / 'cp'}", "bad-column"]
    )
    assert done.returncode != 0
    report = yarn_cluster.application(done.app_id)
    assert (report["state"], report["finalStatus"]) == ("FINISHED", "FAILED"), report
    # YARN only knows the exit status; the Python traceback is in the AM container's stdout.
    assert report["diagnostics"].startswith("User application exited with status 1"), report["diagnostics"]
    assert "no_such_column" not in report["diagnostics"]
    assert "no_such_column" in yarn_cluster.am_container_log(done.app_id, "stdout")


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
