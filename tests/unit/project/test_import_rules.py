"""The package's layering, read from the code: which folder may import which, and no cycles.

The rules (see docs/architecture.md):
- ``conditions/`` decides on models only: it imports no hook, operator, sensor, trigger, check or I/O domain module.
- ``runner/`` imports nothing from Airflow, and its Spark-side modules import with Airflow absent.
- What the drivers load (``RUNNER_SUPPORT_MODULES``, the YARN ``--py-files`` zip) imports nothing from Airflow and
  no provider module outside that list, anywhere in its code.
- Airflow-side modules never import a runner job (``runner/jobs/<job>.py``), not even inside a function.
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
    own = _module_name(path).split(".") if PACKAGE_DIR.parent in path.parents else []
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


def _imported_by_name(path: Path) -> set[str]:
    """Modules ``path`` names as a string literal to ``importlib.import_module`` or ``__import__``, anywhere."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        first = node.args[0]
        if called in ("import_module", "__import__") and isinstance(first, ast.Constant):
            if isinstance(first.value, str) and not first.value.startswith("."):
                found.add(first.value)
    return found


def _all_imports(path: Path) -> set[str]:
    """Every module ``path`` imports: statements anywhere (function bodies too) and ``import_module`` literals."""
    return _imports(path, module_level_only=False) | _imported_by_name(path)


def _module_file(name: str) -> str:
    """The package-relative file of module ``name`` (``airflow_spark_streaming.delta`` -> ``delta/__init__.py``)."""
    relative = name.removeprefix(f"{PACKAGE}.").replace(".", "/") if name != PACKAGE else ""
    if relative and (PACKAGE_DIR / f"{relative}.py").exists():
        return f"{relative}.py"
    return f"{relative}/__init__.py".lstrip("/")


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


def test_runner_and_what_the_drivers_load_import_nothing_from_airflow():
    driver_side = {*_package_files("runner"), *(PACKAGE_DIR / name for name in RUNNER_SUPPORT_MODULES)}
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in sorted(driver_side)
        for name in _all_imports(path)
        if name == "airflow" or name.startswith("airflow.")
    ]
    assert offenders == []


#: Provider modules a driver-side module imports only on a path the drivers never take.
AIRFLOW_SIDE_ONLY = {
    ("runner/jobs/__init__.py", "exceptions.py"),  # job_path() raises the provider's error: the Airflow side calls it
}


def test_what_the_drivers_load_needs_no_provider_module_outside_the_shipped_list():
    """The YARN zip carries RUNNER_SUPPORT_MODULES only: every provider module they import, and its packages, is there."""
    shipped = set(RUNNER_SUPPORT_MODULES)
    missing = set()
    for name in RUNNER_SUPPORT_MODULES:
        for imported in _all_imports(PACKAGE_DIR / name):
            if imported != PACKAGE and not imported.startswith(f"{PACKAGE}."):
                continue
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):  # the module and every package above it
                module = ".".join(parts[:depth])
                if _is_package_module(module) and (name, _module_file(module)) not in AIRFLOW_SIDE_ONLY:
                    if _module_file(module) not in shipped:
                        missing.add(f"{name} imports {module} ({_module_file(module)})")
    assert sorted(missing) == []


def test_airflow_side_modules_never_import_a_runner_job():
    """Jobs are PySpark programs spark-submit runs by path (``job_path``); Airflow-side code only names their file.

    Checked everywhere in each module, function bodies and ``importlib.import_module("...")`` included; the
    ``runner.jobs`` package itself (``job_path``, ``RUNNER_SUPPORT_MODULES``) may be imported.
    """
    jobs_dir = PACKAGE_DIR / "runner" / "jobs"
    jobs_package = f"{PACKAGE}.runner.jobs"
    offenders = [
        f"{path.relative_to(PACKAGE_DIR)} imports {name}"
        for path in _package_files()
        if jobs_dir not in path.parents
        for name in _all_imports(path)
        if name.startswith(f"{jobs_package}.") and _is_package_module(name)
    ]
    assert offenders == []


def test_the_import_rules_see_imports_inside_functions_and_by_name(tmp_path):
    """The scanner the rules above rely on, on a module that hides its imports as well as it can."""
    hidden = tmp_path / "hidden.py"
    hidden.write_text(
        "import importlib\n"
        "def run():\n"
        "    from airflow_spark_streaming.runner.jobs import delta_maintenance\n"
        "    class Inner:\n"
        "        def go(self):\n"
        "            import airflow_spark_streaming.runner.jobs.stream_runner\n"
        "            return importlib.import_module('airflow_spark_streaming.runner.jobs.maintenance_handoff')\n"
        "    return __import__('airflow.sdk'), Inner\n"
    )
    assert {
        f"{PACKAGE}.runner.jobs.delta_maintenance",
        f"{PACKAGE}.runner.jobs.stream_runner",
        f"{PACKAGE}.runner.jobs.maintenance_handoff",
        "airflow.sdk",
    } <= _all_imports(hidden)
    assert _imports(hidden, module_level_only=True) == {"importlib"}


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
