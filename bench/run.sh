#!/usr/bin/env bash
# run.sh BUILD_DIR - runs the benchmarks and prints one table; each figure sits beside a
# baseline measured in the same run.  Numbers are medians of RF_BENCH_RUNS runs.
#
# ingest: events/s through the whole pipeline (decode, map, built-in embedder, one
# store transaction per batch, FAISS update) against plain librdkafka consuming the
# same messages.  The test broker keeps at most 5 MiB per partition, so the stream is
# sized to fit: RF_BENCH_EVENTS (default 40000) events of ~250 bytes over 4 partitions
# (about 2.5 MiB of values per partition; 60000 already lost the oldest messages).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
RF_BIN=$BUILD/ragfeed
RUNS=${RF_BENCH_RUNS:-3}
EVENTS=${RF_BENCH_EVENTS:-40000}
export RF_BIN RF_SOURCE_DIR=$SRC
source "$SRC/tests/lib/rf.sh"
mkdir -p "$SRC/bench/results"

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }

TOPIC=bench.inventory.items
rf_broker_start "$TOPIC" 4
mkdir -p "$RF_TMP/ev"
/usr/bin/python3 "$SRC/tests/crash/gen_events.py" 7 "$EVENTS" "$EVENTS" "$RF_TMP/ev" 1 >/dev/null
kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z -z none <"$RF_TMP/ev/chunk-000.tsv"
total=0
while read -r tp end; do total=$((total + end)); done < <(rf_partition_ends "$TOPIC" 4)

caught_up() {
  local sum
  sum=$(curl -s "$RF_URL/v1/status" | rf_json "sum(d['offsets'].values())")
  [ "$sum" -ge "$total" ]
}

raw=() pipe=()
for ((r = 0; r < RUNS; r++)); do
  raw+=("$("$BUILD/bench/bench_consume" "$RF_BOOTSTRAP" "$TOPIC" 4 "$total" | sed -n 's/.*rate=//p')")
  rm -rf "$RF_TMP/state"
  t0=$(ms)
  rf_run_start "bench$r" --set "source.topics=$TOPIC" --set "source.text={body}" \
    --set "state.dir=$RF_TMP/state"
  rf_wait_until 300 "pipeline to consume $total events" caught_up
  t1=$(ms)
  pipe+=("$(( total * 1000 / (t1 - t0) ))")
  kill -TERM "$RF_RUN_PID"; wait "$RF_RUN_PID" || true
done
raw_med=$(printf '%s\n' "${raw[@]}" | median)
pipe_med=$(printf '%s\n' "${pipe[@]}" | median)
ratio=$(awk -v a="$pipe_med" -v b="$raw_med" 'BEGIN {printf "%.3f", a / b}')

printf '\n%-58s %12s %12s %8s\n' "benchmark ($total events, 4 partitions, dim 384)" "value" "baseline" "ratio"
printf '%-58s %12s %12s %8s\n' "ingest events/s: pipeline vs raw librdkafka consume" "$pipe_med" "$raw_med" "$ratio"
printf '{"ingest":{"events":%d,"pipeline_events_per_s":%s,"raw_consume_per_s":%s,"ratio":%s,"runs":%d}}\n' \
  "$total" "$pipe_med" "$raw_med" "$ratio" "$RUNS" >"$SRC/bench/results/ingest.json"
