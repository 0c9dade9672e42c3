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

#endif /* RF_EMBED_H */
