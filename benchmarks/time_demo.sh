#!/usr/bin/env bash
# Wall time of `edgemed demo` from an empty run folder (the README's first command, after install).
#   EDGEMED_DATA_DIR=../shared/data benchmarks/time_demo.sh
# Prints the demo's own stage table and GNU time's summary (wall clock, CPU %, peak RSS).
set -euo pipefail
dir=$(mktemp -d)
cd "$dir"
/usr/bin/time -v edgemed demo 2>&1 | grep -E "│ (train|prune|export|quantize|bench|report) |Elapsed|Percent of CPU|Maximum resident|Exit status|report:"
rm -rf "$dir"
