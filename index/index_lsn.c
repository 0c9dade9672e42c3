/* index_lsn.c - the highest source-database position applied per source: a PostgreSQL
 * LSN, as Debezium reports it (a decimal number), parsed from each op's source position,
 * stored in the meta table ("lsn:<source>") in the batch's own transaction, mirrored in
 * memory under stat_mu and published with every snapshot, so that a client can wait for
 * the LSN of its own commit.  Upholds INVARIANT(fresh-is-measurable), and
 * INVARIANT(offsets-with-state) for these positions: they commit with the batch.
 */
#include "index/index.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"

/* Meta keys are "lsn:" + source; longer sources are not tracked. */
#define LSN_KEY_PREFIX "lsn:"

int rf__index_lsn_parse(const char *source_pos, int64_t *lsn)
{
    const char *p = source_pos;
    int64_t v = 0;
    if (!p)
        return 0;
    if (!strncmp(p, "lsn=", 4))
        p += 4;
    if (!*p)
        return 0;
    for (; *p; p++) {
        int d = *p - '0';
        if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *lsn = v;
    return 1;
}

/* The mirror's slot of source, or the slot where it would be inserted (*found 0).  The
 * mirror is kept sorted by source.  Caller holds stat_mu, or is the writer (which alone
 * changes the mirror). */
static size_t mirror_find(const rf_index_t *ix, const char *source, int *found)
{
    size_t lo = 0, hi = ix->lsn_cnt;
    *found = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ix->lsns[mid].source, source);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

void rf__index_lsn_set_locked(rf_index_t *ix, const char *source, int64_t lsn)
{
    int found;
    size_t i = mirror_find(ix, source, &found);
    if (found) {
        if (lsn > ix->lsns[i].lsn)
            ix->lsns[i].lsn = lsn;
        return;
    }
    ix->lsns = rf_xrealloc(ix->lsns, (ix->lsn_cnt + 1) * sizeof(*ix->lsns));
    memmove(&ix->lsns[i + 1], &ix->lsns[i], (ix->lsn_cnt - i) * sizeof(*ix->lsns));
    ix->lsns[i].source = rf_xstrdup(source);
    ix->lsns[i].lsn = lsn;
    ix->lsn_cnt++;
}

size_t rf__index_lsn_collect(rf_index_t *ix, const rf_index_batch_t *b, rf_index_lsn_t **out)
{
    rf_index_lsn_t *v = NULL;
    size_t n = 0, cap = 0;
    *out = NULL;
    for (size_t i = 0; i < b->op_cnt; i++) {
        const rf_index_op_t *op = &b->ops[i];
        int64_t lsn;
        size_t j;
        int found;
        /* Deletes and truncates count too: the change at that position is applied. */
        if (!op->source || strlen(op->source) > RF__INDEX_ID_MAX ||
            !rf__index_lsn_parse(op->source_pos, &lsn))
            continue;
        j = mirror_find(ix, op->source, &found);
        if (found && lsn <= ix->lsns[j].lsn)
            continue;
        for (j = 0; j < n && strcmp(v[j].source, op->source) != 0; j++)
            ;
        if (j < n) {
            if (lsn > v[j].lsn)
                v[j].lsn = lsn;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4;
            v = rf_xrealloc(v, cap * sizeof(*v));
        }
        v[n].source = op->source;
        v[n].lsn = lsn;
        n++;
    }
    *out = v;
    return n;
}

rf_rc rf__index_lsn_store(rf_index_t *ix, const rf_index_lsn_t *lsns, size_t n, rf_err_t *err)
{
    sqlite3_stmt *st = ix->wst[RF__W_META_SET];
    rf_rc rc = RF_OK;
    for (size_t i = 0; i < n && !rc; i++) {
        char *key = rf_xasprintf(LSN_KEY_PREFIX "%s", lsns[i].source);
        int src;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, lsns[i].lsn);
        src = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (src != SQLITE_DONE)
            rc = rf__index_db_fail(ix->wdb, src, err, "store source position");
        free(key);
    }
    return rc;
}

rf_rc rf__index_lsn_load(rf_index_t *ix, rf_err_t *err)
{
    sqlite3_stmt *st = NULL;
    rf_rc rc = RF_OK;
    int src;
    /* GLOB is case-sensitive and matches the prefix literally. */
    if (sqlite3_prepare_v2(ix->wdb, "SELECT substr(key, 5), value FROM meta WHERE key GLOB 'lsn:*'",
                           -1, &st, NULL) != SQLITE_OK)
        return rf__index_db_fail(ix->wdb, sqlite3_errcode(ix->wdb), err, "read source positions");
    pthread_mutex_lock(&ix->stat_mu);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *source = (const char *)sqlite3_column_text(st, 0);
        if (!source || sqlite3_column_type(st, 1) != SQLITE_INTEGER)
            continue;
        rf__index_lsn_set_locked(ix, source, sqlite3_column_int64(st, 1));
    }
    pthread_mutex_unlock(&ix->stat_mu);
    if (src != SQLITE_DONE)
        rc = rf__index_db_fail(ix->wdb, src, err, "read source positions");
    sqlite3_finalize(st);
    return rc;
}

void rf__index_lsn_position_locked(rf_index_t *ix, rf_index_position_t *pos)
{
    pos->lsn_cnt = ix->lsn_cnt;
    pos->lsns = rf_xmalloc((ix->lsn_cnt ? ix->lsn_cnt : 1) * sizeof(*pos->lsns));
    for (size_t i = 0; i < ix->lsn_cnt; i++) {
        pos->lsns[i].source = rf_xstrdup(ix->lsns[i].source);
        pos->lsns[i].lsn = ix->lsns[i].lsn;
    }
}

void rf__index_lsn_free(rf_index_t *ix)
{
    for (size_t i = 0; i < ix->lsn_cnt; i++)
        free((char *)ix->lsns[i].source);
    free(ix->lsns);
    ix->lsns = NULL;
    ix->lsn_cnt = 0;
}
