#!/usr/bin/env bash
# Stops the LAPI lapi-up.sh started in DIR (by its pid) and waits for it; leaves DIR to the caller.
set -uo pipefail
dir=$1
[ -f "$dir/pid" ] || exit 0
pid=$(cat "$dir/pid")
kill "$pid" 2>/dev/null || exit 0
for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || exit 0; sleep 0.1; done
kill -9 "$pid" 2>/dev/null || true
