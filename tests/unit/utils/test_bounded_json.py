"""JSON from the lake is read within bounds: bytes, depth and integer digits end in one named error."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.utils.bounded_json import UntrustedJsonError, is_ascii_decimal, load_object, loads


@pytest.mark.parametrize(
    ("data", "bound"),
    [
        ("[" * 60_000, "nested deeper"),
        ("[" * 40 + "]" * 40, "nested deeper than 32"),
        ('{"offset": ' + "9" * 4_301 + "}", "4301 digits"),
        ('{"offset": ' + "9" * 21 + "}", "21 digits"),
        ("NaN", "constant NaN"),
        (b"\xff", "not UTF-8"),
        ('{"a": 1', "not valid JSON"),
        ("x" * 2_000_000, "2000000 bytes"),
    ],
)
def test_hostile_json_names_the_bound_it_broke(data, bound):
    with pytest.raises(UntrustedJsonError, match=bound):
        loads(data)


def test_what_spark_writes_reads_unchanged():
    text = '{"orders":{"0":9223372036854775807,"1":-2}}'
    assert loads(text) == {"orders": {"0": 9223372036854775807, "1": -2}}
    assert loads(text.encode()) == loads(text)
    assert loads("[" * 32 + "]" * 32) == [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]


def test_an_object_is_required_where_asked():
    with pytest.raises(UntrustedJsonError, match="a JSON list, not an object"):
        load_object("[1]")


@pytest.mark.parametrize(("text", "ok"), [("12", True), ("²", False), ("٣", False), ("", False), ("1" * 21, False)])
def test_only_ascii_decimal_names_are_batch_names(text, ok):
    assert is_ascii_decimal(text) is ok
