"""The local JDK: find it and check its version before starting Spark or Kafka here."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from airflow_spark_streaming.exceptions import JavaNotFoundError, JavaVersionError
from airflow_spark_streaming.spark.jvm import MIN_JAVA_VERSION, SPARK_VERSION, spark_home
from devstack.errors import LocalStackError

_JAVA_VERSION = re.compile(r'version "(?P<version>[^"]+)"')


def java_executable() -> Path:
    """The ``java`` of ``JAVA_HOME`` if set, else the one on the ``PATH``."""
    java_home = os.environ.get("JAVA_HOME")
    if java_home:
        candidate = Path(java_home) / "bin" / "java"
        if candidate.is_file():
            return candidate
        raise JavaNotFoundError(
            f"JAVA_HOME is {java_home!r} but {candidate} does not exist; "
            f"point JAVA_HOME at a JDK {MIN_JAVA_VERSION}+ or unset it to use java from the PATH."
        )
    found = shutil.which("java")
    if not found:
        raise JavaNotFoundError(
            f"No 'java' on the PATH and JAVA_HOME is not set; Spark {SPARK_VERSION} needs "
            f"Java {MIN_JAVA_VERSION} or newer: install a JDK {MIN_JAVA_VERSION}+ and set JAVA_HOME."
        )
    return Path(found)


def parse_java_major(version_output: str) -> int:
    """The major version from ``java -version`` output (``1.8.0_x`` is 8)."""
    match = _JAVA_VERSION.search(version_output)
    if not match:
        raise JavaNotFoundError(
            f"Could not read a version from 'java -version' output {version_output.strip()[:200]!r}; "
            "check that JAVA_HOME points at a working JDK."
        )
    parts = match.group("version").split(".")
    major = int(re.sub(r"\D.*", "", parts[1] if parts[0] == "1" else parts[0]) or 0)
    return major


def check_java(minimum: int = MIN_JAVA_VERSION) -> int:
    """Return the Java major version, or raise if Java is missing or too old."""
    java = java_executable()
    try:
        done = subprocess.run([str(java), "-version"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise JavaNotFoundError(f"Running '{java} -version' failed ({err}); check the JDK installation.") from err
    major = parse_java_major(done.stderr + done.stdout)
    if major < minimum:
        raise JavaVersionError(
            f"{java} is Java {major}, but Spark {SPARK_VERSION} needs Java {minimum} or newer; "
            f"install a JDK {minimum}+ and point JAVA_HOME at it."
        )
    return major


def spark_script(name: str) -> str:
    """A script of the pinned pyspark's ``bin/`` (``spark-submit``, ``spark-class``), else one on the ``PATH``."""
    home = spark_home()
    found = str(home / "bin" / name) if home else shutil.which(name)
    if not found:
        raise LocalStackError(
            f"No {name!r} found beside the Python interpreter or on the PATH; install the "
            "pinned pyspark into this environment (pip install -c constraints.txt -e .)."
        )
    return found
