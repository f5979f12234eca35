"""A pipeline spec's text (``spark-pipeline.yml``) read as ``spark-pipelines`` reads it, with bounds.

The spec is untrusted input: its size, its nesting, every field's type and length are bounded, and an
unknown field is refused as Spark refuses it (``PIPELINE_SPEC_UNEXPECTED_FIELD``). PyYAML is imported when a
spec is parsed, not when the module is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from airflow_spark_streaming.exceptions import PipelineSpecError
from airflow_spark_streaming.pipelines.flows import check_identifier
from airflow_spark_streaming.storage.locations import is_absolute_location

#: The spec file names ``spark-pipelines`` looks for beside the definitions.
SPEC_FILE_NAMES = ("spark-pipeline.yml", "spark-pipeline.yaml")
#: The largest spec read: a real one is a few hundred bytes.
MAX_SPEC_BYTES = 64 * 1024
#: Bounds on what one spec may hold.
MAX_NAME_CHARS = 256
MAX_STORAGE_CHARS = 4096
MAX_CONFIGURATION_ENTRIES = 256
MAX_CONFIGURATION_CHARS = 4096
MAX_LIBRARIES = 256
MAX_GLOB_CHARS = 1024
#: The deepest ``[``/``{`` nesting read (PyYAML recurses once a level; a spec nests three).
MAX_NESTING = 32
#: The fields ``spark-pipelines`` accepts (``schema`` is another name for ``database``).
SPEC_FIELDS = frozenset({"name", "storage", "catalog", "database", "schema", "configuration", "libraries"})


@dataclass(frozen=True)
class PipelineSpec:
    """What a pipeline spec says.

    :param name: the pipeline's name.
    :param storage: the root under which Spark keeps each flow's checkpoint (``<storage>/_checkpoints/...``).
    :param catalog: the default catalog of the pipeline's datasets, if the spec sets one.
    :param database: the default database (``database`` or ``schema``), if the spec sets one.
    :param configuration: the Spark settings the CLI sets on its session.
    :param libraries: the ``libraries[].glob.include`` patterns, relative to the spec's folder.
    """

    name: str
    storage: str
    catalog: str | None = None
    database: str | None = None
    configuration: dict[str, str] = field(default_factory=dict)
    libraries: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "storage": self.storage, "catalog": self.catalog, "database": self.database,
                "configuration": dict(self.configuration), "libraries": list(self.libraries)}  # fmt: skip


def parse_pipeline_spec(data: bytes | str, *, source: str = "the pipeline spec") -> PipelineSpec:
    """The spec from its text (or bytes, UTF-8), else :class:`PipelineSpecError` naming ``source`` and the field.

    :param data: the file's content, as read (at most :data:`MAX_SPEC_BYTES` + 1 bytes is enough to judge it).
    :param source: where it came from, as errors name it (a path).
    """
    import yaml

    raw = data.encode("utf-8", errors="replace") if isinstance(data, str) else data
    if not isinstance(raw, bytes):
        raise PipelineSpecError(f"{source}: a pipeline spec is text, got {type(data).__name__}.")
    if len(raw) > MAX_SPEC_BYTES:
        raise PipelineSpecError(
            f"{source} is larger than {MAX_SPEC_BYTES // 1024} KiB, far more than a pipeline spec holds; it was not "
            "read. Point pipeline_spec at the pipeline's spark-pipeline.yml."
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PipelineSpecError(f"{source} is not UTF-8 text ({err.reason} at byte {err.start}).") from None
    if _flow_depth(text) > MAX_NESTING:
        raise PipelineSpecError(f"{source} nests deeper than {MAX_NESTING} levels, which a pipeline spec never does.")
    try:
        document = yaml.safe_load(text)
    except RecursionError:
        raise PipelineSpecError(f"{source} nests deeper than a pipeline spec does; it was not read.") from None
    except (ValueError, OverflowError) as err:  # a scalar YAML types but cannot convert: a 5,000-digit integer
        raise PipelineSpecError(f"{source} holds a value YAML cannot convert: {str(err)[:120]}.") from None
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise PipelineSpecError(f"{source} is not valid YAML{at}: {getattr(err, 'problem', None) or err}.") from None
    if not isinstance(document, dict):
        kind = "empty" if document is None else f"a {type(document).__name__}"
        raise PipelineSpecError(f"{source} must be a YAML mapping with name and storage; it is {kind}.")
    unknown = sorted(str(key)[:64] for key in document if key not in SPEC_FIELDS)
    if unknown:
        raise PipelineSpecError(
            f"{source} has fields spark-pipelines does not accept: {unknown}; it takes {sorted(SPEC_FIELDS)}."
        )
    database, schema = document.get("database"), document.get("schema")
    if database is not None and schema is not None and database != schema:
        raise PipelineSpecError(f"{source} sets both database and schema, differently; they are one setting.")
    return PipelineSpec(
        name=_text(source, "name", document.get("name"), MAX_NAME_CHARS),
        storage=_storage(source, document.get("storage")),
        catalog=_identifier(source, "catalog", document.get("catalog")),
        database=_identifier(source, "database", database if database is not None else schema),
        configuration=_configuration(source, document.get("configuration")),
        libraries=_libraries(source, document.get("libraries")),
    )


def _flow_depth(text: str) -> int:
    """The deepest nesting of YAML flow collections (``[``, ``{``), counted without parsing (quotes are ignored:
    a bracket inside a string only makes the count larger, and a real spec stays far below the bound)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(depth - 1, 0)
    return deepest


def _text(source: str, name: str, value: Any, limit: int) -> str:
    if value is None:
        raise PipelineSpecError(f"{source} has no {name}; spark-pipelines requires it.")
    if not isinstance(value, str) or not value.strip():
        raise PipelineSpecError(f"{source}: {name} must be a non-empty string, got a {type(value).__name__}.")
    if len(value) > limit:
        raise PipelineSpecError(f"{source}: {name} is longer than {limit} characters.")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PipelineSpecError(f"{source}: {name} holds control characters.")
    return value


def _storage(source: str, value: Any) -> str:
    storage = _text(source, "storage", value, MAX_STORAGE_CHARS)
    if not is_absolute_location(storage) or storage.startswith("/"):
        # Spark 4.2 refuses the run (PIPELINE_STORAGE_ROOT_INVALID) unless storage is absolute with a scheme.
        raise PipelineSpecError(
            f"{source}: storage {storage[:120]!r} is not an absolute URI with a scheme, which spark-pipelines 4.2 "
            "requires (PIPELINE_STORAGE_ROOT_INVALID); write file:///..., s3a://... or hdfs://...."
        )
    return storage


def _identifier(source: str, name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PipelineSpecError(f"{source}: {name} must be a string, got a {type(value).__name__}.")
    problem = check_identifier(value)
    if problem:
        raise PipelineSpecError(f"{source}: {name} {value[:64]!r} {problem}.")
    return value


def _configuration(source: str, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PipelineSpecError(f"{source}: configuration must be a mapping of strings, got a {type(value).__name__}.")
    if len(value) > MAX_CONFIGURATION_ENTRIES:
        raise PipelineSpecError(f"{source}: configuration has more than {MAX_CONFIGURATION_ENTRIES} entries.")
    for key, item in value.items():
        if not isinstance(key, str) or not isinstance(item, str):
            # The value is never shown: a spec's configuration may hold a credential.
            raise PipelineSpecError(f"{source}: configuration keys and values must be strings (key {str(key)[:64]!r}).")
        if len(key) > MAX_CONFIGURATION_CHARS or len(item) > MAX_CONFIGURATION_CHARS:
            raise PipelineSpecError(f"{source}: configuration {key[:64]!r} is longer than {MAX_CONFIGURATION_CHARS}.")
    return dict(value)


def _libraries(source: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise PipelineSpecError(f"{source}: libraries must be a list of {{glob: {{include: ...}}}} entries.")
    if len(value) > MAX_LIBRARIES:
        raise PipelineSpecError(f"{source}: libraries has more than {MAX_LIBRARIES} entries.")
    patterns = []
    for index, entry in enumerate(value):
        glob = entry.get("glob") if isinstance(entry, dict) else None
        include = glob.get("include") if isinstance(glob, dict) else None
        if not isinstance(include, str) or not include.strip():
            raise PipelineSpecError(f"{source}: libraries[{index}] is not {{glob: {{include: <pattern>}}}}.")
        if len(include) > MAX_GLOB_CHARS:
            raise PipelineSpecError(f"{source}: libraries[{index}] is longer than {MAX_GLOB_CHARS} characters.")
        patterns.append(include)
    return tuple(patterns)
