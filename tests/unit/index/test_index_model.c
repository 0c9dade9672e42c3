/* test_index_model.c - property test against a brute-force model: a fixed-seed random
 * interleaving of upserts, updates, deletes, truncates, searches, checkpoints, clean
 * reopens and crash-like reopens; every search must equal the model's exact top-k (ties
 * within 1e-5 may swap).  Covers INVARIANT(one-record-per-key) and
 * INVARIANT(index-is-a-view).
 */
#include "index/index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index_int.h"
#include "index_testlib.h"
#include "rf_test.h"

#define DIM     16
#define NIDS    150
#define NSRC    3
#define STEPS   3000
#define TIE_EPS 1e-5f

typedef struct model {
    int present[NIDS];
    float vec[NIDS][DIM];
    char text[NIDS][48];
    int version[NIDS];
    int64_t seq;
} model_t;

static void id_name(int i, char *buf, size_t n)
{
    snprintf(buf, n, "s%d:%d", i % NSRC, i);
}

static void src_name(int s, char *buf, size_t n)
{
    snprintf(buf, n, "s%d", s);
}

typedef struct scored {
    int id;
    float score;
} scored_t;

static int scored_cmp(const void *a, const void *b)
{
    const scored_t *x = a, *y = b;
    return (x->score < y->score) - (x->score > y->score);
}

static int id_of(const char *name)
{
    const char *c = strchr(name, ':');
    char *end;
    long v;
    if (!c)
        return -1;
    v = strtol(c + 1, &end, 10);
    return *end ? -1 : (int)v;
}

/* Compares one search with the model; returns 1 when it matches. */
static int check_search(rf_index_t *ix, const model_t *m, const float *q, int k)
{
    rf_index_results_t res;
    scored_t all[NIDS];
    size_t n = 0, want;
    int ok = 1, seen[NIDS] = {0};
    for (int i = 0; i < NIDS; i++) {
        if (m->present[i]) {
            all[n].id = i;
            all[n].score = tl_dot(q, m->vec[i], DIM);
            n++;
        }
    }
    qsort(all, n, sizeof(all[0]), scored_cmp);
    want = n < (size_t)k ? n : (size_t)k;
    if (rf_index_search(ix, q, k, &res, NULL) != RF_OK)
        return 0;
    if (res.cnt != want || res.seq != m->seq) {
        fprintf(stderr, "search k=%d: %zu hits (seq %lld), model %zu (seq %lld)\n", k, res.cnt,
                (long long)res.seq, want, (long long)m->seq);
        ok = 0;
    }
    for (size_t i = 0; ok && i < res.cnt; i++) {
        int id = id_of(res.hits[i].id);
        if (id < 0 || id >= NIDS || !m->present[id] || seen[id]) {
            fprintf(stderr, "hit %zu: %s absent from the model or repeated\n", i, res.hits[i].id);
            ok = 0;
            break;
        }
        seen[id] = 1;
        if (strcmp(res.hits[i].text, m->text[id]) != 0) {
            fprintf(stderr, "hit %zu: %s text \"%s\", model \"%s\"\n", i, res.hits[i].id,
                    res.hits[i].text, m->text[id]);
            ok = 0;
        }
        if (fabsf(res.hits[i].score - tl_dot(q, m->vec[id], DIM)) > TIE_EPS ||
            fabsf(res.hits[i].score - all[i].score) > TIE_EPS) {
            fprintf(stderr, "hit %zu: %s score %.7f, its model score %.7f, rank %zu wants %.7f\n",
                    i, res.hits[i].id, res.hits[i].score, tl_dot(q, m->vec[id], DIM), i,
                    all[i].score);
            ok = 0;
        }
    }
    rf_index_results_fini(&res);
    return ok;
}

static void test_model(void)
{
    char *dir = rf_test_tmpdir("ixmodel");
    static model_t m;
    uint64_t rng = 20240611;
    rf_index_t *ix = tl_open(dir, DIM, 0);
    char names[16][32], srcs[16][8], texts[16][48];
    rf_index_op_t ops[16];
    float vecs[16][DIM];
    int searches = 0, failures = 0, reopens = 0, crashes = 0, ckpts = 0;
    memset(&m, 0, sizeof(m));
    for (int step = 0; step < STEPS && failures < 5; step++) {
        uint32_t r = tl_below(&rng, 100);
        if (r < 45) {
            /* A batch of 1..8 ops, applied to the model in order as well. */
            int n = 1 + (int)tl_below(&rng, 8);
            int64_t seq = -1;
            for (int j = 0; j < n; j++) {
                uint32_t kind = tl_below(&rng, 100);
                int id = (int)tl_below(&rng, NIDS);
                id_name(id, names[j], sizeof(names[j]));
                src_name(id % NSRC, srcs[j], sizeof(srcs[j]));
                if (kind < 70) {
                    /* Sometimes reuse another record's vector: exact score ties. */
                    int other = (int)tl_below(&rng, NIDS);
                    if (tl_below(&rng, 10) == 0 && m.present[other])
                        memcpy(vecs[j], m.vec[other], sizeof(vecs[j]));
                    else
                        tl_vec_rand(&rng, DIM, vecs[j]);
                    m.version[id]++;
                    snprintf(texts[j], sizeof(texts[j]), "%s#%d", names[j], m.version[id]);
                    ops[j] = tl_upsert(names[j], srcs[j], texts[j], vecs[j]);
                    m.present[id] = 1;
                    memcpy(m.vec[id], vecs[j], sizeof(vecs[j]));
                    memcpy(m.text[id], texts[j], sizeof(texts[j]));
                    m.seq++;
                } else if (kind < 96) {
                    ops[j] = tl_delete(names[j], srcs[j]);
                    if (m.present[id])
                        m.seq++;
                    m.present[id] = 0;
                } else {
                    int s = (int)tl_below(&rng, NSRC);
                    src_name(s, srcs[j], sizeof(srcs[j]));
                    ops[j] = tl_truncate(srcs[j]);
                    for (int i = s; i < NIDS; i += NSRC) {
                        if (m.present[i])
                            m.seq++;
                        m.present[i] = 0;
                    }
                }
            }
            RF_REQUIRE(tl_apply(ix, ops, (size_t)n, NULL, 0, &seq) == RF_OK);
            if (seq != m.seq) {
                fprintf(stderr, "step %d: seq %lld, model %lld\n", step, (long long)seq,
                        (long long)m.seq);
                failures++;
            }
        } else if (r < 85) {
            float q[DIM];
            int k = 1 + (int)tl_below(&rng, 25);
            int id = (int)tl_below(&rng, NIDS);
            if (tl_below(&rng, 4) == 0 && m.present[id])
                memcpy(q, m.vec[id], sizeof(q)); /* a query equal to a stored vector */
            else
                tl_vec_rand(&rng, DIM, q);
            searches++;
            if (!check_search(ix, &m, q, k)) {
                fprintf(stderr, "step %d: search mismatch\n", step);
                failures++;
            }
        } else if (r < 92) {
            rf_err_t err;
            RF_CHECK(rf_index_checkpoint(ix, &err) == RF_OK);
            ckpts++;
        } else if (r < 96) {
            rf_index_close(ix);
            ix = tl_open(dir, DIM, tl_below(&rng, 2) ? 0 : 3);
            reopens++;
        } else if (r < 99) {
            rf__index_abandon(ix);
            ix = tl_open(dir, DIM, 0);
            crashes++;
        } else {
            int64_t cnt = 0;
            for (int i = 0; i < NIDS; i++)
                cnt += m.present[i];
            RF_CHECK_INT(rf_index_record_count(ix), cnt);
            RF_CHECK_INT(rf_index_seq(ix), m.seq);
            RF_CHECK(tl_vectors_match_store(ix, dir));
        }
    }
    RF_CHECK_INT(failures, 0);
    RF_CHECK(searches > 1000);
    RF_CHECK(reopens > 50 && crashes > 30 && ckpts > 100);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    fprintf(stderr, "model: %d searches, %d checkpoints, %d reopens, %d crash reopens, seq %lld\n",
            searches, ckpts, reopens, crashes, (long long)m.seq);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_model)
