#!/usr/bin/env bash
# The test suite: lint, types, tests. The same command locally and in CI (.ci/run).
# Extra arguments go to pytest, e.g. ./scripts/test.sh -k cli -x
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh

# Nothing may come from a model hub: the default model is the bundled package.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

echo "== ruff" >&2
.venv/bin/ruff check searchkit tests scripts
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/python -m pytest "$@"
