/* embed.h - the public face of embed/: turning texts into vectors.
 *
 * The built-in provider (`embed.provider = hash`) is feature hashing over word
 * unigrams and bigrams: deterministic, offline, and good enough that texts sharing
 * words land near each other.  It never calls the network.
 */
#ifndef RF_EMBED_H
#define RF_EMBED_H

#include "core/core.h"

/* Embeds text (len bytes, UTF-8, need not be NUL-terminated) into out[dim], unit
 * length.  A text with no word characters yields the zero vector.  Thread-safe. */
void rf_embed_hash(const char *text, size_t len, int dim, float *out);

/* BLAKE2b-256 content hash over (model, dim, normalised text): whitespace runs folded
 * to one space and trimmed.  out is 32 bytes.  Thread-safe. */
void rf_embed_content_hash(const char *model, int dim, const char *text, size_t len,
                           uint8_t out[32]);

/* ==== Providers (embed.provider) ==== */

/* One text to embed.  text is borrowed until rf_embed_run returns; out points at dim
 * floats owned by the caller.  Zero new items (done = 0, rc = RF_OK) before the first
 * rf_embed_run: items with done = 1 or rc != RF_OK are skipped. */
typedef struct rf_embed_item {
    const char *text;
    size_t len;
    float *out;
    /* Set by rf_embed_run: */
    int done;         /* 1: out holds a unit-length vector */
    rf_rc rc;         /* RF_OK, or a permanent failure of this text (dead-letter it) */
    char reason[256]; /* why, when rc != RF_OK */
} rf_embed_item_t;

typedef struct rf_embed rf_embed_t;

/* Creates the configured provider client (embed.*, classify.*).  cfg is borrowed for
 * the client's lifetime.  RF_ECONFIG for a bad combination of options, or when
 * embed.api.key.env names an unset variable.  Makes no network call.
 * Caller frees with rf_embed_free(). */
rf_rc rf_embed_new(const rf_conf_t *cfg, rf_embed_t **out, rf_err_t *err);
void rf_embed_free(rf_embed_t *e);

/* Embeds every item not yet done: identical texts are sent once, texts are grouped
 * into requests by embed.batch.size and the per-request character budget, and up to
 * embed.concurrency requests are in flight at once.  Transient failures (timeouts, 429,
 * 5xx, dropped connections) are retried with backoff under the rate governor; they never
 * fail an item.  Permanent failures of one text (400 for that input, wrong dimension,
 * NaN/Inf) set that item's rc and reason, and the rest go on.
 * Returns RF_OK when every item is done or permanently failed; RF_EUNAVAIL when the
 * provider stayed unavailable for max_wait_ms (items done so far keep their vectors, call
 * again with the same items to continue: the caller pauses its input meanwhile).
 * max_wait_ms counts from the last response that made progress, so a long run that keeps
 * moving is never cut short.  Returns RF_EAUTH when the endpoint refuses the API key
 * (401/403) and RF_ECONFIG when it refuses every request (404, another 4xx, or a 400 even
 * for a known-good probe text): nothing retried would help, and no item is failed.
 * A text longer than embed.max.chars, an empty text or one that is not UTF-8 fails at
 * once with the reason.
 * Called from one thread at a time (the pipeline's). */
rf_rc rf_embed_run(rf_embed_t *e, rf_embed_item_t *items, size_t n, int64_t max_wait_ms,
                   rf_err_t *err);

/* Embeds one query text for search.  Thread-safe; may be called from many HTTP threads
 * while rf_embed_run runs.  Transient failures are retried until timeout_ms, then
 * RF_ETIMEDOUT; a text the provider refuses is RF_EEMBED with the reason. */
rf_rc rf_embed_query(rf_embed_t *e, const char *text, size_t len, float *out, int64_t timeout_ms,
                     rf_err_t *err);

/* The model id recorded with vectors ("<provider>:<model>") and the dimension. */
const char *rf_embed_model_id(const rf_embed_t *e);
int rf_embed_dim(const rf_embed_t *e);

/* ==== Rate governor state, for metrics ==== */

/* A snapshot of the client's counters since rf_embed_new.  Cache hits and misses are
 * counted by the caller, which owns the cache. */
typedef struct rf_embed_stats {
    int concurrency;          /* requests allowed in flight now (AIMD) */
    int concurrency_max;      /* embed.concurrency */
    int in_flight;            /* requests in flight now (rf_embed_run and queries) */
    int64_t backoff_until_ms; /* rf_mono_ms() before which no request starts; 0: none */
    uint64_t requests;        /* HTTP requests started, embeddings and classification */
    uint64_t retries;         /* requests repeated after a transient failure */
    uint64_t throttled;       /* 429 and 503 responses */
    uint64_t timeouts;        /* requests that timed out */
    uint64_t errors;          /* other transient failures: 5xx, connection, malformed body */
    uint64_t texts;           /* texts sent (after de-duplication) */
    uint64_t deduped;         /* items that shared an identical text's request */
    uint64_t failed;          /* items failed permanently (dead letters) */
    uint64_t tokens;          /* tokens reported by the endpoint, or estimated (chars / 4) */
} rf_embed_stats_t;

/* Fills *out.  Thread-safe. */
void rf_embed_stats_get(rf_embed_t *e, rf_embed_stats_t *out);

/* ==== Classification (classify.*) ==== */

/* The label given to one record. */
typedef struct rf_embed_label {
    int ok;           /* 1: label and score are set */
    int label;        /* index into rf_embed_labels()' names; -1 when !ok */
    float score;      /* nearest: cosine similarity; llm: the model's confidence in 0..1
                         (1 when it gives none) */
    char reason[256]; /* why there is no label, when !ok and classification is on */
} rf_embed_label_t;

/* The configured labels (classify.labels): returns their count and sets *names to an
 * array of them, borrowed until rf_embed_free.  0 (and *names NULL) when classify.mode is
 * none. */
size_t rf_embed_labels(const rf_embed_t *e, const char *const **names);

/* Classifies items[0..n) into out[0..n) by classify.mode:
 *  - none: every out is !ok with an empty reason; returns RF_OK.
 *  - nearest: the label whose description's vector is closest to the item's vector
 *    (items must have been through rf_embed_run; an item without a vector gets !ok).
 *    Label descriptions are embedded once, on the first call.
 *  - llm: the item texts go to the chat endpoint, classify.batch.size per request; the
 *    answer is parsed strictly and a label outside the set is asked again once, then
 *    that item's classification fails (out !ok with the reason) -- never the item.
 * Transient failures are retried as in rf_embed_run; returns RF_EUNAVAIL after max_wait_ms
 * without progress (outs already set stay set), RF_EAUTH / RF_ECONFIG as rf_embed_run.
 * Called from the thread that calls rf_embed_run. */
rf_rc rf_embed_classify(rf_embed_t *e, const rf_embed_item_t *items, size_t n,
                        rf_embed_label_t *out, int64_t max_wait_ms, rf_err_t *err);

#endif /* RF_EMBED_H */
