/* test_hash.c - the built-in embedder: unit length, determinism, related texts closer
 * than unrelated ones, and the content hash's normalisation. */
#include "embed/embed.h"
#include "rf_test.h"

#include <math.h>
#include <string.h>

#define DIM 384

static float dot(const float *a, const float *b)
{
    float s = 0;
    for (int i = 0; i < DIM; i++)
        s += a[i] * b[i];
    return s;
}

static void emb(const char *t, float *v)
{
    rf_embed_hash(t, strlen(t), DIM, v);
}

static void test_unit_length_and_determinism(void)
{
    float a[DIM], b[DIM];
    emb("Kafka change events become searchable context", a);
    emb("Kafka change events become searchable context", b);
    RF_CHECK(fabsf(dot(a, a) - 1.0f) < 1e-5f);
    RF_CHECK(memcmp(a, b, sizeof(a)) == 0);
}

static void test_related_closer_than_unrelated(void)
{
    float q[DIM], rel[DIM], unrel[DIM];
    emb("postgres database replication", q);
    emb("logical replication for the postgres database server", rel);
    emb("a recipe for chocolate cake with strawberries", unrel);
    RF_CHECK(dot(q, rel) > 0.3f);
    RF_CHECK(dot(q, rel) > dot(q, unrel) + 0.2f);
}

static void test_case_and_punctuation_insensitive(void)
{
    float a[DIM], b[DIM];
    emb("Hello, World!", a);
    emb("hello world", b);
    RF_CHECK(dot(a, b) > 0.999f);
}

static void test_empty_text_is_zero(void)
{
    float a[DIM];
    emb("  ,;  ", a);
    RF_CHECK(dot(a, a) == 0.0f);
}

static void test_content_hash_normalises_whitespace(void)
{
    uint8_t h1[32], h2[32], h3[32], h4[32];
    rf_embed_content_hash("m", DIM, "  a   b\n c ", 11, h1);
    rf_embed_content_hash("m", DIM, "a b c", 5, h2);
    rf_embed_content_hash("m2", DIM, "a b c", 5, h3);
    rf_embed_content_hash("m", DIM + 1, "a b c", 5, h4);
    RF_CHECK(memcmp(h1, h2, 32) == 0);
    RF_CHECK(memcmp(h2, h3, 32) != 0);
    RF_CHECK(memcmp(h2, h4, 32) != 0);
}

RF_TEST_MAIN(test_unit_length_and_determinism, test_related_closer_than_unrelated,
             test_case_and_punctuation_insensitive, test_empty_text_is_zero,
             test_content_hash_normalises_whitespace)
