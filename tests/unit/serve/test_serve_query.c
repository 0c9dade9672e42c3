/* test_serve_query.c - search and context over HTTP: filters, min_score, include, context
 * assembly with citations and budgets, read-your-writes waits (reached at once, after
 * waiting, timed out, ended by a stop, many at once), the parts' sections in status,
 * metrics and readiness, freshness and per-topic metrics, and the status page.
 * Covers INVARIANT(fresh-is-measurable): answers carry their position, and a request
 * with min_position sees every event up to it.
 */
#include "serve_testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

static const float e0[DIM] = {1, 0, 0, 0};
static const float e3[DIM] = {0, 0, 0, 1};

/* Two more records for the filters: t.docs:5 avocado (globex), t.docs:6 almond (acme). */
static void more_records(fx_t *fx)
{
    static const float v5[DIM] = {0.6f, 0.8f, 0, 0}, v6[DIM] = {0.8f, 0, 0.6f, 0};
    fx_upsert(fx, "t.docs:5", "avocado", v5, "globex", "fruit",
              "{\"color\":\"green\",\"price\":3.5,\"day\":\"2024-05-02\"}", 1714600000000, "t", 0,
              4);
    fx_upsert(fx, "t.docs:6", "almond", v6, "acme", "nut", "{\"color\":\"brown\",\"price\":12}",
              1714500000000, "t", 0, 5);
}

/* The ids of a search answer, sorted, joined with spaces. */
static char *ids_sorted(const resp_t *r)
{
    size_t n = result_cnt(r);
    const char **v = rf_xcalloc(n + 1, sizeof(*v));
    rf_buf_t b;
    rf_buf_init(&b, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = result_id(r, i);
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(v[j - 1], v[j]) > 0; j--) {
            const char *t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    for (size_t i = 0; i < n; i++) {
        rf_buf_puts(&b, i ? " " : "");
        rf_buf_puts(&b, v[i]);
    }
    free(v);
    return rf_buf_take(&b, NULL);
}

static void expect_ids(fx_t *fx, const char *body, const char *want, int line)
{
    resp_t r;
    char *got;
    http(fx, "POST", "/v1/search", body, &r);
    got = r.status == 200
              ? ids_sorted(&r)
              : rf_xasprintf("(status %ld: %s)", r.status, r.body.ptr ? r.body.ptr : "");
    if (strcmp(got, want) != 0)
        rf__test_fail(__FILE__, line, "%s: got [%s], want [%s]", body, got, want);
    free(got);
    resp_fini(&r);
}

static void test_filters(void)
{
    fx_t fx;
    resp_t r;

    fx_start(&fx, 65536, 1, 2);
    more_records(&fx);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"color\":\"red\"}}", "t.docs:1", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"tenant\":{\"in\":[\"acme\"]}}}",
               "t.docs:1 t.docs:6", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"price\":{\"gte\":3,\"lt\":12}}}", "t.docs:5",
               __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"price\":{\"gt\":3.5,\"lte\":12}}}", "t.docs:6",
               __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"label\":\"fruit\",\"tenant\":\"globex\"}}",
               "t.docs:5", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"day\":{\"gte\":\"2024-05-01\"}}}", "t.docs:5",
               __LINE__);
    expect_ids(&fx,
               "{\"query\":\"a\",\"filter\":{\"event_time_ms\":{\"lt\":\"2024-05-01T12:00:00Z\"}}}",
               "t.docs:6", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"source\":\"t.docs\"},\"k\":50}",
               "t.docs:1 t.docs:2 t.docs:3 t.docs:4/x y t.docs:5 t.docs:6", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"filter\":{\"color\":\"blue\"}}", "", __LINE__);
    /* A filter does not cost results: k matching records come back when they exist. */
    expect_ids(&fx, "{\"query\":\"c\",\"k\":2,\"filter\":{\"tenant\":\"acme\"}}",
               "t.docs:1 t.docs:6", __LINE__);

    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"filter\":{\"color\":{\"like\":\"r%\"}}}",
         &r);
    RF_CHECK_INT(r.status, 400);
    RF_CHECK_STR(err_code(&r), "bad_filter");
    RF_CHECK(strstr(err_msg(&r), "like") != NULL);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_score_include(void)
{
    fx_t fx;
    resp_t r;
    json_t *hit;

    fx_start(&fx, 65536, 1, 2);
    more_records(&fx);
    /* apple 1.0, apricot banana 0.8, almond 0.8, avocado 0.6, the rest 0. */
    expect_ids(&fx, "{\"query\":\"a\",\"min_score\":0.9}", "t.docs:1", __LINE__);
    expect_ids(&fx, "{\"query\":\"a\",\"min_score\":0.7}", "t.docs:1 t.docs:2 t.docs:6", __LINE__);

    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":1,\"include\":[\"metadata\"]}", &r);
    RF_CHECK_INT(r.status, 200);
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK(json_object_get(hit, "text") == NULL);
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(hit, "metadata"), "color")),
                 "red");
    RF_CHECK(json_object_get(hit, "position") != NULL);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":1,\"include\":[]}", &r);
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK(json_object_get(hit, "text") == NULL && json_object_get(hit, "metadata") == NULL);
    RF_CHECK_STR(json_string_value(json_object_get(hit, "id")), "t.docs:1");
    resp_fini(&r);
    /* The stored vectors, as they were indexed: apple e0, then apricot banana (0.8, 0.6). */
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":2,\"include\":[\"vector\"]}", &r);
    RF_CHECK_INT(r.status, 200);
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK(json_object_get(hit, "text") == NULL && json_object_get(hit, "metadata") == NULL);
    RF_CHECK_INT(json_array_size(json_object_get(hit, "vector")), DIM);
    RF_CHECK(json_real_value(json_array_get(json_object_get(hit, "vector"), 0)) == 1.0);
    RF_CHECK(json_real_value(json_array_get(json_object_get(hit, "vector"), 1)) == 0.0);
    hit = json_array_get(json_object_get(r.json, "results"), 1);
    RF_CHECK_STR(json_string_value(json_object_get(hit, "id")), "t.docs:2");
    RF_CHECK(fabs(json_real_value(json_array_get(json_object_get(hit, "vector"), 0)) - 0.8) < 1e-6);
    RF_CHECK(fabs(json_real_value(json_array_get(json_object_get(hit, "vector"), 1)) - 0.6) < 1e-6);
    resp_fini(&r);
    /* An update replaces the vector returned (the version searched is the version read). */
    fx_upsert(&fx, "t.docs:2", "apricot", (const float[DIM]){0.6f, 0, 0, 0.8f}, NULL, NULL, NULL,
              rf_now_ms(), "t", 0, 6);
    http(&fx, "POST", "/v1/context", "{\"query\":\"d\",\"k\":1,\"include\":[\"text\",\"vector\"]}",
         &r);
    RF_CHECK_INT(r.status, 200);
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK_STR(json_string_value(json_object_get(hit, "id")), "t.docs:2");
    RF_CHECK_STR(json_string_value(json_object_get(hit, "text")), "apricot");
    RF_CHECK(fabs(json_real_value(json_array_get(json_object_get(hit, "vector"), 3)) - 0.8) < 1e-6);
    resp_fini(&r);
    /* Without "vector", none. */
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":1}", &r);
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK(json_object_get(hit, "vector") == NULL);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_context(void)
{
    fx_t fx;
    resp_t r;
    json_t *c, *cites, *results, *budget;
    char longtext[600], body[256];
    const char *ctx;

    fx_start(&fx, 65536, 1, 2);
    /* The same text under another id, and a long passage. */
    fx_upsert(&fx, "t.docs:7", "apple", e0, NULL, NULL, NULL, rf_now_ms(), "t", 0, 4);
    for (size_t i = 0; i < sizeof(longtext) - 1; i++)
        longtext[i] = (i % 8 == 7) ? ' ' : 'd';
    longtext[sizeof(longtext) - 1] = '\0';
    fx_upsert(&fx, "t.docs:8", longtext, e3, NULL, NULL, NULL, rf_now_ms(), "t", 0, 5);

    http(&fx, "POST", "/v1/context", "{\"query\":\"apple\",\"k\":3}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_REQUIRE(r.json);
    ctx = json_string_value(json_object_get(r.json, "context"));
    RF_CHECK_STR(ctx, "[1] apple\n\n[2] apricot banana");
    cites = json_object_get(r.json, "citations");
    RF_REQUIRE(json_array_size(cites) == 2);
    c = json_array_get(cites, 0);
    RF_CHECK_INT(json_integer_value(json_object_get(c, "n")), 1);
    RF_CHECK(!strcmp(json_string_value(json_object_get(c, "id")), "t.docs:1") ||
             !strcmp(json_string_value(json_object_get(c, "id")), "t.docs:7"));
    RF_CHECK_STR(json_string_value(json_object_get(c, "source")), "t.docs");
    RF_CHECK(json_integer_value(json_object_get(c, "updated_at_ms")) > 0);
    RF_CHECK(json_is_false(json_object_get(c, "truncated")));
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(c, "position"), "topic")), "t");
    c = json_array_get(cites, 1);
    RF_CHECK_STR(json_string_value(json_object_get(c, "id")), "t.docs:2");
    RF_CHECK(json_number_value(json_object_get(c, "score")) < 0.81);
    /* The duplicate text is left out, counted, and its result has no citation. */
    RF_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(r.json, "omitted"), "duplicates")), 1);
    results = json_object_get(r.json, "results");
    RF_CHECK_INT(json_array_size(results), 3);
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(results, 0), "citation")), 1);
    RF_CHECK(json_is_null(json_object_get(json_array_get(results, 1), "citation")));
    RF_CHECK_INT(json_integer_value(json_object_get(json_array_get(results, 2), "citation")), 2);
    budget = json_object_get(r.json, "budget");
    RF_CHECK_INT(json_integer_value(json_object_get(budget, "max_chars")), 8000);
    RF_CHECK_INT(json_integer_value(json_object_get(budget, "chars")), strlen(ctx));
    RF_CHECK(json_object_get(json_object_get(r.json, "position"), "offsets") != NULL);
    resp_fini(&r);

    /* A budget cuts the long passage at a word, with the marker. */
    http(&fx, "POST", "/v1/context", "{\"query\":\"d\",\"k\":1,\"max_tokens\":25}", &r);
    RF_CHECK_INT(r.status, 200);
    ctx = json_string_value(json_object_get(r.json, "context"));
    RF_REQUIRE(ctx);
    if (strncmp(ctx, "[1] ddddddd ", 12) != 0)
        rf__test_fail(__FILE__, __LINE__, "context: %s", ctx);
    RF_CHECK(strlen(ctx) <= 100);
    RF_CHECK(strstr(ctx, " [truncated]") && !strcmp(strstr(ctx, " [truncated]"), " [truncated]"));
    budget = json_object_get(r.json, "budget");
    RF_CHECK_INT(json_integer_value(json_object_get(budget, "max_chars")), 100);
    RF_CHECK_INT(json_integer_value(json_object_get(budget, "max_tokens")), 25);
    RF_CHECK_INT(json_integer_value(json_object_get(budget, "estimated_tokens")),
                 (strlen(ctx) + 3) / 4);
    RF_CHECK(json_is_true(
        json_object_get(json_array_get(json_object_get(r.json, "citations"), 0), "truncated")));
    resp_fini(&r);

    /* Too small to be worth a cut: nothing, and every hit counted as over budget. */
    snprintf(body, sizeof(body), "{\"query\":\"d\",\"k\":2,\"max_chars\":20}");
    http(&fx, "POST", "/v1/context", body, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "context")), "");
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "citations")), 0);
    RF_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(r.json, "omitted"), "over_budget")), 2);
    resp_fini(&r);

    http(&fx, "POST", "/v1/context", "{\"query\":\"d\",\"max_chars\":0}", &r);
    RF_CHECK_INT(r.status, 400);
    resp_fini(&r);
    http(&fx, "GET", "/v1/context", NULL, &r);
    RF_CHECK_INT(r.status, 405);
    RF_CHECK(has_header(&r, "Allow: POST"));
    resp_fini(&r);
    fx_stop(&fx);
}

/* ==== Read-your-writes ==== */

typedef struct waiter {
    int port;
    const char *body;
    const char *path;
    resp_t r;
    int64_t ms; /* how long the request took */
} waiter_t;

static void *waiter_main(void *arg)
{
    waiter_t *w = arg;
    fx_t c;
    int64_t t0 = rf_mono_ms();
    memset(&c, 0, sizeof(c));
    c.port = w->port;
    c.curl = curl_easy_init();
    http(&c, "POST", w->path ? w->path : "/v1/search", w->body, &w->r);
    w->ms = rf_mono_ms() - t0;
    curl_easy_cleanup(c.curl);
    return NULL;
}

static int64_t pos_offset(const json_t *pos, const char *tp)
{
    return json_integer_value(json_object_get(json_object_get(pos, "offsets"), tp));
}

static void test_wait_at_once_and_timeout(void)
{
    fx_t fx;
    resp_t r;
    json_t *pos;
    int64_t t0;

    fx_start(&fx, 65536, 1, 2);
    /* Offsets 0..3 are applied: the client's offset 3 is there already. */
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"cherry\",\"k\":1,\"min_position\":{\"offsets\":{\"t/0\":3}},\"wait_ms\":0}",
         &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:4/x y");
    RF_CHECK(pos_offset(json_object_get(r.json, "position"), "t/0") >= 4);
    resp_fini(&r);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waits_total{outcome=\"at_once\"}", 1) == 1);

    /* Offset 4 is not: 504 after wait_ms, with the position reached. */
    t0 = rf_mono_ms();
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/0\":4}},\"wait_ms\":150}", &r);
    RF_CHECK(rf_mono_ms() - t0 >= 140);
    RF_CHECK_INT(r.status, 504);
    RF_CHECK_STR(err_code(&r), "position_timeout");
    pos = json_object_get(json_object_get(r.json, "error"), "position");
    RF_REQUIRE(pos);
    RF_CHECK_INT(pos_offset(pos, "t/0"), 4);
    RF_CHECK_INT(json_integer_value(json_object_get(pos, "seq")), fx.seq);
    resp_fini(&r);
    /* wait_ms 0 answers at once. */
    http(&fx, "POST", "/v1/context",
         "{\"query\":\"a\",\"min_position\":{\"seq\":999},\"wait_ms\":0}", &r);
    RF_CHECK_INT(r.status, 504);
    resp_fini(&r);
    /* An unknown partition has applied nothing yet. */
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"a\",\"min_position\":{\"offsets\":{\"other/7\":0}},\"wait_ms\":10}", &r);
    RF_CHECK_INT(r.status, 504);
    resp_fini(&r);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waits_total{outcome=\"timeout\"}", 3) == 3);
    fx_stop(&fx);
}

static void test_wait_reached(void)
{
    static const float v9[DIM] = {0, 0, 0, 1};
    fx_t fx;
    waiter_t w;
    pthread_t th;
    json_t *hit;
    char body[256];

    fx_start(&fx, 65536, 1, 2);
    memset(&w, 0, sizeof(w));
    w.port = fx.port;
    w.body =
        "{\"query\":\"d\",\"k\":1,\"min_position\":{\"offsets\":{\"t/1\":0}},\"wait_ms\":20000}";
    RF_REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    /* The request is parked (no worker thread held) until the write lands. */
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 1) == 1);
    fx_upsert(&fx, "t.docs:9", "durian", v9, NULL, NULL, NULL, rf_now_ms(), "t", 1, 0);
    pthread_join(th, NULL);
    RF_CHECK_INT(w.r.status, 200);
    RF_CHECK(w.ms < 10000);
    hit = json_array_get(json_object_get(w.r.json, "results"), 0);
    RF_CHECK_STR(json_string_value(json_object_get(hit, "id")), "t.docs:9");
    RF_CHECK_INT(pos_offset(json_object_get(w.r.json, "position"), "t/1"), 1);
    resp_fini(&w.r);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 0) == 0);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waits_total{outcome=\"reached\"}", 1) == 1);

    /* By store sequence, through /v1/context. */
    memset(&w, 0, sizeof(w));
    w.port = fx.port;
    w.path = "/v1/context";
    snprintf(body, sizeof(body),
             "{\"query\":\"b\",\"k\":1,\"min_position\":{\"seq\":%lld},\"wait_ms\":20000}",
             (long long)fx.seq + 1);
    w.body = body;
    RF_REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 1) == 1);
    fx_upsert(&fx, "t.docs:10", "blueberry", (const float[DIM]){0, 1, 0, 0}, NULL, NULL, NULL,
              rf_now_ms(), "t", 1, 1);
    pthread_join(th, NULL);
    RF_CHECK_INT(w.r.status, 200);
    RF_CHECK(json_integer_value(json_object_get(json_object_get(w.r.json, "position"), "seq")) >=
             fx.seq);
    RF_CHECK(strstr(json_string_value(json_object_get(w.r.json, "context")), "[1] b") != NULL);
    resp_fini(&w.r);
    fx_stop(&fx);
}

/* Applies one upsert of source "pg.items" (Kafka topic "pg", partition 0) with source
 * position pos ("lsn=34133800", or a MySQL "file:pos"). */
static void upsert_at(fx_t *fx, const char *id, const char *text, const float *vec, const char *pos,
                      int64_t offset)
{
    rf_index_op_t op;
    rf_index_offset_t off = {"pg", 0, offset + 1};
    rf_index_batch_t batch;
    rf_err_t err;

    memset(&op, 0, sizeof(op));
    op.kind = RF_INDEX_UPSERT;
    op.id = id;
    op.source = "pg.items";
    op.text = text;
    op.vec = vec;
    op.model = "test";
    op.source_pos = pos;
    op.topic = "pg";
    op.offset = offset;
    memset(&batch, 0, sizeof(batch));
    batch.ops = &op;
    batch.op_cnt = 1;
    batch.offsets = &off;
    batch.offset_cnt = 1;
    if (rf_index_apply(fx->ix, &batch, &fx->seq, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_index_apply: %s", err.msg);
}

static int64_t pos_lsn(const json_t *pos, const char *source)
{
    json_t *v = json_object_get(json_object_get(pos, "lsn"), source);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

/* min_position.lsn: a Debezium source position (PostgreSQL LSN) per source. */
static void test_wait_lsn(void)
{
    fx_t fx;
    resp_t r;
    waiter_t w;
    pthread_t th;
    json_t *pos;

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":1}", &r);
    RF_CHECK_INT(json_object_size(json_object_get(json_object_get(r.json, "position"), "lsn")), 0);
    resp_fini(&r);
    upsert_at(&fx, "pg.items:1", "elderberry", e3, "lsn=34133800", 0);
    /* Reached: as a number (Debezium's form) and as PostgreSQL's text (0/208D628 is
     * 34133800 - 256). */
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"d\",\"k\":1,\"min_position\":{\"lsn\":{\"pg.items\":34133800}},"
         "\"wait_ms\":0}",
         &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(result_id(&r, 0), "pg.items:1");
    RF_CHECK_INT(pos_lsn(json_object_get(r.json, "position"), "pg.items"), 34133800);
    resp_fini(&r);
    http(&fx, "POST", "/v1/context",
         "{\"query\":\"d\",\"k\":1,\"min_position\":{\"lsn\":{\"pg.items\":\"0/208D628\"}},"
         "\"wait_ms\":0}",
         &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(pos_lsn(json_object_get(r.json, "position"), "pg.items"), 34133800);
    resp_fini(&r);

    /* Not reached: 504 with the LSN reached; an unknown source has reached nothing. */
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"d\",\"min_position\":{\"lsn\":{\"pg.items\":34133801}},\"wait_ms\":100}",
         &r);
    RF_CHECK_INT(r.status, 504);
    pos = json_object_get(json_object_get(r.json, "error"), "position");
    RF_CHECK_INT(pos_lsn(pos, "pg.items"), 34133800);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"d\",\"min_position\":{\"lsn\":{\"pg.other\":0}},\"wait_ms\":10}", &r);
    RF_CHECK_INT(r.status, 504);
    resp_fini(&r);
    /* A MySQL binlog position cannot be waited for. */
    http(&fx, "POST", "/v1/search",
         "{\"query\":\"d\",\"min_position\":{\"lsn\":{\"pg.items\":\"mysql-bin.000003:154\"}}}",
         &r);
    RF_CHECK_INT(r.status, 400);
    RF_CHECK_STR(err_code(&r), "unsupported");
    resp_fini(&r);

    /* Waiting: parked until a batch brings the source to the LSN, with offsets too. */
    memset(&w, 0, sizeof(w));
    w.port = fx.port;
    w.body = "{\"query\":\"d\",\"k\":1,\"min_position\":{\"lsn\":{\"pg.items\":34134000},"
             "\"offsets\":{\"pg/0\":1}},\"wait_ms\":20000}";
    RF_REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 1) == 1);
    /* A position that is not a number, or lower, moves nothing. */
    upsert_at(&fx, "pg.items:3", "fig", e0, "mysql-bin.000003:154", 1);
    upsert_at(&fx, "pg.items:4", "grape", e0, "lsn=100", 2);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 1) == 1);
    upsert_at(&fx, "pg.items:2", "date", e3, "lsn=34134000", 3);
    pthread_join(th, NULL);
    RF_CHECK_INT(w.r.status, 200);
    RF_CHECK(w.ms < 10000);
    RF_CHECK_STR(result_id(&w.r, 0), "pg.items:1");
    RF_CHECK_INT(pos_lsn(json_object_get(w.r.json, "position"), "pg.items"), 34134000);
    resp_fini(&w.r);

    http(&fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(pos_lsn(r.json, "pg.items"), 34134000);
    RF_CHECK_INT(pos_lsn(r.json, "t.docs"), -1);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_wait_many(void)
{
    enum { N = 6 };
    fx_t fx;
    waiter_t w[N];
    pthread_t th[N];
    char bodies[N][160];

    fx_start(&fx, 65536, 1, 2);
    for (int i = 0; i < N; i++) {
        memset(&w[i], 0, sizeof(w[i]));
        w[i].port = fx.port;
        snprintf(bodies[i], sizeof(bodies[i]),
                 "{\"query\":\"a\",\"k\":1,\"min_position\":{\"offsets\":{\"t/2\":%d}},"
                 "\"wait_ms\":20000}",
                 i);
        w[i].body = bodies[i];
        RF_REQUIRE(pthread_create(&th[i], NULL, waiter_main, &w[i]) == 0);
    }
    /* More waiting requests than HTTP threads: none of them holds a thread. */
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", N) == N);
    {
        resp_t r;
        http(&fx, "GET", "/healthz", NULL, &r);
        RF_CHECK_INT(r.status, 200);
        resp_fini(&r);
    }
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof(id), "t.docs:w%d", i);
        fx_upsert(&fx, id, "walnut", e0, NULL, NULL, NULL, rf_now_ms(), "t", 2, i);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        RF_CHECK_INT(w[i].r.status, 200);
        RF_CHECK(pos_offset(json_object_get(w[i].r.json, "position"), "t/2") >= i + 1);
        resp_fini(&w[i].r);
    }
    fx_stop(&fx);
}

static void test_wait_stop(void)
{
    fx_t fx;
    waiter_t w;
    pthread_t th;
    int64_t t0;

    fx_start(&fx, 65536, 1, 2);
    memset(&w, 0, sizeof(w));
    w.port = fx.port;
    w.body = "{\"query\":\"a\",\"min_position\":{\"seq\":999999},\"wait_ms\":30000}";
    RF_REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
    RF_CHECK(metric_wait(&fx, "ragfeed_position_waiting", 1) == 1);
    /* A stop does not wait for the whole wait_ms: the request gets a 503 now. */
    t0 = rf_mono_ms();
    curl_easy_cleanup(fx.curl);
    fx.curl = NULL;
    rf_serve_stop(fx.srv);
    fx.srv = NULL;
    RF_CHECK(rf_mono_ms() - t0 < 3000);
    pthread_join(th, NULL);
    RF_CHECK_INT(w.r.status, 503);
    RF_CHECK_STR(err_code(&w.r), "unavailable");
    resp_fini(&w.r);
    fx_stop(&fx);
}

/* ==== Sections, metrics, page ==== */

typedef struct part {
    int unready;
    int calls;
} part_t;

static char *part_status(void *opaque)
{
    part_t *p = opaque;
    __atomic_add_fetch(&p->calls, 1, __ATOMIC_RELAXED);
    return rf_xstrdup("{\"snapshots\":3,\"table\":\"db.history\"}");
}

static void part_metrics(void *opaque, rf_buf_t *out)
{
    (void)opaque;
    rf_buf_puts(out, "# HELP ragfeed_test_snapshots Test.\n# TYPE ragfeed_test_snapshots gauge\n"
                     "ragfeed_test_snapshots 3");
}

static const char *part_unready(void *opaque, char *buf, size_t n)
{
    part_t *p = opaque;
    if (!__atomic_load_n(&p->unready, __ATOMIC_RELAXED))
        return NULL;
    snprintf(buf, n, "catalog locked");
    return buf;
}

static char *bad_status(void *opaque)
{
    (void)opaque;
    return rf_xstrdup("[1,2]");
}

static void test_sections(void)
{
    part_t part = {0, 0};
    rf_serve_section_t secs[3];
    rf_serve_opts_t o;
    fx_t fx;
    resp_t r;

    memset(secs, 0, sizeof(secs));
    secs[0].name = "iceberg";
    secs[0].opaque = &part;
    secs[0].status_json = part_status;
    secs[0].metrics = part_metrics;
    secs[0].unready = part_unready;
    secs[1].name = "records"; /* the index's own key wins */
    secs[1].status_json = part_status;
    secs[1].opaque = &part;
    secs[2].name = "broken";
    secs[2].status_json = bad_status;
    fx_open(&fx);
    o = fx_opts(&fx, 2);
    o.sections = secs;
    o.section_cnt = 3;
    fx_serve(&fx, &o);
    __atomic_store_n(&fx.counters.ready, 1, __ATOMIC_RELAXED);

    http(&fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(
        json_integer_value(json_object_get(json_object_get(r.json, "iceberg"), "snapshots")), 3);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "records")), 4);
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(r.json, "broken"), "error")),
                 "status unavailable");
    resp_fini(&r);

    http(&fx, "GET", "/metrics", NULL, &r);
    RF_REQUIRE(r.body.ptr);
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_test_snapshots 3\n") != NULL);
    resp_fini(&r);

    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    __atomic_store_n(&part.unready, 1, __ATOMIC_RELAXED);
    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK_INT(r.status, 503);
    RF_CHECK(json_is_false(json_object_get(r.json, "ready")));
    RF_CHECK_STR(json_string_value(json_object_get(json_object_get(r.json, "reasons"), "iceberg")),
                 "catalog locked");
    RF_CHECK(json_object_get(json_object_get(r.json, "reasons"), "pipeline") == NULL);
    resp_fini(&r);
    __atomic_store_n(&fx.counters.ready, 0, __ATOMIC_RELAXED);
    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK(json_object_get(json_object_get(r.json, "reasons"), "pipeline") != NULL);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_freshness_topics(void)
{
    fx_t fx;
    resp_t r;
    char name[32];

    fx_start(&fx, 65536, 1, 2);
    rf_serve_freshness_observe(fx.srv, RF_SERVE_STAGE_APPLIED, 30);
    rf_serve_freshness_observe(fx.srv, RF_SERVE_STAGE_APPLIED, 2000);
    rf_serve_freshness_observe(fx.srv, RF_SERVE_STAGE_CONSUMED, 5000);
    rf_serve_freshness_observe(fx.srv, RF_SERVE_STAGE_EXPORTED, -5);
    rf_serve_freshness_observe(fx.srv, RF_SERVE_STAGE_EMBEDDED, 99999999);
    rf_serve_freshness_observe(fx.srv, 9, 1);
    rf_serve_freshness_observe(NULL, RF_SERVE_STAGE_APPLIED, 1);
    rf_serve_events_count(fx.srv, "orders", RF_SERVE_EVENTS_CONSUMED, 5);
    rf_serve_events_count(fx.srv, "orders", RF_SERVE_EVENTS_CONSUMED, 2);
    rf_serve_events_count(fx.srv, "orders", RF_SERVE_EVENTS_DEAD, 1);
    rf_serve_events_count(fx.srv, "we\"ird\\", RF_SERVE_EVENTS_APPLIED, 2);
    rf_serve_events_count(fx.srv, "orders", 7, 1);
    rf_serve_events_count(NULL, "orders", RF_SERVE_EVENTS_DEAD, 1);
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "topic%03d", i);
        rf_serve_events_count(fx.srv, name, RF_SERVE_EVENTS_APPLIED, 1);
    }

    http(&fx, "GET", "/metrics", NULL, &r);
    RF_REQUIRE(r.body.ptr);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"applied\",le=\"0.025\"}") == 0);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"applied\",le=\"0.05\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"applied\",le=\"2.5\"}") == 2);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_freshness_seconds_count{stage=\"applied\"}") == 2);
    RF_CHECK(fabs(metric_value(r.body.ptr, "ragfeed_freshness_seconds_sum{stage=\"applied\"}") -
                  2.03) < 1e-9);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"consumed\",le=\"5\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"exported\",le=\"0.01\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"embedded\",le=\"3600\"}") == 0);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_freshness_seconds_bucket{stage=\"embedded\",le=\"+Inf\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr,
                          "ragfeed_topic_events_total{topic=\"orders\",outcome=\"consumed\"}") ==
             7);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_topic_events_total{topic=\"orders\",outcome="
                                      "\"dead_lettered\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_topic_events_total{topic=\"we\\\"ird\\\\\","
                                      "outcome=\"applied\"}") == 2);
    /* 256 topics have series of their own; the others add up under "_other". */
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_topic_events_total{topic=\"topic253\","
                                      "outcome=\"applied\"}") == 1);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_topic_events_total{topic=\"topic254\","
                                      "outcome=\"applied\"}") == -1);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_topic_events_total{topic=\"_other\","
                                      "outcome=\"applied\"}") == 46);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_http_connections") >= 1);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_index_seq") == (double)fx.seq);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_newest_event_age_seconds") >= 0);
    RF_CHECK(metric_value(r.body.ptr, "ragfeed_dead_letters") == 0);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_page(void)
{
    fx_t fx;
    resp_t r;

    fx_start(&fx, 65536, 1, 1);
    http(&fx, "GET", "/", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(has_header(&r, "Content-Type: text/html"));
    RF_REQUIRE(r.body.ptr);
    RF_CHECK(strstr(r.body.ptr, "<title>ragfeed</title>") != NULL);
    RF_CHECK(strstr(r.body.ptr, "/v1/search") && strstr(r.body.ptr, "/v1/status"));
    resp_fini(&r);
    http(&fx, "HEAD", "/?q=apple", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&fx, "POST", "/", "{}", &r);
    RF_CHECK_INT(r.status, 405);
    resp_fini(&r);
    http(&fx, "GET", "/index.html", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);
    fx_stop(&fx);
}

RF_TEST_MAIN(test_filters, test_score_include, test_context, test_wait_at_once_and_timeout,
             test_wait_reached, test_wait_lsn, test_wait_many, test_wait_stop, test_sections,
             test_freshness_topics, test_page)
