/* test_index_hnsw.c - the distance code of HNSW segments (index_hnsw.cpp): an HNSW index
 * searched with rf__index_dot gives FAISS's own results on the same graph; builds and
 * loads turn it on, and a saved index is FAISS's own format (a stock reader loads it);
 * other indexes are left alone. */
#include "index/index.h"
#include "rf_test.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>

#include "index/index_int.h"
#include "index_testlib.h"

#define DIM 40
#define N   3000
#define NQ  60
#define K   10

static float *rand_vecs(uint64_t seed, size_t n)
{
    float *v = malloc(n * DIM * sizeof(float));
    RF_REQUIRE(v);
    for (size_t i = 0; i < n; i++)
        tl_vec_rand(&seed, DIM, v + i * DIM);
    return v;
}

/* A bare index for rf__index_ann_build: only dim and efSearch are read. */
static rf_index_t *bare_ix(void)
{
    rf_index_t *ix = calloc(1, sizeof(*ix));
    RF_REQUIRE(ix);
    ix->dim = DIM;
    ix->ef_search = 64;
    ix->ivf_nprobe = 4;
    return ix;
}

static void search(FaissIndex *ann, const float *qs, float *d, idx_t *l)
{
    RF_REQUIRE(faiss_Index_search(ann, NQ, qs, K, d, l) == 0);
}

/* Labels of the two searches equal, distances within float rounding of each other. */
static void check_same_at(int line, const float *d1, const idx_t *l1, const float *d2,
                          const idx_t *l2)
{
    int diff = 0, far = 0;
    for (int i = 0; i < NQ * K; i++) {
        diff += l1[i] != l2[i];
        far += !(fabsf(d1[i] - d2[i]) < 2e-6f);
    }
    if (diff || far)
        printf("line %d: %d labels differ, %d scores\n", line, diff, far);
    RF_CHECK_INT(diff, 0);
    RF_CHECK_INT(far, 0);
}
#define check_same(d1, l1, d2, l2) check_same_at(__LINE__, d1, l1, d2, l2)

/* recall@K of the labels l against brute force (inner product). */
static double recall_of(const float *base, const float *qs, const idx_t *l)
{
    long found = 0;
    for (int q = 0; q < NQ; q++) {
        float best[K];
        int bi[K];
        for (int j = 0; j < K; j++)
            best[j] = -2, bi[j] = -1;
        for (int i = 0; i < N; i++) {
            float sc = tl_dot(qs + q * DIM, base + (size_t)i * DIM, DIM);
            int j = K - 1;
            if (sc <= best[j])
                continue;
            while (j > 0 && best[j - 1] < sc) {
                best[j] = best[j - 1];
                bi[j] = bi[j - 1];
                j--;
            }
            best[j] = sc;
            bi[j] = i;
        }
        for (int j = 0; j < K; j++)
            for (int g = 0; g < K; g++)
                found += l[q * K + j] == bi[g];
    }
    return (double)found / (double)(NQ * K);
}

/* Built with rf__index_dot: the same results as FAISS's own distance code on the same
 * graph, both ways of switching, and recall against brute force as good as the graph
 * FAISS builds with its own code (the build's distances between stored vectors). */
static void test_same_results(void)
{
    rf_index_t *ix = bare_ix();
    float *base = rand_vecs(7, N), *qs = rand_vecs(99, NQ);
    float d1[NQ * K], d2[NQ * K], d3[NQ * K];
    idx_t l1[NQ * K], l2[NQ * K], l3[NQ * K];
    FaissIndex *ann = NULL;
    rf_err_t err;
    double rec, own_rec;
    /* FAISS adds to HNSW with OpenMP: on one thread the same input gives the same graph. */
    omp_set_num_threads(1);
    RF_REQUIRE(rf__index_ann_build(ix, "HNSW16", base, N, 0, NULL, &ann, &err) == RF_OK);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), 1);
    RF_CHECK_INT(faiss_Index_ntotal(ann), N);
    search(ann, qs, d1, l1);
    RF_CHECK_INT(rf__index_hnsw_simd(ann, 0), 1);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), 0);
    RF_CHECK_INT(faiss_Index_ntotal(ann), N);
    search(ann, qs, d2, l2);
    check_same(d1, l1, d2, l2);
    /* Asking for what it already is changes nothing. */
    RF_CHECK_INT(rf__index_hnsw_simd(ann, 0), 1);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), 0);
    RF_CHECK_INT(rf__index_hnsw_simd(ann, 1), 1);
    RF_CHECK_INT(rf__index_hnsw_simd(ann, 1), 1);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), 1);
    search(ann, qs, d3, l3);
    check_same(d1, l1, d3, l3);
    rec = recall_of(base, qs, l1);
    RF_CHECK(rec >= 0.9);
    {
        FaissIndex *own = NULL;
        RF_REQUIRE(faiss_index_factory(&own, DIM, "HNSW16", METRIC_INNER_PRODUCT) == 0);
        RF_CHECK_INT(rf__index_hnsw_is_simd(own), 0);
        /* In the chunks rf__index_ann_build adds. */
        for (int i = 0; i < N; i += 256)
            RF_REQUIRE(faiss_Index_add(own, N - i < 256 ? N - i : 256, base + (size_t)i * DIM) ==
                       0);
        rf__index_ann_tune(ix, own); /* the same efSearch */
        search(own, qs, d2, l2);
        own_rec = recall_of(base, qs, l2);
        printf("recall@%d on %d vectors of %d dims: built here %.3f, by FAISS's own code %.3f\n", K,
               N, DIM, rec, own_rec);
        RF_CHECK(rec >= own_rec - 0.01);
        faiss_Index_free(own);
    }
    faiss_Index_free(ann);
    free(base);
    free(qs);
    free(ix);
}

/* A saved index is FAISS's format: a stock read gives FAISS's own distance code and the
 * same results; rf__index_ann_load gives rf__index_dot, with the same results. */
static void test_save_load(void)
{
    rf_index_t *ix = bare_ix();
    float *base = rand_vecs(11, N), *qs = rand_vecs(12, NQ);
    float d1[NQ * K], d2[NQ * K], d3[NQ * K];
    idx_t l1[NQ * K], l2[NQ * K], l3[NQ * K];
    FaissIndex *ann = NULL, *stock = NULL, *loaded = NULL;
    char *buf = NULL;
    size_t len = 0;
    FILE *fp;
    rf_err_t err;
    RF_REQUIRE(rf__index_ann_build(ix, "HNSW16", base, N, 0, NULL, &ann, &err) == RF_OK);
    search(ann, qs, d1, l1);
    fp = open_memstream(&buf, &len);
    RF_REQUIRE(fp);
    RF_REQUIRE(rf__index_ann_write(ann, fp, &err) == RF_OK);
    RF_REQUIRE(fclose(fp) == 0);
    fp = fmemopen(buf, len, "rb");
    RF_REQUIRE(fp);
    RF_REQUIRE(faiss_read_index(fp, 0, &stock) == 0);
    fclose(fp);
    RF_CHECK_INT(rf__index_hnsw_is_simd(stock), 0);
    search(stock, qs, d2, l2);
    check_same(d1, l1, d2, l2);
    RF_REQUIRE(rf__index_ann_load(buf, len, DIM, &loaded, &err) == RF_OK);
    RF_CHECK_INT(rf__index_hnsw_is_simd(loaded), 1);
    search(loaded, qs, d3, l3);
    check_same(d1, l1, d3, l3);
    faiss_Index_free(ann);
    faiss_Index_free(stock);
    faiss_Index_free(loaded);
    free(buf);
    free(base);
    free(qs);
    free(ix);
}

/* IVF, flat and L2 HNSW indexes are not touched. */
static void test_others_left_alone(void)
{
    rf_index_t *ix = bare_ix();
    float *base = rand_vecs(5, 1000);
    FaissIndex *ann = NULL;
    rf_err_t err;
    const char *fs[] = {"IVF8,Flat", "IVF4,SQ8"};
    for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
        RF_REQUIRE(rf__index_ann_build(ix, fs[i], base, 1000, 0, NULL, &ann, &err) == RF_OK);
        RF_CHECK_INT(rf__index_hnsw_is_simd(ann), -1);
        RF_CHECK_INT(rf__index_hnsw_simd(ann, 1), 0);
        RF_CHECK_INT(rf__index_hnsw_simd(ann, 0), 0);
        RF_CHECK_INT(faiss_Index_ntotal(ann), 1000);
        faiss_Index_free(ann);
    }
    RF_REQUIRE(faiss_index_factory(&ann, DIM, "HNSW16", METRIC_L2) == 0);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), -1);
    RF_CHECK_INT(rf__index_hnsw_simd(ann, 1), 0);
    RF_CHECK_INT(rf__index_hnsw_is_simd(ann), -1);
    faiss_Index_free(ann);
    free(base);
    free(ix);
}

RF_TEST_MAIN(test_same_results, test_save_load, test_others_left_alone)
