/* embed_client.c - the provider client: rf_embed_new/free, the batch engine behind
 * rf_embed_run (de-duplication, packing texts into requests, many requests in flight on
 * one curl multi handle under the rate governor, bisecting refused batches) and the
 * blocking rf_embed_query used by search threads.
 *
 * Upholds DESIGN.md invariant 5: a transient failure only ever re-queues its batch; an item
 * fails only for its own reason (refused alone, bad vector, too long), and never because
 * the endpoint was down or refused everything (that is RF_EUNAVAIL / RF_ECONFIG instead).
 */
#include "embed_int.h"

#include <sodium.h>
#include <string.h>

/* The text sent to tell "this text is refused" from "every text is refused". */
#define PROBE_TEXT "ragfeed probe"

/* ==== Lifecycle ==== */

static const rf__embed_prov_t *const provs[] = {NULL, &rf__embed_openai, &rf__embed_ollama,
                                                &rf__embed_tei};

/* Resolves an API key from the value or the named environment variable; NULL when none.
 * Returns RF_ECONFIG when the variable is named but unset. */
static rf_rc resolve_key(const char *value, const char *env, const char *opt, const char **key,
                         rf_err_t *err)
{
    *key = value;
    if (!value && env) {
        *key = getenv(env);
        if (!*key || !**key)
            return rf_err_set(err, RF_ECONFIG, "%s=%s: the environment variable %s is not set", opt,
                              env, env);
    }
    return RF_OK;
}

static struct curl_slist *make_headers(int style, const char *key)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json");
    /* No "Expect: 100-continue" round trip before each body. */
    h = curl_slist_append(h, "Expect:");
    if (key) {
        char *line = style == RF_EMBED_KEY_HEADER_API_KEY
                         ? rf_xasprintf("api-key: %s", key)
                         : rf_xasprintf("Authorization: Bearer %s", key);
        h = curl_slist_append(h, line);
        sodium_memzero(line, strlen(line));
        free(line);
    }
    return h;
}

/* Splits classify.label.descriptions on `|` into nlabels trimmed strings (one block). */
static char **split_descs(const char *text, size_t nlabels)
{
    size_t len = strlen(text);
    char **arr = rf_xmalloc(nlabels * sizeof(char *) + len + 1);
    char *store = (char *)(arr + nlabels), *s;
    size_t k = 0;
    memcpy(store, text, len + 1);
    s = store;
    while (k < nlabels) {
        char *bar = strchr(s, '|'), *t;
        if (bar)
            *bar = '\0';
        while (*s == ' ' || *s == '\t')
            s++;
        t = s + strlen(s);
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            *--t = '\0';
        arr[k++] = s;
        if (!bar)
            break;
        s = bar + 1;
    }
    while (k < nlabels)
        arr[k++] = store + len; /* fewer descriptions than labels: finalize refuses that */
    return arr;
}

rf_rc rf_embed_new(const rf_conf_t *cfg, rf_embed_t **out, rf_err_t *err)
{
    rf_embed_t *e = NULL;
    const char *key = NULL, *chat_key = NULL;
    rf_rc rc = RF_OK;
    int need_http;

    *out = NULL;
    if (cfg->embed_provider < 0 || (size_t)cfg->embed_provider >= sizeof(provs) / sizeof(provs[0]))
        return rf_err_set(err, RF_ECONFIG, "embed.provider: unknown provider %d",
                          cfg->embed_provider);
    if (cfg->embed_provider != RF_EMBED_PROVIDER_HASH && (!cfg->embed_url || !*cfg->embed_url))
        return rf_err_set(err, RF_ECONFIG, "embed.url: required by embed.provider=%s",
                          provs[cfg->embed_provider]->name);
    if (cfg->classify_mode == RF_CLASSIFY_LLM && (!cfg->classify_url || !cfg->classify_model))
        return rf_err_set(err, RF_ECONFIG,
                          "classify.mode=llm: expected classify.url and classify.model");

    e = rf_xcalloc(1, sizeof(*e));
    e->cfg = cfg;
    e->dim = (int)cfg->embed_dim;
    e->prov = provs[cfg->embed_provider];
    e->model_id = rf_xasprintf("%s:%s", e->prov ? e->prov->name : "hash", cfg->embed_model);
    rf__embed_gov_init(&e->gov, cfg);
    pthread_mutex_init(&e->pool_mu, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if (cfg->classify_mode != RF_CLASSIFY_NONE) {
        e->nlabels = rf_conf_list_split(cfg->classify_labels, &e->labels);
        if (e->nlabels < 2) {
            rc = rf_err_set(err, RF_ECONFIG, "classify.labels: expected at least two labels");
            goto out;
        }
        e->descs = split_descs(
            cfg->classify_label_descriptions ? cfg->classify_label_descriptions : "", e->nlabels);
        for (size_t i = 0; i < e->nlabels; i++)
            if (!cfg->classify_label_descriptions || !*e->descs[i])
                e->descs[i] = e->labels[i];
    }

    rc = resolve_key(cfg->embed_api_key, cfg->embed_api_key_env, "embed.api.key.env", &key, err);
    if (rc)
        goto out;
    need_http = e->prov != NULL || cfg->classify_mode == RF_CLASSIFY_LLM;
    if (need_http) {
        e->multi = curl_multi_init();
        if (!e->multi) {
            rc = rf_err_set(err, RF_ENOMEM, "curl_multi_init failed");
            goto out;
        }
        /* Keep every connection the client may open alive between requests. */
        curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                          (long)(cfg->embed_concurrency + RF__EMBED_POOL_MAX));
        curl_multi_setopt(e->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
        e->nreqs = (int)cfg->embed_concurrency;
        e->reqs = rf_xcalloc((size_t)e->nreqs, sizeof(*e->reqs));
        for (int i = 0; i < e->nreqs; i++)
            e->reqs[i] = rf__embed_req_new();
        e->hdrs = make_headers(cfg->embed_api_key_header, key);
    }
    if (cfg->classify_mode == RF_CLASSIFY_LLM) {
        rc = resolve_key(cfg->classify_api_key, cfg->classify_api_key_env, "classify.api.key.env",
                         &chat_key, err);
        if (rc)
            goto out;
        e->chat_hdrs = make_headers(cfg->embed_api_key_header, chat_key ? chat_key : key);
    }
out:
    if (rc) {
        rf_embed_free(e);
        return rc;
    }
    *out = e;
    return RF_OK;
}

void rf_embed_free(rf_embed_t *e)
{
    if (!e)
        return;
    for (int i = 0; i < e->nreqs; i++)
        rf__embed_req_free(e->reqs[i]);
    free(e->reqs);
    for (int i = 0; i < e->pool_n; i++)
        rf__embed_req_free(e->pool[i]);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    curl_slist_free_all(e->hdrs);
    curl_slist_free_all(e->chat_hdrs);
    free(e->labels);
    free(e->descs);
    free(e->label_vecs);
    free(e->model_id);
    pthread_mutex_destroy(&e->pool_mu);
    rf__embed_gov_fini(&e->gov);
    curl_global_cleanup();
    free(e);
}

const char *rf_embed_model_id(const rf_embed_t *e)
{
    return e->model_id;
}

int rf_embed_dim(const rf_embed_t *e)
{
    return e->dim;
}

/* ==== The batch engine ==== */

typedef struct batch {
    size_t *u; /* unique-text indices */
    size_t n;
    size_t chars;
    int probe; /* carries PROBE_TEXT, not items */
    struct batch *next;
} batch_t;

enum { U_PENDING = 0, U_DONE, U_FAILED, U_PARKED };

typedef struct run {
    rf_embed_t *e;
    rf_embed_item_t *items;
    size_t nu;          /* unique texts */
    size_t *ufirst;     /* first item of each unique text */
    size_t *inext;      /* next item with the same text; SIZE_MAX ends the chain */
    unsigned char *ust; /* U_* per unique */
    size_t unresolved;  /* uniques not DONE or FAILED */
    batch_t *head, *tail;
    int in_flight;
    size_t *parked; /* refused alone before the endpoint was known to work */
    size_t nparked;
    int probe_sent;
    int64_t last_progress_us;
    char last_err[200];
    uint64_t failed, retries;
} run_t;

static batch_t *batch_new(size_t cap)
{
    batch_t *b = rf_xcalloc(1, sizeof(*b));
    b->u = rf_xmalloc((cap ? cap : 1) * sizeof(size_t));
    return b;
}

static void batch_free(batch_t *b)
{
    if (b) {
        free(b->u);
        free(b);
    }
}

static void push_back(run_t *run, batch_t *b)
{
    b->next = NULL;
    if (run->tail)
        run->tail->next = b;
    else
        run->head = b;
    run->tail = b;
}

static void push_front(run_t *run, batch_t *b)
{
    b->next = run->head;
    run->head = b;
    if (!run->tail)
        run->tail = b;
}

static batch_t *pop_front(run_t *run)
{
    batch_t *b = run->head;
    if (b) {
        run->head = b->next;
        if (!run->head)
            run->tail = NULL;
    }
    return b;
}

static void fail_item(rf_embed_item_t *it, const char *why)
{
    it->done = 0;
    it->rc = RF_EEMBED;
    snprintf(it->reason, sizeof(it->reason), "%s", why);
}

static void resolve_ok(run_t *run, size_t u, const float *vec)
{
    for (size_t i = run->ufirst[u]; i != SIZE_MAX; i = run->inext[i]) {
        memcpy(run->items[i].out, vec, (size_t)run->e->dim * sizeof(float));
        run->items[i].done = 1;
        run->items[i].rc = RF_OK;
    }
    run->ust[u] = U_DONE;
    run->unresolved--;
}

static void resolve_fail(run_t *run, size_t u, const char *why)
{
    for (size_t i = run->ufirst[u]; i != SIZE_MAX; i = run->inext[i]) {
        fail_item(&run->items[i], why);
        run->failed++;
    }
    RF_LOG(RF_LOG_DEBUG, RF_MOD_EMBED, "reason=\"%s\" text failed", why);
    run->ust[u] = U_FAILED;
    run->unresolved--;
}

static uint64_t text_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* Checks the items, groups identical texts and packs the unique texts into batches. */
static void run_plan(run_t *run, size_t n)
{
    rf_embed_t *e = run->e;
    const rf_conf_t *cfg = e->cfg;
    rf_embed_item_t *items = run->items;
    size_t cap = 16, *slots, *ulast;
    batch_t *b = NULL;
    uint64_t deduped = 0;

    while (cap < 2 * n)
        cap *= 2;
    slots = rf_xcalloc(cap, sizeof(size_t)); /* unique index + 1; 0 is empty */
    run->ufirst = rf_xmalloc((n ? n : 1) * sizeof(size_t));
    ulast = rf_xmalloc((n ? n : 1) * sizeof(size_t));
    run->inext = rf_xmalloc((n ? n : 1) * sizeof(size_t));
    run->ust = rf_xcalloc(n ? n : 1, 1);
    for (size_t i = 0; i < n; i++) {
        rf_embed_item_t *it = &items[i];
        size_t h;
        run->inext[i] = SIZE_MAX;
        if (it->done || it->rc != RF_OK)
            continue;
        if (it->len == 0) {
            fail_item(it, "empty text");
            run->failed++;
            continue;
        }
        if (it->len > (size_t)cfg->embed_max_chars) {
            char why[128];
            snprintf(why, sizeof(why), "text is %zu bytes, over embed.max.chars=%lld", it->len,
                     (long long)cfg->embed_max_chars);
            fail_item(it, why);
            run->failed++;
            continue;
        }
        if (!rf_utf8_valid(it->text, it->len)) {
            fail_item(it, "text is not valid UTF-8");
            run->failed++;
            continue;
        }
        h = (size_t)(text_hash(it->text, it->len) & (cap - 1));
        for (;; h = (h + 1) & (cap - 1)) {
            size_t s = slots[h];
            if (!s) {
                slots[h] = run->nu + 1;
                run->ufirst[run->nu] = i;
                ulast[run->nu] = i;
                run->nu++;
                break;
            }
            if (items[run->ufirst[s - 1]].len == it->len &&
                !memcmp(items[run->ufirst[s - 1]].text, it->text, it->len)) {
                run->inext[ulast[s - 1]] = i;
                ulast[s - 1] = i;
                deduped++;
                break;
            }
        }
    }
    run->unresolved = run->nu;
    for (size_t u = 0; u < run->nu; u++) {
        size_t len = items[run->ufirst[u]].len;
        if (b && (b->n >= (size_t)cfg->embed_batch_size ||
                  b->chars + len > (size_t)cfg->embed_batch_chars)) {
            push_back(run, b);
            b = NULL;
        }
        if (!b)
            b = batch_new((size_t)cfg->embed_batch_size);
        b->u[b->n++] = u;
        b->chars += len;
    }
    if (b)
        push_back(run, b);
    rf__embed_gov_count(&e->gov, run->nu, deduped, 0, 0);
    free(slots);
    free(ulast);
}

static rf__embed_req_t *free_req(rf_embed_t *e)
{
    for (int i = 0; i < e->nreqs; i++)
        if (!e->reqs[i]->owner)
            return e->reqs[i];
    return NULL;
}

/* Fills r->body for batch b. */
static rf_rc build_body(run_t *run, batch_t *b, rf__embed_req_t *r)
{
    rf_slice_t one, *texts = &one;
    rf_rc rc;
    rf_buf_reset(&r->body);
    if (b->probe) {
        one = rf_slice(PROBE_TEXT, strlen(PROBE_TEXT));
        return run->e->prov->build(run->e, texts, 1, &r->body);
    }
    texts = rf_xmalloc(b->n * sizeof(*texts));
    for (size_t k = 0; k < b->n; k++) {
        const rf_embed_item_t *it = &run->items[run->ufirst[b->u[k]]];
        texts[k] = rf_slice(it->text, it->len);
    }
    rc = run->e->prov->build(run->e, texts, b->n, &r->body);
    free(texts);
    return rc;
}

/* Starts as many ready batches as the governor allows.  Returns the microseconds until it
 * may allow more (0 when only a finishing request can change that). */
static int64_t start_ready(run_t *run, rf_err_t *err, rf_rc *rc)
{
    rf_embed_t *e = run->e;
    while (run->head && run->in_flight < rf__embed_gov_limit(&e->gov)) {
        batch_t *b = run->head;
        rf__embed_req_t *r = free_req(e);
        int64_t now = rf_mono_us(), wait;
        int64_t est = (int64_t)(b->probe ? 4 : b->chars / 4 + b->n);
        if (!r)
            break;
        wait = rf__embed_gov_admit(&e->gov, now, run->in_flight, est);
        if (wait)
            return wait;
        pop_front(run);
        *rc = build_body(run, b, r);
        if (*rc) {
            /* Only a body past RF_BUF_DEFAULT_MAX gets here; embed.batch.chars prevents it. */
            rf_err_set(err, *rc, "embedding request body too large");
            rf__embed_gov_done(&e->gov, now, now, RF__EMBED_FATAL, -1, est, 0);
            batch_free(b);
            return 0;
        }
        rf__embed_req_prep(r, e->cfg->embed_url, e->hdrs, e->cfg->embed_timeout_ms,
                           rf__embed_resp_max(e, b->probe ? 1 : b->n));
        r->owner = b;
        r->started_us = now;
        r->est_tokens = est;
        curl_multi_add_handle(e->multi, r->easy);
        run->in_flight++;
    }
    return 0;
}

/* Splits a refused batch in two so the texts that are fine go on. */
static void bisect(run_t *run, batch_t *b)
{
    batch_t *lo = batch_new(b->n / 2), *hi = batch_new(b->n - b->n / 2);
    const rf_embed_item_t *items = run->items;
    for (size_t k = 0; k < b->n; k++) {
        batch_t *d = k < b->n / 2 ? lo : hi;
        d->u[d->n++] = b->u[k];
        d->chars += items[run->ufirst[b->u[k]]].len;
    }
    push_front(run, hi);
    push_front(run, lo);
}

/* Handles one finished request.  Returns RF_OK, or the code that ends the run. */
static rf_rc finish(run_t *run, rf__embed_req_t *r, rf_err_t *err)
{
    rf_embed_t *e = run->e;
    batch_t *b = r->owner;
    json_t *root = NULL;
    char msg[240];
    int64_t tokens = 0, now = rf_mono_us();
    size_t nv = b->probe ? 1 : b->n;
    float *vecs = NULL;
    char(*why)[128] = NULL;
    rf__embed_outcome oc = rf__embed_req_outcome(r, &root, msg, sizeof(msg));
    rf_rc rc = RF_OK;

    r->owner = NULL;
    run->in_flight--;
    if (oc == RF__EMBED_OK) {
        vecs = rf_xmalloc(nv * (size_t)e->dim * sizeof(float));
        why = rf_xcalloc(nv, sizeof(*why));
        if (e->prov->parse(e, root, nv, vecs, why, &tokens, msg, sizeof(msg))) {
            char tmp[240];
            snprintf(tmp, sizeof(tmp), "HTTP %ld with an unexpected body: %.180s", r->status, msg);
            snprintf(msg, sizeof(msg), "%s", tmp);
            oc = RF__EMBED_TRANSIENT;
        }
    }
    rf__embed_gov_done(&e->gov, now, r->started_us, oc, r->retry_after_ms, r->est_tokens, tokens);
    switch (oc) {
    case RF__EMBED_OK:
        e->healthy = 1;
        run->last_progress_us = now;
        for (size_t k = 0; !b->probe && k < b->n; k++) {
            float *v = vecs + k * (size_t)e->dim;
            if (why[k][0] || !rf__embed_vec_finish(v, e->dim, why[k], sizeof(why[k])))
                resolve_fail(run, b->u[k], why[k]);
            else
                resolve_ok(run, b->u[k], v);
        }
        batch_free(b);
        break;
    case RF__EMBED_INPUT:
        run->last_progress_us = now;
        if (b->probe) {
            rc = rf_err_set(err, RF_ECONFIG,
                            "the embedding endpoint %s refuses even a probe text: %s",
                            e->cfg->embed_url, msg);
            batch_free(b);
        } else if (b->n > 1) {
            RF_LOG(RF_LOG_DEBUG, RF_MOD_EMBED, "texts=%zu reason=\"%s\" batch refused, bisecting",
                   b->n, msg);
            bisect(run, b);
            batch_free(b);
        } else if (e->healthy) {
            char why1[256];
            snprintf(why1, sizeof(why1), "refused by the embedding endpoint: %.200s", msg);
            resolve_fail(run, b->u[0], why1);
            batch_free(b);
        } else {
            /* Until some request has succeeded, a refusal may be the endpoint's, not the
             * text's: park the text and decide after a probe. */
            rf_embed_item_t *it = &run->items[run->ufirst[b->u[0]]];
            snprintf(it->reason, sizeof(it->reason), "refused by the embedding endpoint: %.200s",
                     msg);
            run->ust[b->u[0]] = U_PARKED;
            run->parked[run->nparked++] = b->u[0];
            batch_free(b);
        }
        break;
    case RF__EMBED_THROTTLED:
    case RF__EMBED_TIMEOUT:
    case RF__EMBED_TRANSIENT:
        snprintf(run->last_err, sizeof(run->last_err), "%.190s", msg);
        RF_LOG(RF_LOG_DEBUG, RF_MOD_EMBED, "texts=%zu reason=\"%s\" retrying", nv, msg);
        run->retries++;
        push_front(run, b);
        break;
    case RF__EMBED_AUTH:
        rc = rf_err_set(err, RF_EAUTH, "the embedding endpoint %s refuses the API key: %s",
                        e->cfg->embed_url, msg);
        batch_free(b);
        break;
    case RF__EMBED_FATAL:
        rc = rf_err_set(err, RF_ECONFIG, "the embedding endpoint %s refuses the request: %s",
                        e->cfg->embed_url, msg);
        batch_free(b);
        break;
    }
    json_decref(root);
    free(vecs);
    free(why);
    return rc;
}

/* Settles parked texts once nothing else is left to do: fail them when the endpoint is
 * known to work, otherwise send one probe text first. */
static void settle_parked(run_t *run)
{
    if (run->e->healthy) {
        for (size_t k = 0; k < run->nparked; k++) {
            size_t u = run->parked[k];
            char why[256];
            snprintf(why, sizeof(why), "%s", run->items[run->ufirst[u]].reason);
            resolve_fail(run, u, why);
        }
        run->nparked = 0;
    } else if (!run->probe_sent) {
        batch_t *b = batch_new(1);
        b->probe = 1;
        push_back(run, b);
        run->probe_sent = 1;
    }
}

static void run_cleanup(run_t *run)
{
    rf_embed_t *e = run->e;
    batch_t *b;
    for (int i = 0; i < e->nreqs; i++) {
        rf__embed_req_t *r = e->reqs[i];
        if (!r->owner)
            continue;
        /* Abandoned in flight: its texts stay not done, for the next call. */
        curl_multi_remove_handle(e->multi, r->easy);
        rf__embed_gov_done(&e->gov, rf_mono_us(), r->started_us, RF__EMBED_FATAL, -1, r->est_tokens,
                           0);
        batch_free(r->owner);
        r->owner = NULL;
    }
    while ((b = pop_front(run)))
        batch_free(b);
    rf__embed_gov_count(&e->gov, 0, 0, run->failed, run->retries);
    free(run->ufirst);
    free(run->inext);
    free(run->ust);
    free(run->parked);
}

rf_rc rf_embed_run(rf_embed_t *e, rf_embed_item_t *items, size_t n, int64_t max_wait_ms,
                   rf_err_t *err)
{
    run_t run;
    rf_rc rc = RF_OK;

    if (!e || (!items && n))
        return rf_err_set(err, RF_EINVAL, "rf_embed_run: no client or items");
    if (!e->prov) {
        for (size_t i = 0; i < n; i++) {
            if (items[i].done || items[i].rc != RF_OK)
                continue;
            rf_embed_hash(items[i].text, items[i].len, e->dim, items[i].out);
            items[i].done = 1;
        }
        return RF_OK;
    }
    memset(&run, 0, sizeof(run));
    run.e = e;
    run.items = items;
    run_plan(&run, n);
    run.parked = rf_xmalloc((run.nu ? run.nu : 1) * sizeof(size_t));
    run.last_progress_us = rf_mono_us();
    snprintf(run.last_err, sizeof(run.last_err), "no answer yet");

    for (;;) {
        int64_t now, wait, deadline, timeout_ms;
        rf__embed_req_t *r;
        if (!run.head && run.in_flight == 0 && run.nparked)
            settle_parked(&run);
        if (run.unresolved == 0 && run.in_flight == 0)
            break;
        now = rf_mono_us();
        deadline = run.last_progress_us + max_wait_ms * 1000;
        if (now >= deadline) {
            rc = rf_err_set(err, RF_EUNAVAIL,
                            "the embedding endpoint %s made no progress for %lld ms: %s",
                            e->cfg->embed_url, (long long)max_wait_ms, run.last_err);
            break;
        }
        wait = start_ready(&run, err, &rc);
        if (rc)
            break;
        timeout_ms = (deadline - now) / 1000 + 1;
        if (wait && wait / 1000 + 1 < timeout_ms)
            timeout_ms = wait / 1000 + 1;
        r = rf__embed_multi_next(e, timeout_ms);
        if (r && (rc = finish(&run, r, err)) != RF_OK)
            break;
    }
    if (rc)
        RF_LOG(RF_LOG_WARN, RF_MOD_EMBED, "rc=%s pending=%zu %s", rf_rc_name(rc), run.unresolved,
               err ? err->msg : "");
    run_cleanup(&run);
    return rc;
}

/* ==== Queries ==== */

static rf__embed_req_t *pool_take(rf_embed_t *e)
{
    rf__embed_req_t *r = NULL;
    pthread_mutex_lock(&e->pool_mu);
    if (e->pool_n)
        r = e->pool[--e->pool_n];
    pthread_mutex_unlock(&e->pool_mu);
    return r ? r : rf__embed_req_new();
}

static void pool_put(rf_embed_t *e, rf__embed_req_t *r)
{
    pthread_mutex_lock(&e->pool_mu);
    if (e->pool_n < RF__EMBED_POOL_MAX) {
        e->pool[e->pool_n++] = r;
        r = NULL;
    }
    pthread_mutex_unlock(&e->pool_mu);
    rf__embed_req_free(r);
}

rf_rc rf_embed_query(rf_embed_t *e, const char *text, size_t len, float *out, int64_t timeout_ms,
                     rf_err_t *err)
{
    rf__embed_req_t *r = NULL;
    rf_slice_t one = rf_slice(text, len);
    int64_t deadline, est = (int64_t)(len / 4 + 1);
    char last[240] = "no answer yet";
    rf_rc rc = RF_OK;
    uint64_t retries = 0;

    if (!e || (!text && len) || !out)
        return rf_err_set(err, RF_EINVAL, "rf_embed_query: missing argument");
    if (!e->prov) {
        rf_embed_hash(text, len, e->dim, out);
        return RF_OK;
    }
    if (len == 0)
        return rf_err_set(err, RF_EEMBED, "empty query text");
    if (len > (size_t)e->cfg->embed_max_chars)
        return rf_err_set(err, RF_EEMBED, "query text is %zu bytes, over embed.max.chars=%lld", len,
                          (long long)e->cfg->embed_max_chars);
    if (!rf_utf8_valid(text, len))
        return rf_err_set(err, RF_EEMBED, "query text is not valid UTF-8");
    r = pool_take(e);
    rf_buf_reset(&r->body);
    rc = e->prov->build(e, &one, 1, &r->body);
    if (rc) {
        rf_err_set(err, rc, "query request body too large");
        goto out;
    }
    deadline = rf_mono_us() + timeout_ms * 1000;
    for (;;) {
        int64_t now = rf_mono_us(), wait, tokens = 0, left_ms;
        json_t *root = NULL;
        char why[1][128] = {""};
        rf__embed_outcome oc;
        if (now >= deadline) {
            rc = rf_err_set(err, RF_ETIMEDOUT, "no embedding for the query within %lld ms: %s",
                            (long long)timeout_ms, last);
            goto out;
        }
        wait = rf__embed_gov_admit(&e->gov, now, -1, est);
        if (wait) {
            /* The governor's backoff is the wait itself, bounded by the caller's deadline. */
            rf_sleep_ms((wait < deadline - now ? wait : deadline - now) / 1000 + 1);
            continue;
        }
        left_ms = (deadline - now) / 1000 + 1;
        rf__embed_req_prep(r, e->cfg->embed_url, e->hdrs,
                           left_ms < e->cfg->embed_timeout_ms ? left_ms : e->cfg->embed_timeout_ms,
                           rf__embed_resp_max(e, 1));
        r->cc = curl_easy_perform(r->easy);
        oc = rf__embed_req_outcome(r, &root, last, sizeof(last));
        if (oc == RF__EMBED_OK && e->prov->parse(e, root, 1, out, why, &tokens, last, sizeof(last)))
            oc = RF__EMBED_TRANSIENT;
        json_decref(root);
        rf__embed_gov_done(&e->gov, rf_mono_us(), now, oc, r->retry_after_ms, est, tokens);
        switch (oc) {
        case RF__EMBED_OK:
            if (why[0][0] || !rf__embed_vec_finish(out, e->dim, why[0], sizeof(why[0])))
                rc = rf_err_set(err, RF_EEMBED, "%s", why[0]);
            goto out;
        case RF__EMBED_INPUT:
            rc = rf_err_set(err, RF_EEMBED, "refused by the embedding endpoint: %s", last);
            goto out;
        case RF__EMBED_AUTH:
            rc = rf_err_set(err, RF_EAUTH, "the embedding endpoint refuses the API key: %s", last);
            goto out;
        case RF__EMBED_FATAL:
            rc =
                rf_err_set(err, RF_ECONFIG, "the embedding endpoint refuses the request: %s", last);
            goto out;
        default:
            retries++;
            break;
        }
    }
out:
    rf__embed_gov_count(&e->gov, 1, 0, 0, retries);
    pool_put(e, r);
    return rc;
}
