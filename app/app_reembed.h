/* app_reembed.h - private to app/: model generations as the pipeline and `ragfeed
 * reembed` use them: a generation's embedder, the unit of re-embedding work, the dry-run
 * estimate and the progress display (app_reembed.c, app_reembed_cmd.c, app_run.c). */
#ifndef RF_APP_REEMBED_H
#define RF_APP_REEMBED_H

#include <stdio.h>

#include "app/app_int.h"
#include "embed/embed.h"
#include "index/index.h"

/* The embedder of one generation: the instance's configuration with the generation's
 * provider, model, dim and URL. */
typedef struct rf__app_gen {
    int64_t gen;
    int dim;
    char *desc;
    char *model, *url; /* owned overrides */
    rf_conf_t *cfg;    /* shallow copy of the base configuration */
    rf_embed_t *emb;
    const char *model_id;
    int use_cache; /* remote providers: look vectors up by content hash first */
} rf__app_gen_t;

/* The description (JSON object text) of an embedder: the base configuration's, with
 * provider, model, dim (> 0) and url overriding it when given.  Caller frees. */
char *rf__app_gen_desc_make(const rf_conf_t *base, const char *provider, const char *model, int dim,
                            const char *url);
/* The RF_EMBED_PROVIDER_* value of a provider name (embed.provider's choices), or -1. */
int rf__app_provider_parse(const char *name);
/* 1 when two descriptions name the same embedder (provider, model, dim, url). */
int rf__app_gen_desc_same(const char *a, const char *b);
/* The embedder of generation gen.  base must outlive it. */
rf_rc rf__app_gen_open(const rf_conf_t *base, int64_t gen, int dim, const char *desc,
                       rf__app_gen_t **out, rf_err_t *err);
void rf__app_gen_free(rf__app_gen_t *g);

/* One batch of re-embedding: records read after a cursor, embedded (cache first), as
 * generation vectors ready for rf_index_apply. */
typedef struct rf__app_rebatch {
    rf_index_gen_item_t *items;
    size_t n; /* records read (0: none left after the cursor) */
    rf_embed_item_t *eitems;
    float *vecs;
    uint8_t *hashes;
    rf_index_genvec_t *gv;
    size_t ngv;     /* vectors made */
    int64_t cursor; /* the last vid read */
    int64_t tokens, cached, failed;
} rf__app_rebatch_t;

/* Reads up to max records of g's generation still lacking a vector after *cursor and
 * embeds them; advances *cursor.  A provider failure is returned (nothing is lost: the
 * records stay pending).  Reader of ix; the caller applies the batch on the writer. */
rf_rc rf__app_rebatch_prepare(rf_index_t *ix, rf__app_gen_t *g, int64_t *cursor, size_t max,
                              rf__app_rebatch_t *b, rf_err_t *err);
void rf__app_rebatch_batch(const rf__app_rebatch_t *rb, int64_t gen, rf_index_batch_t *out);
void rf__app_rebatch_clear(rf__app_rebatch_t *b);

/* What a migration would send: records to cover, those whose vector the cache has, the
 * distinct texts left to embed and their estimated tokens (characters / 4). */
typedef struct rf__app_estimate {
    int64_t records, cached, duplicates, texts, tokens;
} rf__app_estimate_t;
rf_rc rf__app_reembed_estimate(rf_index_t *ix, const char *model_id, int dim, int use_cache,
                               int64_t gen, rf__app_estimate_t *est, rf_err_t *err);

/* One progress line: a bar redrawn in place on a terminal, plain key=value lines
 * otherwise. */
void rf__app_progress_print(FILE *fp, int tty, int64_t done, int64_t total, double rate,
                            int64_t tokens, int final);

#endif
