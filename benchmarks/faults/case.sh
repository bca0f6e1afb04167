#!/bin/bash
# One fault from outside: a fresh emulated phone with the fault, one `mobilize bench`, then
# what is left on the device (app processes, files, stock adb's view), the results db, and
# the next normal bench on the same device with the fault cleared.
# usage: case.sh NAME PORT MODEL "FAULT ARGS" "BENCH ARGS" [kill9|int]
set -u
NAME=$1 PORT=$2 MODEL=$3 FARGS=$4 BARGS=$5 MODE=${6:-normal}
HERE=$(cd "$(dirname "$0")" && pwd); REPO=$(cd "$HERE/../.." && pwd)
PY=$REPO/.venv/bin/python; M=$REPO/.venv/bin/mobilize
OUT=${FAULTS_OUT:-/tmp/faults}; KEY=$OUT/keys/adbkey
D=$OUT/$NAME; rm -rf "$D"; mkdir -p "$D"; cd "$D"
S=127.0.0.1:$PORT
$PY "$HERE/emulated_device.py" --root "$D/root" --port "$PORT" $FARGS > emu.log 2>&1 &
EMU=$!; sleep 3; cat emu.log
CMD="$M bench $MODEL --serial $S --adb-key $KEY --db $D/results.db $BARGS"
echo "CMD: $CMD"
T0=$(date +%s.%N)
# env --default-signal: a job started from a script inherits SIGINT ignored, and Python
# then never installs its Ctrl-C handler
set -m; env --default-signal=INT $CMD > bench.out 2> bench.err &
B=$!; set +m
if [ "$MODE" != normal ]; then
  sleep 4; kill -USR2 $EMU; sleep 0.3; echo "before the kill:"; tail -1 emu.log
  if [ "$MODE" = kill9 ]; then kill -9 $B; else kill -INT $B; fi
fi
wait $B; RC=$?
T1=$(date +%s.%N)
echo "RC=$RC WALL=$(echo "$T1 - $T0" | bc)"
echo "--- stderr tail"; tail -15 bench.err
echo "--- tracebacks: $(grep -c Traceback bench.err bench.out | tr '\n' ' ')"
sleep 1
echo "--- app processes right after (device still faulty)"
kill -USR2 $EMU; sleep 0.3; tail -1 emu.log
echo "--- files on the device right after"
find root/data/local/tmp root/data/data/dev.mobilize.bench -type f -printf '%p %s\n'
echo "--- results db"; $M results --db "$D/results.db" list 2>&1 | tail -6
echo "--- faults cleared on the same device; stock adb's view"
kill -USR1 $EMU; sleep 0.5; tail -1 emu.log
adb connect $S >/dev/null 2>&1; sleep 0.5
timeout 20 adb -s $S shell 'pidof dev.mobilize.bench; ls -la /data/local/tmp/mobilize; run-as dev.mobilize.bench ls -la files/results'
adb disconnect $S >/dev/null 2>&1
echo "--- the next normal bench"
$M bench "$OUT/tiny.tflite" --serial $S --adb-key "$KEY" --db "$D/results.db" --runs 10 --warmup 2 > next.out 2> next.err
echo "NEXT RC=$?"; tail -12 next.err
echo "--- files after it"
find root/data/local/tmp root/data/data/dev.mobilize.bench -type f -printf '%p %s\n'
kill -TERM $EMU; wait $EMU
