# rf.sh - shell helpers for integration and crash tests: a private broker, a ragfeed
# process on a free port, HTTP calls, and waiting for a condition with a deadline
# (never a fixed sleep).  Every process started here is killed by rf_cleanup.
set -euo pipefail
: "${RF_BIN:?RF_BIN must point at the ragfeed binary}"
: "${RF_SOURCE_DIR:?}"
RF_TMP=$(mktemp -d "${TMPDIR:-/tmp}/rf-it-XXXXXX")
RF_PIDS=()

rf_cleanup() {
  local pid
  for pid in "${RF_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "${RF_KEEP_TMP:-0}" = 1 ]; then echo "kept $RF_TMP" >&2; else rm -rf "$RF_TMP"; fi
}
trap rf_cleanup EXIT

rf_die() { echo "FAIL: $*" >&2; exit 1; }

# rf_wait_until SECONDS DESCRIPTION CMD...: re-runs CMD until it succeeds.
rf_wait_until() {
  local secs=$1 what=$2 deadline
  shift 2
  deadline=$(( $(date +%s%N) / 1000000 + secs * 1000 ))
  until "$@" >/dev/null 2>&1; do
    if [ $(( $(date +%s%N) / 1000000 )) -gt "$deadline" ]; then
      rf_die "timed out after ${secs}s waiting for: $what"
    fi
    sleep 0.05
  done
}

# rf_broker_start TOPIC PARTITIONS: sets RF_BOOTSTRAP and RF_BROKER_PID.
rf_broker_start() {
  local out="$RF_TMP/broker.out"
  "$RF_BIN" broker --topic "$1" --partitions "$2" >"$out" 2>"$RF_TMP/broker.err" &
  RF_BROKER_PID=$!
  RF_PIDS+=("$RF_BROKER_PID")
  rf_wait_until 20 "broker bootstrap line" grep -q '^bootstrap.servers=' "$out"
  RF_BOOTSTRAP=$(sed -n 's/^bootstrap.servers=//p' "$out" | head -n1)
}

# rf_topic_create TOPIC PARTITIONS: the mock broker auto-creates topics with 4
# partitions; a topic with another count must be created through the broker's flags,
# so tests use one broker topic and let others be auto-created with 4.

# rf_run_start NAME ARGS...: starts `ragfeed run` with a port-0 HTTP server; sets
# RF_RUN_PID and RF_URL once the server logged its port.
rf_run_start() {
  local name=$1 log
  shift
  log="$RF_TMP/$name.log"
  "$RF_BIN" run --set serve.listen=127.0.0.1:0 --set "kafka.bootstrap.servers=$RF_BOOTSTRAP" \
    "$@" >>"$log" 2>&1 &
  RF_RUN_PID=$!
  RF_PIDS+=("$RF_RUN_PID")
  rf_wait_until 30 "ragfeed $name to listen (log $log)" grep -q 'listen=127.0.0.1:[0-9]* serving' "$log"
  RF_URL="http://$(grep -o 'listen=127.0.0.1:[0-9]*' "$log" | tail -n1 | cut -d= -f2)"
}

# rf_http METHOD PATH [BODY]: prints the body; rf_http_code prints its status code
# afterwards (a file, since callers usually run rf_http in a command substitution).
rf_http() {
  local out="$RF_TMP/http.out"
  if [ $# -ge 3 ]; then
    curl -s -o "$out" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json' \
      --data-binary "$3" "$RF_URL$2" >"$RF_TMP/http.code"
  else
    curl -s -o "$out" -w '%{http_code}' -X "$1" "$RF_URL$2" >"$RF_TMP/http.code"
  fi
  cat "$out"
}
rf_http_code() { cat "$RF_TMP/http.code"; }

# rf_json EXPR: evaluates a Python expression over the JSON document on stdin (`d`).
rf_json() {
  /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); v=($1); print(v if not isinstance(v,(dict,list)) else json.dumps(v, sort_keys=True))"
}

# rf_status_offset TOPIC/PARTITION: the store's next offset from /v1/status (or -1).
rf_status_offset() {
  rf_http GET /v1/status | rf_json "d['offsets'].get('$1', -1)"
}

# rf_partition_ends TOPIC PARTITIONS: prints "topic/p end" for each partition, the end
# being the offset after the last message (read back with kcat).
rf_partition_ends() {
  local p
  for ((p = 0; p < $2; p++)); do
    local last
    last=$(kcat -b "$RF_BOOTSTRAP" -C -t "$1" -p "$p" -o beginning -e -q -f '%o\n' 2>/dev/null | tail -n1)
    echo "$1/$p $(( ${last:--1} + 1 ))"
  done
}
