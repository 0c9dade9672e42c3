# config.sh - `ragfeed config check|dump|doc`: every shipped configuration is valid;
# bad configuration exits 3 naming the place, key, value and expectation; precedence
# --set > environment > file; secrets redacted; docs/CONFIGURATION.md and
# docs/EXIT-CODES.md are exactly what the tables generate.
source "$(dirname "$0")/lib.sh"
set -e
cd "$TMP"

for f in "$RF_SOURCE_DIR"/configs/*.properties; do
  run "$RF_BIN" config check "$f"
  expect_rc 0 "config check $f"; expect_out "ok" "config check $f"
done

printf 'source.topics = t\n\nembed.dim = huge\n' > bad.properties
run "$RF_BIN" config check bad.properties
expect_rc 3 "bad int"; expect_err "bad.properties:3: embed.dim=huge: expected an integer" "bad int"

printf 'no.such.key = 1\n' > unknown.properties
run "$RF_BIN" config check unknown.properties
expect_rc 3 "unknown key"; expect_err "unknown.properties:1: no.such.key=1: unknown key" "unknown key"

printf 'source.format = avro\n' > enum.properties
run "$RF_BIN" config check enum.properties
expect_rc 3 "bad enum"; expect_err "source.format=avro: expected one of debezium, json" "bad enum"

run "$RF_BIN" config check /nonexistent.properties
expect_rc 3 "missing file"; expect_err "/nonexistent.properties" "missing file"

run "$RF_BIN" run -c bad.properties
expect_rc 3 "run refuses bad config"

printf 'source.topics = t\n' > req.properties
run "$RF_BIN" run -c req.properties
expect_rc 3 "run needs bootstrap"; expect_err "kafka.bootstrap.servers: required" "run needs bootstrap"

printf 'embed.dim = 100\nstate.dir = /file\nkafka.sasl.password = hunter2\n' > p.properties
RAGFEED_EMBED_DIM=200 RAGFEED_STATE_DIR=/env run "$RF_BIN" config dump --effective -c p.properties --set embed.dim=300
expect_rc 0 "dump"
expect_out "embed.dim = 300    # cli --set" "cli wins"
expect_out "state.dir = /env    # env RAGFEED_STATE_DIR" "env beats file"
expect_out "kafka.sasl.password = [redacted]" "secret redacted"
grep -q hunter2 <<<"$OUT" && fail "secret printed"

RAGFEED_EMBED_DIM=x run "$RF_BIN" config check p.properties
expect_rc 3 "bad env"; expect_err "RAGFEED_EMBED_DIM: embed.dim=x" "bad env"

run "$RF_BIN" config check --set nonsense
expect_rc 3 "bad --set"; expect_err "--set nonsense: expected KEY=VALUE" "bad --set"

run "$RF_BIN" config doc
expect_rc 0 "config doc"
diff -u "$RF_SOURCE_DIR/docs/CONFIGURATION.md" "$TMP/out" >&2 || fail "docs/CONFIGURATION.md is stale: run \`ragfeed config doc -o docs/CONFIGURATION.md\`"
run "$RF_BIN" help exit-codes
diff -u "$RF_SOURCE_DIR/docs/EXIT-CODES.md" "$TMP/out" >&2 || fail "docs/EXIT-CODES.md is stale: run \`ragfeed help exit-codes > docs/EXIT-CODES.md\`"
finish
