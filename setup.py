"""Build the compiled parts: the evaluation core (cfgcore._eval), the tree reads (cfgcore._tree)
and the atomic write's system calls (cfgcore._atomic, POSIX).

Knobs (environment variables):
  CFGCORE_DEBUG=1          line tracing, -O0 -g (for coverage and gdb)
  CFGCORE_ANNOTATE=1       write Cython's HTML annotation next to the .pyx
  CFGCORE_NO_EXTENSIONS=1  build a pure-Python install on purpose (no compiler needed)

Without a working C compiler the build does not fail: it installs the pure-Python
reference evaluator, says so loudly, and records why in ``cfgcore/_no_extension.json``,
so ``import cfgcore`` can tell a deliberate pure-Python install from a broken one.
"""

import json
import os
import re
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CCompilerError, ExecError, PlatformError


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on", "y", "t"}


DEBUG = _flag("CFGCORE_DEBUG")

compiler_directives = {
    "language_level": 3,
    "embedsignature": True,
    # Signatures in Argument Clinic form: methods of binding=False classes are
    # builtins, and inspect.signature() reads their __text_signature__ from this.
    "embedsignature.format": "clinic",
    "linetrace": DEBUG,
}

macros = [("CYTHON_TRACE", "1")] if DEBUG else []
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]
if sys.platform == "win32":  # MSVC spells its flags differently
    compile_args = ["/Od", "/Zi"] if DEBUG else ["/O2"]

# Sources are the .pyx: the generated C is build output (never in git or the sdist),
# produced by cythonize() when build_ext runs.
# cfgcore._eval: the flag evaluator. cfgcore._tree: the configuration tree's read path
# (read-only dict/list subclasses in C, the manager's [] and get()).
extensions = [
    Extension(
        f"cfgcore.{name}",
        [f"src/cfgcore/{name}.pyx"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
    for name in ("_eval", "_tree")
]
# cfgcore._atomic: the atomic file write's system calls in one call without the GIL
# (POSIX calls only: Windows keeps the Python steps of cfgcore.runtime.atomicio).
if sys.platform != "win32":
    extensions.append(
        Extension(
            "cfgcore._atomic",
            ["src/cfgcore/_atomic.pyx"],
            define_macros=macros,
            extra_compile_args=compile_args,
        )
    )

MARKER = "_no_extension.json"


class OptionalBuildExt(build_ext):
    """build_ext that falls back to the pure-Python evaluator instead of failing."""

    def initialize_options(self):
        super().initialize_options()
        self._failed = {}  # extension name -> why it failed to build

    def finalize_options(self):
        # cythonize() before setuptools finalizes the Extension objects it returns.
        if not _flag("CFGCORE_NO_EXTENSIONS"):
            from Cython.Build import cythonize

            self.distribution.ext_modules = cythonize(
                self.distribution.ext_modules,
                compiler_directives=compiler_directives,
                annotate=_flag("CFGCORE_ANNOTATE"),
            )
        super().finalize_options()

    def run(self):
        if _flag("CFGCORE_NO_EXTENSIONS"):
            self._skip("CFGCORE_NO_EXTENSIONS was set at build time", deliberate=True)
            return
        try:
            super().run()
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            self._skip(f"the C extension failed to build: {exc}", deliberate=False)
            return
        self._drop_failed()
        if "cfgcore._eval" in self._failed:
            exc = self._failed["cfgcore._eval"]
            self._skip(f"the C extension failed to build: {exc}", deliberate=False)
        elif self._failed:
            self._partial()
        else:
            self._write_marker(None)

    # Each module on its own: the evaluator built and another module failed (cfgcore._atomic
    # on a system without one of its calls) installs the evaluator and that module's
    # Python steps, and says which (the first failure used to end the build, with a
    # warning of no compiled evaluator and the modules built before it still installed).
    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except (CCompilerError, ExecError, PlatformError, OSError) as exc:
            self._failed[ext.name] = exc

    def copy_extensions_to_source(self):  # (an in-place build: nothing to copy for those)
        # ... and no older build of a failed module left beside its sources: it would
        # be imported (the older code, no warning) where the Python steps are announced.
        build_py = self.get_finalized_command("build_py")
        for ext in self.extensions:
            if ext.name in self._failed:
                stale = self._get_inplace_equivalent(build_py, ext)[0]
                if os.path.exists(stale):
                    os.remove(stale)
        self._drop_failed()
        super().copy_extensions_to_source()

    def _drop_failed(self):
        self.extensions = [ext for ext in self.extensions if ext.name not in self._failed]

    def _partial(self):
        names = ", ".join(sorted(self._failed))
        reasons = "; ".join(f"{name}: {exc}" for name, exc in sorted(self._failed.items()))
        bar = "*" * 78
        sys.stderr.write(
            f"\n{bar}\nWARNING: cfgcore is being installed without {names} (it failed to"
            f" build: {reasons}).\nThe compiled evaluator was built; {names} takes its"
            " pure-Python steps (the same results, slower), and importing it warns.\n"
            "Fix the build and reinstall, past pip's cache of this build:\n  pip install"
            f" --no-cache-dir --force-reinstall --no-deps cfgcore\n{bar}\n\n"
        )
        self._write_marker(
            {
                "reason": f"failed to build: {reasons}",
                "deliberate": False,
                "missing": sorted(self._failed),
            }  # fmt: skip
        )

    def _skip(self, reason, *, deliberate):
        bar = "*" * 78
        sys.stderr.write(
            f"\n{bar}\nWARNING: cfgcore is being installed WITHOUT its compiled evaluator"
            f" ({reason}).\nThe pure-Python reference evaluator will be used"
            " (cfgcore.IMPLEMENTATION == 'py'); it gives the same answers but is"
            " 20-150x slower.\nInstall a C compiler and reinstall to get cfgcore._eval, past pip's"
            " cache of this build:\n  pip install --no-cache-dir --force-reinstall --no-deps"
            " cfgcore\n"
            f"{bar}\n\n"
        )
        self._write_marker({"reason": reason, "deliberate": deliberate})

    def _write_marker(self, info):
        # The marker goes wherever the package's files go: build_lib for a wheel, the
        # source tree for an in-place (editable) build.
        if self.inplace:
            pkg_dir = self.get_finalized_command("build_py").get_package_dir("cfgcore")
        else:
            pkg_dir = os.path.join(self.build_lib, "cfgcore")
        path = os.path.join(pkg_dir, MARKER)
        if info is None:
            if os.path.exists(path):
                os.remove(path)
            return
        os.makedirs(pkg_dir, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(info, f)


# The package's description is README.md, shown on PyPI without the repository around
# it: the README's relative links (docs/fleet.md, ...) would lead nowhere there, so the
# description points them at the repository (pyproject.toml's Source URL, which
# tests/test_audit_pkg_metadata.py keeps equal to this). Links to web pages and anchors
# stay as they are; the README in the repository keeps its relative links.
REPOSITORY_FILES = "https://github.com/cfgcore/cfgcore/blob/main/"


def long_description():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.sub(
        r"\]\((?![a-z][a-z0-9+.-]*:|#|/)([^)\s]+)\)",
        lambda m: f"]({REPOSITORY_FILES}{m[1]})",
        text,
    )


setup(
    ext_modules=extensions,
    cmdclass={"build_ext": OptionalBuildExt},
    long_description=long_description(),
    long_description_content_type="text/markdown",
)
