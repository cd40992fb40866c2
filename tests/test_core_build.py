"""The compiled module is really there, and agrees with the compiler on table layout."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cfgcore._compat import env_flag
from tests.conftest import IMPLS


def test_compiled_extension_is_loaded():
    import cfgcore

    if env_flag("CFGCORE_NO_EXTENSIONS"):
        # The switch README documents: the reference evaluator, even where it is built.
        assert cfgcore.IMPLEMENTATION == "py"
        return
    if "c" not in IMPLS:
        if env_flag("CI"):
            pytest.fail("cfgcore._eval is not built: CI must test the compiled evaluator")
        pytest.skip("cfgcore._eval is not built here (allowed outside CI only)")
    assert cfgcore.IMPLEMENTATION == "c"
    assert IMPLS["c"].__file__.endswith((".so", ".pyd"))
    from cfgcore.engine import Engine

    assert Engine().implementation == "c"


def test_no_extensions_switch_selects_reference():
    code = "import cfgcore; print(cfgcore.IMPLEMENTATION)"
    for raw, want in (("1", "py"), ("true", "py"), ("0", None), ("no", None)):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={"CFGCORE_NO_EXTENSIONS": raw, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if want is None:
            want = "c" if "c" in IMPLS else "py"
        assert out == want, (raw, out)


def test_a_broken_extension_warns_and_reports_the_reference():
    """Never fall back silently: a failing import of cfgcore._eval warns once and
    IMPLEMENTATION says "py"."""
    code = (
        "import sys, warnings\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'cfgcore._eval':\n"
        "            raise ImportError('simulated broken build')\n"
        "sys.meta_path.insert(0, Block())\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import cfgcore\n"
        "    impl = cfgcore.IMPLEMENTATION\n"
        "msgs = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]\n"
        "print(impl, len(msgs), msgs[0] if msgs else '')\n"
    )
    # (without CFGCORE_NO_EXTENSIONS: the reference chosen on purpose warns of nothing)
    env = {k: v for k, v in os.environ.items() if k != "CFGCORE_NO_EXTENSIONS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
        env=env,
    ).stdout  # fmt: skip
    impl, count, message = out.split(" ", 2)
    assert impl == "py" and count == "1"
    assert "failed to import" in message and "simulated broken build" in message
