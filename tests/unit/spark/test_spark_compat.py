"""The installed Spark provider still has every ``SparkSubmitHook`` member the submission adapter relies on.

When a provider release renames or reshapes one, this test fails and names it;
``pyproject.toml`` pins the provider to the versions this test has passed on.
"""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest
from packaging.specifiers import SpecifierSet

from airflow_spark_streaming.exceptions import SparkProviderIncompatibleError
from airflow_spark_streaming.spark.submission import spark_compat as _spark_compat
from airflow_spark_streaming.spark.submission.spark_compat import SparkSubmitAdapter, missing_members

MASTERS = {
    "local": {"conn_type": "spark", "host": "local[1]"},
    "standalone": {"conn_type": "spark", "host": "spark://m:7077", "extra": {"deploy-mode": "cluster"}},
    "yarn": {"conn_type": "spark", "host": "yarn", "extra": {"deploy-mode": "cluster"}},
    "kubernetes": {"conn_type": "spark", "host": "k8s://https://api:6443", "extra": {"deploy-mode": "cluster"}},
}


@pytest.mark.parametrize("master", sorted(MASTERS))
def test_the_installed_spark_submit_hook_has_every_member_the_adapter_uses(master, monkeypatch):
    import types

    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    monkeypatch.setenv(f"AIRFLOW_CONN_COMPAT_{master.upper()}", json.dumps(MASTERS[master]))
    # Kubernetes masters need the cncf-kubernetes provider's client, which is not installed here.
    monkeypatch.setattr(spark_submit, "kube_client", types.SimpleNamespace(), raising=False)
    adapter = SparkSubmitAdapter(f"compat_{master}")
    assert missing_members(adapter.hook) == [], (
        "apache-airflow-providers-apache-spark changed shape; adapt hooks/submission/_spark_compat.py"
    )


def test_the_pinned_provider_range_is_the_one_this_test_covers():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parents[3] / "pyproject.toml").read_text())
    pin = next(d for d in pyproject["project"]["dependencies"] if d.startswith("apache-airflow-providers-apache-spark"))
    assert version("apache-airflow-providers-apache-spark") in SpecifierSet(pin.split("apache-spark", 1)[1])


def test_a_provider_without_a_member_is_refused_naming_it(monkeypatch):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    monkeypatch.setenv("AIRFLOW_CONN_COMPAT_GONE", json.dumps(MASTERS["local"]))
    monkeypatch.delattr(SparkSubmitHook, "_kill_yarn_application")
    with pytest.raises(SparkProviderIncompatibleError, match=r"SparkSubmitHook\._kill_yarn_application"):
        assert SparkSubmitAdapter("compat_gone").hook


def test_a_reshaped_private_method_is_named_with_the_parameters_the_adapter_passes(monkeypatch):
    from airflow.providers.apache.spark.hooks.spark_submit import SparkSubmitHook

    monkeypatch.setenv("AIRFLOW_CONN_COMPAT_SHAPE", json.dumps(MASTERS["local"]))
    monkeypatch.setattr(SparkSubmitHook, "_build_spark_submit_command", lambda self, application, extra: [])
    with pytest.raises(SparkProviderIncompatibleError, match=r"_build_spark_submit_command\(application\)"):
        assert SparkSubmitAdapter("compat_shape").hook


def test_only_the_adapter_touches_spark_submit_hook_private_members():
    """Every private member the package uses on SparkSubmitHook goes through _spark_compat."""
    import re
    from pathlib import Path

    import airflow_spark_streaming

    names = {*_spark_compat.PRIVATE_ATTRIBUTES, *_spark_compat.PRIVATE_METHODS}
    pattern = re.compile(r"\.(" + "|".join(sorted(names)) + r")\b")
    root = Path(airflow_spark_streaming.__file__).parent
    offenders = [
        f"{path.relative_to(root)}: {match.group(1)}"
        for path in root.rglob("*.py")
        if path.name != "spark_compat.py" and "jobs" not in path.parts
        for match in pattern.finditer(path.read_text())
    ]
    assert offenders == []
