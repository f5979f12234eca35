"""The Spark-neutral query helpers the Connect route uses where no driver parser can be asked first."""

from __future__ import annotations

import pytest

from airflow_spark_streaming.runner.query import SpecError, outside_sql, secret_values, wrapped_query


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM source", "WITH a AS (SELECT * FROM source) SELECT * FROM a", "SELECT 1 FROM source -- note"],
)
def test_a_query_is_wrapped_as_a_subquery_with_line_breaks(sql):
    wrapped = wrapped_query(sql)
    assert wrapped == f"SELECT * FROM (\n{sql}\n) AS transform_sql"
    assert wrapped.splitlines()[-1] == ") AS transform_sql"  # a trailing comment cannot swallow it


@pytest.mark.parametrize(
    ("sql", "problem"),
    [("SELECT 1; DROP TABLE t", "';'"), ("SELECT '${env:HOME}' FROM source", "'\\$\\{'")],
)
def test_a_second_statement_or_a_substitution_is_refused_before_the_server_sees_it(sql, problem):
    with pytest.raises(SpecError, match=f"exactly one SELECT.*{problem}"):
        wrapped_query(sql)


@pytest.mark.parametrize(
    ("plan", "what"),
    [
        ("'Project [unresolvedalias('reflect(java.lang.System, exit, 1))]", "Java reflection"),
        ("'Project [unresolvedalias('`java_method`(a, b))]", "Java reflection"),
        ("ScriptTransformation cat, [a#1]", "a script"),
        ("'Project [*]\n+- 'UnresolvedRelation [source]", None),
        ("'Project ['reflection_count]", None),
    ],
)
def test_the_parsed_plan_is_searched_for_ways_out_of_sql(plan, what):
    found = outside_sql(plan)
    assert (found is None) if what is None else found.startswith(what)


def test_secret_values_are_the_control_key_and_the_resolved_connections_secrets():
    spec = {
        "control_key": "k" * 40,
        "source": {"kafka_connection": {"options": {"kafka.sasl.jaas.config": "jaas pw=abc"},
                                        "secret_keys": ["kafka.sasl.jaas.config"], "secret_values": ["abc"]}},
        "sink": {},
    }  # fmt: skip
    assert set(secret_values(spec)) >= {"jaas pw=abc", "abc"}
