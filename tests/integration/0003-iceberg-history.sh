# 0003-iceberg-history.sh - the Iceberg history of a real pipeline: Debezium events with
# creates, updates, deletes and a tombstone flow through `ragfeed run`; the changelog is
# exported (by run's exporter when it has one, and by `ragfeed history export`) in several
# snapshots, with a promoted metadata column added midway (schema evolution).  Then the
# independent verifier must accept every snapshot, DuckDB's rows must equal the store's
# changelog value for value, `ragfeed history snapshots/record/scan` must tell the same
# story, and compaction, expiry and gc must keep all of it true.  Needs node and the
# verifier's node_modules; fails loudly without them.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
FIX="$RF_SHARED_DIR/fixtures/cdc/debezium/postgres/flink-debezium-postgres-data-schema-exclude.jsonl"
VERIFY="$RF_SHARED_DIR/tools/iceberg-verify"
HERE="$RF_SOURCE_DIR/tests/integration"
TOPIC=fullfillment.inventory.products
TABLE=ragfeed.records_history

command -v node >/dev/null || rf_die "node is required (interop test)"
[ -f "$VERIFY/node_modules/@duckdb/node-api/package.json" ] \
  || rf_die "missing $VERIFY/node_modules: run npm ci there"

rf_broker_start "$TOPIC" 4
/usr/bin/python3 - "$FIX" >"$RF_TMP/events.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    row = d["after"] or d["before"]
    print(json.dumps({"id": row["id"]}) + "\t" + line.strip())
PY
kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -z none <"$RF_TMP/events.tsv"
printf '{"id":111}\t\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z

STATE="$RF_TMP/state"
CATALOG="$STATE/catalog.db"
STORE="$STATE/store.db"
ARGS=(--set "source.topics=$TOPIC" --set source.format=debezium
      --set "source.text={name}: {description}" --set source.metadata.fields=weight
      --set "state.dir=$STATE" --set iceberg.commit.interval.ms=200
      --set iceberg.commit.rows=5)
rf_run_start run1 "${ARGS[@]}"

caught_up() {
  local want
  while read -r tp end; do
    [ "$end" -le 0 ] && continue
    want=$(rf_status_offset "$tp")
    [ "$want" = "$end" ] || return 1
  done < <(rf_partition_ends "$TOPIC" 4)
}
rf_wait_until 30 "ragfeed to apply every event" caught_up

# When `ragfeed run` carries the exporter, /v1/status, /metrics and /readyz show it, and
# it catches up by itself within a few commit intervals.
if [ "$(rf_http GET /v1/status | rf_json "'iceberg' in d")" = True ]; then
  run_exported() {
    [ "$(rf_http GET /v1/status | rf_json "d['iceberg']['exported_seq'] == d['seq'] and d['seq'] > 0")" = True ]
  }
  rf_wait_until 30 "run's exporter to catch up" run_exported
  rf_http GET /metrics | grep -qE '^ragfeed_iceberg_commits_total [1-9]' \
    || rf_die "no ragfeed_iceberg_commits_total in /metrics"
  rf_http GET /readyz >/dev/null
  [ "$(rf_http_code)" = 200 ] || rf_die "/readyz $(rf_http_code) with a healthy exporter"
  echo "run's own exporter: caught up"
fi

# Before anything was exported: no catalog, exit 4 with a message naming it (unless run's
# own exporter was quicker, which is fine too).
if [ ! -f "$CATALOG" ]; then
  set +e
  "$RF_BIN" history snapshots --set "state.dir=$STATE" >/dev/null 2>"$RF_TMP/err"
  code=$?
  set -e
  [ "$code" = 4 ] || rf_die "history snapshots without a catalog exited $code, want 4"
  grep -q "catalog.db" "$RF_TMP/err" || rf_die "no catalog path in: $(cat "$RF_TMP/err")"
fi

"$RF_BIN" history export "${ARGS[@]}" >"$RF_TMP/export1.json"
[ -f "$CATALOG" ] || rf_die "no catalog after export"
kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed run did not exit 0 on SIGTERM"
# Round two runs with a promoted column (weight), added to the table's schema while it
# already holds files.
ARGS2=("${ARGS[@]}" --set iceberg.columns=weight:double)
rf_run_start run2 "${ARGS2[@]}"

# Round two: updates, a delete, a new record.
src='"source":{"version":"1.2.1.Final","connector":"postgresql","name":"fullfillment","ts_ms":1596010990000,"snapshot":"false","db":"postgres","schema":"inventory","table":"products","txId":700,"lsn":34200000,"xmin":null}'
{
  for i in 1 2 3; do
    printf '%s\t%s\n' '{"id":106}' "{\"before\":null,\"after\":{\"id\":106,\"name\":\"hammer\",\"description\":\"hammer v$i\",\"weight\":$i.5},$src,\"op\":\"u\",\"ts_ms\":159601099000$i,\"transaction\":null}"
  done
  printf '%s\t%s\n' '{"id":102}' "{\"before\":{\"id\":102,\"name\":\"car battery\",\"description\":\"12V car battery\",\"weight\":8.1},\"after\":null,$src,\"op\":\"d\",\"ts_ms\":1596010990100,\"transaction\":null}"
  printf '%s\t%s\n' '{"id":120}' "{\"before\":null,\"after\":{\"id\":120,\"name\":\"ladder\",\"description\":\"step ladder\",\"weight\":7.25},$src,\"op\":\"c\",\"ts_ms\":1596010990200,\"transaction\":null}"
} | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
printf '{"id":102}\t\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -Z
rf_wait_until 30 "round two to be applied" caught_up
"$RF_BIN" history export "${ARGS2[@]}" >"$RF_TMP/export2.json"

kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed run did not exit 0 on SIGTERM"
"$RF_BIN" history export "${ARGS2[@]}" >"$RF_TMP/export3.json"
max_seq=$(/usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select max(seq) from changelog').fetchone()[0])" "$STORE")
[ "$max_seq" -ge 18 ] || rf_die "only $max_seq changelog rows"

verify_table() {
  (cd "$VERIFY" && node verify.mjs "$CATALOG" "$TABLE" --icebird-all --compact) \
    >"$RF_TMP/verify.out" 2>"$RF_TMP/verify.err" || true
  tail -n1 "$RF_TMP/verify.out" | /usr/bin/python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
assert d["ok"] is True and not d["errors"], json.dumps(d.get("errors") or d)[:3000]
for s in d["snapshots"]:
    assert s["rows_icebird"] is not None and s["rows_icebird"] == s["rows_duckdb"], s
print("verifier: ok, %d snapshots" % len(d["snapshots"]))
' || rf_die "verifier ($1): $(tail -c 3000 "$RF_TMP/verify.out") $(tail -c 2000 "$RF_TMP/verify.err")"
}
check_values() {
  node "$HERE/iceberg_rows.mjs" "$CATALOG" "$TABLE" >"$RF_TMP/rows.jsonl" \
    || rf_die "iceberg_rows.mjs failed ($1)"
  /usr/bin/python3 "$HERE/iceberg_check.py" "$STORE" "$RF_TMP/rows.jsonl" \
    || rf_die "table differs from the changelog ($1)"
}
verify_table export
check_values export

# The promoted column: typed values for rows written after it existed, null before.
/usr/bin/python3 - "$RF_TMP/rows.jsonl" "$RF_TMP/export1.json" <<'PY' || rf_die "weight column"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
typed = [r for r in rows if r.get("weight") is not None]
assert typed, "no row has a weight value"
for r in typed:
    assert r["weight"] == json.loads(r["metadata"])["weight"], r
assert any(r.get("weight") is None and r["op"] == "upsert" for r in rows), "old rows are not null"
PY

# history snapshots: the position of the last one is the store's last seq; its offsets
# never pass the store's.
"$RF_BIN" history snapshots --set "state.dir=$STATE" >"$RF_TMP/snaps.jsonl"
/usr/bin/python3 - "$RF_TMP/snaps.jsonl" "$STORE" "$max_seq" <<'PY' || rf_die "history snapshots"
import json, sqlite3, sys
snaps = [json.loads(l) for l in open(sys.argv[1])]
assert len(snaps) >= 4, "expected several snapshots, got %d" % len(snaps)
last = snaps[-1]
assert last["current"] and last["seq"] == int(sys.argv[3]), last
seqs = [s["seq"] for s in snaps]
assert seqs == sorted(seqs), seqs
assert sum(s["added_records"] for s in snaps) == int(sys.argv[3]), snaps
store = {"%s/%d" % (t, p): n for t, p, n in sqlite3.connect(sys.argv[2]).execute(
    'select topic, "partition", next_offset from offsets')}
for k, v in last["offsets"].items():
    assert k in store and v <= store[k], (k, v, store)
for s in snaps[1:]:
    assert s["parent_id"] is not None
print("snapshots: %d, last seq %d" % (len(snaps), last["seq"]))
PY

# history record: every version of 106 (snapshot read, then three updates) and the delete
# of 111, oldest first, with the Kafka position of each.
"$RF_BIN" history record inventory.products:106 --set "state.dir=$STATE" >"$RF_TMP/r106.jsonl"
"$RF_BIN" history record inventory.products:111 --set "state.dir=$STATE" >"$RF_TMP/r111.jsonl"
/usr/bin/python3 - "$RF_TMP/r106.jsonl" "$RF_TMP/r111.jsonl" <<'PY' || rf_die "history record"
import json, sys
v = [json.loads(l) for l in open(sys.argv[1])]
assert len(v) >= 4, v
assert [x["seq"] for x in v] == sorted(x["seq"] for x in v)
assert v[-1]["text"] == "hammer: hammer v3", v[-1]
assert all(x["kafka"]["topic"] == "fullfillment.inventory.products" and x["kafka"]["offset"] is not None for x in v)
assert "vector" not in v[0]
d = [json.loads(l) for l in open(sys.argv[2])]
assert d[-1]["op"] == "delete" and d[-1]["text"] is None, d
PY
set +e
"$RF_BIN" history record no:such --set "state.dir=$STATE" >/dev/null 2>&1
[ $? = 1 ] || rf_die "record of an unknown id should exit 1"
"$RF_BIN" history bogus --set "state.dir=$STATE" >/dev/null 2>&1
[ $? = 2 ] || rf_die "unknown subcommand should exit 2"
"$RF_BIN" history record --set "state.dir=$STATE" >/dev/null 2>&1
[ $? = 2 ] || rf_die "record without an id should exit 2"
"$RF_BIN" history scan --as-of yesterday --set "state.dir=$STATE" >/dev/null 2>&1
[ $? = 2 ] || rf_die "a bad --as-of should exit 2"
"$RF_BIN" history snapshots --set iceberg.commit.rows=0 --set "state.dir=$STATE" >/dev/null 2>&1
[ $? = 3 ] || rf_die "bad configuration should exit 3"
"$RF_BIN" history snapshots --set "state.dir=$RF_TMP/nothing" >/dev/null 2>&1
[ $? = 4 ] || rf_die "a missing catalog should exit 4"
set -e

# history scan: the current snapshot has every row; the first snapshot, by id and as of
# its time, has what it had then.
"$RF_BIN" history scan --set "state.dir=$STATE" --vectors >"$RF_TMP/scan.jsonl"
[ "$(wc -l <"$RF_TMP/scan.jsonl")" = "$max_seq" ] || rf_die "scan: $(wc -l <"$RF_TMP/scan.jsonl") rows, want $max_seq"
first=$(head -n1 "$RF_TMP/snaps.jsonl")
first_id=$(rf_json "d['snapshot_id']" <<<"$first")
first_ms=$(rf_json "d['timestamp_ms']" <<<"$first")
first_rows=$(rf_json "d['total_records']" <<<"$first")
n=$("$RF_BIN" history scan --snapshot "$first_id" --set "state.dir=$STATE" | wc -l)
[ "$n" = "$first_rows" ] || rf_die "scan --snapshot: $n rows, want $first_rows"
# As of the first snapshot's time: the last snapshot committed by then (two may share a
# millisecond).
asof_rows=$(/usr/bin/python3 -c '
import json, sys
snaps = [json.loads(l) for l in open(sys.argv[1])]
print([s for s in snaps if s["timestamp_ms"] <= int(sys.argv[2])][-1]["total_records"])' \
  "$RF_TMP/snaps.jsonl" "$first_ms")
n=$("$RF_BIN" history scan --as-of "$first_ms" --set "state.dir=$STATE" | wc -l)
[ "$n" = "$asof_rows" ] || rf_die "scan --as-of: $n rows, want $asof_rows"
# ragfeed's reader and DuckDB agree on the values (vectors included).
/usr/bin/python3 - "$RF_TMP/scan.jsonl" "$RF_TMP/rows.jsonl" <<'PY' || rf_die "scan differs from DuckDB"
import json, sys
ours = {json.loads(l)["seq"]: json.loads(l) for l in open(sys.argv[1])}
duck = {json.loads(l)["seq"]: json.loads(l) for l in open(sys.argv[2])}
assert ours.keys() == duck.keys()
for s, d in duck.items():
    o = ours[s]
    for k in ("op", "id", "text", "metadata", "model", "vector", "kafka_offset", "weight"):
        assert o.get(k) == d.get(k), (s, k, o.get(k), d.get(k))
PY

# Maintenance: compaction, expiry and gc keep the rows and the verifier's approval.
"$RF_BIN" history compact --set "state.dir=$STATE" >"$RF_TMP/compact.json"
[ "$(rf_json "d['files_rewritten'] > 1" <"$RF_TMP/compact.json")" = True ] \
  || rf_die "compaction rewrote nothing: $(cat "$RF_TMP/compact.json")"
verify_table compact
check_values compact
"$RF_BIN" history expire --older-than 0s --set "state.dir=$STATE" >"$RF_TMP/expire.json"
[ "$(rf_json "d['snapshots_expired'] > 0 and d['files_deleted'] > 0" <"$RF_TMP/expire.json")" = True ] \
  || rf_die "expire did nothing: $(cat "$RF_TMP/expire.json")"
verify_table expire
check_values expire
"$RF_BIN" history gc --grace 0s --set "state.dir=$STATE" >"$RF_TMP/gc.json"
verify_table gc
check_values gc
# After maintenance the exporter goes on where the table says it is.
"$RF_BIN" history export "${ARGS2[@]}" >"$RF_TMP/export4.json"
[ "$(rf_json "d['rows']" <"$RF_TMP/export4.json")" = 0 ] || rf_die "re-export after maintenance: $(cat "$RF_TMP/export4.json")"
echo "iceberg history checks passed"
