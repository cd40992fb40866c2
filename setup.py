"""Build the compiled evaluation core (cfgcore._eval).

Knobs (environment variables):
  CFGCORE_DEBUG=1     line tracing, -O0 -g (for coverage and gdb)
  CFGCORE_ANNOTATE=1  write Cython's HTML annotation next to the .pyx
"""

import os

from Cython.Build import cythonize
from setuptools import Extension, setup


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _flag("CFGCORE_DEBUG")

compiler_directives = {
    "language_level": 3,
    "embedsignature": True,
    "linetrace": DEBUG,
}

macros = [("CYTHON_TRACE", "1")] if DEBUG else []
compile_args = ["-O0", "-g"] if DEBUG else ["-O3"]

extensions = [
    Extension(
        "cfgcore._eval",
        ["src/cfgcore/_eval.pyx"],
        define_macros=macros,
        extra_compile_args=compile_args,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=compiler_directives,
        annotate=_flag("CFGCORE_ANNOTATE"),
    )
)
