"""The driver's last word on ``transform_sql``: Spark's own parser, on a real SparkSession.

``spark.sql`` runs a command at once, so ``_checked_query`` lets through only text that
Spark reads, to its end, as one query. The parse-time check (sqlglot) is tested in
``tests/unit/runner/test_sql_check.py``; this is the same contract, judged by Spark.
"""

from __future__ import annotations

import pytest

from airflow_spark_streaming.runner.jobs.stream_runner import SpecError, _checked_query


@pytest.fixture(scope="module")
def session(spark):
    spark.range(3).createOrReplaceTempView("source")
    return spark


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 1; DROP TABLE x", "Syntax error"),  # a trailing second statement
        ("SELECT * FROM source; DROP TABLE source", "Syntax error"),
        ("SELECT * FROM source;", "Syntax error"),
        ("SELECT 1 -- c\n; DROP TABLE x", "Syntax error"),
        ("INSERT INTO t SELECT * FROM source", "Syntax error"),
        ("WITH s AS (SELECT * FROM source) INSERT INTO t SELECT * FROM s", "Syntax error"),
        ("CREATE TABLE t AS SELECT * FROM source", "Syntax error"),
        ("DROP TABLE source", "Syntax error"),
        ("SET spark.sql.ansi.enabled=false", "Syntax error"),
        ("SELECT TRANSFORM(id) USING 'cat' AS (x) FROM source", "TRANSFORM ... USING"),
        ("SELECT (SELECT max(x) FROM (SELECT TRANSFORM(id) USING 'cat' AS (x) FROM source)) FROM source", "TRANSFORM"),
        ("SELECT reflect('java.util.UUID', 'randomUUID') FROM source", "Java reflection"),
        ("SELECT id FROM source WHERE id IN (SELECT `java_method`('java.lang.Math', 'abs', 1))", "Java reflection"),
        ("SELECT system.builtin.try_reflect('java.util.UUID', 'randomUUID') FROM source", "Java reflection"),
        ("SELECT '${env:HOME}' AS home FROM source", "'${'"),
    ],
)
def test_the_driver_refuses_anything_but_one_query(session, sql, message):
    with pytest.raises(SpecError, match="transform_sql must be exactly one SELECT query") as caught:
        _checked_query(session, sql)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id FROM source",
        "WITH s AS (SELECT * FROM source) SELECT id AS b FROM s",
        "SELECT id, ';' AS semi FROM source -- trailing; comment",
        "SELECT 1 /* /* */ ; DROP TABLE x */ FROM source",  # Spark nests comments: nothing here runs
        "SELECT id AS reflected, 'reflect(' AS text FROM source",
        "SELECT window(current_timestamp(), '5 minutes') AS w, count(*) FROM source "
        "GROUP BY window(current_timestamp(), '5 minutes')",
    ],
)
def test_the_driver_accepts_one_query(session, sql):
    assert _checked_query(session, sql) == sql
    session.sql(sql).collect()  # and Spark runs it as that query
