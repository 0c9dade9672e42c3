/* test_embed_governor.c - the rate governor on a synthetic clock: request and token
 * budgets, Retry-After, full-jitter bounds, one AIMD decrease per congestion window and
 * additive recovery. */
#include "embed/embed_int.h"
#include "rf_test.h"

static rf_conf_t *mkcfg(const char *rpm, const char *tpm)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err;
    RF_REQUIRE(rf_conf_set(cfg, "embed.concurrency", "8", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.rpm", rpm, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.tpm", tpm, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.retry.max.ms", "1000", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    return cfg;
}

static void test_request_budget(void)
{
    rf_conf_t *cfg = mkcfg("60", "0");
    rf__embed_gov_t g;
    int64_t t0, w;
    rf__embed_gov_init(&g, cfg);
    t0 = g.refill_us;
    /* 60 per minute, ten seconds of burst. */
    for (int i = 0; i < 10; i++) {
        RF_CHECK_INT(rf__embed_gov_admit(&g, t0, -1, 1), 0);
        rf__embed_gov_done(&g, t0, t0, RF__EMBED_OK, -1, 1, 0);
    }
    w = rf__embed_gov_admit(&g, t0, -1, 1);
    RF_CHECK(w >= 900000 && w <= 1000000);
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0 + 1000000, -1, 1), 0);
    RF_CHECK(rf__embed_gov_admit(&g, t0 + 1000000, -1, 1) > 0);
    rf__embed_gov_fini(&g);
    rf_conf_free(cfg);
}

static void test_token_budget(void)
{
    rf_conf_t *cfg = mkcfg("0", "600");
    rf__embed_gov_t g;
    int64_t t0;
    rf__embed_gov_init(&g, cfg);
    t0 = g.refill_us;
    /* 600 tokens a minute: 100 in the bucket. */
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0, -1, 60), 0);
    RF_CHECK(rf__embed_gov_admit(&g, t0, -1, 60) > 0);
    /* The endpoint reported fewer tokens than estimated: the difference comes back. */
    rf__embed_gov_done(&g, t0, t0, RF__EMBED_OK, -1, 60, 20);
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0, -1, 60), 0);
    rf__embed_gov_done(&g, t0, t0, RF__EMBED_OK, -1, 60, 0);
    /* A request larger than the bucket starts once the bucket is full. */
    RF_CHECK(rf__embed_gov_admit(&g, t0 + 1000000, -1, 5000) > 0);
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0 + 60000000, -1, 5000), 0);
    RF_CHECK(rf__embed_gov_admit(&g, t0 + 61000000, -1, 1) > 0);
    rf__embed_gov_fini(&g);
    rf_conf_free(cfg);
}

static void test_backoff_and_aimd(void)
{
    rf_conf_t *cfg = mkcfg("0", "0");
    rf__embed_gov_t g;
    int64_t t0, w;
    rf__embed_gov_init(&g, cfg);
    t0 = g.refill_us;
    RF_CHECK_INT(rf__embed_gov_limit(&g), 8);
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0, 8, 1), 1000); /* at the limit */
    for (int i = 0; i < 3; i++)
        RF_CHECK_INT(rf__embed_gov_admit(&g, t0, i, 1), 0);
    /* Three requests started together all see 429 with Retry-After: 2 s. */
    for (int i = 0; i < 3; i++)
        rf__embed_gov_done(&g, t0 + 100, t0, RF__EMBED_THROTTLED, 2000, 1, 0);
    RF_CHECK_INT(rf__embed_gov_limit(&g), 4);
    /* Retry-After is capped by embed.retry.max.ms (1 s). */
    w = rf__embed_gov_admit(&g, t0 + 100, 0, 1);
    RF_CHECK(w > 990000 && w <= 1000000);
    /* A timeout of a request started after the decrease halves again. */
    RF_CHECK_INT(rf__embed_gov_admit(&g, t0 + 2000000, 0, 1), 0);
    rf__embed_gov_done(&g, t0 + 2100000, t0 + 2000000, RF__EMBED_TIMEOUT, -1, 1, 0);
    RF_CHECK_INT(rf__embed_gov_limit(&g), 2);
    /* Full jitter: never past min(cap, base * 2^attempt). */
    for (int i = 0; i < 50; i++) {
        int64_t now = t0 + 10000000 + i * 2000000;
        RF_CHECK_INT(rf__embed_gov_admit(&g, now, 0, 1), 0);
        rf__embed_gov_done(&g, now, now, RF__EMBED_TRANSIENT, -1, 1, 0);
        /* The wait is read from the backoff deadline rather than by asking to start a
         * request: full jitter can draw a zero wait, which would admit one. */
        w = g.backoff_until_us - now;
        RF_CHECK(w >= 0 && w <= 1000000);
    }
    RF_CHECK_INT(rf__embed_gov_limit(&g), 2); /* plain 5xx do not shrink concurrency */
    /* Additive increase: one step per window of `limit` successes. */
    for (int i = 0; i < 2 + 3 + 4 + 5 + 6 + 7; i++) {
        int64_t now = t0 + 200000000;
        RF_CHECK_INT(rf__embed_gov_admit(&g, now, 0, 1), 0);
        rf__embed_gov_done(&g, now, now, RF__EMBED_OK, -1, 1, 0);
    }
    RF_CHECK_INT(rf__embed_gov_limit(&g), 8);
    RF_CHECK_INT(g.st.throttled, 3);
    RF_CHECK_INT(g.st.timeouts, 1);
    RF_CHECK_INT(g.st.errors, 50);
    RF_CHECK_INT(g.in_flight, 0);
    rf__embed_gov_fini(&g);
    rf_conf_free(cfg);
}

RF_TEST_MAIN(test_request_budget, test_token_budget, test_backoff_and_aimd)
