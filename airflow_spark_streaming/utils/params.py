"""Parameter validators shared by the operators, sensors and triggers: bad values fail when the DAG is parsed.

Each validator takes ``owner`` (who is asking, e.g. ``"KafkaLagSensor(wait_lag)"``),
the parameter ``name`` and its ``value``, and returns the value normalised or
raises :class:`~airflow_spark_streaming.exceptions.InvalidParameterError` naming
the parameter, the problem and the fix. An error shows the value only when it
cannot be a credential (see :func:`shown`): a mapping's values never, so a
secret cannot reach a DAG import error. Values that are still Jinja templates
are checked after rendering by the caller (see :func:`is_template`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from airflow_spark_streaming.exceptions import InvalidMavenCoordinateError, InvalidParameterError

_TEMPLATE = re.compile(r"\{\{|\{%")
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")


def is_template(value: Any) -> bool:
    """Whether ``value`` is only known when the task runs: a Jinja template string, or an ``XComArg``
    (anything Airflow resolves at run time), so it is checked after rendering instead of at parse time."""
    if isinstance(value, str):
        return bool(_TEMPLATE.search(value))
    return callable(getattr(value, "resolve", None)) and callable(getattr(value, "iter_references", None))


#: Longest value text an error message repeats; longer values are described, not shown.
_SHOWN_CHARS = 120


def shown(name: str, value: Any) -> str:
    """``value`` as an error message may show it: never a credential.

    Numbers, booleans, durations and short plain strings are shown as written;
    a mapping is shown by its keys only (its values may be credentials, and the
    masker may not know them yet when the DAG is parsed), and anything under a
    secret-looking name, or holding a credential (a JSON string, a list holding
    a mapping), only by its type.
    """
    from airflow_spark_streaming.utils.redaction import is_secret_key, secret_values

    if isinstance(value, bool | int | float | timedelta) or value is None:
        return repr(value)
    kind = type(value).__name__
    if is_secret_key(name) or next(secret_values(value), None) is not None:
        return f"<a {kind}, not shown>"
    if isinstance(value, Mapping):
        keys = ", ".join(repr(k) if isinstance(k, str) else f"<a {type(k).__name__}>" for k in list(value)[:10])
        return f"<a {kind} with keys {keys}{', ...' if len(value) > 10 else ''}; values not shown>"
    if isinstance(value, str | list | tuple | set | frozenset) and not _holds_mapping(value):
        text = repr(value)
        if len(text) <= _SHOWN_CHARS:
            return text
        return f"<a {kind} of {len(value)} {'characters' if isinstance(value, str) else 'items'}>"
    return f"<a {kind}, not shown>"


def _holds_mapping(value: Any, depth: int = 0) -> bool:
    if isinstance(value, Mapping) or depth > 4:
        return True
    return isinstance(value, list | tuple | set | frozenset) and any(_holds_mapping(v, depth + 1) for v in value)


def _refuse(owner: str, name: str, value: Any, problem: str) -> InvalidParameterError:
    """The error naming the parameter and the problem; the value only as :func:`shown` allows."""
    return InvalidParameterError(f"{owner}: {name}={shown(name, value)} {problem}")


def seconds(owner: str, name: str, value: Any, *, optional: bool = False, allow_zero: bool = False) -> float | None:
    """A duration as positive finite seconds, from a number or a :class:`~datetime.timedelta`.

    Strings and booleans are refused: ``"30"`` hides a unit mistake and ``True`` is an accident.
    """
    if value is None and optional:
        return None
    if isinstance(value, timedelta):
        number = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    else:
        raise _refuse(owner, name, value, "is not a duration; pass a number of seconds or a datetime.timedelta.")
    if not math.isfinite(number):
        raise _refuse(owner, name, value, "is not finite; pass a positive number of seconds.")
    if number < 0 or (number == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise _refuse(owner, name, value, f"must be {bound} seconds.")
    return number


def integer(owner: str, name: str, value: Any, *, optional: bool = False, minimum: int | None = None) -> int | None:
    """An integer, from an ``int`` or the text of one (a rendered template); ``1.9`` and ``True`` are refused.

    ``None`` and ``""`` mean unset when ``optional``.
    """
    if optional and (value is None or value == ""):
        return None
    if isinstance(value, bool):
        raise _refuse(owner, name, value, "is a boolean; pass an integer.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.match(value):
        number = int(value)
    else:
        raise _refuse(owner, name, value, "is not an integer; pass a whole number (1.9 is not rounded).")
    if minimum is not None and number < minimum:
        raise _refuse(owner, name, value, f"must be at least {minimum}.")
    return number


def positive_integer(owner: str, name: str, value: Any, *, optional: bool = False) -> int | None:
    """An integer of at least 1 (a size, a count); 0 is refused rather than read as "the default"."""
    return integer(owner, name, value, optional=optional, minimum=1)


def string_list(owner: str, name: str, value: Any, *, optional: bool = False) -> list[str] | None:
    """A list of non-empty strings; a single string is refused (it would be iterated character by character)."""
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | set | frozenset):
        raise _refuse(owner, name, value, "must be a list of strings, e.g. ['a', 'b'], not a single string.")
    items = list(value)
    if not all(isinstance(item, str) and item.strip() for item in items):
        raise _refuse(owner, name, value, "must hold only non-empty strings.")
    return items


def mapping(owner: str, name: str, value: Any, *, optional: bool = True) -> dict[str, Any]:
    """A mapping with string keys (``None`` is an empty one when ``optional``)."""
    if value is None and optional:
        return {}
    problem = "must be a mapping of string keys to values, e.g. {'key': 'value'}"
    if not isinstance(value, Mapping):  # a string may hold credentials too (JSON, properties): only its type is named
        raise InvalidParameterError(f"{owner}: {name}=<a {type(value).__name__}, not shown> {problem}.")
    bad = [k for k in value if not isinstance(k, str)]
    if bad:  # the keys that are not strings are named, never a value
        keys = ", ".join(repr(k) if isinstance(k, int | float) else f"<a {type(k).__name__}>" for k in bad[:5])
        raise InvalidParameterError(
            f"{owner}: {name}=<a {type(value).__name__}, values not shown> {problem}; these keys are not strings: "
            f"{keys}."
        )
    return dict(value)


def choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise _refuse(owner, name, value, f"is not one of {', '.join(map(repr, choices))}.")
    return value


def maven_coordinates(owner: str, name: str, value: Any) -> list[str]:
    """A list of ``group:artifact:version`` coordinates; raises :class:`InvalidMavenCoordinateError`."""
    from airflow_spark_streaming.spark.jvm import validate_coordinate

    items = string_list(owner, name, value) or []
    try:
        return [validate_coordinate(item) for item in items]
    except InvalidMavenCoordinateError as err:
        raise InvalidMavenCoordinateError(f"{owner}: {name}: {err}") from err


def strict_bool(owner: str, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(owner, name, value, "must be True or False.")
    return value


def partition_filters(owner: str, name: str, value: Any) -> list[tuple[str, str, Any]] | None:
    """delta-rs style filters: a list of ``(column, operator, value)``; a string is refused, not iterated."""
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _refuse(
            owner, name, value, "must be a list of (column, operator, value) tuples, e.g. [('day', '=', '2026-01-31')]."
        )
    for item in value:
        if (
            isinstance(item, str | bytes)
            or not isinstance(item, Sequence)
            or len(item) != 3
            or not isinstance(item[0], str)
            or not isinstance(item[1], str)
        ):
            raise _refuse(
                owner, name, value, f"has {shown(name, item)}, which is not a (column, operator, value) tuple."
            )
    return [tuple(item) for item in value]


def absolute_locations(owner: str, name: str, value: Any) -> list[str]:
    """A list of absolute paths or URIs (``/lake/ckpt``, ``s3://lake/ckpt``); templated entries pass until rendered.

    A relative path would resolve against whichever worker runs the task, so it is refused.
    """
    if is_template(value):
        return value
    items = string_list(owner, name, value if value is not None else []) or []
    relative = [item for item in items if not is_template(item) and "://" not in item and not item.startswith("/")]
    if relative:
        raise _refuse(
            owner, name, value, f"holds {relative[0]!r}, which is not absolute; write '/path/to/checkpoint' or a URI."
        )
    return items
