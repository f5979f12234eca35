"""JSON from the lake, read as untrusted input: bounded bytes, nesting depth and integer digits.

Anyone who can write to a lake bucket can write any file into a checkpoint. ``json.loads``
alone turns hostile files into ``RecursionError`` (deep nesting), ``ValueError`` (integers of
over 4,300 digits) or a huge allocation. Every reader of a file from storage goes through
:func:`loads`, which ends in :class:`UntrustedJsonError` instead.

Standard library only: the Spark-side runner uses it too, and the Airflow side turns the
error into the project's named errors (see ``checkpoint/parsing.py``).
"""

from __future__ import annotations

import json
from typing import Any

#: Spark's offsets, commits and metadata lines and the runner's records are a few KiB at most.
DEFAULT_MAX_BYTES = 1024 * 1024
#: Spark's deepest JSON (a Kafka source's topic -> partition -> offset) is 3 levels; progress events about 6.
DEFAULT_MAX_DEPTH = 32
#: A Kafka offset or an epoch in milliseconds has at most 19 digits (a Java long).
DEFAULT_MAX_INT_DIGITS = 20


class UntrustedJsonError(ValueError):
    """A file from storage is not bounded, well-formed JSON: too big, too deep, too many digits, or not JSON."""


def _bounded_int(max_digits: int):
    def parse(text: str) -> int:
        if len(text.lstrip("-")) > max_digits:
            raise UntrustedJsonError(f"an integer of {len(text.lstrip('-'))} digits (more than {max_digits})")
        return int(text)

    return parse


def _refuse_constant(name: str) -> Any:
    raise UntrustedJsonError(f"the non-standard JSON constant {name}")


def _deepest(value: Any, limit: int) -> int:
    """Nesting depth of a parsed value, walked without recursion; stops once past ``limit``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def loads(
    data: bytes | str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_int_digits: int = DEFAULT_MAX_INT_DIGITS,
) -> Any:
    """Parse ``data`` as JSON within the bounds, or raise :class:`UntrustedJsonError` naming the bound."""
    size = len(data.encode("utf-8", errors="surrogatepass") if isinstance(data, str) else data)
    if size > max_bytes:
        raise UntrustedJsonError(f"{size} bytes, more than the {max_bytes} a file of this kind may hold")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UntrustedJsonError(f"not UTF-8 text (byte {err.start})") from None
    try:
        value = json.loads(data, parse_int=_bounded_int(max_int_digits), parse_constant=_refuse_constant)
    except UntrustedJsonError:
        raise
    except RecursionError:
        # The C scanner gives up near the interpreter's recursion limit, far below any real file's depth.
        raise UntrustedJsonError(f"nested deeper than {max_depth} levels") from None
    except ValueError as err:  # json.JSONDecodeError, or a float literal Python refuses
        raise UntrustedJsonError(f"not valid JSON ({getattr(err, 'msg', None) or err})") from None
    if _deepest(value, max_depth) > max_depth:
        raise UntrustedJsonError(f"nested deeper than {max_depth} levels")
    return value


def load_object(data: bytes | str, **bounds: int) -> dict[str, Any]:
    """:func:`loads`, requiring a JSON object."""
    value = loads(data, **bounds)
    if not isinstance(value, dict):
        raise UntrustedJsonError(f"a JSON {type(value).__name__}, not an object")
    return value


def is_ascii_decimal(text: str, max_digits: int = DEFAULT_MAX_INT_DIGITS) -> bool:
    """Whether ``text`` is 1..max_digits ASCII digits: the only names Spark and the runner write.

    ``str.isdigit`` also accepts ``"²"`` or Arabic-Indic digits, which ``int`` then refuses or reads.
    """
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()
