# banned.sh - functions the project never calls (unbounded or unsafe): strcpy strcat
# sprintf atoi strtok gets.  Comments and string literals are not exempt; rename instead.
source "$(dirname "$0")/lib.sh"
cd "$RF_SOURCE_DIR"
hits=$(git ls-files '*.c' '*.h' '*.cpp' 2>/dev/null | xargs grep -nE '\b(strcpy|strcat|sprintf|vsprintf|atoi|atol|strtok|gets)[[:space:]]*\(' || true)
if [ -n "$hits" ]; then
  fail "banned functions used:"; echo "$hits" >&2
fi
# The grep must be able to find something: a known-bad sample is detected.
printf 'int f(void){ char b[4]; strcpy (b, "x"); return atoi(b); }\n' > "$TMP/bad.c"
grep -qE '\b(strcpy|atoi)[[:space:]]*\(' "$TMP/bad.c" || fail "the pattern misses a sample"
finish
