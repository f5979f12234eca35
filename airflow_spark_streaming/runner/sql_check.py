"""The parse-time check that ``transform_sql`` is one query over the view ``source``, by a real SQL parser.

``transform_sql`` goes to ``spark.sql``, which runs a command at once, so it must be
exactly one query: a SELECT (``WITH ... SELECT``, a UNION of SELECTs) that reads only
the view ``source`` and the names its own ``WITH`` defines. This check parses it with
sqlglot's Spark dialect when the DAG is parsed and refuses everything else: a second
statement or any ``;``, INSERT (also after WITH), CREATE, DROP, SET and other commands,
a table, path or table function other than ``source``, a script (``TRANSFORM ...
USING``), Java reflection (``reflect``, ``java_method``) and ``${`` anywhere (Spark's
variable substitution). What sqlglot cannot read is refused too. Spark's own parser
judges the text again on the driver before the query starts
(:func:`airflow_spark_streaming.runner.jobs.stream_runner._checked_query`).

sqlglot is imported lazily, inside the check: importing the provider stays cheap.
"""

from __future__ import annotations

from typing import Any

#: The view the runner registers for the source; the only relation ``transform_sql`` may read.
SOURCE_VIEW = "source"
#: Spark replaces ``${name}``, ``${env:NAME}`` and ``${system:name}`` in the text before parsing it
#: (``spark.sql.variable.substitute``): settings, the driver's environment and JVM properties would reach the query.
SUBSTITUTION_PROBLEM = (
    "may not hold '${': Spark replaces ${...} with settings, environment variables or JVM properties before "
    "parsing; write the value itself"
)
#: Spark functions that call any static Java method: a way out of SQL.
REFLECTION_FUNCTIONS = frozenset({"reflect", "java_method", "try_reflect"})
_ONE_QUERY = "must be a SELECT (or WITH ... SELECT) statement"


def transform_sql_problem(sql: object) -> str | None:
    """Why ``sql`` is not one SELECT over ``source``, or ``None`` when it is one."""
    if not isinstance(sql, str) or not sql.strip():
        return "must be a SELECT statement over the view named 'source'"
    if "${" in sql:
        return SUBSTITUTION_PROBLEM
    import sqlglot
    from sqlglot.errors import SqlglotError
    from sqlglot.tokens import TokenType

    dialect = sqlglot.Dialect.get_or_raise("spark")
    try:
        tokens = dialect.tokenize(sql)
    except SqlglotError:
        return "is not readable SQL: close every string, backquoted name and /* comment */"
    if not tokens:
        return "must be a SELECT statement over the view named 'source', not only a comment"
    if any(token.token_type == TokenType.SEMICOLON for token in tokens):
        return "must be exactly one statement, without ';': remove it and whatever follows it"
    try:
        statements = [s for s in dialect.parser().parse(_window_calls_as_names(tokens), sql) if s is not None]
    except SqlglotError as err:
        return f"cannot be read as one Spark SQL query ({_first_error(err)}); write it as a plain SELECT over 'source'"
    except RecursionError:
        return "nests too deeply to be read; write it with fewer nested parentheses or subqueries"
    if len(statements) != 1:
        return "must be exactly one statement, without ';': remove it and whatever follows it"
    try:
        return _query_problem(statements[0], first_word=tokens[0].text.upper())
    except RecursionError:
        return "nests too deeply to be read; write it with fewer nested parentheses or subqueries"


def _window_calls_as_names(tokens: list) -> list:
    """``tokens`` with each ``window(`` read as a function name, as Spark reads it.

    sqlglot stops a GROUP BY at the keyword WINDOW (a named-window clause), so ``GROUP BY window(ts,
    '5 minutes')``, the usual streaming aggregation, would not parse. A WINDOW clause is never followed
    by ``(``, so a WINDOW token right before one is the ``window`` function.
    """
    from sqlglot.tokens import Token, TokenType

    out = list(tokens)
    for i, token in enumerate(tokens[:-1]):
        if token.token_type == TokenType.WINDOW and tokens[i + 1].token_type == TokenType.L_PAREN:
            out[i] = Token(TokenType.VAR, token.text, token.line, token.col, token.start, token.end)
    return out


def _first_error(err: Any) -> str:
    errors = getattr(err, "errors", None) or []
    if not errors:
        return str(err).splitlines()[0][:200]
    first = errors[0]
    return f"line {first.get('line')}, column {first.get('col')}: {first.get('description')}"


def _query_problem(statement: Any, first_word: str) -> str | None:
    from sqlglot import exp

    root = statement
    while isinstance(root, exp.Subquery):  # (SELECT ...) is a query too
        root = root.this
    if not isinstance(root, exp.Select | exp.SetOperation):
        return f"{_ONE_QUERY}, not {_kind(root) if _is_statement(root) else first_word}"
    reads_source = False
    # A hint (/*+ BROADCAST(t) */) names a relation, it reads nothing: its insides are not walked.
    for node in statement.walk(prune=lambda n: isinstance(n, exp.Hint)):
        if isinstance(node, exp.Hint):
            if node.find(exp.Query):
                return "may not hold a query inside a hint (/*+ ... */)"
            continue
        if isinstance(node, exp.DML | exp.DDL | exp.Command | exp.Into) or type(node).__name__ in _COMMANDS:
            return f"{_ONE_QUERY}, not one holding {_kind(node)}"
        if isinstance(node, exp.QueryTransform):
            return "may not run a script (TRANSFORM ... USING): write the transformation in SQL"
        if isinstance(node, exp.Func) and _function_name(node) in REFLECTION_FUNCTIONS:
            return f"may not call {_function_name(node)}(): it runs Java methods outside SQL"
        if isinstance(node, exp.Table):
            problem = _relation_problem(node)
            if problem:
                return problem
            reads_source = reads_source or _is_source(node)
    if not reads_source:
        return "must read the view named 'source' (outside strings and comments)"
    return None


#: Statements sqlglot parses into their own nodes (outside DML, DDL and Command) that a query may not hold.
_COMMANDS = frozenset(
    {"Alter", "Analyze", "Cache", "Describe", "Drop", "Grant", "LoadData", "Pragma", "Refresh", "Set", "Show",
     "TruncateTable", "Uncache", "Use", "Commit", "Rollback", "Transaction", "Revoke", "Comment", "Summarize"}
)  # fmt: skip


def _is_statement(node: Any) -> bool:
    from sqlglot import exp

    return isinstance(node, exp.DML | exp.DDL | exp.Command | exp.Into | exp.Values) or type(node).__name__ in _COMMANDS


def _kind(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Command):
        return str(node.this).upper()
    if isinstance(node, exp.Into):
        return "SELECT ... INTO"
    return node.key.upper()


def _function_name(node: Any) -> str:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    return node.sql_name().lower()


def _is_source(table: Any) -> bool:
    return _unqualified_name(table) == SOURCE_VIEW and SOURCE_VIEW not in _cte_names_in_scope(table)


def _unqualified_name(table: Any) -> str | None:
    """The table's name when it is a plain name (no catalog, database, path or function), lower-cased."""
    from sqlglot import exp

    if not isinstance(table.this, exp.Identifier) or table.args.get("db") or table.args.get("catalog"):
        return None
    return table.this.name.lower()


def _relation_problem(table: Any) -> str | None:
    name = _unqualified_name(table)
    if name is not None and (name == SOURCE_VIEW or name in _cte_names_in_scope(table)):
        return None
    shown = ".".join(table.args[k].sql("spark") for k in ("catalog", "db", "this") if table.args.get(k))
    return (
        f"may read only the view named 'source' (and names its own WITH defines), not {shown[:100]}: "
        "a table, a path or a table function"
    )


def _cte_names_in_scope(table: Any) -> set[str]:
    """The ``WITH`` names visible where ``table`` is written (a CTE sees only the ones before it, unless RECURSIVE)."""
    from sqlglot import exp

    names: set[str] = set()
    path = [table]
    node = table.parent
    while node is not None:
        path.append(node)
        with_ = node.args.get("with_") or node.args.get("with")
        if isinstance(with_, exp.With):
            ctes = list(with_.expressions)
            if len(path) >= 3 and path[-2] is with_ and not with_.args.get("recursive"):  # inside a CTE
                ctes = ctes[: next((i for i, cte in enumerate(ctes) if cte is path[-3]), len(ctes))]
            names.update(cte.alias_or_name.lower() for cte in ctes)
        node = node.parent
    return names
