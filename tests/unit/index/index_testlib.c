/* index_testlib.c - code shared by the index/ unit tests (see index_testlib.h). */
#include "index_testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "index/index_int.h"
#include "rf_test.h"

uint64_t tl_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

uint32_t tl_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(tl_rand(state) % n);
}

void tl_vec_rand(uint64_t *state, int dim, float *out)
{
    double norm = 0;
    for (int i = 0; i < dim; i++) {
        /* Sum of uniforms: roughly normal, enough for spread-out directions. */
        double v = 0;
        for (int j = 0; j < 4; j++)
            v += (double)(tl_rand(state) >> 11) / 9007199254740992.0 - 0.5;
        out[i] = (float)v;
        norm += v * v;
    }
    norm = sqrt(norm);
    for (int i = 0; i < dim; i++)
        out[i] = (float)(out[i] / norm);
}

void tl_vec_for(uint64_t a, uint64_t b, int dim, float *out)
{
    uint64_t st = a * 0x100000001b3ull ^ (b + 0x51ed27ull);
    tl_vec_rand(&st, dim, out);
}

float tl_dot(const float *a, const float *b, int dim)
{
    float s = 0;
    for (int i = 0; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

rf_index_op_t tl_upsert(const char *id, const char *source, const char *text, const float *vec)
{
    rf_index_op_t op = {0};
    op.kind = RF_INDEX_UPSERT;
    op.id = id;
    op.source = source;
    op.text = text;
    op.vec = vec;
    op.model = "test-model";
    op.topic = "t";
    return op;
}

rf_index_op_t tl_delete(const char *id, const char *source)
{
    rf_index_op_t op = {0};
    op.kind = RF_INDEX_DELETE;
    op.id = id;
    op.source = source;
    op.topic = "t";
    return op;
}

rf_index_op_t tl_truncate(const char *source)
{
    rf_index_op_t op = {0};
    op.kind = RF_INDEX_TRUNCATE;
    op.source = source;
    op.topic = "t";
    return op;
}

rf_index_t *tl_open(const char *dir, int dim, int64_t interval_ms)
{
    rf_index_opts_t o = {.dir = dir, .dim = dim, .checkpoint_interval_ms = interval_ms};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    rf_rc rc = rf_index_open(&o, &ix, &err);
    if (rc)
        fprintf(stderr, "rf_index_open(%s): %s\n", dir, err.msg);
    RF_REQUIRE(rc == RF_OK && ix);
    return ix;
}

rf_rc tl_apply(rf_index_t *ix, const rf_index_op_t *ops, size_t n, const rf_index_offset_t *offs,
               size_t off_n, int64_t *seq)
{
    rf_index_batch_t b = {0};
    rf_err_t err = {0};
    rf_rc rc;
    b.ops = ops;
    b.op_cnt = n;
    b.offsets = offs;
    b.offset_cnt = off_n;
    rc = rf_index_apply(ix, &b, seq, &err);
    if (rc)
        fprintf(stderr, "apply: %s\n", err.msg);
    return rc;
}

int64_t tl_count(const char *dir, const char *where_sql)
{
    char *path = rf_xasprintf("%s/store.db", dir);
    char *sql = rf_xasprintf("SELECT COUNT(*) FROM %s", where_sql);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t n = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else
        fprintf(stderr, "tl_count(%s): %s\n", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(sql);
    free(path);
    return n;
}

int tl_vectors_match_store(rf_index_t *ix, const char *dir)
{
    char *path = rf_xasprintf("%s/store.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t *ids = NULL;
    size_t n = 0, i = 0;
    int ok = 1;
    if (rf__index_vec_ids(ix, &ids, &n, NULL, NULL) != RF_OK)
        ok = 0;
    if (ok && (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
               sqlite3_prepare_v2(db, "SELECT vid FROM records ORDER BY vid", -1, &st, NULL) !=
                   SQLITE_OK))
        ok = 0;
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        int64_t vid = sqlite3_column_int64(st, 0);
        if (i >= n || ids[i] != vid) {
            fprintf(stderr, "store vid %lld not in the vector index (at %zu)\n", (long long)vid, i);
            ok = 0;
        }
        i++;
    }
    if (ok && i != n) {
        fprintf(stderr, "vector index has %zu ids, store %zu records\n", n, i);
        ok = 0;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(ids);
    free(path);
    return ok;
}
