/* test_index_gen.c - model generations through the public API: building a second
 * generation from pending records and live dual-writes, the refusal to switch while a
 * record lacks a vector, the switch (one transaction + index swap, to another dim), the
 * rollback, recovery after a switch, and searches running throughout a switch.  Covers
 * INVARIANT(one-record-per-key) across generations and INVARIANT(index-is-a-view).
 */
#include "index/index.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "index_testlib.h"
#include "rf_test.h"

#define DIM1 8
#define DIM2 4
#define NREC 60

static void rec_id(int i, char *buf, size_t n)
{
    snprintf(buf, n, "s:%d", i);
}

/* Loads NREC records with generation-1 vectors. */
static void load(rf_index_t *ix)
{
    for (int i = 0; i < NREC; i++) {
        char id[16];
        float v[DIM1];
        rf_index_op_t op;
        rec_id(i, id, sizeof(id));
        tl_vec_for((uint64_t)i, 1, DIM1, v);
        op = tl_upsert(id, "s", "text", v);
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    }
}

/* Re-embeds every pending record of gen (vectors tl_vec_for(vid, gen)), in batches. */
static int build(rf_index_t *ix, int64_t gen, int dim)
{
    int64_t cursor = 0;
    int done = 0;
    for (;;) {
        rf_index_gen_item_t *it = NULL;
        size_t n = 0;
        rf_index_genvec_t gv[16];
        float vecs[16][DIM1];
        rf_index_batch_t b = {0};
        RF_REQUIRE(rf_index_gen_pending(ix, gen, cursor, 16, &it, &n, NULL) == RF_OK);
        if (!n) {
            rf_index_gen_items_free(it, n);
            return done;
        }
        for (size_t i = 0; i < n; i++) {
            int num = (int)strtol(it[i].id + 2, NULL, 10);
            tl_vec_for((uint64_t)num, (uint64_t)gen, dim, vecs[i]);
            gv[i].vid = it[i].vid;
            gv[i].rec_seq = it[i].rec_seq;
            gv[i].vec = vecs[i];
            gv[i].content_hash = NULL;
            cursor = it[i].vid;
        }
        b.gen = gen;
        b.genvecs = gv;
        b.genvec_cnt = n;
        b.gen_cursor = cursor;
        b.gen_tokens = (int64_t)n * 3;
        RF_REQUIRE(rf_index_apply(ix, &b, NULL, NULL) == RF_OK);
        done += (int)n;
        rf_index_gen_items_free(it, n);
    }
}

/* The id of the best hit for record i's vector of generation gen (dim). */
static int best_is(rf_index_t *ix, int i, int64_t gen, int dim)
{
    float q[DIM1];
    rf_index_query_t query = {0};
    rf_index_results_t res;
    char id[16];
    int ok;
    tl_vec_for((uint64_t)i, (uint64_t)gen, dim, q);
    query.vec = q;
    query.k = 3;
    query.min_score = -2;
    query.gen = gen;
    if (rf_index_query(ix, &query, &res, NULL) != RF_OK)
        return 0;
    rec_id(i, id, sizeof(id));
    ok = res.cnt == 3 && strcmp(res.hits[0].id, id) == 0 && res.hits[0].score > 0.999f &&
         res.gen == gen;
    rf_index_results_fini(&res);
    return ok;
}

static void test_generation_switch(void)
{
    char *dir = rf_test_tmpdir("ixgen");
    rf_index_t *ix = tl_open(dir, DIM1, 0);
    int64_t gen = 0, missing = -1, total = -1;
    int dim = 0;
    rf_index_gen_t *gens = NULL;
    size_t ng = 0;
    rf_err_t err = {0};
    rf_index_gen_state st;
    load(ix);
    RF_CHECK_INT(rf_index_gen_active(ix, &dim), 1);
    RF_CHECK_INT(dim, DIM1);
    RF_CHECK_INT(rf_index_gen_second(ix, NULL, NULL), 0);
    RF_CHECK_INT(rf_index_gen_create(ix, DIM2, "not json", &gen, &err), RF_EINVAL);
    RF_REQUIRE(rf_index_gen_create(ix, DIM2, "{\"model\":\"b\"}", &gen, &err) == RF_OK);
    RF_CHECK_INT(gen, 2);
    RF_CHECK_INT(rf_index_gen_second(ix, &dim, &st), 2);
    RF_CHECK_INT(dim, DIM2);
    RF_CHECK_INT(st, RF_INDEX_GEN_BUILDING);
    RF_CHECK_INT(rf_index_gen_create(ix, DIM2, "{}", &gen, &err), RF_EBUSY);

    /* Live ingest writes both generations: s:0 is covered at once. */
    {
        float v1[DIM1], v2[DIM2];
        rf_index_op_t op;
        tl_vec_for(0, 1, DIM1, v1);
        tl_vec_for(0, 2, DIM2, v2);
        op = tl_upsert("s:0", "s", "text 0 again", v1);
        op.gen = 1;
        op.vec2 = v2;
        op.gen2 = 2;
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    }
    RF_REQUIRE(rf_index_gen_missing(ix, 2, &missing, &total, NULL) == RF_OK);
    RF_CHECK_INT(total, NREC);
    RF_CHECK_INT(missing, NREC - 1);
    RF_CHECK_INT(rf_index_gen_activate(ix, 2, &missing, &err), RF_EAGAIN);
    RF_CHECK_INT(missing, NREC - 1);
    RF_CHECK(strstr(err.msg, "lacks a vector") != NULL);

    /* A vector made from a version that changed before it was stored is not kept. */
    {
        rf_index_gen_item_t *it = NULL;
        size_t n = 0;
        float v1[DIM1], v2[DIM2];
        rf_index_op_t op;
        rf_index_genvec_t gv;
        rf_index_batch_t b = {0};
        RF_REQUIRE(rf_index_gen_pending(ix, 2, 0, 1, &it, &n, NULL) == RF_OK);
        RF_REQUIRE(n == 1);
        RF_CHECK_STR(it[0].id, "s:1");
        tl_vec_for(1, 1, DIM1, v1);
        op = tl_upsert("s:1", "s", "changed", v1); /* no second vector: stale for gen 2 */
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        tl_vec_for(1, 2, DIM2, v2);
        gv.vid = it[0].vid;
        gv.rec_seq = it[0].rec_seq;
        gv.vec = v2;
        gv.content_hash = NULL;
        b.gen = 2;
        b.genvecs = &gv;
        b.genvec_cnt = 1;
        RF_REQUIRE(rf_index_apply(ix, &b, NULL, NULL) == RF_OK);
        RF_CHECK_INT(tl_count(dir, "gen_vectors WHERE gen = 2"), 1); /* s:0 only */
        rf_index_gen_items_free(it, n);
    }
    /* A delete takes the record's vectors of every generation. */
    {
        rf_index_op_t op = tl_delete("s:0", "s");
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
        RF_CHECK_INT(tl_count(dir, "gen_vectors"), 0);
    }
    RF_CHECK_INT(build(ix, 2, DIM2), NREC - 1);
    RF_REQUIRE(rf_index_gen_missing(ix, 2, &missing, NULL, NULL) == RF_OK);
    RF_CHECK_INT(missing, 0);
    RF_REQUIRE(rf_index_gen_list(ix, &gens, &ng, NULL) == RF_OK);
    RF_REQUIRE(ng == 2);
    RF_CHECK_INT(gens[1].tokens, (NREC - 1) * 3);
    RF_CHECK(gens[1].cursor > 0);
    rf_index_gen_list_free(gens, ng);

    /* The switch: every record takes its generation-2 vector, in one step. */
    RF_REQUIRE(rf_index_gen_activate(ix, 2, &missing, &err) == RF_OK);
    RF_CHECK_INT(rf_index_gen_active(ix, &dim), 2);
    RF_CHECK_INT(dim, DIM2);
    RF_CHECK_INT(rf_index_gen_second(ix, &dim, &st), 1);
    RF_CHECK_INT(st, RF_INDEX_GEN_PREVIOUS);
    RF_CHECK_INT(tl_count(dir, "records WHERE gen = 2 AND dim = 4"), NREC - 1);
    RF_CHECK_INT(tl_count(dir, "gen_vectors WHERE gen = 1"), NREC - 1);
    RF_CHECK_INT(tl_count(dir, "gen_vectors WHERE gen = 2"), 0);
    RF_CHECK_INT(tl_count(dir, "changelog WHERE cause = 'reembed' AND gen = 2"), NREC - 1);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    RF_CHECK(best_is(ix, 7, 2, DIM2));
    RF_CHECK(best_is(ix, NREC - 1, 2, DIM2));
    {
        float q[DIM1];
        rf_index_query_t query = {0};
        rf_index_results_t res;
        tl_vec_for(7, 1, DIM1, q);
        query.vec = q;
        query.k = 1;
        query.min_score = -2;
        query.gen = 1;
        RF_CHECK_INT(rf_index_query(ix, &query, &res, &err), RF_EAGAIN);
    }
    /* Live ingest now writes generation 2 first and keeps generation 1 for a rollback. */
    {
        float v1[DIM1], v2[DIM2];
        rf_index_op_t op;
        tl_vec_for(3, 1, DIM1, v1);
        tl_vec_for(3, 2, DIM2, v2);
        op = tl_upsert("s:3", "s", "three, updated", v1);
        op.gen = 1; /* the second generation's vector first: apply puts them in place */
        op.vec2 = v2;
        op.gen2 = 2;
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    }
    RF_REQUIRE(rf_index_gen_missing(ix, 1, &missing, NULL, NULL) == RF_OK);
    RF_CHECK_INT(missing, 0);
    RF_CHECK(best_is(ix, 3, 2, DIM2));

    /* Rollback is the same call. */
    RF_REQUIRE(rf_index_gen_activate(ix, 1, NULL, &err) == RF_OK);
    RF_CHECK_INT(rf_index_gen_active(ix, &dim), 1);
    RF_CHECK_INT(dim, DIM1);
    RF_CHECK(best_is(ix, 3, 1, DIM1));
    RF_CHECK(best_is(ix, 11, 1, DIM1));
    RF_CHECK(tl_vectors_match_store(ix, dir));
    /* ...and forward again, then a restart recovers generation 2 at its dim. */
    RF_REQUIRE(rf_index_gen_activate(ix, 2, NULL, &err) == RF_OK);
    rf_index_close(ix);
    {
        rf_index_opts_t o = {0};
        o.dir = dir;
        o.dim = DIM1;
        RF_CHECK_INT(rf_index_open(&o, &ix, &err), RF_ECONFIG);
        o.dim_from_store = 1;
        RF_REQUIRE(rf_index_open(&o, &ix, &err) == RF_OK);
    }
    RF_CHECK_INT(rf_index_gen_active(ix, &dim), 2);
    RF_CHECK_INT(dim, DIM2);
    RF_CHECK(best_is(ix, 5, 2, DIM2));
    RF_CHECK(tl_vectors_match_store(ix, dir));
    /* Dropping the previous generation gives up the rollback. */
    RF_CHECK_INT(rf_index_gen_drop(ix, 2, &err), RF_EINVAL);
    RF_REQUIRE(rf_index_gen_drop(ix, 1, &err) == RF_OK);
    RF_CHECK_INT(rf_index_gen_second(ix, NULL, NULL), 0);
    RF_CHECK_INT(tl_count(dir, "gen_vectors"), 0);
    RF_CHECK_INT(rf_index_gen_activate(ix, 1, NULL, &err), RF_ENOTFOUND);
    /* A dropped generation's number is never given again. */
    RF_REQUIRE(rf_index_gen_create(ix, DIM1, "{\"model\":\"c\"}", &gen, &err) == RF_OK);
    RF_CHECK_INT(gen, 3);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* Searches from other threads while generations switch back and forth: every answer is
 * k hits of the generation it was asked for, or RF_EAGAIN (embed again); never an error
 * or an empty answer. */
typedef struct shared {
    rf_index_t *ix;
    volatile int stop;
    int64_t ok, again, bad;
} shared_t;

static void *searcher(void *arg)
{
    shared_t *sh = arg;
    uint64_t rng = 99;
    int64_t ok = 0, again = 0, bad = 0;
    while (!__atomic_load_n(&sh->stop, __ATOMIC_RELAXED)) {
        int dim = 0;
        int64_t gen = rf_index_gen_active(sh->ix, &dim);
        float q[DIM1];
        rf_index_query_t query = {0};
        rf_index_results_t res;
        rf_rc rc;
        tl_vec_rand(&rng, dim, q);
        query.vec = q;
        query.k = 5;
        query.min_score = -2;
        query.gen = gen;
        rc = rf_index_query(sh->ix, &query, &res, NULL);
        if (rc == RF_EAGAIN) {
            again++;
            continue;
        }
        if (rc == RF_OK && res.cnt == 5 && res.gen == gen)
            ok++;
        else
            bad++;
        if (rc == RF_OK)
            rf_index_results_fini(&res);
    }
    __atomic_add_fetch(&sh->ok, ok, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sh->again, again, __ATOMIC_RELAXED);
    __atomic_add_fetch(&sh->bad, bad, __ATOMIC_RELAXED);
    return NULL;
}

static void test_switch_under_search(void)
{
    char *dir = rf_test_tmpdir("ixgenc");
    rf_index_t *ix = tl_open(dir, DIM1, 50);
    shared_t sh = {0};
    pthread_t thr[2];
    int64_t gen = 0;
    rf_err_t err = {0};
    load(ix);
    sh.ix = ix;
    for (int i = 0; i < 2; i++)
        RF_REQUIRE(pthread_create(&thr[i], NULL, searcher, &sh) == 0);
    RF_REQUIRE(rf_index_gen_create(ix, DIM2, "{\"model\":\"b\"}", &gen, &err) == RF_OK);
    build(ix, gen, DIM2);
    for (int round = 0; round < 6; round++) {
        int64_t target = round % 2 == 0 ? 2 : 1;
        float v1[DIM1], v2[DIM2];
        rf_index_op_t op;
        RF_REQUIRE(rf_index_gen_activate(ix, target, NULL, &err) == RF_OK);
        /* Ingest between switches keeps both generations complete. */
        tl_vec_for((uint64_t)round, 1, DIM1, v1);
        tl_vec_for((uint64_t)round, 2, DIM2, v2);
        op = tl_upsert("s:1", "s", "moving", v1);
        op.gen = 1;
        op.vec2 = v2;
        op.gen2 = 2;
        RF_REQUIRE(tl_apply(ix, &op, 1, NULL, 0, NULL) == RF_OK);
    }
    __atomic_store_n(&sh.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++)
        pthread_join(thr[i], NULL);
    RF_CHECK_INT(sh.bad, 0);
    RF_CHECK(sh.ok > 0);
    RF_CHECK(tl_vectors_match_store(ix, dir));
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_generation_switch, test_switch_under_search)
