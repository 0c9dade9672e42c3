/* test_embed_classify.c - classification: `llm` against the fake chat endpoint (labels
 * parsed, several records per request, out-of-set labels asked again once and then failing
 * only that record's classification, malformed answers retried), `nearest` with the hash
 * embedder and through a REST provider, and `none`. */
#include "embed/embed.h"
#include "fake/fake_spawn.h"
#include "rf_test.h"

#include <stdarg.h>
#include <string.h>

#define DIM 64

static fake_t fk;

static rf_conf_t *mkcfg(const char *first, ...)
{
    rf_conf_t *cfg = rf_conf_new();
    rf_err_t err;
    va_list ap;
    const char *kv = first;
    va_start(ap, first);
    for (; kv; kv = va_arg(ap, const char *)) {
        const char *eq = strchr(kv, '=');
        char key[64], *val;
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        /* "@" stands for the fake's base URL. */
        val = eq[1] == '@' ? rf_xasprintf("%s%s", fk.base, eq + 2) : rf_xstrdup(eq + 1);
        if (rf_conf_set(cfg, key, val, RF_CONF_ORIGIN_CLI, "t", &err))
            fprintf(stderr, "%s\n", err.msg);
        free(val);
    }
    va_end(ap);
    if (rf_conf_finalize(cfg, 0, &err))
        fprintf(stderr, "finalize: %s\n", err.msg);
    return cfg;
}

static const char *const texts[] = {
    "my invoice shows a double charge, please refund the billing error",
    "the parcel never arrived and shipping tracking is stuck",
    "what a lovely day",
    "billing address update",
    "shipping to Canada?",
};
#define NT (sizeof(texts) / sizeof(texts[0]))

static void items_of(rf_embed_item_t *it, float *vecs)
{
    memset(it, 0, NT * sizeof(*it));
    for (size_t i = 0; i < NT; i++) {
        it[i].text = texts[i];
        it[i].len = strlen(texts[i]);
        it[i].out = vecs + i * DIM;
    }
}

static void reset_fake(void)
{
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"none\",\"reset\":true}"));
}

static void test_llm_labels(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_item_t it[NT];
    rf_embed_label_t out[NT];
    float vecs[NT * DIM];
    const char *const *names;
    RF_REQUIRE(fake_start(&fk, RF_FAKE_PROVIDER, NULL, 10000) == 0);
    reset_fake();
    cfg = mkcfg("classify.mode=llm", "classify.url=@/v1/chat/completions",
                "classify.model=fake-chat", "classify.labels=billing,shipping,other",
                "classify.batch.size=2", "embed.retry.max.ms=100", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_labels(e, &names), 3);
    RF_CHECK_STR(names[1], "shipping");
    items_of(it, vecs);
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    RF_CHECK(out[0].ok && out[0].label == 0);
    RF_CHECK(out[1].ok && out[1].label == 1);
    RF_CHECK(out[2].ok && out[2].label == 0); /* no label named: the fake picks the first */
    RF_CHECK(out[3].ok && out[3].label == 0);
    RF_CHECK(out[4].ok && out[4].label == 1);
    RF_CHECK(out[0].score > 0.89f && out[0].score < 0.91f);
    RF_CHECK_INT(fake_stat(&fk, "chat_calls"), 3); /* 5 records, 2 per request */

    /* One out-of-set answer: asked again once, then fine. */
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"badlabel\",\"count\":1}"));
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    for (size_t i = 0; i < NT; i++)
        RF_CHECK(out[i].ok);
    RF_CHECK_INT(fake_stat(&fk, "chat_calls"), 4);

    /* A malformed answer and transient faults are retried too. */
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"badjson\",\"count\":1}"));
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    for (size_t i = 0; i < NT; i++)
        RF_CHECK(out[i].ok);
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"429\",\"count\":2}"));
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    for (size_t i = 0; i < NT; i++)
        RF_CHECK(out[i].ok);
    rf_embed_free(e);
    rf_conf_free(cfg);
    fake_stop(&fk);
}

static void test_llm_out_of_set_rejected(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_item_t it[NT];
    rf_embed_label_t out[NT];
    float vecs[NT * DIM];
    const char *odd = "this one says label:refunds which is not in the set";
    RF_REQUIRE(fake_start(&fk, RF_FAKE_PROVIDER, NULL, 10000) == 0);
    reset_fake();
    cfg =
        mkcfg("classify.mode=llm", "classify.url=@/v1/chat/completions", "classify.model=fake-chat",
              "classify.labels=billing,shipping,other", "classify.batch.size=5", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    items_of(it, vecs);
    it[2].text = odd;
    it[2].len = strlen(odd);
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    RF_CHECK(!out[2].ok);
    RF_CHECK_INT(out[2].label, -1);
    RF_CHECK(strstr(out[2].reason, "refunds") != NULL);
    RF_CHECK(strstr(out[2].reason, "not one of") != NULL);
    RF_CHECK(out[0].ok && out[1].ok && out[3].ok && out[4].ok);
    /* One request for all five, one more asking only the odd one again. */
    RF_CHECK_INT(fake_stat(&fk, "chat_calls"), 2);

    /* Always out of set: every classification fails, no record does, RF_OK. */
    reset_fake();
    RF_REQUIRE(fake_control(&fk, "{\"fault\":\"badlabel\",\"count\":-1}"));
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    for (size_t i = 0; i < NT; i++)
        RF_CHECK(!out[i].ok && strstr(out[i].reason, "not-a-label") != NULL);
    RF_CHECK_INT(fake_stat(&fk, "chat_calls"), 2);
    rf_embed_free(e);
    rf_conf_free(cfg);
    fake_stop(&fk);
}

static void test_nearest_hash(void)
{
    rf_conf_t *cfg = mkcfg("classify.mode=nearest", "classify.labels=sports,cooking",
                           "classify.label.descriptions=football match goal team score | "
                           "recipe oven bake flour sugar",
                           NULL);
    rf_embed_t *e = NULL;
    rf_err_t err;
    static const char *const t[] = {"the team scored a late goal in the match",
                                    "bake the flour and sugar in a hot oven"};
    float vecs[2 * 384];
    rf_embed_item_t it[2];
    rf_embed_label_t out[2];
    memset(it, 0, sizeof(it));
    for (int i = 0; i < 2; i++) {
        it[i].text = t[i];
        it[i].len = strlen(t[i]);
        it[i].out = vecs + i * 384;
    }
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_run(e, it, 2, 1000, &err), RF_OK);
    RF_CHECK_INT(rf_embed_classify(e, it, 2, out, 1000, &err), RF_OK);
    RF_CHECK(out[0].ok && out[0].label == 0 && out[0].score > 0.1f);
    RF_CHECK(out[1].ok && out[1].label == 1 && out[1].score > 0.1f);
    it[1].done = 0;
    RF_CHECK_INT(rf_embed_classify(e, it, 2, out, 1000, &err), RF_OK);
    RF_CHECK(!out[1].ok && out[1].reason[0]);
    rf_embed_free(e);
    rf_conf_free(cfg);
}

static void test_nearest_rest_and_none(void)
{
    rf_conf_t *cfg;
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_item_t it[NT];
    rf_embed_label_t out[NT];
    float vecs[NT * DIM];
    RF_REQUIRE(fake_start(&fk, RF_FAKE_PROVIDER, NULL, 10000) == 0);
    reset_fake();
    cfg = mkcfg("embed.provider=tei", "embed.url=@/embed", "embed.model=fake", "embed.dim=64",
                "classify.mode=nearest", "classify.labels=billing,shipping",
                "classify.label.descriptions=invoice refund billing charge|parcel shipping "
                "tracking delivery",
                NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    items_of(it, vecs);
    RF_CHECK_INT(rf_embed_run(e, it, NT, 5000, &err), RF_OK);
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    RF_CHECK(out[0].ok && out[0].label == 0);
    RF_CHECK(out[1].ok && out[1].label == 1);
    /* Descriptions are embedded once. */
    RF_CHECK_INT(fake_stat(&fk, "texts"), NT + 2);
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    RF_CHECK_INT(fake_stat(&fk, "texts"), NT + 2);
    rf_embed_free(e);
    rf_conf_free(cfg);

    cfg = mkcfg("embed.dim=64", NULL);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);
    RF_CHECK_INT(rf_embed_classify(e, it, NT, out, 5000, &err), RF_OK);
    RF_CHECK(!out[0].ok && out[0].reason[0] == '\0');
    rf_embed_free(e);
    rf_conf_free(cfg);
    fake_stop(&fk);
}

RF_TEST_MAIN(test_llm_labels, test_llm_out_of_set_rejected, test_nearest_hash,
             test_nearest_rest_and_none)
