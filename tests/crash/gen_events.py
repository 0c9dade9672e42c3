"""gen_events.py - a deterministic stream of Debezium (schemaless) change events for
the crash test, and the model of what the store must hold after applying it exactly
once.

usage: gen_events.py SEED N_EVENTS N_KEYS OUT_DIR CHUNKS
writes OUT_DIR/chunk-NNN.tsv (key<TAB>value, empty value = tombstone) and
OUT_DIR/model.json: {"records": {id: text}, "deleted": {id: last_text},
"changelog_rows": N, "events": N}
"""
import json
import random
import sys

seed, n_events, n_keys, out, chunks = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                                       sys.argv[4], int(sys.argv[5]))
rng = random.Random(seed)
words = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
         "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
         "zulu kafka postgres vector index search fresh context record audit").split()

state = {}        # key -> current text (live records)
last_text = {}    # key -> last text ever written
changelog = 0
events = []       # (key_json, value_or_None)
lsn = 1000
rev = 0


def source_block():
    global lsn
    lsn += 8
    return {"version": "1.9.7.Final", "connector": "postgresql", "name": "srv",
            "ts_ms": 1700000000000 + lsn, "snapshot": "false", "db": "crash",
            "schema": "crash", "table": "items", "txId": lsn, "lsn": lsn, "xmin": None}


while len(events) < n_events:
    k = rng.randrange(n_keys)
    key = json.dumps({"id": k})
    r = rng.random()
    if k in state and r < 0.18:
        before = {"id": k, "body": state[k]}
        events.append((key, json.dumps({"before": before, "after": None, "source": source_block(),
                                        "op": "d", "ts_ms": 1700000000000 + lsn})))
        del state[k]
        changelog += 1
        if rng.random() < 0.5:
            events.append((key, None))  # tombstone: deletes nothing more
    elif k not in state and r < 0.05:
        # A delete of a key that does not exist (already gone): no change.
        events.append((key, None))
    else:
        rev += 1
        text = "item %d rev %d %s" % (k, rev, " ".join(rng.choice(words) for _ in range(6)))
        op = "u" if k in state else "c"
        before = {"id": k, "body": state[k]} if k in state else None
        events.append((key, json.dumps({"before": before, "after": {"id": k, "body": text},
                                        "source": source_block(), "op": op,
                                        "ts_ms": 1700000000000 + lsn})))
        state[k] = text
        last_text[k] = text
        changelog += 1

per = (len(events) + chunks - 1) // chunks
for c in range(chunks):
    with open("%s/chunk-%03d.tsv" % (out, c), "w") as f:
        for key, value in events[c * per:(c + 1) * per]:
            f.write(key + "\t" + (value if value is not None else "") + "\n")

ns = "crash.items:"
model = {"records": {ns + str(k): t for k, t in state.items()},
         "deleted": {ns + str(k): t for k, t in last_text.items() if k not in state},
         "changelog_rows": changelog, "events": len(events)}
json.dump(model, open(out + "/model.json", "w"))
