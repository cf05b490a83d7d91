#!/usr/bin/env bash
# The demo: the tutorial's similarity table, then an index of data/ and a few queries.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
./scripts/setup.sh
export HF_HUB_OFFLINE=1
searchkit() { .venv/bin/searchkit "$@"; }
index="${SEARCHKIT_DEMO_INDEX:-demo-index}"

echo "== The tutorial's example (all-MiniLM-L6-v2, cosine)"
searchkit similarity "The weather is lovely today." "It's so sunny outside!" "He drove to the stadium"
echo
searchkit similarity "I've already seen this movie" "I like soccer" "he is a basketball player" \
    --to "I don't want to watch this movie again" --to "I like baseball" --to "My name is roach"

echo
echo "== Indexing data/ into $index/"
searchkit index "$index" data/

echo
echo "== Searching"
searchkit query "$index" -k 3 \
    "Is it going to rain tomorrow?" \
    "a good pasta recipe" \
    "who won the match last night" \
    "how do vaccines work"

echo
searchkit info "$index"
