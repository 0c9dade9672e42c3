/* test_embed_rest.c - the REST providers against tests/fake/fake_provider: wire formats
 * (OpenAI float and base64, Ollama, TEI), de-duplication, batching, concurrency, retries of
 * every transient fault (invariant 5: nothing lost, nothing failed), AIMD back-off and
 * recovery, failures confined to the offending text, RF_EUNAVAIL, keys and queries. */
#include "embed/embed.h"
#include "fake/fake_spawn.h"
#include "rf_test.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

#define DIM 64

static fake_t fk;

static void start_fake(void)
{
    RF_REQUIRE(fake_start(&fk, RF_FAKE_PROVIDER, NULL, 10000) == 0);
}

/* A config for provider with path on the fake, plus "key=value" overrides. */
static rf_conf_t *mkcfg(const char *provider, const char *path, ...)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err;
    char url[128], dim[16];
    va_list ap;
    const char *kv;
    snprintf(url, sizeof(url), "%s%s", fk.base, path);
    snprintf(dim, sizeof(dim), "%d", DIM);
    RF_REQUIRE(rf_conf_set(cfg, "embed.provider", provider, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.url", url, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.model", "fake-model", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.dim", dim, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.retry.max.ms", "200", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    va_start(ap, path);
    while ((kv = va_arg(ap, const char *))) {
        const char *eq = strchr(kv, '=');
        char key[64];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        if (rf_conf_set(cfg, key, eq + 1, RF_CONF_ORIGIN_CLI, "t", &err))
            fprintf(stderr, "%s\n", err.msg);
    }
    va_end(ap);
    if (rf_conf_finalize(cfg, 0, &err))
        fprintf(stderr, "finalize: %s\n", err.msg);
    return cfg;
}

typedef struct set {
    rf_embed_item_t *items;
    float *vecs;
    char **texts;
    size_t n;
} set_t;

/* n texts: prefix followed by the index. */
static set_t mkset(size_t n, const char *prefix)
{
    set_t s;
    s.n = n;
    s.items = rf_xcalloc(n, sizeof(*s.items));
    s.vecs = rf_xcalloc(n * DIM, sizeof(float));
    s.texts = rf_xcalloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        s.texts[i] = rf_xasprintf("%s %zu", prefix, i);
        s.items[i].text = s.texts[i];
        s.items[i].len = strlen(s.texts[i]);
        s.items[i].out = s.vecs + i * DIM;
    }
    return s;
}

static void freeset(set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->texts[i]);
    free(s->texts);
    free(s->items);
    free(s->vecs);
}

/* 1 when v equals the fake's deterministic vector for text (unit length already). */
static int is_hash_vec(const float *v, const char *text, int dim)
{
    float *w = rf_xmalloc((size_t)dim * sizeof(float));
    int ok = 1;
    rf_embed_hash(text, strlen(text), dim, w);
    for (int i = 0; i < dim; i++)
        if (fabsf(v[i] - w[i]) > 1e-5f)
            ok = 0;
    free(w);
    return ok;
}

static int all_done_and_right(const set_t *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (!s->items[i].done || s->items[i].rc != RF_OK ||
            !is_hash_vec(s->items[i].out, s->texts[i], DIM))
            return 0;
    return 1;
}

static void reset_fake(void)
{
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"none\",\"reset\":true,\"latency_ms\":0,"
                                 "\"reject\":\"\",\"wrongdim\":\"\",\"nan\":\"\",\"key\":\"\","
                                 "\"dim\":64}"));
}

/* Runs one provider round trip and a query. */
static void roundtrip(const char *provider, const char *path, const char *extra)
{
    rf_conf_t *cfg = mkcfg(provider, path, extra, NULL);
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(7, "about shipping and billing, text number");
    float q[DIM];
    reset_fake();
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&s));
    RF_CHECK_INT(fake_stat(&fk, "texts"), 7);
    RF_CHECK_INT(rf_embed_query(e, "a query text", 12, q, 5000, &err), RF_OK);
    RF_CHECK(is_hash_vec(q, "a query text", DIM));
    RF_CHECK(strstr(rf_embed_model_id(e), "fake-model") != NULL);
    RF_CHECK_INT(rf_embed_dim(e), DIM);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
}

static void test_wire_formats(void)
{
    start_fake();
    roundtrip("openai", "/v1/embeddings", "embed.encoding=base64");
    roundtrip("openai", "/v1/embeddings", "embed.encoding=float");
    roundtrip("ollama", "/api/embed", "embed.truncate=false");
    roundtrip("tei", "/embed", "embed.truncate=true");
    fake_stop(&fk);
}

static void test_dimensions_param(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(3, "dimension text");
    start_fake();
    reset_fake();
    /* The fake's own default is 64; it answers 32 only if `dimensions` is sent. */
    cfg = mkcfg("openai", "/v1/embeddings", "embed.dimensions.param=true", "embed.dim=32", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    for (size_t i = 0; i < s.n; i++)
        RF_CHECK(s.items[i].done && is_hash_vec(s.items[i].out, s.texts[i], 32));
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
    fake_stop(&fk);
}

static void test_dedupe_and_batching(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_stats_t st;
    set_t d = mkset(30, "dup"), s = mkset(100, "padding padding padding padding padding "
                                               "padding padding padding padding padding "
                                               "padding padding padding padding padding");
    start_fake();
    reset_fake();
    cfg = mkcfg("openai", "/v1/embeddings", "embed.batch.size=8", "embed.batch.chars=500", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    /* 30 items, 3 distinct texts. */
    for (size_t i = 0; i < d.n; i++) {
        d.items[i].text = d.texts[i % 3];
        d.items[i].len = strlen(d.texts[i % 3]);
    }
    RF_CHECK_INT(rf_embed_run(e, d.items, d.n, 5000, &err), RF_OK);
    RF_CHECK_INT(fake_stat(&fk, "texts"), 3);
    RF_CHECK_INT(fake_stat(&fk, "ok_calls"), 1);
    for (size_t i = 0; i < d.n; i++)
        RF_CHECK(d.items[i].done && is_hash_vec(d.items[i].out, d.texts[i % 3], DIM));
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.deduped, 27);
    RF_CHECK_INT(st.texts, 3);

    reset_fake();
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&s));
    RF_CHECK(fake_stat(&fk, "max_batch") <= 8);
    RF_CHECK(fake_stat(&fk, "max_chars") <= 500);
    RF_CHECK(fake_stat(&fk, "max_chars") > 300);
    RF_CHECK_INT(fake_stat(&fk, "texts"), 100);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&d);
    freeset(&s);
    fake_stop(&fk);
}

static void test_concurrency(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(16, "concurrent");
    int64_t t0, el;
    start_fake();
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"latency_ms\":50}"));
    cfg = mkcfg("openai", "/v1/embeddings", "embed.batch.size=1", "embed.concurrency=4", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    t0 = rf_mono_ms();
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    el = rf_mono_ms() - t0;
    RF_CHECK(all_done_and_right(&s));
    RF_CHECK(fake_stat(&fk, "max_in_flight") >= 2);
    /* 16 requests of 50 ms one at a time take 800 ms; four at a time about 200 ms. */
    RF_CHECK(el < 600);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
    fake_stop(&fk);
}

/* Injects a counted fault, runs, and checks nothing was lost or failed. */
static void transient(const char *provider, const char *path, const char *fault, int count)
{
    rf_conf_t *cfg = mkcfg(provider, path, "embed.batch.size=4", "embed.timeout.ms=400", NULL);
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_stats_t st;
    set_t s = mkset(10, "transient text");
    char ctl[160];
    reset_fake();
    snprintf(ctl, sizeof(ctl), "{\"fault\":\"%s\",\"count\":%d,\"slow_ms\":1500}", fault, count);
    RF_REQUIRE(fake_control(&fk, ctl));
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 10000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&s));
    RF_CHECK_INT(fake_stat(&fk, "faults"), count);
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.failed, 0);
    RF_CHECK((long)st.retries >= count);
    if (!strcmp(fault, "slow"))
        RF_CHECK((long)st.timeouts >= count);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
}

static void test_transient_faults(void)
{
    static const char *const faults[] = {"500", "503", "429", "drop", "malformed", "slow"};
    start_fake();
    for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
        transient("openai", "/v1/embeddings", faults[i], 2);
        transient("ollama", "/api/embed", faults[i], 1);
        transient("tei", "/embed", faults[i], 1);
    }
    fake_stop(&fk);
}

static void test_retry_after_honoured(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_stats_t st;
    set_t s = mkset(3, "retry after");
    int64_t t0, el;
    start_fake();
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"429\",\"count\":1,\"retry_after\":1}"));
    cfg = mkcfg("openai", "/v1/embeddings", "embed.retry.max.ms=5000", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    t0 = rf_mono_ms();
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 10000, &err), RF_OK);
    el = rf_mono_ms() - t0;
    RF_CHECK(all_done_and_right(&s));
    RF_CHECK(el >= 1000);
    RF_CHECK(el < 3000);
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.throttled, 1);
    RF_CHECK_INT(fake_stat(&fk, "calls"), 2);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
    fake_stop(&fk);
}

static void test_governor_backs_off_and_recovers(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_stats_t st;
    set_t a = mkset(3, "first wave"), b = mkset(120, "second wave");
    start_fake();
    reset_fake();
    cfg = mkcfg("openai", "/v1/embeddings", "embed.batch.size=1", "embed.concurrency=8", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.concurrency, 8);
    /* Three requests in flight together all get 429: one congestion event halves the
     * limit once, not three times. */
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"429\",\"count\":3}"));
    RF_CHECK_INT(rf_embed_run(e, a.items, a.n, 10000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&a));
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.throttled, 3);
    RF_CHECK_INT(st.concurrency, 4);
    /* Successes grow it back, one step per window. */
    RF_CHECK_INT(rf_embed_run(e, b.items, b.n, 10000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&b));
    rf_embed_stats_get(e, &st);
    RF_CHECK_INT(st.concurrency, 8);
    RF_CHECK_INT(st.in_flight, 0);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&a);
    freeset(&b);
    fake_stop(&fk);
}

static void test_permanent_failures_confined(void)
{
    static const char *const prov[][2] = {
        {"openai", "/v1/embeddings"}, {"ollama", "/api/embed"}, {"tei", "/embed"}};
    start_fake();
    for (size_t p = 0; p < 3; p++) {
        rf_conf_t *cfg =
            mkcfg(prov[p][0], prov[p][1], "embed.batch.size=16", "embed.encoding=base64", NULL);
        rf_embed_t *e = NULL;
        rf_err_t err;
        rf_embed_stats_t st;
        set_t s = mkset(12, "clean text");
        free(s.texts[3]);
        s.texts[3] = rf_xstrdup("this one is POISON for the model");
        free(s.texts[7]);
        s.texts[7] = rf_xstrdup("this one comes back WIDE");
        free(s.texts[9]);
        s.texts[9] = rf_xstrdup("this one comes back NANVEC");
        for (size_t i = 0; i < s.n; i++) {
            s.items[i].text = s.texts[i];
            s.items[i].len = strlen(s.texts[i]);
        }
        reset_fake();
        RF_REQUIRE(
            fake_control(&fk, "{\"reject\":\"POISON\",\"wrongdim\":\"WIDE\",\"nan\":\"NANVEC\"}"));
        RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
        RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 10000, &err), RF_OK);
        for (size_t i = 0; i < s.n; i++) {
            if (i == 3 || i == 7 || i == 9) {
                RF_CHECK(!s.items[i].done);
                RF_CHECK_INT(s.items[i].rc, RF_EEMBED);
            } else {
                RF_CHECK(s.items[i].done && is_hash_vec(s.items[i].out, s.texts[i], DIM));
            }
        }
        RF_CHECK(strstr(s.items[3].reason, "refused") != NULL);
        RF_CHECK(strstr(s.items[7].reason, "dimensions") != NULL);
        RF_CHECK(strstr(s.items[9].reason, "NaN") != NULL);
        rf_embed_stats_get(e, &st);
        RF_CHECK_INT(st.failed, 3);
        /* Bisection: the poisoned text was alone in its last request. */
        RF_CHECK(fake_stat(&fk, "rejects") >= 2);
        rf_embed_free(e);
        rf_conf_free(cfg);
        freeset(&s);
    }
    fake_stop(&fk);
}

static void test_local_refusals(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(4, "ok");
    char bad[] = "bad \xff\xfe utf8";
    start_fake();
    reset_fake();
    cfg = mkcfg("openai", "/v1/embeddings", "embed.max.chars=20", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    s.items[1].text = "";
    s.items[1].len = 0;
    s.items[2].text = "far too long for the configured limit";
    s.items[2].len = strlen(s.items[2].text);
    s.items[3].text = bad;
    s.items[3].len = strlen(bad);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK(s.items[0].done);
    RF_CHECK(strstr(s.items[1].reason, "empty") != NULL);
    RF_CHECK(strstr(s.items[2].reason, "embed.max.chars") != NULL);
    RF_CHECK(strstr(s.items[3].reason, "UTF-8") != NULL);
    RF_CHECK_INT(fake_stat(&fk, "texts"), 1);
    /* A second call skips items already done or failed. */
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK_INT(fake_stat(&fk, "calls"), 1);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
    fake_stop(&fk);
}

static void test_refusing_everything_is_config(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(1, "hello"), t = mkset(1, "has a POISON");
    start_fake();
    reset_fake();
    /* Every text (and the probe) contains an "e": the endpoint refuses everything, which is
     * the operator's problem, not the record's. */
    RF_REQUIRE(fake_control(&fk, "{\"reject\":\"e\"}"));
    cfg = mkcfg("openai", "/v1/embeddings", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, 1, 5000, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "probe") != NULL);
    RF_CHECK(!s.items[0].done);
    RF_CHECK_INT(s.items[0].rc, RF_OK);
    rf_embed_free(e);
    /* A first text refused alone while the probe passes is that text's failure. */
    RF_REQUIRE(fake_control(&fk, "{\"reject\":\"POISON\"}"));
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, t.items, 1, 5000, &err), RF_OK);
    RF_CHECK_INT(t.items[0].rc, RF_EEMBED);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
    freeset(&t);
    fake_stop(&fk);
}

static void test_unavailable(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(5, "nobody home");
    float q[DIM];
    int64_t t0, el;
    start_fake();
    cfg = mkcfg("openai", "/v1/embeddings", NULL);
    fake_stop(&fk); /* down for good: connections are refused */
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    t0 = rf_mono_ms();
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 700, &err), RF_EUNAVAIL);
    el = rf_mono_ms() - t0;
    RF_CHECK(el >= 700);
    RF_CHECK(el < 3000);
    for (size_t i = 0; i < s.n; i++)
        RF_CHECK(!s.items[i].done && s.items[i].rc == RF_OK);
    RF_CHECK_INT(rf_embed_query(e, "q", 1, q, 300, &err), RF_ETIMEDOUT);
    rf_embed_free(e);
    rf_conf_free(cfg);
    freeset(&s);
}

static void test_api_keys(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    set_t s = mkset(2, "secret text");
    start_fake();
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"key\":\"sk-test-123\"}"));
    cfg = mkcfg("openai", "/v1/embeddings", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_EAUTH);
    RF_CHECK(strstr(err.msg, "sk-test") == NULL);
    rf_embed_free(e);
    rf_conf_free(cfg);

    setenv("RF_TEST_EMBED_KEY", "sk-test-123", 1);
    cfg = mkcfg("openai", "/v1/embeddings", "embed.api.key.env=RF_TEST_EMBED_KEY", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&s));
    rf_embed_free(e);
    rf_conf_free(cfg);

    s.items[0].done = s.items[1].done = 0;
    cfg = mkcfg("openai", "/v1/embeddings", "embed.api.key=sk-test-123",
                "embed.api.key.header=api-key", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, s.items, s.n, 5000, &err), RF_OK);
    RF_CHECK(all_done_and_right(&s));
    rf_embed_free(e);
    rf_conf_free(cfg);

    unsetenv("RF_TEST_EMBED_MISSING");
    cfg = mkcfg("openai", "/v1/embeddings", "embed.api.key.env=RF_TEST_EMBED_MISSING", NULL);
    RF_CHECK_INT(rf_embed_new(cfg, &e, &err), RF_ECONFIG);
    RF_CHECK(e == NULL);
    rf_conf_free(cfg);
    freeset(&s);
    fake_stop(&fk);
}

static void test_query_retries(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    float q[DIM];
    start_fake();
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"503\",\"count\":2}"));
    cfg = mkcfg("ollama", "/api/embed", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_query(e, "query under load", 16, q, 5000, &err), RF_OK);
    RF_CHECK(is_hash_vec(q, "query under load", DIM));
    RF_CHECK_INT(fake_stat(&fk, "calls"), 3);
    RF_REQUIRE(fake_control(&fk, "{\"reject\":\"POISON\"}"));
    RF_CHECK_INT(rf_embed_query(e, "POISON", 6, q, 5000, &err), RF_EEMBED);
    rf_embed_free(e);
    rf_conf_free(cfg);
    fake_stop(&fk);
}

static void test_hash_provider_offline(void)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_embed_t *e = NULL;
    rf_err_t err;
    float v[384], w[384];
    rf_embed_item_t it = {"offline text", 12, v, 0, RF_OK, ""};
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, &it, 1, 0, &err), RF_OK);
    RF_CHECK(it.done);
    rf_embed_hash("offline text", 12, 384, w);
    RF_CHECK(memcmp(v, w, sizeof(v)) == 0);
    RF_CHECK_INT(rf_embed_query(e, "offline text", 12, w, 0, &err), RF_OK);
    RF_CHECK(memcmp(v, w, sizeof(v)) == 0);
    RF_CHECK_STR(rf_embed_model_id(e), "hash:hash-v1");
    rf_embed_free(e);
    rf_embed_free(NULL);
    rf_conf_free(cfg);
}

static void test_config_checks(void)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err;
    RF_REQUIRE(rf_conf_set(cfg, "embed.provider", "openai", RF_CONF_ORIGIN_CLI, "--set", &err) ==
               0);
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "embed.url") != NULL);
    RF_REQUIRE(rf_conf_set(cfg, "embed.url", "http://127.0.0.1:1/v1/embeddings", RF_CONF_ORIGIN_CLI,
                           "--set", &err) == 0);
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "embed.model") != NULL);
    RF_REQUIRE(rf_conf_set(cfg, "embed.model", "m", RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_OK);
    RF_REQUIRE(rf_conf_set(cfg, "classify.mode", "llm", RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "classify.labels", "a,b", RF_CONF_ORIGIN_CLI, "--set", &err) == 0);
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "classify.url") != NULL);
    RF_REQUIRE(rf_conf_set(cfg, "classify.mode", "nearest", RF_CONF_ORIGIN_CLI, "--set", &err) ==
               0);
    RF_REQUIRE(rf_conf_set(cfg, "classify.label.descriptions", "only one", RF_CONF_ORIGIN_CLI,
                           "--set", &err) == 0);
    RF_CHECK_INT(rf_conf_finalize(cfg, 0, &err), RF_ECONFIG);
    RF_CHECK(strstr(err.msg, "descriptions") != NULL);
    rf_conf_free(cfg);
}

RF_TEST_MAIN(test_hash_provider_offline, test_config_checks, test_wire_formats,
             test_dimensions_param, test_dedupe_and_batching, test_concurrency,
             test_transient_faults, test_retry_after_honoured, test_governor_backs_off_and_recovers,
             test_permanent_failures_confined, test_local_refusals,
             test_refusing_everything_is_config, test_unavailable, test_api_keys,
             test_query_retries)
