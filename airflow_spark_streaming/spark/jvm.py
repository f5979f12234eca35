"""JVM-side dependencies: the one place that owns the Maven coordinates.

Spark work submitted by this provider needs Delta Lake and, for Kafka sources
and sinks, Spark's Kafka connector. Both come from Maven Central through
Spark's own ``--packages`` mechanism (Ivy), cached after the first run. Where
Ivy cannot be used, the same coordinates are resolved with Maven into a local
cache and handed to Spark as ``--jars`` (``resolver="maven"``).

Only the standard library is imported here, so importing it costs nothing on
the DAG-parse path.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from airflow_spark_streaming.exceptions import (
    InvalidMavenCoordinateError,
    MavenNotFoundError,
    MavenResolutionError,
)

SPARK_VERSION = "4.2.0"
SCALA_BINARY_VERSION = "2.13"
# The newest Delta release whose jar for Spark 4.2 is on Maven Central; the
# Python package of the same version is pinned in constraints.txt, so
# ``delta.configure_spark_with_delta_pip`` computes these same coordinates.
DELTA_VERSION = "4.4.0"
_SPARK_MAJOR_MINOR = ".".join(SPARK_VERSION.split(".")[:2])

DELTA_SPARK_PACKAGE = f"io.delta:delta-spark_{_SPARK_MAJOR_MINOR}_{SCALA_BINARY_VERSION}:{DELTA_VERSION}"
KAFKA_SQL_PACKAGE = f"org.apache.spark:spark-sql-kafka-0-10_{SCALA_BINARY_VERSION}:{SPARK_VERSION}"
# S3A must match the Hadoop client inside the pyspark wheel (hadoop-client-api 3.5.0);
# the AWS SDK v2 bundle is the version hadoop-aws 3.5.0 itself declares.
HADOOP_VERSION = "3.5.0"
AWS_SDK_VERSION = "2.35.4"
HADOOP_AWS_PACKAGE = f"org.apache.hadoop:hadoop-aws:{HADOOP_VERSION}"
AWS_SDK_BUNDLE_PACKAGE = f"software.amazon.awssdk:bundle:{AWS_SDK_VERSION}"
S3A_PACKAGES = (HADOOP_AWS_PACKAGE, AWS_SDK_BUNDLE_PACKAGE)
# Schemes Spark reaches through S3A (s3:// and s3n:// are mapped onto it by the storage settings).
S3_SCHEMES = ("s3a://", "s3://", "s3n://")

DELTA_SPARK_CONF: dict[str, str] = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

MIN_JAVA_VERSION = 17  # Spark 4's floor; devstack.java checks the local JDK against it
RESOLVERS = ("packages", "maven")

# Ivy settings with Maven Central as the only remote and without Spark's
# default "local-m2-cache" resolver: that resolver finds the .pom files Maven
# leaves in ~/.m2 without their jars and then fails the whole resolution.
IVY_SETTINGS_FILE = Path(__file__).with_name("ivysettings.xml")

_COORDINATE = re.compile(r"^[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+:[A-Za-z0-9_.\-]+$")
# "<artifact>-<version>.jar", where the version is the last dash-part starting "<digits>.<digits>".
_JAR_NAME = re.compile(r"^(?P<artifact>.+)-(?P<version>\d+(?:\.\d+)+[^_]*)\.jar$")


@dataclass(frozen=True)
class JvmDependencies:
    """What spark-submit needs to load the JVM packages of a job.

    Either ``packages`` (resolved by Spark's Ivy at submit time) or ``jars``
    (resolved beforehand) is filled, never both for the same coordinate.
    """

    packages: tuple[str, ...] = ()
    jars: tuple[str, ...] = ()
    conf: dict[str, str] = field(default_factory=dict)

    def submit_kwargs(self) -> dict[str, object]:
        """Keyword arguments for the Spark provider's ``SparkSubmitHook``."""
        return {
            "packages": ",".join(self.packages) or None,
            "jars": ",".join(self.jars) or None,
            "conf": dict(self.conf),
        }

    def session_conf(self) -> dict[str, str]:
        """The same dependencies as SparkSession builder settings."""
        settings = dict(self.conf)
        if self.packages:
            settings["spark.jars.packages"] = ",".join(self.packages)
        if self.jars:
            settings["spark.jars"] = ",".join(self.jars)
        return settings


def validate_coordinate(coordinate: str) -> str:
    """Return ``coordinate`` stripped, or raise if it is not ``group:artifact:version``."""
    candidate = coordinate.strip()
    if not _COORDINATE.match(candidate):
        raise InvalidMavenCoordinateError(
            f"Spark package {coordinate!r} is not a Maven coordinate; "
            "write it as 'group:artifact:version', for example "
            f"'{KAFKA_SQL_PACKAGE}'."
        )
    return candidate


def uses_s3(*paths: str | None) -> bool:
    """Whether any of ``paths`` (checkpoints, tables, sources) lives on S3, so the job needs S3A."""
    return any(isinstance(p, str) and p.strip().lower().startswith(S3_SCHEMES) for p in paths)


def spark_packages(
    *, delta: bool = True, kafka: bool = False, s3: bool = False, extra_packages: Iterable[str] = ()
) -> list[str]:
    """The Maven coordinates a job needs, validated and without repeats."""
    wanted = ([DELTA_SPARK_PACKAGE] if delta else []) + ([KAFKA_SQL_PACKAGE] if kafka else [])
    wanted += list(S3A_PACKAGES) if s3 else []
    wanted += [validate_coordinate(p) for p in extra_packages]
    return list(dict.fromkeys(wanted))


def cache_dir() -> Path:
    """Where resolved jars and local tools are cached between runs."""
    configured = os.environ.get("AIRFLOW_SPARK_STREAMING_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "airflow-spark-streaming"


def default_resolver() -> str:
    """The resolver named by ``[spark_streaming] jvm_resolver``, else ``packages``."""
    from airflow.sdk import conf  # deferred: only needed when a job is built

    return conf.get("spark_streaming", "jvm_resolver", fallback="packages")


def resolve_jvm_dependencies(
    *,
    delta: bool = True,
    kafka: bool = False,
    s3: bool = False,
    extra_packages: Iterable[str] = (),
    extra_jars: Iterable[str] = (),
    resolver: str | None = None,
    user_conf: dict[str, str] | None = None,
) -> JvmDependencies:
    """Work out the packages, jars and Spark settings for one job.

    :param delta: load Delta Lake and its SQL extensions.
    :param kafka: load Spark's Kafka connector.
    :param s3: load S3A (``hadoop-aws`` and its AWS SDK); see :func:`uses_s3`.
    :param extra_packages: more Maven coordinates the job needs.
    :param extra_jars: jar paths or URLs passed through unchanged.
    :param resolver: ``packages`` (Spark's Ivy) or ``maven`` (resolve now with
        Maven, pass jars); defaults to ``[spark_streaming] jvm_resolver``.
    :param user_conf: the job's own Spark settings; an Ivy settings file or
        repositories set there are respected.
    """
    resolver = resolver or default_resolver()
    if resolver not in RESOLVERS:
        raise InvalidMavenCoordinateError(f"jvm resolver {resolver!r} is unknown; use one of {', '.join(RESOLVERS)}.")
    packages = spark_packages(delta=delta, kafka=kafka, s3=s3, extra_packages=extra_packages)
    jars = [str(j) for j in extra_jars]
    conf = dict(DELTA_SPARK_CONF) if delta else {}
    user_conf = user_conf or {}
    if resolver == "maven":
        home = spark_home()
        provided = provided_artifacts(home / "jars") if home else set()
        resolved = [p for p in resolve_with_maven(packages) if jar_artifact(p.name) not in provided]
        jars = [str(p) for p in resolved] + jars
        packages = []
    elif packages and not ({"spark.jars.ivySettings", "spark.jars.repositories"} & user_conf.keys()):
        conf["spark.jars.ivySettings"] = str(IVY_SETTINGS_FILE)
    return JvmDependencies(packages=tuple(packages), jars=tuple(jars), conf=conf)


def jar_artifact(file_name: str) -> str:
    """The artifact id of a jar file name such as ``kafka-clients-3.9.2.jar``."""
    match = _JAR_NAME.match(file_name)
    return match.group("artifact") if match else file_name.removesuffix(".jar")


def provided_artifacts(spark_jars: Path) -> set[str]:
    """Artifacts Spark itself ships: the Maven fallback must not pass a second copy."""
    return {jar_artifact(p.name) for p in spark_jars.glob("*.jar")}


def spark_home() -> Path | None:
    """``SPARK_HOME`` if set, else the pyspark package folder (its ``bin/`` has spark-submit).

    The folder is found without importing pyspark.
    """
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _pom(coordinates: Sequence[str]) -> str:
    dependencies = []
    for coordinate in coordinates:
        group, artifact, version = (escape(part) for part in coordinate.split(":"))
        dependencies.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">'
        "<modelVersion>4.0.0</modelVersion><groupId>local.resolve</groupId>"
        "<artifactId>jvm-deps</artifactId><version>1</version><packaging>pom</packaging>"
        f"<dependencies>{''.join(dependencies)}</dependencies></project>"
    )


def resolve_with_maven(coordinates: Sequence[str], *, target: Path | None = None, timeout: float = 900) -> list[Path]:
    """Download ``coordinates`` and their runtime dependencies with Maven.

    The jars land in a folder named after the coordinate set under
    :func:`cache_dir`; a second call with the same set reuses it without
    running Maven. The folder only appears once Maven has succeeded, so a
    failed or interrupted download never leaves a half-filled cache.
    """
    coordinates = [validate_coordinate(c) for c in coordinates]
    if not coordinates:
        return []
    key = hashlib.sha256("\n".join(sorted(coordinates)).encode()).hexdigest()[:16]
    target = target or cache_dir() / "maven-jars" / key
    if target.is_dir():
        return sorted(target.glob("*.jar"))
    mvn = shutil.which("mvn")
    if not mvn:
        raise MavenNotFoundError(
            "The 'maven' JVM resolver needs Maven, but 'mvn' is not on the PATH; install Maven 3.8+ "
            "or use the 'packages' resolver (Spark's --packages)."
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        Path(work, "pom.xml").write_text(_pom(coordinates))
        staging = Path(work, "jars")
        command = [
            mvn, "-B", "-q", "-f", str(Path(work, "pom.xml")),
            "dependency:copy-dependencies", f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
        ]  # fmt: skip
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as err:
            raise MavenResolutionError(
                f"Maven did not resolve {', '.join(coordinates)} within {timeout:.0f}s; "
                "check that Maven Central (or your mirror in ~/.m2/settings.xml) is reachable."
            ) from err
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise MavenResolutionError(
                f"Maven could not resolve {', '.join(coordinates)} (exit {done.returncode}); check that "
                f"Maven Central or your mirror in ~/.m2/settings.xml is reachable. Maven said:\n{tail}"
            )
        staging.mkdir(exist_ok=True)
        try:
            os.replace(staging, target)
        except OSError:
            if not target.is_dir():  # another process may have filled the cache first
                raise
    return sorted(target.glob("*.jar"))
