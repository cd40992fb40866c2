"""The typed face of the engine: what ``mypy --strict`` sees in a user's script.

Type checkers read ``cfgcore.engine``'s names from the typed reference evaluator
(multidict's ``if TYPE_CHECKING or not USE_EXTENSIONS`` pattern), so wrong argument
types in the README's Engine API are reported, and correct use is clean. The
evaluation methods carry the same real docstrings in both implementations.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cfgcore import _eval_py
from tests.conftest import IMPLS

SRC = Path(__file__).resolve().parent.parent / "src"
EVAL_METHODS = ("is_enabled", "variant", "value", "evaluate", "evaluate_all")

GOOD = """\
import cfgcore

engine = cfgcore.Engine.from_file("flags.yaml")
user = {"user_id": "12345", "user_segment": "premium", "region": "EU"}
ctx = engine.context(user)
on: bool = engine.is_enabled("enhanced_anomaly_detection", ctx)
plain: bool = engine.is_enabled("enhanced_anomaly_detection", user)
name: str | None = engine.variant("recommendation_algorithm_v2", ctx)
engine.value("recommendation_algorithm_v2", ctx, default={"algorithm": "matrix_factorization"})
reason: str = engine.evaluate("recommendation_algorithm_v2", ctx).reason
values: dict[str, object] = engine.evaluate_all(ctx)
pinned = engine.snapshot()
pinned.is_enabled("enhanced_anomaly_detection", ctx)
engine.swap(cfgcore.Snapshot())
engine.set_clock(lambda: 0.0)
counts: dict[tuple[str, str, str], int] = engine.take_evaluation_counts().evaluations
engine.set_counting(False)
remove = engine.add_hook(object())
remove()
stop = engine.on_exposure(lambda flag, variant, context: None)
stop()
cfgcore.enable_debug_mode()
cfgcore.disable_debug_mode()
"""

BAD = """\
import cfgcore

engine = cfgcore.Engine.from_file(42)
ctx = engine.context(["user_id"])
engine.is_enabled(3, ctx)
engine.variant("x", "user_id=1")
engine.set_clock("now")
wrong: int = engine.variant("x", ctx)
engine.snapshot().evaluate(None, ctx)
engine.on_exposure(42)
"""
BAD_LINES = {3, 4, 5, 6, 7, 8, 9, 10}


def test_mypy_strict_reports_wrong_types_and_passes_correct_use(tmp_path):
    pytest.importorskip("mypy")
    (tmp_path / "good.py").write_text(GOOD)
    (tmp_path / "bad.py").write_text(BAD)
    env = {**os.environ, "PYTHONPATH": str(SRC)}  # the tree under test, not an installed copy
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "--cache-dir",
         str(tmp_path / ".mypy_cache"), "good.py", "bad.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if not e.startswith("bad.py:")], proc.stdout
    reported = {int(e.split(":")[1]) for e in errors}
    assert reported == BAD_LINES, proc.stdout
    assert proc.returncode == 1


def _docstring_ok(doc: str | None) -> bool:
    return doc is not None and len(doc.split()) >= 8


@pytest.mark.parametrize("cls", ["CompiledSnapshot", "EngineCore"])
def test_evaluation_methods_have_real_docstrings_in_both_implementations(cls):
    for name, mod in IMPLS.items():
        for method in EVAL_METHODS:
            doc = getattr(getattr(mod, cls), method).__doc__
            assert _docstring_ok(doc), (name, cls, method, doc)
    # the stub next to the .pyx documents the same methods
    stub = ast.parse((Path(_eval_py.__file__).parent / "_eval.pyi").read_text(encoding="utf-8"))
    node = next(n for n in stub.body if isinstance(n, ast.ClassDef) and n.name == cls)
    docs = {f.name: ast.get_docstring(f) for f in node.body if isinstance(f, ast.FunctionDef)}
    for method in EVAL_METHODS:
        assert _docstring_ok(docs.get(method)), (cls, method)
        assert docs[method] == getattr(getattr(_eval_py, cls), method).__doc__.strip().replace(
            "\n        ", "\n"
        )
