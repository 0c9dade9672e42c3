# 0002-pipeline-debezium.sh - real Debezium PostgreSQL events produced by kcat flow
# through `ragfeed run` into records and search results: snapshot reads, updates,
# creates, a delete, a tombstone, a primary-key change, a truncate, a malformed event
# (dead letter, stream goes on), and a restart that re-applies nothing.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
FIX="$RF_SHARED_DIR/fixtures/cdc/debezium/postgres/flink-debezium-postgres-data-schema-exclude.jsonl"
TOPIC=fullfillment.inventory.products

rf_broker_start "$TOPIC" 4

# Key every value by its row id, as Debezium does; tab-separated for kcat -K.
/usr/bin/python3 - "$FIX" >"$RF_TMP/events.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    row = d["after"] or d["before"]
    print(json.dumps({"id": row["id"]}) + "\t" + line.strip())
PY
kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -z none <"$RF_TMP/events.tsv"
# The tombstone that follows the delete: key, NULL value (-Z sends empty as NULL).
printf '{"id":111}\t\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z

ARGS=(--set "source.topics=$TOPIC" --set source.format=debezium
      --set "source.text={name}: {description}" --set source.metadata.fields=weight
      --set "state.dir=$RF_TMP/state" --set source.dlq.topic=dlq)
# The HTTP threads on the first CPU, ingest's on the last (the same one on one CPU).
SERVE_CPU=$(taskset -pc $$ | sed 's/.*: //; s/[-,].*//')
INGEST_CPU=$(taskset -pc $$ | sed 's/.*[-,]//')
rf_run_start run1 "${ARGS[@]}" --set "serve.cpus=$SERVE_CPU" --set "ingest.cpus=$INGEST_CPU"

caught_up() {
  local want
  while read -r tp end; do
    [ "$end" -le 0 ] && continue
    want=$(rf_status_offset "$tp")
    [ "$want" = "$end" ] || return 1
  done < <(rf_partition_ends "$TOPIC" 4)
}
rf_wait_until 30 "ragfeed to apply every event" caught_up

# Ingest's threads run at ingest.nice (10 by default), the HTTP threads at the process's
# priority; on ingest's own CPUs (ingest.cpus, set here) the index's maintenance thread runs
# at nice 19, behind the one that applies batches. Field 19 of a thread's stat is its nice.
threads=$(for t in /proc/"$RF_RUN_PID"/task/*; do
  printf '%s %s\n' "$(cat "$t/comm")" "$(awk '{print $19}' "$t/stat")"
done)
for name in rf-apply rf-index-ckpt rdk:main; do
  grep -qx "$name 10" <<<"$threads" || rf_die "thread $name not at nice 10: $threads"
done
grep -qx "rf-index-maint 19" <<<"$threads" || rf_die "thread rf-index-maint not at nice 19: $threads"
grep -Eq '^MHD-.* 0$' <<<"$threads" || rf_die "no HTTP thread at nice 0: $threads"
grep -Eq '^MHD-.* 10$' <<<"$threads" && rf_die "an HTTP thread at nice 10: $threads"

# ...and on their CPUs (serve.cpus, ingest.cpus): Cpus_allowed_list of each thread.
cpus=$(for t in /proc/"$RF_RUN_PID"/task/*; do
  printf '%s %s\n' "$(cat "$t/comm")" "$(awk '/^Cpus_allowed_list/{print $2}' "$t/status")"
done)
for name in rf-apply rf-index-maint rf-index-ckpt rf-index-wal rf-index-free rdk:main; do
  grep -qx "$name $INGEST_CPU" <<<"$cpus" || rf_die "thread $name not on CPU $INGEST_CPU: $cpus"
done
grep -Eq "^MHD-.* $SERVE_CPU\$" <<<"$cpus" || rf_die "no HTTP thread on CPU $SERVE_CPU: $cpus"
grep -E '^MHD-' <<<"$cpus" | grep -Evq " $SERVE_CPU\$" && rf_die "an HTTP thread off CPU $SERVE_CPU: $cpus"

# The model: the last event of each id wins; a delete removes it.
status=$(rf_http GET /v1/status)
[ "$(rf_json "d['records']" <<<"$status")" = 10 ] || rf_die "expected 10 records: $status"
body=$(rf_http GET /v1/records/inventory.products:106)
[ "$(rf_http_code)" = 200 ] || rf_die "record 106: $(rf_http_code)"
[ "$(rf_json "d['text']" <<<"$body")" = "hammer: 18oz carpenter hammer" ] || rf_die "106 not updated: $body"
[ "$(rf_json "d['metadata']['weight']" <<<"$body")" = 1.0 ] || rf_die "106 metadata: $body"
rf_http GET /v1/records/inventory.products:111 >/dev/null
[ "$(rf_http_code)" = 404 ] || rf_die "deleted record 111 still there: $(rf_http_code)"
# Percent-encoded ids work too.
rf_http GET /v1/records/inventory.products%3A101 >/dev/null
[ "$(rf_http_code)" = 200 ] || rf_die "encoded id: $(rf_http_code)"

res=$(rf_http POST /v1/search '{"query":"spare tire","k":3}')
[ "$(rf_json "d['results'][0]['id']" <<<"$res")" = inventory.products:109 ] || rf_die "search: $res"
res=$(rf_http POST /v1/search '{"query":"scooter","k":10}')
rf_json "[r['id'] for r in d['results'] if r['id'].endswith(':111')]" <<<"$res" | grep -q '^\[\]$' \
  || rf_die "deleted record returned by search: $res"

# A primary-key change: delete of the old key, tombstone, create of the new key.
old_src='"source":{"version":"1.2.1.Final","connector":"postgresql","name":"fullfillment","ts_ms":1596010990000,"snapshot":"false","db":"postgres","schema":"inventory","table":"products","txId":609,"lsn":34134000,"xmin":null}'
printf '%s\t%s\n' '{"id":101}' "{\"before\":{\"id\":101,\"name\":\"scooter\",\"description\":\"Small 2-wheel scooter\",\"weight\":3.14},\"after\":null,$old_src,\"op\":\"d\",\"ts_ms\":1596010990001,\"transaction\":null}" \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -H '__debezium.newkey={"id":1101}'
printf '{"id":101}\t\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z
printf '%s\t%s\n' '{"id":1101}' "{\"before\":null,\"after\":{\"id\":1101,\"name\":\"scooter\",\"description\":\"Small 2-wheel scooter, renumbered\",\"weight\":3.14},$old_src,\"op\":\"c\",\"ts_ms\":1596010990002,\"transaction\":null}" \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -H '__debezium.oldkey={"id":101}'
# A malformed event in the middle of the stream, then a valid one after it.
printf '{"id":5}\tthis is not json\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
printf '%s\t%s\n' '{"id":112}' "{\"before\":null,\"after\":{\"id\":112,\"name\":\"lamp\",\"description\":\"desk lamp\",\"weight\":1.5},$old_src,\"op\":\"c\",\"ts_ms\":1596010990003,\"transaction\":null}" \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
rf_wait_until 30 "the PK change, the dead letter and the lamp" caught_up

rf_http GET /v1/records/inventory.products:101 >/dev/null
[ "$(rf_http_code)" = 404 ] || rf_die "old key 101 survived the PK change"
body=$(rf_http GET /v1/records/inventory.products:1101)
[ "$(rf_http_code)" = 200 ] || rf_die "new key 1101 missing"
grep -q renumbered <<<"$body" || rf_die "1101 text: $body"
rf_http GET /v1/records/inventory.products:112 >/dev/null
[ "$(rf_http_code)" = 200 ] || rf_die "event after the dead letter was not applied"
status=$(rf_http GET /v1/status)
[ "$(rf_json "d['records']" <<<"$status")" = 11 ] || rf_die "expected 11 records: $status"
[ "$(rf_json "d['dead_letters']" <<<"$status")" = 1 ] || rf_die "expected 1 dead letter: $status"
# The dead letter reached the DLQ topic with its reason and original bytes.
dlq=$(kcat -b "$RF_BOOTSTRAP" -C -t dlq -o beginning -e -q -f '%k|%s|%h\n')
grep -qF '{"id":5}|this is not json|' <<<"$dlq" || rf_die "DLQ message: $dlq"
grep -qF 'ragfeed.error.reason=' <<<"$dlq" || rf_die "DLQ reason header: $dlq"

# A clean stop and a restart re-apply nothing and keep everything.
seq_before=$(rf_json "d['seq']" <<<"$status")
kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed did not exit 0 on SIGTERM"
rf_run_start run2 "${ARGS[@]}"
rf_wait_until 30 "restart to catch up" caught_up
status=$(rf_http GET /v1/status)
[ "$(rf_json "d['records']" <<<"$status")" = 11 ] || rf_die "records after restart: $status"
[ "$(rf_json "d['seq']" <<<"$status")" = "$seq_before" ] || rf_die "seq moved on restart: $status"
[ "$(rf_json "d['events_consumed']" <<<"$status")" = 0 ] || rf_die "events re-consumed: $status"

# Truncate: NULL key, no before/after; every record of the table goes.
printf '\t%s\n' "{\"source\":{\"version\":\"1.2.1.Final\",\"connector\":\"postgresql\",\"name\":\"fullfillment\",\"ts_ms\":1596010999000,\"snapshot\":\"false\",\"db\":\"postgres\",\"schema\":\"inventory\",\"table\":\"products\",\"txId\":610,\"lsn\":34135000,\"xmin\":null},\"op\":\"t\",\"ts_ms\":1596010999001,\"transaction\":null}" \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z -p 0
rf_wait_until 30 "the truncate" caught_up
status=$(rf_http GET /v1/status)
[ "$(rf_json "d['records']" <<<"$status")" = 0 ] || rf_die "truncate left records: $status"
res=$(rf_http POST /v1/search '{"query":"hammer","k":5}')
[ "$(rf_json "len(d['results'])" <<<"$res")" = 0 ] || rf_die "search after truncate: $res"
echo "pipeline checks passed"
