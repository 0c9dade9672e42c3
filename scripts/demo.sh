#!/usr/bin/env bash
# demo.sh RAGFEED_BIN - `make demo`: a real corpus (apt's package descriptions, present
# on every Debian machine) as Debezium change events, fed to `ragfeed demo`, which runs
# the development broker and the whole pipeline on 127.0.0.1.  The long descriptions
# live in apt's Translation-en files; when the system's apt is set to skip them, they
# are fetched into a private list directory from the same Debian repositories (the
# system's apt state is never touched).  Without them the synopses alone are used.
set -euo pipefail
BIN=$(realpath "${1:-build/ragfeed}")
SRC=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ragfeed
LIMIT=${RF_DEMO_LIMIT:-20000}
mkdir -p "$CACHE/apt-lists/partial"

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
/usr/bin/python3 "$SRC/scripts/apt_corpus.py" --limit "$LIMIT" "${lists[@]}" >"$EVENTS"
exec "$BIN" demo --events "$EVENTS" --topic debian.debian.packages \
  --set $'source.text={name}: {synopsis}\n{description}' --set source.metadata.fields=section,name \
  ${RF_DEMO_SET:+--set "$RF_DEMO_SET"}
