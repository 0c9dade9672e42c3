/* embed_hash.c - the built-in embedder (`embed.provider = hash`) and the content hash.
 *
 * Feature hashing ("the hashing trick"): every lower-cased word unigram and adjacent
 * word bigram is hashed to one of `dim` buckets with a hash-derived sign, weights are
 * summed, and the vector is scaled to unit length.  Texts that share words therefore
 * have positive cosine similarity, and the signs keep unrelated collisions centred on
 * zero.  It is deterministic and offline: right for tests, demos, keyword-heavy corpora
 * (product catalogues, package descriptions, tickets) and as a fallback; it knows no
 * synonyms, so semantic search over paraphrases needs a real model (embed.provider).
 */
#include "embed.h"

#include <ctype.h>
#include <math.h>
#include <sodium.h>
#include <string.h>

#define MAX_WORD 64

/* Very common English words carry little meaning; they get a small weight so that two
 * texts do not look alike merely for sharing "the" and "of". */
static const char *const stopwords[] = {
    "a",    "an", "and", "are",  "as",   "at",   "be",    "by",  "for",  "from",
    "has",  "in", "is",  "it",   "its",  "of",   "on",    "or",  "that", "the",
    "this", "to", "was", "were", "will", "with", "which", "can", "not",  "you",
};

static int is_stopword(const char *w, size_t n)
{
    for (size_t i = 0; i < sizeof(stopwords) / sizeof(stopwords[0]); i++)
        if (strlen(stopwords[i]) == n && !memcmp(stopwords[i], w, n))
            return 1;
    return 0;
}

/* FNV-1a 64 followed by a final avalanche (splitmix64), so low bits are usable. */
static uint64_t hash_bytes(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void add_feature(float *out, int dim, uint64_t h, float w)
{
    uint64_t m = mix(h);
    size_t bucket = (size_t)(m % (uint64_t)dim);
    out[bucket] += (m >> 63) ? -w : w;
}

/* Word characters: ASCII letters and digits, and every byte of a multi-byte UTF-8
 * sequence (so non-Latin words are kept whole). */
static int word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

void rf_embed_hash(const char *text, size_t len, int dim, float *out)
{
    char prev[MAX_WORD], word[MAX_WORD];
    size_t prev_len = 0, i = 0;
    int prev_stop = 1;
    double norm = 0;

    memset(out, 0, (size_t)dim * sizeof(float));
    while (i < len) {
        size_t wl = 0;
        int stop;
        while (i < len && !word_byte((unsigned char)text[i]))
            i++;
        while (i < len && word_byte((unsigned char)text[i])) {
            if (wl < MAX_WORD)
                word[wl++] = (char)tolower((unsigned char)text[i]);
            i++;
        }
        if (wl == 0)
            break;
        stop = is_stopword(word, wl);
        add_feature(out, dim, hash_bytes(0xcbf29ce484222325ULL, word, wl), stop ? 0.1f : 1.0f);
        if (prev_len && !(stop && prev_stop)) {
            /* The bigram hash chains the two words with a separator so that "ab c" and
             * "a bc" differ. */
            uint64_t h = hash_bytes(0x84222325cbf29ce4ULL, prev, prev_len);
            h = hash_bytes(h, " ", 1);
            add_feature(out, dim, hash_bytes(h, word, wl), 0.5f);
        }
        memcpy(prev, word, wl);
        prev_len = wl;
        prev_stop = stop;
    }
    for (int d = 0; d < dim; d++)
        norm += (double)out[d] * out[d];
    if (norm > 0) {
        float inv = (float)(1.0 / sqrt(norm));
        for (int d = 0; d < dim; d++)
            out[d] *= inv;
    }
}

void rf_embed_content_hash(const char *model, int dim, const char *text, size_t len,
                           uint8_t out[32])
{
    crypto_generichash_state st;
    uint8_t dimle[4] = {(uint8_t)dim, (uint8_t)(dim >> 8), (uint8_t)(dim >> 16),
                        (uint8_t)(dim >> 24)};
    size_t i = 0;
    int pending_space = 0, started = 0;

    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const unsigned char *)model, strlen(model) + 1);
    crypto_generichash_update(&st, dimle, sizeof(dimle));
    /* Normalised text: runs of whitespace fold to one space, leading and trailing
     * whitespace dropped. */
    while (i < len) {
        size_t j = i;
        while (j < len && !isspace((unsigned char)text[j]))
            j++;
        if (j > i) {
            if (pending_space && started)
                crypto_generichash_update(&st, (const unsigned char *)" ", 1);
            crypto_generichash_update(&st, (const unsigned char *)text + i, j - i);
            started = 1;
            pending_space = 0;
        }
        while (j < len && isspace((unsigned char)text[j])) {
            pending_space = 1;
            j++;
        }
        i = j;
    }
    crypto_generichash_final(&st, out, 32);
}
