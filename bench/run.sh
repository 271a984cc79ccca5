#!/usr/bin/env bash
# `make bench` runs every benchmark once. `make bench BENCH_BEFORE=<git rev>` runs each one twice in the same run,
# first from a detached checkout of <rev> ("before"), then from this tree ("after"), back to back on the same machine
# and load, so a change can be shown not to be slower. Each script prints its same-run baseline (bare Ed25519
# verifications/s) and its figures as ratios to it; compare the ratios, and the figures when the baselines agree.
# BENCH_ONLY=<name> runs just bench/<name>.py.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
before_rev=${1:-}
before_dir=""
cleanup() { [ -n "$before_dir" ] && git worktree remove --force "$before_dir" >/dev/null 2>&1 || true; }
trap cleanup EXIT
if [ -n "$before_rev" ]; then
    before_dir=$(mktemp -d /tmp/gtx-bench-before.XXXXXX)
    rmdir "$before_dir"
    git worktree add --detach "$before_dir" "$before_rev" >/dev/null
fi
for b in bench/*.py; do
    [ "$b" = bench/baseline.py ] && continue
    if [ -n "${BENCH_ONLY:-}" ] && [ "$b" != "bench/$BENCH_ONLY.py" ]; then continue; fi
    if [ -n "$before_dir" ] && [ -f "$before_dir/$b" ]; then
        echo "== $b — before ($before_rev)"
        PYTHONPATH="$before_dir" "$PY" "$before_dir/$b"
        echo "== $b — after ($(git rev-parse --short HEAD))"
    else
        echo "== $b"
    fi
    "$PY" "$b"
done
