# 0007-status-page.sh - the status page at / in headless Chromium: /?q=TEXT runs the
# search from the page's own JavaScript and the DOM shows the expected record first, with
# the pipeline's counts and the records written last (the ones this test produced) read
# from /v1/status.
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
TOPIC=docs
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROMIUM" ] || rf_die "chromium is missing (scripts/install-deps.sh installs it)"

rf_broker_start "$TOPIC" 2
printf '%s\t%s\n' d1 '{"body":"red apple pie with cinnamon"}' d2 '{"body":"green tea ice cream"}' \
  d3 '{"body":"blueberry muffins for breakfast"}' \
  | kcat -b "$RF_BOOTSTRAP" -P -t "$TOPIC" -K $'\t'
rf_run_start run1 --set "source.topics=$TOPIC" --set source.format=json \
  --set source.name=docs --set "source.text={body}" --set "state.dir=$RF_TMP/state"
three_records() { [ "$(rf_http GET /v1/status | rf_json "d['records']")" = 3 ]; }
rf_wait_until 30 "the three records" three_records

# The page fetches after it loads; the virtual time budget lets those fetches finish
# before the DOM is dumped.
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --disable-dev-shm-usage \
  --user-data-dir="$RF_TMP/chromium" --virtual-time-budget=15000 \
  --dump-dom "$RF_URL/?q=red%20apple%20pie%20with%20cinnamon" >"$RF_TMP/dom.html" \
  2>"$RF_TMP/chromium.err" || rf_die "chromium failed: $(tail -n 5 "$RF_TMP/chromium.err")"

/usr/bin/python3 - "$RF_TMP/dom.html" <<'PY' || rf_die "the page did not show the search and status"
import re, sys
dom = open(sys.argv[1]).read()
rows = re.findall(r'<tr class="hit" data-id="([^"]+)"', dom)
assert rows, "no result rows in the DOM:\n" + dom[:3000]
assert rows[0] == "docs:d1", rows
assert len(rows) == 3, rows
assert 'red apple pie with cinnamon' in dom
assert re.search(r'id="searchinfo"[^>]*>3 results at seq \d+', dom), "search summary missing"
assert re.search(r'id="v-records"[^>]*>3<', dom), "record count missing"
assert re.search(r'<td>docs/[01]</td><td class="num">\d+</td>', dom), "offsets missing"
assert 'class="good">ready<' in dom, "readiness missing"
# The recent records list: every record produced above, each with its source and snippet.
recent = dict(re.findall(r'<tr class="recent" data-id="([^"]+)">(.*?)</tr>', dom))
assert set(recent) == {"docs:d1", "docs:d2", "docs:d3"}, "recent records: %r" % sorted(recent)
row = recent["docs:d3"]
assert '<td class="source">docs</td>' in row, row
assert '<td class="text">blueberry muffins for breakfast</td>' in row, row
assert re.search(r'<td class="updated" title="\d{4}-\d\d-\d\dT[^"]+">[^<]+ ago</td>', row), row
print("page ok:", rows, sorted(recent))
PY
echo "status page checks passed"
