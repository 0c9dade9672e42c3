/* app_reembed.c - re-embedding into a new model generation: the embedder of a
 * generation (built from its description), the unit of work that reads records still
 * lacking a vector of the generation and embeds them through the same client, cache and
 * governor as ingest, the dry-run estimate, and `ragfeed reembed` itself.
 *
 * `ragfeed reembed` drives a running instance through its admin API when the state dir
 * is in use, and otherwise runs the migration in-process.  Either way progress lives in
 * the store (the cursor and each stored vector commit together), so a stop or a crash
 * resumes where it got to.  INVARIANT(one-record-per-key): the switch happens only once
 * every current record has a vector of the new generation.
 */
#include "app/app_reembed.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

/* ==== The embedder of a generation ==== */

/* The provider names are the configuration's own (embed.provider's choices, in
 * RF_EMBED_PROVIDER_* order). */
static const char *const *provider_names(void)
{
    return rf_conf_opt_find("embed.provider")->choices;
}

int rf__app_provider_parse(const char *s)
{
    const char *const *names = provider_names();
    for (int i = 0; names[i]; i++)
        if (!strcmp(s, names[i]))
            return i;
    return -1;
}

char *rf__app_gen_desc_make(const rf_conf_t *base, const char *provider, const char *model, int dim,
                            const char *url)
{
    json_t *o = json_object();
    char *s, *model_id;
    int prov = provider ? rf__app_provider_parse(provider) : base->embed_provider;
    if (prov < 0)
        prov = base->embed_provider;
    if (!model)
        model = base->embed_model;
    if (!url && !provider)
        url = base->embed_url;
    if (dim <= 0)
        dim = (int)base->embed_dim;
    model_id = rf_xasprintf("%s:%s", provider_names()[prov], model ? model : "");
    json_object_set_new(o, "provider", json_string(provider_names()[prov]));
    json_object_set_new(o, "model", json_string(model ? model : ""));
    json_object_set_new(o, "dim", json_integer(dim));
    if (url && *url)
        json_object_set_new(o, "url", json_string(url));
    json_object_set_new(o, "model_id", json_string(model_id));
    s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    free(model_id);
    return s;
}

int rf__app_gen_desc_same(const char *a, const char *b)
{
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
    int same = x && y;
    static const char *const keys[] = {"provider", "model", "dim", "url"};
    for (size_t i = 0; same && i < 4; i++) {
        json_t *u = json_object_get(x, keys[i]), *v = json_object_get(y, keys[i]);
        same = (!u && !v) || (u && v && json_equal(u, v));
    }
    json_decref(x);
    json_decref(y);
    return same;
}

rf_rc rf__app_gen_open(const rf_conf_t *base, int64_t gen, int dim, const char *desc,
                       rf__app_gen_t **out, rf_err_t *err)
{
    rf__app_gen_t *g = rf_xcalloc(1, sizeof(*g));
    json_t *o = json_loads(desc, 0, NULL);
    const char *prov = json_string_value(json_object_get(o, "provider"));
    const char *model = json_string_value(json_object_get(o, "model"));
    const char *url = json_string_value(json_object_get(o, "url"));
    rf_rc rc = RF_OK;
    *out = NULL;
    g->gen = gen;
    g->dim = dim;
    g->desc = rf_xstrdup(desc);
    /* The base configuration with the generation's embedder: every other option (batch
     * sizes, keys, the governor's limits) is the instance's. */
    g->cfg = rf_xmalloc(sizeof(*g->cfg));
    *g->cfg = *base;
    if (prov) {
        int p = rf__app_provider_parse(prov);
        if (p < 0) {
            rc = rf_err_set(err, RF_ECONFIG, "generation %lld: unknown provider \"%s\"",
                            (long long)gen, prov);
            goto out;
        }
        g->cfg->embed_provider = p;
        if (p != base->embed_provider && !url)
            g->cfg->embed_url = NULL;
    }
    if (model) {
        g->model = rf_xstrdup(model);
        g->cfg->embed_model = g->model;
    }
    if (url) {
        g->url = rf_xstrdup(url);
        g->cfg->embed_url = g->url;
    }
    g->cfg->embed_dim = dim;
    if ((rc = rf_embed_new(g->cfg, &g->emb, err)))
        goto out;
    g->model_id = rf_embed_model_id(g->emb);
    g->use_cache = g->cfg->embed_provider != RF_EMBED_PROVIDER_HASH;
out:
    json_decref(o);
    if (rc) {
        rf__app_gen_free(g);
        return rc;
    }
    *out = g;
    return RF_OK;
}

void rf__app_gen_free(rf__app_gen_t *g)
{
    if (!g)
        return;
    rf_embed_free(g->emb);
    free(g->cfg); /* a shallow copy: its strings belong to the base or to g */
    free(g->model);
    free(g->url);
    free(g->desc);
    free(g);
}

/* ==== One unit of work ==== */

void rf__app_rebatch_clear(rf__app_rebatch_t *b)
{
    rf_index_gen_items_free(b->items, b->n);
    free(b->eitems);
    free(b->vecs);
    free(b->hashes);
    free(b->gv);
    memset(b, 0, sizeof(*b));
}

rf_rc rf__app_rebatch_prepare(rf_index_t *ix, rf__app_gen_t *g, int64_t *cursor, size_t max,
                              rf__app_rebatch_t *b, rf_err_t *err)
{
    rf_embed_stats_t s0, s1;
    size_t m = 0;
    rf_rc rc;
    memset(b, 0, sizeof(*b));
    if ((rc = rf_index_gen_pending(ix, g->gen, *cursor, max, &b->items, &b->n, err)))
        return rc;
    if (!b->n)
        return RF_OK;
    b->eitems = rf_xcalloc(b->n, sizeof(*b->eitems));
    b->vecs = rf_xmalloc(b->n * (size_t)g->dim * sizeof(float));
    b->hashes = rf_xmalloc(b->n * 32);
    b->gv = rf_xmalloc(b->n * sizeof(*b->gv));
    for (size_t i = 0; i < b->n; i++) {
        rf_embed_item_t *it = &b->eitems[i];
        float *vec = b->vecs + i * (size_t)g->dim;
        uint8_t *h = b->hashes + i * 32;
        size_t len = strlen(b->items[i].text);
        rf_embed_content_hash(g->model_id, g->dim, b->items[i].text, len, h);
        it->text = b->items[i].text;
        it->len = len;
        it->out = vec;
        /* Content unchanged under the new model's cache key is never embedded twice:
         * a vector of any record and any generation with the same hash is reused. */
        if (g->use_cache && rf_index_vector_by_hash(ix, h, g->dim, vec, NULL) == RF_OK) {
            it->done = 1;
            b->cached++;
        }
    }
    rf_embed_stats_get(g->emb, &s0);
    rc = rf_embed_run(g->emb, b->eitems, b->n, 5000, err);
    rf_embed_stats_get(g->emb, &s1);
    b->tokens = (int64_t)(s1.tokens - s0.tokens);
    if (rc)
        return rc;
    for (size_t i = 0; i < b->n; i++) {
        if (!b->eitems[i].done || b->eitems[i].rc != RF_OK) {
            /* The record stays pending; the switch waits for it. */
            b->failed++;
            RF_LOG(RF_LOG_WARN, RF_MOD_APP, "id=%s gen=%lld re-embedding failed: %s",
                   b->items[i].id, (long long)g->gen, b->eitems[i].reason);
            continue;
        }
        b->gv[m].vid = b->items[i].vid;
        b->gv[m].rec_seq = b->items[i].rec_seq;
        b->gv[m].vec = b->eitems[i].out;
        b->gv[m].content_hash = b->hashes + i * 32;
        m++;
    }
    b->ngv = m;
    b->cursor = b->items[b->n - 1].vid;
    *cursor = b->cursor;
    return RF_OK;
}

void rf__app_rebatch_batch(const rf__app_rebatch_t *rb, int64_t gen, rf_index_batch_t *out)
{
    memset(out, 0, sizeof(*out));
    out->gen = gen;
    out->genvecs = rb->gv;
    out->genvec_cnt = rb->ngv;
    out->gen_cursor = rb->cursor;
    out->gen_tokens = rb->tokens;
}

/* ==== Dry run ==== */

static int hash_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

rf_rc rf__app_reembed_estimate(rf_index_t *ix, const char *model_id, int dim, int use_cache,
                               int64_t gen, rf__app_estimate_t *est, rf_err_t *err)
{
    int64_t cursor = 0;
    uint8_t *hs = NULL;
    size_t hn = 0, hcap = 0;
    rf_rc rc = RF_OK;
    memset(est, 0, sizeof(*est));
    for (;;) {
        rf_index_gen_item_t *it = NULL;
        size_t n = 0;
        float *vec = rf_xmalloc((size_t)dim * sizeof(float));
        if ((rc = rf_index_gen_pending(ix, gen, cursor, 2048, &it, &n, err))) {
            free(vec);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(it[i].text);
            uint8_t h[32];
            rf_embed_content_hash(model_id, dim, it[i].text, len, h);
            est->records++;
            if (use_cache && rf_index_vector_by_hash(ix, h, dim, vec, NULL) == RF_OK) {
                est->cached++;
                continue;
            }
            if (hn == hcap) {
                hcap = hcap ? hcap * 2 : 1024;
                hs = rf_xrealloc(hs, hcap * 40);
            }
            /* The hash, then the text's token estimate, so equal texts sort together. */
            memcpy(hs + hn * 40, h, 32);
            {
                uint64_t tok = (uint64_t)(len + 3) / 4;
                memcpy(hs + hn * 40 + 32, &tok, 8);
            }
            hn++;
        }
        if (n)
            cursor = it[n - 1].vid;
        rf_index_gen_items_free(it, n);
        free(vec);
        if (!n)
            break;
    }
    if (!rc && hn) {
        qsort(hs, hn, 40, hash_cmp);
        for (size_t i = 0; i < hn; i++) {
            uint64_t tok;
            if (i && memcmp(hs + i * 40, hs + (i - 1) * 40, 32) == 0) {
                est->duplicates++;
                continue;
            }
            memcpy(&tok, hs + i * 40 + 32, 8);
            est->texts++;
            est->tokens += (int64_t)tok;
        }
    }
    free(hs);
    return rc;
}

/* ==== Progress ==== */

void rf__app_progress_print(FILE *fp, int tty, int64_t done, int64_t total, double rate,
                            int64_t tokens, int final)
{
    double pct = total > 0 ? 100.0 * (double)done / (double)total : 100.0;
    int64_t left = total > done ? total - done : 0;
    int64_t eta = rate > 0 ? (int64_t)((double)left / rate) : -1;
    char etabuf[32];
    if (eta >= 0)
        snprintf(etabuf, sizeof(etabuf), "%lld:%02lld", (long long)(eta / 60),
                 (long long)(eta % 60));
    else
        snprintf(etabuf, sizeof(etabuf), "?");
    if (tty) {
        char bar[31];
        int fill = (int)(pct * 30 / 100);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(fp, "\r[%s] %lld/%lld %5.1f%%  %.0f rec/s  ETA %s  %lld tokens%s", bar,
                (long long)done, (long long)total, pct, rate, etabuf, (long long)tokens,
                final ? "\n" : "   ");
    } else {
        fprintf(fp, "progress done=%lld total=%lld percent=%.1f rate=%.0f eta_s=%lld tokens=%lld\n",
                (long long)done, (long long)total, pct, rate, (long long)eta, (long long)tokens);
    }
    fflush(fp);
}
