# 0009-reembed.sh - `ragfeed reembed` moves a running instance from the built-in
# embedder (dim 64) to an OpenAI-compatible endpoint (the fake provider, dim 48) while
# events keep arriving and searches keep running: the migration goes through the admin
# API, a kill -9 in the middle of it is resumed by the next start, the switch happens
# once every record has a vector of the new generation, searches never fail nor come
# back empty, live ingest writes both generations, and a rollback is one command.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
FAKE="$RF_BUILD_DIR/tests/fake/fake_provider"
TOPIC=docs
N=1500

"$FAKE" --dim 48 --latency-ms 300 >"$RF_TMP/fake.out" 2>"$RF_TMP/fake.err" &
RF_PIDS+=($!)
rf_wait_until 20 "fake provider" grep -q '^listening=' "$RF_TMP/fake.out"
FURL="http://$(sed -n 's/^listening=//p' "$RF_TMP/fake.out")"
fake_stat() { curl -s "$FURL/_stats" | rf_json "d['$1']"; }

rf_broker_start "$TOPIC" 4
STATE="$RF_TMP/state"
ARGS=(--set "source.topics=$TOPIC" --set source.format=json --set source.id.fields=id
      --set "source.text={title}" --set "state.dir=$STATE" --set embed.provider=hash
      --set embed.dim=64 --set embed.batch.size=32 --set embed.concurrency=1 --set index.checkpoint.interval.ms=500)
produce() { # FROM TO SUFFIX
  local i
  for ((i = $1; i <= $2; i++)); do
    printf '%d\t{"id":%d,"title":"document %d about subject %d%s"}\n' "$i" "$i" "$i" $((i % 13)) "$3"
  done | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
}
applied() { rf_http GET /v1/status | rf_json "sum(d['offsets'].values())"; }
applied_is() { [ "$(applied)" = "$1" ]; }
mig() { rf_http GET /v1/admin/reembed | rf_json "d.get('migration', {}).get('$1')"; }
sql() { python3 -c "import sqlite3,sys; print(sqlite3.connect('file:$STATE/store.db?mode=ro', uri=True).execute(sys.argv[1]).fetchone()[0])" "$1"; }

rf_run_start run1 "${ARGS[@]}"
PORT=${RF_URL##*:}   # kept across the restart, so the searches follow the instance
produce 1 $N ""
rf_wait_until 60 "$N events applied" applied_is $N

# Searches run throughout, from the start of the migration to the end of the test.
searcher() {
  local i=0 code hits
  while [ ! -f "$RF_TMP/stop-search" ]; do
    i=$((i + 1))
    code=$(curl -s -o "$RF_TMP/s.json" -w '%{http_code}' "$RF_URL/v1/search" \
      -d "{\"query\":\"document about subject $((i % 13))\",\"k\":5}" || true)
    if [ "$code" = 200 ]; then
      hits=$(python3 -c "import json; print(len(json.load(open('$RF_TMP/s.json'))['results']))" 2>/dev/null || echo 0)
      echo "200 $hits" >>"$RF_TMP/searches"
    elif [ "$code" != 000 ]; then
      echo "$code 0" >>"$RF_TMP/searches"   # 000: the instance is down (killed on purpose)
    fi
  done
}
searcher &
SEARCHER=$!
RF_PIDS+=("$SEARCHER")

# The dry run counts before anything is sent.
dry=$("$RF_BIN" reembed --dry-run --provider openai --url "$FURL/v1/embeddings" \
  --model fake --dim 48 "${ARGS[@]}" --set "serve.listen=127.0.0.1:$PORT")
[ "$(rf_json "d['records']" <<<"$dry")" = $N ] || rf_die "dry run: $dry"
[ "$(rf_json "d['texts']" <<<"$dry")" = $N ] || rf_die "dry run texts: $dry"
[ "$(fake_stat calls)" = 0 ] || rf_die "the dry run called the endpoint"

# Start through the admin API, then kill -9 the instance in the middle of the build.
code=$(curl -s -o "$RF_TMP/start.json" -w '%{http_code}' "$RF_URL/v1/admin/reembed" \
  -d "{\"provider\":\"openai\",\"url\":\"$FURL/v1/embeddings\",\"model\":\"fake\",\"dim\":48}")
[ "$code" = 202 ] || rf_die "start: $code $(cat "$RF_TMP/start.json")"
some_done() { [ "$(mig done)" -gt 200 ] 2>/dev/null; }
rf_wait_until 60 "part of the migration" some_done
produce $((N + 1)) $((N + 100)) ""          # new records while it runs: dual-written
produce 1 50 " revised"                     # updates of records already re-embedded
[ "$(mig state)" = running ] || rf_die "migration state: $(rf_http GET /v1/admin/reembed)"
kill -9 "$RF_RUN_PID"; wait "$RF_RUN_PID" 2>/dev/null || true
stored=$(sql "SELECT COUNT(*) FROM gen_vectors WHERE gen = 2")
[ "$stored" -gt 0 ] || rf_die "nothing of generation 2 was stored before the kill"

# The next start resumes the build by itself and switches when it is complete.
rf_run_start run2 "${ARGS[@]}" --set "serve.listen=127.0.0.1:$PORT"
switched() { [ "$(rf_http GET /v1/status | rf_json "d['reembed']['migration']['state']")" = done ]; }
rf_wait_until 120 "the migration to finish after the restart" switched
rf_wait_until 60 "every event applied" applied_is $((N + 150))

total=$((N + 100))
[ "$(sql "SELECT COUNT(*) FROM records")" = $total ] || rf_die "records: $(sql "SELECT COUNT(*) FROM records")"
[ "$(sql "SELECT COUNT(*) FROM records WHERE gen = 2 AND dim = 48 AND length(vector) = 192")" = $total ] ||
  rf_die "records not on generation 2: $(sql "SELECT COUNT(*) FROM records WHERE gen != 2")"
[ "$(sql "SELECT COUNT(*) FROM gen_vectors WHERE gen = 2")" = 0 ] || rf_die "generation-2 leftovers"
[ "$(sql "SELECT COUNT(*) FROM gen_vectors WHERE gen = 1")" = $total ] || rf_die "rollback vectors missing"
[ "$(sql "SELECT text FROM records WHERE id = 'docs:7'")" = "document 7 about subject 7 revised" ] ||
  rf_die "an update made during the migration was lost"
[ "$(sql "SELECT COUNT(DISTINCT vid) FROM changelog WHERE cause = 'reembed' AND gen = 2")" = $total ] ||
  rf_die "the switch did not log every record"
gen=$(rf_http GET /v1/status | rf_json "d['reembed']['generations'][-1]['state']")
[ "$gen" = active ] || rf_die "generation 2 not active: $(rf_http GET /v1/status)"
# Queries are now embedded by the endpoint.
q0=$(fake_stat calls)
r=$(rf_http POST /v1/search '{"query":"document 42 about subject 3","k":3}')
[ "$(rf_json "d['results'][0]['id']" <<<"$r")" = docs:42 ] || rf_die "search after the switch: $r"
[ "$(fake_stat calls)" -gt "$q0" ] || rf_die "the query was not embedded by the new model"

# Live ingest after the switch keeps the previous generation current: rollback is exact.
produce 60 60 " once more"
rf_wait_until 30 "the last update" applied_is $((N + 151))
out=$("$RF_BIN" reembed rollback "${ARGS[@]}" --set "serve.listen=127.0.0.1:$PORT")
grep -q '"active":1' <<<"$out" || rf_die "rollback: $out"
r=$(rf_http POST /v1/search '{"query":"document 60 about subject 8 once more","k":3}')
[ "$(rf_json "d['results'][0]['id']" <<<"$r")" = docs:60 ] || rf_die "search after the rollback: $r"
[ "$(sql "SELECT COUNT(*) FROM records WHERE gen = 1 AND dim = 64")" = $total ] || rf_die "rollback records"

touch "$RF_TMP/stop-search"
wait "$SEARCHER"
n=$(wc -l <"$RF_TMP/searches")
bad=$(awk '$1 != 200 || $2 < 1' "$RF_TMP/searches" | wc -l)
[ "$n" -gt 20 ] || rf_die "only $n searches ran"
[ "$bad" = 0 ] || rf_die "$bad of $n searches failed or came back empty: $(awk '$1 != 200 || $2 < 1' "$RF_TMP/searches" | sort | uniq -c)"

# Without a running instance, the command does the work itself: a dry run, a build
# without switching, the switch, and the status.
kill -TERM "$RF_RUN_PID"; wait "$RF_RUN_PID" || rf_die "ragfeed run did not stop cleanly"
LOCAL=("${ARGS[@]}" --set embed.provider=hash)
out=$("$RF_BIN" reembed --dry-run --model hash-v3 --dim 32 "${LOCAL[@]}" 2>/dev/null)
[ "$(rf_json "d['texts']" <<<"$out")" = $total ] || rf_die "local dry run: $out"
out=$("$RF_BIN" reembed --model hash-v3 --dim 32 --no-cutover "${LOCAL[@]}" 2>"$RF_TMP/local.err")
grep -q "generation 3 is complete" <<<"$out" || rf_die "local build: $out $(cat "$RF_TMP/local.err")"
grep -q "progress done=$total total=$total" "$RF_TMP/local.err" || rf_die "no progress lines: $(cat "$RF_TMP/local.err")"
[ "$(sql "SELECT COUNT(*) FROM gen_vectors WHERE gen = 3")" = $total ] || rf_die "local build stored"
"$RF_BIN" reembed cutover "${LOCAL[@]}" >"$RF_TMP/cut.out" 2>/dev/null || rf_die "local cutover"
[ "$(sql "SELECT COUNT(*) FROM records WHERE gen = 3 AND dim = 32")" = $total ] || rf_die "local switch"
"$RF_BIN" reembed status "${LOCAL[@]}" 2>/dev/null >"$RF_TMP/status.out"
grep -q '"generation":3,"state":"active","dim":32' "$RF_TMP/status.out" || rf_die "status: $(cat "$RF_TMP/status.out")"
grep -q '"generation":1,"state":"previous".*"missing":0' "$RF_TMP/status.out" || rf_die "status: $(cat "$RF_TMP/status.out")"
echo "ok: $n searches during the migration, none failed or empty"
