# 0005-pipeline-provider.sh - `ragfeed run` against an OpenAI-compatible endpoint (the
# fake provider, exact wire format): 429s with Retry-After and an outage lose nothing and
# dead-letter nothing (the partitions pause and resume by themselves); a text the
# endpoint refuses is a dead letter with the reason while the rest goes on; an unchanged
# text is not embedded again after a restart (content-hash cache); queries are embedded
# by the same provider.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
FAKE="$RF_BUILD_DIR/tests/fake/fake_provider"
TOPIC=docs

"$FAKE" --dim 64 >"$RF_TMP/fake.out" 2>"$RF_TMP/fake.err" &
RF_PIDS+=($!)
rf_wait_until 20 "fake provider" grep -q '^listening=' "$RF_TMP/fake.out"
FURL="http://$(sed -n 's/^listening=//p' "$RF_TMP/fake.out")"
fake() { curl -s -X POST "$FURL/_control" -d "$1" >/dev/null; }
fake_stat() { curl -s "$FURL/_stats" | rf_json "d['$1']"; }

rf_broker_start "$TOPIC" 4
ARGS=(--set "source.topics=$TOPIC" --set source.format=json --set source.id.fields=id
      --set "source.text={title}" --set "state.dir=$RF_TMP/state" --set source.dlq.topic=dlq
      --set embed.provider=openai --set "embed.url=$FURL/v1/embeddings" --set embed.model=fake
      --set embed.dim=64 --set embed.timeout.ms=2000 --set embed.retry.max.ms=2000)
produce() { # FROM TO SUFFIX
  local i
  for ((i = $1; i <= $2; i++)); do
    printf '%d\t{"id":%d,"title":"document %d about subject %d%s"}\n' "$i" "$i" "$i" $((i % 7)) "$3"
  done | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
}
total_offsets() { rf_http GET /v1/status | rf_json "sum(d['offsets'].values())"; }
# Conditions for rf_wait_until are functions, so they are evaluated on every try.
applied_is() { [ "$(total_offsets)" = "$1" ]; }
faults_above() { [ "$(fake_stat faults)" -gt "$1" ]; }
status() { rf_http GET /v1/status | rf_json "$1"; }

rf_run_start run1 "${ARGS[@]}"
# Throttled three times with Retry-After, and one text the endpoint refuses for good.
fake '{"fault":"429","count":3,"retry_after":1,"reject":"REJECTME"}'
produce 1 99 ""
printf '100\t{"id":100,"title":"document 100 REJECTME"}\n' | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
rf_wait_until 60 "100 events applied" applied_is 100
[ "$(status "d['records']")" = 99 ] || rf_die "records: $(rf_http GET /v1/status)"
[ "$(status "d['dead_letters']")" = 1 ] || rf_die "dead letters: $(rf_http GET /v1/status)"
[ "$(fake_stat faults)" -ge 3 ] || rf_die "the 429s were not served"
dlq=$(kcat -b "$RF_BOOTSTRAP" -C -t dlq -o beginning -e -q -f '%k|%h\n')
grep -q '^100|.*ragfeed.error.reason=' <<<"$dlq" || rf_die "refused text not in the DLQ: $dlq"

# An outage: every request fails with 503 until the fault is lifted.  Nothing is
# dead-lettered meanwhile and everything arrives afterwards.
fake '{"fault":"503","count":-1,"retry_after":-1}'
faults0=$(fake_stat faults)
produce 101 120 ""
rf_wait_until 30 "the outage to be hit" faults_above $((faults0 + 2))
[ "$(status "d['dead_letters']")" = 1 ] || rf_die "dead letters during the outage"
[ "$(status "d['records']")" = 99 ] || rf_die "records moved during the outage"
fake '{"fault":"none","count":0}'
rf_wait_until 60 "catch-up after the outage" applied_is 120
[ "$(status "d['records']")" = 119 ] || rf_die "records after the outage: $(rf_http GET /v1/status)"
[ "$(status "d['dead_letters']")" = 1 ] || rf_die "dead letters after the outage"

# Restart, then re-send 50 unchanged texts: the cache answers, the endpoint is not paid.
kill -TERM "$RF_RUN_PID"; wait "$RF_RUN_PID" || rf_die "unclean stop"
texts0=$(fake_stat texts)
rf_run_start run2 "${ARGS[@]}"
produce 1 50 ""
rf_wait_until 60 "the repeated texts" applied_is 170
[ "$(fake_stat texts)" = "$texts0" ] || rf_die "unchanged texts were embedded again: $texts0 -> $(fake_stat texts)"
[ "$(status "d['embed']['cache_hits']")" = 50 ] || rf_die "cache hits: $(rf_http GET /v1/status)"
# A changed text is embedded.
produce 1 1 " revised"
rf_wait_until 30 "the revised text" applied_is 171
[ "$(fake_stat texts)" = $((texts0 + 1)) ] || rf_die "the revised text was not embedded"

res=$(rf_http POST /v1/search '{"query":"document 42 about subject 0","k":3}')
[ "$(rf_json "d['results'][0]['id']" <<<"$res")" = docs:42 ] || rf_die "search through the provider: $res"
echo "provider pipeline checks passed"
