# 0002-iceberg-kill9.sh - the Iceberg history under kill -9: while `ragfeed run` applies a
# stream of Debezium events with many updates and deletes, exporters (`ragfeed history
# export`, small commits, so most time is spent writing files and committing) are killed
# with SIGKILL at random moments, at least 10 times; run itself is killed too, and may
# export as well.  Afterwards every changelog seq must be in the table exactly once with
# the store's values (DuckDB over the current snapshot's files), the independent verifier
# must accept the table, and removing the orphans of the killed commits must change
# nothing.  INVARIANT(history-exported-once).  Needs node and the verifier's modules.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
TOPIC=srv.crash.iceberg
EVENTS=${RF_CRASH_EVENTS:-16000}
KILLS=${RF_CRASH_KILLS:-12}
SEED=${RF_CRASH_SEED:-$RANDOM}
VERIFY="$RF_SHARED_DIR/tools/iceberg-verify"
HERE="$RF_SOURCE_DIR/tests/integration"
TABLE=ragfeed.records_history
echo "seed=$SEED events=$EVENTS kills=$KILLS"

command -v node >/dev/null || rf_die "node is required"
[ -f "$VERIFY/node_modules/@duckdb/node-api/package.json" ] \
  || rf_die "missing $VERIFY/node_modules: run npm ci there"

mkdir -p "$RF_TMP/ev"
/usr/bin/python3 "$RF_SOURCE_DIR/tests/crash/gen_events.py" "$SEED" "$EVENTS" 2000 "$RF_TMP/ev" "$KILLS"
rf_broker_start "$TOPIC" 4

STATE="$RF_TMP/state"
ARGS=(--set "source.topics=$TOPIC" --set "source.text={body}" --set "state.dir=$STATE"
      --set source.batch.max=500 --set embed.dim=64
      --set iceberg.commit.rows=40 --set iceberg.commit.interval.ms=100)

caught_up() {
  local want
  while read -r tp end; do
    [ "$end" -le 0 ] && continue
    want=$(rf_status_offset "$tp")
    [ "$want" = "$end" ] || return 1
  done < <(rf_partition_ends "$TOPIC" 4)
}
# Changelog rows applied but not yet in the table, from the running instance.
export_lag() { rf_http GET /v1/status | rf_json "d['seq'] - d['iceberg']['exported_seq']"; }
export_behind() { local l; l=$(export_lag 2>/dev/null) && [ "${l:-0}" -gt 0 ]; }
# Parquet files on disk that no snapshot lists yet: the leftovers of killed commits.
orphans() {
  local live
  live=$(node "$HERE/iceberg_rows.mjs" "$STATE/catalog.db" "$TABLE" --files 2>/dev/null | wc -l)
  echo $(( $(find "$STATE/warehouse" -name '*.parquet' 2>/dev/null | wc -l) - live ))
}

rf_run_start run0 "${ARGS[@]}"
# Does `ragfeed run` export by itself?  Then it is the main target of the kills.
wired=$(rf_http GET /v1/status | rf_json "'iceberg' in d")
echo "run exports by itself: $wired"
landed=0
for ((i = 0; i < KILLS; i++)); do
  kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z -z none <"$RF_TMP/ev/chunk-$(printf %03d "$i").tsv"
  if [ "$wired" = True ]; then
    # run ingests the chunk and exports it in small commits; a standalone exporter races
    # it now and then.  The kill lands at a random moment (0-300 ms) once the export is
    # behind; that delay is the experiment's randomness, not a synchronisation.
    if ((i % 3 == 1)); then
      "$RF_BIN" history export "${ARGS[@]}" --set log.level=warn >/dev/null 2>&1 &
      RF_PIDS+=("$!")
    fi
    # The export must be under way when the kill comes: some of the chunk applied and not
    # yet exported (a kill before the chunk arrives would test nothing).  Up to 10 s; a
    # round that never sees it behind still kills, and does not count as landed.
    for ((w = 0; w < 200; w++)); do export_behind && break; sleep 0.05; done
    sleep "0.$(printf %03d $(( RANDOM % 300 )))"
    lag=$(export_lag || echo 0)
    kill -9 "$RF_RUN_PID"
    wait "$RF_RUN_PID" 2>/dev/null || true
    if [ "${lag:-0}" -gt 0 ]; then landed=$((landed + 1)); fi
    echo "round $i: run killed with $lag changelog rows not yet exported; orphan files now $(orphans)"
    rf_run_start "run$i" "${ARGS[@]}"
    continue
  fi
  # Most of the chunk applied first, so that the exporter has a backlog of many small
  # commits to work through when the kill comes.
  rf_wait_until 60 "run to apply chunk $i" caught_up
  # Two exporters at once now and then: their commits race, and compare-and-swap decides.
  "$RF_BIN" history export "${ARGS[@]}" --set log.level=warn >"$RF_TMP/exp$i.out" 2>&1 &
  exp_pid=$!
  RF_PIDS+=("$exp_pid")
  if ((i % 3 == 1)); then
    "$RF_BIN" history export "${ARGS[@]}" --set log.level=warn >/dev/null 2>&1 &
    RF_PIDS+=("$!")
  fi
  # The kill lands at a random moment (0-400 ms) of the export; this delay is the
  # experiment's randomness, not a synchronisation.
  sleep "0.$(printf %03d $(( RANDOM % 400 )))"
  kill -9 "$exp_pid" 2>/dev/null || true
  wait "$exp_pid" 2>/dev/null || true
  if [ ! -s "$RF_TMP/exp$i.out" ]; then landed=$((landed + 1)); fi
  if ((i % 4 == 3)); then
    # run too, in the middle of its work.
    kill -9 "$RF_RUN_PID"
    wait "$RF_RUN_PID" 2>/dev/null || true
    rf_run_start "run$i" "${ARGS[@]}"
  fi
  echo "round $i: exporter killed $([ -s "$RF_TMP/exp$i.out" ] && echo after || echo before) finishing; orphan files now $(orphans)"
done
wait_others() { for p in "${RF_PIDS[@]}"; do [ "$p" = "$RF_RUN_PID" ] || [ "$p" = "$RF_BROKER_PID" ] || wait "$p" 2>/dev/null || true; done; }
wait_others
((landed >= KILLS / 2)) || rf_die "only $landed of $KILLS kills landed during an export; the test did not test"

rf_wait_until 120 "run to apply every event" caught_up
kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed run did not stop cleanly"
"$RF_BIN" history export "${ARGS[@]}" >"$RF_TMP/final.json" || rf_die "final export failed"
echo "final export: $(cat "$RF_TMP/final.json"); orphan files: $(orphans)"

check_all() {
  node "$HERE/iceberg_rows.mjs" "$STATE/catalog.db" "$TABLE" >"$RF_TMP/rows.jsonl" \
    || rf_die "reading the table with DuckDB failed ($1)"
  /usr/bin/python3 "$HERE/iceberg_check.py" "$STATE/store.db" "$RF_TMP/rows.jsonl" \
    || rf_die "table differs from the changelog ($1, seed $SEED)"
  (cd "$VERIFY" && node verify.mjs "$STATE/catalog.db" "$TABLE" --compact) \
    >"$RF_TMP/verify.out" 2>"$RF_TMP/verify.err" || true
  tail -n1 "$RF_TMP/verify.out" | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["ok"] is True and not d["errors"], json.dumps(d.get("errors") or d)[:3000]
print("verifier: ok, %d snapshots, current has %s rows" % (len(d["snapshots"]), d["rows"]["current"]))
' || rf_die "verifier rejects the table ($1, seed $SEED): $(tail -c 2000 "$RF_TMP/verify.out")"
}
check_all "after the kills"
# The orphans of killed commits are only orphans: removing them changes nothing.
"$RF_BIN" history gc --grace 0s --set "state.dir=$STATE" >"$RF_TMP/gc.json"
echo "gc: $(cat "$RF_TMP/gc.json")"
[ "$(orphans)" = 0 ] || rf_die "orphans left after gc"
check_all "after gc"
echo "iceberg crash checks passed"
