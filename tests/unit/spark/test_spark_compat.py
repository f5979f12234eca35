"""The installed Spark provider still has every ``SparkSubmitHook`` member the submission adapter relies on.

The members are found in the adapter's own code (its syntax tree), so a new use of a private
member is covered without anyone remembering to list it. When a provider release renames or
reshapes one, this test fails and names it; ``pyproject.toml`` pins the provider to the
versions this test has passed on.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

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


@dataclass
class HookUses:
    """What the adapter's code does with the wrapped ``SparkSubmitHook``."""

    values: set[str] = field(default_factory=set)  # members read or written: attributes and properties
    calls: dict[str, set[int]] = field(default_factory=dict)  # methods called -> positional argument counts
    connection_keys: set[str] = field(default_factory=set)  # keys of hook._connection read or written


def _is_wrapped_hook(node: ast.AST) -> bool:
    """``self.hook`` / ``self._hook`` in the adapter, a variable named ``hook`` (the hook being checked), or
    ``super()`` in the adapter's ``SparkSubmitHook`` subclass (the provider's own method it overrides)."""
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Name) and node.func.id == "super" and not node.args
    if isinstance(node, ast.Attribute):
        return node.attr in ("hook", "_hook") and isinstance(node.value, ast.Name) and node.value.id == "self"
    return isinstance(node, ast.Name) and node.id == "hook"


def _is_connection(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "_connection" and _is_wrapped_hook(node.value)


def _hook_uses_in_the_adapter() -> HookUses:
    tree = ast.parse(Path(_spark_compat.__file__).read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = HookUses()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_wrapped_hook(node.value):
            parent = parents.get(node)
            if isinstance(parent, ast.Call) and parent.func is node:
                uses.calls.setdefault(node.attr, set()).add(len(parent.args))
            else:
                uses.values.add(node.attr)
        elif (  # getattr(self.hook, "_name", ...), hasattr(...), setattr(...)
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr", "setattr")
            and len(node.args) >= 2
            and _is_wrapped_hook(node.args[0])
            and isinstance(node.args[1], ast.Constant)
        ):
            uses.values.add(node.args[1].value)
        elif isinstance(node, ast.Subscript) and _is_connection(node.value) and isinstance(node.slice, ast.Constant):
            uses.connection_keys.add(node.slice.value)
        elif (  # self.hook._connection.get("key")
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and _is_connection(node.func.value)
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            uses.connection_keys.add(node.args[0].value)
    return uses


def test_the_adapters_lists_name_exactly_the_members_its_code_uses():
    """The runtime check (missing_members) and this contract test cover the same members, found in the code."""
    uses = _hook_uses_in_the_adapter()
    assert {"_env_vars", "_resolved_yarn_rm_auth", "_connection"} <= uses.values  # the scanner sees all three forms
    private_calls = {name: counts for name, counts in uses.calls.items() if name.startswith("_")}
    public_calls = {name: counts for name, counts in uses.calls.items() if not name.startswith("_")}
    assert sorted(n for n in uses.values if n.startswith("_")) == sorted(_spark_compat.PRIVATE_ATTRIBUTES)
    assert sorted(n for n in uses.values if not n.startswith("_")) == [], "list public attributes in spark_compat too"
    assert {name: {len(p)} for name, p in _spark_compat.PRIVATE_METHODS.items()} == private_calls
    assert {name: {len(p)} for name, p in _spark_compat.PUBLIC_METHODS.items()} == public_calls
    assert sorted(uses.connection_keys) == sorted(_spark_compat.CONNECTION_KEYS)


def _spark_submit_hook(master: str, monkeypatch):
    import types

    import airflow.providers.apache.spark.hooks.spark_submit as spark_submit

    monkeypatch.setenv(f"AIRFLOW_CONN_COMPAT_{master.upper()}", json.dumps(MASTERS[master]))
    # Kubernetes masters need the cncf-kubernetes provider's client, which is not installed here.
    monkeypatch.setattr(spark_submit, "kube_client", types.SimpleNamespace(), raising=False)
    return spark_submit.SparkSubmitHook(conn_id=f"compat_{master}")


@pytest.mark.parametrize("master", sorted(MASTERS))
def test_every_member_found_in_the_adapters_code_exists_on_the_installed_hook(master, monkeypatch):
    hook = _spark_submit_hook(master, monkeypatch)
    uses = _hook_uses_in_the_adapter()
    missing = []
    for name in sorted(uses.values):
        on_class = inspect.getattr_static(type(hook), name, None)
        if name not in vars(hook) and not isinstance(on_class, property | functools.cached_property):
            missing.append(f"attribute {name} (neither set by __init__ nor a property)")
    for name, counts in sorted(uses.calls.items()):
        method = getattr(type(hook), name, None)
        if not callable(method):
            missing.append(f"method {name}")
            continue
        for count in counts:
            try:
                inspect.signature(getattr(hook, name)).bind(*[None] * count)
            except TypeError as err:
                missing.append(f"method {name} called with {count} positional arguments: {err}")
    missing += [f"_connection[{key!r}]" for key in sorted(uses.connection_keys) if key not in hook._connection]
    assert missing == [], "apache-airflow-providers-apache-spark changed shape; adapt spark/submission/spark_compat.py"


@pytest.mark.parametrize("master", sorted(MASTERS))
def test_the_installed_spark_submit_hook_has_every_member_the_adapter_uses(master, monkeypatch):
    _spark_submit_hook(master, monkeypatch)  # the connection and the Kubernetes client stand-in
    adapter = SparkSubmitAdapter(f"compat_{master}")
    assert missing_members(adapter.hook) == [], (
        "apache-airflow-providers-apache-spark changed shape; adapt spark/submission/spark_compat.py"
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
    """Every private member the package uses on SparkSubmitHook goes through spark_compat."""
    import re

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
