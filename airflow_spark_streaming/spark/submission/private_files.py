"""Files that carry what must stay off spark-submit's command line: the runner's spec and every Spark setting.

spark-submit gets its Spark settings in one 0600 properties file: the secret ones
written here when a run is prepared, every other ``--conf`` pair appended when its
command is built (:func:`~airflow_spark_streaming.spark.submission.spark_compat.seal_spark_settings`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_spark_streaming.exceptions import ControlPathOutsideRunError, SparkSubmissionError
from airflow_spark_streaming.runner.protocol import DELETE_SPEC_FILE_ARG, SPEC_FILE_ARG
from airflow_spark_streaming.spark.submission.models import SparkJob
from airflow_spark_streaming.utils.redaction import properties_text

SPEC_FILE = "spec.json"
PROPERTIES_FILE = "secret.properties"
DRIVER_LOG = "driver.log"


def drivers_root() -> Path:
    """Where detached local drivers get their private folders: ``<cache>/drivers`` (``spark.jvm.cache_dir``)."""
    from airflow_spark_streaming.spark.jvm import cache_dir

    return cache_dir() / "drivers"


def driver_folder(label: str, tag: str) -> Path:
    """The private folder of the detached driver of submission ``tag`` (spec, secrets and log)."""
    return drivers_root() / f"{label.replace('/', '_').replace(os.sep, '_')}-{tag}"


def confined_driver_log(path: str | os.PathLike, tag: str) -> Path:
    """``path``, resolved, if it is the driver log inside the private folder of submission ``tag``.

    Symlinks and ``..`` are resolved first; anything else raises :class:`ControlPathOutsideRunError`:
    a path taken from a record is never read or cleaned up outside the provider's own folder.
    """
    root = drivers_root().resolve()
    resolved = Path(os.path.realpath(path))
    folder = resolved.parent
    if resolved.name != DRIVER_LOG or folder.parent != root or not folder.name.endswith(f"-{tag}") or not tag:
        raise ControlPathOutsideRunError(
            f"The driver log named by submission {tag!r} is not this run's log inside the provider's driver folder "
            f"({root}); it was neither read nor cleaned up."
        )
    return resolved


def write_private_files(
    directory: Path, *, spec: Mapping[str, Any] | None = None, secret_conf: Mapping[str, str] | None = None
) -> tuple[str | None, str]:
    """Write the spec and the Spark properties file (``secret_conf`` first) into ``directory``, each 0600.

    Returns their paths; the spec's is ``None`` without a spec. The properties file is always
    written: spark-submit's other settings are appended to it when its command is built.
    """
    spec_file = None
    if spec is not None:
        spec_file = str(directory / SPEC_FILE)
        write_private(spec_file, json.dumps(spec))
    properties_file = str(directory / PROPERTIES_FILE)
    write_private(properties_file, properties_text(secret_conf or {}))
    return spec_file, properties_file


def append_private_properties(path: str, settings: Mapping[str, str]) -> None:
    """Append ``settings`` to the private properties file ``path`` (later entries win); it must exist and be 0600."""
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "ab") as handle:
        if os.fstat(handle.fileno()).st_mode & 0o077:
            raise SparkSubmissionError(
                f"The Spark properties file {path} is readable by others; Spark settings are written only to a "
                "file readable by its owner alone (mode 0600)."
            )
        handle.write(properties_text(settings).encode())


def write_job_files(directory: Path, job: SparkJob) -> tuple[list[str], str]:
    """Write ``job``'s spec and secret settings into ``directory``; return its arguments and properties file.

    A job with a spec (the stream runner) is told where its spec file is, and to delete it once read.
    """
    spec_file, properties_file = write_private_files(directory, spec=job.spec, secret_conf=job.secret_conf)
    args = [SPEC_FILE_ARG, spec_file, DELETE_SPEC_FILE_ARG] if spec_file else list(job.application_args)
    return args, properties_file


def write_private(path: str, text: str | bytes) -> None:
    """Create ``path`` readable by its owner only (never a moment world-readable); it must not exist yet."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)
