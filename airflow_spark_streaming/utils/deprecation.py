"""Renamed parameters keep working for one release, with a warning that names the new spelling.

The provider uses one name per kind of connection everywhere: ``spark_conn_id``,
``kafka_config_id`` (as in the Kafka provider) and ``storage_conn_id``.
"""

from __future__ import annotations

import warnings
from typing import Any

from airflow_spark_streaming.exceptions import SparkStreamingError

#: The release in which the old spellings stop working.
REMOVAL_RELEASE = "0.3.0"


class ProviderDeprecationWarning(DeprecationWarning):
    """A parameter or call of airflow-spark-streaming that goes away in :data:`REMOVAL_RELEASE`."""


class ConflictingParametersError(SparkStreamingError, TypeError):
    """A renamed parameter was given under both its old and its new name."""


def renamed_parameter(owner: str, old: str, new: str, old_value: Any, new_value: Any, default: Any = None) -> Any:
    """Return the value of ``new``, accepting ``old`` with a :class:`ProviderDeprecationWarning`.

    ``old_value`` and ``new_value`` are what the caller received, ``None`` meaning
    not given. Giving both is refused, because one of them would be dropped silently.
    """
    if old_value is None:
        return default if new_value is None else new_value
    if new_value is not None and new_value != default:
        raise ConflictingParametersError(
            f"{owner} got both {old}={old_value!r} and {new}={new_value!r}; {old} is the old name of {new}: pass only {new}."
        )
    warnings.warn(
        f"{owner}: {old} is deprecated and goes away in airflow-spark-streaming {REMOVAL_RELEASE}; pass {new} instead.",
        ProviderDeprecationWarning,
        stacklevel=3,
    )
    return old_value
