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
    # pip warns about every absent local mirror folder; keep real errors visible. The status
    # returned is pip's, whatever the filter leaves.
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v -e "is ignored: it is neither a file nor a directory" || true; } >&2
    return "${PIPESTATUS[0]}"
}

# PyPI's torch for Linux is the CUDA build, with about 15 NVIDIA packages (several GB);
# PyTorch's CPU index has the CPU build. --index-url replaces PyPI alone: pip's configured
# find-links and extra indexes still count, so a CPU wheel on the local disk is found either
# way. Where the index cannot be reached, pip waits 5 s at most (no retries) before it takes
# torch from find-links or fails, and then the plain requirement follows.
torch_req="torch==2.13.0"
cpu_index="https://download.pytorch.org/whl/cpu"
echo "setup: installing $torch_req, CPU build, from PyTorch's CPU index or pip's find-links" >&2
if ! quiet_pip --index-url "$cpu_index" --timeout 5 --retries 0 "$torch_req"; then
    echo "setup: no $torch_req from PyTorch's CPU index ($cpu_index; pip says why above):" \
        "installing plain $torch_req from pip's index (PyPI's, on Linux x86-64, is the CUDA build)" >&2
    quiet_pip "$torch_req"
fi
# Say which build came: a CUDA build runs on a CPU too, but costs gigabytes. (-W ignore: numpy
# is not installed yet, and torch warns about it.)
torch_build="$(.venv/bin/python -W ignore -c 'import torch; print(torch.__version__, torch.version.cuda or "")')"
read -r torch_version torch_cuda <<<"$torch_build"
if [ -z "${torch_cuda:-}" ]; then
    echo "setup: torch $torch_version is the CPU build" >&2
else
    {
        echo "setup: WARNING: torch $torch_version is a CUDA build (CUDA $torch_cuda): several GB of NVIDIA"
        echo "setup: WARNING: libraries that searchkit does not need on a CPU. To replace it with the"
        echo "setup: WARNING: CPU build, where $cpu_index can be reached (or with a"
        echo "setup: WARNING: torch-2.13.0+cpu wheel in a folder of PIP_FIND_LINKS): rm -rf .venv && ./scripts/setup.sh"
    } >&2
fi
echo "setup: installing searchkit and its dependencies" >&2
# The tests use every optional part (Parquet, Ray, the push targets), so they are installed here.
quiet_pip -e ".[dev,parquet,ray,push]"
.venv/bin/python -c "import searchkit"
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
