#!/usr/bin/env bash
# 0001-broker-kcat.sh - `ragfeed broker` speaks Kafka to an independent client (kcat):
# keyed messages with headers, NULL keys and tombstones come back byte for byte, a
# consumer group resumes from its committed offsets, and SIGTERM stops it with exit 0.
set -euo pipefail

: "${RF_BIN:?RF_BIN must name the ragfeed binary}"
command -v kcat >/dev/null || { echo "kcat not installed" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/rf-0001-XXXXXX")
broker_pid=
cleanup() {
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -KILL "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
    echo "FAIL: $*" >&2
    for f in "$tmp"/*.err; do
        [[ -s "$f" ]] && { echo "--- $f" >&2; tail -20 "$f" >&2; }
    done
    exit 1
}

# ---- start the broker and read bootstrap.servers from its first line
"$RF_BIN" broker --topic t1 --partitions 4 >"$tmp/broker.out" 2>"$tmp/broker.err" &
broker_pid=$!
bootstrap=
for _ in $(seq 1 100); do
    if IFS= read -r line <"$tmp/broker.out" 2>/dev/null && [[ -n "$line" ]]; then
        bootstrap=${line#bootstrap.servers=}
        [[ "$line" == bootstrap.servers=* ]] || fail "first line is not bootstrap.servers: $line"
        break
    fi
    kill -0 "$broker_pid" 2>/dev/null || fail "broker exited early"
    sleep 0.1
done
[[ -n "$bootstrap" ]] || fail "no bootstrap.servers line within 10 s"
[[ "$bootstrap" =~ ^127\.0\.0\.1:[0-9]+$ ]] || fail "unexpected bootstrap.servers: $bootstrap"
echo "broker at $bootstrap"

kc() { timeout 60 kcat -b "$bootstrap" "$@"; }

# ---- produce: per partition, keyed lines, one NULL key (empty key with -Z) and one
# tombstone (empty value with -Z); every message carries two headers.
for p in 0 1 2 3; do
    {
        printf 'id-%s-1:{"name":"caf\xc3\xa9 %s","note":"a|b c"}\n' "$p" "$p"
        printf 'id-%s-2:plain text with  two spaces\n' "$p"
        printf ':value without a key %s\n' "$p"
        printf 'id-%s-1:\n' "$p"
        printf 'id-%s-3:last\n' "$p"
    } | kc -t t1 -p "$p" -P -K: -Z -H "src=kcat test" -H "part=$p" 2>>"$tmp/kcat.err" ||
        fail "kcat produce to partition $p"
done

# ---- consume every partition back and compare byte for byte
for p in 0 1 2 3; do
    kc -C -t t1 -p "$p" -o beginning -e -J 2>>"$tmp/kcat.err" >"$tmp/c$p.json" ||
        fail "kcat consume partition $p"
done
/usr/bin/python3 - "$tmp" <<'EOF' || fail "consumed messages differ from produced ones"
import json, sys
tmp = sys.argv[1]
for p in range(4):
    got = [json.loads(l) for l in open(f"{tmp}/c{p}.json", encoding="utf-8") if l.strip()]
    want = [
        (f"id-{p}-1", '{"name":"caf\u00e9 %d","note":"a|b c"}' % p),
        (f"id-{p}-2", "plain text with  two spaces"),
        (None, f"value without a key {p}"),
        (f"id-{p}-1", None),
        (f"id-{p}-3", "last"),
    ]
    assert len(got) == len(want), (p, len(got), got)
    for i, (m, (k, v)) in enumerate(zip(got, want)):
        assert m["partition"] == p and m["offset"] == i, m
        assert m["key"] == k, (m["key"], k)
        assert m["payload"] == v, (m["payload"], v)
        assert m["headers"] == ["src", "kcat test", "part", str(p)], m["headers"]
print("all 20 messages match")
EOF

# ---- a consumer group reads part of the topic, stops, and a restarted member of the
# same group continues from the committed offsets: together they see every message once.
group=(-G g1 -X session.timeout.ms=6000 -X heartbeat.interval.ms=500
    -X auto.offset.reset=earliest -X enable.auto.commit=true)
kc "${group[@]}" -c 7 -J t1 2>>"$tmp/group1.err" >"$tmp/g1.json" || fail "first group member"
kc "${group[@]}" -c 13 -J t1 2>>"$tmp/group2.err" >"$tmp/g2.json" || fail "restarted group member"
/usr/bin/python3 - "$tmp" <<'EOF' || fail "group members did not split the messages exactly"
import json, sys
tmp = sys.argv[1]
def seen(f):
    return [(m["partition"], m["offset"]) for m in
            (json.loads(l) for l in open(f"{tmp}/{f}", encoding="utf-8") if l.strip())]
a, b = seen("g1.json"), seen("g2.json")
assert len(a) == 7 and len(b) == 13, (len(a), len(b))
assert not set(a) & set(b), sorted(set(a) & set(b))
assert set(a) | set(b) == {(p, o) for p in range(4) for o in range(5)}
print("group: 7 + 13 messages, no overlap, none missing")
EOF

# ---- SIGTERM stops the broker cleanly
kill -TERM "$broker_pid"
rc=0
for _ in $(seq 1 100); do
    kill -0 "$broker_pid" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$broker_pid" 2>/dev/null && fail "broker still running 10 s after SIGTERM"
wait "$broker_pid" || rc=$?
broker_pid=
[[ $rc -eq 0 ]] || fail "broker exited with $rc after SIGTERM"
[[ $(wc -l <"$tmp/broker.out") -eq 1 ]] || fail "broker printed more than one line on stdout"
echo "ok"
