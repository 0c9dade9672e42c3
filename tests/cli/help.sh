# help.sh - help on stdout with exit 0, usage errors on stderr with exit 2, commands
# not available in this version say so and exit 2.
source "$(dirname "$0")/lib.sh"
set -e
cd "$TMP"

run "$RF_BIN" --help
expect_rc 0 "--help"; expect_out "Usage: ragfeed <command>" "--help"; expect_no_err "--help"
expect_out "Exit codes:" "--help shows exit codes"
MAIN_HELP=$OUT
for c in run demo broker reembed history keys config version help; do
  grep -qE "^  $c " <<<"$MAIN_HELP" || fail "--help lists $c"
  run "$RF_BIN" "$c" --help
  expect_rc 0 "$c --help"; expect_out "Usage: ragfeed $c" "$c --help"; expect_no_err "$c --help"
  run "$RF_BIN" help "$c"
  expect_rc 0 "help $c"; expect_out "Usage: ragfeed $c" "help $c"
done

run "$RF_BIN"
expect_rc 2 "no command"; expect_no_out "no command"
run "$RF_BIN" frobnicate
expect_rc 2 "unknown command"; expect_err 'unknown command "frobnicate"' "unknown command"; expect_no_out "unknown command"
run "$RF_BIN" run --bogus
expect_rc 2 "unknown option"; expect_err '--bogus' "unknown option"
run "$RF_BIN" broker --port=99999
expect_rc 2 "bad port"; expect_err "--port 99999: expected 0..65535" "bad port"
run "$RF_BIN" help nosuch
expect_rc 2 "help nosuch"

run "$RF_BIN" reembed --provider nosuch
expect_rc 2 "reembed bad provider"; expect_err "--provider nosuch: expected hash, openai, ollama or tei" "reembed"
run "$RF_BIN" reembed --dim 3
expect_rc 2 "reembed bad dim"; expect_err "--dim 3: expected 8..8192" "reembed"

run "$RF_BIN" version
expect_rc 0 version; expect_out "ragfeed " version; expect_out "librdkafka " version
finish
