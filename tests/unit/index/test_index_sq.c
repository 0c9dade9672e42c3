/* test_index_sq.c - the flat segments' 8-bit codes (index_sq.c): the integer dot product
 * is the same with AVX2 and without, the bounds always hold rf__index_dot's score, and a
 * search that prunes with them returns exactly what the full float scan returns, ties
 * and near-ties included.
 */
#include "index/index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

static const int dims[] = {1, 8, 15, 16, 17, 31, 32, 33, 100, 384, 1000, 1536};
#define NDIMS ((int)(sizeof(dims) / sizeof(dims[0])))

/* The AVX2 sum is the plain sum, for every length and the extreme values. */
static void test_dot_same(void)
{
    uint64_t st = 11;
    for (int di = 0; di < NDIMS; di++) {
        int dim = dims[di];
        int16_t *q = rf_xmalloc((size_t)dim * sizeof(*q));
        int8_t *c = rf_xmalloc((size_t)dim);
        for (int round = 0; round < 50; round++) {
            int64_t want = 0;
            for (int i = 0; i < dim; i++) {
                q[i] = (int16_t)((int)tl_below(&st, 2 * 32767 + 1) - 32767);
                c[i] = (int8_t)((int)tl_below(&st, 255) - 127);
                if (round == 0) { /* the largest sum the scales allow at 384 dims */
                    q[i] = 32767;
                    c[i] = 127;
                }
                want += (int64_t)q[i] * c[i];
            }
            if (want > INT32_MAX || want < INT32_MIN)
                continue;
            RF_CHECK_INT(rf__index_sq_dot_ref(q, c, dim), want);
            RF_CHECK_INT(rf__index_sq_dot(q, c, dim), want);
        }
        free(q);
        free(c);
    }
}

/* Vectors of many shapes: unit, scaled up and down, one spike, constant, zero, sparse,
 * halfway between codes, subnormal. */
static void shape(uint64_t *st, int kind, int dim, float *x)
{
    tl_vec_rand(st, dim, x);
    switch (kind) {
    case 1:
        for (int i = 0; i < dim; i++)
            x[i] *= 1e-6f;
        break;
    case 2:
        for (int i = 0; i < dim; i++)
            x[i] *= 1e6f;
        break;
    case 3:
        x[tl_below(st, (uint32_t)dim)] = 40.0f; /* the others round to 0 */
        break;
    case 4:
        for (int i = 0; i < dim; i++)
            x[i] = 0.25f;
        break;
    case 5:
        memset(x, 0, (size_t)dim * sizeof(float));
        break;
    case 6:
        for (int i = 0; i < dim; i++)
            if (tl_below(st, 8))
                x[i] = 0.0f;
        break;
    case 8: /* subnormal */
        for (int i = 0; i < dim; i++)
            x[i] *= 1e-40f;
        break;
    case 7: /* halfway between two codes */
        for (int i = 0; i < dim; i++)
            x[i] = (float)((int)tl_below(st, 255) - 127) + 0.5f;
        x[0] = 127.0f;
        break;
    default:
        break;
    }
}

static void test_bounds_hold(void)
{
    uint64_t st = 12;
    long pairs = 0;
    double widest_unit = 0;
    for (int di = 0; di < NDIMS; di++) {
        int dim = dims[di];
        float *x = rf_xmalloc((size_t)dim * sizeof(float)), *q = rf_xmalloc((size_t)dim * 4);
        int8_t *codes = rf_xmalloc((size_t)dim);
        for (int qk = 0; qk < 9; qk++) {
            rf__index_sqq_t qq = {0};
            shape(&st, qk, dim, q);
            rf__index_sq_query_init(&qq, q, dim);
            for (int xk = 0; xk < 9; xk++) {
                for (int rep = 0; rep < 6; rep++) {
                    rf__index_sqm_t m;
                    double lo, hi;
                    float s;
                    shape(&st, xk, dim, x);
                    rf__index_sq_encode(x, dim, codes, &m);
                    rf__index_sq_bounds(&qq, codes, &m, &lo, &hi);
                    s = rf__index_dot(q, x, dim);
                    if (!(lo <= (double)s && (double)s <= hi)) {
                        fprintf(stderr, "dim %d, query %d, vector %d: %.9g not in [%.9g, %.9g]\n",
                                dim, qk, xk, (double)s, lo, hi);
                        RF_CHECK(0);
                    }
                    if (qk == 0 && xk == 0 && dim == 384 && hi - lo > widest_unit)
                        widest_unit = hi - lo;
                    pairs++;
                }
            }
            rf__index_sq_query_fini(&qq);
        }
        free(x);
        free(q);
        free(codes);
    }
    RF_CHECK(pairs == (long)NDIMS * 9 * 9 * 6);
    /* Useful, not only true: unit vectors of 384 dims score within a narrow band. */
    RF_CHECK(widest_unit > 0 && widest_unit < 0.05);
}

/* The largest dimension: the query's scale keeps the integer sum within int32. */
static void test_bounds_widest_dim(void)
{
    int dim = 65536;
    float *x = rf_xmalloc((size_t)dim * sizeof(float)), *q = rf_xmalloc((size_t)dim * 4);
    int8_t *codes = rf_xmalloc((size_t)dim);
    rf__index_sqq_t qq = {0};
    rf__index_sqm_t m;
    double lo, hi;
    float s;
    for (int i = 0; i < dim; i++)
        x[i] = q[i] = 1.0f;
    rf__index_sq_query_init(&qq, q, dim);
    rf__index_sq_encode(x, dim, codes, &m);
    rf__index_sq_bounds(&qq, codes, &m, &lo, &hi);
    s = rf__index_dot(q, x, dim);
    RF_CHECK(lo <= (double)s && (double)s <= hi);
    /* 65536, within rf__index_dot's own rounding of a 65536-term sum (about 0.8%) */
    RF_CHECK(hi - lo < 0.02 * 65536);
    rf__index_sq_query_fini(&qq);
    free(x);
    free(q);
    free(codes);
}

#define SDIM   32
#define BASES  40
#define COPIES 25

/* Results of one search, as (id, score) pairs. */
static size_t search(rf_index_t *ix, const float *q, int k, const char *cat, char ids[][24],
                     float *scores)
{
    const char *vals[1] = {cat};
    rf_index_cond_t c = {.field = "cat", .kind = RF_INDEX_COND_EQ, .values = vals, .value_cnt = 1};
    rf_index_filter_t f = {.conds = &c, .cond_cnt = 1};
    rf_index_query_t query = {.vec = q, .k = k, .min_score = -INFINITY};
    rf_index_results_t res;
    rf_err_t err = {0};
    size_t n;
    query.filter = cat ? &f : NULL;
    RF_REQUIRE(rf_index_query(ix, &query, &res, &err) == RF_OK);
    n = res.cnt;
    for (size_t i = 0; i < n; i++) {
        snprintf(ids[i], 24, "%s", res.hits[i].id);
        scores[i] = res.hits[i].score;
    }
    rf_index_results_fini(&res);
    return n;
}

/* Clusters of near-copies (closer than a code step) and exact copies: the bounds of a
 * cluster overlap, so the search must score them from their floats and break ties by
 * id, as the full scan does.  Compared bit for bit with the scan of the floats alone. */
static void test_search_same(void)
{
    char *dir = rf_test_tmpdir("ixsq");
    rf_index_opts_t o = {.dir = dir,
                         .dim = SDIM,
                         .segment_size = 600,
                         .factory = "Flat",
                         .filter_exact_max = 100000};
    rf_index_t *ix = NULL;
    rf_err_t err = {0};
    float base[BASES][SDIM], v[SDIM], q[SDIM];
    uint64_t st = 13;
    int64_t scanned0, rescored0, scanned1, rescored1;
    long compared = 0, differ = 0, sum_k = 0;
    RF_REQUIRE(rf_index_open(&o, &ix, &err) == RF_OK);
    for (int b = 0; b < BASES; b++) {
        tl_vec_rand(&st, SDIM, base[b]);
        for (int c = 0; c < COPIES; c++) {
            char id[24], meta[40];
            rf_index_op_t op;
            memcpy(v, base[b], sizeof(v));
            if (c % 5) /* one in five an exact copy */
                for (int i = 0; i < SDIM; i++)
                    v[i] += ((float)tl_below(&st, 2001) - 1000.0f) * 1e-7f;
            snprintf(id, sizeof(id), "b%d-%d", b, c);
            snprintf(meta, sizeof(meta), "{\"cat\":\"c%d\"}", c % 3);
            op = tl_upsert(id, "src", id, v);
            op.metadata_json = meta;
            RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        }
    }
    RF_REQUIRE(rf__index_maint_wait(ix, 60000) == RF_OK);
    scanned0 = __atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED);
    rescored0 = __atomic_load_n(&rf__index_sq_rescored, __ATOMIC_RELAXED);
    for (int round = 0; round < 240; round++) {
        static const int ks[] = {1, 3, 10, 40};
        static const char *cats[] = {NULL, "\"c1\""};
        int k = ks[round % 4];
        const char *cat = cats[(round / 4) % 2];
        char a_ids[40][24], b_ids[40][24];
        float a_sc[40], b_sc[40];
        size_t na, nb;
        if (round % 3 == 0) {
            tl_vec_rand(&st, SDIM, q);
        } else {
            memcpy(q, base[tl_below(&st, BASES)], sizeof(q));
            if (round % 3 == 2) /* between a cluster and its neighbours */
                for (int i = 0; i < SDIM; i++)
                    q[i] += ((float)tl_below(&st, 2001) - 1000.0f) * 1e-4f;
        }
        __atomic_store_n(&rf__index_test_sq_off, 0, __ATOMIC_RELAXED);
        na = search(ix, q, k, cat, a_ids, a_sc);
        __atomic_store_n(&rf__index_test_sq_off, 1, __ATOMIC_RELAXED);
        nb = search(ix, q, k, cat, b_ids, b_sc);
        __atomic_store_n(&rf__index_test_sq_off, 0, __ATOMIC_RELAXED);
        sum_k += k;
        RF_CHECK_INT(na, (size_t)k);
        RF_CHECK_INT(na, nb);
        for (size_t i = 0; i < na && i < nb; i++) {
            compared++;
            if (strcmp(a_ids[i], b_ids[i]) || memcmp(&a_sc[i], &b_sc[i], sizeof(float))) {
                if (differ++ < 5)
                    fprintf(stderr, "k=%d rank %zu: %s %.9g, floats alone %s %.9g\n", k, i,
                            a_ids[i], (double)a_sc[i], b_ids[i], (double)b_sc[i]);
            }
        }
    }
    /* A query with a value that is not a number has no bounds: it is scanned as before. */
    {
        char a_ids[10][24], b_ids[10][24];
        float a_sc[10], b_sc[10];
        size_t na, nb;
        rf__index_sqq_t qq = {0};
        int64_t before = __atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED);
        memcpy(q, base[0], sizeof(q));
        q[3] = NAN;
        rf__index_sq_query_init(&qq, q, SDIM);
        RF_CHECK_INT(qq.ok, 0);
        rf__index_sq_query_fini(&qq);
        na = search(ix, q, 10, NULL, a_ids, a_sc);
        RF_CHECK_INT(__atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED), before);
        __atomic_store_n(&rf__index_test_sq_off, 1, __ATOMIC_RELAXED);
        nb = search(ix, q, 10, NULL, b_ids, b_sc);
        __atomic_store_n(&rf__index_test_sq_off, 0, __ATOMIC_RELAXED);
        RF_CHECK_INT(na, nb);
        for (size_t i = 0; i < na && i < nb; i++)
            RF_CHECK(!strcmp(a_ids[i], b_ids[i]));
        q[3] = INFINITY;
        rf__index_sq_query_init(&qq, q, SDIM);
        RF_CHECK_INT(qq.ok, 0);
        rf__index_sq_query_fini(&qq);
    }
    scanned1 = __atomic_load_n(&rf__index_sq_scanned, __ATOMIC_RELAXED) - scanned0;
    rescored1 = __atomic_load_n(&rf__index_sq_rescored, __ATOMIC_RELAXED) - rescored0;
    RF_CHECK_INT(differ, 0);
    RF_CHECK(compared > 2000);
    /* The codes were used: every record bounded on each unfiltered search... */
    RF_CHECK(scanned1 >= 120L * BASES * COPIES);
    /* ...the near-copies were scored from their floats (more than k a search)... */
    RF_CHECK(rescored1 > sum_k);
    /* ...and most records were not. */
    RF_CHECK(rescored1 < scanned1 / 4);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_dot_same, test_bounds_hold, test_bounds_widest_dim, test_search_same)
