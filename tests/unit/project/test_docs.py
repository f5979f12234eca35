"""The documentation site builds with warnings treated as errors, and covers every error class."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

from airflow_spark_streaming import exceptions

ROOT = Path(__file__).resolve().parents[3]


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").exists() and (tmp_path / "troubleshooting" / "index.html").exists()


def test_troubleshooting_lists_every_concrete_error():
    page = (ROOT / "docs" / "troubleshooting.md").read_text()
    concrete = [
        name
        for name, cls in inspect.getmembers(exceptions, inspect.isclass)
        if issubclass(cls, exceptions.SparkStreamingError) and not cls.__subclasses__()
    ]
    assert concrete
    assert [name for name in concrete if f"`{name}`" not in page] == []


def _public_components():
    import importlib

    from airflow_spark_streaming.get_provider_info import get_provider_info

    info = get_provider_info()
    for kind in ("hooks", "operators", "sensors", "triggers"):
        for module_name in (m for entry in info.get(kind, []) for m in entry["python-modules"]):
            module = importlib.import_module(module_name)
            from airflow.sdk import BaseHook, BaseOperator
            from airflow.triggers.base import BaseTrigger

            for name, cls in inspect.getmembers(module, inspect.isclass):
                if (
                    cls.__module__ == module_name
                    and not name.startswith("_")
                    and issubclass(cls, BaseHook | BaseOperator | BaseTrigger)
                ):
                    yield name, cls


def test_every_component_has_a_reference_page_naming_every_parameter():
    import re

    missing = []
    for name, cls in _public_components():
        page = ROOT / "docs" / "reference" / (re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower() + ".md")
        if not page.exists():
            missing.append(f"{name}: no page {page.name}")
            continue
        text = page.read_text()
        parameters = [
            p for klass in cls.__mro__
            if klass.__module__.startswith("airflow_spark_streaming") and "__init__" in vars(klass)
            for p in inspect.signature(vars(klass)["__init__"]).parameters
            if p not in ("self", "args", "kwargs")
        ]  # fmt: skip
        missing += [
            f"{name}: parameter {p}" for p in dict.fromkeys(parameters) if f"`{p}`" not in text and f"{p}=" not in text
        ]
    assert missing == []
