/* test_serve_position.c - what serve/ reads from the index beyond hits, on the index
 * itself: the highest LSN applied per source (kept with the batch, published with each
 * state, persisted across a reopen, waited for without polling), the stored vectors of
 * hits, and the recent records of the status page.
 * Covers INVARIANT(fresh-is-measurable): a client can wait for the LSN of its commit.
 */
#include "index/index.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

#define DIM 4

static rf_index_t *open_ix(const char *dir)
{
    rf_index_opts_t o;
    rf_index_t *ix = NULL;
    rf_err_t err;
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.dim = DIM;
    if (rf_index_open(&o, &ix, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_index_open: %s", err.msg);
    RF_REQUIRE(ix);
    return ix;
}

static const float e0[DIM] = {1, 0, 0, 0}, e1[DIM] = {0, 1, 0, 0};

/* An op of source at position pos; kind UPSERT (with vec), DELETE or TRUNCATE. */
static rf_index_op_t op_at(rf_index_op_kind kind, const char *id, const char *source,
                           const char *pos, const float *vec)
{
    rf_index_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = kind;
    op.id = id;
    op.source = source;
    op.text = kind == RF_INDEX_UPSERT ? id : NULL;
    op.vec = kind == RF_INDEX_UPSERT ? vec : NULL;
    op.model = "test";
    op.source_pos = pos;
    op.topic = "cdc";
    return op;
}

static rf_rc apply(rf_index_t *ix, const rf_index_op_t *ops, size_t n, rf_err_t *err)
{
    rf_index_batch_t b;
    memset(&b, 0, sizeof(b));
    b.ops = ops;
    b.op_cnt = n;
    return rf_index_apply(ix, &b, NULL, err);
}

/* The LSN of source in the position searches see, or -1. */
static int64_t lsn_of(rf_index_t *ix, const char *source)
{
    rf_index_position_t pos;
    int64_t v = -1;
    rf_index_position_get(ix, &pos);
    for (size_t i = 0; i < pos.lsn_cnt; i++)
        if (!strcmp(pos.lsns[i].source, source))
            v = pos.lsns[i].lsn;
    rf_index_position_fini(&pos);
    return v;
}

static int64_t status_lsn(rf_index_t *ix, const char *source)
{
    char *s = rf_index_status_json(ix);
    json_t *st = s ? json_loads(s, 0, NULL) : NULL;
    json_t *v = json_object_get(json_object_get(st, "lsn"), source);
    int64_t r = json_is_integer(v) ? json_integer_value(v) : -1;
    json_decref(st);
    free(s);
    return r;
}

static void test_lsn_tracked(void)
{
    char *dir = rf_test_tmpdir("serve_lsn");
    rf_index_t *ix;
    rf_err_t err;
    rf_index_op_t ops[4];
    rf_index_lsn_t want[2];

    RF_REQUIRE(dir);
    ix = open_ix(dir);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), -1);
    /* The highest of a batch, per source; positions that are not numbers do not count. */
    ops[0] = op_at(RF_INDEX_UPSERT, "p:1", "inventory.products", "lsn=34078720", e0);
    ops[1] = op_at(RF_INDEX_UPSERT, "p:2", "inventory.products", "lsn=34131104", e1);
    ops[2] = op_at(RF_INDEX_UPSERT, "p:3", "inventory.products", "lsn=34100000", e1);
    ops[3] = op_at(RF_INDEX_UPSERT, "c:1", "inventory.customers", "mysql-bin.000003:154", e0);
    RF_REQUIRE(apply(ix, ops, 4, &err) == RF_OK);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34131104);
    RF_CHECK_INT(lsn_of(ix, "inventory.customers"), -1);
    RF_CHECK_INT(status_lsn(ix, "inventory.products"), 34131104);
    /* A lower position later never moves it back. */
    ops[0] = op_at(RF_INDEX_UPSERT, "p:1", "inventory.products", "lsn=5", e1);
    RF_REQUIRE(apply(ix, ops, 1, &err) == RF_OK);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34131104);
    /* Deletes (of absent ids too) and truncates are applied changes as well. */
    ops[0] = op_at(RF_INDEX_DELETE, "p:404", "inventory.products", "lsn=34133800", NULL);
    ops[1] = op_at(RF_INDEX_TRUNCATE, NULL, "inventory.orders", "34135000", NULL);
    RF_REQUIRE(apply(ix, ops, 2, &err) == RF_OK);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34133800);
    RF_CHECK_INT(lsn_of(ix, "inventory.orders"), 34135000);
    /* A refused batch moves nothing. */
    ops[0] = op_at(RF_INDEX_UPSERT, "p:9", "inventory.products", "lsn=40000000", NULL);
    RF_CHECK(apply(ix, ops, 1, &err) != RF_OK);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34133800);
    /* Overflowing and malformed positions are ignored. */
    ops[0] = op_at(RF_INDEX_UPSERT, "p:9", "inventory.products", "lsn=99999999999999999999", e0);
    ops[1] = op_at(RF_INDEX_UPSERT, "p:10", "inventory.products", "lsn=", e0);
    ops[2] = op_at(RF_INDEX_UPSERT, "p:11", "inventory.products", "lsn=12x", e0);
    RF_REQUIRE(apply(ix, ops, 3, &err) == RF_OK);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34133800);

    want[0].source = "inventory.products";
    want[0].lsn = 34133800;
    want[1].source = "inventory.orders";
    want[1].lsn = 34135000;
    RF_CHECK_INT(rf_index_position_wait_lsn(ix, -1, NULL, 0, want, 2, 0), RF_OK);
    want[1].lsn++;
    RF_CHECK_INT(rf_index_position_wait_lsn(ix, -1, NULL, 0, want, 2, 20), RF_ETIMEDOUT);

    /* They are part of the stored state: a reopen has them before any new batch. */
    rf_index_close(ix);
    ix = open_ix(dir);
    RF_CHECK_INT(lsn_of(ix, "inventory.products"), 34133800);
    RF_CHECK_INT(lsn_of(ix, "inventory.orders"), 34135000);
    RF_CHECK_INT(status_lsn(ix, "inventory.orders"), 34135000);
    RF_CHECK_INT(lsn_of(ix, "inventory.customers"), -1);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

typedef struct waiter {
    rf_index_t *ix;
    rf_index_lsn_t want;
    rf_rc rc;
    int64_t ms;
} waiter_t;

static void *waiter_main(void *arg)
{
    waiter_t *w = arg;
    int64_t t0 = rf_mono_ms();
    w->rc = rf_index_position_wait_lsn(w->ix, -1, NULL, 0, &w->want, 1, 30000);
    w->ms = rf_mono_ms() - t0;
    return NULL;
}

/* A waiter wakes on the batch that brings its LSN, not on a timer. */
static void test_lsn_wait_wakes(void)
{
    char *dir = rf_test_tmpdir("serve_lsn_wait");
    rf_index_t *ix;
    rf_index_op_t op;
    waiter_t w;
    pthread_t th;
    rf_err_t err;
    rf_index_results_t res;

    RF_REQUIRE(dir);
    ix = open_ix(dir);
    memset(&w, 0, sizeof(w));
    w.ix = ix;
    w.want.source = "public.orders";
    w.want.lsn = 1000;
    w.rc = RF_EINVAL;
    RF_REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    op = op_at(RF_INDEX_UPSERT, "o:1", "public.orders", "lsn=999", e0);
    RF_REQUIRE(apply(ix, &op, 1, &err) == RF_OK);
    RF_CHECK_INT(rf_index_position_wait_lsn(ix, -1, NULL, 0, &w.want, 1, 0), RF_ETIMEDOUT);
    op = op_at(RF_INDEX_UPSERT, "o:2", "public.orders", "lsn=1000", e1);
    RF_REQUIRE(apply(ix, &op, 1, &err) == RF_OK);
    pthread_join(th, NULL);
    RF_CHECK_INT(w.rc, RF_OK);
    RF_CHECK(w.ms < 20000);
    /* A search after the wait sees the write, and its position says so. */
    RF_REQUIRE(rf_index_search(ix, e1, 1, &res, &err) == RF_OK);
    RF_REQUIRE(res.cnt == 1);
    RF_CHECK_STR(res.hits[0].id, "o:2");
    RF_CHECK(res.hits[0].vec == NULL);
    RF_REQUIRE(res.pos.lsn_cnt == 1);
    RF_CHECK_STR(res.pos.lsns[0].source, "public.orders");
    RF_CHECK_INT(res.pos.lsns[0].lsn, 1000);
    rf_index_results_fini(&res);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

/* Hits carry their stored vector only when asked. */
static void test_hit_vectors(void)
{
    char *dir = rf_test_tmpdir("serve_vec");
    const float v[DIM] = {0.6f, 0.8f, 0, 0};
    rf_index_t *ix;
    rf_index_op_t ops[2];
    rf_index_query_t q;
    rf_index_results_t res;
    rf_err_t err;

    RF_REQUIRE(dir);
    ix = open_ix(dir);
    ops[0] = op_at(RF_INDEX_UPSERT, "a", "s", NULL, e0);
    ops[1] = op_at(RF_INDEX_UPSERT, "b", "s", NULL, v);
    RF_REQUIRE(apply(ix, ops, 2, &err) == RF_OK);
    memset(&q, 0, sizeof(q));
    q.vec = e1;
    q.k = 2;
    q.min_score = -INFINITY;
    q.want_vec = 1;
    RF_REQUIRE(rf_index_query(ix, &q, &res, &err) == RF_OK);
    RF_REQUIRE(res.cnt == 2);
    RF_CHECK_STR(res.hits[0].id, "b");
    RF_CHECK_INT(res.hits[0].dim, DIM);
    RF_REQUIRE(res.hits[0].vec);
    RF_CHECK(memcmp(res.hits[0].vec, v, sizeof(v)) == 0);
    RF_CHECK_INT(res.hits[1].dim, DIM);
    RF_REQUIRE(res.hits[1].vec);
    RF_CHECK(memcmp(res.hits[1].vec, e0, sizeof(e0)) == 0);
    rf_index_results_fini(&res);
    q.want_vec = 0;
    RF_REQUIRE(rf_index_query(ix, &q, &res, &err) == RF_OK);
    RF_CHECK(res.cnt == 2 && res.hits[0].vec == NULL && res.hits[0].dim == 0);
    rf_index_results_fini(&res);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

static void test_recent(void)
{
    char *dir = rf_test_tmpdir("serve_recent");
    rf_index_t *ix;
    rf_index_op_t ops[3];
    rf_err_t err;
    char *json = NULL;
    json_t *arr;

    RF_REQUIRE(dir);
    ix = open_ix(dir);
    RF_REQUIRE(rf_index_recent_json(ix, 5, 10, &json, &err) == RF_OK);
    RF_CHECK_STR(json, "[]");
    free(json);
    ops[0] = op_at(RF_INDEX_UPSERT, "r:1", "s", NULL, e0);
    ops[1] = op_at(RF_INDEX_UPSERT, "r:2", "s", NULL, e1);
    ops[2] = op_at(RF_INDEX_UPSERT, "r:3-with-a-long-text", "s", NULL, e1);
    RF_REQUIRE(apply(ix, ops, 3, &err) == RF_OK);
    /* The newest first; a delete takes a record off the list. */
    ops[0] = op_at(RF_INDEX_DELETE, "r:2", "s", NULL, NULL);
    RF_REQUIRE(apply(ix, ops, 1, &err) == RF_OK);
    RF_REQUIRE(rf_index_recent_json(ix, 2, 10, &json, &err) == RF_OK);
    arr = json_loads(json, 0, NULL);
    free(json);
    RF_REQUIRE(json_is_array(arr));
    RF_CHECK_INT(json_array_size(arr), 2);
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 0), "id")),
                 "r:3-with-a-long-text");
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 0), "snippet")),
                 "r:3-with-a");
    RF_CHECK(json_is_true(json_object_get(json_array_get(arr, 0), "truncated")));
    RF_CHECK_STR(json_string_value(json_object_get(json_array_get(arr, 1), "id")), "r:1");
    RF_CHECK(json_is_false(json_object_get(json_array_get(arr, 1), "truncated")));
    json_decref(arr);
    RF_CHECK_INT(rf_index_recent_json(ix, 0, 10, &json, &err), RF_EINVAL);
    RF_CHECK(json == NULL);
    RF_CHECK_INT(rf_index_recent_json(ix, 101, 10, &json, &err), RF_EINVAL);
    RF_CHECK_INT(rf_index_recent_json(ix, 1, 0, &json, &err), RF_EINVAL);
    RF_CHECK_INT(rf_index_recent_json(ix, 1, 1001, &json, &err), RF_EINVAL);
    rf_index_close(ix);
    rf_test_rmtree(dir);
    free(dir);
}

RF_TEST_MAIN(test_lsn_tracked, test_lsn_wait_wakes, test_hit_vectors, test_recent)
