#!/usr/bin/env bash
# http.sh BUILD_DIR - the serving benchmarks: HTTP search against in-process search on the
# same state, and produce-to-visible latency through read-your-writes
# (INVARIANT(fresh-is-measurable)).  Prints one table and writes bench/results/http.json;
# every figure is the median of RF_BENCH_RUNS runs (default 3) beside a baseline measured
# in the same run.
#
# Data: RF_BENCH_RECORDS (30000) JSON rows of 8-16 words drawn from a 4000-word Zipf
# vocabulary, embedded by the built-in hash embedder (dim 384).  The test broker keeps at
# most 5 MiB per partition, so the load topic has 8 partitions (the script checks that no
# partition lost its oldest messages).  index.segment.size is RF_BENCH_SEGMENT (24576): the
# flat tail is sealed every 8,192 vectors and gets a quick IVF index, and the three are
# merged into one HNSW32 segment, so the state after the load is one HNSW32 segment of
# 24,576 vectors and a flat tail of 5,424.  It is copied once and restored before every
# run, so each run measures the same index.  (With the default segment of
# 50,000, earlier runs of this script waited 171-355 s for its HNSW build; the vector index
# at scale is bench/bench_index.c's subject.)
#
# 1. Search: wrk (RF_BENCH_WRK_THREADS=2 threads, one connection each, RF_BENCH_SECS s)
#    POSTs /v1/search with k=10 over RF_BENCH_QUERIES varied query texts; then, with
#    `ragfeed run` stopped, bench_search opens the same state directory and runs the same
#    queries from as many threads: embedding + rf_index_search, rf_index_search alone, and
#    the FAISS segment searches alone.
# 2. Latency: bench_latency produces at 1,000 and 10,000 events/s for RF_BENCH_LAT_SECS s
#    (each rate to a topic of its own, read by the same `ragfeed run` while it is produced:
#    nothing waits in the broker long enough to meet the retention limit) and searches
#    for RF_BENCH_PROBES events per second with min_position = the event's offset (each
#    probe's times land in $RF_TMP/latency-r<run>-<rate>.txt; RF_KEEP_TMP=1 keeps them).
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
RF_BIN=$BUILD/ragfeed
RUNS=${RF_BENCH_RUNS:-3}
RECORDS=${RF_BENCH_RECORDS:-30000}
SEGMENT=${RF_BENCH_SEGMENT:-24576}
NQUERIES=${RF_BENCH_QUERIES:-1000}
SECS=${RF_BENCH_SECS:-5}
THREADS=${RF_BENCH_WRK_THREADS:-2}
LAT_SECS=${RF_BENCH_LAT_SECS:-10}
PROBES=${RF_BENCH_PROBES:-20}
RATES=${RF_BENCH_RATES:-1000 10000}
PARTS=8
export RF_BIN RF_SOURCE_DIR=$SRC
source "$SRC/tests/lib/rf.sh"
mkdir -p "$SRC/bench/results"
for tool in wrk kcat; do
  command -v "$tool" >/dev/null || rf_die "$tool is not installed"
done

TOPIC=bench.http.items
COMMON=(--set source.format=json --set source.name=bench --set "source.text={body}"
  --set iceberg.enabled=false --set "index.segment.size=$SEGMENT")
OUT=$RF_TMP/measured
: >"$OUT"
ms() { echo $(( $(date +%s%N) / 1000000 )); }
# kv KEY LINE: the value of KEY=value in a line of key=value words.
kv() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
status() { curl -s "$RF_URL/v1/status" | rf_json "$1"; }
ready() { curl -sf "$RF_URL/readyz" >/dev/null; }
stop_run() { kill -TERM "$RF_RUN_PID"; wait "$RF_RUN_PID" || rf_die "ragfeed run exited with $?"; }
# wait_status SECONDS DESCRIPTION EXPR: polls /v1/status twice a second until the Python
# expression EXPR over it (d) is true (rf_wait_until's 50 ms would spend a core on Python
# during a build that takes minutes).
wait_status() {
  local deadline=$(( $(ms) + $1 * 1000 ))
  until [ "$(status "$3" 2>/dev/null)" = True ]; do
    [ "$(ms)" -lt "$deadline" ] || rf_die "timed out after $1 s waiting for $2"
    sleep 0.5
  done
}

# ==== Load: RECORDS rows into a fresh state, then wait for the background segment build ====
rf_broker_start "$TOPIC" "$PARTS"
/usr/bin/python3 - "$RECORDS" "$RF_TMP/load.tsv" "$NQUERIES" "$RF_TMP/queries.txt" <<'EOF'
import itertools, json, random, sys
n, tsv, nq, qfile = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
rng = random.Random(7)
syl = "ka lo mi re su ta ne vo pi da ge ru fa si no be tu ma xe zo".split()
vocab = sorted({"".join(rng.choice(syl) for _ in range(rng.randint(2, 4)))
                for _ in range(6000)})[:4000]
rng.shuffle(vocab)
cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.8 for i in range(len(vocab))))
with open(tsv, "w") as f:
    for i in range(n):
        words = rng.choices(vocab, cum_weights=cum, k=rng.randint(8, 16))
        f.write("%d\t%s\n" % (i, json.dumps({"body": "item %d %s" % (i, " ".join(words))})))
with open(qfile, "w") as f:
    for i in range(nq):
        f.write(" ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(2, 4))) + "\n")
EOF
kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t' -z none <"$RF_TMP/load.tsv"
total=0
while read -r tp end; do total=$((total + end)); done < <(rf_partition_ends "$TOPIC" "$PARTS")
[ "$total" -eq "$RECORDS" ] || rf_die "the topic holds $total messages, not $RECORDS"
for ((p = 0; p < PARTS; p++)); do
  first=$(kcat -b "$RF_BOOTSTRAP" -C -t "$TOPIC" -p "$p" -o beginning -c 1 -q -f '%o' 2>/dev/null)
  [ "$first" = 0 ] || rf_die "partition $p lost its oldest messages (first offset $first)"
done

t0=$(ms)
rf_run_start load "${COMMON[@]}" --set "source.topics=$TOPIC" --set "state.dir=$RF_TMP/state0"
wait_status 600 "$RECORDS records" "d['records'] == $RECORDS and d['events_dead'] == 0"
t_loaded=$(ms)
wait_status 1200 "the background segment build" \
  "d['segments_pending'] == 0 and d['vectors'] == $RECORDS"
t_built=$(ms)
segments=$(status "d['segments']")
stop_run
echo "load_s $(( (t_loaded - t0) / 1000 )).$(( (t_loaded - t0) % 1000 / 100 ))" >>"$OUT"
echo "build_s $(( (t_built - t_loaded) / 1000 ))" >>"$OUT"

for ((r = 1; r <= RUNS; r++)); do
  rm -rf "$RF_TMP/state"
  cp -a "$RF_TMP/state0" "$RF_TMP/state"

  # ==== 1. HTTP search (wrk), then the same queries in-process ====
  rf_run_start "search$r" "${COMMON[@]}" --set "source.topics=$TOPIC" --set "state.dir=$RF_TMP/state"
  rf_wait_until 60 "readiness" ready
  hits=$(curl -s "$RF_URL/v1/search" -d "{\"query\":\"$(head -n1 "$RF_TMP/queries.txt")\",\"k\":10}" |
    rf_json "len(d['results'])")
  [ "$hits" = 10 ] || rf_die "a search returned $hits results instead of 10"
  # One unmeasured second first, as bench_search warms up before it measures.
  wrk -t "$THREADS" -c "$THREADS" -d 1s -s "$SRC/bench/wrk_search.lua" "$RF_URL" -- \
    "$RF_TMP/queries.txt" "$THREADS" 10 >/dev/null
  line=$(wrk -t "$THREADS" -c "$THREADS" -d "${SECS}s" --timeout 10s --latency \
    -s "$SRC/bench/wrk_search.lua" "$RF_URL" -- "$RF_TMP/queries.txt" "$THREADS" 10 |
    grep '^wrk_result')
  [ "$(kv errors "$line")" = 0 ] && [ "$(kv non2xx "$line")" = 0 ] || rf_die "wrk saw errors: $line"
  echo "http_qps $(awk -v n="$(kv requests "$line")" -v s="$(kv seconds "$line")" \
    'BEGIN {printf "%.1f", n / s}')" >>"$OUT"
  echo "http_p50 $(awk -v v="$(kv p50_us "$line")" 'BEGIN {printf "%.3f", v / 1000}')" >>"$OUT"
  echo "http_p99 $(awk -v v="$(kv p99_us "$line")" 'BEGIN {printf "%.3f", v / 1000}')" >>"$OUT"
  stop_run

  "$BUILD/bench/bench_search" --dir "$RF_TMP/state" --queries "$RF_TMP/queries.txt" \
    --threads "$THREADS" --secs "$SECS" --k 10 >"$RF_TMP/search.out"
  while read -r line; do
    mode=$(kv mode "$line")
    [ "$(kv empty "$line")" = 0 ] || rf_die "in-process searches came back short: $line"
    echo "${mode}_qps $(kv qps "$line")" >>"$OUT"
    echo "${mode}_p50 $(kv p50_ms "$line")" >>"$OUT"
    echo "${mode}_p99 $(kv p99_ms "$line")" >>"$OUT"
    if [ "$mode" = faiss ]; then echo "faiss_vectors $(kv vectors "$line")" >>"$OUT"; fi
  done < <(grep '^bench_search' "$RF_TMP/search.out")

  # ==== 2. Produce-to-visible latency, each rate on a topic of its own ====
  topics=$TOPIC
  for rate in $RATES; do
    kcat -b "$RF_BOOTSTRAP" -L -t "bench.http.lat$r.$rate" >/dev/null # created with 4 partitions
    topics="$topics,bench.http.lat$r.$rate"
  done
  rf_run_start "latency$r" "${COMMON[@]}" --set "source.topics=$topics" --set "state.dir=$RF_TMP/state"
  rf_wait_until 60 "readiness" ready
  for rate in $RATES; do
    sample=$(( rate / PROBES > 0 ? rate / PROBES : 1 ))
    rc=0
    line=$("$BUILD/bench/bench_latency" --bootstrap "$RF_BOOTSTRAP" --topic "bench.http.lat$r.$rate" \
      --url "$RF_URL" --rate "$rate" --secs "$LAT_SECS" --sample "$sample" --workers 256 \
      --prefix "l$r-$rate" --id-prefix "bench:" --wait-ms 10000 \
      --dump "$RF_TMP/latency-r$r-$rate.txt") || rc=$?
    [ "$rc" = 0 ] || [ "$rc" = 3 ] || rf_die "bench_latency failed ($rc)"
    for key in achieved p50_ms p99_ms kafka_p50_ms kafka_p99_ms sampled misses timeouts errors \
      unanswered produce_failed send_delay_p99_ms; do
      echo "lat${rate}_$key $(kv "$key" "$line")" >>"$OUT"
    done
  done
  stop_run
done

# ==== The table and the JSON, from the per-run values ====
/usr/bin/python3 - "$OUT" "$SRC/bench/results/http.json" "$RUNS" "$RECORDS" "$THREADS" "$SECS" \
  "$LAT_SECS" "$PROBES" "$RATES" "$segments" <<'EOF'
import json, statistics, sys
path, jpath, runs, records, threads, secs, lat_secs, probes, rates, segments = sys.argv[1:11]
vals = {}
for line in open(path):
    k, v = line.split()
    vals.setdefault(k, []).append(float(v))
med = lambda k: statistics.median(vals[k])
tot = lambda k: sum(vals[k])
rows = []
def row(metric, value, unit, baseline, bvalue):
    ratio = value / bvalue if bvalue else None
    rows.append({"metric": metric, "value": round(value, 3), "unit": unit, "baseline": baseline,
                 "baseline_value": round(bvalue, 3),
                 "ratio": round(ratio, 3) if ratio is not None else None})
inproc = "in-process rf_embed_hash + rf_index_search, %s threads" % threads
wrk = "HTTP POST /v1/search, wrk %s threads x 1 connection" % threads
row("search throughput: " + wrk, med("http_qps"), "req/s", inproc, med("embed_search_qps"))
row("search p50: " + wrk, med("http_p50"), "ms", inproc, med("embed_search_p50"))
row("search p99: " + wrk, med("http_p99"), "ms", inproc, med("embed_search_p99"))
search = "in-process rf_index_search (query embedded beforehand)"
fa = ("FAISS part only: HNSW search of the sealed segment(s), %d of %s vectors (no embedding, "
      "no flat tail, no store)" % (med("faiss_vectors") if "faiss_vectors" in vals else 0, records))
row("search throughput: " + search, med("search_qps"), "searches/s", inproc, med("embed_search_qps"))
row("search p99: " + search, med("search_p99"), "ms", inproc, med("embed_search_p99"))
if "faiss_qps" in vals:  # no sealed segment (a small RF_BENCH_RECORDS): no FAISS part
    row("search throughput: " + fa, med("faiss_qps"), "searches/s", search, med("search_qps"))
    row("search p50: " + fa, med("faiss_p50"), "ms", search, med("search_p50"))
    row("search p99: " + fa, med("faiss_p99"), "ms", search, med("search_p99"))
kafka = "Kafka alone: produce to a plain librdkafka consumer (fetch.wait.max.ms=20)"
for rate in rates.split():
    p = "lat%s_" % rate
    r = "{:,}".format(int(rate))
    row("produce-to-visible p50 at %s events/s (read-your-writes search)" % r,
        med(p + "p50_ms"), "ms", kafka, med(p + "kafka_p50_ms"))
    row("produce-to-visible p99 at %s events/s" % r, med(p + "p99_ms"), "ms", kafka,
        med(p + "kafka_p99_ms"))
    row("achieved produce rate at %s events/s" % r, med(p + "achieved"), "events/s",
        "target rate", float(rate))
    bad = sum(tot(p + k) for k in ("misses", "timeouts", "errors", "unanswered"))
    row("sampled events not found in time at %s events/s (all runs; must be 0)" % r, bad,
        "events", "sampled events (all runs)", tot(p + "sampled"))
doc = {"http": {"rows": rows, "runs": int(runs), "records": int(records)}}
json.dump(doc, open(jpath, "w"), indent=1)
head = ("benchmark: %s records, dim 384 (hash), k=10, %s segments after the load, median of %s runs"
        % ("{:,}".format(int(records)), segments, runs))
print("\n" + head)
print("%-100s %11s %11s %7s" % ("metric [unit] / baseline", "value", "baseline", "ratio"))
for x in rows:
    print("%-100s %11.3f %11.3f %7s" % (x["metric"] + " [" + x["unit"] + "]", x["value"],
          x["baseline_value"], "%.3f" % x["ratio"] if x["ratio"] is not None else "-"))
    print("    baseline: %s" % x["baseline"])
print("load: %s s for %s records, background HNSW build of the first sealed segment %s s; "
      "load average at the end %s" % (vals["load_s"][0], records, int(vals["build_s"][0]),
                                      open("/proc/loadavg").read().split()[0]))
for rate in rates.split():
    p = "lat%s_" % rate
    print("at %s events/s: sampled %d (%s probes/s), misses %d, timeouts %d, errors %d, "
          "unanswered %d, produce failures %d, worst probe send delay p99 %.1f ms"
          % (rate, tot(p + "sampled"), probes, tot(p + "misses"), tot(p + "timeouts"),
             tot(p + "errors"), tot(p + "unanswered"), tot(p + "produce_failed"),
             max(vals[p + "send_delay_p99_ms"])))
bad = sum(tot("lat%s_%s" % (rate, k)) for rate in rates.split()
          for k in ("misses", "timeouts", "errors", "unanswered"))
sys.exit(1 if bad else 0)
EOF
