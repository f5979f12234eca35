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


#: A client's yarn-site.xml is small; a larger file is not one.
MAX_SITE_FILE_BYTES = 4 * 1024 * 1024


def _site_properties(conf_dir: str) -> dict[str, str]:
    import xml.etree.ElementTree as ET

    path = Path(conf_dir, "yarn-site.xml")
    with open(path, "rb") as handle:
        data = handle.read(MAX_SITE_FILE_BYTES + 1)
    if len(data) > MAX_SITE_FILE_BYTES:
        raise SparkSubmissionError(f"{path} is larger than {MAX_SITE_FILE_BYTES} bytes: not a yarn-site.xml.")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as err:
        raise SparkSubmissionError(f"{path} is not valid XML ({err}); point HADOOP_CONF_DIR at the cluster's.") from err
    return {
        (prop.findtext("name") or "").strip(): (prop.findtext("value") or "").strip() for prop in root.iter("property")
    }


def resource_manager_web_url(environ: Mapping[str, str] | None = None) -> str | None:
    """The ResourceManager's web (REST) address from the client configuration, as YARN's clients find it.

    Reads ``yarn-site.xml`` in ``HADOOP_CONF_DIR``/``YARN_CONF_DIR``: the web address for the HTTP
    policy (``yarn.resourcemanager.webapp[.https].address``), else ``yarn.resourcemanager.hostname``
    with YARN's default port (8088, or 8090 for ``HTTPS_ONLY``). With ResourceManager HA the first
    of ``yarn.resourcemanager.ha.rm-ids``: a standby ResourceManager redirects REST calls to the active
    one. ``${name}`` references are expanded from the same file. ``None`` when the file names no
    address a client can use (none, or the wildcard ``0.0.0.0``).
    """
    environ = os.environ if environ is None else environ
    conf_dir = environ.get("HADOOP_CONF_DIR") or environ.get("YARN_CONF_DIR")
    if not conf_dir or not Path(conf_dir, "yarn-site.xml").is_file():
        return None
    props = _site_properties(conf_dir)
    https = props.get("yarn.http.policy", "HTTP_ONLY").upper() == "HTTPS_ONLY"
    key = "yarn.resourcemanager.webapp.https.address" if https else "yarn.resourcemanager.webapp.address"
    suffix = ""
    if props.get("yarn.resourcemanager.ha.enabled", "").lower() == "true":
        rm_ids = [i.strip() for i in props.get("yarn.resourcemanager.ha.rm-ids", "").split(",") if i.strip()]
        suffix = f".{rm_ids[0]}" if rm_ids else ""
    hostname = props.get(f"yarn.resourcemanager.hostname{suffix}") or props.get("yarn.resourcemanager.hostname")
    address = props.get(f"{key}{suffix}") or (f"{hostname}:{8090 if https else 8088}" if hostname else "")
    for _ in range(5):  # Hadoop expands variables recursively, to a small depth
        if "${" not in address:
            break
        start = address.index("${")
        end = address.find("}", start)
        if end < 0:
            break  # unterminated: left in place, so no address is returned
        address = address[:start] + props.get(address[start + 2 : end], "") + address[end + 1 :]
    host = address.rsplit(":", 1)[0]
    if not host or host == "0.0.0.0" or "${" in address:
        return None
    return f"{'https' if https else 'http'}://{address}"
