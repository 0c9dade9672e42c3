/* test_serve.c - the HTTP API over real sockets: libcurl against rf_serve_start on a
 * free port, with a real index in a temporary directory (serve_testlib.c): search,
 * records, status, health, metrics, limits on bodies, malformed input, logging, listen
 * addresses.
 * Covers INVARIANT(fresh-is-measurable): search answers carry their position.
 */
#include "serve_testlib.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

/* ==== Tests ==== */

static void test_search_query(void)
{
    fx_t fx;
    resp_t r;
    json_t *hit, *pos, *meta;

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "POST", "/v1/search", "{\"query\":\"apple\",\"k\":2}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(has_header(&r, "Content-Type: application/json"));
    RF_REQUIRE(r.json);
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "results")), 2);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:1");
    RF_CHECK_STR(result_id(&r, 1), "t.docs:2");
    hit = json_array_get(json_object_get(r.json, "results"), 0);
    RF_CHECK(fabs(json_number_value(json_object_get(hit, "score")) - 1.0) < 1e-4);
    RF_CHECK(fabs(json_number_value(json_object_get(
                      json_array_get(json_object_get(r.json, "results"), 1), "score")) -
                  0.8) < 1e-4);
    RF_CHECK_STR(json_string_value(json_object_get(hit, "text")), "apple");
    meta = json_object_get(hit, "metadata");
    RF_CHECK(json_is_object(meta));
    RF_CHECK_STR(json_string_value(json_object_get(meta, "color")), "red");
    RF_CHECK_STR(json_string_value(json_object_get(hit, "label")), "fruit");
    RF_CHECK_STR(json_string_value(json_object_get(hit, "tenant")), "acme");
    pos = json_object_get(hit, "position");
    RF_CHECK_STR(json_string_value(json_object_get(pos, "topic")), "t");
    RF_CHECK_INT(json_integer_value(json_object_get(pos, "partition")), 0);
    RF_CHECK_INT(json_integer_value(json_object_get(pos, "offset")), 0);
    RF_CHECK(json_integer_value(json_object_get(pos, "event_time_ms")) > 0);
    hit = json_array_get(json_object_get(r.json, "results"), 1);
    RF_CHECK(json_is_null(json_object_get(hit, "metadata")));
    RF_CHECK(json_is_null(json_object_get(hit, "label")));
    RF_CHECK(json_is_null(json_object_get(hit, "tenant")));
    /* INVARIANT(fresh-is-measurable): the answer says what it reflects. */
    pos = json_object_get(r.json, "position");
    RF_CHECK_INT(json_integer_value(json_object_get(pos, "seq")), fx.seq);
    RF_CHECK_INT(json_integer_value(json_object_get(json_object_get(pos, "offsets"), "t/0")), 4);
    RF_CHECK(json_is_integer(json_object_get(pos, "newest_event_age_ms")));
    RF_CHECK(json_integer_value(json_object_get(pos, "newest_event_age_ms")) >= 0);
    resp_fini(&r);

    http(&fx, "POST", "/v1/search", "{\"query\":\"banana\",\"k\":2}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:3");
    RF_CHECK_STR(result_id(&r, 1), "t.docs:2");
    resp_fini(&r);

    /* k defaults to 10, so every record comes back, best first. */
    http(&fx, "POST", "/v1/search", "{\"query\":\"cherry\"}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "results")), 4);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:4/x y");
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_search_vector(void)
{
    fx_t fx;
    resp_t r;
    static const char *bad[] = {
        "{\"vector\":[1,0,0]}",      "{\"vector\":[1,0,0,0,0]}",  "{\"vector\":[1,\"0\",0,0]}",
        "{\"vector\":[0,0,0,0]}",    "{\"vector\":[1e39,0,0,0]}", "{\"vector\":{\"a\":1}}",
        "{\"vector\":[1,null,0,0]}", "{\"vector\":\"1,0,0,0\"}",
    };

    fx_start(&fx, 65536, 1, 1);
    /* Not unit length: the server normalises it. */
    http(&fx, "POST", "/v1/search", "{\"vector\":[0,0,5,0],\"k\":1}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "results")), 1);
    RF_CHECK_STR(result_id(&r, 0), "t.docs:4/x y");
    RF_CHECK(fabs(json_number_value(json_object_get(
                      json_array_get(json_object_get(r.json, "results"), 0), "score")) -
                  1.0) < 1e-4);
    resp_fini(&r);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http(&fx, "POST", "/v1/search", bad[i], &r);
        if (r.status != 400 || strcmp(err_code(&r), "bad_request") != 0)
            rf__test_fail(__FILE__, __LINE__, "%s: status %ld code %s", bad[i], r.status,
                          err_code(&r));
        resp_fini(&r);
    }
    fx_stop(&fx);
}

static void test_search_errors(void)
{
    static const struct {
        const char *body;
        long status;
        const char *code;
        const char *in_msg;
    } cases[] = {
        {"not json", 400, "bad_json", "line 1"},
        {"{\"query\":\"a\",}", 400, "bad_json", "column"},
        {"", 400, "bad_json", ""},
        {"[1,2]", 400, "bad_json", "object"},
        {"\"apple\"", 400, "bad_json", "object"},
        {"{\"query\":\"a\",\"query\":\"b\"}", 400, "bad_json", "duplicate"},
        {"{\"query\":5}", 400, "bad_request", "query"},
        {"{\"query\":null}", 400, "bad_request", "query"},
        {"{\"query\":\"\"}", 400, "bad_request", "empty"},
        {"{\"query\":\"  \"}", 400, "bad_request", "empty"},
        {"{}", 400, "bad_request", "required"},
        {"{\"k\":3}", 400, "bad_request", "required"},
        {"{\"query\":\"a\",\"vector\":[1,0,0,0]}", 400, "bad_request", "not both"},
        {"{\"query\":\"a\",\"filters\":{}}", 400, "bad_request", "\"filters\""},
        {"{\"query\":\"a\",\"max_chars\":10}", 400, "bad_request", "\"max_chars\""},
        {"{\"query\":\"a\",\"wait_ms\":1}", 400, "bad_request", "wait_ms needs min_position"},
        {"{\"query\":\"a\",\"k\":0}", 400, "bad_k", "1 to 50"},
        {"{\"query\":\"a\",\"k\":-1}", 400, "bad_k", ""},
        {"{\"query\":\"a\",\"k\":51}", 400, "bad_k", ""},
        {"{\"query\":\"a\",\"k\":2.5}", 400, "bad_k", ""},
        {"{\"query\":\"a\",\"k\":\"3\"}", 400, "bad_k", ""},
        {"{\"query\":\"a\",\"k\":true}", 400, "bad_k", ""},
        {"{\"query\":\"a\",\"k\":99999999999999999999}", 400, "bad_json", ""},
        {"{\"query\":\"a\\u0000b\"}", 400, "bad_json", ""},
        {"{\"query\":\"!down\"}", 503, "embed_unavailable", "endpoint down"},
        {"{\"query\":\"?refused\"}", 502, "embed_failed", "refused"},
    };
    fx_t fx;
    resp_t r;

    fx_start(&fx, 65536, 1, 2);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http(&fx, "POST", "/v1/search", cases[i].body, &r);
        if (r.status != cases[i].status || strcmp(err_code(&r), cases[i].code) != 0 ||
            !strstr(err_msg(&r), cases[i].in_msg) || !err_msg(&r)[0] ||
            !has_header(&r, "Content-Type: application/json"))
            rf__test_fail(__FILE__, __LINE__, "body %s: got %ld %s", cases[i].body, r.status,
                          r.body.ptr ? r.body.ptr : "(no body)");
        resp_fini(&r);
    }
    /* The edge values of k are accepted. */
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":50}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search", "{\"query\":\"a\",\"k\":1}", &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "results")), 1);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_too_large(void)
{
    fx_t fx;
    resp_t r;
    char *big = rf_xmalloc(5001), ok[1024];
    size_t n;

    memset(big, ' ', 5000);
    big[5000] = '\0';
    big[0] = '{';
    big[4999] = '}';
    fx_start(&fx, 1024, 1, 2);

    http_ex(&fx, "POST", "/v1/search", big, 5000, 0, &r);
    RF_CHECK_INT(r.status, 413);
    RF_CHECK_STR(err_code(&r), "too_large");
    resp_fini(&r);
    http_ex(&fx, "POST", "/v1/search", big, 5000, 1, &r);
    RF_CHECK_INT(r.status, 413);
    RF_CHECK_STR(err_code(&r), "too_large");
    resp_fini(&r);
    /* One byte over the limit. */
    http_ex(&fx, "POST", "/v1/search", big, 1025, 1, &r);
    RF_CHECK_INT(r.status, 413);
    resp_fini(&r);

    /* Exactly max_body bytes is fine. */
    n = (size_t)snprintf(ok, sizeof(ok), "{\"query\":\"apple\"}");
    memset(ok + n, ' ', sizeof(ok) - n);
    http_ex(&fx, "POST", "/v1/search", ok, sizeof(ok), 0, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http_ex(&fx, "POST", "/v1/search", ok, sizeof(ok), 1, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);

    http(&fx, "GET", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    free(big);
    fx_stop(&fx);
}

static void test_records(void)
{
    fx_t fx;
    resp_t r;
    char path[256], *esc;

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "GET", "/v1/records/t.docs%3A1", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(has_header(&r, "Content-Type: application/json"));
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "id")), "t.docs:1");
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "text")), "apple");
    resp_fini(&r);

    http(&fx, "GET", "/v1/records/t.docs:2", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "id")), "t.docs:2");
    resp_fini(&r);

    esc = curl_easy_escape(fx.curl, "t.docs:4/x y", 0);
    snprintf(path, sizeof(path), "/v1/records/%s", esc);
    curl_free(esc);
    RF_CHECK(strstr(path, "%2F") != NULL);
    http(&fx, "GET", path, NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "id")), "t.docs:4/x y");
    resp_fini(&r);

    http(&fx, "GET", "/v1/records/t.docs%3a9", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    RF_CHECK_STR(err_code(&r), "not_found");
    RF_CHECK(strstr(err_msg(&r), "t.docs:9") != NULL);
    resp_fini(&r);
    http(&fx, "GET", "/v1/records/", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    RF_CHECK_STR(err_code(&r), "not_found");
    resp_fini(&r);
    http(&fx, "GET", "/v1/records/bad%zz", NULL, &r);
    RF_CHECK_INT(r.status, 400);
    RF_CHECK_STR(err_code(&r), "bad_request");
    resp_fini(&r);
    http(&fx, "GET", "/v1/records/a%00b", NULL, &r);
    RF_CHECK_INT(r.status, 400);
    resp_fini(&r);
    http(&fx, "GET", "/v1/records/a%4", NULL, &r);
    RF_CHECK_INT(r.status, 400);
    resp_fini(&r);
    /* Bytes that are not UTF-8 still get a JSON error. */
    http(&fx, "GET", "/v1/records/%ff%fe", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    RF_CHECK_STR(err_code(&r), "not_found");
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_routes(void)
{
    fx_t fx;
    resp_t r;

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "GET", "/nope", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    RF_CHECK_STR(err_code(&r), "not_found");
    resp_fini(&r);
    http(&fx, "GET", "/v1/searchx", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);
    http(&fx, "POST", "/nope", "{\"query\":\"a\"}", &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);

    http(&fx, "GET", "/v1/search", NULL, &r);
    RF_CHECK_INT(r.status, 405);
    RF_CHECK_STR(err_code(&r), "method_not_allowed");
    RF_CHECK(has_header(&r, "Allow: POST"));
    resp_fini(&r);
    http(&fx, "POST", "/healthz", "{}", &r);
    RF_CHECK_INT(r.status, 405);
    RF_CHECK(has_header(&r, "Allow: GET, HEAD"));
    resp_fini(&r);
    http(&fx, "DELETE", "/v1/records/t.docs%3A1", NULL, &r);
    RF_CHECK_INT(r.status, 405);
    RF_CHECK(has_header(&r, "Allow: GET, HEAD"));
    resp_fini(&r);
    http(&fx, "PUT", "/metrics", "x", &r);
    RF_CHECK_INT(r.status, 405);
    resp_fini(&r);

    http(&fx, "HEAD", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    /* The record survived the refused DELETE. */
    http(&fx, "GET", "/v1/records/t.docs%3A1", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_health_ready(void)
{
    fx_t fx;
    resp_t r;

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "GET", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "status")), "ok");
    resp_fini(&r);
    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK_INT(r.status, 503);
    RF_CHECK(json_is_false(json_object_get(r.json, "ready")));
    resp_fini(&r);
    __atomic_store_n(&fx.counters.ready, 1, __ATOMIC_RELAXED);
    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(json_is_true(json_object_get(r.json, "ready")));
    resp_fini(&r);
    fx_stop(&fx);

    /* Without counters the server is ready as soon as it serves. */
    fx_start(&fx, 65536, 0, 1);
    http(&fx, "GET", "/readyz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(json_is_true(json_object_get(r.json, "ready")));
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_status(void)
{
    fx_t fx;
    resp_t r;
    json_t *recent, *rec;

    fx_start(&fx, 65536, 1, 2);
    fx.counters.events_consumed = 7;
    fx.counters.events_applied = 4;
    fx.counters.events_dead = 2;
    fx.counters.events_skipped = 1;
    fx.counters.batches_applied = 3;
    http(&fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_REQUIRE(r.json);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "records")), 4);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "seq")), fx.seq);
    RF_CHECK_INT(json_integer_value(json_object_get(json_object_get(r.json, "offsets"), "t/0")), 4);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "events_consumed")), 7);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "events_applied")), 4);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "events_dead")), 2);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "events_skipped")), 1);
    RF_CHECK_INT(json_integer_value(json_object_get(r.json, "batches_applied")), 3);
    RF_CHECK(json_is_false(json_object_get(r.json, "ready")));
    RF_CHECK(json_is_null(json_object_get(r.json, "last_error")));
    /* The records written last, newest first (the four of one batch, by seq). */
    recent = json_object_get(r.json, "recent_records");
    RF_REQUIRE(json_is_array(recent));
    RF_CHECK_INT(json_array_size(recent), 4);
    rec = json_array_get(recent, 0);
    RF_CHECK_STR(json_string_value(json_object_get(rec, "id")), "t.docs:4/x y");
    RF_CHECK_STR(json_string_value(json_object_get(rec, "source")), "t.docs");
    RF_CHECK_STR(json_string_value(json_object_get(rec, "snippet")), "cherry");
    RF_CHECK(json_is_false(json_object_get(rec, "truncated")));
    RF_CHECK_INT(json_integer_value(json_object_get(rec, "seq")), fx.seq);
    RF_CHECK(json_integer_value(json_object_get(rec, "updated_at_ms")) > 1700000000000LL);
    rec = json_array_get(recent, 3);
    RF_CHECK_STR(json_string_value(json_object_get(rec, "id")), "t.docs:1");
    RF_CHECK_STR(json_string_value(json_object_get(rec, "tenant")), "acme");
    resp_fini(&r);

    /* A long text is cut to a snippet of whole characters (two bytes each here). */
    {
        static const float v[DIM] = {0, 0, 0, 1};
        char text[2 * 300 + 1];
        for (int i = 0; i < 300; i++)
            memcpy(text + 2 * i, "\xc3\xa9", 2);
        text[600] = '\0';
        fx_upsert(&fx, "t.docs:long", text, v, NULL, NULL, NULL, 0, "t", 0, 4);
    }
    http(&fx, "GET", "/v1/status", NULL, &r);
    rec = json_array_get(json_object_get(r.json, "recent_records"), 0);
    RF_CHECK_STR(json_string_value(json_object_get(rec, "id")), "t.docs:long");
    RF_CHECK_INT(json_string_length(json_object_get(rec, "snippet")), 2 * 120);
    RF_CHECK(json_is_true(json_object_get(rec, "truncated")));
    RF_CHECK_INT(json_array_size(json_object_get(r.json, "recent_records")), 5);
    resp_fini(&r);

    pthread_mutex_lock(&fx.lock);
    snprintf(fx.counters.last_error, sizeof(fx.counters.last_error), "embed: boom");
    pthread_mutex_unlock(&fx.lock);
    __atomic_store_n(&fx.counters.ready, 1, __ATOMIC_RELAXED);
    http(&fx, "GET", "/v1/status", NULL, &r);
    RF_CHECK_STR(json_string_value(json_object_get(r.json, "last_error")), "embed: boom");
    RF_CHECK(json_is_true(json_object_get(r.json, "ready")));
    resp_fini(&r);
    fx_stop(&fx);
}

static void test_metrics(void)
{
    static const char *names[] = {
        "ragfeed_events_consumed_total",
        "ragfeed_events_applied_total",
        "ragfeed_events_dead_lettered_total",
        "ragfeed_events_skipped_total",
        "ragfeed_batches_applied_total",
        "ragfeed_records",
        "ragfeed_store_seq",
        "ragfeed_index_vectors",
        "ragfeed_index_dead_vectors",
        "ragfeed_index_segments",
        "ragfeed_index_segments_pending",
        "ragfeed_index_memory_bytes",
        "ragfeed_index_bytes_per_record",
        "ragfeed_ready",
        "ragfeed_http_requests_total",
        "ragfeed_search_duration_seconds",
    };
    fx_t fx;
    resp_t r;
    char line[256];

    fx_start(&fx, 65536, 1, 2);
    fx.counters.events_consumed = 7;
    fx.counters.events_dead = 2;
    for (int i = 0; i < 3; i++) {
        http(&fx, "GET", "/healthz", NULL, &r);
        resp_fini(&r);
    }
    http(&fx, "GET", "/nope", NULL, &r);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search", "{\"query\":\"apple\"}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search", "{\"query\":5}", &r);
    resp_fini(&r);

    http(&fx, "GET", "/metrics", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    RF_CHECK(has_header(&r, "Content-Type: text/plain; version=0.0.4"));
    RF_REQUIRE(r.body.ptr);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(line, sizeof(line), "# TYPE %s ", names[i]);
        if (!strstr(r.body.ptr, line))
            rf__test_fail(__FILE__, __LINE__, "no \"%s\" in /metrics", line);
        snprintf(line, sizeof(line), "# HELP %s ", names[i]);
        if (!strstr(r.body.ptr, line))
            rf__test_fail(__FILE__, __LINE__, "no \"%s\" in /metrics", line);
    }
    RF_CHECK(strstr(r.body.ptr, "# TYPE ragfeed_search_duration_seconds histogram\n"));
    RF_CHECK(
        strstr(r.body.ptr, "\nragfeed_http_requests_total{path=\"/healthz\",code=\"200\"} 3\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_http_requests_total{path=\"other\",code=\"404\"} 1\n"));
    RF_CHECK(
        strstr(r.body.ptr, "\nragfeed_http_requests_total{path=\"/v1/search\",code=\"200\"} 1\n"));
    RF_CHECK(
        strstr(r.body.ptr, "\nragfeed_http_requests_total{path=\"/v1/search\",code=\"400\"} 1\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_events_consumed_total 7\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_events_dead_lettered_total 2\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_records 4\n"));
    snprintf(line, sizeof(line), "\nragfeed_store_seq %lld\n", (long long)fx.seq);
    RF_CHECK(strstr(r.body.ptr, line));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_ready 0\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_search_duration_seconds_bucket{le=\"+Inf\"} 1\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_search_duration_seconds_count 1\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_search_duration_seconds_sum "));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_index_vectors 4\n"));
    RF_CHECK(strstr(r.body.ptr, "\nragfeed_index_dead_vectors 0\n"));
    {
        /* The memory per record is the status's, and at least the vector itself. */
        const char *p = strstr(r.body.ptr, "\nragfeed_index_bytes_per_record ");
        long long bpr = p ? strtoll(p + strlen("\nragfeed_index_bytes_per_record "), NULL, 10) : -1;
        resp_t st;
        http(&fx, "GET", "/v1/status", NULL, &st);
        RF_CHECK_INT(bpr, json_integer_value(json_object_get(st.json, "bytes_per_record")));
        RF_CHECK(bpr >= (long long)(DIM * sizeof(float)));
        resp_fini(&st);
    }
    resp_fini(&r);

    /* The /metrics request itself is counted. */
    http(&fx, "GET", "/metrics", NULL, &r);
    RF_CHECK(r.body.ptr &&
             strstr(r.body.ptr, "ragfeed_http_requests_total{path=\"/metrics\",code=\"200\"} 1\n"));
    resp_fini(&r);
    fx_stop(&fx);
}

/* xorshift64*: a fixed sequence, so a failure can be replayed. */
static uint64_t rnd(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static void test_malformed_bodies(void)
{
    static const char valid[] = "{\"query\":\"apple banana\",\"k\":3}";
    fx_t fx;
    resp_t r;
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    char *buf = rf_xmalloc(20000);
    int bad = 0;

    fx_start(&fx, 65536, 1, 2);
    for (int i = 0; i < 300; i++) {
        size_t len = 0;
        int kind = i % 5;
        if (kind == 0) {
            /* random bytes */
            len = rnd(&seed) % 300;
            for (size_t j = 0; j < len; j++)
                buf[j] = (char)(rnd(&seed) & 0xff);
            if (len && buf[0] == '{')
                buf[0] = 'x';
        } else if (kind == 1) {
            /* a valid request cut short */
            len = rnd(&seed) % (sizeof(valid) - 1);
            memcpy(buf, valid, len);
        } else if (kind == 2) {
            /* deep nesting, past jansson's depth limit and below it */
            size_t depth = 100 + rnd(&seed) % 5000;
            const char *open = (rnd(&seed) & 1) ? "[" : "{\"a\":";
            size_t ol = strlen(open);
            len = 0;
            len += (size_t)snprintf(buf, 20000, "{\"query\":");
            for (size_t j = 0; j < depth && len + ol < 19000; j++) {
                memcpy(buf + len, open, ol);
                len += ol;
            }
        } else if (kind == 3) {
            /* a valid request with one byte flipped */
            len = sizeof(valid) - 1;
            memcpy(buf, valid, len);
            buf[rnd(&seed) % len] = (char)(rnd(&seed) & 0xff);
            if (buf[0] == '{' && buf[len - 1] == '}' && memchr(buf, '\0', len) == NULL) {
                /* A flip can leave valid JSON; make it unknown-field or broken for sure. */
                buf[len - 1] = ',';
            }
        } else {
            /* well-formed JSON of the wrong shape */
            static const char *shapes[] = {
                "null",
                "true",
                "1",
                "[]",
                "{\"query\":[]}",
                "{\"query\":{}}",
                "{\"vector\":[[1]]}",
                "{\"k\":{}}",
                "{\"\":1}",
                "{\"query\":\"a\",\"k\":null}",
            };
            const char *s = shapes[rnd(&seed) % (sizeof(shapes) / sizeof(shapes[0]))];
            len = strlen(s);
            memcpy(buf, s, len);
        }
        http_ex(&fx, "POST", "/v1/search", buf, len, i % 2, &r);
        if (r.status < 400 || r.status > 499 || !err_code(&r)[0]) {
            if (bad++ < 5)
                rf__test_fail(__FILE__, __LINE__, "case %d (kind %d, %zu bytes): status %ld", i,
                              kind, len, r.status);
        }
        resp_fini(&r);
    }
    RF_CHECK_INT(bad, 0);
    http(&fx, "GET", "/healthz", NULL, &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    free(buf);
    fx_stop(&fx);
}

/* Polls the log file until it holds want (true) or a deadline passes (false). */
static int log_has(FILE *fp, const char *path, const char *want)
{
    int64_t deadline = rf_mono_ms() + 10000;
    for (;;) {
        char *text;
        int found;
        fflush(fp);
        text = rf_test_read_file(path, NULL);
        found = text && strstr(text, want) != NULL;
        free(text);
        if (found || rf_mono_ms() > deadline)
            return found;
        rf_sleep_ms(10);
    }
}

static void test_log_lines(void)
{
    char *dir = rf_test_tmpdir("servelog"), *path, *text;
    FILE *fp;
    fx_t fx;
    resp_t r;

    RF_REQUIRE(dir);
    path = rf_xasprintf("%s/log.txt", dir);
    fp = fopen(path, "w");
    RF_REQUIRE(fp);
    rf_log_set_stream(fp);
    RF_REQUIRE(rf_log_setup(RF_LOG_INFO, RF_LOG_FORMAT_TEXT, "serve", NULL) == RF_OK);

    fx_start(&fx, 65536, 1, 2);
    http(&fx, "POST", "/v1/search", "{\"query\":\"apple SECRET-BODY-MARKER\"}", &r);
    RF_CHECK_INT(r.status, 200);
    resp_fini(&r);
    http(&fx, "POST", "/v1/search", "{\"query\":\"x\",\"k\":\"SECRET-BODY-MARKER\"}", &r);
    RF_CHECK_INT(r.status, 400);
    resp_fini(&r);
    http(&fx, "GET", "/no\"pe", NULL, &r);
    RF_CHECK_INT(r.status, 404);
    resp_fini(&r);
    /* Request lines are written when a request completes, after its answer was sent. */
    RF_CHECK(log_has(fp, path, "method=GET path=\"/no?pe\" status=404 duration_us="));
    RF_CHECK(log_has(fp, path, "method=POST path=\"/v1/search\" status=200 duration_us="));
    RF_CHECK(log_has(fp, path, "method=POST path=\"/v1/search\" status=400 duration_us="));
    fx_stop(&fx);

    rf_log_setup(RF_LOG_INFO, RF_LOG_FORMAT_TEXT, NULL, NULL);
    rf_log_set_stream(NULL);
    fclose(fp);
    text = rf_test_read_file(path, NULL);
    RF_REQUIRE(text);
    RF_CHECK(strstr(text, "SECRET-BODY-MARKER") == NULL);
    free(text);
    free(path);
    rf_test_rmtree(dir);
    free(dir);
}

typedef struct worker {
    int port;
    int ok;
} worker_t;

static void *search_worker(void *arg)
{
    worker_t *w = arg;
    fx_t fx;
    resp_t r;
    memset(&fx, 0, sizeof(fx));
    fx.port = w->port;
    fx.curl = curl_easy_init();
    for (int i = 0; i < 25 && fx.curl; i++) {
        http(&fx, "POST", "/v1/search",
             (i & 1) ? "{\"query\":\"banana\",\"k\":1}" : "{\"query\":\"apple\",\"k\":1}", &r);
        if (r.status == 200 && !strcmp(result_id(&r, 0), (i & 1) ? "t.docs:3" : "t.docs:1"))
            w->ok++;
        resp_fini(&r);
    }
    curl_easy_cleanup(fx.curl);
    return NULL;
}

static void test_concurrent_searches(void)
{
    fx_t fx;
    pthread_t th[4];
    worker_t w[4];

    fx_start(&fx, 65536, 1, 3);
    for (int i = 0; i < 4; i++) {
        w[i].port = fx.port;
        w[i].ok = 0;
        RF_REQUIRE(pthread_create(&th[i], NULL, search_worker, &w[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        RF_CHECK_INT(w[i].ok, 25);
    }
    fx_stop(&fx);
}

static void test_listen(void)
{
    fx_t fx;
    rf_serve_opts_t o = {0};
    rf_serve_t *srv = NULL;
    rf_err_t err;
    char addr[64];
    static const char *bad[] = {"bogus",        "127.0.0.1", "127.0.0.1:99999",
                                "127.0.0.1:8x", "[::1:80",   "127.0.0.1:"};

    fx_start(&fx, 65536, 1, 1);
    o.threads = 1;
    o.max_body = 1024;
    o.max_k = 10;
    o.dim = DIM;
    o.ix = fx.ix;
    o.embed = fx_embed_letter;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        o.listen = bad[i];
        rf_err_clear(&err);
        if (rf_serve_start(&o, &srv, &err) != RF_ECONFIG || srv)
            rf__test_fail(__FILE__, __LINE__, "listen=%s was accepted", bad[i]);
        rf_serve_stop(srv);
        srv = NULL;
    }
    /* The fixture's port is taken. */
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", fx.port);
    o.listen = addr;
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EUNAVAIL);
    RF_CHECK(srv == NULL);
    RF_CHECK(err.msg[0] != '\0');
    o.listen = "no-such-host.invalid:0";
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EUNAVAIL);
    o.threads = 0;
    o.listen = "127.0.0.1:0";
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EINVAL);
    o.threads = 1;
    o.embed = NULL;
    RF_CHECK_INT(rf_serve_start(&o, &srv, &err), RF_EINVAL);
    o.embed = fx_embed_letter;

    /* localhost resolves and serves. */
    o.listen = "localhost:0";
    RF_REQUIRE(rf_serve_start(&o, &srv, &err) == RF_OK);
    RF_CHECK(rf_serve_port(srv) > 0);
    {
        fx_t other;
        resp_t r;
        memset(&other, 0, sizeof(other));
        other.port = rf_serve_port(srv);
        other.curl = curl_easy_init();
        http(&other, "GET", "/healthz", NULL, &r);
        RF_CHECK_INT(r.status, 200);
        resp_fini(&r);
        curl_easy_cleanup(other.curl);
    }
    rf_serve_stop(srv);
    srv = NULL;

    /* IPv6 loopback, where the machine has it. */
    o.listen = "[::1]:0";
    if (rf_serve_start(&o, &srv, &err) == RF_OK) {
        CURL *c = curl_easy_init();
        long status = 0;
        rf_buf_t body;
        rf_buf_init(&body, 4096);
        snprintf(addr, sizeof(addr), "http://[::1]:%d/healthz", rf_serve_port(srv));
        curl_easy_setopt(c, CURLOPT_URL, addr);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
        RF_CHECK_INT(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        RF_CHECK_INT(status, 200);
        curl_easy_cleanup(c);
        rf_buf_fini(&body);
        rf_serve_stop(srv);
    }
    rf_serve_stop(NULL);
    fx_stop(&fx);
}

RF_TEST_MAIN(test_search_query, test_search_vector, test_search_errors, test_too_large,
             test_records, test_routes, test_health_ready, test_status, test_metrics,
             test_log_lines, test_malformed_bodies, test_concurrent_searches, test_listen)
