#!/usr/bin/env bash
# demo.sh RAGFEED_BIN - the development broker, a real corpus (apt's package
# descriptions) as Debezium change events, and `ragfeed run` with the built-in
# embedder, all on 127.0.0.1.  Prints example queries; Ctrl-C stops everything.
set -euo pipefail
BIN=$(realpath "${1:-build/ragfeed}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ragfeed-demo-XXXXXX")
PORT=${RF_DEMO_PORT:-8080}
TOPIC=debian.debian.packages
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$BIN" broker --topic "$TOPIC" --partitions 4 >"$WORK/broker.out" 2>"$WORK/broker.err" &
pids+=($!)
for _ in $(seq 1 200); do grep -q '^bootstrap.servers=' "$WORK/broker.out" && break; sleep 0.05; done
BOOT=$(sed -n 's/^bootstrap.servers=//p' "$WORK/broker.out")
[ -n "$BOOT" ] || { echo "the broker did not start: $(cat "$WORK/broker.err")" >&2; exit 1; }
echo "broker: $BOOT"

echo "turning apt's package descriptions into change events..."
/usr/bin/python3 "$SRC/scripts/apt_corpus.py" --limit "${RF_DEMO_LIMIT:-20000}" >"$WORK/events.tsv"
echo "producing $(wc -l <"$WORK/events.tsv") events to $TOPIC"
kcat -b "$BOOT" -P -t "$TOPIC" -K $'\t' -Z -z none <"$WORK/events.tsv"

"$BIN" run --set "kafka.bootstrap.servers=$BOOT" --set "source.topics=$TOPIC" \
  --set "source.text={name}: {synopsis}\n{description}" --set source.metadata.fields=section,name \
  --set "state.dir=$WORK/state" --set "serve.listen=127.0.0.1:$PORT" 2>"$WORK/run.log" &
pids+=($!)
for _ in $(seq 1 600); do
  n=$(curl -s "127.0.0.1:$PORT/v1/status" 2>/dev/null | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["records"])' 2>/dev/null || true)
  [ -n "$n" ] && [ "$n" -gt 0 ] && break
  sleep 0.1
done
cat <<MSG

ragfeed is running: http://127.0.0.1:$PORT/v1/status  (log: $WORK/run.log)
Try:
  curl -s 127.0.0.1:$PORT/v1/search -d '{"query":"postgresql database server","k":3}'
  curl -s 127.0.0.1:$PORT/v1/search -d '{"query":"vector graphics editor","k":3}'
  curl -s 127.0.0.1:$PORT/v1/records/debian.packages:1
Ctrl-C stops the demo.
MSG
wait "${pids[1]}"
