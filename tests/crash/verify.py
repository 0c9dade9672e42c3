"""verify.py - compares a caught-up ragfeed with the model of the event stream:
records, their texts and search results (no lost, duplicated, stale or deleted record).

usage: verify.py MODEL_JSON URL
"""
import http.client
import json
import sys
import urllib.parse

model = json.load(open(sys.argv[1]))
url = urllib.parse.urlparse(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
failures = []


def call(method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, (json.loads(data) if data else None)


status, st = call("GET", "/v1/status")
if st["records"] != len(model["records"]):
    failures.append("records: store has %d, model %d" % (st["records"], len(model["records"])))

for rid, text in model["records"].items():
    code, rec = call("GET", "/v1/records/" + urllib.parse.quote(rid, safe=""))
    if code != 200:
        failures.append("lost %s (%d)" % (rid, code))
    elif rec["text"] != text:
        failures.append("stale %s: %r != %r" % (rid, rec["text"], text))
for rid in model["deleted"]:
    code, _ = call("GET", "/v1/records/" + urllib.parse.quote(rid, safe=""))
    if code != 404:
        failures.append("deleted %s still present (%d)" % (rid, code))

# Every live record is found by its own text; no result is ever deleted or stale.
seen = 0
for rid, text in list(model["records"].items()):
    code, res = call("POST", "/v1/search", {"query": text, "k": 5})
    ids = [r["id"] for r in res["results"]]
    if not ids or ids[0] != rid:
        failures.append("search for %s's text returned %s" % (rid, ids[:3]))
    for r in res["results"]:
        seen += 1
        if model["records"].get(r["id"]) != r["text"]:
            failures.append("search returned stale/deleted %s: %r" % (r["id"], r["text"]))
    if len(ids) != len(set(ids)):
        failures.append("duplicate ids in results: %s" % ids)
for rid, text in list(model["deleted"].items())[:500]:
    code, res = call("POST", "/v1/search", {"query": text, "k": 5})
    if rid in [r["id"] for r in res["results"]]:
        failures.append("search returned deleted %s" % rid)

if failures:
    for f in failures[:30]:
        print("FAIL:", f)
    print("%d failures" % len(failures))
    sys.exit(1)
print("verified %d records, %d deleted, %d search results" % (len(model["records"]),
                                                             len(model["deleted"]), seen))
