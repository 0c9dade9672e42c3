/* test_serve_parse.c - serve/'s request parser and context assembly on their own: how
 * filters become index conditions, freshness controls become positions to wait for,
 * budgets are checked, ISO times are read, and how a context is cut, de-duplicated and
 * numbered.
 * Covers INVARIANT(fresh-is-measurable): a produced offset N waits for next offset N+1.
 */
#include "serve/serve_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

static const rf__serve_limits_t lim = {4, 50, 30000};

/* Parses body as a search; RF_REQUIRE success. */
static void parse_ok(const char *body, int kind, rf__serve_request_t *req)
{
    rf__serve_fail_t f;
    rf_rc rc = rf__serve_request_parse(body, strlen(body), kind, &lim, req, &f);
    if (rc != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "%s: %s %s", body, rf__serve_code_name(f.code), f.msg);
    RF_REQUIRE(rc == RF_OK);
}

/* Parses body expecting a failure with code and a message holding in_msg. */
static void parse_bad(const char *body, int kind, rf__serve_code code, const char *in_msg)
{
    rf__serve_request_t req;
    rf__serve_fail_t f;
    memset(&f, 0, sizeof(f));
    if (rf__serve_request_parse(body, strlen(body), kind, &lim, &req, &f) == RF_OK ||
        f.code != code || !strstr(f.msg, in_msg))
        rf__test_fail(__FILE__, __LINE__, "%s: got %s \"%s\", want %s \"%s\"", body,
                      rf__serve_code_name(f.code), f.msg, rf__serve_code_name(code), in_msg);
    rf__serve_request_fini(&req);
}

static const rf_index_cond_t *cond(const rf__serve_request_t *req, const char *field)
{
    for (size_t i = 0; i < req->cond_cnt; i++)
        if (!strcmp(req->conds[i].field, field))
            return &req->conds[i];
    return NULL;
}

static void test_defaults(void)
{
    rf__serve_request_t req;
    parse_ok("{\"query\":\"apple\"}", RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_STR(req.query, "apple");
    RF_CHECK_INT(req.query_len, 5);
    RF_CHECK_INT(req.k, 10);
    RF_CHECK(isinf(req.min_score) && req.min_score < 0);
    RF_CHECK_INT(req.include, RF__SERVE_INC_TEXT | RF__SERVE_INC_METADATA);
    RF_CHECK_INT(req.cond_cnt, 0);
    RF_CHECK_INT(req.has_position, 0);
    RF_CHECK_INT(req.min_seq, -1);
    rf__serve_request_fini(&req);

    parse_ok("{\"query\":\"apple\"}", RF__SERVE_KIND_CONTEXT, &req);
    RF_CHECK_INT(req.max_chars, RF__SERVE_CONTEXT_CHARS_DEF);
    RF_CHECK_INT(req.max_tokens, 0);
    rf__serve_request_fini(&req);
    /* fini on a zeroed request and twice is harmless. */
    rf__serve_request_fini(&req);
    rf__serve_request_fini(NULL);
}

static void test_filters(void)
{
    rf__serve_request_t req;
    const rf_index_cond_t *c;

    parse_ok("{\"query\":\"a\",\"filter\":{\"color\":\"red\",\"n\":3,\"ok\":true,"
             "\"tenant\":{\"in\":[\"a\",\"b\"]},\"price\":{\"gte\":1.5,\"lt\":10},"
             "\"name\":{\"gt\":\"m\"},\"event_time_ms\":{\"gte\":\"2024-05-01T00:00:00Z\","
             "\"lte\":1714600000000}}}",
             RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.cond_cnt, 7);
    c = cond(&req, "color");
    RF_REQUIRE(c);
    RF_CHECK_INT(c->kind, RF_INDEX_COND_EQ);
    RF_CHECK_INT(c->value_cnt, 1);
    RF_CHECK_STR(c->values[0], "\"red\"");
    RF_CHECK_STR(cond(&req, "n")->values[0], "3");
    RF_CHECK_STR(cond(&req, "ok")->values[0], "true");
    c = cond(&req, "tenant");
    RF_CHECK_INT(c->kind, RF_INDEX_COND_IN);
    RF_CHECK_INT(c->value_cnt, 2);
    RF_CHECK_STR(c->values[1], "\"b\"");
    c = cond(&req, "price");
    RF_CHECK_INT(c->kind, RF_INDEX_COND_RANGE);
    RF_CHECK_STR(c->lo, "1.5");
    RF_CHECK_STR(c->hi, "10");
    RF_CHECK_INT(c->lo_excl, 0);
    RF_CHECK_INT(c->hi_excl, 1);
    c = cond(&req, "name");
    RF_CHECK_STR(c->lo, "\"m\"");
    RF_CHECK(c->hi == NULL);
    RF_CHECK_INT(c->lo_excl, 1);
    /* ISO times on event_time_ms become milliseconds. */
    c = cond(&req, "event_time_ms");
    RF_CHECK_STR(c->lo, "1714521600000");
    RF_CHECK_STR(c->hi, "1714600000000");
    rf__serve_request_fini(&req);

    parse_ok("{\"query\":\"a\",\"filter\":{}}", RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.cond_cnt, 0);
    rf__serve_request_fini(&req);

    parse_bad("{\"query\":\"a\",\"filter\":[]}", 0, RF__SERVE_E_BAD_FILTER, "object");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":null}}", 0, RF__SERVE_E_BAD_FILTER, "null");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":[1]}}", 0, RF__SERVE_E_BAD_FILTER, "array");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{}}}", 0, RF__SERVE_E_BAD_FILTER, "empty");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"in\":[]}}}", 0, RF__SERVE_E_BAD_FILTER,
              "\"in\"");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"in\":[1],\"gt\":0}}}", 0,
              RF__SERVE_E_BAD_FILTER, "combined");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"in\":[[1]]}}}", 0, RF__SERVE_E_BAD_FILTER,
              "values");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"ne\":1}}}", 0, RF__SERVE_E_BAD_FILTER,
              "unknown operator \"ne\"");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"gt\":1,\"gte\":2}}}", 0,
              RF__SERVE_E_BAD_FILTER, "one lower bound");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"gt\":true}}}", 0, RF__SERVE_E_BAD_FILTER,
              "numbers or strings");
    parse_bad("{\"query\":\"a\",\"filter\":{\"x\":{\"gt\":1,\"lt\":\"z\"}}}", 0,
              RF__SERVE_E_BAD_FILTER, "both bounds");
    parse_bad("{\"query\":\"a\",\"filter\":{\"\":1}}", 0, RF__SERVE_E_BAD_FILTER, "field names");
    /* jansson itself refuses NUL in keys. */
    parse_bad("{\"query\":\"a\",\"filter\":{\"a\\u0000b\":1}}", 0, RF__SERVE_E_BAD_JSON, "NUL");
    parse_bad("{\"query\":\"a\",\"filter\":{\"a\\nb\":1}}", 0, RF__SERVE_E_BAD_FILTER, "control");
    parse_bad("{\"query\":\"a\",\"filter\":{\"event_time_ms\":{\"gt\":\"yesterday\"}}}", 0,
              RF__SERVE_E_BAD_FILTER, "ISO-8601");
    {
        /* More fields than allowed. */
        char body[2048];
        size_t n = (size_t)snprintf(body, sizeof(body), "{\"query\":\"a\",\"filter\":{");
        for (int i = 0; i <= RF__SERVE_FILTER_FIELDS_MAX; i++)
            n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"f%d\":1", i ? "," : "", i);
        snprintf(body + n, sizeof(body) - n, "}}");
        parse_bad(body, 0, RF__SERVE_E_BAD_FILTER, "more than");
    }
}

static void test_score_include(void)
{
    rf__serve_request_t req;

    parse_ok("{\"vector\":[0,3,0,4],\"min_score\":0.25,\"include\":[\"metadata\"],\"k\":50}",
             RF__SERVE_KIND_SEARCH, &req);
    RF_REQUIRE(req.vec);
    RF_CHECK(fabsf(req.vec[1] - 0.6f) < 1e-6f && fabsf(req.vec[3] - 0.8f) < 1e-6f);
    RF_CHECK(fabsf(req.min_score - 0.25f) < 1e-6f);
    RF_CHECK_INT(req.include, RF__SERVE_INC_METADATA);
    RF_CHECK_INT(req.k, 50);
    rf__serve_request_fini(&req);
    parse_ok("{\"query\":\"a\",\"include\":[]}", RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.include, 0);
    rf__serve_request_fini(&req);

    parse_bad("{\"query\":\"a\",\"min_score\":1.5}", 0, RF__SERVE_E_BAD_REQUEST, "min_score");
    parse_bad("{\"query\":\"a\",\"min_score\":\"0.5\"}", 0, RF__SERVE_E_BAD_REQUEST, "min_score");
    parse_bad("{\"query\":\"a\",\"include\":\"text\"}", 0, RF__SERVE_E_BAD_REQUEST, "array");
    parse_bad("{\"query\":\"a\",\"include\":[\"score\"]}", 0, RF__SERVE_E_BAD_REQUEST,
              "include[0]");
    parse_ok("{\"query\":\"a\",\"include\":[\"vector\",\"text\"]}", RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.include, RF__SERVE_INC_VECTOR | RF__SERVE_INC_TEXT);
    rf__serve_request_fini(&req);
}

static void test_positions(void)
{
    rf__serve_request_t req;

    /* The client's own offset N: the index must reach next offset N + 1. */
    parse_ok("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"orders/0\":41,"
             "\"a/b/c/12\":0},\"seq\":7},\"wait_ms\":250}",
             RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.has_position, 1);
    RF_CHECK_INT(req.min_seq, 7);
    RF_CHECK_INT(req.wait_ms, 250);
    RF_REQUIRE(req.want_cnt == 2);
    RF_CHECK_STR(req.want[0].topic, "orders");
    RF_CHECK_INT(req.want[0].partition, 0);
    RF_CHECK_INT(req.want[0].next_offset, 42);
    /* Topic names may hold slashes here; the partition follows the last one. */
    RF_CHECK_STR(req.want[1].topic, "a/b/c");
    RF_CHECK_INT(req.want[1].partition, 12);
    RF_CHECK_INT(req.want[1].next_offset, 1);
    rf__serve_request_fini(&req);

    /* Without wait_ms the wait is 5 s, or serve.max.wait.ms when lower. */
    parse_ok("{\"query\":\"a\",\"min_position\":{\"seq\":3}}", RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.wait_ms, 5000);
    RF_CHECK_INT(req.want_cnt, 0);
    rf__serve_request_fini(&req);
    {
        rf__serve_limits_t small = {4, 50, 100};
        rf__serve_fail_t f;
        const char *b = "{\"query\":\"a\",\"min_position\":{\"seq\":3}}";
        RF_REQUIRE(rf__serve_request_parse(b, strlen(b), 0, &small, &req, &f) == RF_OK);
        RF_CHECK_INT(req.wait_ms, 100);
        rf__serve_request_fini(&req);
    }

    parse_bad("{\"query\":\"a\",\"min_position\":{\"seq\":1},\"wait_ms\":30001}", 0,
              RF__SERVE_E_BAD_REQUEST, "0 to 30000");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"seq\":1},\"wait_ms\":-1}", 0,
              RF__SERVE_E_BAD_REQUEST, "wait_ms");
    parse_bad("{\"query\":\"a\",\"min_position\":{}}", 0, RF__SERVE_E_BAD_REQUEST,
              "offsets, seq or lsn");
    parse_bad("{\"query\":\"a\",\"min_position\":5}", 0, RF__SERVE_E_BAD_REQUEST, "object");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"seqs\":1}}", 0, RF__SERVE_E_BAD_REQUEST,
              "unknown field");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"seq\":-1}}", 0, RF__SERVE_E_BAD_REQUEST, "seq");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"orders\":1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "topic/partition");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"/0\":1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "topic/partition");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/\":1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "topic/partition");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/x\":1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "partition");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/99999999999\":1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "partition");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/0\":-1}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "offset");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/0\":\"5\"}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "offset");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"offsets\":{\"t/0\":9223372036854775807}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "offset");
}

/* min_position.lsn: Debezium's numbers, decimal strings and PostgreSQL's "hi/lo" text. */
static void test_lsn(void)
{
    rf__serve_request_t req;

    parse_ok("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"inventory.products\":34133800,"
             "\"public.customers\":\"16/B374D848\",\"s\":\"9007199254740993\"}},\"wait_ms\":50}",
             RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.has_position, 1);
    RF_CHECK_INT(req.min_seq, -1);
    RF_CHECK_INT(req.want_cnt, 0);
    RF_REQUIRE(req.lsn_cnt == 3);
    RF_CHECK_STR(req.lsns[0].source, "inventory.products");
    RF_CHECK_INT(req.lsns[0].lsn, 34133800);
    RF_CHECK_STR(req.lsns[1].source, "public.customers");
    RF_CHECK_INT(req.lsns[1].lsn, ((int64_t)0x16 << 32) | 0xB374D848);
    RF_CHECK_INT(req.lsns[2].lsn, 9007199254740993LL);
    RF_CHECK_INT(req.wait_ms, 50);
    rf__serve_request_fini(&req);
    /* With offsets and seq: all must be reached. */
    parse_ok("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"t\":\"0/0\"},\"seq\":2,"
             "\"offsets\":{\"t/0\":1}}}",
             RF__SERVE_KIND_SEARCH, &req);
    RF_CHECK_INT(req.lsn_cnt, 1);
    RF_CHECK_INT(req.lsns[0].lsn, 0);
    RF_CHECK_INT(req.min_seq, 2);
    RF_CHECK_INT(req.want_cnt, 1);
    rf__serve_request_fini(&req);

    /* A MySQL binlog position is not a number the index tracks. */
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"inventory.customers\":"
              "\"mysql-bin.000003:154\"}}}",
              0, RF__SERVE_E_UNSUPPORTED, "numeric");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":\"0/16B3748\"}}", 0,
              RF__SERVE_E_BAD_REQUEST, "{\"source\": lsn}");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{}}}", 0, RF__SERVE_E_BAD_REQUEST, "lsn");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":-1}}}", 0, RF__SERVE_E_BAD_REQUEST,
              ">= 0");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":1.5}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "integer");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":[1]}}}", 0,
              RF__SERVE_E_BAD_REQUEST, "integer");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"\":1}}}", 0, RF__SERVE_E_BAD_REQUEST,
              "sources");
    /* Each half of a PostgreSQL LSN is 32 bits. */
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":\"123456789/0\"}}}", 0,
              RF__SERVE_E_UNSUPPORTED, "PostgreSQL");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":\"1/\"}}}", 0,
              RF__SERVE_E_UNSUPPORTED, "PostgreSQL");
    parse_bad("{\"query\":\"a\",\"min_position\":{\"lsn\":{\"s\":\"\"}}}", 0,
              RF__SERVE_E_UNSUPPORTED, "PostgreSQL");
    {
        /* Bounded: at most RF__SERVE_LSN_SOURCES_MAX sources. */
        rf_buf_t b;
        rf_buf_init(&b, 0);
        rf_buf_puts(&b, "{\"query\":\"a\",\"min_position\":{\"lsn\":{");
        for (int i = 0; i <= RF__SERVE_LSN_SOURCES_MAX; i++)
            rf_buf_printf(&b, "%s\"s%d\":1", i ? "," : "", i);
        rf_buf_puts(&b, "}}}");
        parse_bad(b.ptr, 0, RF__SERVE_E_BAD_REQUEST, "more than");
        rf_buf_fini(&b);
    }
}

static void test_budget(void)
{
    rf__serve_request_t req;

    parse_ok("{\"query\":\"a\",\"max_tokens\":100}", RF__SERVE_KIND_CONTEXT, &req);
    RF_CHECK_INT(req.max_tokens, 100);
    RF_CHECK_INT(req.max_chars, 100 * RF__SERVE_CHARS_PER_TOKEN);
    rf__serve_request_fini(&req);
    parse_ok("{\"query\":\"a\",\"max_chars\":1}", RF__SERVE_KIND_CONTEXT, &req);
    RF_CHECK_INT(req.max_chars, 1);
    rf__serve_request_fini(&req);

    parse_bad("{\"query\":\"a\",\"max_chars\":10,\"max_tokens\":2}", RF__SERVE_KIND_CONTEXT,
              RF__SERVE_E_BAD_REQUEST, "not both");
    parse_bad("{\"query\":\"a\",\"max_chars\":0}", RF__SERVE_KIND_CONTEXT, RF__SERVE_E_BAD_REQUEST,
              "max_chars");
    parse_bad("{\"query\":\"a\",\"max_chars\":1000001}", RF__SERVE_KIND_CONTEXT,
              RF__SERVE_E_BAD_REQUEST, "max_chars");
    parse_bad("{\"query\":\"a\",\"max_tokens\":250001}", RF__SERVE_KIND_CONTEXT,
              RF__SERVE_E_BAD_REQUEST, "max_tokens");
    /* Budgets belong to /v1/context only. */
    parse_bad("{\"query\":\"a\",\"max_tokens\":10}", RF__SERVE_KIND_SEARCH, RF__SERVE_E_BAD_REQUEST,
              "unknown field \"max_tokens\"");
}

static void test_iso(void)
{
    static const struct {
        const char *s;
        int64_t ms;
    } ok[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2024-05-01T12:00:00Z", 1714564800000},
        {"2024-05-01", 1714521600000},
        {"2024-05-01T12:00:00.5Z", 1714564800500},
        {"2024-05-01T12:00:00.123456Z", 1714564800123},
        {"2024-05-01T14:00:00+02:00", 1714564800000},
        {"2024-05-01T07:30-0430", 1714564800000},
        {"2024-02-29T00:00:00Z", 1709164800000},
        {"1969-12-31T23:59:59Z", -1000},
    };
    static const char *bad[] = {"",
                                "2024-05-01T12:00:00",
                                "2024-13-01",
                                "2023-02-29",
                                "2024-04-31",
                                "2024-05-01T24:00Z",
                                "2024-05-01T12:00:00.Z",
                                "2024-05-01Tx",
                                "24-05-01",
                                "2024-05-01Z",
                                "2024-05-01T12:00:00Z trailing"};
    int64_t ms;

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = -7;
        if (rf__serve_iso_ms(ok[i].s, &ms) != RF_OK || ms != ok[i].ms)
            rf__test_fail(__FILE__, __LINE__, "%s: %lld, want %lld", ok[i].s, (long long)ms,
                          (long long)ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (rf__serve_iso_ms(bad[i], &ms) == RF_OK)
            rf__test_fail(__FILE__, __LINE__, "\"%s\" was accepted", bad[i]);
}

/* ==== Context assembly ==== */

static rf_index_hit_t hit(const char *id, const char *text)
{
    rf_index_hit_t h;
    memset(&h, 0, sizeof(h));
    h.id = (char *)id;
    h.text = (char *)text;
    return h;
}

static void test_context_whole(void)
{
    rf_index_hit_t hits[4] = {hit("a", "  first passage\n"), hit("b", "second"),
                              hit("a", "first again, same id"), hit("c", "first passage")};
    rf__serve_context_t ctx;

    rf__serve_context_build(hits, 4, 1000, &ctx);
    RF_CHECK_STR(ctx.text, "[1] first passage\n\n[2] second");
    RF_CHECK_INT(ctx.chars, strlen(ctx.text));
    RF_CHECK_INT(ctx.passage_cnt, 2);
    RF_CHECK_INT(ctx.passages[0].hit, 0);
    RF_CHECK_INT(ctx.passages[1].hit, 1);
    RF_CHECK_INT(ctx.passages[1].truncated, 0);
    /* The same id and the same text (after trimming) come once. */
    RF_CHECK_INT(ctx.duplicates, 2);
    RF_CHECK_INT(ctx.dropped, 0);
    rf__serve_context_fini(&ctx);

    /* Exactly the budget fits. */
    rf__serve_context_build(hits, 2, (int64_t)strlen("[1] first passage\n\n[2] second"), &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 2);
    rf__serve_context_fini(&ctx);
    rf__serve_context_build(hits, 0, 100, &ctx);
    RF_CHECK_STR(ctx.text, "");
    RF_CHECK_INT(ctx.passage_cnt, 0);
    rf__serve_context_fini(&ctx);
    rf__serve_context_fini(NULL);
}

static void test_context_cut(void)
{
    char longtext[400];
    rf_index_hit_t hits[3];
    rf__serve_context_t ctx;
    const char *marker;

    for (size_t i = 0; i < sizeof(longtext) - 1; i++)
        longtext[i] = (i % 6 == 5) ? ' ' : 'w';
    longtext[sizeof(longtext) - 1] = '\0';
    hits[0] = hit("a", "short one");
    hits[1] = hit("b", longtext);
    hits[2] = hit("c", "never reached");

    /* Room for the first and part of the second: cut at a word, marked. */
    rf__serve_context_build(hits, 3, 113 + 100, &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 2);
    RF_CHECK_INT(ctx.passages[1].truncated, 1);
    RF_CHECK_INT(ctx.dropped, 1);
    RF_CHECK(ctx.chars <= 213);
    RF_CHECK_INT(ctx.chars, strlen(ctx.text));
    marker = strstr(ctx.text, RF__SERVE_TRUNC_MARKER);
    RF_REQUIRE(marker);
    RF_CHECK_STR(marker, RF__SERVE_TRUNC_MARKER);
    RF_CHECK(marker[-1] == 'w'); /* a whole word, no trailing space */
    RF_CHECK(!strncmp(ctx.text, "[1] short one\n\n[2] wwwww wwwww", 30));
    rf__serve_context_fini(&ctx);

    /* Too little room to be worth cutting: the passage is left out, not cut. */
    rf__serve_context_build(hits, 3, 13 + 6 + 12 + RF__SERVE_TRUNC_MIN - 1, &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 1);
    RF_CHECK_INT(ctx.dropped, 2);
    RF_CHECK_STR(ctx.text, "[1] short one");
    RF_CHECK(strstr(ctx.text, "truncated") == NULL);
    rf__serve_context_fini(&ctx);

    /* A budget smaller than everything gives an empty context. */
    rf__serve_context_build(hits, 3, 5, &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 0);
    RF_CHECK_INT(ctx.dropped, 3);
    RF_CHECK_STR(ctx.text, "");
    rf__serve_context_fini(&ctx);
}

static void test_context_utf8(void)
{
    /* 60 two-byte characters: counted as characters, never cut inside one. */
    char text[256];
    size_t n = 0;
    rf_index_hit_t hits[1];
    rf__serve_context_t ctx;

    for (int i = 0; i < 60; i++) {
        text[n++] = (char)0xc3;
        text[n++] = (char)0xa9; /* e acute */
    }
    text[n] = '\0';
    RF_CHECK_INT(rf__serve_utf8_chars(text, n), 60);
    hits[0] = hit("u", text);
    rf__serve_context_build(hits, 1, 64, &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 1);
    RF_CHECK_INT(ctx.chars, 64);
    rf__serve_context_fini(&ctx);
    rf__serve_context_build(hits, 1, 4 + 45 + 12, &ctx);
    RF_CHECK_INT(ctx.passage_cnt, 1);
    RF_CHECK_INT(ctx.passages[0].truncated, 1);
    RF_CHECK_INT(ctx.chars, 4 + 45 + 12);
    RF_CHECK_INT(rf__serve_utf8_chars(ctx.text, strlen(ctx.text)), ctx.chars);
    /* Every byte before the marker belongs to a whole character. */
    RF_CHECK_INT(strlen(ctx.text), 4 + 90 + 12);
    rf__serve_context_fini(&ctx);
}

static void test_codes(void)
{
    RF_CHECK_STR(rf__serve_code_name(RF__SERVE_E_BAD_JSON), "bad_json");
    RF_CHECK_INT(rf__serve_code_status(RF__SERVE_E_POSITION_TIMEOUT), 504);
    RF_CHECK_INT(rf__serve_code_status(RF__SERVE_E_RATE_LIMITED), 429);
    RF_CHECK_STR(rf__serve_code_name(RF__SERVE_E_COUNT), "internal");
    for (int c = 0; c < RF__SERVE_E_COUNT; c++) {
        unsigned s = rf__serve_code_status((rf__serve_code)c);
        RF_CHECK(s >= 400 && s <= 599);
    }
}

RF_TEST_MAIN(test_defaults, test_filters, test_score_include, test_positions, test_lsn, test_budget,
             test_iso, test_context_whole, test_context_cut, test_context_utf8, test_codes)
