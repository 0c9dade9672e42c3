/* test_index_concurrency.c - four threads search (with and without filters), read records
 * and status while one writer applies batches, seals segments and checkpoints (and the
 * checkpoint and maintenance threads rebuild, compact and checkpoint on their own).  Every
 * result must be internally consistent: each hit's score belongs to the version
 * returned, hits are ordered, no id repeats, and a record deleted for good never shows
 * up in a result that reflects the delete.  Covers INVARIANT(one-record-per-key) under
 * concurrency; meant to run clean under ASan and TSan.
 */
#include "index/index.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM      24
#define NIDS_MAX 2000
#define NGONE    20
#define BATCHES  250
#define NREADERS 4

static int nids = 300; /* ids the writer draws from */

typedef struct shared {
    rf_index_t *ix;
    atomic_int done;
    atomic_llong gone_seq; /* seq after the batch that deleted the "gone:" ids, or -1 */
    atomic_int failures;
    atomic_long searches;
} shared_t;

typedef struct reader {
    shared_t *sh;
    uint64_t seed;
} reader_t;

static void fail(shared_t *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(shared_t *sh, const char *fmt, ...)
{
    va_list ap;
    if (atomic_fetch_add(&sh->failures, 1) >= 10)
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Checks one result set; see the file comment. */
static void check_results(shared_t *sh, const float *q, const rf_index_results_t *res, int filtered)
{
    long long gone_seq = atomic_load(&sh->gone_seq);
    if (res->pos.seq != res->seq)
        fail(sh, "position seq %lld differs from result seq %lld\n", (long long)res->pos.seq,
             (long long)res->seq);
    for (size_t i = 0; i < res->cnt; i++) {
        const rf_index_hit_t *h = &res->hits[i];
        const char *at = strrchr(h->text, '@');
        float v[DIM];
        long long bn, id;
        if (i > 0 && h->score > res->hits[i - 1].score + 1e-6f)
            fail(sh, "%s: out of order (%f > %f)\n", h->id, (double)h->score,
                 (double)res->hits[i - 1].score);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(res->hits[j].id, h->id) == 0)
                fail(sh, "%s: repeated in one result\n", h->id);
        }
        if (filtered && strncmp(h->id, "r:", 2) != 0)
            fail(sh, "%s: does not satisfy the filter source=r\n", h->id);
        if (gone_seq >= 0 && res->seq >= gone_seq && strncmp(h->id, "gone:", 5) == 0)
            fail(sh, "%s: deleted record returned (seq %lld >= %lld)\n", h->id, (long long)res->seq,
                 gone_seq);
        if (!at || strncmp(h->text, h->id, (size_t)(at - h->text)) != 0 ||
            sscanf(at + 1, "%lld", &bn) != 1) {
            fail(sh, "%s: text \"%s\" does not belong to the id\n", h->id, h->text);
            continue;
        }
        id = strtoll(strchr(h->id, ':') + 1, NULL, 10);
        tl_vec_for((uint64_t)id + (h->id[0] == 'g' ? 100000u : 0u), (uint64_t)bn, DIM, v);
        if (fabsf(tl_dot(q, v, DIM) - h->score) > 1e-4f)
            fail(sh, "%s: score %f is not its version's %f\n", h->id, (double)h->score,
                 (double)tl_dot(q, v, DIM));
    }
}

static void *reader_main(void *arg)
{
    reader_t *rd = arg;
    shared_t *sh = rd->sh;
    uint64_t rng = rd->seed;
    while (!atomic_load(&sh->done)) {
        float q[DIM];
        rf_index_results_t res;
        rf_err_t err;
        const char *src[] = {"\"r\""};
        rf_index_cond_t c = {
            .field = "source", .kind = RF_INDEX_COND_EQ, .values = src, .value_cnt = 1};
        rf_index_filter_t f = {.conds = &c, .cond_cnt = 1};
        rf_index_query_t qq = {.vec = q, .k = 1 + (int)tl_below(&rng, 20), .min_score = -2};
        int filtered = tl_below(&rng, 3) == 0;
        tl_vec_rand(&rng, DIM, q);
        qq.filter = filtered ? &f : NULL;
        if (rf_index_query(sh->ix, &qq, &res, &err)) {
            fail(sh, "search: %s\n", err.msg);
            continue;
        }
        check_results(sh, q, &res, filtered);
        if (res.cnt && tl_below(&rng, 4) == 0) {
            char *js = NULL;
            rf_rc rc = rf_index_record_get(sh->ix, res.hits[0].id, &js, NULL);
            /* Deleted meanwhile is fine; anything else must be the record. */
            if (rc == RF_OK && !strstr(js, res.hits[0].id))
                fail(sh, "%s: record_get returned another record\n", res.hits[0].id);
            else if (rc != RF_OK && rc != RF_ENOTFOUND)
                fail(sh, "%s: record_get failed\n", res.hits[0].id);
            free(js);
        }
        if (tl_below(&rng, 16) == 0) {
            char *st = rf_index_status_json(sh->ix);
            if (!st || !strstr(st, "\"records\":"))
                fail(sh, "status: %s\n", st ? st : "NULL");
            free(st);
            (void)rf_index_offset_get(sh->ix, "t", 0);
            (void)rf_index_record_count(sh->ix);
        }
        rf_index_results_fini(&res);
        atomic_fetch_add(&sh->searches, 1);
    }
    return NULL;
}

static void writer_run(shared_t *sh)
{
    static char names[NIDS_MAX + NGONE][24], texts[NIDS_MAX + NGONE][40];
    static float vecs[NIDS_MAX + NGONE][DIM];
    static rf_index_op_t ops[NIDS_MAX + NGONE];
    uint64_t rng = 4242;
    for (int bn = 0; bn < BATCHES; bn++) {
        rf_index_offset_t off = {"t", 0, bn + 1};
        size_t n = 0;
        int64_t seq = 0;
        if (bn == 0) {
            for (int i = 0; i < NGONE; i++) {
                snprintf(names[n], sizeof(names[n]), "gone:%d", i);
                snprintf(texts[n], sizeof(texts[n]), "gone:%d@%d", i, bn);
                tl_vec_for(100000u + (uint64_t)i, (uint64_t)bn, DIM, vecs[n]);
                ops[n] = tl_upsert(names[n], "g", texts[n], vecs[n]);
                n++;
            }
        } else if (bn == 1) {
            for (int i = 0; i < NGONE; i++) {
                snprintf(names[n], sizeof(names[n]), "gone:%d", i);
                ops[n] = tl_delete(names[n], "g");
                n++;
            }
        }
        for (int j = 0; j < 12; j++) {
            int id = (int)tl_below(&rng, (uint32_t)nids);
            snprintf(names[n], sizeof(names[n]), "r:%d", id);
            if (tl_below(&rng, 5) == 0) {
                ops[n] = tl_delete(names[n], "r");
            } else {
                snprintf(texts[n], sizeof(texts[n]), "r:%d@%d", id, bn);
                tl_vec_for((uint64_t)id, (uint64_t)bn, DIM, vecs[n]);
                ops[n] = tl_upsert(names[n], "r", texts[n], vecs[n]);
            }
            n++;
        }
        if (bn % 50 == 49)
            ops[n++] = tl_truncate("r");
        RF_REQUIRE(tl_apply(sh->ix, ops, n, &off, 1, &seq) == RF_OK);
        if (bn == 1)
            atomic_store(&sh->gone_seq, seq);
        if (bn % 10 == 0)
            RF_CHECK(rf_index_checkpoint(sh->ix, NULL) == RF_OK);
        if (bn % 40 == 39)
            rf__index_vec_seal(sh->ix);
    }
}

static void run_concurrent(const rf_index_opts_t *opts)
{
    char *dir = rf_test_tmpdir("ixconc");
    static shared_t sh;
    rf_index_opts_t o = *opts;
    rf_err_t err = {0};
    pthread_t th[NREADERS];
    reader_t rd[NREADERS];
    rf_index_results_t res;
    float q[DIM];
    uint64_t rng = 1;
    o.dir = dir;
    o.dim = DIM;
    o.checkpoint_interval_ms = 2;
    sh.ix = NULL;
    if (rf_index_open(&o, &sh.ix, &err))
        fprintf(stderr, "open: %s\n", err.msg);
    RF_REQUIRE(sh.ix);
    atomic_init(&sh.done, 0);
    atomic_init(&sh.gone_seq, -1);
    atomic_init(&sh.failures, 0);
    atomic_init(&sh.searches, 0);
    for (int i = 0; i < NREADERS; i++) {
        rd[i].sh = &sh;
        rd[i].seed = 1000 + (uint64_t)i;
        RF_REQUIRE(pthread_create(&th[i], NULL, reader_main, &rd[i]) == 0);
    }
    writer_run(&sh);
    atomic_store(&sh.done, 1);
    for (int i = 0; i < NREADERS; i++)
        pthread_join(th[i], NULL);
    fprintf(stderr, "%ld searches during %d batches, %d failures\n", atomic_load(&sh.searches),
            BATCHES, atomic_load(&sh.failures));
    RF_CHECK_INT(atomic_load(&sh.failures), 0);
    RF_CHECK(atomic_load(&sh.searches) > 0);
    RF_CHECK(tl_vectors_match_store(sh.ix, dir));
    RF_CHECK(rf__index_maint_wait(sh.ix, 60000) == RF_OK);
    RF_CHECK(tl_vectors_match_store(sh.ix, dir));
    /* Quiescent: a search sees the whole store. */
    tl_vec_rand(&rng, DIM, q);
    RF_REQUIRE(rf_index_search(sh.ix, q, 10000, &res, NULL) == RF_OK);
    RF_CHECK_INT(res.cnt, rf_index_record_count(sh.ix));
    RF_CHECK_INT(res.seq, rf_index_seq(sh.ix));
    rf_index_results_fini(&res);
    rf_index_close(sh.ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* One flat segment, as small stores have. */
static void test_concurrent(void)
{
    rf_index_opts_t o = {0};
    nids = 300;
    run_concurrent(&o);
}

/* Small segments: seals, HNSW rebuilds and compactions while searches run. */
static void test_concurrent_segments(void)
{
    rf_index_opts_t o = {.segment_size = 300, .factory = "HNSW16", .compact_ratio = 0.2};
    nids = NIDS_MAX;
    run_concurrent(&o);
}

RF_TEST_MAIN(test_concurrent, test_concurrent_segments)
