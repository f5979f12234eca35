"""A cheap parse-time check that ``transform_sql`` is one SELECT over the view ``source``.

Spark's own parser judges the statement on the driver (the stream runner refuses
anything but a query before it starts); this check only catches, when the DAG
is parsed, what is plainly not one query: a second statement after ``;``, a
statement that is not SELECT or WITH, or SQL that never reads ``source``.
Standard library only.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _code_tokens(sql: str) -> tuple[list[str], list[int]]:
    """Words and backquoted identifiers outside string literals and comments, and the positions of ``;``."""
    words: list[str] = []
    semicolons: list[int] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif char in "'\"":
            i += 1
            while i < n and sql[i] != char:
                i += 2 if sql[i] == "\\" else 1
            i += 1
        elif char == "`":
            end = sql.find("`", i + 1)
            end = n if end < 0 else end
            words.append(sql[i + 1 : end])
            i = end + 1
        elif char == ";":
            semicolons.append(i)
            i += 1
        elif match := _WORD.match(sql, i):
            words.append(match.group())
            i = match.end()
        else:
            i += 1
    return words, semicolons


def transform_sql_problem(sql: object) -> str | None:
    """Why ``sql`` is not one SELECT over ``source`` (``None`` when it may be; Spark's parser decides on the driver)."""
    if not isinstance(sql, str) or not sql.strip():
        return "must be a SELECT statement over the view named 'source'"
    words, semicolons = _code_tokens(sql)
    if semicolons:
        return "must be exactly one statement, without ';': remove it and whatever follows it"
    if not words or words[0].upper() not in ("SELECT", "WITH"):
        return f"must be a SELECT (or WITH ... SELECT) statement, not {words[0].upper() if words else 'empty'}"
    if not any(word.lower() == "source" for word in words[1:]):
        return "must read the view named 'source' (outside strings and comments)"
    return None
