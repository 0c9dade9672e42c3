# lib.sh - shared helpers for the CLI tests: run a command capturing stdout, stderr
# and the exit code, and assertions that name what failed.
set -u
: "${RF_BIN:?RF_BIN must point at the ragfeed binary}"
: "${RF_SOURCE_DIR:?}"
FAILS=0
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# run CMD...: sets $OUT, $ERR, $RC
run() {
  set +e
  "$@" >"$TMP/out" 2>"$TMP/err"
  RC=$?
  set -e
  OUT=$(cat "$TMP/out")
  ERR=$(cat "$TMP/err")
}
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
expect_rc() { [ "$RC" = "$1" ] || fail "$2: exit $RC, expected $1 (stderr: $ERR)"; }
expect_out() { grep -qF -- "$1" <<<"$OUT" || fail "$2: stdout lacks \"$1\""; }
expect_err() { grep -qF -- "$1" <<<"$ERR" || fail "$2: stderr lacks \"$1\""; }
expect_no_out() { [ -z "$OUT" ] || fail "$1: stdout should be empty, got: $OUT"; }
expect_no_err() { [ -z "$ERR" ] || fail "$1: stderr should be empty, got: $ERR"; }
finish() {
  if [ "$FAILS" -gt 0 ]; then echo "$FAILS check(s) failed"; exit 1; fi
  echo "all checks passed"
}
