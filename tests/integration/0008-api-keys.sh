# 0008-api-keys.sh - `ragfeed keys create|list|revoke` and `ragfeed run` with
# serve.auth = keys: the key alone on stdout's first line, a list that never shows keys,
# 401 without a valid key (probes excepted), tenant isolation whatever the filter says,
# admin-only status, and a revocation that takes effect without a restart.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
TOPIC=tenantdocs
STATE=(--set "state.dir=$RF_TMP/state")

# Usage and help.
"$RF_BIN" keys --help | grep -q '^Usage: ragfeed keys' || rf_die "keys --help"
set +e
"$RF_BIN" keys "${STATE[@]}" 2>"$RF_TMP/err"; rc=$?
[ $rc = 2 ] && grep -q 'missing subcommand' "$RF_TMP/err" || rf_die "keys without subcommand: $rc"
"$RF_BIN" keys revoke "${STATE[@]}" 2>/dev/null; [ $? = 2 ] || rf_die "revoke without id"
"$RF_BIN" keys list --tenant x "${STATE[@]}" 2>/dev/null; [ $? = 2 ] || rf_die "list --tenant"
"$RF_BIN" keys frob "${STATE[@]}" 2>/dev/null; [ $? = 2 ] || rf_die "unknown subcommand"
"$RF_BIN" keys revoke k0000000000000000 "${STATE[@]}" 2>"$RF_TMP/err"; rc=$?
[ $rc = 1 ] && grep -q 'no key' "$RF_TMP/err" || rf_die "revoke of an unknown key: $rc"
set -e

ACME=$("$RF_BIN" keys create --tenant acme "${STATE[@]}" 2>"$RF_TMP/create.err" | head -n1)
[[ $ACME =~ ^rf_k[0-9a-f]{16}_[A-Za-z0-9_-]{43}$ ]] || rf_die "key format: $ACME"
ACME_ID=$(sed -n 's/.*id=\(k[0-9a-f]*\).*/\1/p' "$RF_TMP/create.err")
[ -n "$ACME_ID" ] || rf_die "no id on stderr: $(cat "$RF_TMP/create.err")"
GLOBEX=$("$RF_BIN" keys create "${STATE[@]}" --tenant=globex 2>/dev/null | head -n1)
ADMIN=$("$RF_BIN" keys create --admin "${STATE[@]}" 2>/dev/null | head -n1)
"$RF_BIN" keys list "${STATE[@]}" >"$RF_TMP/list"
[ "$(grep -c '^k' "$RF_TMP/list")" = 3 ] || rf_die "list: $(cat "$RF_TMP/list")"
grep -q "^$ACME_ID .* acme .* read " "$RF_TMP/list" || rf_die "list row: $(cat "$RF_TMP/list")"
grep -q ' admin ' "$RF_TMP/list" || rf_die "list shows no admin key"
for k in "$ACME" "$GLOBEX" "$ADMIN"; do
  ! grep -qF "${k:20}" "$RF_TMP/list" || rf_die "list shows a key"
  ! grep -qaF "${k:20}" "$RF_TMP/state/keys.db" || rf_die "keys.db holds a key in clear"
done

rf_broker_start "$TOPIC" 2
printf '%s\t%s\n' a1 '{"body":"acme roadmap for spring","tenant":"acme"}' \
  g1 '{"body":"globex roadmap for spring","tenant":"globex"}' \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
rf_run_start run1 --set "source.topics=$TOPIC" --set source.format=json \
  --set source.name=tdocs --set "source.text={body}" --set source.tenant.field=tenant \
  --set serve.auth=keys "${STATE[@]}"

# curl with a key: prints the status code, body in $RF_TMP/body.
call() {
  local key=$1 method=$2 path=$3 data=${4:-}
  local args=(-s -o "$RF_TMP/body" -w '%{http_code}' -X "$method")
  [ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
  [ -n "$data" ] && args+=(-H 'Content-Type: application/json' --data-binary "$data")
  curl "${args[@]}" "$RF_URL$path"
}
two_records() { [ "$(call "$ADMIN" GET /v1/status)" = 200 ] && [ "$(rf_json "d['records']" <"$RF_TMP/body")" = 2 ]; }
rf_wait_until 30 "the two records" two_records

[ "$(call "" GET /healthz)" = 200 ] || rf_die "healthz needs no key"
[ "$(call "" POST /v1/search '{"query":"roadmap"}')" = 401 ] || rf_die "search without a key"
grep -q '"unauthorized"' "$RF_TMP/body" || rf_die "401 body: $(cat "$RF_TMP/body")"
[ "$(call "rf_kdeadbeefdeadbeef_xxxx" GET /v1/records/tdocs:a1)" = 401 ] || rf_die "bad key"
[ "$(call "" GET /nope)" = 401 ] || rf_die "unknown path without a key"
[ "$(call "$ACME" GET /v1/status)" = 403 ] || rf_die "status with a read key"

[ "$(call "$ACME" POST /v1/search '{"query":"roadmap","k":10,"filter":{"tenant":"globex"}}')" = 200 ] \
  || rf_die "acme search"
[ "$(rf_json "len(d['results'])" <"$RF_TMP/body")" = 0 ] || rf_die "acme saw globex: $(cat "$RF_TMP/body")"
call "$ACME" POST /v1/search '{"query":"roadmap","k":10}' >/dev/null
[ "$(rf_json "[r['id'] for r in d['results']]" <"$RF_TMP/body")" = '["tdocs:a1"]' ] \
  || rf_die "acme results: $(cat "$RF_TMP/body")"
[ "$(call "$ACME" GET /v1/records/tdocs:g1)" = 404 ] || rf_die "acme read a globex record"
[ "$(call "$GLOBEX" GET /v1/records/tdocs:g1)" = 200 ] || rf_die "globex record"
call "$ADMIN" POST /v1/search '{"query":"roadmap","k":10}' >/dev/null
[ "$(rf_json "len(d['results'])" <"$RF_TMP/body")" = 2 ] || rf_die "admin sees all"

"$RF_BIN" keys revoke "$ACME_ID" "${STATE[@]}" | grep -q "revoked $ACME_ID" || rf_die "revoke"
revoked() { [ "$(call "$ACME" POST /v1/search '{"query":"roadmap"}')" = 401 ]; }
rf_wait_until 10 "the revocation to take effect" revoked
[ "$(call "$GLOBEX" POST /v1/search '{"query":"roadmap"}')" = 200 ] || rf_die "other keys still work"
"$RF_BIN" keys list "${STATE[@]}" | grep "^$ACME_ID " | grep -q 'Z *[0-9]\{4\}-' \
  || rf_die "list shows no revocation time"
echo "api key checks passed"
