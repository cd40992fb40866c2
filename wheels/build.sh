#!/usr/bin/env bash
# Build wheels: the cibuildwheel matrix where a container engine can run it (CI with
# docker/podman), otherwise one wheel for this interpreter and platform.
set -euo pipefail
cd "$(dirname "$0")/.."
out=wheelhouse
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    python3 -m pip install -q 'cibuildwheel>=2.16'
    python3 -m cibuildwheel --output-dir "$out"
else
    echo "no container engine: building a wheel for $(python3 -c 'import sys; print(sys.version.split()[0])') only" >&2
    python3 -m pip wheel --no-deps -w "$out" .
fi
ls -l "$out"
