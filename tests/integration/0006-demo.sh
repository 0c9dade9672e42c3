# 0006-demo.sh - `ragfeed demo` as a newcomer runs it: no configuration, no network;
# it prints where to look and example queries, the queries answer sensibly (the update
# is visible, the deleted product is gone), and Ctrl-C (SIGINT) stops it with exit 0 and
# leaves no state behind.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
"$RF_BIN" demo --set serve.listen=127.0.0.1:0 >"$RF_TMP/demo.out" 2>"$RF_TMP/demo.err" &
DEMO=$!
RF_PIDS+=("$DEMO")
rf_wait_until 30 "the demo's instructions" grep -q '^Ctrl-C stops the demo' "$RF_TMP/demo.out"
RF_URL=$(grep -o 'http://127.0.0.1:[0-9]*' "$RF_TMP/demo.out" | head -n1)
grep -q "curl -s 127.0.0.1:[0-9]*/v1/search" "$RF_TMP/demo.out" || rf_die "no example query printed"
grep -q "^produced 22 change events" "$RF_TMP/demo.out" || rf_die "sample not produced: $(cat "$RF_TMP/demo.out")"
records_are() { [ "$(rf_http GET /v1/status | rf_json "d['records']")" = "$1" ]; }
rf_wait_until 30 "the sample to be applied" records_are 17

res=$(rf_http POST /v1/search '{"query":"shoes for muddy trails","k":3}')
[ "$(rf_json "d['results'][0]['id']" <<<"$res")" = shop.products:1 ] || rf_die "trail shoes: $res"
res=$(rf_http POST /v1/search '{"query":"coffee grinder","k":2}')
[ "$(rf_json "d['results'][0]['id']" <<<"$res")" = shop.products:7 ] || rf_die "the update is not visible: $res"
rf_http GET /v1/records/shop.products:16 >/dev/null
[ "$(rf_http_code)" = 404 ] || rf_die "the deleted product is still there"

state=$(ls -d /tmp/ragfeed-demo-* 2>/dev/null | wc -l)
kill -INT "$DEMO"
wait "$DEMO" || rf_die "the demo did not exit 0 on Ctrl-C: $(cat "$RF_TMP/demo.err")"
[ "$(ls -d /tmp/ragfeed-demo-* 2>/dev/null | wc -l)" -lt "$state" ] || rf_die "the demo left its state directory"
echo "demo checks passed"
