# 0004-read-your-writes.sh - an application that produces a change event and at once
# searches with min_position = the offset its producer reported always sees its write:
# 50 rounds of creates and updates over 4 partitions, each answer reflecting at least
# that offset and holding the new text; then /v1/context the same way, and a 504 with the
# position reached for an offset that was never produced.
# Then the same by Debezium source position (min_position.lsn) over the real PostgreSQL
# stream, and the LSNs kept across a restart.
# Covers INVARIANT(fresh-is-measurable).
source "$RF_SOURCE_DIR/tests/lib/rf.sh"
TOPIC=notes
/usr/bin/python3 -c 'import confluent_kafka' 2>/dev/null \
  || rf_die "python3-confluent-kafka is missing (scripts/install-deps.sh installs it)"

rf_broker_start "$TOPIC" 4
rf_run_start run1 --set "source.topics=$TOPIC" --set source.format=json \
  --set source.name=notes --set "source.text={body}" --set "state.dir=$RF_TMP/state" \
  --set source.batch.ms=5 --set serve.max.wait.ms=20000 --set kafka.fetch.wait.max.ms=10

/usr/bin/python3 - "$RF_BOOTSTRAP" "$RF_URL" "$TOPIC" <<'PY' || rf_die "read-your-writes failed"
import json, random, sys, time, urllib.error, urllib.request
from confluent_kafka import Producer

boot, url, topic = sys.argv[1:4]
rng = random.Random(7)
words = ["amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "harbor", "indigo",
         "juniper", "kelp", "lagoon", "maple", "nectar", "orchid", "prairie", "quartz", "raven"]

def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

producer = Producer({"bootstrap.servers": boot, "linger.ms": 0, "acks": "all"})

def produce(key, row):
    got = []
    producer.produce(topic, key=key.encode(), value=json.dumps(row).encode(),
                     on_delivery=lambda err, msg: got.append((err, msg)))
    producer.flush(30)
    assert got and got[0][0] is None, "delivery failed: %r" % (got,)
    return got[0][1]

slowest = 0.0
for i in range(50):
    key = "n%d" % (i % 12)  # after 12 rounds every write updates an existing record
    text = "note %d %s" % (i, " ".join(rng.sample(words, 5)))
    msg = produce(key, {"body": text})
    tp = "%s/%d" % (msg.topic(), msg.partition())
    t0 = time.monotonic()
    status, body = post("/v1/search", {"query": text, "k": 1, "wait_ms": 15000,
                                       "min_position": {"offsets": {tp: msg.offset()}}})
    slowest = max(slowest, time.monotonic() - t0)
    assert status == 200, "round %d: %d %r" % (i, status, body)
    hits = body["results"]
    assert hits and hits[0]["id"] == "notes:" + key, "round %d: %r" % (i, hits)
    assert hits[0]["text"] == text, "round %d: stale text %r, wrote %r" % (i, hits[0]["text"], text)
    assert body["position"]["offsets"][tp] > msg.offset(), "round %d: %r" % (i, body["position"])

# The same through /v1/context, with the citation pointing at the write.
msg = produce("ctx", {"body": "context round trip quartz raven"})
tp = "%s/%d" % (msg.topic(), msg.partition())
status, body = post("/v1/context", {"query": "context round trip quartz raven", "k": 1,
                                    "wait_ms": 15000,
                                    "min_position": {"offsets": {tp: msg.offset()}}})
assert status == 200, (status, body)
assert body["context"] == "[1] context round trip quartz raven", body["context"]
assert body["citations"][0]["id"] == "notes:ctx", body["citations"]
assert body["citations"][0]["position"]["offset"] == msg.offset(), body["citations"]

# An offset nobody produced: 504 after wait_ms, with the position reached.
status, body = post("/v1/search", {"query": "x", "wait_ms": 200,
                                   "min_position": {"offsets": {tp: msg.offset() + 1000}}})
assert status == 504, (status, body)
assert body["error"]["code"] == "position_timeout", body
assert body["error"]["position"]["offsets"][tp] == msg.offset() + 1, body
print("50 writes read back; slowest wait %.0f ms" % (slowest * 1000))
PY
echo "read-your-writes checks passed"

# The same by Debezium source position: the real PostgreSQL stream through a second
# `ragfeed run`, the table's changes on one partition (in LSN order).  Each change is
# searched for at once with min_position.lsn = its source.lsn, alternately as Debezium's
# number and as PostgreSQL's "hi/lo" text; the LSNs survive a restart.
FIX="$RF_SHARED_DIR/fixtures/cdc/debezium/postgres/flink-debezium-postgres-data-schema-exclude.jsonl"
PG_TOPIC=fullfillment.inventory.products
/usr/bin/python3 - "$FIX" >"$RF_TMP/snapshot.tsv" <<'PY'
import json, sys
for line in open(sys.argv[1]).read().splitlines()[:9]:
    d = json.loads(line)
    assert d["op"] == "r", d["op"]
    print(json.dumps({"id": d["after"]["id"]}) + "\t" + line)
PY
kcat -b "$RF_BOOTSTRAP" -P -t "$PG_TOPIC" -p 0 -K $'\t' -z none <"$RF_TMP/snapshot.tsv"
PG_ARGS=(--set "source.topics=$PG_TOPIC" --set source.format=debezium
         --set "source.text={name}: {description}" --set "state.dir=$RF_TMP/state-pg"
         --set source.batch.ms=5 --set serve.max.wait.ms=20000 --set kafka.fetch.wait.max.ms=10)
rf_run_start run-pg "${PG_ARGS[@]}"

/usr/bin/python3 - "$RF_BOOTSTRAP" "$RF_URL" "$PG_TOPIC" "$FIX" <<'PY' || rf_die "read-your-writes by LSN failed"
import json, sys, time, urllib.error, urllib.request
from confluent_kafka import Producer

boot, url, topic, fix = sys.argv[1:5]
SOURCE = "inventory.products"

def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)

def search(query, lsn, wait_ms=15000, k=3):
    return call("POST", "/v1/search", {"query": query, "k": k, "wait_ms": wait_ms,
                                       "min_position": {"lsn": {SOURCE: lsn}}})

# The snapshot: every row has the snapshot's LSN.
lines = open(fix).read().splitlines()
snap_lsn = json.loads(lines[0])["source"]["lsn"]
status, body = search("scooter", snap_lsn)
assert status == 200, (status, body)
assert body["position"]["lsn"][SOURCE] == snap_lsn, body["position"]
# The nine rows share that LSN, so it is reached once the first is applied; the others may
# come in later batches (a busy machine splits them).  They all come, and the LSN stays.
deadline = time.monotonic() + 15
while True:
    status, st = call("GET", "/v1/status")
    if st["records"] == 9 or time.monotonic() > deadline:
        break
    time.sleep(0.02)
assert st["records"] == 9 and st["lsn"] == {SOURCE: snap_lsn}, st

producer = Producer({"bootstrap.servers": boot, "linger.ms": 0, "acks": "all"})
for i, line in enumerate(lines[9:]):
    ev = json.loads(line)
    row = ev["after"] or ev["before"]
    lsn = ev["source"]["lsn"]
    got = []
    producer.produce(topic, key=json.dumps({"id": row["id"]}).encode(), value=line.encode(),
                     partition=0, on_delivery=lambda err, msg: got.append(err))
    producer.flush(30)
    assert got == [None], got
    text = "%s: %s" % (row["name"], row["description"])
    want = lsn if i % 2 == 0 else "%X/%X" % (lsn >> 32, lsn & 0xFFFFFFFF)
    status, body = search(text, want)
    assert status == 200, (ev["op"], lsn, status, body)
    assert body["position"]["lsn"][SOURCE] >= lsn, (lsn, body["position"])
    rid = "inventory.products:%d" % row["id"]
    ids = [h["id"] for h in body["results"]]
    if ev["op"] == "d":
        assert rid not in ids, (lsn, ids)
        status, _ = call("GET", "/v1/records/" + rid)
        assert status == 404, (rid, status)
    else:
        assert ids[0] == rid and body["results"][0]["text"] == text, (ev["op"], lsn, body["results"])

# A position not applied yet: 504 with the LSN reached.
last = json.loads(lines[-1])["source"]["lsn"]
status, body = search("hammer", last + 1, wait_ms=300)
assert status == 504, (status, body)
assert body["error"]["position"]["lsn"] == {SOURCE: last}, body
status, st = call("GET", "/v1/status")
assert st["lsn"] == {SOURCE: last}, st
print("%d changes read back by LSN, last %d" % (len(lines) - 9, last))
PY

# The LSNs are stored with the batches: a restart knows them before consuming anything.
kill -TERM "$RF_RUN_PID"
wait "$RF_RUN_PID" || rf_die "ragfeed did not exit 0 on SIGTERM"
rf_run_start run-pg2 "${PG_ARGS[@]}"
st=$(rf_http GET /v1/status)
[ "$(rf_json "d['lsn']" <<<"$st")" = '{"inventory.products": 34133800}' ] || rf_die "LSN after restart: $st"
res=$(rf_http POST /v1/search '{"query":"spare tire","k":1,"wait_ms":0,"min_position":{"lsn":{"inventory.products":34133800}}}')
[ "$(rf_http_code)" = 200 ] || rf_die "LSN wait after restart: $(rf_http_code) $res"
echo "read-your-writes by LSN checks passed"
