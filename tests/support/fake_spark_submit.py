"""A ``spark-submit`` stand-in on the PATH that records what it was given: its argv and its properties file.

The properties file is read while spark-submit runs, because the provider removes it once
spark-submit has returned (or the driver has read it).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SeenBySparkSubmit:
    argv: list[str]
    properties_path: str | None
    properties_mode: int | None
    properties_text: str | None

    @property
    def settings(self) -> dict[str, str]:
        """The properties file's settings as Java reads them (a later key wins); empty without one."""
        return read_properties(self.properties_text or "")


class FakeSparkSubmit:
    """Where the stand-in writes what it saw; ``seen()`` reads the last call."""

    def __init__(self, record: Path) -> None:
        self.record = record

    def exists(self) -> bool:
        return self.record.exists()

    def seen(self) -> SeenBySparkSubmit:
        return SeenBySparkSubmit(**json.loads(self.record.read_text()))


def install_fake_spark_submit(bin_dir: Path, monkeypatch, output: str = "", exit_code: int = 0) -> FakeSparkSubmit:
    """Put the stand-in first on the PATH; it prints ``output`` and exits with ``exit_code``."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    record = bin_dir / "seen.json"
    script = bin_dir / "spark-submit"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, stat, sys\n"
        "argv = sys.argv[1:]\n"
        "path = argv[argv.index('--properties-file') + 1] if '--properties-file' in argv else None\n"
        "seen = {'argv': argv, 'properties_path': path,\n"
        "        'properties_mode': stat.S_IMODE(os.stat(path).st_mode) if path else None,\n"
        "        'properties_text': open(path, encoding='utf-8').read() if path else None}\n"
        f"json.dump(seen, open({str(record)!r}, 'w'))\n"
        f"print({output!r})\n"
        f"sys.exit({exit_code})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return FakeSparkSubmit(record)


_UNESCAPED_SEPARATOR = re.compile(r"(?<!\\)(?:\\\\)*[=:]")


def read_properties(text: str) -> dict[str, str]:
    """The ``key=value`` lines the provider writes, unescaped (``\\uXXXX`` and ``\\x``); enough for these tests."""
    settings = {}
    for line in text.splitlines():
        if not line or line.startswith(("#", "!")):
            continue
        separator = _UNESCAPED_SEPARATOR.search(line)
        end = separator.end() - 1 if separator else len(line)
        settings[_unescape(line[:end])] = _unescape(line[end + 1 :])
    return settings


def _unescape(text: str) -> str:
    text = re.sub(r"\\u([0-9A-Fa-f]{4})", lambda m: chr(int(m.group(1), 16)), text)
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1)), text)
