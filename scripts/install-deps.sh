#!/usr/bin/env bash
# Installs what ragfeed needs on Debian 12, idempotently:
#   1. the Debian packages listed in DESIGN.md (apt-get, as root or through sudo);
#   2. FAISS's C API (libfaiss_c), built from Debian's own `faiss` source package when
#      the system has none. The deb-src entry lives in a private apt configuration under
#      the work directory; the system's sources are never edited.
#
# Environment:
#   RF_DEPS_PREFIX   where libfaiss_c is installed (default /usr/local; CMake looks there)
#   RF_DEPS_WORK     scratch directory for the faiss build (default /var/tmp/ragfeed-deps)
#   RF_DEPS_SKIP_APT set to 1 to skip step 1 (packages already present)
set -euo pipefail

PREFIX=${RF_DEPS_PREFIX:-/usr/local}
WORK=${RF_DEPS_WORK:-/var/tmp/ragfeed-deps}

PKGS=(
  build-essential cmake pkg-config dpkg-dev clang-format
  librdkafka-dev libcurl4-openssl-dev libjansson-dev libfaiss-dev libsqlite3-dev
  libsodium-dev libmicrohttpd-dev libavro-dev libzstd-dev zlib1g-dev libopenblas-dev
  kcat wrk sqlite3 curl python3
  clang python3-confluent-kafka chromium
)

log() { printf 'install-deps: %s\n' "$*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else SUDO=; fi
fi

missing=()
if [ "${RF_DEPS_SKIP_APT:-0}" != 1 ]; then
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "Debian packages present"
  fi
fi

# ---- FAISS C API ---------------------------------------------------------------
# The C API counts as present when both the library and its headers are in the prefix
# or in the system's own directories.
have_faiss_c() {
  local lib inc
  for lib in "$PREFIX/lib" /usr/lib/x86_64-linux-gnu /usr/lib; do
    [ -e "$lib/libfaiss_c.a" ] || [ -e "$lib/libfaiss_c.so" ] || continue
    for inc in "$PREFIX/include" /usr/include; do
      [ -e "$inc/faiss/c_api/faiss_c.h" ] && return 0
    done
  done
  return 1
}

# ---- Node readers for the interop tests ------------------------------------------
# The independent Iceberg/Parquet readers in shared/tools/iceberg-verify need Node 20.
SHARED=${RF_SHARED_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/shared}
if ! command -v node >/dev/null 2>&1; then
  log "installing nodejs and npm"
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
if [ -f "$SHARED/tools/iceberg-verify/package-lock.json" ] && [ ! -d "$SHARED/tools/iceberg-verify/node_modules" ]; then
  log "npm ci in $SHARED/tools/iceberg-verify"
  (cd "$SHARED/tools/iceberg-verify" && npm ci --no-audit --no-fund --loglevel=error)
fi

if have_faiss_c; then
  log "libfaiss_c present"
  exit 0
fi

log "building FAISS C API from Debian's faiss source package into $PREFIX"
mkdir -p "$WORK/apt/lists/partial" "$WORK/apt/archives/partial" "$WORK/src"

# A private apt configuration with a deb-src entry that mirrors the system's first
# Debian source, so that `apt-get source` works without touching /etc/apt.
mirror=$( { sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null;
            sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' \
              /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; } \
          | tr ' ' '\n' | grep -E '^https?://' | grep -v -e security -e nodesource -e google | head -n1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
signed=
[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] && signed="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
cat >"$WORK/apt/sources.list" <<SRC
deb-src ${signed}${mirror%/} bookworm main
deb-src ${signed}${mirror%/} bookworm-updates main
SRC
APTOPTS=(-o "Dir::Etc::SourceList=$WORK/apt/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
         -o "Dir::State::Lists=$WORK/apt/lists" -o "Dir::Cache::Archives=$WORK/apt/archives"
         -o "APT::Sandbox::User=root")
apt-get "${APTOPTS[@]}" update -qq
srcdir=$(find "$WORK/src" -maxdepth 1 -type d -name 'faiss-*' | head -n1)
if [ -z "$srcdir" ]; then
  (cd "$WORK/src" && apt-get "${APTOPTS[@]}" source --download-only -qq faiss >/dev/null \
     && dpkg-source -x --no-check ./faiss_*.dsc >/dev/null)
  srcdir=$(find "$WORK/src" -maxdepth 1 -type d -name 'faiss-*' | head -n1)
fi
[ -n "$srcdir" ] || { log "could not unpack the faiss source package"; exit 1; }

# Compile every c_api translation unit against the installed headers and libfaiss.
objdir="$WORK/obj"
rm -rf "$objdir"; mkdir -p "$objdir"
jobs=$(nproc 2>/dev/null || echo 2)
find "$srcdir/c_api" -name '*.cpp' | grep -v -e '/gpu/' -e 'example' -e 'test' \
  | xargs -P "$jobs" -I{} sh -c 'f="$1"; o="$2/$(echo "${f#$3/c_api/}" | tr / _).o"; \
        g++ -std=c++17 -O2 -fPIC -fopenmp -I"$3" -c "$f" -o "$o"' _ {} "$objdir" "$srcdir"
$SUDO mkdir -p "$PREFIX/lib" "$PREFIX/include/faiss/c_api"
tmpa="$objdir/libfaiss_c.a"
ar rcs "$tmpa" "$objdir"/*.o
$SUDO install -m 0644 "$tmpa" "$PREFIX/lib/libfaiss_c.a"
(cd "$srcdir/c_api" && find . -name '*.h' ! -path './gpu/*' -print0 \
   | while IFS= read -r -d '' h; do $SUDO install -D -m 0644 "$h" "$PREFIX/include/faiss/c_api/$h"; done)
log "installed $PREFIX/lib/libfaiss_c.a and headers in $PREFIX/include/faiss/c_api"
