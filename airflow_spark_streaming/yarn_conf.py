"""Spark settings and spark-submit environment for a Python driver on YARN: the one place that knows them.

YARN containers start from nothing: a JVM from the node's ``JAVA_HOME`` and whatever the submitter
ships or names. A pip-installed pyspark needs four things settled:

- **Python**: the driver (in the ApplicationMaster, cluster mode) and the executors run the
  interpreter named by ``spark.pyspark.python`` / ``PYSPARK_PYTHON``; point both at the project's
  virtualenv, which nodes see at the same path on a single machine or identical images.
- **pyspark and py4j on PYTHONPATH**: spark-submit ships ``$SPARK_HOME/python/lib/pyspark.zip`` and the
  py4j zip (the pyspark 4.2 wheel has both) unless ``PYSPARK_ARCHIVES_PATH`` names them; ``local:`` paths
  are put on the containers' PYTHONPATH as they are, without an upload.
- **Spark's jars**: without ``spark.yarn.jars`` or ``spark.yarn.archive`` every submit uploads
  ``$SPARK_HOME/jars`` (about 450 MB in the wheel); ``local:<spark_home>/jars/*`` reads them in place.
- **Delta and Kafka jars**: ``--packages`` works on YARN (the submitter resolves them with Ivy and
  uploads the jars to the staging dir); jars resolved beforehand (``jvm_resolver = maven``) can be
  handed over as ``local:`` paths instead, which :func:`yarn_jars` does.

spark-submit itself needs ``HADOOP_CONF_DIR`` (or ``YARN_CONF_DIR``) in its environment to find the
ResourceManager; :func:`yarn_submit_settings` checks it, since a missing one fails only inside
spark-submit with a less helpful message.

Only the standard library is imported here.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from airflow_spark_streaming.exceptions import SparkSubmissionError


@dataclass(frozen=True)
class YarnSubmitSettings:
    """What spark-submit needs for YARN: ``--conf`` values and environment variables."""

    conf: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def yarn_submit_settings(
    *,
    spark_home: str | os.PathLike[str],
    python: str | None = None,
    shared_paths: bool = True,
    environ: Mapping[str, str] | None = None,
    local_ip: str | None = None,
) -> YarnSubmitSettings:
    """Spark conf and spark-submit environment for a Python application on YARN.

    :param spark_home: the pyspark (or Spark) installation spark-submit runs from.
    :param python: the interpreter the containers run; defaults to this one (the project's virtualenv).
    :param shared_paths: the YARN nodes see this host's ``spark_home`` and ``python`` at the same paths
        (one machine, or every node built from the same image). Then jars, pyspark and Python are used
        in place (``local:``). If not, only ``python`` is set, and only when given explicitly; Spark
        then uploads its jars and the pyspark zips.
    :param environ: the environment spark-submit will run with (defaults to ``os.environ``); must hold
        ``HADOOP_CONF_DIR`` or ``YARN_CONF_DIR``.
    :param local_ip: the address the driver and executors bind (``SPARK_LOCAL_IP`` in the containers).
    """
    environ = os.environ if environ is None else environ
    conf_dir = environ.get("HADOOP_CONF_DIR") or environ.get("YARN_CONF_DIR")
    if not conf_dir:
        raise SparkSubmissionError(
            "spark-submit to YARN needs HADOOP_CONF_DIR or YARN_CONF_DIR in its environment (the folder with "
            "yarn-site.xml and core-site.xml); set it on the Airflow worker or in the task's env_vars."
        )
    if not Path(conf_dir, "yarn-site.xml").is_file():
        raise SparkSubmissionError(
            f"HADOOP_CONF_DIR/YARN_CONF_DIR is {conf_dir!r} but it holds no yarn-site.xml; point it at the "
            "cluster's client configuration."
        )
    home = Path(spark_home)
    conf: dict[str, str] = {}
    env = {"HADOOP_CONF_DIR": conf_dir, "YARN_CONF_DIR": environ.get("YARN_CONF_DIR") or conf_dir}
    interpreter = python or (sys.executable if shared_paths else None)
    if interpreter:
        conf["spark.pyspark.python"] = interpreter
        conf["spark.pyspark.driver.python"] = interpreter
        # Spark's Python runner also reads the environment; set it in the AM and the executors alike.
        conf["spark.yarn.appMasterEnv.PYSPARK_PYTHON"] = interpreter
        conf["spark.executorEnv.PYSPARK_PYTHON"] = interpreter
    if local_ip:
        conf["spark.yarn.appMasterEnv.SPARK_LOCAL_IP"] = local_ip
        conf["spark.executorEnv.SPARK_LOCAL_IP"] = local_ip
    if shared_paths:
        jars = home / "jars"
        if not jars.is_dir():
            raise SparkSubmissionError(f"{jars} does not exist: spark_home {home} is not a Spark installation.")
        conf["spark.yarn.jars"] = f"local:{jars}/*"
        archives = _pyspark_archives(home)
        if archives:
            env["PYSPARK_ARCHIVES_PATH"] = ",".join(f"local:{a}" for a in archives)
    return YarnSubmitSettings(conf=conf, env=env)


def yarn_jars(jars: Iterable[str], *, shared_paths: bool = True) -> list[str]:
    """``--jars`` entries for YARN: local files as ``local:`` paths when the nodes share them, else unchanged."""
    converted = []
    for jar in jars:
        is_local_file = "://" not in jar and not jar.startswith("local:")
        converted.append(
            f"local:{Path(jar.removeprefix('file:')).resolve()}" if shared_paths and is_local_file else jar
        )
    return converted


def _pyspark_archives(spark_home: Path) -> list[Path]:
    lib = spark_home / "python" / "lib"
    pyspark_zip = lib / "pyspark.zip"
    py4j = sorted(lib.glob("py4j-*-src.zip"))
    return [pyspark_zip, *py4j[-1:]] if pyspark_zip.is_file() and py4j else []
