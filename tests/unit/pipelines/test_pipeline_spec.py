"""A pipeline spec read as spark-pipelines reads it, and refused, with a named error, where it is hostile."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.exceptions import PipelineSpecError
from airflow_spark_streaming.pipelines.spec import MAX_SPEC_BYTES, parse_pipeline_spec

SPEC = """\
name: orders
storage: file:///lake/sdp/orders
catalog: spark_catalog
schema: sales
configuration:
  spark.sql.sources.default: delta
libraries:
  - glob:
      include: transformations/**
"""


def test_a_spec_gives_its_storage_defaults_and_libraries():
    spec = parse_pipeline_spec(SPEC, source="spark-pipeline.yml")
    assert spec.to_dict() == {
        "name": "orders", "storage": "file:///lake/sdp/orders", "catalog": "spark_catalog", "database": "sales",
        "configuration": {"spark.sql.sources.default": "delta"}, "libraries": ["transformations/**"],
    }  # fmt: skip


def test_the_minimal_spec_spark_pipelines_init_writes():
    spec = parse_pipeline_spec(b"name: p\nstorage: file:///lake/p\n")
    assert (spec.name, spec.storage, spec.catalog, spec.database, spec.libraries) == (
        "p",
        "file:///lake/p",
        None,
        None,
        (),
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "must be a YAML mapping with name and storage; it is empty"),
        ("- a\n- b\n", "it is a list"),
        ("name: p\n", "has no storage"),
        ("storage: file:///s\n", "has no name"),
        ("name: p\nstorage: relative/dir\n", "storage 'relative/dir' is not an absolute URI with a scheme"),
        ("name: p\nstorage: /lake/p\n", "PIPELINE_STORAGE_ROOT_INVALID"),  # what Spark 4.2 answers a plain path
        ("name: p\nstorage: 7\n", "storage must be a non-empty string, got a int"),
        ("name: p\nstorage: file:///s\nowner: me\n", r"fields spark-pipelines does not accept: \['owner'\]"),
        ("name: p\nstorage: file:///s\ndatabase: a\nschema: b\n", "both database and schema"),
        ("name: p\nstorage: file:///s\ndatabase: ../etc\n", "database '../etc' is not a plain name"),
        ("name: p\nstorage: file:///s\ncatalog: [x]\n", "catalog must be a string"),
        ("name: p\nstorage: file:///s\nconfiguration: [a]\n", "configuration must be a mapping"),
        ("name: p\nstorage: file:///s\nconfiguration: {k: 1}\n", "keys and values must be strings"),
        ("name: p\nstorage: file:///s\nlibraries: [{file: a.py}]\n", r"libraries\[0\] is not"),
        ("name: p\nstorage: file:///s\nlibraries: x\n", "libraries must be a list"),
        ('name: p\nstorage: "/s\\x01"\n', "control characters"),
        ("name: !!python/object:os.system x\nstorage: file:///s\n", "not valid YAML"),
        ("name: p\nstorage: file:///s\n  bad: indent\n", "not valid YAML at line"),
        ("name: " + "9" * 5000 + "\nstorage: file:///s\n", "YAML cannot convert"),
        ("a: " + "[" * 100 + "]" * 100, "nests deeper than 32 levels"),
    ],
)  # fmt: skip
def test_a_hostile_or_wrong_spec_is_refused_by_name(text, message):
    with pytest.raises(PipelineSpecError, match=message):
        parse_pipeline_spec(text, source="spark-pipeline.yml")


def test_size_and_encoding_are_bounded_before_parsing():
    with pytest.raises(PipelineSpecError, match="larger than 64 KiB"):
        parse_pipeline_spec(b"name: p\nstorage: file:///s\n#" + b"x" * MAX_SPEC_BYTES)
    with pytest.raises(PipelineSpecError, match="not UTF-8 text"):
        parse_pipeline_spec(b"name: \xff\nstorage: file:///s\n")


def test_a_configuration_value_is_never_shown_in_an_error():
    with pytest.raises(PipelineSpecError) as raised:
        parse_pipeline_spec("name: p\nstorage: file:///s\nconfiguration:\n  kafka.sasl.jaas.config: [hunter2]\n")
    assert "hunter2" not in str(raised.value)


def test_aliases_do_not_multiply_work_beyond_the_fields_read():
    text = "a: &x [1, 2]\nb: &y [*x, *x, *x]\nname: p\nstorage: file:///s\n"
    with pytest.raises(PipelineSpecError, match=r"does not accept: \['a', 'b'\]"):
        parse_pipeline_spec(text)
