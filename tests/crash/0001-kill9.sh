# 0001-kill9.sh - exactly once under kill -9: a stream of Debezium events with many
# updates and deletes over 4 partitions is produced in chunks while ragfeed runs, and
# ragfeed is killed with SIGKILL at random moments (at least 10 times), including
# during checkpoints.  After the final restart catches up, the store, the records API
# and search results equal the model of the stream, the changelog has exactly one row
# per effective change, and every offset equals the end of its partition.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
TOPIC=srv.crash.items
EVENTS=${RF_CRASH_EVENTS:-24000}
KILLS=${RF_CRASH_KILLS:-12}
SEED=${RF_CRASH_SEED:-$RANDOM}
echo "seed=$SEED events=$EVENTS kills=$KILLS"

mkdir -p "$RF_TMP/ev"
/usr/bin/python3 "$RF_SOURCE_DIR/tests/crash/gen_events.py" "$SEED" "$EVENTS" 3000 "$RF_TMP/ev" "$KILLS"
rf_broker_start "$TOPIC" 4

ARGS=(--set "source.topics=$TOPIC" --set "source.text={body}" --set "state.dir=$RF_TMP/state"
      --set index.checkpoint.interval.ms=150 --set source.batch.max=500)

caught_up() {
  local want
  while read -r tp end; do
    [ "$end" -le 0 ] && continue
    want=$(rf_status_offset "$tp")
    [ "$want" = "$end" ] || return 1
  done < <(rf_partition_ends "$TOPIC" 4)
}

produced=0
for ((i = 0; i < KILLS; i++)); do
  t0=$(date +%s%N)
  rf_run_start "run$i" "${ARGS[@]}"
  t1=$(date +%s%N)
  applied=$(rf_http GET /v1/status | rf_json "sum(d['offsets'].values())")
  # applied < produced shows the previous kill landed while events were in flight.
  echo "restart $i: serving after $(( (t1 - t0) / 1000000 )) ms; store had applied $applied of $produced events"
  produced=$((produced + $(wc -l <"$RF_TMP/ev/chunk-$(printf %03d "$i").tsv")))
  kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z -z none <"$RF_TMP/ev/chunk-$(printf %03d "$i").tsv"
  # The kill lands at a random moment (0-250 ms) of consuming this chunk; this delay is
  # the experiment's randomness, not a synchronisation.
  sleep "0.$(printf %03d $(( RANDOM % 250 )))"
  kill -9 "$RF_RUN_PID"
  wait "$RF_RUN_PID" 2>/dev/null || true
done

t0=$(date +%s%N)
rf_run_start final "${ARGS[@]}"
rf_wait_until 120 "the final run to catch up" caught_up
echo "final catch-up after $(( ($(date +%s%N) - t0) / 1000000 )) ms"
/usr/bin/python3 "$RF_SOURCE_DIR/tests/crash/verify.py" "$RF_TMP/ev/model.json" "$RF_URL" \
  || rf_die "state differs from the model (seed $SEED)"
kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed did not stop cleanly"
/usr/bin/python3 - "$RF_TMP/ev/model.json" "$RF_TMP/state/store.db" <<'PY' || rf_die "store check failed (seed $SEED)"
import json, sqlite3, sys
model = json.load(open(sys.argv[1]))
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[2], uri=True)
n = db.execute("select count(*) from changelog").fetchone()[0]
assert n == model["changelog_rows"], "changelog rows %d != model %d" % (n, model["changelog_rows"])
recs = dict(db.execute("select id, text from records"))
assert recs == model["records"], "store records differ from the model"
print("store: %d records, %d changelog rows: exactly once" % (len(recs), n))
PY
echo "crash checks passed"
