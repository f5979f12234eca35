"""Flow names, the checkpoint layout of Spark 4.2's pipelines, matching a name to a flow, and the one-of rule."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.exceptions import (
    AmbiguousPipelineFlowError,
    InvalidParameterError,
    InvalidPipelineFlowError,
    PipelineSpecError,
    PipelineStorageTooLargeError,
)
from airflow_spark_streaming.hooks import pipelines as pipelines_hook
from airflow_spark_streaming.hooks.pipelines import PipelineHook, resolve_flow_checkpoint
from airflow_spark_streaming.pipelines.flows import (
    FlowName,
    FlowTarget,
    SdpFlow,
    checkpoint_versions,
    flow_checkpoint,
    flow_target,
    match_flow,
)


def test_flow_names_take_one_to_three_plain_parts():
    assert FlowName.parse("t", "orders") == FlowName("orders")
    assert FlowName.parse("t", "sales.orders") == FlowName("orders", "sales")
    assert FlowName.parse("t", "spark_catalog.sales.orders") == FlowName("orders", "sales", "spark_catalog")
    assert str(FlowName.parse("t", "sales.orders")) == "sales.orders"


@pytest.mark.parametrize("value", ["", None, 3, "a.b.c.d", "../x", "a/b", "a..b", "ord ers", "`x`", "é", "x" * 256])
def test_a_flow_name_that_could_leave_its_folder_is_refused(value):
    with pytest.raises(InvalidPipelineFlowError) as raised:
        FlowName.parse("KafkaLagSensor(lag)", value)
    assert str(raised.value).startswith("KafkaLagSensor(lag): flow")
    assert isinstance(raised.value, InvalidParameterError)


def test_the_checkpoint_layout_is_sparks():
    # FlowSystemMetadata: storage/_checkpoints/<destination name parts>/<flow name>/<version>
    assert flow_checkpoint("file:///lake/p/", "spark_catalog", "default", "orders_all", "from_kafka", 2) == (
        "file:///lake/p/_checkpoints/spark_catalog/default/orders_all/from_kafka/2"
    )
    with pytest.raises(InvalidPipelineFlowError):
        flow_checkpoint("/lake", "spark_catalog", "..", "t", "t", 0)
    with pytest.raises(InvalidPipelineFlowError):
        flow_checkpoint("/lake", "c", "d", "t", "t", -1)


def test_versions_are_the_numeric_folders_as_spark_sorts_them():
    assert checkpoint_versions(["0", "10", "2", "tmp", "٣", "-1", ".crc", "1" * 12]) == (0, 2, 10)
    assert checkpoint_versions([]) == ()


def _flow(cat, db, table, flow):
    return SdpFlow(cat, db, table, flow, (0,), f"/s/_checkpoints/{cat}/{db}/{table}/{flow}/0")


FLOWS = [
    _flow("spark_catalog", "default", "orders_raw", "orders_raw"),
    _flow("spark_catalog", "default", "orders_all", "from_kafka"),
    _flow("spark_catalog", "default", "orders_all", "from_files"),
    _flow("spark_catalog", "sales", "orders_raw", "orders_raw"),
]


def test_a_flow_is_found_by_its_own_name_then_by_its_tables():
    assert match_flow(FLOWS, FlowName("from_kafka")).flow == "from_kafka"
    assert match_flow(FLOWS, FlowName("FROM_KAFKA")).flow == "from_kafka"  # the session catalog is case-insensitive
    assert match_flow(FLOWS, FlowName("orders_raw", "sales")).database == "sales"
    assert match_flow(FLOWS, FlowName("orders_raw"), database="default").database == "default"  # the spec's default
    assert match_flow(FLOWS, FlowName("nothing")) is None


def test_two_flows_into_one_table_or_one_name_in_two_databases_is_ambiguous():
    with pytest.raises(AmbiguousPipelineFlowError, match=r"matches 2 flows.*orders_all \(flow from_files\)"):
        match_flow(FLOWS, FlowName("orders_all"))
    with pytest.raises(AmbiguousPipelineFlowError, match="qualified as catalog.database.name"):
        match_flow(FLOWS, FlowName("orders_raw"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give checkpoint \\(a checkpoint path\\), or an SDP pipeline"),
        ({"checkpoint": "/c", "flow": "f"}, "not both"),
        ({"checkpoint": "/c", "pipeline_storage": "/s", "flow": "f"}, "not both"),
        ({"pipeline_spec": "/p.yml", "pipeline_storage": "/s", "flow": "f"}, "not both"),
        ({"flow": "orders"}, "give the pipeline too"),
        ({"pipeline_storage": "/s"}, "pipeline_storage needs flow"),
        ({"pipeline_storage": "rel/s", "flow": "f"}, "must be an absolute path"),
        ({"pipeline_spec": 5, "flow": "f"}, "must be a path or URI string"),
        ({"pipeline_storage": "/s", "flow": "a/b"}, "is not a plain name"),
    ],
)  # fmt: skip
def test_exactly_one_of_a_checkpoint_and_a_pipeline_flow(kwargs, message):
    args = {"checkpoint": None, "pipeline_spec": None, "pipeline_storage": None, "flow": None, **kwargs}
    with pytest.raises(InvalidPipelineFlowError, match=message):
        flow_target("S(t)", **args)


def test_flow_target_returns_the_pipeline_or_none_for_a_checkpoint():
    none = {"pipeline_spec": None, "pipeline_storage": None, "flow": None}
    assert flow_target("S", checkpoint="/c", **none) is None
    assert flow_target("S", checkpoint=None, optional=True, **none) is None
    target = flow_target("S", checkpoint=None, pipeline_spec="/p/spark-pipeline.yml", pipeline_storage=None, flow="o")
    assert target == FlowTarget(flow="o", spec="/p/spark-pipeline.yml")
    assert target.to_kwargs() == {"pipeline_spec": "/p/spark-pipeline.yml", "pipeline_storage": None, "flow": "o"}
    templated = flow_target("S", checkpoint=None, pipeline_spec=None, pipeline_storage="{{ var.value.root }}/p",
                            flow="{{ params.flow }}", rendered=False)  # fmt: skip
    assert templated.storage == "{{ var.value.root }}/p"


# --- the hook over real folders -------------------------------------------------------------------------------


def _layout(storage, *flows):
    for parts in flows:
        (storage / "_checkpoints").joinpath(*parts).mkdir(parents=True)


def test_the_hook_lists_and_resolves_what_spark_wrote(tmp_path):
    # The layout a real run wrote (docs/sdp-pipelines.md): a @dp.table flow, and an append_flow into a second table.
    storage = tmp_path / "storage"
    _layout(storage, ("spark_catalog", "default", "orders_raw", "orders_raw", "0"),
            ("spark_catalog", "default", "orders_all", "from_kafka", "0"),
            ("spark_catalog", "default", "orders_all", "from_kafka", "1"))  # fmt: skip
    (storage / "_checkpoints" / "spark_catalog" / "default" / "bad name").mkdir()
    (storage / "_checkpoints" / "README").write_text("not a catalog")
    hook = PipelineHook()
    flows = hook.list_flows(str(storage))
    assert [(f.table, f.flow, f.versions) for f in flows] == [
        ("orders_all", "from_kafka", (0, 1)), ("orders_raw", "orders_raw", (0,))
    ]  # fmt: skip
    resolved = hook.resolve(FlowTarget(flow="orders_all", storage=f"file://{storage}"))
    assert resolved.found and resolved.checkpoint == (
        f"file://{storage}/_checkpoints/spark_catalog/default/orders_all/from_kafka/1"  # the latest version
    )
    assert resolve_flow_checkpoint(FlowTarget(flow="from_kafka", storage=str(storage))) == (
        f"{storage}/_checkpoints/spark_catalog/default/orders_all/from_kafka/1"
    )


def test_a_flow_not_run_yet_resolves_where_spark_will_write_it(tmp_path):
    spec = tmp_path / "spark-pipeline.yml"
    spec.write_text(f"name: p\nstorage: file://{tmp_path}/storage\ncatalog: lake\ndatabase: sales\n")
    resolved = PipelineHook().resolve(FlowTarget(flow="orders", spec=str(spec)))
    assert not resolved.found
    assert resolved.checkpoint == f"file://{tmp_path}/storage/_checkpoints/lake/sales/orders/orders/0"


def test_the_spec_is_read_bounded_and_a_missing_one_is_named(tmp_path):
    with pytest.raises(PipelineSpecError, match="does not exist here"):
        PipelineHook().read_spec(str(tmp_path / "spark-pipeline.yml"))
    with pytest.raises(PipelineSpecError, match="is a folder"):
        PipelineHook().read_spec(str(tmp_path))
    big = tmp_path / "big.yml"
    big.write_bytes(b"name: p\nstorage: file:///s\n#" + b"x" * (1 << 20))
    with pytest.raises(PipelineSpecError, match="larger than 64 KiB"):
        PipelineHook().read_spec(str(big))


def test_the_walk_is_bounded(tmp_path, monkeypatch):
    storage = tmp_path / "s"
    for i in range(5):
        _layout(storage, ("spark_catalog", "default", f"t{i}", f"t{i}", "0"))
    with pytest.raises(PipelineStorageTooLargeError, match="more than 3 flows"):
        PipelineHook().list_flows(str(storage), max_flows=3)
    monkeypatch.setattr(pipelines_hook, "MAX_ENTRIES_PER_FOLDER", 4)
    with pytest.raises(PipelineStorageTooLargeError, match="lists 5 entries, more than the 4 read"):
        PipelineHook().list_flows(str(storage))
    # A qualified name lists only its own catalog and database.
    assert PipelineHook().list_flows(str(storage), catalog="other") == []
