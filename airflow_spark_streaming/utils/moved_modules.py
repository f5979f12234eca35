"""Old module paths keep importing for one minor release, with a ``DeprecationWarning`` naming the new one.

The package was reorganised by domain in 0.2. Users' DAGs may import a module by its old path
(``airflow_spark_streaming.params``, say). An import hook at the front of ``sys.meta_path``
answers those names with the module at its new home, so there is one module object, not two,
and the package root holds no stub files. Standard library only: the Spark-side drivers load it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import warnings

_PACKAGE = "airflow_spark_streaming"

#: Old dotted path (below the package) -> new dotted path. Removed in the next minor release.
MOVED_MODULES: dict[str, str] = {
    "params": "utils.params",
    "deprecation": "utils.deprecation",
    "redaction": "utils.redaction",
    "spec": "runner.spec",
    "lease": "runner.lease",
    "protocol": "runner.protocol",
    "sql_check": "runner.sql_check",
    "jobs": "runner.jobs",
    "jobs.stream_runner": "runner.jobs.stream_runner",
    "jobs.delta_maintenance": "runner.jobs.delta_maintenance",
    "jobs.maintenance_handoff": "runner.jobs.maintenance_handoff",
    "kafka_options": "kafka.options",
    "hooks.kafka_connection": "kafka.connection",
    "hooks.kafka_spec": "kafka.spec",
    "conditions.kafka_records": "kafka.models",
    "yarn_conf": "spark.yarn_conf",
    "jvm": "spark.jvm",
    "hooks.submission.backends": "spark.submission.backends",
    "hooks.submission.backends.base": "spark.submission.backends.base",
    "hooks.submission.backends.kubernetes": "spark.submission.backends.kubernetes",
    "hooks.submission.backends.local": "spark.submission.backends.local",
    "hooks.submission.backends.standalone": "spark.submission.backends.standalone",
    "hooks.submission.backends.yarn": "spark.submission.backends.yarn",
    "hooks.submission.models": "spark.submission.models",
    "hooks.submission.private_files": "spark.submission.private_files",
    "hooks.submission._spark_compat": "spark.submission.spark_compat",
    "hooks._storage_access": "storage.access",
    "hooks._storage": "hooks.checkpoint_storage",
}

_FULL = {f"{_PACKAGE}.{old}": f"{_PACKAGE}.{new}" for old, new in MOVED_MODULES.items()}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an old module path with the module at its new home."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in _FULL:
            return None
        return importlib.util.spec_from_loader(fullname, self, is_package=False)

    def __init__(self) -> None:
        self._real_specs: dict[str, importlib.machinery.ModuleSpec] = {}

    def create_module(self, spec):
        new = _FULL[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there (the old path is removed in the next minor release).",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._real_specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module):
        # The import system stamped the alias's spec on the real module: give it back its own.
        module.__spec__ = self._real_specs.pop(module.__spec__.name, module.__spec__)


def moved_module_warning(old: str, new: str) -> None:
    """Warn that ``old`` (a name in a package's namespace) now lives in ``new``."""
    warnings.warn(
        f"{old} moved to {new}; import it from there (the old path is removed in the next minor release).",
        DeprecationWarning,
        stacklevel=3,
    )


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once), ahead of the path finder that would load a second copy."""
    if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _MovedModuleFinder())
