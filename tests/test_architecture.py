"""The package's shape: what the hot path imports, no import cycles, one fork registry,
module and class sizes, and the seed's module names as facades."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cfgcore

PKG = Path(cfgcore.__file__).parent
HEAVY = (
    "cfgcore.config",
    "cfgcore.validation",
    "cfgcore.experiments",
    "cfgcore.interop",
    "cfgcore.cli",
    "scipy",
)


def _modules_after(statement: str) -> list[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout)


def test_the_hot_path_imports_no_configuration_validation_experiments_interop_cli_or_scipy():
    loaded = _modules_after("import cfgcore.engine")
    assert "cfgcore.engine" in loaded and "cfgcore.compiler" in loaded
    heavy = [m for m in loaded if m.startswith(HEAVY)]
    assert heavy == []


def test_import_cfgcore_loads_only_the_error_types():
    # `import cfgcore` must stay cheap for a service that only evaluates flags: the
    # rest is resolved on first attribute access (PEP 562).
    ours = [m for m in _modules_after("import cfgcore") if m.startswith("cfgcore")]
    assert ours == ["cfgcore", "cfgcore.errors"]


def _package_modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _top_level_imports(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Modules of the package imported when ``name`` is imported (lazy imports inside
    functions and TYPE_CHECKING blocks excluded: they cannot form an import cycle)."""
    tree = ast.parse(path.read_text())
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        stmts = node.body if isinstance(node, ast.Try) else [node]
        for stmt in stmts:
            if isinstance(stmt, ast.Import):
                found |= {a.name for a in stmt.names}
            elif isinstance(stmt, ast.ImportFrom):
                base = stmt.module or ""
                if stmt.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - stmt.level + 1])
                    base = f"{base}.{stmt.module}" if stmt.module else base
                found.add(base)
                found |= {f"{base}.{a.name}" for a in stmt.names}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycles():
    modules = _package_modules()
    graph = {name: _top_level_imports(path, name, modules) for name, path in modules.items()}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :] + [dep]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert len(graph) > 40  # the walk saw the whole package


def test_one_fork_registry():
    """Only cfgcore.runtime.forks calls os.register_at_fork; everything else registers
    its repair there (so repairs run in import order and one failure stops none)."""
    callers = [
        str(path.relative_to(PKG))
        for path in PKG.rglob("*.py")
        if "register_at_fork(" in path.read_text() and path.name != "forks.py"
    ]
    assert callers == []
    out = subprocess.run(
        [sys.executable, "-c",
         "import cfgcore.config.manager, cfgcore.experiments.dynamic, cfgcore.config.watcher\n"
         "from cfgcore.runtime.forks import registered\n"
         "print('\\n'.join(f.__module__ for f in registered()))"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    owners = out.stdout.split()
    for module in ("cfgcore.runtime.events", "cfgcore.runtime.audit", "cfgcore.runtime.flags",
                   "cfgcore.experiments.exposures", "cfgcore.config.manager",
                   "cfgcore.experiments.dynamic", "cfgcore.config.watcher"):  # fmt: skip
        assert module in owners
    # Events and audit are repaired before the managers that use them.
    assert owners.index("cfgcore.runtime.events") < owners.index("cfgcore.config.manager")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_registry_runs_every_repair_even_when_one_fails():
    from cfgcore.runtime import forks

    read, write = os.pipe()
    ran = []

    def broken() -> None:
        raise RuntimeError("boom")

    def marker() -> None:
        ran.append("marker")

    forks.after_fork_in_child(broken)
    forks.after_fork_in_child(marker)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.write(write, b"ok" if ran == ["marker"] else b"no")
            os._exit(0)
        os.waitpid(pid, 0)
        assert os.read(read, 2) == b"ok"
    finally:
        forks._HOOKS.remove(broken)
        forks._HOOKS.remove(marker)
        os.close(read)
        os.close(write)


def test_seed_module_names_stay_importable():
    from cfgcore import get_config_manager  # noqa: F401
    from cfgcore.config_utils import ConfigurationTransformer
    from cfgcore.configuration_profiles import DeploymentProfile, get_profile_manager  # noqa: F401
    from cfgcore.dynamic_config import ABTestConfiguration, FeatureFlag, get_dynamic_config_manager
    from cfgcore.validation_engine import ValidationRule, get_config_validator  # noqa: F401

    assert ConfigurationTransformer.__module__ == "cfgcore.config.transforms"
    assert get_dynamic_config_manager.__module__ == "cfgcore.experiments.dynamic"
    assert FeatureFlag.ENHANCED_ANOMALY_DETECTION == "enhanced_anomaly_detection"
    assert ABTestConfiguration.__module__ == "cfgcore.experiments.abtest"
    proc = subprocess.run(
        [sys.executable, "-m", "cfgcore.setup", "--help"], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0 and "--environment" in proc.stdout
