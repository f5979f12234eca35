"""The package's layering, read from the code: which folder may import which, and no cycles.

The rules (see docs/architecture.md):
- ``conditions/`` decides on models only: it imports no hook, operator, sensor, trigger, check or I/O domain module.
- ``runner/`` imports nothing from Airflow, and its Spark-side modules import with Airflow absent.
- Airflow-side modules import no pyspark, delta, deltalake, confluent_kafka or boto3 at module level.
- The module-level import graph has no cycles.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import airflow_spark_streaming
from airflow_spark_streaming.runner.jobs import RUNNER_SUPPORT_MODULES

PACKAGE_DIR = Path(airflow_spark_streaming.__file__).parent
PACKAGE = PACKAGE_DIR.name
HEAVY = {"pyspark", "delta", "deltalake", "confluent_kafka", "boto3"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def _imports(path: Path, *, module_level_only: bool) -> set[str]:
    """Absolute names ``path`` imports; module level excludes function bodies and ``if TYPE_CHECKING``."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    own = _module_name(path).split(".")
    found: set[str] = set()

    def visit(nodes):
        for node in nodes:
            if module_level_only and isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if module_level_only and isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                visit(node.orelse)
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = own if is_package else own[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join([*base, node.module] if node.module else base)
                else:
                    module = node.module or ""
                found.add(module)
                # ``from package import submodule`` imports the submodule too
                found.update(f"{module}.{alias.name}" for alias in node.names)
            visit(ast.iter_child_nodes(node))

    visit(tree.body)
    return found


def _package_files(folder: str = "") -> list[Path]:
    return sorted((PACKAGE_DIR / folder).rglob("*.py"))


def _is_package_face(name: str) -> bool:
    return (PACKAGE_DIR / name.removeprefix(f"{PACKAGE}.").replace(".", "/") / "__init__.py").exists()


def _is_package_module(name: str) -> bool:
    relative = name.removeprefix(f"{PACKAGE}.").replace(".", "/")
    return (PACKAGE_DIR / f"{relative}.py").exists() or (PACKAGE_DIR / relative / "__init__.py").exists()


def test_conditions_import_models_only():
    allowed = (
        f"{PACKAGE}.conditions",
        f"{PACKAGE}.checkpoint.models",
        f"{PACKAGE}.kafka.models",
        f"{PACKAGE}.kafka.time_lag",
        f"{PACKAGE}.delta.models",
        f"{PACKAGE}.exceptions",
        f"{PACKAGE}.utils.moved_modules",  # deprecation warnings for names that moved out
    )
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in _package_files("conditions")
        for name in _imports(path, module_level_only=False)
        if name.startswith(f"{PACKAGE}.") and _is_package_module(name) and not _is_package_face(name)
        and not name.startswith(allowed)
    ]  # fmt: skip
    assert offenders == []


def test_runner_imports_nothing_from_airflow():
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in _package_files("runner")
        for name in _imports(path, module_level_only=False)
        if name == "airflow" or name.startswith("airflow.")
    ]
    assert offenders == []


def test_the_runners_spark_side_modules_import_without_airflow():
    """What the drivers load (also from the YARN ``--py-files`` zip) must not need Airflow installed."""
    modules = [
        f"{PACKAGE}." + name.removesuffix(".py").removesuffix("__init__").rstrip("/").replace("/", ".")
        for name in RUNNER_SUPPORT_MODULES
    ]
    modules = [m.rstrip(".") for m in modules]
    code = (
        "import sys\n"
        "sys.modules['airflow'] = None  # importing it now raises ImportError\n"
        f"import importlib\nfor name in {modules!r}: importlib.import_module(name)\n"
        "print('imported', len(sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("imported")


def test_airflow_side_modules_import_no_spark_delta_or_kafka_client_at_module_level():
    spark_side = PACKAGE_DIR / "runner" / "jobs"
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in _package_files()
        if spark_side not in path.parents
        for name in _imports(path, module_level_only=True)
        if name.split(".")[0] in HEAVY
    ]
    assert offenders == []


def test_the_module_level_import_graph_has_no_cycles():
    graph: dict[str, set[str]] = {}
    for path in _package_files():
        name = _module_name(path)
        graph[name] = {
            imported
            for imported in _imports(path, module_level_only=True)
            if imported.startswith(f"{PACKAGE}.")
            and _is_package_module(imported)
            and imported != name
            # a package's __init__ importing its own submodules is its face, not a cycle
            and not (path.name == "__init__.py" and imported.startswith(f"{name}."))
        }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node)
    assert cycles == []


def test_the_package_root_holds_only_its_face_the_errors_and_the_provider_info():
    assert sorted(p.name for p in PACKAGE_DIR.glob("*.py")) == ["__init__.py", "exceptions.py", "get_provider_info.py"]
