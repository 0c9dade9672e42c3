#!/usr/bin/env bash
# bench_smoke.sh - keeps `make bench` working: runs bench/run.sh at toy sizes (the ingest,
# ready and export sections, one run each, results in a private directory) and checks
# that every section wrote rows with numbers and that one table came out.  The http and
# recall sections need wrk, apt's lists and node, and minutes; they are left out here.
set -euo pipefail
: "${RF_SOURCE_DIR:?}" "${RF_BUILD_DIR:?}"
out=$(mktemp -d "${TMPDIR:-/tmp}/rf-bench-smoke-XXXXXX")
trap 'rm -rf "$out"' EXIT
RF_BENCH_RESULTS=$out RF_BENCH_SECTIONS="ingest ready export" RF_BENCH_RUNS=1 \
  RF_BENCH_EVENTS=2000 RF_BENCH_READY_N=3000 RF_BENCH_EXPORT_ROWS=3000 \
  bash "$RF_SOURCE_DIR/bench/run.sh" "$RF_BUILD_DIR" >"$out/stdout" 2>"$out/stderr" || {
  cat "$out/stderr" >&2
  echo "FAIL: bench/run.sh failed" >&2
  exit 1
}
for s in ingest ready export; do
  /usr/bin/python3 - "$out/$s.json" "$s" <<'PY' || { echo "FAIL: $s.json" >&2; exit 1; }
import json, sys
rows = json.load(open(sys.argv[1]))[sys.argv[2]]["rows"]
assert rows, "no rows"
for r in rows:
    assert r["value"] and r["value"] > 0 and r["baseline_value"] and r["ratio"], r
PY
done
[ "$(grep -c '^| ' "$out/stdout")" -eq 9 ] || {
  cat "$out/stdout" >&2
  echo "FAIL: expected a table of 7 rows (plus 2 header lines)" >&2
  exit 1
}
grep -q '^wall time: ' "$out/table.md" || { echo "FAIL: no table.md" >&2; exit 1; }
echo "ok: $(grep -c '^| [a-z]' "$out/stdout") rows"
