"""Secrets sealed in real runs: the process list, the task log, XCom, the properties file Java reads, failed submits."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import pytest


@pytest.fixture
def spark_local_conn(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_DEFAULT", json.dumps({"conn_type": "spark", "host": "local[1]"}))


def test_delta_operators_keep_every_kind_of_secret_off_the_process_list_log_xcom_and_rendered_fields(
    spark, tmp_path, airflow_db, spark_local_conn, monkeypatch, caplog, capfd
):
    """One real spark-submit (through dag.test) with a credential of every recognised kind in ``spark_conf``, and
    delta-rs ``storage_options`` for the operator and the sensor: none reaches any command line while the driver
    runs, the task log, XCom or the rendered fields. The SQL quoting of partition values is checked on the way."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags import secrets_sealed_dags as sealed
    from tests.support.sealed_run import ProcessListWatch, leaked_kinds, stored_by_airflow
    from tests.support.secret_kinds import SPARK_CONF_NAMES, STORAGE_OPTION_NAMES, needles, secret_settings

    spark_conf = secret_settings(SPARK_CONF_NAMES, "spark_conf-")
    storage_options = secret_settings(STORAGE_OPTION_NAMES, "storage_options-")
    sensor_options = secret_settings(STORAGE_OPTION_NAMES, "sensor_storage_options-")
    for variable, settings in ((sealed.SPARK_CONF_ENV, spark_conf), (sealed.STORAGE_OPTIONS_ENV, storage_options),
                               (sealed.SENSOR_STORAGE_OPTIONS_ENV, sensor_options)):  # fmt: skip
        monkeypatch.setenv(variable, json.dumps(settings))
    secrets = needles(spark_conf, storage_options, sensor_options)
    assert len(secrets) == len(SPARK_CONF_NAMES) + 3 + 2 * len(STORAGE_OPTION_NAMES)  # + JAAS, header, user info parts
    table = str(tmp_path / "table")
    for _ in range(3):
        spark.createDataFrame([(i, r) for i in range(20) for r in ("eu", "us")], "id INT, region STRING").write.format(
            "delta"
        ).partitionBy("region").mode("append").save(table)
    files = lambda region: {p.name for p in (tmp_path / "table" / f"region={region}").glob("*.parquet")}  # noqa: E731
    us_before = files("us")
    dag = DagBag(dag_folder="tests/dags/secrets_sealed_dags.py").dags["secrets_sealed_delta"]
    caplog.set_level(logging.INFO)
    with ProcessListWatch(secrets, "delta_maintenance.py") as watch:
        run = dag.test(run_conf={"table_uri": table})
    out, err = capfd.readouterr()
    shown = caplog.text + out + err
    assert run.state == "success", shown[-3000:]
    assert watch.runs_seen > 0 and watch.samples > 20, "the watch never saw spark-submit running"
    assert watch.leaks == set(), f"on a command line: {sorted(watch.leaks)}"
    assert not [line for line in watch.lines if " --conf " in line], "a Spark setting on argv, not in the 0600 file"
    result = run.get_task_instance("optimize").xcom_pull(task_ids="optimize")
    assert result["engine"] == "spark" and result["version_after"] > result["version_before"]
    assert files("us") == us_before and len(files("eu")) > 1  # only the eu partition was rewritten (3 old + 1 new)
    assert "delta_maintenance.py" in shown  # the spark-submit command was logged
    assert "--properties-file" in shown  # the credentials went to spark-submit in the private file
    stored = stored_by_airflow(run)
    assert {"optimize:xcom:return_value", "optimize:rendered", "small_files:xcom:small_files"} <= set(stored)
    assert leaked_kinds(secrets, shown) == []
    assert {where: leaked_kinds(secrets, text) for where, text in stored.items() if leaked_kinds(secrets, text)} == {}


_PROPERTIES_DUMP = """
import java.io.*; import java.nio.charset.StandardCharsets; import java.util.*;
public class Dump { public static void main(String[] a) throws Exception {
  Properties p = new Properties();
  try (Reader r = new InputStreamReader(new FileInputStream(a[0]), StandardCharsets.UTF_8)) { p.load(r); }
  Base64.Encoder e = Base64.getEncoder();
  for (String k : new TreeSet<>(p.stringPropertyNames()))
    System.out.println(e.encodeToString(k.getBytes(StandardCharsets.UTF_8)) + " "
        + e.encodeToString(p.getProperty(k).getBytes(StandardCharsets.UTF_8)));
} }
"""


def test_properties_file_reads_back_exactly_in_java_and_a_carriage_return_injects_nothing(tmp_path, java_major):
    from airflow_spark_streaming.spark.submission.private_files import write_private_files

    conf = {
        "spark.hadoop.fs.s3a.secret.key": "abc\rspark.injected=yes",
        "kafka.sasl.jaas.config": 'Module required password="p=w:d#!";\nspark.other=1',
        "spark.x.password": "  leading spaces\\and\\backslashes\ttab\fff",
        "spark.y.token": "ünïcødé €😀",
        "spark.key with spaces=and:colon": "#!",
    }
    _, properties = write_private_files(tmp_path, secret_conf=conf)
    assert os.stat(properties).st_mode & 0o777 == 0o600
    (tmp_path / "Dump.java").write_text(_PROPERTIES_DUMP)
    done = subprocess.run(["java", str(tmp_path / "Dump.java"), properties], capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    read = dict(
        (base64.b64decode(k).decode(), base64.b64decode(v).decode())
        for k, v in (line.split(" ") for line in done.stdout.splitlines())
    )
    assert read == conf  # no spark.injected, no spark.other: every value came back whole


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's directory for this test only, so leftovers of this test (and no other) are visible."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def test_failed_cluster_submit_leaves_no_staged_spec_and_no_private_files(tmp_path, private_tmp, monkeypatch):
    """A real spark-submit to a ResourceManager that is not there: nothing private is left behind."""
    from airflow_spark_streaming.exceptions import SparkSubmissionError
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.submission import SparkJob, StreamingSubmitHook
    from airflow_spark_streaming.runner.jobs import job_path

    conf_dir = tmp_path / "hadoop-conf"
    conf_dir.mkdir()
    # Nothing listens on port 9; the client gives up after 2 s instead of retrying for 15 minutes.
    settings = {
        "yarn.resourcemanager.address": "127.0.0.1:9",
        "yarn.resourcemanager.connect.max-wait.ms": "2000",
        "yarn.resourcemanager.connect.retry-interval.ms": "500",
        "ipc.client.connect.max.retries": "0",
    }
    (conf_dir / "yarn-site.xml").write_text(
        "<configuration>"
        + "".join(f"<property><name>{k}</name><value>{v}</value></property>" for k, v in settings.items())
        + "</configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(conf_dir))
    monkeypatch.delenv("YARN_CONF_DIR", raising=False)
    extra = {"deploy-mode": "cluster", "yarn_resourcemanager_webapp_address": "http://127.0.0.1:9"}
    monkeypatch.setenv("AIRFLOW_CONN_SPARK_YARN_SEALED",
                       json.dumps({"conn_type": "spark", "host": "yarn", "extra": extra}))  # fmt: skip
    checkpoint = RunnerControlHook(str(tmp_path / "checkpoint"))
    staged_modes = []
    stage_file = checkpoint.stage_file

    def spy(name, data):
        uri = stage_file(name, data)
        staged_modes.append(os.stat(uri.removeprefix("file://")).st_mode & 0o777)
        return uri

    monkeypatch.setattr(checkpoint, "stage_file", spy)
    job = SparkJob(job_path("stream_runner"), spec={"query_name": "q", "secret": "x"},
                   secret_conf={"spark.hadoop.fs.s3a.secret.key": "cluster-sealed-1"}, label="q")  # fmt: skip
    hook = StreamingSubmitHook("spark_yarn_sealed", conf={"spark.ui.enabled": "false"})
    with pytest.raises(SparkSubmissionError, match="spark-submit to yarn failed"):
        hook.start_driver(job, checkpoint=checkpoint, owner="t")
    assert staged_modes == [0o600]
    staging = tmp_path / "checkpoint" / "_staging"
    assert not staging.exists() or list(staging.iterdir()) == []
    assert list(private_tmp.iterdir()) == []


def test_failed_detached_submit_leaves_no_private_files(tmp_path, monkeypatch):
    """A real detached spark-submit that fails before its driver reads the spec: release removes spec and secrets."""
    from airflow_spark_streaming.hooks.runner_control import RunnerControlHook
    from airflow_spark_streaming.hooks.submission import SparkJob, StreamingSubmitHook

    monkeypatch.setenv("AIRFLOW_CONN_SPARK_LOCAL_SEALED", json.dumps({"conn_type": "spark", "host": "local[1]"}))
    checkpoint = RunnerControlHook(str(tmp_path / "checkpoint"))
    missing_app = str(tmp_path / "no_such_runner.py")
    job = SparkJob(missing_app, spec={"query_name": "q"},
                   secret_conf={"spark.hadoop.fs.s3a.secret.key": "detached-sealed-1"}, label="sealed")  # fmt: skip
    hook = StreamingSubmitHook("spark_local_sealed", deploy_mode="client", conf={"spark.ui.enabled": "false"})
    submission = hook.start_driver(job, checkpoint=checkpoint, owner="t")
    private = Path(submission.driver_log).parent
    assert {p.name: p.stat().st_mode & 0o777 for p in private.iterdir() if p.name != "driver.log"} == {
        "spec.json": 0o600, "secret.properties": 0o600}  # fmt: skip
    deadline = time.monotonic() + 120
    while hook.get_driver_state(submission).is_active:
        assert time.monotonic() < deadline, "the spark-submit of a missing application kept running"
        time.sleep(0.2)
    assert (private / "spec.json").exists()  # the driver never read (and so never deleted) its spec
    hook.release_private_files(submission, checkpoint)
    assert [p.name for p in private.iterdir()] == ["driver.log"]


def test_runner_refuses_anything_but_one_query_with_sparks_parser(spark):
    from airflow_spark_streaming.runner.jobs.stream_runner import SpecError, _checked_query

    spark.range(1).createOrReplaceTempView("source")
    assert _checked_query(spark, "WITH s AS (SELECT * FROM source) SELECT id FROM s").startswith("WITH")
    for sql in ("DROP TABLE source", "CREATE TABLE t AS SELECT * FROM source", "INSERT INTO t SELECT * FROM source",
                "WITH s AS (SELECT 1) INSERT INTO t SELECT * FROM s", "SELECT * FROM source; DROP TABLE t"):  # fmt: skip
        with pytest.raises(SpecError, match="exactly one SELECT"):
            _checked_query(spark, sql)


def test_spark_sql_reads_quoted_partition_values_as_literals(spark):
    from airflow_spark_streaming.hooks.delta import sql_string_literal

    for value in ("eu' OR 1=1 --", "x\\' OR 1=1 --", "back\\slash", "it''s", "\\"):
        assert spark.sql(f"SELECT {sql_string_literal(value)} AS v").first().v == value


_REGEX_CHECK = """
import java.nio.charset.StandardCharsets; import java.util.*; import java.util.regex.*;
public class RegexCheck { public static void main(String[] a) {
  Base64.Decoder d = Base64.getDecoder(); Base64.Encoder e = Base64.getEncoder(); Scanner in = new Scanner(System.in);
  while (in.hasNextLine()) {
    String[] f = in.nextLine().split(" ");
    Pattern p = Pattern.compile(new String(d.decode(f[1]), StandardCharsets.UTF_8));
    String text = new String(d.decode(f[2]), StandardCharsets.UTF_8);
    System.out.println(f[0].equals("find") ? String.valueOf(p.matcher(text).find()) : e.encodeToString(
        p.matcher(text).replaceAll(Matcher.quoteReplacement("*********(redacted)")).getBytes(StandardCharsets.UTF_8)));
  } } }
"""


def test_spark_redaction_patterns_read_alike_in_java(tmp_path, java_major):
    """Spark compiles the redaction settings with java.util.regex (finding one in a name or value, replacing each
    match in a text); the unit tests check them with Python's re. Both engines must agree on every case."""
    from airflow_spark_streaming.utils.redaction import SPARK_REDACTED, spark_redaction_conf
    from tests.support import secret_kinds as cases

    settings = [spark_redaction_conf(), spark_redaction_conf({"spark.redaction.regex": "(?i)corp", "spark.sql."
                "redaction.options.regex": "(?x) dsn", "spark.redaction.string.regex": r"corp=\S+"})]  # fmt: skip
    texts = [f"{name}=SENTINEL, Map({name} -> 'SENTINEL', b -> 1)" for name in cases.SECRET_NAMES]
    texts += [f"{name}=plain" for name in cases.PLAIN_SETTINGS] + ["corp=1 DSN=2", "k=-----BEGIN PRIVATE KEY-----\nA="]
    encode = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    requests, expected = [], []
    for conf in settings:
        for key in ("spark.redaction.regex", "spark.sql.redaction.options.regex"):
            for name in (*cases.SECRET_NAMES, *cases.PLAIN_SETTINGS, *cases.PLAIN_VALUES):
                requests.append(f"find {encode(conf[key])} {encode(name)}")
                expected.append(str(bool(re.search(conf[key], name))).lower())
        for text in texts:
            requests.append(f"replace {encode(conf['spark.sql.redaction.string.regex'])} {encode(text)}")
            expected.append(encode(re.sub(conf["spark.sql.redaction.string.regex"], SPARK_REDACTED, text)))
    (tmp_path / "RegexCheck.java").write_text(_REGEX_CHECK)
    done = subprocess.run(["java", str(tmp_path / "RegexCheck.java")], input="\n".join(requests) + "\n",
                          capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    answers = done.stdout.split()
    assert len(answers) == len(requests) > 800
    assert [r for r, want, got in zip(requests, expected, answers, strict=True) if want != got] == []
    assert "true" in answers and "false" in answers


def test_a_connect_session_extends_the_servers_redaction_and_the_server_redacts_plans(spark_connect_conn):
    """On the shared server (Spark's own redaction settings): the session's SQL redaction is the task's, extended,
    and a plan that holds a secret setting's value shows it redacted, a plain one as it is."""
    from airflow_spark_streaming.hooks.spark_connect import SparkConnectSessionHook
    from airflow_spark_streaming.utils.redaction import SPARK_SECRET_NAME_REGEX, SPARK_SECRET_TEXT_REGEX

    with SparkConnectSessionHook(spark_connect_conn()).session(
        {"spark.sql.redaction.options.regex": "(?i)dsn"}
    ) as spark:
        assert spark.conf.get("spark.sql.redaction.options.regex") == f"(?i)dsn|{SPARK_SECRET_NAME_REGEX}"
        assert spark.conf.get("spark.sql.redaction.string.regex") == SPARK_SECRET_TEXT_REGEX
        query = spark.sql("SELECT 'fs.azure.account.key.lake.dfs.core.windows.net=SENTINEL-ABFS' AS abfs, "
                          "'fs.gs.auth.service.account.private.key: SENTINEL-GCS' AS gcs, "
                          "'spark.sql.shuffle.partitions=7' AS plain")  # fmt: skip
        plan = query._explain_string(extended=True)
        row = query.first()
    assert "SENTINEL" not in plan and "*********(redacted)" in plan, plan
    assert "spark.sql.shuffle.partitions=7" in plan
    assert row.abfs.endswith("SENTINEL-ABFS")  # redaction is for what Spark shows, not the data
