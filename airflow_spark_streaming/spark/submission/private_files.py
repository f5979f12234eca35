"""Files that carry what must stay off spark-submit's command line: the runner's spec and Spark settings with secrets."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from airflow_spark_streaming.utils.redaction import properties_text

SPEC_FILE = "spec.json"
PROPERTIES_FILE = "secret.properties"


def write_private_files(
    directory: Path, *, spec: Mapping[str, Any] | None = None, secret_conf: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """Write the spec and a Spark properties file of ``secret_conf`` into ``directory``, each 0600.

    Returns their paths, ``None`` for what there is nothing to write for.
    """
    spec_file = properties_file = None
    if spec is not None:
        spec_file = str(directory / SPEC_FILE)
        write_private(spec_file, json.dumps(spec))
    if secret_conf:
        properties_file = str(directory / PROPERTIES_FILE)
        write_private(properties_file, properties_text(secret_conf))
    return spec_file, properties_file


def write_private(path: str, text: str | bytes) -> None:
    """Create ``path`` readable by its owner only (never a moment world-readable); it must not exist yet."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(text.encode() if isinstance(text, str) else text)
