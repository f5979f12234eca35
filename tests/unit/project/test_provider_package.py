"""The provider is registered with Airflow and importing it stays cheap."""

from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
from pathlib import Path

import jsonschema

import airflow_spark_streaming
from airflow_spark_streaming.get_provider_info import get_provider_info

HEAVY_MODULES = ("pyspark", "delta", "deltalake", "confluent_kafka")


def test_entry_point_points_at_get_provider_info():
    (entry,) = [
        e for e in metadata.entry_points(group="apache_airflow_provider") if e.dist.name == "airflow-spark-streaming"
    ]
    assert entry.load() is get_provider_info


def test_provider_info_is_valid_for_airflow():
    import airflow

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "airflow-spark-streaming"
    assert info["versions"][0] == airflow_spark_streaming.__version__ == metadata.version("airflow-spark-streaming")


def test_airflow_cli_lists_and_describes_the_provider():
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    providers = {p["package_name"]: p for p in json.loads(listed.stdout[listed.stdout.index("[") :])}
    assert providers["airflow-spark-streaming"]["version"] == airflow_spark_streaming.__version__

    described = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "get", "airflow-spark-streaming", "--full", "--output", "json"],
        capture_output=True, text=True, timeout=180, check=True,
    )  # fmt: skip
    assert "Spark Structured Streaming" in described.stdout
    assert "jvm_resolver" in described.stdout


def _provider_modules() -> list[str]:
    root = Path(airflow_spark_streaming.__file__).parent
    modules = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        if relative.parts[1:3] == ("runner", "jobs") and relative.name != "__init__":
            continue  # Spark-side programs; Airflow never imports them
        modules.append(".".join(relative.parts).removesuffix(".__init__"))
    return modules


def test_importing_every_airflow_side_module_loads_no_spark_delta_or_kafka_client():
    modules = _provider_modules()
    assert "airflow_spark_streaming.spark.jvm" in modules and "airflow_spark_streaming.runner.jobs" in modules
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_every_hook_sensor_and_trigger_module_is_listed_and_imports():
    import importlib

    info = get_provider_info()
    root = Path(airflow_spark_streaming.__file__).parent
    for kind in ("hooks", "sensors", "triggers", "operators"):
        on_disk = {
            f"airflow_spark_streaming.{kind}.{p.stem}" for p in (root / kind).glob("*.py") if not p.stem.startswith("_")
        }
        packages = {f"airflow_spark_streaming.{kind}.{p.parent.name}" for p in (root / kind).glob("*/__init__.py")}
        listed = {m for entry in info.get(kind, []) for m in entry["python-modules"]}
        in_packages = {m for m in listed if any(m.startswith(f"{package}.") for package in packages)}
        assert listed - in_packages == on_disk, kind
        assert {m.rsplit(".", 1)[0] for m in in_packages} == packages, kind  # each package lists its module
        for module in listed:
            importlib.import_module(module)


def test_the_wheel_ships_the_streams_page_and_its_plugin_entry_point(tmp_path):
    import shutil
    import zipfile

    root = Path(airflow_spark_streaming.__file__).parents[1]
    # Built from a copy: setuptools leaves metadata in the tree it builds, which would register the plugin twice.
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    shutil.copytree(root / "airflow_spark_streaming", source / "airflow_spark_streaming",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "build", "--wheel", "--out-dir", str(tmp_path / "dist"), "-q", str(source)],
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        static = "airflow_spark_streaming/plugins/streams/static/"
        for name in ("streams.js", "uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE", "icon.svg", "icon-dark.svg"):
            assert static + name in names
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        text = archive.read(entry_points).decode()
    assert (
        "[airflow.plugins]\nspark_streaming_streams = airflow_spark_streaming.plugins.streams.plugin:StreamsPlugin"
        in text
    )
