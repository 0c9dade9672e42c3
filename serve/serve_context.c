/* serve_context.c - assembling one prompt-ready context string from search hits: passages
 * in score order, each marked "[n]" for its citation, the same record or the same text
 * only once, within a character budget.  A passage is never cut silently: the first one
 * that does not fit whole is cut at a word boundary and ends with " [truncated]" (or is
 * left out when fewer than RF__SERVE_TRUNC_MIN of its characters would fit), and the
 * passages after it are left out and counted.
 */
#include "serve/serve_int.h"

#include <stdlib.h>
#include <string.h>

#define SEP "\n\n" /* between passages */

size_t rf__serve_utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* The text of a hit without surrounding white space. */
static void trimmed(const rf_index_hit_t *hit, const char **p, size_t *n)
{
    const char *s = hit->text ? hit->text : "";
    size_t len = strlen(s);
    while (len && is_space(*s)) {
        s++;
        len--;
    }
    while (len && is_space(s[len - 1]))
        len--;
    *p = s;
    *n = len;
}

/* Bytes of the longest prefix of s[0..n) with at most `chars` characters, moved back to
 * the last white space when one lies in the second half (a word is not split), without
 * trailing white space. */
static size_t cut_at(const char *s, size_t n, size_t chars)
{
    size_t i = 0, c = 0, cut, space = 0;

    while (i < n) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (c == chars)
                break;
            c++;
        }
        i++;
    }
    cut = i;
    if (cut < n) {
        for (size_t j = cut; j > 0; j--)
            if (is_space(s[j - 1]) || is_space(s[j])) {
                space = is_space(s[j]) ? j : j - 1;
                break;
            }
        if (space && rf__serve_utf8_chars(s, space) >= chars / 2)
            cut = space;
    }
    while (cut && is_space(s[cut - 1]))
        cut--;
    return cut;
}

/* 1 when hit i repeats the id or the text of a passage already taken. */
static int duplicate(const rf_index_hit_t *hits, const rf__serve_context_t *ctx, size_t i)
{
    const char *t;
    size_t tn;

    trimmed(&hits[i], &t, &tn);
    for (size_t j = 0; j < ctx->passage_cnt; j++) {
        const rf_index_hit_t *o = &hits[ctx->passages[j].hit];
        const char *ot;
        size_t on;
        if (o->id && hits[i].id && !strcmp(o->id, hits[i].id))
            return 1;
        trimmed(o, &ot, &on);
        if (on == tn && !memcmp(ot, t, tn))
            return 1;
    }
    return 0;
}

void rf__serve_context_build(const rf_index_hit_t *hits, size_t cnt, int64_t max_chars,
                             rf__serve_context_t *ctx)
{
    const size_t marker_chars = strlen(RF__SERVE_TRUNC_MARKER);
    size_t used = 0, budget = max_chars > 0 ? (size_t)max_chars : 0;
    rf_buf_t out;
    int full = 0;

    memset(ctx, 0, sizeof(*ctx));
    rf_buf_init(&out, 0);
    ctx->passages = rf_xcalloc(cnt + 1, sizeof(*ctx->passages));
    for (size_t i = 0; i < cnt; i++) {
        char prefix[32];
        const char *t;
        size_t tn, tc, overhead;

        if (full) {
            ctx->dropped++;
            continue;
        }
        if (duplicate(hits, ctx, i)) {
            ctx->duplicates++;
            continue;
        }
        trimmed(&hits[i], &t, &tn);
        tc = rf__serve_utf8_chars(t, tn);
        snprintf(prefix, sizeof(prefix), "%s[%zu] ", ctx->passage_cnt ? SEP : "",
                 ctx->passage_cnt + 1);
        overhead = strlen(prefix); /* ASCII: bytes are characters */
        if (used + overhead + tc <= budget) {
            rf_buf_puts(&out, prefix);
            rf_buf_append(&out, t, tn);
            used += overhead + tc;
            ctx->passages[ctx->passage_cnt++].hit = i;
            continue;
        }
        /* The first passage that does not fit ends the context: cut with the marker when
         * enough of it fits to be worth reading, else leave it out. */
        full = 1;
        if (used + overhead + marker_chars + RF__SERVE_TRUNC_MIN <= budget) {
            size_t room = budget - used - overhead - marker_chars;
            size_t cut = cut_at(t, tn, room);
            if (cut) {
                rf_buf_puts(&out, prefix);
                rf_buf_append(&out, t, cut);
                rf_buf_puts(&out, RF__SERVE_TRUNC_MARKER);
                used += overhead + rf__serve_utf8_chars(t, cut) + marker_chars;
                ctx->passages[ctx->passage_cnt].hit = i;
                ctx->passages[ctx->passage_cnt++].truncated = 1;
                continue;
            }
        }
        ctx->dropped++;
    }
    ctx->chars = used;
    ctx->text = rf_buf_take(&out, NULL);
}

void rf__serve_context_fini(rf__serve_context_t *ctx)
{
    if (!ctx)
        return;
    free(ctx->text);
    free(ctx->passages);
    memset(ctx, 0, sizeof(*ctx));
}
