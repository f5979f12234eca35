"""One local Spark driver with S3A, run by the S3 tests in its own process (one SparkContext per process).

Reads its plan as JSON on stdin (settings hold secrets, so never argv), prints
one JSON result line. Steps:

- write a Delta table with Spark, read and append to a delta-rs table;
- list and read what ObjectStoragePath wrote;
- S3A create without overwrite racing another writer: Hadoop's conditional
  createFile loses with an error, plain create() (Delta's log store) silently
  overwrites;
- the checkpoint lease's HadoopLeaseStore on S3A: two takers (two S3A
  clients, as two drivers have) race for one generation, round after round;
  with conditional create turned off the lease is refused by name, unless
  best effort is chosen;
- failure probes (wrong key, missing bucket, dead endpoint): exception text
  and seconds taken.
"""

from __future__ import annotations

import json
import sys
import time


def _fs(spark, url: str, overrides: dict[str, str]):
    jvm = spark._jvm
    conf = jvm.org.apache.hadoop.conf.Configuration(spark._jsc.hadoopConfiguration())
    for key, value in overrides.items():
        conf.set(key, value)
    return jvm.org.apache.hadoop.fs.FileSystem.newInstance(jvm.java.net.URI(url), conf)


def _race(spark, plan: dict, key: str, conditional: bool) -> dict:
    """Open a create without overwrite, let another writer create the key, then close.

    ``conditional``: Hadoop 3.5's createFile builder with the conditional-overwrite
    option (If-None-Match: *); otherwise FileSystem.create(path, false), the call
    Delta's S3SingleDriverLogStore commits with.
    """
    import boto3

    jvm = spark._jvm
    url = f"s3a://{plan['bucket']}/{key}"
    fs = _fs(spark, url, {})
    path = jvm.org.apache.hadoop.fs.Path(url)
    if conditional:
        stream = fs.createFile(path).overwrite(False).must("fs.option.create.conditional.overwrite", True).build()
    else:
        stream = fs.create(path, False)
    stream.write(bytearray(b"spark"))
    s3 = boto3.client("s3", **plan["boto"])
    s3.put_object(Bucket=plan["bucket"], Key=key, Body=b"other writer")
    outcome = {"error": None}
    try:
        stream.close()
    except Exception as err:  # py4j wraps the Java exception
        outcome["error"] = str(err)[:400]
    outcome["content"] = s3.get_object(Bucket=plan["bucket"], Key=key)["Body"].read().decode()
    fs.close()
    return outcome


def _lease(spark, root: str, rounds: int = 10) -> dict:
    """The lease through the runner's S3A store: who wins each race, and what happens without conditional create."""
    import contextlib
    import io
    import threading

    from airflow_spark_streaming.runner import lease as L

    jvm = spark._jvm

    def store(url: str, consistency: str = "conditional", overrides: dict[str, str] | None = None):
        fs = _fs(spark, url, overrides or {})  # a client of its own, as another driver has
        return L.HadoopLeaseStore(jvm, fs, fs.makeQualified(jvm.org.apache.hadoop.fs.Path(url)), consistency)

    def take(lease_store) -> int | None:
        try:
            return L.RunnerLease(lease_store, ttl_ms=10_000).acquire(attempts=3).generation
        except L.CheckpointInUse:
            return None

    races = []
    for trial in range(rounds):
        url = f"{root}/lease/race-{trial}"
        stores, outcomes, barrier = [store(url), store(url)], [], threading.Barrier(2)

        def racer(lease_store, barrier=barrier, outcomes=outcomes):
            barrier.wait()
            outcomes.append(take(lease_store))

        threads = [threading.Thread(target=racer, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        root_names = [status.getPath().getName() for status in stores[0]._fs.listStatus(stores[0]._root)]
        races.append({"outcomes": sorted(outcomes, key=str), "proven": [s._conditional for s in stores],
                      "names": sorted(stores[0].list_names(L.LEASE_DIR)), "root": sorted(root_names)})  # fmt: skip

    off = {"fs.s3a.create.conditional.enabled": "false"}
    refused_url = f"{root}/lease/off"
    try:
        take(store(refused_url, overrides=off))
        refused = None
    except L.ConditionalCreateUnavailable as err:
        refused = str(err)
    names_after_refusal = store(refused_url).list_names(L.LEASE_DIR)
    warning = io.StringIO()
    with contextlib.redirect_stderr(warning):
        best_effort = take(store(refused_url, "best_effort", off))
    return {"races": races, "refused": refused, "names_after_refusal": names_after_refusal,
            "best_effort": best_effort, "best_effort_warning": warning.getvalue()}  # fmt: skip


def _failure(spark, url: str, overrides: dict[str, str]) -> dict:
    jvm = spark._jvm
    started = time.monotonic()
    try:
        fs = _fs(spark, url, overrides)
        fs.listStatus(jvm.org.apache.hadoop.fs.Path(url))
        return {"error": None, "seconds": time.monotonic() - started}
    except Exception as err:
        return {"error": str(err)[:1500], "seconds": time.monotonic() - started}


def main() -> None:
    plan = json.load(sys.stdin)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master("local[1]").appName("s3-probe").config("spark.ui.enabled", "false")
    for key, value in plan["conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    root = f"s3a://{plan['bucket']}/{plan['prefix']}"
    result: dict = {}

    spark.range(100, 110).write.format("delta").save(f"{root}/spark_table")
    rs = spark.read.format("delta").load(f"{root}/rs_table")
    result["rs_table_ids"] = sorted(r.id for r in rs.collect())
    spark.range(10, 20).write.format("delta").mode("append").save(f"{root}/rs_table")
    result["airflow_file"] = [r.value for r in spark.read.text(f"{root}/from_airflow.txt").collect()]
    jvm = spark._jvm
    fs = _fs(spark, root, {})
    result["listing"] = sorted(s.getPath().getName() for s in fs.listStatus(jvm.org.apache.hadoop.fs.Path(root)))

    result["race_conditional"] = _race(spark, plan, f"{plan['prefix']}/race/on.json", conditional=True)
    result["race_plain"] = _race(spark, plan, f"{plan['prefix']}/race/off.json", conditional=False)
    started = time.monotonic()
    result["lease"] = _lease(spark, root)
    result["lease"]["seconds"] = round(time.monotonic() - started, 1)

    result["wrong_secret"] = _failure(spark, root, {"fs.s3a.secret.key": "not-the-secret"})
    result["missing_bucket"] = _failure(spark, f"s3a://{plan['bucket']}-missing/x", {})
    result["dead_endpoint"] = _failure(spark, root, {"fs.s3a.endpoint": plan["dead_endpoint"]})
    spark.stop()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
