"""``transform_sql`` read by a real parser when the DAG is parsed, and ``zorder_by`` names quoted in the driver's SQL.

Spark's own parser judges the text again on the driver (``_checked_query``): see
``tests/integration/runner/test_checked_query.py``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_spark_streaming.exceptions import TransformSqlError
from airflow_spark_streaming.runner.spec import validate_stream_spec
from airflow_spark_streaming.runner.sql_check import transform_sql_problem

_SPEC = {"query_name": "q", "checkpoint_location": "/tmp/cp", "source": {"format": "rate"},
         "sink": {"format": "console"}}  # fmt: skip


def _refusal(sql: str) -> str:
    with pytest.raises(TransformSqlError) as caught:
        validate_stream_spec({**_SPEC, "transform_sql": sql})
    assert str(caught.value).startswith("stream spec transform_sql: ")
    return str(caught.value)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # a second statement, however it is hidden
        ("SELECT * FROM source; DROP TABLE t", "without ';'"),
        ("SELECT * FROM source;", "without ';'"),
        ("SELECT * FROM source;\n", "without ';'"),
        ("SELECT 1 -- FROM source\n; DROP TABLE x", "without ';'"),
        ("SELECT * FROM source /* ; */; INSERT INTO t SELECT 1", "without ';'"),
        ("SELECT * FROM source WHERE a = 'x' -- note\n;DELETE FROM t", "without ';'"),
        ("SELECT * FROM source /* unterminated ; DROP TABLE t", "close every string"),
        ("SELECT 'unterminated FROM source", "close every string"),
        # commands and writes, also after WITH
        ("DROP TABLE source", "not DROP"),
        ("INSERT INTO t SELECT * FROM source", "not INSERT"),
        ("WITH s AS (SELECT * FROM source) INSERT INTO t SELECT * FROM s", "not INSERT"),
        ("WITH s AS (SELECT * FROM source) INSERT OVERWRITE TABLE t SELECT * FROM s", "not INSERT"),
        ("CREATE TABLE t AS SELECT * FROM source", "not CREATE"),
        ("CREATE TEMPORARY VIEW v AS SELECT * FROM source", "not CREATE"),
        ("SET spark.sql.ansi.enabled=false", "not SET"),
        ("CACHE TABLE source", "not CACHE"),
        ("EXPLAIN SELECT * FROM source", "not EXPLAIN"),
        ("VALUES (1)", "not VALUES"),
        ("TABLE source", "not TABLE"),
        ("/* only a comment */", "only a comment"),
        ("-- SELECT * FROM source", "only a comment"),
        # reading anything but the view source
        ("SELECT 1 -- FROM source", "must read the view named 'source'"),
        ("SELECT 'source' AS s", "must read the view named 'source'"),
        ("SELECT * FROM orders", "not orders"),
        ("SELECT * FROM source WHERE id IN (SELECT id FROM secrets)", "not secrets"),
        ("SELECT * FROM source JOIN spark_catalog.default.users USING (id)", "not spark_catalog.default.users"),
        ("SELECT * FROM source, parquet.`/etc/hosts`", "not parquet.`/etc/hosts`"),
        ("SELECT * FROM source, read_files('/etc')", "a table function"),
        ("SELECT * FROM source, IDENTIFIER('users')", "a table function"),
        ("SELECT * FROM (WITH t AS (SELECT * FROM source) SELECT * FROM t) x JOIN t", "not t"),  # t out of scope
        ("WITH a AS (SELECT * FROM b), b AS (SELECT * FROM source) SELECT * FROM a", "not b"),  # b defined later
        ("WITH source AS (SELECT * FROM users) SELECT * FROM source", "not users"),
        ("SELECT /*+ REPARTITION((SELECT max(id) FROM users)) */ * FROM source", "inside a hint"),
        # ways out of SQL
        ("SELECT TRANSFORM(value) USING 'cat /etc/passwd' AS (x) FROM source", "TRANSFORM ... USING"),
        ("SELECT reflect('java.lang.System', 'exit', 1) FROM source", "reflect()"),
        ("SELECT `java_method`('java.lang.System', 'getenv', 'HOME') FROM source", "java_method()"),
        ("SELECT system.builtin.try_reflect('java.util.UUID', 'randomUUID') FROM source", "try_reflect()"),
        ("SELECT '${env:AWS_SECRET_ACCESS_KEY}' AS leak FROM source", "may not hold '${'"),
        ("SELECT * FROM source WHERE a = ${x}", "may not hold '${'"),
        # what the parser cannot read is refused, never waved through
        ("SELECT * FROM source INTO t", "cannot be read as one Spark SQL query"),
        ("", "must be a SELECT statement"),
        ("   ", "must be a SELECT statement"),
    ],
)
def test_hostile_transform_sql_is_refused_with_a_named_error(sql, message):
    assert message in _refusal(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM source",
        "  /* lead */ select * from SOURCE",
        "SELECT value, ';' AS semi, '--' AS dashes, 'DROP TABLE t' AS text FROM source -- trailing; comment",
        "SELECT 'a\\';DROP TABLE x;--' AS s FROM source",  # a backslash-escaped quote does not end the string
        "SELECT 1 /* ; DROP TABLE x */ FROM source",  # a comment hides nothing that runs
        "SELECT 1 /* /* */ ; DROP TABLE x */ FROM source",  # Spark nests comments, and so does the check
        "WITH s AS (SELECT * FROM `source`) SELECT * FROM s",
        "WITH a AS (SELECT * FROM source), b AS (SELECT * FROM a) SELECT * FROM b",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r, source",
        "SELECT * FROM source UNION ALL SELECT * FROM source",
        "(SELECT * FROM source)",
        "FROM source SELECT *",
        "SELECT * FROM source s WHERE EXISTS (SELECT 1 FROM source t WHERE t.id = s.id)",
        "SELECT * FROM source LATERAL VIEW explode(items) t AS item",
        "SELECT /*+ REPARTITION(4) */ * FROM source",
        "SELECT /*+ BROADCAST(source) */ * FROM source",
        # the streaming aggregation sqlglot alone cannot parse (WINDOW is also a clause keyword)
        "SELECT window(ts, '5 minutes') AS w, count(*) AS n FROM source GROUP BY window(ts, '5 minutes')",
        "SELECT count(*) FROM source GROUP BY window(ts, '10 minutes', '5 minutes'), k HAVING count(*) > 1",
        "SELECT k, sum(v) OVER w FROM source WINDOW w AS (PARTITION BY k)",
        "SELECT CAST(key AS STRING) AS k, from_json(CAST(value AS STRING), 'a INT') AS v FROM source",
        "SELECT transform(arr, x -> x + 1) AS a FROM source",
    ],
)
def test_one_query_over_source_is_accepted(sql):
    assert transform_sql_problem(sql) is None
    assert validate_stream_spec({**_SPEC, "transform_sql": sql})["transform_sql"] == sql


def test_deep_nesting_is_refused_not_a_crash():
    assert "nests too deeply" in _refusal("SELECT " + "(" * 5000 + "1" + ")" * 5000 + " FROM source")


def test_importing_the_spec_module_does_not_import_sqlglot():
    code = "import sys\nimport airflow_spark_streaming.runner.spec\nprint('sqlglot' in sys.modules)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


# --- zorder_by in the driver's OPTIMIZE ---------------------------------------------------------


class _Spark:
    def __init__(self):
        self.statements: list[str] = []

    def sql(self, statement):
        self.statements.append(statement)
        return self

    def collect(self):
        return []


def test_zorder_names_are_backquoted_with_backquotes_doubled():
    from airflow_spark_streaming.delta import spark_maintenance

    spark = _Spark()
    spark_maintenance.optimize(spark, {"table": "/lake/t`x", "zorder_by": ["id", "a`) ; DROP TABLE t; --", "b c"]})
    assert spark.statements == ["OPTIMIZE delta.`/lake/t``x` ZORDER BY (`id`, `a``) ; DROP TABLE t; --`, `b c`)"]


@pytest.mark.parametrize("bad", ["", None, 7])
def test_a_zorder_name_that_is_not_a_name_is_refused(bad):
    from airflow_spark_streaming.delta import spark_maintenance

    spark = _Spark()
    with pytest.raises(ValueError):  # refused before any SQL is built
        spark_maintenance.optimize(spark, {"table": "/lake/t", "zorder_by": [bad]})
    assert spark.statements == []
    with pytest.raises(ValueError, match="non-empty string"):
        spark_maintenance.quote_identifier(bad)


# --- the driver's check, if Spark's parseQuery ever stopped at the end of a query -----------------


class _Plan:
    def __init__(self, kind: str, text: str = "'Project [*]\n+- 'UnresolvedRelation [source]"):
        self.kind, self.text = kind, text

    def getClass(self):  # noqa: N802 - Py4J's spelling
        kind = self.kind

        class _Class:
            def getName(self):  # noqa: N802
                return f"org.apache.spark.sql.catalyst.plans.logical.{kind}"

        return _Class()

    def nodeName(self):  # noqa: N802
        return self.kind

    def toString(self):  # noqa: N802
        return self.text


class _LaxParser:
    """A ``parseQuery`` that reads a query and ignores what follows; ``parsePlan`` is the whole-input judge."""

    def __init__(self, plan):
        self.plan = plan

    def parseQuery(self, sql):  # noqa: N802
        return _Plan("Project")

    def parsePlan(self, sql):  # noqa: N802
        if isinstance(self.plan, Exception):
            raise self.plan
        return self.plan


def _lax_spark(plan):
    from types import SimpleNamespace

    parser = _LaxParser(plan)
    state = SimpleNamespace(sqlParser=lambda: parser)
    return SimpleNamespace(_jsparkSession=SimpleNamespace(sessionState=lambda: state))


def test_the_driver_needs_the_whole_text_to_be_that_one_query_even_from_a_lax_parse_query():
    from airflow_spark_streaming.runner.jobs.stream_runner import SpecError, _checked_query

    with pytest.raises(SpecError, match="extra input 'DROP'"):
        _checked_query(_lax_spark(RuntimeError("[PARSE_SYNTAX_ERROR] extra input 'DROP'")), "SELECT 1; DROP TABLE x")
    with pytest.raises(SpecError, match="reads it as InsertIntoStatement, not as the query Project"):
        _checked_query(_lax_spark(_Plan("InsertIntoStatement")), "SELECT 1 INSERT INTO t SELECT 2")
    assert _checked_query(_lax_spark(_Plan("Project")), "SELECT * FROM source") == "SELECT * FROM source"
