"""Faster spark-submit start-ups in the test session: a class-data-sharing archive of Spark's classes.

A spark-submit in client mode is one JVM (the driver) that loads and verifies some ten thousand classes
from the pyspark wheel's ``jars/`` before the job does anything. Java's application class-data sharing
(AppCDS) maps them, already parsed and verified, from an archive instead. The archive is made once for a
JDK and a set of Spark jars, by a small Delta job run with ``-XX:ArchiveClassesAtExit``, kept in the
project's cache and given to every spark-submit of the session through ``SPARK_SUBMIT_OPTS``.

The JVM checks the archive against its own class path (every jar's path, size and time) and, when they
differ, logs one warning and runs without it: a test whose own ``SPARK_CONF_DIR`` puts a folder first on
the class path loses the speed-up, nothing else. A JVM warns on standard output by default; here its
warnings go to standard error, where spark-submit's own log lines are. A failed build warns and the
session runs without an archive. Jars given with ``--jars`` (Delta, Kafka) load through Spark's own class
loader and are not in the archive.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

FORMAT = "1"  # bump to rebuild every cached archive
KEEP_DAYS = 14  # an archive no session used for this long is removed (one per virtualenv and JDK)
BUILD_TIMEOUT = 600

_JOB = """\
import sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.getOrCreate()
path = sys.argv[1]
spark.range(100).selectExpr("id", "cast(id as string) AS s").write.format("delta").save(path)
assert spark.read.format("delta").load(path).where("id < 10").count() == 10
spark.stop()
"""


def archive_key(spark_home: Path, java: str) -> str:
    """What the archive depends on: the JDK, and every Spark jar's path, size and time."""
    version = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False).stderr
    digest = hashlib.sha256(f"{FORMAT}\n{os.path.realpath(java)}\n{version}\n".encode())
    for jar in sorted((spark_home / "jars").glob("*.jar")):
        stat = jar.stat()
        digest.update(f"{jar}\n{stat.st_size}\n{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    return str(Path(java_home) / "bin" / "java") if java_home else (shutil.which("java") or "java")


def class_archive(
    spark_home: Path, cache: Path, *, jars: Sequence[str], conf: Mapping[str, str], env: Mapping[str, str]
) -> Path | None:
    """The archive for this JDK and Spark, built now if the cache lacks it; ``None`` if it cannot be built."""
    folder = cache / "class-archives"
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / f"spark-{archive_key(spark_home, java_executable())}.jsa"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build at a time; a second session waits, then uses it
        if not archive.exists():
            _build(archive, spark_home, jars=jars, conf=conf, env=env)
        _prune(folder, keep=archive)
    if not archive.exists():
        return None
    os.utime(archive)
    return archive


def _build(archive: Path, spark_home: Path, *, jars: Sequence[str], conf: Mapping[str, str], env: Mapping[str, str]):
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="class-archive-", dir=archive.parent) as work:
        work_dir = Path(work)
        job = work_dir / "warm_up.py"
        job.write_text(_JOB)
        partial = work_dir / "spark.jsa"
        build_env = dict(env)
        # The archive records the class path; the tests' default one has no configuration folder first
        # (and the JVM refuses to archive a class path holding a non-empty folder).
        build_env.pop("SPARK_CONF_DIR", None)
        build_env["SPARK_SUBMIT_OPTS"] = " ".join(
            filter(None, [env.get("SPARK_SUBMIT_OPTS"), f"-Djava.io.tmpdir={work_dir}",
                          f"-XX:ArchiveClassesAtExit={partial}"])
        )  # fmt: skip
        command = [str(spark_home / "bin" / "spark-submit"), "--master", "local[2]"]
        for key, value in {**conf, "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}.items():
            command += ["--conf", f"{key}={value}"]
        if jars:
            command += ["--jars", ",".join(jars)]
        command += [str(job), str(work_dir / "table")]
        log = archive.with_suffix(".log")
        try:
            with open(log, "w") as output:
                done = subprocess.run(command, env=build_env, stdout=output, stderr=subprocess.STDOUT,
                                      timeout=BUILD_TIMEOUT, check=False)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as error:
            warnings.warn(f"no class-data archive for spark-submit ({error}); see {log}", stacklevel=3)
            return
        if done.returncode != 0 or not partial.exists():
            warnings.warn(
                f"no class-data archive for spark-submit: its build exited {done.returncode}; see {log}",
                stacklevel=3,
            )
            return
        os.replace(partial, archive)
        with contextlib.suppress(OSError):
            log.unlink()
    print(f"\nclass-data archive for spark-submit built in {time.monotonic() - started:.0f} s: {archive}")


def _prune(folder: Path, keep: Path) -> None:
    horizon = time.time() - KEEP_DAYS * 86400
    for old in folder.glob("spark-*.jsa"):
        with contextlib.suppress(OSError):
            if old != keep and old.stat().st_mtime < horizon:
                old.unlink()


def submit_opts_with(archive: Path, submit_opts: str | None) -> str:
    """``SPARK_SUBMIT_OPTS`` that use ``archive``, with the JVM's own warnings on standard error."""
    return " ".join(
        filter(None, [submit_opts, f"-XX:SharedArchiveFile={archive}", "-Xlog:disable", "-Xlog:all=warning:stderr"])
    )
