"""The project's error hierarchy.

Every error the provider raises on bad input or a broken environment is a
:class:`SparkStreamingError`, which is also an :class:`AirflowException`, so a
task fails with a message that names the problem and the fix.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException


class SparkStreamingError(AirflowException):
    """Base class of every error raised by airflow-spark-streaming."""


class JvmEnvironmentError(SparkStreamingError):
    """The Java runtime needed to run Spark or Kafka is missing or unusable."""


class JavaNotFoundError(JvmEnvironmentError):
    """No ``java`` executable on ``JAVA_HOME`` or the ``PATH``."""


class JavaVersionError(JvmEnvironmentError):
    """The Java runtime is older than the version Spark 4 needs."""


class JvmDependencyError(SparkStreamingError):
    """The Spark packages (Delta, the Kafka connector) could not be resolved."""


class MavenNotFoundError(JvmDependencyError):
    """The Maven-jar fallback was asked for, but ``mvn`` is not installed."""


class MavenResolutionError(JvmDependencyError):
    """Maven could not download the requested coordinates (often: the repository is unreachable)."""


class InvalidMavenCoordinateError(JvmDependencyError):
    """A package is not of the form ``group:artifact:version``."""
