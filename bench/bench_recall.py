"""bench_recall.py - retrieval quality on known-item queries built from apt's package lists.

A package's one-line synopsis is the query; the record holding its long description (and
only that: no name, no synopsis) is the one right answer.  recall@10 is the share of
queries whose target is among the first 10 results.

usage:
  bench_recall.py sample EVENTS OUTDIR [--docs N] [--queries Q] [--seed S]
      EVENTS: scripts/apt_corpus.py output (creates only).  Keeps packages with a long
      description that is not just the synopsis, drops repeated descriptions and
      synopses (a query with two identical targets has no single right answer), samples N
      documents and Q queries among them.  Writes OUTDIR/docs.tsv (the events, unchanged,
      for kcat -K '\\t') and OUTDIR/queries.json.
  bench_recall.py bm25 OUTDIR          recall@10 of Okapi BM25 (k1 1.2, b 0.75) over the
                                       same documents, computed here: the baseline.
  bench_recall.py http OUTDIR URL      recall@10 of POST URL/v1/search {"query","k":10}.
Each of bm25 and http prints `recall=R hits=H queries=Q seconds=S`.
"""
import collections
import json
import math
import os
import random
import re
import sys
import time
import urllib.request

K = 10


def sample(events, outdir, ndocs, nq, seed):
    rows, desc_seen, syn_seen = [], collections.Counter(), collections.Counter()
    with open(events, encoding="utf-8") as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("\t")
            if not value:
                continue
            after = json.loads(value).get("after")
            if not after:
                continue
            syn, desc = after["synopsis"].strip(), after["description"].strip()
            if not syn or not desc or desc == syn:
                continue
            rows.append((after["id"], syn, desc, line))
            desc_seen[desc] += 1
            syn_seen[syn.lower()] += 1
    rows = [r for r in rows if desc_seen[r[2]] == 1 and syn_seen[r[1].lower()] == 1]
    if len(rows) < ndocs:
        ndocs = len(rows)
    rng = random.Random(seed)
    docs = rng.sample(rows, ndocs)
    queries = docs[:]
    rng.shuffle(queries)
    queries = queries[:nq]
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "docs.tsv"), "w", encoding="utf-8") as f:
        for r in docs:
            f.write(r[3])
    with open(os.path.join(outdir, "queries.json"), "w", encoding="utf-8") as f:
        json.dump({"eligible": len(rows), "docs": [[r[0], r[2]] for r in docs],
                   "queries": [[r[0], r[1]] for r in queries]}, f)
    print("docs=%d queries=%d eligible=%d" % (len(docs), len(queries), len(rows)))


def tokens(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def bm25(outdir):
    data = json.load(open(os.path.join(outdir, "queries.json"), encoding="utf-8"))
    t0 = time.time()
    ids, lens, postings = [], [], collections.defaultdict(list)
    for i, (doc_id, text) in enumerate(data["docs"]):
        tf = collections.Counter(tokens(text))
        ids.append(doc_id)
        lens.append(sum(tf.values()))
        for term, c in tf.items():
            postings[term].append((i, c))
    n, avg = len(ids), sum(lens) / max(len(lens), 1)
    k1, b = 1.2, 0.75
    hits = 0
    for target, query in data["queries"]:
        scores = collections.defaultdict(float)
        for term in set(tokens(query)):
            plist = postings.get(term)
            if not plist:
                continue
            idf = math.log(1 + (n - len(plist) + 0.5) / (len(plist) + 0.5))
            for i, c in plist:
                scores[i] += idf * c * (k1 + 1) / (c + k1 * (1 - b + b * lens[i] / avg))
        top = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:K]
        hits += any(ids[i] == target for i, _ in top)
    nq = len(data["queries"])
    print("recall=%.4f hits=%d queries=%d seconds=%.1f" % (hits / nq, hits, nq, time.time() - t0))


def http(outdir, url):
    data = json.load(open(os.path.join(outdir, "queries.json"), encoding="utf-8"))
    t0 = time.time()
    hits = 0
    for target, query in data["queries"]:
        body = json.dumps({"query": query, "k": K}).encode()
        req = urllib.request.Request(url + "/v1/search", data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            res = json.load(resp)["results"]
        # Record ids are "<source>:<key>"; the key is the package's id.
        hits += any(r["id"].rsplit(":", 1)[-1] == str(target) for r in res[:K])
    nq = len(data["queries"])
    print("recall=%.4f hits=%d queries=%d seconds=%.1f" % (hits / nq, hits, nq, time.time() - t0))


def main():
    args = sys.argv[1:]
    opts = {"--docs": 5000, "--queries": 500, "--seed": 1}
    pos = []
    i = 0
    while i < len(args):
        if args[i] in opts and i + 1 < len(args):
            opts[args[i]] = int(args[i + 1])
            i += 2
        else:
            pos.append(args[i])
            i += 1
    if pos[:1] == ["sample"] and len(pos) == 3:
        sample(pos[1], pos[2], opts["--docs"], opts["--queries"], opts["--seed"])
    elif pos[:1] == ["bm25"] and len(pos) == 2:
        bm25(pos[1])
    elif pos[:1] == ["http"] and len(pos) == 3:
        http(pos[1], pos[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


main()
