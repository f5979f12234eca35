"""The asset-state adapter's contract with the installed Airflow: the private names it falls back on still exist.

``AssetCursorStore`` uses the public single-asset ``aget``/``aset`` and reaches into
``AssetStateStoreAccessors._by_name``/``_by_uri`` only when one trigger watches several assets
(Airflow 3.3 has no public way to list them). If Airflow renames those members, or starts to
allow the single-asset calls with several assets, this test fails before users do.
"""

from __future__ import annotations

import asyncio

import pytest
from airflow.sdk import Asset
from airflow.sdk.execution_time.context import AssetStateStoreAccessor, AssetStateStoreAccessors

from airflow_spark_streaming.triggers._cursor import AssetCursorStore


class RecordingAccessor:
    """Stands in for one asset's accessor, which otherwise talks to the triggerer's supervisor."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    async def aget(self, key, default=None):
        return self.values.get(key, default)

    async def aset(self, key, value):
        self.values[key] = value


def test_several_watched_assets_refuse_the_single_asset_calls_and_keep_their_private_map():
    store = AssetStateStoreAccessors(inlets=[Asset(name="a", uri="s3://x/a"), Asset(name="b", uri="s3://x/b")])
    with pytest.raises(ValueError):
        asyncio.run(store.aget("cursor"))
    assert set(store._by_name) == {"a", "b"} and store._by_uri == {}
    assert all(isinstance(accessor, AssetStateStoreAccessor) for accessor in store._by_name.values())


def test_the_adapter_writes_every_watched_asset_and_reads_them_all_back():
    store = AssetStateStoreAccessors(inlets=[Asset(name="a", uri="s3://x/a"), Asset(name="b", uri="s3://x/b")])
    store._by_name = {"a": RecordingAccessor(), "b": RecordingAccessor()}
    cursors = AssetCursorStore(store)
    asyncio.run(cursors.write_all("cursor", {"position": 4}))
    assert [a.values for a in store._by_name.values()] == [{"cursor": {"position": 4}}] * 2
    assert asyncio.run(cursors.read_all("cursor")) == [{"position": 4}] * 2


def test_one_watched_asset_goes_through_the_public_calls_only():
    single = RecordingAccessor()
    cursors = AssetCursorStore(single)
    asyncio.run(cursors.write_all("cursor", {"position": 1}))
    assert asyncio.run(cursors.read_all("cursor")) == [{"position": 1}]
