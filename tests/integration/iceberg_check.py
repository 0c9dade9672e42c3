#!/usr/bin/python3
"""iceberg_check.py - compares the rows of the Iceberg history table, as DuckDB read them
(iceberg_rows.mjs output, one JSON object per line), with the store's changelog: every
changelog seq in (after, upto] must appear exactly once with equal values in every
column (INVARIANT(history-exported-once)), and no other row may be there.

Usage: iceberg_check.py STORE_DB ROWS_JSONL [--upto SEQ] [--no-vectors] [--counts-only]
Exit 0 when equal, 1 with the first differences on stderr.
"""
import json
import sqlite3
import struct
import sys


def main():
    args = sys.argv[1:]
    vectors = "--no-vectors" not in args
    counts_only = "--counts-only" in args
    upto = None
    if "--upto" in args:
        upto = int(args[args.index("--upto") + 1])
    pos = [a for a in args if not a.startswith("--") and not a.isdigit()]
    store, rows_file = pos[0], pos[1]

    db = sqlite3.connect("file:%s?mode=ro" % store, uri=True)
    q = ('SELECT seq, op, id, source, tenant, text, metadata, label, label_score, model,'
         ' vector, content_hash, event_time_ms, ingest_time_ms, topic, "partition", "offset",'
         ' source_pos FROM changelog')
    if upto is not None:
        q += " WHERE seq <= %d" % upto
    q += " ORDER BY seq"
    want = {}
    for r in db.execute(q):
        want[r[0]] = r

    got = {}
    dups = []
    for line in open(rows_file):
        line = line.strip()
        if not line:
            continue
        o = json.loads(line)
        s = o["seq"]
        if s in got:
            dups.append(s)
        got[s] = o

    errors = []
    if dups:
        errors.append("seq exported more than once: %s" % dups[:20])
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    if missing:
        errors.append("%d changelog rows missing from the table, e.g. %s" % (len(missing), missing[:20]))
    if extra:
        errors.append("%d table rows not in the changelog, e.g. %s" % (len(extra), extra[:20]))

    def check(seq, col, expect, actual):
        if expect != actual:
            errors.append("seq %d %s: store %r, table %r" % (seq, col, expect, actual))

    if not counts_only:
        for seq in sorted(set(want) & set(got)):
            w, g = want[seq], got[seq]
            (_, op, rid, source, tenant, text, meta, label, score, model, vec, chash, ev,
             ing, topic, part, off, spos) = w
            check(seq, "op", op, g["op"])
            check(seq, "id", rid, g["id"])
            check(seq, "source", source, g["source"])
            check(seq, "tenant", tenant, g["tenant"])
            check(seq, "text", text, g["text"])
            check(seq, "metadata", meta, g["metadata"])
            check(seq, "label", label, g["label"])
            check(seq, "label_score", score, g["label_score"])
            check(seq, "model", model, g["model"])
            check(seq, "content_hash", chash.hex() if chash is not None else None, g["content_hash"])
            floats = list(struct.unpack("<%df" % (len(vec) // 4), vec)) if vec else None
            check(seq, "dim", len(floats) if floats else None, g["dim"])
            if vectors:
                check(seq, "vector", floats, g.get("vector"))
            check(seq, "event_time", ev * 1000 if ev else None, g["event_time"])
            check(seq, "ingest_time", ing * 1000, g["ingest_time"])
            check(seq, "kafka_topic", topic, g["kafka_topic"])
            check(seq, "kafka_partition", part, g["kafka_partition"])
            check(seq, "kafka_offset", off, g["kafka_offset"])
            check(seq, "source_position", spos, g["source_position"])
            if len(errors) > 20:
                break

    if errors:
        for e in errors[:25]:
            print("iceberg_check: " + e, file=sys.stderr)
        return 1
    print("iceberg_check: %d changelog rows, each exactly once in the table%s" %
          (len(want), "" if counts_only else ", values equal"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
