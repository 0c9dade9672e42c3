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
 * floats owned by the caller. */
typedef struct rf_embed_item {
    const char *text;
    size_t len;
    float *out;
    /* Set by rf_embed_run: */
    int done;       /* 1: out holds a unit-length vector */
    rf_rc rc;       /* RF_OK, or a permanent failure of this text (dead-letter it) */
    char reason[256]; /* why, when rc != RF_OK */
} rf_embed_item_t;

typedef struct rf_embed rf_embed_t;

/* Creates the configured provider client (embed.*, classify.*).  cfg is borrowed for
 * the client's lifetime.  RF_ECONFIG for a bad combination of options.
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
 * Called from one thread at a time (the pipeline's). */
rf_rc rf_embed_run(rf_embed_t *e, rf_embed_item_t *items, size_t n, int64_t max_wait_ms,
                   rf_err_t *err);

/* Embeds one query text for search.  Thread-safe; may be called from many HTTP threads
 * while rf_embed_run runs.  Transient failures are retried until timeout_ms. */
rf_rc rf_embed_query(rf_embed_t *e, const char *text, size_t len, float *out, int64_t timeout_ms,
                     rf_err_t *err);

/* The model id recorded with vectors ("<provider>:<model>") and the dimension. */
const char *rf_embed_model_id(const rf_embed_t *e);
int rf_embed_dim(const rf_embed_t *e);

#endif /* RF_EMBED_H */
