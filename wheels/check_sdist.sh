#!/usr/bin/env bash
# Check the sdist as a user would meet it (about a minute, most of it compiling):
#   1. it holds the .pyx, setup.py, tests with their conftest and data, benchmarks, docs
#      and LICENSE, and no generated C; in a git checkout, every tracked file but .github/
#      and .gitignore is in it; `twine check` passes on it (and on any wheel given as
#      arguments);
#   2. installed with a C compiler that fails (CC=/bin/false), it installs the
#      pure-Python evaluator with a warning, and `import cfgcore` warns too;
#   3. installed with CFGCORE_NO_EXTENSIONS=1, it installs the pure-Python evaluator on
#      purpose and `import cfgcore` is quiet (-W error);
#   4. installed with the machine's C compiler, it builds the compiled evaluator
#      (IMPLEMENTATION == "c") and the other compiled modules (_tree, _atomic), and the
#      installed metadata's version is cfgcore.__version__;
#      built with the warnings GCC 14 makes errors made errors here too (the compilers of
#      manylinux_2_28, musllinux_1_2, Debian 13), so an older compiler that only warns
#      cannot hide a build those machines would fall back to pure Python on.
# Usage: bash wheels/check_sdist.sh [WHEEL...]   (needs `build` and `twine` importable)
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
fail() { echo "check_sdist: $*" >&2; exit 1; }

# Built from a copy without build output: setuptools adds every file listed in an
# existing src/cfgcore.egg-info/SOURCES.txt (left by `pip install -e .` or an earlier
# build) to the sdist, which would hide a file MANIFEST.in leaves out.
mkdir "$work/tree"
tar -cf - --exclude=./.git --exclude=./build --exclude=./dist --exclude=./wheelhouse \
    --exclude=./.venv --exclude='*.egg-info' . | tar -xf - -C "$work/tree"
python -m build --sdist -o "$work/dist" "$work/tree" >"$work/build.log" 2>&1 || { cat "$work/build.log"; fail "sdist build failed"; }
sdist=$(ls "$work"/dist/cfgcore-*.tar.gz)
python -m twine check --strict "$sdist" "$@"

listing=$(tar tzf "$sdist")
for want in src/cfgcore/_eval.pyx src/cfgcore/_tree.pyx src/cfgcore/_atomic.pyx src/cfgcore/_tree.pyi src/cfgcore/_layout.pxd src/cfgcore/_eval.pyi src/cfgcore/py.typed setup.py LICENSE \
    pyproject.toml README.md tests/conftest.py tests/test_core_build.py benchmarks/bench_core.py \
    docs/architecture.md src/cfgcore/defaults/flags.yaml; do
    grep -q "^cfgcore-[^/]*/$want\$" <<<"$listing" || fail "$want is missing from ${sdist##*/}"
done
if grep -E '\.(c|so|pyd|html)$' <<<"$listing"; then fail "build output in ${sdist##*/}"; fi
# Nothing that git tracks is left behind by MANIFEST.in (a test's data file, a list a
# script reads), apart from the CI configuration.
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    top=$(basename "$sdist" .tar.gz)
    missing=$(comm -23 \
        <(git ls-files | grep -v -e '^\.github/' -e '^\.gitignore$' | while IFS= read -r f; do
            [ -e "$f" ] && echo "$f"; done | sort) \
        <(sed -n "s|^$top/||p" <<<"$listing" | sort))
    [ -z "$missing" ] || fail "tracked files missing from ${sdist##*/} (MANIFEST.in): $missing"
fi

# One venv with the build requirements and runtime dependencies preinstalled, so the
# installs below need no network (--no-build-isolation).
python -m venv "$work/venv"
py=$work/venv/bin/python
"$py" -m pip install -q 'setuptools>=77' 'Cython>=3.0,<4' msgspec PyYAML watchfiles python-dotenv 'tomli>=2; python_version < "3.11"'
# The probe evaluates, not only imports the package root: an install whose root imported
# but whose engine did not (cfgcore._compat left its evaluator unbound) passed it.
probe='import warnings, cfgcore
cfgcore.Engine.bundled().evaluate_all({"user_id": "1"})
print(cfgcore.IMPLEMENTATION)'

# 2. A compiler that fails: installs anyway, says so at install and at import.
CC=/bin/false "$py" -m pip install -v --no-cache-dir --no-build-isolation --no-deps "$sdist" \
    >"$work/cc.log" 2>&1 || { tail -30 "$work/cc.log"; fail "install with a failing compiler failed"; }
grep -q "WITHOUT its compiled evaluator" "$work/cc.log" || fail "no build warning without a compiler"
grep -q -- "--no-cache-dir --force-reinstall" "$work/cc.log" || fail "the build warning does not say how to rebuild past pip's cache"
out=$(cd "$work" && "$py" -W always -c "$probe" 2>&1)
[ "$(tail -1 <<<"$out")" = py ] || fail "no compiler: IMPLEMENTATION is not py: $out"
grep -q "failed to import" <<<"$out" || fail "no compiler: import did not warn: $out"
echo "sdist without a C compiler: installs the pure-Python evaluator, warns at install and import"

# 3. CFGCORE_NO_EXTENSIONS=1 at build time: pure Python on purpose, quiet at import.
CFGCORE_NO_EXTENSIONS=1 "$py" -m pip install -v --no-cache-dir --no-build-isolation --no-deps \
    --force-reinstall "$sdist" >"$work/noext.log" 2>&1 || { tail -30 "$work/noext.log"; fail "CFGCORE_NO_EXTENSIONS=1 install failed"; }
out=$(cd "$work" && "$py" -W error -c "$probe" 2>&1) || fail "CFGCORE_NO_EXTENSIONS=1: import failed or warned: $out"
[ "$out" = py ] || fail "CFGCORE_NO_EXTENSIONS=1: IMPLEMENTATION is not py: $out"
if ls "$work"/venv/lib/python3*/site-packages/cfgcore/_*.so >/dev/null 2>&1; then
    fail "CFGCORE_NO_EXTENSIONS=1 installed an extension"
fi
echo "sdist with CFGCORE_NO_EXTENSIONS=1: installs the pure-Python evaluator, imports quietly"

# 4. With the machine's C compiler: the sdist builds the compiled evaluator.
gcc14_errors="-Werror=incompatible-pointer-types -Werror=implicit-function-declaration -Werror=int-conversion -Werror=implicit-int"
CFLAGS="${CFLAGS:-} $gcc14_errors" "$py" -m pip install -v --no-cache-dir --no-build-isolation --no-deps --force-reinstall \
    "$sdist" >"$work/cc-ok.log" 2>&1 || { tail -30 "$work/cc-ok.log"; fail "install with a C compiler failed"; }
# (every compiled module, not only the evaluator: a module that failed alone installs
# its Python steps, and the evaluator's IMPLEMENTATION would still say c)
out=$(cd "$work" && "$py" -W error -c 'import importlib.metadata as m, cfgcore
import cfgcore._eval, cfgcore._tree, cfgcore._atomic
assert m.version("cfgcore") == cfgcore.__version__, (m.version("cfgcore"), cfgcore.__version__)
print(cfgcore.IMPLEMENTATION)' 2>&1) || fail "with a C compiler: import failed or warned: $out"
[ "$out" = c ] || { grep -m 10 -e "error:" "$work/cc-ok.log" >&2; fail "with a C compiler: IMPLEMENTATION is not c: $out"; }
echo "sdist with a C compiler: builds and installs the compiled evaluator"
