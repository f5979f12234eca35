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


class CheckpointError(SparkStreamingError):
    """A Structured Streaming checkpoint cannot be read as Spark wrote it."""


class CheckpointNotFoundError(CheckpointError):
    """The checkpoint path does not exist, or holds nothing Spark wrote."""


class CheckpointMetadataMissingError(CheckpointError):
    """The checkpoint has logs but no ``metadata`` file with the query id."""


class CorruptCheckpointFileError(CheckpointError):
    """An offsets, commits or metadata file is truncated or is not in Spark's format."""


class UnsupportedCheckpointVersionError(CheckpointError):
    """A log file's version header is newer than this provider can read."""


class NonContiguousBatchesError(CheckpointError):
    """Batch ids in a log folder have a gap, which Spark itself refuses to restart from."""


class StreamStaleError(SparkStreamingError):
    """The stream has committed no batch for longer than the allowed staleness."""


class KafkaLagError(SparkStreamingError):
    """Kafka lag of a streaming query cannot be computed."""


class NoKafkaSourceError(KafkaLagError):
    """The checkpoint's query has no Kafka source, so it has no Kafka lag."""


class KafkaBrokerUnreachableError(KafkaLagError):
    """The brokers of the Kafka connection did not answer within the timeout."""


class KafkaTopicDeletedError(KafkaLagError):
    """Every topic a Kafka source read is gone from the broker."""


class KafkaConfigError(KafkaLagError):
    """The Kafka connection's client configuration is invalid."""


class KafkaLagCeilingError(KafkaLagError):
    """Lag stayed above the alert ceiling for longer than allowed."""


class DeltaMaintenanceError(SparkStreamingError):
    """A Delta table cannot be inspected or maintained as asked; the table is left untouched."""


class NotADeltaTableError(DeltaMaintenanceError):
    """The path does not exist or holds no Delta table."""


class EngineUnsupportedError(DeltaMaintenanceError):
    """The chosen engine cannot write this table's protocol (for example delta-rs and liquid clustering)."""


class ZOrderColumnError(DeltaMaintenanceError):
    """A Z-ORDER column is not in the table schema, or is a partition column."""


class UnsafeRetentionError(DeltaMaintenanceError):
    """A VACUUM retention is zero, negative, or shorter than readers need."""


class VacuumOutsideTableError(DeltaMaintenanceError):
    """A VACUUM plan names a file outside the table root; nothing was deleted."""


class PlainParquetSinkError(NotADeltaTableError):
    """The path is Spark's Parquet file-sink output (``_spark_metadata``), not a Delta table; not compactable in place."""


class InvalidStreamSpecError(SparkStreamingError):
    """The stream runner's spec is invalid; nothing was submitted."""


class StreamingRunIncompleteError(SparkStreamingError):
    """A bounded streaming run ended without committing every batch it planned."""


class CheckpointInUseError(SparkStreamingError):
    """A live query holds the checkpoint's lease; a second query on it is refused."""


class UnsafeLeaseStoreError(SparkStreamingError):
    """The checkpoint's store cannot create the lease only-if-absent (S3 without a proven conditional create), so
    the stream runner refused to start; ``lease_consistency="best_effort"`` opts into a lease checked at renewal."""


class SparkSubmissionError(SparkStreamingError):
    """spark-submit could not hand the job to the cluster manager, or the deployment cannot run it."""


class ClusterManagerError(SparkSubmissionError):
    """The cluster manager (standalone Master, YARN, Kubernetes) could not report on or kill a driver."""


# --- submission (hooks/submission) ---------------------------------------------------------------


class SparkProviderIncompatibleError(SparkSubmissionError):
    """The installed Spark provider's ``SparkSubmitHook`` lacks a member this provider relies on."""


class KafkaConnectionConfigError(SparkStreamingError):
    """A ``kafka`` connection cannot be translated to Spark's Kafka options; nothing was submitted."""


class KafkaConnectionKeyUnsupportedError(KafkaConnectionConfigError):
    """A connection key has no Spark equivalent (unknown or confluent-kafka-only) and would be lost."""


class KafkaAuthUnsupportedError(KafkaConnectionConfigError):
    """The connection's authentication (OAUTHBEARER, ``oauth_cb``, Kerberos) cannot be expressed as Spark options."""


class KafkaConnectionIncompleteError(KafkaConnectionConfigError):
    """A setting is missing or contradicts another (no bootstrap servers, SASL without a password, ...)."""


class KafkaTlsFileError(KafkaConnectionConfigError):
    """A PEM file of the connection is unreadable, not PEM, or a key format Java cannot load."""


class KafkaAccessError(SparkStreamingError):
    """The Kafka broker refused the client: authentication, TLS trust or authorization failed."""


class KafkaAuthenticationError(KafkaAccessError):
    """The broker rejected the SASL login (wrong password, unknown user, mechanism not enabled)."""


class KafkaTlsHandshakeError(KafkaAccessError):
    """The TLS handshake failed: the broker certificate is not trusted or does not match the host."""


class KafkaAuthorizationError(KafkaAccessError):
    """The broker's ACLs deny the authenticated user the topic or consumer group."""


class InvalidEventTriggerError(SparkStreamingError):
    """An event trigger (for an ``AssetWatcher``) was given a parameter it cannot watch with."""


class StorageError(SparkStreamingError):
    """Object storage (S3 or an S3-compatible store) cannot be used with the configured connection."""


class StorageConnectionError(StorageError):
    """The ``storage_conn_id`` connection is missing, is not an ``aws`` connection, or its provider is not installed."""


class StorageAccessDeniedError(StorageError):
    """The store refused the connection's credentials (unknown key, wrong secret) or their permissions (403)."""


class BucketNotFoundError(StorageError):
    """The bucket named in an ``s3://``/``s3a://`` path does not exist at the connection's endpoint."""


class StorageUnreachableError(StorageError):
    """The storage endpoint did not answer within the bounded connect/request time and retries."""


# --- hardening (issue 13: bounded checkpoint reads, parameters refused at parse time) -------------


class InvalidParameterError(SparkStreamingError, ValueError):
    """An operator, sensor or trigger parameter has the wrong type or value; refused when the DAG is parsed."""


class InvalidCheckpointPathError(CheckpointError, InvalidParameterError):
    """The checkpoint location is empty, not a string, or a relative path (the worker and the driver would resolve
    it against different directories)."""


class CheckpointFileTooLargeError(CorruptCheckpointFileError):
    """A checkpoint metadata file is far larger than any file Spark writes there; it was not read."""


class NotARegularFileError(CorruptCheckpointFileError):
    """A checkpoint metadata file is a FIFO, device, socket or a symlink to one; it was not read."""


class StorageSupportMissingError(StorageError):
    """The checkpoint's URI scheme (``s3://``, ``gs://``, ``abfs://``) needs a provider that is not installed."""


# --- secrets and injection (issue 13, section 3) -----------------------------------------------


class PartitionFilterError(DeltaMaintenanceError, InvalidParameterError):
    """A ``partition_filters`` entry has an operator outside the allowed set, or an unusable column or value."""


class TransformSqlError(InvalidStreamSpecError):
    """``transform_sql`` is not exactly one SELECT (or WITH ... SELECT) statement over the view ``source``."""


# --- stream health (issue 16) ---


class KafkaRetentionHeadroomError(KafkaLagError):
    """Retention will delete records the query has not read sooner than ``min_retention_headroom`` allows."""


class LaggingQueryStoppedError(KafkaLagError):
    """The query has lag but is not running (its runner holds no live lease), so the lag cannot fall."""


class StreamHealthError(SparkStreamingError):
    """A stream-health wait was given invalid statuses, or the stream reached a status it must fail on."""


class StreamUnhealthyError(StreamHealthError):
    """The stream's status is one the sensor's ``fail_on`` names (for example ``STALLED``, ``STOPPED``, ``REWOUND``)."""


# --- maintenance next to a live stream on S3 (issue 14, item 4) ---


class UnprotectedConcurrentWriteError(DeltaMaintenanceError):
    """A table-changing OPTIMIZE/VACUUM on an S3 table would commit beside a live stream's writer, and cannot be
    handed to it; nothing was written. The message says what to configure (``stream_checkpoint``, the Spark engine,
    or stopping the stream)."""


class MaintenanceHandoffError(DeltaMaintenanceError):
    """Maintenance handed to the live stream runner failed there, or the runner stopped before it answered."""


class MaintenanceHandoffTimeoutError(MaintenanceHandoffError):
    """The live stream runner did not answer a maintenance request within ``handoff_timeout``."""


# --- authenticated control files (issue 23, item 2) ---


class ControlKeyMissingError(SparkStreamingError):
    """The control key connection (default ``spark_streaming_control_default``) is missing, or its password is
    empty or shorter than 16 characters; a long-running stream, a stop that must kill, or a maintenance hand-off
    needs it."""


class UntrustedControlRecordError(SparkStreamingError):
    """A control file beside the checkpoint (``_submission``, a lease, a maintenance hand-off or result) is unsigned,
    altered, signed for another checkpoint or submission, or expired: nothing was acted on."""


class DriverProcessMismatchError(UntrustedControlRecordError):
    """A signed record names a local process that is not the driver the provider started (its submission tag or
    its start time differ, so the pid was reused): it was not killed."""


class ControlPathOutsideRunError(UntrustedControlRecordError):
    """A path taken from a control record (a driver's log) lies outside the provider's own folder for that run:
    it was neither read nor deleted."""


# --- VACUUM that knows its readers (issue 27) ---


class DeltaReaderError(DeltaMaintenanceError):
    """A downstream reader named in ``readers`` (or found under ``reader_roots``) cannot be placed: its checkpoint
    is unreadable, or the version it reads next is gone from the table's log; nothing was deleted. Fix the
    checkpoint, or list it in ``exclude_readers``."""


class ReaderTableMismatchError(DeltaReaderError):
    """A checkpoint in ``readers`` has no Delta source whose ``reservoirId`` is this table's id: it reads another
    table (or a re-created one with a new id); nothing was deleted."""


class ReaderLogRetentionError(DeltaMaintenanceError):
    """A downstream reader is closer to the table's ``delta.logRetentionDuration`` than
    ``min_log_retention_headroom`` allows: a checkpoint may soon clean up the log it needs to restart."""


# --- Spark Connect (issue 26) ---------------------------------------------------------------------


class SparkConnectError(SparkStreamingError):
    """Work sent to a Spark Connect server failed there, or the ``spark_connect`` connection cannot be used for it."""


class SparkConnectUnreachableError(SparkConnectError):
    """The Spark Connect server of the connection did not answer within the bounded connect time."""


class SparkConnectUnsupportedError(SparkConnectError, InvalidParameterError):
    """The Connect route cannot run this: a long-running query, a user application or a spark-submit setting."""


class CatalogTableNotFoundError(SparkConnectError):
    """The Spark Connect server's catalog has no table of the name asked for (nor its database)."""


# --- Spark Declarative Pipelines (issue 26) -------------------------------------------------------


class PipelineError(SparkStreamingError):
    """A Spark Declarative Pipeline's spec or storage cannot be used to find a flow's checkpoint."""


class PipelineSpecError(PipelineError):
    """A pipeline spec (``spark-pipeline.yml``) is missing, too large, not YAML, or has a field Spark would refuse."""


class InvalidPipelineFlowError(PipelineError, InvalidParameterError):
    """A pipeline and flow were given wrongly: both or neither of a checkpoint and a pipeline with its flow, or a
    flow name that is not ``[catalog.][database.]name``."""


class AmbiguousPipelineFlowError(PipelineError):
    """More than one flow of the pipeline's storage matches the flow name given."""


class PipelineStorageTooLargeError(PipelineError):
    """The pipeline's storage holds more checkpoint folders than the bounded listing reads."""
