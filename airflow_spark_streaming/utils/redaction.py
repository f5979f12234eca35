"""Which settings hold credentials, and how their values are kept out of logs, rendered fields and files.

The one place that decides whether an option or setting name is a credential:
the submit operator's ``conf``, the stream spec's source and sink options, the
Delta operators' ``spark_conf`` and ``storage_options``, the Kafka options
(:mod:`airflow_spark_streaming.kafka.options`) and the S3A settings
(:mod:`airflow_spark_streaming.hooks.storage`) all ask :func:`is_secret_key`, and
Spark's own redaction settings are made from the same pattern (:func:`spark_redaction_conf`).
Standard library only, apart from Airflow's secrets masker imported on use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any


def _secret_name_pattern(start: str, end: str) -> str:
    """The alternatives of a credential's name; ``start`` and ``end`` match where the name starts and ends.

    One text for every consumer: the Python check (:data:`SECRET_KEY`, ``^`` and ``$``) and the Java
    regular expressions Spark redacts with (:data:`SPARK_SECRET_NAME_REGEX`, :data:`SPARK_SECRET_TEXT_REGEX`).
    It uses only what both engines read alike: groups, classes and lookarounds of fixed width.
    """
    return (
        r"passw(or)?d|secret|token|jaas|credential|passphrase|signature"
        r"|(?<![a-z])(sas|pass|pwd)(?![a-z])"  # fs.azure.sas.*, *.auth.pass, db.pwd; not kafka.sasl.mechanism, bypass
        r"|(access|account|private|api|encryption|keystore|auth|client|master|control)[._-]?key(?![a-z])"
        r"|keyfile|key[._-]?(pem|password|json)"
        rf"|({start}|[._-])authorization{end}"  # a header: *.headers.Authorization, *.headers.Proxy-Authorization
        r"|user[._-]?info(?![a-z])"  # basic.auth.user.info (user:password)
    )


#: Option and setting names whose values are credentials; they never reach a command line, a log or XCom.
#: Covers S3A (access/secret key, session token, encryption key), ABFS (account key, OAuth client secret,
#: SAS tokens), Azure storage master keys, GCS (service-account private key and JSON keyfile), Kafka (SASL JAAS
#: config, SSL key, keystore and truststore passwords, PEM key), Schema Registry (``basic.auth.user.info``),
#: HTTP ``Authorization`` headers (OpenLineage's ``transport.headers.Authorization``), OpenLineage
#: (``transport.auth.apiKey``), the runner's ``control_key`` and Spark's own.
SECRET_KEY = re.compile(_secret_name_pattern("^", "$"), re.IGNORECASE)
#: Endings of names that match the above but hold a class name, a switch or a kind, never a credential.
_NOT_SECRET_ENDINGS = r"provider|provider\.type|\.type|\.enabled|\.class|\.mechanism|\.algorithm"
_NOT_SECRET = re.compile(rf"({_NOT_SECRET_ENDINGS})$", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    """``key`` names a credential (``fs.s3a.secret.key``, ``kafka.sasl.jaas.config``, ``fs.azure.account.key.x``)."""
    return bool(SECRET_KEY.search(key)) and not _NOT_SECRET.search(key)


#: A JAAS option, ``name=value`` or ``name="value"`` (Java's StreamTokenizer: backslash escapes inside quotes).
_JAAS_OPTION = re.compile(r'([A-Za-z_][\w.\-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;"]+))', re.DOTALL)
_JAAS_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}
#: Containers nested deeper than this are not searched (a hostile structure cannot exhaust the stack).
_MAX_DEPTH = 32


def jaas_secret_values(jaas: str) -> Iterator[str]:
    """The credential options inside a JAAS config (``password="..."``), as written and unescaped.

    Registered beside the whole config, so a log line that quotes only the password (a login error, a
    truncated config) is masked too.
    """
    for match in _JAAS_OPTION.finditer(jaas):
        name, quoted, bare = match.groups()
        if not is_secret_key(name):
            continue
        if bare:
            yield bare
        elif quoted:
            yield quoted
            yield re.sub(r"\\(.)", lambda m: _JAAS_ESCAPES.get(m.group(1), m.group(1)), quoted, flags=re.DOTALL)


_AUTHORIZATION = re.compile(r"(^|[._-])authorization$", re.IGNORECASE)
_USER_INFO = re.compile(r"user[._-]?info(?![a-z])", re.IGNORECASE)


def _credential_parts(key: str, value: str) -> Iterator[str]:
    """The credential inside a longer secret value, registered on its own too: a JAAS config's password,
    an ``Authorization`` header's token (after ``Bearer``/``Basic``), the password of ``user:password``."""
    if "jaas" in key.lower():
        yield from jaas_secret_values(value)
    elif _AUTHORIZATION.search(key) and " " in value.strip():
        yield value.strip().split(None, 1)[1]
    elif _USER_INFO.search(key) and ":" in value:
        yield value.split(":", 1)[1]


def secret_values(value: Any, _depth: int = 0) -> Iterator[str]:
    """Every credential value inside ``value``: mappings (nested), lists, and JSON strings holding either.

    A JAAS config yields its password on its own as well as the whole config (likewise an
    ``Authorization`` header's token and a ``user:password`` user info).
    """
    if _depth > _MAX_DEPTH:
        return
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[" and text:
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                return
            yield from secret_values(parsed, _depth + 1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if is_secret_key(str(key)) and isinstance(item, str | int | float) and not isinstance(item, bool):
                if str(item):
                    yield str(item)
                    if isinstance(item, str):
                        yield from _credential_parts(str(key), item)
            else:
                yield from secret_values(item, _depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_values(item, _depth + 1)


def mask_secrets(*values: Any) -> None:
    """Register every credential inside ``values`` with Airflow's secrets masker, raw and as JSON would quote it.

    A JSON-string spec holds the secret JSON-escaped (a JAAS config's quotes
    become ``\\"``), so that form is registered too.
    """
    from airflow.sdk.log import mask_secret

    for secret in {s for value in values for s in secret_values(value)}:
        mask_secret(secret)
        quoted = json.dumps(secret)[1:-1]
        if quoted != secret:
            mask_secret(quoted)


def mask_mapping_secrets(mapping: Any) -> Any:
    """Register the credentials in ``mapping`` with the secrets masker *before* it is validated; return it unchanged.

    For a constructor's first line, ahead of any check that could fail and so print
    the value: ``conf = mask_mapping_secrets(conf)``. Takes anything a user can pass
    (``None``, a mapping with keys that are not strings, a JSON string, a list, a
    Jinja template) and never raises for its shape: judging it is the validator's job.
    """
    if mapping is not None:
        mask_secrets(mapping)
    return mapping


def redact_mapping(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` with every credential value (at any depth, under a secret key) shown as ``***``."""
    if _depth > _MAX_DEPTH:
        return "***"
    if isinstance(value, Mapping):
        return {
            key: "***" if is_secret_key(str(key)) else redact_mapping(item, _depth + 1) for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_mapping(item, _depth + 1) for item in value]
    return value


def secret_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """The settings of ``conf`` that hold credentials (for a private properties file, never the command line)."""
    return {k: v for k, v in conf.items() if is_secret_key(k)}


# --- Spark's own redaction --------------------------------------------------------------------
#
# Spark redacts a setting's value in its UI, event log and ``spark-submit --verbose`` output when
# ``spark.redaction.regex`` finds a match in the setting's name or value, a Spark SQL option's value when that or
# ``spark.sql.redaction.options.regex`` does, and each part of a plan or SQL text ``spark.sql.redaction.string.regex``
# matches. Spark's defaults miss most of the names above (an ABFS account key, a GCS private key, a JAAS config),
# so every spark-submit and every Spark Connect session the provider starts extends them with the patterns below.
# They are Java regular expressions (what Spark compiles) written so that Python's ``re`` reads them alike,
# which is how the unit tests check them.

#: Spark's default ``spark.redaction.regex`` and ``spark.sql.redaction.options.regex``.
SPARK_DEFAULT_REDACTION_REGEX = r"(?i)secret|password|token|access[.]?key"
SPARK_DEFAULT_OPTIONS_REDACTION_REGEX = r"(?i)url"
#: Spark's core setting that ``spark.sql.redaction.string.regex`` falls back to when unset.
SPARK_STRING_REDACTION_FALLBACK = "spark.redaction.string.regex"
#: The text Spark puts in place of what it redacts.
SPARK_REDACTED = "*********(redacted)"

_NAME_CHAR = r"[A-Za-z0-9_.\-]"
#: No space or ``#`` anywhere (a user's ``(?x)`` would drop them); flags scoped, so a user's ``(?m)`` changes nothing.
_FLAGS = "(?iu-mx:"
#: A name ``is_secret_key`` accepts, as a whole key or value: Spark searches both with this.
SPARK_SECRET_NAME_REGEX = (
    rf"{_FLAGS}^(?!(?s:.*)(?:{_NOT_SECRET_ENDINGS})$)(?s:.*?)(?:{_secret_name_pattern('^', '$')})"
    r"|PRIVATE\x20KEY)"  # a PEM private key given inline, whatever its setting is called
)
#: Such a name followed by its value inside longer text (``k=v``, ``k: v``, ``k -> v``, ``"k": "v"``), or a PEM
#: private key block. The name (and a quote before it) must be a whole word, with no name character on either
#: side; a value is quoted (to its closing quote) or runs to a space, comma, semicolon, quote or closing bracket;
#: a value Spark already shows as redacted is left alone. Possessive and lookahead-only steps keep it linear.
SPARK_SECRET_TEXT_REGEX = (
    rf"{_FLAGS}(?<!{_NAME_CHAR})[\"']?(?<!{_NAME_CHAR})(?!{_NAME_CHAR}*?(?:{_NOT_SECRET_ENDINGS})(?!{_NAME_CHAR}))"
    rf"(?={_NAME_CHAR}*?(?:{_secret_name_pattern(f'(?<!{_NAME_CHAR})', f'(?!{_NAME_CHAR})')})){_NAME_CHAR}++"
    r"[\"']?[\x20\t]*+(?:=|:|->)[\x20\t]*+(?!\*{9}\(redacted\))"
    r"(?:\"(?:[^\"\\]|\\.)*+\"?|'(?:[^'\\]|\\.)*+'?|(?:(?:Bearer|Basic)[\x20\t]++)?[^\x20\t\r\n,;)\]}\"']++)"
    r"|-----BEGIN\x20[A-Z\x20]*PRIVATE\x20KEY-----[^-]*+(?:-----END\x20[A-Z\x20]*PRIVATE\x20KEY-----)?)"
)


def _extended(current: str | None, ours: str) -> str:
    """``current`` (a Java regex, or ``None``) with ``ours`` as one more alternative, once."""
    if current is None:
        return ours
    return current if ours in current else f"{current}|{ours}"


def spark_redaction_conf(conf: Mapping[str, str] | None = None, *, session_only: bool = False) -> dict[str, str]:
    """Spark's redaction settings, each extended to cover every name :func:`is_secret_key` accepts.

    What ``conf`` sets for them is kept and extended, never replaced; where it sets nothing the extension is
    of Spark's default (``spark.sql.redaction.string.regex`` then extends ``spark.redaction.string.regex``,
    its fallback, if ``conf`` sets that). ``session_only`` leaves out ``spark.redaction.regex``, which a
    running server reads only at its start (a Spark Connect session can set the SQL ones).
    """
    conf = conf or {}
    string_regex = conf.get("spark.sql.redaction.string.regex", conf.get(SPARK_STRING_REDACTION_FALLBACK))
    settings = {
        "spark.redaction.regex": _extended(
            conf.get("spark.redaction.regex", SPARK_DEFAULT_REDACTION_REGEX), SPARK_SECRET_NAME_REGEX
        ),
        "spark.sql.redaction.options.regex": _extended(
            conf.get("spark.sql.redaction.options.regex", SPARK_DEFAULT_OPTIONS_REDACTION_REGEX),
            SPARK_SECRET_NAME_REGEX,
        ),
        "spark.sql.redaction.string.regex": _extended(string_regex, SPARK_SECRET_TEXT_REGEX),
    }
    if session_only:
        del settings["spark.redaction.regex"]
    return settings


# --- Java properties files --------------------------------------------------------------------

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\f": "\\f",
            "=": "\\=", ":": "\\:", "#": "\\#", "!": "\\!"}  # fmt: skip


def escape_property(text: str, *, key: bool) -> str:
    """``text`` escaped as ``java.util.Properties.store`` would: separators, line breaks, comment marks, and every
    character outside printable ASCII as ``\\uXXXX`` (UTF-16 units), so no value can start another property."""
    out = []
    for index, char in enumerate(text):
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char == " " and (key or index == 0):
            out.append("\\ ")
        elif " " <= char <= "~":
            out.append(char)
        else:
            encoded = char.encode("utf-16-be")
            out.extend(f"\\u{int.from_bytes(encoded[i : i + 2], 'big'):04X}" for i in range(0, len(encoded), 2))
    return "".join(out)


def properties_text(conf: Mapping[str, str]) -> str:
    """A Java properties file holding ``conf`` exactly."""
    return "".join(f"{escape_property(str(k), key=True)}={escape_property(str(v), key=False)}\n"
                   for k, v in conf.items())  # fmt: skip
