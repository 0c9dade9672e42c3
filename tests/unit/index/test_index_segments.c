/* test_index_segments.c - property test of the segmented vector index against a
 * brute-force model: random interleavings of upserts, updates, deletes, seals, rebuilds
 * and compactions, checkpoints and restarts, and searches with and without filters.  With
 * index.factory "Flat" every result must be the model's exact top-k; with HNSW no result
 * may be a deleted or superseded version (its score must be its current vector's), k
 * results must come back whenever k records match, and recall against the model is
 * reported and checked loosely.  Covers INVARIANT(one-record-per-key) and
 * INVARIANT(index-is-a-view).
 */
#include "index/index.h"

#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <faiss/c_api/IndexIVF_c.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM 16

typedef struct mrec {
    int live;
    float v[DIM];
    int cat, price, tenant, tag;
} mrec_t;

typedef struct model {
    mrec_t *r;
    int n;
} model_t;

typedef struct mfilter {
    int kind; /* 0 none, 1 cat eq, 2 cat in, 3 price range, 4 tenant, 5 tag eq, 6 cat+price */
    int a, b;
} mfilter_t;

static int model_match(const mrec_t *r, const mfilter_t *f)
{
    switch (f->kind) {
    case 1:
        return r->cat == f->a;
    case 2:
        return r->cat == f->a || r->cat == f->b;
    case 3:
        return r->price >= f->a && r->price < f->b;
    case 4:
        return r->tenant == f->a;
    case 5:
        return r->tag == f->a || r->tag + 1 == f->a;
    case 6:
        return r->cat == f->a && r->price <= f->b;
    default:
        return 1;
    }
}

static double dot64(const float *a, const float *b)
{
    double s = 0;
    for (int i = 0; i < DIM; i++)
        s += (double)a[i] * b[i];
    return s;
}

typedef struct scored {
    double s;
    int id;
} scored_t;

static int scored_cmp(const void *a, const void *b)
{
    const scored_t *x = a, *y = b;
    return (x->s < y->s) - (x->s > y->s);
}

/* Builds the rf_index_filter_t for f; strings live in buf. */
typedef struct qfilter {
    rf_index_cond_t conds[2];
    const char *vals[2];
    char s[4][32];
    rf_index_filter_t f;
} qfilter_t;

static const rf_index_filter_t *qfilter_make(qfilter_t *q, const mfilter_t *f)
{
    memset(q, 0, sizeof(*q));
    q->f.conds = q->conds;
    switch (f->kind) {
    case 1:
    case 2:
        snprintf(q->s[0], sizeof(q->s[0]), "\"c%d\"", f->a);
        snprintf(q->s[1], sizeof(q->s[1]), "\"c%d\"", f->b);
        q->vals[0] = q->s[0];
        q->vals[1] = q->s[1];
        q->conds[0].field = "cat";
        q->conds[0].kind = f->kind == 1 ? RF_INDEX_COND_EQ : RF_INDEX_COND_IN;
        q->conds[0].values = q->vals;
        q->conds[0].value_cnt = f->kind == 1 ? 1 : 2;
        q->f.cond_cnt = 1;
        break;
    case 3:
        snprintf(q->s[0], sizeof(q->s[0]), "%d", f->a);
        snprintf(q->s[1], sizeof(q->s[1]), "%d", f->b);
        q->conds[0].field = "price";
        q->conds[0].kind = RF_INDEX_COND_RANGE;
        q->conds[0].lo = q->s[0];
        q->conds[0].hi = q->s[1];
        q->conds[0].hi_excl = 1;
        q->f.cond_cnt = 1;
        break;
    case 4:
        snprintf(q->s[0], sizeof(q->s[0]), "t%d", f->a);
        q->f.tenant = q->s[0];
        break;
    case 5:
        snprintf(q->s[0], sizeof(q->s[0]), "\"g%d\"", f->a);
        q->vals[0] = q->s[0];
        q->conds[0].field = "tags";
        q->conds[0].kind = RF_INDEX_COND_EQ;
        q->conds[0].values = q->vals;
        q->conds[0].value_cnt = 1;
        q->f.cond_cnt = 1;
        break;
    case 6:
        snprintf(q->s[0], sizeof(q->s[0]), "\"c%d\"", f->a);
        snprintf(q->s[1], sizeof(q->s[1]), "%d", f->b);
        q->vals[0] = q->s[0];
        q->conds[0].field = "cat";
        q->conds[0].kind = RF_INDEX_COND_EQ;
        q->conds[0].values = q->vals;
        q->conds[0].value_cnt = 1;
        q->conds[1].field = "price";
        q->conds[1].kind = RF_INDEX_COND_RANGE;
        q->conds[1].hi = q->s[1];
        q->f.cond_cnt = 2;
        break;
    default:
        return NULL;
    }
    return &q->f;
}

typedef struct run {
    const char *factory;
    int exact; /* 1: every result must equal the model's */
    int64_t seg_size;
    int max_id;
    int ops;
    double recall_min;
    int seal_every; /* 1 in seal_every seal steps really seals (few seals: big segments) */
} run_t;

static rf_index_t *open_run(const char *dir, const run_t *r)
{
    rf_index_opts_t o = {.dir = dir,
                         .dim = DIM,
                         .segment_size = r->seg_size,
                         .factory = r->factory,
                         .compact_ratio = 0.25,
                         .ef_search = 48,
                         .filter_exact_max = 300};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    rf_rc rc = rf_index_open(&o, &ix, &err);
    if (rc)
        fprintf(stderr, "open: %s\n", err.msg);
    RF_REQUIRE(rc == RF_OK);
    return ix;
}

/* Draws record id of the model anew and makes its upsert, with its strings in buf. */
typedef struct opbuf {
    char key[32], text[64], meta[160], tenant[8];
} opbuf_t;

static rf_index_op_t model_upsert(model_t *m, int id, uint64_t *st, opbuf_t *b)
{
    mrec_t *r = &m->r[id];
    rf_index_op_t op;
    tl_vec_rand(st, DIM, r->v);
    r->cat = (int)tl_below(st, 10);
    r->price = (int)tl_below(st, 1000);
    r->tenant = (int)tl_below(st, 3);
    r->tag = (int)tl_below(st, 20);
    r->live = 1;
    snprintf(b->key, sizeof(b->key), "k:%d", id);
    snprintf(b->text, sizeof(b->text), "text of %d", id);
    snprintf(b->meta, sizeof(b->meta),
             "{\"cat\":\"c%d\",\"price\":%d,\"tags\":[\"g%d\",\"g%d\"],\"n\":{}}", r->cat, r->price,
             r->tag, r->tag + 1);
    snprintf(b->tenant, sizeof(b->tenant), "t%d", r->tenant);
    op = tl_upsert(b->key, "src", b->text, r->v);
    op.metadata_json = b->meta;
    op.tenant = b->tenant;
    return op;
}

static void upsert(rf_index_t *ix, model_t *m, int id, uint64_t *st)
{
    opbuf_t b;
    rf_index_op_t op = model_upsert(m, id, st, &b);
    RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
}

/* One search checked against the model; adds to the recall counters. */
static void check_search(rf_index_t *ix, const model_t *m, const run_t *r, uint64_t *st,
                         long *found, long *wanted, int *fails)
{
    float q[DIM];
    mfilter_t mf;
    qfilter_t qf;
    rf_index_query_t query = {0};
    rf_index_results_t res;
    rf_err_t err = {0};
    scored_t *all = rf_xmalloc((size_t)m->n * sizeof(*all));
    int cnt = 0, k = 1 + (int)tl_below(st, 20), expect;
    tl_vec_rand(st, DIM, q);
    mf.kind = (int)tl_below(st, 7);
    mf.a = (int)tl_below(st, 10);
    mf.b = mf.kind == 3 ? mf.a * 100 + 1 + (int)tl_below(st, 300) : (int)tl_below(st, 10);
    if (mf.kind == 3)
        mf.a *= 100;
    if (mf.kind == 4)
        mf.a %= 3;
    if (mf.kind == 5)
        mf.a = (int)tl_below(st, 21);
    if (mf.kind == 6)
        mf.b = (int)tl_below(st, 1000);
    for (int i = 0; i < m->n; i++) {
        if (m->r[i].live && model_match(&m->r[i], &mf)) {
            all[cnt].s = dot64(q, m->r[i].v);
            all[cnt].id = i;
            cnt++;
        }
    }
    qsort(all, (size_t)cnt, sizeof(*all), scored_cmp);
    expect = cnt < k ? cnt : k;
    query.vec = q;
    query.k = k;
    query.filter = qfilter_make(&qf, &mf);
    query.min_score = -INFINITY;
    if (rf_index_query(ix, &query, &res, &err) != RF_OK) {
        fprintf(stderr, "query: %s\n", err.msg);
        (*fails)++;
        free(all);
        return;
    }
    if ((int)res.cnt != expect) {
        if (*fails < 10)
            fprintf(stderr, "filter %d: %zu results, %d expected (k=%d, matching %d)\n", mf.kind,
                    res.cnt, expect, k, cnt);
        (*fails)++;
    }
    if (res.seq != rf_index_seq(ix))
        (*fails)++;
    for (size_t i = 0; i < res.cnt; i++) {
        const rf_index_hit_t *h = &res.hits[i];
        int id = (int)strtol(h->id + 2, NULL, 10);
        if (id < 0 || id >= m->n || !m->r[id].live || !model_match(&m->r[id], &mf)) {
            if (*fails < 10)
                fprintf(stderr, "%s: deleted or not matching (filter %d)\n", h->id, mf.kind);
            (*fails)++;
            continue;
        }
        /* A stale version would carry the score of its old vector. */
        if (fabs(dot64(q, m->r[id].v) - h->score) > 1e-4) {
            if (*fails < 10)
                fprintf(stderr, "%s: score %f is not its current vector's %f\n", h->id,
                        (double)h->score, dot64(q, m->r[id].v));
            (*fails)++;
        }
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(res.hits[j].id, h->id))
                (*fails)++;
        }
        if (r->exact && fabs(all[i].s - h->score) > 1e-4) {
            if (*fails < 10)
                fprintf(stderr, "rank %zu: score %f, model %f (filter %d)\n", i, (double)h->score,
                        all[i].s, mf.kind);
            (*fails)++;
        }
        for (int j = 0; j < expect; j++) {
            if (all[j].id == id) {
                (*found)++;
                break;
            }
        }
    }
    *wanted += expect;
    rf_index_results_fini(&res);
    free(all);
}

/* Searches against the model: none may show a dead or stale version; with a label, the
 * share of the model's top-k found must reach 0.8 too. */
static void searches_ok(rf_index_t *ix, const model_t *m, const run_t *r, uint64_t *st, int n,
                        const char *label)
{
    long found = 0, wanted = 0;
    int fails = 0;
    for (int i = 0; i < n; i++)
        check_search(ix, m, r, st, &found, &wanted, &fails);
    RF_CHECK_INT(fails, 0);
    if (label) {
        RF_CHECK(wanted > 0 && (double)found / (double)wanted >= 0.8);
        fprintf(stderr, "%s: recall %.3f over %ld\n", label, (double)found / (double)wanted,
                wanted);
    }
}

static void property_run(const run_t *r)
{
    char *dir = rf_test_tmpdir("ixseg");
    model_t m;
    uint64_t st = 0x5eed0000u + (uint64_t)r->seg_size;
    rf_index_t *ix = open_run(dir, r);
    long found = 0, wanted = 0;
    int fails = 0, searches = 0, seals = 0, reopens = 0, waits = 0, ann = 0;
    char *status;
    m.n = r->max_id;
    m.r = rf_xcalloc((size_t)m.n, sizeof(*m.r));
    for (int op = 0; op < r->ops; op++) {
        uint32_t dice = tl_below(&st, 1000);
        int id = (int)tl_below(&st, (uint32_t)m.n);
        if (dice < 600) {
            upsert(ix, &m, id, &st);
        } else if (dice < 750) {
            char key[32];
            rf_index_op_t del;
            snprintf(key, sizeof(key), "k:%d", id);
            del = tl_delete(key, "src");
            RF_REQUIRE(tl_apply(ix, &del, 1, NULL, 0, NULL) == RF_OK);
            m.r[id].live = 0;
        } else if (dice < 960) {
            check_search(ix, &m, r, &st, &found, &wanted, &fails);
            searches++;
        } else if (dice < 975) {
            if (tl_below(&st, (uint32_t)r->seal_every) == 0) {
                rf__index_vec_seal(ix);
                seals++;
            }
        } else if (dice < 990) {
            /* Rebuilds and compactions finish before the next step. */
            RF_CHECK(rf__index_maint_wait(ix, 60000) == RF_OK);
            waits++;
        } else if (dice < 995) {
            RF_CHECK(rf_index_checkpoint(ix, NULL) == RF_OK);
        } else {
            if (dice & 1)
                rf_index_close(ix);
            else
                rf__index_abandon(ix);
            ix = open_run(dir, r);
            reopens++;
        }
    }
    RF_CHECK(rf__index_maint_wait(ix, 60000) == RF_OK);
    for (int i = 0; i < 50; i++) {
        check_search(ix, &m, r, &st, &found, &wanted, &fails);
        searches++;
    }
    RF_CHECK(tl_vectors_match_store(ix, dir));
    {
        /* Every HNSW segment, built here or loaded from a checkpoint, scores with
         * rf__index_dot; the others are not HNSW. */
        rf__index_snap_t *snap = rf__index_snap_acquire(ix);
        int hnsw = strncasecmp(r->factory, "HNSW", 4) == 0, simd = 0, stock = 0;
        for (size_t i = 0; i < snap->cnt; i++) {
            if (snap->v[i].seg->kind != RF__SEG_ANN)
                continue;
            ann++;
            simd += rf__index_hnsw_is_simd(snap->v[i].seg->ann) == 1;
            stock += rf__index_hnsw_is_simd(snap->v[i].seg->ann) == 0;
        }
        rf__index_snap_release(snap);
        RF_CHECK_INT(stock, 0);
        RF_CHECK(hnsw ? simd > 0 : simd == 0);
    }
    RF_CHECK(r->exact ? ann == 0 : ann > 0);
    status = rf_index_status_json(ix);
    RF_REQUIRE(status);
    RF_CHECK(strstr(status, "\"bytes_per_record\":0,") == NULL);
    RF_CHECK(strstr(status, "\"memory_bytes\":") != NULL);
    printf("%s: %d searches, %d seals, %d waits, %d reopens, %d ANN segments, recall %.3f, %d "
           "failures\n  %s\n",
           r->factory, searches, seals, waits, reopens, ann,
           wanted ? (double)found / (double)wanted : 1.0, fails, status);
    free(status);
    RF_CHECK_INT(fails, 0);
    RF_CHECK(wanted > 0 && (double)found / (double)wanted >= r->recall_min);
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* Every segment stays exact: results must be the model's top-k. */
static void test_flat_exact(void)
{
    run_t r = {"Flat", 1, 40, 400, 4000, 0.999, 1};
    property_run(&r);
}

/* Sealed segments become HNSW: never a dead or stale version, k results, good recall. */
static void test_hnsw(void)
{
    run_t r = {"HNSW16", 0, 1100, 3000, 9000, 0.85, 30};
    property_run(&r);
}

/* IVF segments trained on their own vectors. */
static void test_ivf(void)
{
    run_t r = {"IVF16,Flat", 0, 1100, 2500, 6000, 0.8, 30};
    property_run(&r);
}

/* A segment file with a flipped byte is refused by its hash: the manifest that names it is
 * skipped and the index is rebuilt from the store, with nothing lost. */
static void test_corrupt_segment_file(void)
{
    char *dir = rf_test_tmpdir("ixsegc"), *path;
    run_t r = {"HNSW16", 0, 300, 1000, 0, 0, 1};
    rf_index_t *ix = open_run(dir, &r);
    model_t m = {rf_xcalloc(1000, sizeof(mrec_t)), 1000};
    uint64_t st = 77;
    rf__index_snap_t *snap;
    uint32_t ann_id = 0;
    FILE *fp;
    long size;
    int c;
    for (int i = 0; i < 700; i++)
        upsert(ix, &m, i, &st);
    RF_REQUIRE(rf__index_maint_wait(ix, 60000) == RF_OK);
    snap = rf__index_snap_acquire(ix);
    for (size_t i = 0; i < snap->cnt; i++) {
        if (snap->v[i].seg->kind == RF__SEG_ANN)
            ann_id = snap->v[i].seg->id;
    }
    rf__index_snap_release(snap);
    RF_REQUIRE(ann_id != 0);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    rf__index_abandon(ix);
    path = rf__index_seg_path(dir, ann_id);
    fp = fopen(path, "r+b");
    RF_REQUIRE(fp);
    RF_REQUIRE(fseek(fp, 0, SEEK_END) == 0);
    size = ftell(fp);
    RF_REQUIRE(fseek(fp, size / 2, SEEK_SET) == 0);
    c = fgetc(fp);
    RF_REQUIRE(fseek(fp, size / 2, SEEK_SET) == 0);
    fputc(c ^ 0x20, fp);
    fclose(fp);
    ix = open_run(dir, &r);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    searches_ok(ix, &m, &r, &st, 30, NULL);
    rf_index_close(ix);
    free(path);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* Counts, in the current snapshot, the sealed views by what they are: flat, interim IVF,
 * the factory's index; and returns the id of the first interim one (0: none). */
static uint32_t view_kinds(rf_index_t *ix, int *flat, int *interim, int *factory)
{
    rf__index_snap_t *snap = rf__index_snap_acquire(ix);
    uint32_t first = 0;
    *flat = *interim = *factory = 0;
    for (size_t i = 0; i < snap->cnt; i++) {
        const rf__index_seg_t *seg = snap->v[i].seg;
        if (!snap->v[i].sealed)
            continue;
        if (seg->kind != RF__SEG_ANN) {
            (*flat)++;
        } else if (seg->interim) {
            RF_CHECK(faiss_IndexIVF_cast(seg->ann) != NULL);
            (*interim)++;
            if (!first)
                first = seg->id;
        } else {
            RF_CHECK(faiss_IndexIVF_cast(seg->ann) == NULL);
            (*factory)++;
        }
    }
    rf__index_snap_release(snap);
    return first;
}

/* The interim IVF indexes of sealed tails share one k-means: the first build trains it,
 * the next ones only assign their vectors (same centroids, hence the same qhash, also
 * after a restart, which reads each index's own copy), and searches over them stay
 * correct. */
static void test_interim_shared(void)
{
    char *dir = rf_test_tmpdir("ixshq");
    run_t r = {"HNSW16", 0, RF__INDEX_INTERIM_MIN + 100, 8000, 0, 0.9, 1};
    model_t m = {rf_xcalloc(8000, sizeof(mrec_t)), 8000};
    uint64_t st = 93, qh = 0;
    int flat, interim, factory, same = 0;
    rf_index_t *ix;
    rf__index_snap_t *snap;
    __atomic_store_n(&rf__index_test_keep_interim, 1, __ATOMIC_RELAXED);
    ix = open_run(dir, &r);
    for (int i = 0; i < 7000; i++)
        upsert(ix, &m, i, &st);
    RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(interim, 3);
    RF_CHECK_INT(factory, 0);
    RF_CHECK_INT(ix->ivfq_uses, 3); /* trained once, used by two more builds */
    RF_CHECK_INT(ix->ivfq_nlist, (RF__INDEX_INTERIM_MIN + 100) / 32);
    for (int round = 0; round < 2; round++) {
        snap = rf__index_snap_acquire(ix);
        same = 0;
        for (size_t i = 0; i < snap->cnt; i++) {
            const rf__index_seg_t *seg = snap->v[i].seg;
            if (seg->kind != RF__SEG_ANN || !seg->interim)
                continue;
            if (!qh)
                qh = seg->qhash;
            RF_CHECK(seg->qhash != 0);
            same += seg->qhash == qh;
        }
        rf__index_snap_release(snap);
        RF_CHECK_INT(same, 3);
        searches_ok(ix, &m, &r, &st, 60, round ? "shared centroids, reopened" : "shared centroids");
        if (!round) {
            rf_index_close(ix);
            ix = open_run(dir, &r);
            RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
        }
    }
    __atomic_store_n(&rf__index_test_keep_interim, 0, __ATOMIC_RELAXED);
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* A sealed segment with the slow HNSW factory is first an IVF index; it stays correct
 * (no dead or stale version, k results) through updates, deletes and a restart (the
 * checkpoint says it is interim), and is then rebuilt as HNSW. */
static void test_interim(void)
{
    char *dir = rf_test_tmpdir("ixint");
    run_t r = {"HNSW16", 0, RF__INDEX_INTERIM_MIN + 100, 3000, 0, 0, 1};
    model_t m = {rf_xcalloc(3000, sizeof(mrec_t)), 3000};
    uint64_t st = 91;
    int flat, interim, factory;
    rf_index_t *ix;
    __atomic_store_n(&rf__index_test_keep_interim, 1, __ATOMIC_RELAXED);
    ix = open_run(dir, &r);
    for (int i = 0; i < 2600; i++)
        upsert(ix, &m, i, &st);
    RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(interim, 1);
    RF_CHECK_INT(factory, 0);
    for (int i = 0; i < 300; i++) {
        int id = (int)tl_below(&st, 2600);
        if (i % 3 == 0) {
            rf_index_op_t op;
            char key[32];
            snprintf(key, sizeof(key), "k:%d", id);
            op = tl_delete(key, "src");
            RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
            m.r[id].live = 0;
        } else {
            upsert(ix, &m, id, &st);
        }
    }
    searches_ok(ix, &m, &r, &st, 60, NULL);
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    rf_index_close(ix);

    ix = open_run(dir, &r);
    RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(interim, 1);
    RF_CHECK_INT(factory, 0);
    __atomic_store_n(&rf__index_test_keep_interim, 0, __ATOMIC_RELAXED);
    rf__index_maint_kick(ix);
    RF_REQUIRE(rf__index_maint_wait(ix, 120000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(interim, 0);
    RF_CHECK_INT(factory, 1);
    searches_ok(ix, &m, &r, &st, 60, "interim");
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* Polls (up to 60 s) until the snapshot shows `interim` interim views and no sealed flat
 * one; 1 when it did. */
static int wait_interim(rf_index_t *ix, int want)
{
    int64_t deadline = rf_mono_ms() + 60000;
    int flat, interim, factory;
    for (;;) {
        view_kinds(ix, &flat, &interim, &factory);
        if ((flat == 0 && interim == want) || rf_mono_ms() > deadline)
            return flat == 0 && interim == want;
        rf_sleep_ms(5);
    }
}

/* A slow build (HNSW) never holds up the quick ones: while the slow builder is held with
 * the upgrade of one segment, a second sealed segment still gets its interim IVF index,
 * and a compaction of an interim segment builds the quick index again, not HNSW.  Searches
 * stay correct throughout; released, the builder upgrades both. */
static void test_slow_builder(void)
{
    char *dir = rf_test_tmpdir("ixslow");
    run_t r = {"HNSW16", 0, 4000, 9000, 0, 0, 1};
    model_t m = {rf_xcalloc(9000, sizeof(mrec_t)), 9000};
    uint64_t st = 7;
    int flat, interim, factory;
    uint32_t first, second;
    rf_index_t *ix = open_run(dir, &r);
    rf__index_test_slow_hold(ix, 1);
    /* 4000 sealed: the first interim segment, whose upgrade the builder takes and holds. */
    for (int i = 0; i < 4200; i++)
        upsert(ix, &m, i, &st);
    RF_REQUIRE(wait_interim(ix, 1));
    first = view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK(first != 0);
    /* The second sealed segment is built as IVF by the maintenance thread meanwhile. */
    for (int i = 4200; i < 8200; i++)
        upsert(ix, &m, i, &st);
    RF_REQUIRE(wait_interim(ix, 2));
    RF_CHECK_INT(factory, 0);
    /* Compaction of the second (the first is the builder's): deletes past the ratio,
     * leaving enough live vectors for an interim index. */
    for (int i = 4000; i < 5100; i++) {
        char key[32];
        rf_index_op_t op;
        snprintf(key, sizeof(key), "k:%d", i);
        op = tl_delete(key, "src");
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        m.r[i].live = 0;
    }
    {
        int64_t deadline = rf_mono_ms() + 60000;
        for (;;) {
            rf__index_snap_t *snap = rf__index_snap_acquire(ix);
            int compacted = 0;
            for (size_t i = 0; i < snap->cnt; i++)
                compacted |= snap->v[i].sealed && snap->v[i].seg->kind == RF__SEG_ANN &&
                             snap->v[i].seg->interim && snap->v[i].n < 4000;
            rf__index_snap_release(snap);
            if (compacted || rf_mono_ms() > deadline) {
                RF_CHECK(compacted);
                break;
            }
            rf_sleep_ms(5);
        }
    }
    second = view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(second, first); /* the held upgrade has not replaced the first */
    RF_CHECK_INT(interim, 2);
    RF_CHECK_INT(factory, 0);
    searches_ok(ix, &m, &r, &st, 60, NULL);

    rf__index_test_slow_hold(ix, 0);
    RF_REQUIRE(rf__index_maint_wait(ix, 300000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(interim, 0);
    RF_CHECK_INT(factory, 2);
    searches_ok(ix, &m, &r, &st, 60, "slow builder");
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* Upserts ids [from, to) in batches of 500 (one transaction each). */
static void upsert_many(rf_index_t *ix, model_t *m, int from, int to, uint64_t *st)
{
    enum { B = 500 };
    static opbuf_t buf[B];
    rf_index_op_t ops[B];
    for (int at = from; at < to; at += B) {
        int n = to - at < B ? to - at : B;
        for (int i = 0; i < n; i++)
            ops[i] = model_upsert(m, at + i, st, &buf[i]);
        RF_REQUIRE(tl_apply(ix, ops, (size_t)n, NULL, 0, NULL) == RF_OK);
    }
}

/* With the slow HNSW factory the tail is sealed at RF__INDEX_TAIL_SLOW vectors, each sealed
 * tail becomes an interim IVF index, and the slow builder merges interim indexes into one
 * factory segment of up to segment_size (waiting for half of it, or two tails' worth).  Deletes and
 * updates that arrive while the merge is built are carried into the merged segment; searches never
 * show a dead or stale version, before, during and after, and after a restart. */
static void test_merge(void)
{
    char *dir = rf_test_tmpdir("ixmerge");
    const int tail = RF__INDEX_TAIL_SLOW;
    run_t r = {"HNSW16", 0, 2 * tail + 2000, 3 * tail + 500, 0, 0, 1};
    model_t m = {rf_xcalloc((size_t)r.max_id, sizeof(mrec_t)), r.max_id};
    uint64_t st = 11;
    int flat, interim, factory;
    rf_index_t *ix = open_run(dir, &r);
    rf__index_test_slow_hold(ix, 1);
    upsert_many(ix, &m, 0, 3 * tail + 100, &st);
    RF_REQUIRE(wait_interim(ix, 3));
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(factory, 0);
    /* The first two (2 * tail <= segment_size) are merged; the third waits for more.
     * Deletes and updates hit both (ids up to 11,100). */
    for (int i = 0; i < 300; i++) {
        char key[32];
        rf_index_op_t op;
        snprintf(key, sizeof(key), "k:%d", i * 37);
        op = tl_delete(key, "src");
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        m.r[i * 37].live = 0;
        upsert(ix, &m, i * 37 + 3, &st);
    }
    searches_ok(ix, &m, &r, &st, 40, NULL);
    rf__index_test_slow_hold(ix, 0);
    RF_REQUIRE(rf__index_maint_wait(ix, 300000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(factory, 1);
    RF_CHECK_INT(interim, 1);
    {
        rf__index_snap_t *snap = rf__index_snap_acquire(ix);
        int seen = 0;
        for (size_t i = 0; i < snap->cnt; i++) {
            const rf__index_view_t *v = &snap->v[i];
            if (v->seg->kind != RF__SEG_ANN || v->seg->interim)
                continue;
            seen = 1;
            RF_CHECK_INT((long long)v->n, 2 * tail);
            RF_CHECK_INT((long long)v->live_n, 2 * tail - 600);
        }
        RF_CHECK(seen);
        rf__index_snap_release(snap);
    }
    searches_ok(ix, &m, &r, &st, 60, NULL);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    RF_REQUIRE(rf_index_checkpoint(ix, NULL) == RF_OK);
    rf_index_close(ix);

    ix = open_run(dir, &r);
    RF_REQUIRE(rf__index_maint_wait(ix, 300000) == RF_OK);
    view_kinds(ix, &flat, &interim, &factory);
    RF_CHECK_INT(factory, 1);
    RF_CHECK_INT(interim, 1);
    searches_ok(ix, &m, &r, &st, 60, "merge");
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* IVF-Flat views are scanned by index_search.c itself (AVX2 inner products over FAISS's
 * lists): the same answers as FAISS's own search of them, with and without deletes and
 * filters, and recognised as IVF-Flat only when they are (HNSW is not). */
static void test_ivf_scan(void)
{
    char *dir = rf_test_tmpdir("ixivfs");
    run_t r = {"IVF32,Flat", 0, 2000, 2600, 0, 0, 1};
    model_t m = {rf_xcalloc(2600, sizeof(mrec_t)), 2600};
    uint64_t st = 5;
    int ivf_views = 0, same = 0, queries = 0, floats_differ = 0;
    int64_t scanned = __atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED);
    rf_index_t *ix = open_run(dir, &r);
    rf__index_snap_t *snap;
    upsert_many(ix, &m, 0, 2500, &st);
    for (int i = 0; i < 2000; i += 9) {
        char key[32];
        rf_index_op_t op;
        snprintf(key, sizeof(key), "k:%d", i);
        op = tl_delete(key, "src");
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        m.r[i].live = 0;
    }
    RF_REQUIRE(rf__index_maint_wait(ix, 60000) == RF_OK);
    snap = rf__index_snap_acquire(ix);
    for (size_t i = 0; i < snap->cnt; i++) {
        size_t nlist;
        const float *cent;
        if (snap->v[i].seg->kind == RF__SEG_ANN &&
            rf__index_ivf_flat(snap->v[i].seg->ann, &nlist, &cent)) {
            ivf_views++;
            RF_CHECK_INT((long long)nlist, 32);
            /* Its lists' codes, one per vector (index_sq.c). */
            RF_CHECK(snap->v[i].seg->ivf_codes != NULL);
            RF_CHECK_INT((long long)snap->v[i].seg->ivf_off[nlist],
                         (long long)faiss_Index_ntotal(snap->v[i].seg->ann));
        }
    }
    rf__index_snap_release(snap);
    RF_REQUIRE(ivf_views == 1);
    for (int qi = 0; qi < 200; qi++) {
        float q[DIM];
        const char *cat[1];
        char cbuf[8];
        rf_index_cond_t c = {
            .field = "cat", .kind = RF_INDEX_COND_EQ, .values = cat, .value_cnt = 1};
        rf_index_filter_t f = {.conds = &c, .cond_cnt = 1};
        rf_index_query_t query = {.vec = q, .k = 10, .min_score = -INFINITY};
        rf_index_results_t a, b, c2;
        tl_vec_rand(&st, DIM, q);
        snprintf(cbuf, sizeof(cbuf), "\"c%d\"", qi % 10);
        cat[0] = cbuf;
        if (qi % 2)
            query.filter = &f;
        RF_REQUIRE(rf_index_query(ix, &query, &a, NULL) == RF_OK);
        __atomic_store_n(&rf__index_test_faiss_ivf, 1, __ATOMIC_RELAXED);
        RF_REQUIRE(rf_index_query(ix, &query, &b, NULL) == RF_OK);
        __atomic_store_n(&rf__index_test_faiss_ivf, 0, __ATOMIC_RELAXED);
        /* The scan through the codes and the scan of the floats alone: bit for bit. */
        __atomic_store_n(&rf__index_test_sq_off, 1, __ATOMIC_RELAXED);
        RF_REQUIRE(rf_index_query(ix, &query, &c2, NULL) == RF_OK);
        __atomic_store_n(&rf__index_test_sq_off, 0, __ATOMIC_RELAXED);
        floats_differ += a.cnt != c2.cnt;
        for (size_t i = 0; i < a.cnt && i < c2.cnt; i++)
            floats_differ += strcmp(a.hits[i].id, c2.hits[i].id) != 0 ||
                             memcmp(&a.hits[i].score, &c2.hits[i].score, sizeof(float)) != 0;
        rf_index_results_fini(&c2);
        RF_CHECK_INT((long long)a.cnt, (long long)b.cnt);
        if (a.cnt == b.cnt) {
            int ids = 1;
            for (size_t i = 0; i < a.cnt; i++) {
                RF_CHECK(fabsf(a.hits[i].score - b.hits[i].score) < 1e-4f);
                ids &= strcmp(a.hits[i].id, b.hits[i].id) == 0;
                RF_CHECK(m.r[strtol(a.hits[i].id + 2, NULL, 10)].live);
            }
            same += ids;
        }
        queries++;
        rf_index_results_fini(&a);
        rf_index_results_fini(&b);
    }
    /* Equal scores may order two ids differently; never more than a few queries. */
    RF_CHECK(same >= queries - 4);
    RF_CHECK_INT(floats_differ, 0);
    /* 2,500 upserts on a 2,000 segment: the IVF lists and the flat tail went through codes. */
    RF_CHECK(__atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED) - scanned > 200 * 500);
    fprintf(stderr, "ivf scan: %d of %d answers the same as FAISS's\n", same, queries);
    rf_index_close(ix);
    free(m.r);
    rf_test_rmtree(dir);
    free(dir);
}

/* Bad filters and options are refused with a precise message. */
static void test_refusals(void)
{
    char *dir = rf_test_tmpdir("ixref");
    rf_index_opts_t o = {.dir = dir, .dim = DIM, .factory = "NoSuchIndex42"};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    float q[DIM] = {1};
    const char *bad[] = {"{not json"};
    rf_index_cond_t c = {.field = "cat", .kind = RF_INDEX_COND_EQ, .values = bad, .value_cnt = 1};
    rf_index_filter_t f = {.conds = &c, .cond_cnt = 1};
    rf_index_query_t query = {.vec = q, .k = 3, .filter = &f, .min_score = -INFINITY};
    rf_index_results_t res;
    RF_CHECK(rf_index_open(&o, &ix, &err) == RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "NoSuchIndex42") != NULL);
    o.factory = "PQ4";
    RF_CHECK(rf_index_open(&o, &ix, &err) == RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "HNSW or IVF") != NULL);
    o.factory = NULL;
    o.segment_size = 3;
    RF_CHECK(rf_index_open(&o, &ix, &err) == RF_ECONFIG);
    o.segment_size = 0;
    o.work_nice = 20;
    RF_CHECK(rf_index_open(&o, &ix, &err) == RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "nice 20: must be 0..19") != NULL);
    o.work_nice = 0;
    ix = open_run(dir, &(run_t){"Flat", 1, 64, 1, 1, 0, 1});
    RF_CHECK(rf_index_query(ix, &query, &res, &err) == RF_EINVAL);
    RF_CHECK(strstr(err.msg, "not JSON") != NULL);
    c.kind = RF_INDEX_COND_RANGE;
    c.lo = "1";
    c.hi = "\"z\"";
    RF_CHECK(rf_index_query(ix, &query, &res, &err) == RF_EINVAL);
    RF_CHECK(strstr(err.msg, "two numbers or two strings") != NULL);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* Without CPUs of its own, the maintenance thread runs at work_nice; the thread that
 * opened the index keeps its priority. */
/* The id a thread of the index publishes once its priority is set (fails after 10 s). */
static pid_t wait_tid(const pid_t *at)
{
    pid_t tid;
    for (int64_t end = rf_mono_ms() + 10000;
         !(tid = __atomic_load_n(at, __ATOMIC_ACQUIRE)) && rf_mono_ms() < end;)
        rf_sleep_ms(1);
    RF_REQUIRE(tid > 0);
    return tid;
}

#ifndef SCHED_IDLE
#define SCHED_IDLE 5 /* declared only with _GNU_SOURCE; Linux's ABI */
#endif

/* The tid of this process's thread named comm, 0 when there is none. */
static pid_t tid_named(const char *comm)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    pid_t tid = 0;
    RF_REQUIRE(d != NULL);
    while (!tid && (e = readdir(d))) {
        char path[300], name[32] = {0};
        FILE *f;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        if (!(f = fopen(path, "r")))
            continue;
        if (fgets(name, sizeof(name), f) && (name[strcspn(name, "\n")] = 0, !strcmp(name, comm)))
            tid = (pid_t)strtol(e->d_name, NULL, 10);
        fclose(f);
    }
    closedir(d);
    return tid;
}

/* Polls (up to 10 s) until the WAL thread runs with this policy and nice value. */
static int wal_sched_is(int policy, int nice)
{
    for (int64_t end = rf_mono_ms() + 10000; rf_mono_ms() < end; rf_sleep_ms(2)) {
        pid_t tid = tid_named("rf-index-wal");
        if (tid && sched_getscheduler(tid) == policy &&
            (nice > 19 || getpriority(PRIO_PROCESS, (id_t)tid) == nice))
            return 1;
    }
    return 0;
}

static void test_work_nice(void)
{
    char *dir = rf_test_tmpdir("ixnice");
    rf_index_opts_t o = {.dir = dir, .dim = DIM, .work_nice = 7};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    int before = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    RF_REQUIRE(rf_index_open(&o, &ix, &err) == RF_OK);
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)wait_tid(&ix->maint_tid)), 7);
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)wait_tid(&ix->reaper_tid)), 7);
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), before);
    /* On any CPU, the WAL thread takes only idle time. */
    RF_CHECK(wal_sched_is(SCHED_IDLE, 99));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* Every thread the index starts (maintenance, checkpoint, reaper, slow builder, WAL
 * checkpointer) runs on work_cpus; the opener keeps its CPUs and its priority. */
static void test_work_cpus(void)
{
    static const char *const names[] = {"rf-index-maint", "rf-index-ckpt", "rf-index-free",
                                        "rf-index-build", "rf-index-wal"};
    char *dir = rf_test_tmpdir("ixcpus");
    rf_index_opts_t o = {.dir = dir, .dim = DIM, .checkpoint_interval_ms = 60000, .work_nice = 7};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    rf_cpus_t all, mine;
    int first = -1, found[5] = {0};
    rf_cpus_current(&all);
    RF_REQUIRE(all.cnt > 0);
    for (int c = 0; c < RF_CPUS_MAX && first < 0; c++)
        if (rf_cpus_has(&all, c))
            first = c;
    rf_cpus_add(&o.work_cpus, first);
    RF_REQUIRE(rf_index_open(&o, &ix, &err) == RF_OK);
    wait_tid(&ix->maint_tid);
    wait_tid(&ix->reaper_tid);
    for (int64_t end = rf_mono_ms() + 10000; rf_mono_ms() < end;) {
        DIR *d = opendir("/proc/self/task");
        struct dirent *e;
        int done = 1;
        RF_REQUIRE(d != NULL);
        memset(found, 0, sizeof(found));
        while ((e = readdir(d))) {
            char path[300], comm[32] = {0};
            FILE *f;
            rf_cpus_t c;
            if (e->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
            if (!(f = fopen(path, "r")))
                continue;
            if (!fgets(comm, sizeof(comm), f))
                comm[0] = 0;
            fclose(f);
            comm[strcspn(comm, "\n")] = 0;
            for (int i = 0; i < 5; i++) {
                if (strcmp(comm, names[i]))
                    continue;
                rf_cpus_of((int)strtol(e->d_name, NULL, 10), &c);
                if (c.cnt == 1 && rf_cpus_has(&c, first))
                    found[i] = 1;
                else
                    done = 0;
            }
        }
        closedir(d);
        for (int i = 0; i < 5; i++)
            done &= found[i];
        if (done)
            break;
        rf_sleep_ms(5);
    }
    for (int i = 0; i < 5; i++) {
        if (!found[i])
            fprintf(stderr, "%s: not on CPU %d alone\n", names[i], first);
        RF_CHECK(found[i]);
    }
    /* On CPUs of its own, the WAL thread runs at nice 19, ahead of the SCHED_IDLE builder;
     * the maintenance thread at nice 19 too, behind the writer; the others at work_nice. */
    RF_CHECK(wal_sched_is(SCHED_OTHER, 19));
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)wait_tid(&ix->maint_tid)), 19);
    RF_CHECK_INT(sched_getscheduler(wait_tid(&ix->maint_tid)), SCHED_OTHER);
    RF_CHECK_INT(getpriority(PRIO_PROCESS, (id_t)wait_tid(&ix->reaper_tid)), 7);
    rf_cpus_current(&mine);
    RF_CHECK_INT(mine.cnt, all.cnt);
    RF_CHECK(!memcmp(mine.bits, all.bits, sizeof(all.bits)));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* A snapshot that a search releases last is freed by the reaper thread, not by the search;
 * and SQLite keeps no allocation statistics, whose process-wide mutex searches would share
 * with the writer. */
static void test_reaper(void)
{
    char *dir = rf_test_tmpdir("ixreap");
    rf_index_t *ix = tl_open(dir, DIM, 0);
    float v[DIM];
    rf_index_op_t op;
    rf__index_snap_t *held, *now;
    rf_index_query_t q = {.vec = v, .k = 2, .min_score = -2};
    rf_index_results_t res;
    rf_err_t err = {0};
    int64_t before;
    tl_vec_for(1, 1, DIM, v);
    op = tl_upsert("a", "s", "text a", v);
    RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    held = rf__index_snap_acquire(ix);
    RF_REQUIRE(held != NULL);
    before = __atomic_load_n(&ix->reaped, __ATOMIC_ACQUIRE);
    op = tl_upsert("b", "s", "text b", v);
    RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    now = rf__index_snap_acquire(ix);
    RF_CHECK(now != held); /* the write published another: `held` is ours alone */
    rf__index_snap_drop(ix, now);
    RF_CHECK_INT(__atomic_load_n(&ix->reaped, __ATOMIC_ACQUIRE), before);
    rf__index_snap_drop(ix, held);
    for (int64_t end = rf_mono_ms() + 10000;
         __atomic_load_n(&ix->reaped, __ATOMIC_ACQUIRE) == before && rf_mono_ms() < end;)
        rf_sleep_ms(1);
    RF_CHECK_INT(__atomic_load_n(&ix->reaped, __ATOMIC_ACQUIRE), before + 1);
    RF_CHECK(__atomic_load_n(&ix->reaper_tid, __ATOMIC_ACQUIRE) != (pid_t)syscall(SYS_gettid));
    /* A search still finds both, and what it drops goes the same way. */
    RF_REQUIRE(rf_index_query(ix, &q, &res, &err) == RF_OK);
    RF_CHECK_INT(res.cnt, 2);
    rf_index_results_fini(&res);
    RF_CHECK_INT(sqlite3_memory_used(), 0);
    rf_index_close(ix); /* frees what is left on the stack: ASan reports a leak otherwise */
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_reaper, test_interim_shared, test_refusals, test_work_nice, test_work_cpus,
             test_corrupt_segment_file, test_flat_exact, test_hnsw, test_ivf, test_interim,
             test_slow_builder, test_merge, test_ivf_scan)
