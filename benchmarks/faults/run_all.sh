#!/bin/bash
# The 8 faults of issue 16 (and two extra), each on a fresh emulated phone; one log per case
# in $FAULTS_OUT (default /tmp/faults). Read each CASE.txt: exit code, message, wall time,
# what was left running or behind, the next bench. Results: docs/benchmarks.md, "Faults".
set -u
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
OUT=${FAULTS_OUT:-/tmp/faults}; mkdir -p "$OUT"
"$REPO/.venv/bin/python" "$HERE/models.py" "$OUT"
T=$OUT/tiny.tflite B=$OUT/big.tflite Q="--runs 10 --warmup 2"
run() { bash "$HERE/case.sh" "$@" > "$OUT/$1.txt" 2>&1; echo "$1: $(grep -m1 '^RC=' "$OUT/$1.txt")"; }
run timeout    5611 $B ""                                     "--runs 100000 --timeout 4"
run kill9      5612 $B ""                                     "--runs 100000" kill9
run app_crash  5613 $T "--fault=app_crash"                    "$Q"
run model_load 5614 $T "--fault=model_load_fails"             "$Q"
run disk_full  5615 $T "--fault=disk_full"                    "$Q"
run drop       5616 $B "--fault=drop_after_bytes=500000"      "$Q"
run stall      5617 $T "--fault=stall_seconds=30"             "$Q --timeout 5"
run refuse     5618 $T "--fault=refuse_auth"                  "$Q --auth-timeout 5"
run stallmid   5619 $B "--fault=stall_seconds=30 --fault=stall_match=run-as" "--runs 100000 --timeout 5"
run sigint     5622 $B ""                                     "--runs 100000" int
