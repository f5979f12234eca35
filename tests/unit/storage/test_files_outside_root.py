"""``files_outside_root``: a VACUUM plan comes from the table's log, which is untrusted; any path that could
leave the table root makes VACUUM delete nothing. The symlink cases use real files and links."""

from __future__ import annotations

import os

import pytest

from airflow_spark_streaming.exceptions import VacuumOutsideTableError
from airflow_spark_streaming.operators.delta import DeltaVacuumOperator
from airflow_spark_streaming.operators.delta import files_outside_root as old_home
from airflow_spark_streaming.storage.locations import files_outside_root

ROOT = "/lake/orders"


def test_the_old_import_still_works():
    assert old_home is files_outside_root


@pytest.mark.parametrize("root", [ROOT, f"{ROOT}/", f"file:{ROOT}", f"file://{ROOT}", f"file://localhost{ROOT}"])
@pytest.mark.parametrize(
    "inside",
    [
        "region=eu/a.parquet",
        "a.parquet",
        f"{ROOT}/b.parquet",
        f"file:{ROOT}/c.parquet",
        f"file://{ROOT}/c.parquet",
        f"file://{ROOT}/region=eu/d.parquet",
        "region=eu%2Fwest/e.parquet",  # an encoded slash in a partition value stays inside
        "day=2026-01-31%2000%3A00%3A00/f.parquet",  # an encoded timestamp partition value
        "..data/g.parquet",  # dots in a name are not a parent segment
    ],
)
def test_paths_inside_the_root_in_every_spelling(root, inside):
    assert files_outside_root(root, [inside]) == []


@pytest.mark.parametrize("root", [ROOT, f"file:{ROOT}", f"file://{ROOT}"])
@pytest.mark.parametrize(
    "outside",
    [
        "/lake/other/x.parquet",
        "/lake/orders2/y.parquet",  # a sibling sharing the prefix
        "file:/lake/other/x.parquet",
        "file:///lake/other/x.parquet",
        "file:///etc/passwd",
        "file://otherhost/lake/orders/x.parquet",
        "../x.parquet",
        "region=eu/../../x.parquet",
        "%2e%2e/x.parquet",
        "%2E%2E/x.parquet",
        "%2e%2E/x.parquet",
        ".%2e/x.parquet",
        "region=eu/%2e%2e/%2e%2e/x.parquet",
        "%252e%252e/x.parquet",  # encoded twice
        "region=eu%2F..%2F..%2Fx.parquet",  # an encoded slash around ..
        f"{ROOT}/%2e%2e/other/x.parquet",
        f"file://{ROOT}/%2E%2E/x.parquet",
        "..\\x.parquet",
        "s3://lake/orders/x.parquet",
    ],
)
def test_paths_outside_the_root_in_every_spelling(root, outside):
    assert files_outside_root(root, [outside]) == [outside]


def test_remote_roots():
    root = "s3://lake/orders"
    assert files_outside_root(root, ["a.parquet", "s3://lake/orders/b", "s3a://lake/orders/c"]) == []
    outside = ["s3://lake/orders2/x", "s3://other/orders/x", "/lake/orders/x", "file:///lake/orders/x",
               "s3://lake/orders/%2e%2e/x", "gs://lake/orders/x"]  # fmt: skip
    assert files_outside_root(root, outside) == outside


def test_symlinks_out_of_a_local_table_are_outside(tmp_path):
    table, elsewhere = tmp_path / "table", tmp_path / "elsewhere"
    (table / "region=eu").mkdir(parents=True)
    elsewhere.mkdir()
    (elsewhere / "precious.parquet").write_bytes(b"keep me")
    (table / "region=eu" / "a.parquet").write_bytes(b"data")
    os.symlink(elsewhere, table / "region=us")  # a partition folder that is a link out of the table
    os.symlink(elsewhere / "precious.parquet", table / "b.parquet")  # a file that is a link out
    os.symlink(table / "region=eu", table / "region=fr")  # a link that stays inside
    for root in (str(table), f"file://{table}", f"file:{table}"):
        assert files_outside_root(root, ["region=eu/a.parquet", "region=fr/a.parquet", "gone.parquet"]) == []
        outside = ["region=us/precious.parquet", f"{table}/region=us/precious.parquet", "b.parquet"]
        assert files_outside_root(root, outside) == outside


def test_a_table_reached_through_a_symlink_is_judged_by_its_real_path(tmp_path):
    real = tmp_path / "real"
    (real / "p").mkdir(parents=True)
    os.symlink(real, tmp_path / "alias")
    assert files_outside_root(str(tmp_path / "alias"), ["p/a.parquet", f"{tmp_path}/alias/p/b.parquet"]) == []


def test_vacuum_refuses_a_plan_with_a_path_outside_the_root(tmp_path):
    vacuum = DeltaVacuumOperator(task_id="v", table_uri=str(tmp_path))
    with pytest.raises(VacuumOutsideTableError, match="nothing was deleted"):
        vacuum._check_inside_root(["a.parquet", "%2e%2e/x.parquet"])
    vacuum._check_inside_root(["a.parquet", f"file://{tmp_path}/b.parquet"])


def test_a_symlink_whose_name_is_percent_encoded_is_followed_as_named(tmp_path):
    """Spark writes escaped partition values literally (``region=eu%2Fwest``): that name is checked too."""
    table, elsewhere = tmp_path / "table", tmp_path / "elsewhere"
    table.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, table / "region=eu%2Fwest")
    (table / "region=fr%2Fnorth").mkdir()
    assert files_outside_root(str(table), ["region=eu%2Fwest/a.parquet"]) == ["region=eu%2Fwest/a.parquet"]
    assert files_outside_root(str(table), ["region=fr%2Fnorth/a.parquet"]) == []


def test_a_relative_path_that_decodes_to_an_absolute_one_is_outside():
    assert files_outside_root(ROOT, ["%2Fetc%2Fpasswd"]) == ["%2Fetc%2Fpasswd"]
