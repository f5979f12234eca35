"""Control records are acted on only with a valid MAC: unsigned, altered, re-kinded or re-scoped records are refused."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.runner.control_auth import (
    LEASE,
    MAINTENANCE_REQUEST,
    SUBMISSION,
    ControlKey,
    ControlKeyError,
    ControlRecordError,
)

KEY = ControlKey.from_text("k" * 32, source="test")
BODY = {"action": "vacuum", "retain_hours": 168, "table": "s3://lake/orders"}


def test_a_signed_record_verifies_and_gives_back_its_body():
    record = KEY.sign(MAINTENANCE_REQUEST, BODY)
    assert KEY.verify(MAINTENANCE_REQUEST, record) == BODY
    assert KEY.verify(LEASE, KEY.sign(LEASE, {"pid": 7}, scope="tag-1"), scope="tag-1") == {"pid": 7}


@pytest.mark.parametrize(
    ("record", "match"),
    [
        (dict(BODY), "unsigned"),
        ({**KEY.sign(MAINTENANCE_REQUEST, BODY), "retain_hours": 0}, "does not match"),
        (ControlKey.from_text("x" * 32, source="other").sign(MAINTENANCE_REQUEST, BODY), "does not match"),
        (KEY.sign(SUBMISSION, BODY), "not as a maintenance-request"),
        ([1, 2], "not a JSON object"),
        ({**BODY, "_auth": "deadbeef"}, "unsigned"),
    ],
)
def test_planted_or_altered_records_are_refused(record, match):
    with pytest.raises(ControlRecordError, match=match):
        KEY.verify(MAINTENANCE_REQUEST, record, what="the request")


def test_a_lease_signed_for_one_submission_is_refused_for_another():
    record = KEY.sign(LEASE, {"pid": 7}, scope="tag-1")
    with pytest.raises(ControlRecordError, match="does not match"):
        KEY.verify(LEASE, record, scope="tag-2")


@pytest.mark.parametrize("text", [None, "", "q7Zp"])
def test_a_missing_or_weak_key_is_a_named_error_that_never_echoes_it(text):
    with pytest.raises(ControlKeyError, match="random secret") as raised:
        ControlKey.from_text(text, source="connection spark_streaming_control_default")
    assert text is None or text == "" or text not in str(raised.value)


def test_the_key_never_shows_in_its_repr():
    assert "k" * 32 not in repr(KEY) and "k" * 32 not in str(KEY)
