# 0004-read-your-writes.sh - an application that produces a change event and at once
# searches with min_position = the offset its producer reported always sees its write:
# 50 rounds of creates and updates over 4 partitions, each answer reflecting at least
# that offset and holding the new text; then /v1/context the same way, and a 504 with the
# position reached for an offset that was never produced.
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
