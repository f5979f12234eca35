"""Which settings hold credentials, and how their values are kept out of logs, rendered fields and files.

The one place that decides whether an option or setting name is a credential:
the submit operator's ``conf``, the stream spec's source and sink options, the
Delta operators' ``spark_conf`` and ``storage_options``, the Kafka options
(:mod:`airflow_spark_streaming.kafka.options`) and the S3A settings
(:mod:`airflow_spark_streaming.hooks.storage`) all ask :func:`is_secret_key`.
Standard library only, apart from Airflow's secrets masker imported on use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

#: Option and setting names whose values are credentials; they never reach a command line, a log or XCom.
#: Covers S3A (access/secret key, session token, encryption key), ABFS (account key, OAuth client secret,
#: SAS tokens), GCS (service-account private key and JSON keyfile), Kafka (SASL JAAS config, SSL key,
#: keystore and truststore passwords, PEM key), OpenLineage (``transport.auth.apiKey``) and Spark's own.
SECRET_KEY = re.compile(
    r"passw(or)?d|secret|token|jaas|credential|passphrase|signature"
    r"|(?<![a-z])sas(?![a-z])"  # fs.azure.sas.*, not kafka.sasl.mechanism
    r"|(access|account|private|api|encryption|keystore|auth|client)[._-]?key(?![a-z])"
    r"|keyfile|key[._-]?(pem|password|json)",
    re.IGNORECASE,
)
#: Names that match the above but hold a class name, a switch or a kind, never a credential.
_NOT_SECRET = re.compile(r"(provider|provider\.type|\.type|\.enabled|\.class|\.mechanism|\.algorithm)$", re.I)


def is_secret_key(key: str) -> bool:
    """``key`` names a credential (``fs.s3a.secret.key``, ``kafka.sasl.jaas.config``, ``fs.azure.account.key.x``)."""
    return bool(SECRET_KEY.search(key)) and not _NOT_SECRET.search(key)


def secret_values(value: Any) -> Iterator[str]:
    """Every credential value inside ``value``: mappings (nested), lists, and JSON strings holding either."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in "{[" and text:
            try:
                yield from secret_values(json.loads(text))
            except ValueError:
                return
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if is_secret_key(str(key)) and isinstance(item, str | int | float) and not isinstance(item, bool):
                if str(item):
                    yield str(item)
            else:
                yield from secret_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from secret_values(item)


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


def secret_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """The settings of ``conf`` that hold credentials (for a private properties file, never the command line)."""
    return {k: v for k, v in conf.items() if is_secret_key(k)}


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
