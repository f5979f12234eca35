"""The stream runner's control protocol, shared by the runner (Spark side) and the hooks (Airflow side).

Stdlib only: the runner imports it inside the Spark driver, where Airflow is not
installed. Everything both sides must agree on lives here: the side files next
to the checkpoint, the lease's JSON, the Spark setting carrying the submission
tag, and the lease's default time-to-live.

Side files, relative to the checkpoint root::

    _leases/<generation>   the runner's lease and heartbeat (airflow_spark_streaming.runner.lease)
    _stop                  present: stop the query after its current micro-batch
    _progress/<batch>.json Spark's StreamingQueryProgress JSON, one per batch
    _submission            which driver the provider submitted on this checkpoint
    _staging/              files a cluster-mode driver reads once (spec, jars)
    _maintenance/          OPTIMIZE/VACUUM requests handed to the live runner, and their results
"""

from __future__ import annotations

LEASE_DIR = "_leases"  # one record per taker: <generation>, see airflow_spark_streaming.runner.lease
LEGACY_LEASE_FILE = "_lease"  # written by earlier runners; still honoured while its heartbeat is fresh
STOP_FILE = "_stop"
PROGRESS_DIR = "_progress"
SUBMISSION_FILE = "_submission"
STAGING_DIR = "_staging"

#: Which batch a lag or progress check reads: the newest committed one, or the newest planned one.
BATCH_BASES = ("committed", "planned")

#: The Spark setting carrying the submitting task's tag; the runner copies it into its lease.
SUBMISSION_CONF = "spark.airflow_spark_streaming.submission"
#: The same tag in the environment of a detached local driver (spark-submit, its JVM and the Python runner),
#: so that a kill by pid can check that the live process is the driver the provider started.
SUBMISSION_ENV = "AIRFLOW_SPARK_STREAMING_SUBMISSION"
_TAG_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def is_submission_tag(tag: object) -> bool:
    """A tag the provider writes (letters, digits, ``_`` and ``-``; a fresh one is 32 hex digits): safe in a file name."""
    return isinstance(tag, str) and 0 < len(tag) <= 64 and set(tag) <= _TAG_CHARS


def location_key(uri: str) -> str:
    """One spelling of a checkpoint location for comparing signed records: ``s3a://``/``s3n://`` as ``s3://``,
    ``file:`` dropped, ``.``/``..``/``//`` collapsed in a plain path, no trailing slash."""
    import posixpath

    for scheme in ("s3a://", "s3n://"):
        if uri.startswith(scheme):
            uri = "s3://" + uri[len(scheme) :]
    if uri.startswith("file:"):
        uri = "/" + uri[len("file:") :].lstrip("/")
    if "://" not in uri and uri:
        uri = posixpath.normpath(uri)
    return uri.rstrip("/") or "/"


#: The lease's time-to-live unless the spec sets ``lease_ttl_seconds``; also judges a torn lease.
DEFAULT_LEASE_TTL_SECONDS = 30
#: The spec's ``lease_consistency``: ``conditional`` (the default) requires an atomic create-if-absent for the lease
#: (on S3: a proven conditional create); ``best_effort`` takes it without and finds a double take at renewal.
LEASE_CONSISTENCY = ("conditional", "best_effort")
#: The runner's exit code when the checkpoint's store cannot take the lease atomically and best effort was not chosen.
EXIT_UNSAFE_LEASE_STORE = 5
#: The line the runner prints then, which the operator turns into ``UnsafeLeaseStoreError``.
UNSAFE_LEASE_STORE_MARKER = "the checkpoint lease needs an atomic create-if-absent"
#: Staged in ``_staging/`` for a standalone cluster-mode Python driver (see the standalone backend).
PYTHON_LAUNCHER_JAR = "python-driver-launcher.jar"
#: ``_staging/`` subfolder holding jars resolved for a standalone cluster-mode driver's executors.
STAGED_JARS_DIR = "jars"

#: The runner's command line: where its spec is, and that it deletes the spec once read.
SPEC_FILE_ARG, SPEC_URI_ARG, DELETE_SPEC_FILE_ARG = "--spec-file", "--spec-uri", "--delete-spec-file"


def staged_spec_name(tag: str) -> str:
    """The spec staged in ``_staging/`` for the driver of submission ``tag``; the runner deletes it once read."""
    if not is_submission_tag(tag):
        raise ValueError(f"{tag!r} is not a submission tag; it cannot name a staged file")
    return f"spec-{tag}.json"


#: Progress files the runner keeps (the newest ones).
PROGRESS_KEEP = 200

FILE_FORMATS = ("json", "csv", "parquet", "text", "orc")
SOURCE_FORMATS = ("kafka", "rate", "delta", *FILE_FORMATS)
PATH_SINKS = ("delta", "parquet", "json", "csv", "orc")
SINK_FORMATS = (*PATH_SINKS, "kafka", "console")


def progress_file(batch_id: int) -> str:
    """The name of batch ``batch_id``'s progress event in ``_progress/``."""
    return f"{batch_id}.json"


def progress_batch(name: str) -> int | None:
    """The batch id of a ``_progress/`` file name, or ``None`` for anything else."""
    stem = name.removesuffix(".json")
    # ASCII digits only, as the runner writes them: "²".isdigit() is true, and int("²") raises.
    return int(stem) if name.endswith(".json") and 0 < len(stem) <= 19 and stem.isascii() and stem.isdigit() else None


#: Maintenance handed to the live stream runner (``jobs/maintenance_handoff.py``): requests and results.
MAINTENANCE_DIR = "_maintenance"
#: Written by a runner that takes maintenance requests: ``{"protocol", "app_id", "table"}``.
MAINTENANCE_HANDOFF_FILE = "_handoff"
MAINTENANCE_PROTOCOL = 1
MAINTENANCE_RESULT_SUFFIX = ".result.json"
_REQUEST_ID_CHARS = frozenset("0123456789abcdef")


def maintenance_request_file(request_id: str) -> str:
    return f"{request_id}.json"


def maintenance_result_file(request_id: str) -> str:
    return f"{request_id}{MAINTENANCE_RESULT_SUFFIX}"


def maintenance_request_id(name: str) -> str | None:
    """The request id of a ``_maintenance/`` request file name (32 hex digits), or ``None``."""
    stem = name.removesuffix(".json")
    return stem if name.endswith(".json") and len(stem) == 32 and set(stem) <= _REQUEST_ID_CHARS else None


def same_table(a: str, b: str) -> bool:
    """Two table locations name the same table (``s3a://``, ``s3n://`` and ``s3://`` alike; ``file://`` or not)."""

    def norm(uri: str) -> str:
        for scheme in ("s3a://", "s3n://"):
            if uri.startswith(scheme):
                uri = "s3://" + uri[len(scheme) :]
        return uri.removeprefix("file://").rstrip("/")

    return norm(a) == norm(b)
