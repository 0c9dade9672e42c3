/* test_index_content.c - the content-hash map (index_content.c): the multimap against a
 * model, lookups through updates, deletes and texts shared by several records, and the
 * keys through a checkpoint, a crash (replay), a full rebuild, and checkpoint files of
 * format 2, which have no keys and are read with keys from the store. */
#include "index/index.h"
#include "rf_test.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"
#include "index_testlib.h"

#define DIM 16

/* Random puts and deletes of (key, vid) pairs over a few keys whose homes collide, the
 * table wrapping around and growing; every find must give the model's vids. */
static void test_hmap_model(void)
{
    enum { KEYS = 40, VIDS = 30, STEPS = 60000 };
    static unsigned char model[KEYS][VIDS];
    rf__index_hmap_t m = {0};
    uint64_t st = 5;
    size_t cnt = 0;
    memset(model, 0, sizeof(model));
    for (int step = 0; step < STEPS; step++) {
        int k = (int)tl_below(&st, KEYS), v = (int)tl_below(&st, VIDS);
        /* Keys 1..KEYS and keys that share their low bits with them (same home slot), and
         * one near the top of the table, so that probes wrap. */
        uint64_t key = (k % 4 == 0) ? ((uint64_t)k << 40) | 1023u : (uint64_t)(k + 1);
        if (tl_below(&st, 3) != 0 && !model[k][v]) {
            rf__index_hmap_put(&m, key, v + 1);
            model[k][v] = 1;
            cnt++;
        } else {
            rf__index_hmap_del(&m, key, v + 1);
            cnt -= model[k][v];
            model[k][v] = 0;
        }
        if (step % 97 == 0 || step == STEPS - 1) {
            for (int kk = 0; kk < KEYS; kk++) {
                uint64_t qk = (kk % 4 == 0) ? ((uint64_t)kk << 40) | 1023u : (uint64_t)(kk + 1);
                int64_t out[VIDS + 1];
                unsigned char seen[VIDS] = {0};
                size_t n = rf__index_hmap_find(&m, qk, out, VIDS + 1), want = 0;
                for (int vv = 0; vv < VIDS; vv++)
                    want += model[kk][vv];
                RF_CHECK_INT(n, want);
                for (size_t i = 0; i < n; i++) {
                    RF_REQUIRE(out[i] >= 1 && out[i] <= VIDS);
                    RF_CHECK(model[kk][out[i] - 1]);
                    RF_CHECK(!seen[out[i] - 1]);
                    seen[out[i] - 1] = 1;
                }
            }
            RF_CHECK_INT(m.cnt, cnt);
        }
    }
    RF_CHECK(m.cap >= 1024 && (m.cap & (m.cap - 1)) == 0);
    rf__index_hmap_free(&m);
    RF_CHECK_INT(rf__index_hmap_find(&m, 1, NULL, 0), 0);
}

/* The content hash of text i (distinct texts, distinct hashes). */
static void hash_of(int i, uint8_t h[32])
{
    uint64_t st = (uint64_t)i * 0x9e3779b97f4a7c15ull + 11;
    for (int j = 0; j < 32; j += 8) {
        uint64_t r = tl_rand(&st);
        memcpy(h + j, &r, 8);
    }
}

/* Record "c:<i>" with text i: its vector and content hash are those of the text. */
static rf_index_op_t rec(int i, int text, float *v, uint8_t *h, char *id)
{
    rf_index_op_t op;
    snprintf(id, 16, "c:%d", i);
    tl_vec_for((uint64_t)text, 1, DIM, v);
    hash_of(text, h);
    op = tl_upsert(id, "c", "text", v);
    op.content_hash = h;
    return op;
}

/* 1 when the lookup of text's hash gives text's vector, 0 when it finds nothing. */
static int found(rf_index_t *ix, int text)
{
    uint8_t h[32];
    float want[DIM], got[DIM];
    rf_rc rc;
    hash_of(text, h);
    tl_vec_for((uint64_t)text, 1, DIM, want);
    rc = rf_index_vector_by_hash(ix, h, DIM, got, NULL);
    if (rc == RF_OK)
        RF_CHECK(memcmp(got, want, sizeof(want)) == 0);
    else
        RF_CHECK_INT(rc, RF_ENOTFOUND);
    return rc == RF_OK;
}

static rf_index_t *open_hnsw(const char *dir)
{
    rf_index_opts_t o = {.dir = dir, .dim = DIM, .segment_size = 300, .factory = "HNSW16"};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    rf_rc rc = rf_index_open(&o, &ix, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    return ix;
}

/* Records 0..n-1 with texts text0+i, in batches of 50; then waits for the builds. */
static void load(rf_index_t *ix, int n, int text0)
{
    for (int b = 0; b < n; b += 50) {
        rf_index_op_t ops[50];
        float v[50][DIM];
        uint8_t h[50][32];
        char id[50][16];
        int cnt = n - b < 50 ? n - b : 50;
        for (int i = 0; i < cnt; i++)
            ops[i] = rec(b + i, text0 + b + i, v[i], h[i], id[i]);
        RF_REQUIRE(tl_apply(ix, ops, (size_t)cnt, NULL, 0, NULL) == RF_OK);
    }
    RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
}

/* The map holds one pair per record (every record here has a content hash). */
static int map_size_ok(rf_index_t *ix)
{
    size_t n;
    pthread_mutex_lock(&ix->hm_mu);
    n = ix->hmap.cnt;
    pthread_mutex_unlock(&ix->hm_mu);
    if ((int64_t)n != rf_index_record_count(ix))
        fprintf(stderr, "map holds %zu pairs, store %lld records\n", n,
                (long long)rf_index_record_count(ix));
    return (int64_t)n == rf_index_record_count(ix);
}

static int count_ann(rf_index_t *ix)
{
    rf__index_snap_t *snap = rf__index_snap_acquire(ix);
    int n = 0;
    for (size_t i = 0; i < snap->cnt; i++)
        n += snap->v[i].seg->kind == RF__SEG_ANN;
    rf__index_snap_release(snap);
    return n;
}

/* Lookups follow the records: a text shared by two records is found while either holds
 * it; an update moves the record to its new text; a delete removes it; a vector of
 * another dim is never returned.  The map survives a checkpoint, a crash after it
 * (changelog replay) and the loss of every checkpoint (full rebuild). */
static void test_lookups_and_recovery(void)
{
    char *dir = rf_test_tmpdir("ixcont");
    rf_index_t *ix = open_hnsw(dir);
    rf_index_op_t ops[2];
    float v[2][DIM], got[DIM];
    uint8_t h[2][32];
    char id[2][16];
    load(ix, 700, 1000); /* records 0..699, texts 1000..1699: ANN segments and a tail */
    RF_REQUIRE(count_ann(ix) > 0);
    for (int t = 1000; t < 1700; t += 37)
        RF_CHECK(found(ix, t));
    RF_CHECK(!found(ix, 1700));
    hash_of(1000, h[0]);
    RF_CHECK_INT(rf_index_vector_by_hash(ix, h[0], DIM * 2, got, NULL), RF_ENOTFOUND);

    /* Records 5 (in a sealed segment) and 650 (in the tail) take text 1; both hold it. */
    ops[0] = rec(5, 1, v[0], h[0], id[0]);
    ops[1] = rec(650, 1, v[1], h[1], id[1]);
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    RF_CHECK(found(ix, 1));
    RF_CHECK(!found(ix, 1005)); /* record 5's old text is held by no record now */
    RF_CHECK(found(ix, 1006));
    ops[0] = tl_delete("c:5", "c");
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK(found(ix, 1)); /* record 650 still holds it */
    ops[0] = rec(650, 2, v[0], h[0], id[0]);
    RF_REQUIRE(tl_apply(ix, ops, 1, NULL, 0, NULL) == RF_OK);
    RF_CHECK(!found(ix, 1));
    RF_CHECK(found(ix, 2));
    RF_CHECK(map_size_ok(ix));

    /* Checkpoint, then changes the checkpoint does not hold, then a crash. */
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    ops[0] = rec(10, 3, v[0], h[0], id[0]);
    ops[1] = tl_delete("c:650", "c");
    RF_REQUIRE(tl_apply(ix, ops, 2, NULL, 0, NULL) == RF_OK);
    rf__index_abandon(ix);
    ix = open_hnsw(dir);
    RF_CHECK_INT(ix->hkeys_filled, 0);
    RF_CHECK(found(ix, 3));
    RF_CHECK(!found(ix, 1010));
    RF_CHECK(!found(ix, 2));
    RF_CHECK(found(ix, 1400));
    RF_CHECK(map_size_ok(ix));
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);

    /* No checkpoint at all: the keys come with the records. */
    {
        char *cmd = rf_xasprintf("rm -f '%s'/*.ckpt '%s'/*.seg", dir, dir);
        RF_REQUIRE(system(cmd) == 0);
        free(cmd);
    }
    ix = open_hnsw(dir);
    RF_CHECK(found(ix, 3));
    RF_CHECK(found(ix, 1699));
    RF_CHECK(!found(ix, 2));
    RF_CHECK_INT(ix->hkeys_filled, 0);
    RF_CHECK(map_size_ok(ix));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static int file_magic_is(const char *path, const char *magic)
{
    char buf[8];
    FILE *fp = fopen(path, "rb");
    int ok = fp && fread(buf, 1, 8, fp) == 8 && memcmp(buf, magic, 8) == 0;
    if (fp)
        fclose(fp);
    return ok;
}

/* Checkpoint files of format 2 (written before the keys existed) are read, the keys come
 * from the store, and the next checkpoint writes every file, the FAISS segments' too, in
 * format 3, which the open after reads without the store. */
static void test_format2_upgrade(void)
{
    char *dir = rf_test_tmpdir("ixcv2"), *path;
    rf_index_t *ix = open_hnsw(dir);
    rf__index_snap_t *snap;
    uint32_t ann_id = 0;
    int64_t seq;
    __atomic_store_n(&rf__index_test_ckpt_v2, 1, __ATOMIC_RELAXED);
    load(ix, 700, 5000);
    rf_index_close(ix); /* its checkpoint is of format 2 */
    __atomic_store_n(&rf__index_test_ckpt_v2, 0, __ATOMIC_RELAXED);

    ix = open_hnsw(dir);
    RF_CHECK(ix->hkeys_filled == 700);
    snap = rf__index_snap_acquire(ix);
    for (size_t i = 0; i < snap->cnt; i++) {
        if (snap->v[i].seg->kind == RF__SEG_ANN) {
            ann_id = snap->v[i].seg->id;
            RF_CHECK(!__atomic_load_n(&snap->v[i].seg->persisted, __ATOMIC_RELAXED));
        }
    }
    seq = snap->pos.seq;
    rf__index_snap_release(snap);
    RF_REQUIRE(ann_id != 0);
    path = rf__index_seg_path(dir, ann_id);
    RF_CHECK(file_magic_is(path, "RFSEG002"));
    for (int t = 5000; t < 5700; t += 13)
        RF_CHECK(found(ix, t));
    RF_CHECK(map_size_ok(ix));
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    RF_CHECK(file_magic_is(path, "RFSEG003"));
    {
        char *mp = rf__index_ckpt_path(dir, seq);
        RF_CHECK(file_magic_is(mp, "RFIDX003"));
        free(mp);
    }
    rf__index_abandon(ix);

    ix = open_hnsw(dir);
    RF_CHECK_INT(ix->hkeys_filled, 0);
    for (int t = 5000; t < 5700; t += 13)
        RF_CHECK(found(ix, t));
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_hmap_model, test_lookups_and_recovery, test_format2_upgrade)
