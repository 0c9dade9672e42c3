/* embed_classify.c - record classification (classify.*): `nearest` gives each record the
 * label whose description embeds closest (cosine), `llm` asks an OpenAI-compatible
 * POST /v1/chat/completions endpoint for one label of a closed set per record, several
 * records per request, and parses the JSON answer strictly.
 *
 * Upholds DESIGN.md invariant 5: a label outside the set is asked again once and then only
 * that record's classification fails, never the record; transient failures are retried
 * under the same rate governor as the embeddings.
 */
#include "embed_int.h"

#include <string.h>

size_t rf_embed_labels(const rf_embed_t *e, const char *const **names)
{
    *names = e->nlabels ? (const char *const *)e->labels : NULL;
    return e->nlabels;
}

static void label_fail(rf_embed_label_t *o, const char *why)
{
    o->ok = 0;
    o->label = -1;
    o->score = 0;
    snprintf(o->reason, sizeof(o->reason), "%s", why);
}

/* ==== nearest ==== */

/* Embeds the label descriptions once. */
static rf_rc label_vecs(rf_embed_t *e, int64_t max_wait_ms, rf_err_t *err)
{
    rf_embed_item_t *its;
    float *vecs;
    rf_rc rc;
    if (e->label_vecs_ready)
        return RF_OK;
    its = rf_xcalloc(e->nlabels, sizeof(*its));
    vecs = rf_xcalloc(e->nlabels * (size_t)e->dim, sizeof(float));
    for (size_t i = 0; i < e->nlabels; i++) {
        its[i].text = e->descs[i];
        its[i].len = strlen(e->descs[i]);
        its[i].out = vecs + i * (size_t)e->dim;
    }
    rc = rf_embed_run(e, its, e->nlabels, max_wait_ms, err);
    for (size_t i = 0; !rc && i < e->nlabels; i++)
        if (!its[i].done)
            rc = rf_err_set(err, RF_ECONFIG,
                            "classify.label.descriptions: the description of label %s cannot be "
                            "embedded: %s",
                            e->labels[i], its[i].reason);
    free(its);
    if (rc) {
        free(vecs);
        return rc;
    }
    e->label_vecs = vecs;
    e->label_vecs_ready = 1;
    return RF_OK;
}

static rf_rc classify_nearest(rf_embed_t *e, const rf_embed_item_t *items, size_t n,
                              rf_embed_label_t *out, int64_t max_wait_ms, rf_err_t *err)
{
    rf_rc rc = label_vecs(e, max_wait_ms, err);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        int best = -1;
        float best_s = -2;
        if (!items[i].done) {
            label_fail(&out[i], "the record has no vector to classify");
            continue;
        }
        for (size_t l = 0; l < e->nlabels; l++) {
            const float *lv = e->label_vecs + l * (size_t)e->dim;
            float s = 0;
            for (int d = 0; d < e->dim; d++)
                s += lv[d] * items[i].out[d];
            if (s > best_s) {
                best_s = s;
                best = (int)l;
            }
        }
        out[i].ok = 1;
        out[i].label = best;
        out[i].score = best_s;
        out[i].reason[0] = '\0';
    }
    return RF_OK;
}

/* ==== llm ==== */

typedef struct job {
    size_t *idx; /* item indices */
    size_t n;
    int again; /* this is the second asking */
    struct job *next;
} job_t;

typedef struct cls {
    rf_embed_t *e;
    const rf_embed_item_t *items;
    rf_embed_label_t *out;
    job_t *head;
    int in_flight;
    int64_t last_progress_us;
    char last_err[200];
    uint64_t retries;
} cls_t;

static job_t *job_new(size_t cap, int again)
{
    job_t *j = rf_xcalloc(1, sizeof(*j));
    j->idx = rf_xmalloc((cap ? cap : 1) * sizeof(size_t));
    j->again = again;
    return j;
}

static void job_free(job_t *j)
{
    if (j) {
        free(j->idx);
        free(j);
    }
}

static void job_push(cls_t *c, job_t *j)
{
    j->next = c->head;
    c->head = j;
}

static rf_rc build_chat(cls_t *c, const job_t *j, rf_buf_t *body)
{
    rf_embed_t *e = c->e;
    rf_buf_t sys, user;
    rf_rc rc;
    rf_buf_init(&sys, 0);
    rf_buf_init(&user, 0);
    rc = rf_buf_puts(&sys, "You label texts. Each text gets exactly one label from this closed "
                           "set: [");
    for (size_t l = 0; l < e->nlabels && !rc; l++) {
        rc = l ? rf_buf_puts(&sys, ",") : RF_OK;
        if (!rc)
            rc = rf__embed_json_str(&sys, e->labels[l], strlen(e->labels[l]));
    }
    if (!rc)
        rc = rf_buf_puts(&sys, "].\n");
    if (!rc && e->cfg->classify_label_descriptions) {
        rc = rf_buf_puts(&sys, "What the labels mean:\n");
        for (size_t l = 0; l < e->nlabels && !rc; l++)
            rc = rf_buf_printf(&sys, "- %s: %s\n", e->labels[l], e->descs[l]);
    }
    if (!rc)
        rc = rf_buf_puts(&sys, "Answer with one JSON object and nothing else, of the form "
                               "{\"results\":[{\"id\":<the text's id>,\"label\":<one label of "
                               "the set>,\"score\":<your confidence, 0 to 1>}]}, with exactly "
                               "one entry per text.");
    /* The user message is itself JSON, so texts cannot be confused with instructions. */
    if (!rc)
        rc = rf_buf_puts(&user, "{\"labels\":[");
    for (size_t l = 0; l < e->nlabels && !rc; l++) {
        rc = l ? rf_buf_puts(&user, ",") : RF_OK;
        if (!rc)
            rc = rf__embed_json_str(&user, e->labels[l], strlen(e->labels[l]));
    }
    if (!rc)
        rc = rf_buf_puts(&user, "],\"texts\":[");
    for (size_t k = 0; k < j->n && !rc; k++) {
        const rf_embed_item_t *it = &c->items[j->idx[k]];
        rc = rf_buf_printf(&user, "%s{\"id\":%zu,\"text\":", k ? "," : "", k + 1);
        if (!rc)
            rc = rf__embed_json_str(&user, it->text, it->len);
        if (!rc)
            rc = rf_buf_puts(&user, "}");
    }
    if (!rc)
        rc = rf_buf_puts(&user, "]}");
    if (!rc)
        rc = rf_buf_puts(body, "{\"model\":");
    if (!rc)
        rc = rf__embed_json_str(body, e->cfg->classify_model, strlen(e->cfg->classify_model));
    if (!rc)
        rc = rf_buf_puts(body, ",\"temperature\":0,\"response_format\":{\"type\":\"json_object\"},"
                               "\"messages\":[{\"role\":\"system\",\"content\":");
    if (!rc)
        rc = rf__embed_json_str(body, sys.ptr, sys.len);
    if (!rc)
        rc = rf_buf_puts(body, "},{\"role\":\"user\",\"content\":");
    if (!rc)
        rc = rf__embed_json_str(body, user.ptr, user.len);
    if (!rc)
        rc = rf_buf_puts(body, "}]}");
    rf_buf_fini(&sys);
    rf_buf_fini(&user);
    return rc;
}

static int label_index(const rf_embed_t *e, const char *s)
{
    for (size_t l = 0; l < e->nlabels; l++)
        if (!strcmp(e->labels[l], s))
            return (int)l;
    return -1;
}

/* Reads the chat answer into out for the job's items; items without a valid answer get
 * their reason in why[k] and stay !ok.  Returns 0 when the answer is unusable as a whole
 * (reason in msg). */
static int parse_chat(cls_t *c, const job_t *j, const json_t *root, char (*why)[200], char *msg,
                      size_t cap)
{
    rf_embed_t *e = c->e;
    const json_t *choice = json_array_get(json_object_get(root, "choices"), 0);
    const json_t *content = json_object_get(json_object_get(choice, "message"), "content");
    const json_t *results, *r;
    json_t *ans;
    json_error_t jerr;
    size_t i;
    if (!json_is_string(content)) {
        snprintf(msg, cap, "the chat answer has no choices[0].message.content");
        return 0;
    }
    ans = json_loadb(json_string_value(content), json_string_length(content), 0, &jerr);
    results = json_object_get(ans, "results");
    if (!json_is_array(results)) {
        snprintf(msg, cap, "the chat answer is not the JSON object asked for%s%s", ans ? "" : ": ",
                 ans ? "" : jerr.text);
        json_decref(ans);
        return 0;
    }
    for (size_t k = 0; k < j->n; k++)
        snprintf(why[k], sizeof(why[k]), "the chat answer has no entry for this text");
    json_array_foreach(results, i, r)
    {
        const json_t *id = json_object_get(r, "id"), *lab = json_object_get(r, "label"),
                     *sc = json_object_get(r, "score");
        size_t k;
        int l;
        double score = 1.0;
        if (!json_is_integer(id) || json_integer_value(id) < 1 ||
            (size_t)json_integer_value(id) > j->n)
            continue;
        k = (size_t)json_integer_value(id) - 1;
        if (c->out[j->idx[k]].ok || !why[k][0])
            continue; /* a second entry for the same text: the first one stands */
        if (!json_is_string(lab)) {
            snprintf(why[k], sizeof(why[k]), "the chat answer's label is not a string");
            continue;
        }
        l = label_index(e, json_string_value(lab));
        if (l < 0) {
            snprintf(why[k], sizeof(why[k]), "label \"%.60s\" is not one of classify.labels",
                     json_string_value(lab));
            continue;
        }
        if (sc) {
            if (!json_is_number(sc) || json_number_value(sc) < 0 || json_number_value(sc) > 1) {
                snprintf(why[k], sizeof(why[k]), "the chat answer's score is not in 0..1");
                continue;
            }
            score = json_number_value(sc);
        }
        c->out[j->idx[k]].ok = 1;
        c->out[j->idx[k]].label = l;
        c->out[j->idx[k]].score = (float)score;
        c->out[j->idx[k]].reason[0] = '\0';
        why[k][0] = '\0';
    }
    json_decref(ans);
    return 1;
}

static rf_rc chat_finish(cls_t *c, rf__embed_req_t *r, rf_err_t *err)
{
    rf_embed_t *e = c->e;
    job_t *j = r->owner, *again = NULL;
    json_t *root = NULL;
    char msg[240];
    char(*why)[200] = rf_xcalloc(j->n, sizeof(*why));
    int64_t now = rf_mono_us();
    rf__embed_outcome oc = rf__embed_req_outcome(r, &root, msg, sizeof(msg));
    rf_rc rc = RF_OK;

    r->owner = NULL;
    c->in_flight--;
    if (oc == RF__EMBED_OK) {
        int64_t tokens = 0;
        const json_t *usage = json_object_get(root, "usage");
        if (json_is_integer(json_object_get(usage, "total_tokens")))
            tokens = json_integer_value(json_object_get(usage, "total_tokens"));
        rf__embed_gov_done(&e->gov, now, r->started_us, oc, -1, r->est_tokens, tokens);
        c->last_progress_us = now;
        if (!parse_chat(c, j, root, why, msg, sizeof(msg)))
            for (size_t k = 0; k < j->n; k++)
                snprintf(why[k], sizeof(why[k]), "%.190s", msg);
        for (size_t k = 0; k < j->n; k++) {
            if (!why[k][0])
                continue;
            if (!j->again) {
                if (!again)
                    again = job_new(j->n, 1);
                again->idx[again->n++] = j->idx[k];
            } else {
                label_fail(&c->out[j->idx[k]], why[k]);
                RF_LOG(RF_LOG_DEBUG, RF_MOD_EMBED, "reason=\"%s\" classification failed", why[k]);
            }
        }
        if (again)
            job_push(c, again);
        job_free(j);
        goto out;
    }
    rf__embed_gov_done(&e->gov, now, r->started_us, oc, r->retry_after_ms, r->est_tokens, 0);
    switch (oc) {
    case RF__EMBED_INPUT:
        c->last_progress_us = now;
        if (j->n > 1) {
            job_t *lo = job_new(j->n / 2, j->again), *hi = job_new(j->n - j->n / 2, j->again);
            for (size_t k = 0; k < j->n; k++) {
                job_t *d = k < j->n / 2 ? lo : hi;
                d->idx[d->n++] = j->idx[k];
            }
            job_push(c, hi);
            job_push(c, lo);
        } else {
            char why1[256];
            snprintf(why1, sizeof(why1), "refused by the chat endpoint: %.190s", msg);
            label_fail(&c->out[j->idx[0]], why1);
        }
        job_free(j);
        break;
    case RF__EMBED_AUTH:
    case RF__EMBED_FATAL:
        rc = rf_err_set(err, oc == RF__EMBED_AUTH ? RF_EAUTH : RF_ECONFIG,
                        "the chat endpoint %s refuses the %s: %s", e->cfg->classify_url,
                        oc == RF__EMBED_AUTH ? "API key" : "request", msg);
        job_free(j);
        break;
    default:
        snprintf(c->last_err, sizeof(c->last_err), "%.190s", msg);
        c->retries++;
        job_push(c, j);
        break;
    }
out:
    json_decref(root);
    free(why);
    return rc;
}

static rf_rc classify_llm(rf_embed_t *e, const rf_embed_item_t *items, size_t n,
                          rf_embed_label_t *out, int64_t max_wait_ms, rf_err_t *err)
{
    cls_t c;
    job_t *j = NULL, *tail = NULL;
    size_t bs = (size_t)e->cfg->classify_batch_size;
    rf_rc rc = RF_OK;

    memset(&c, 0, sizeof(c));
    c.e = e;
    c.items = items;
    c.out = out;
    /* Jobs in item order; retries and halves go to the front later. */
    for (size_t i = 0; i < n; i++) {
        if (items[i].len == 0 || !rf_utf8_valid(items[i].text, items[i].len)) {
            label_fail(&out[i], "the record's text is empty or not UTF-8");
            continue;
        }
        if (!j || j->n == bs) {
            j = job_new(bs, 0);
            if (tail)
                tail->next = j;
            else
                c.head = j;
            tail = j;
        }
        j->idx[j->n++] = i;
    }
    c.last_progress_us = rf_mono_us();
    snprintf(c.last_err, sizeof(c.last_err), "no answer yet");

    for (;;) {
        int64_t now = rf_mono_us(), deadline = c.last_progress_us + max_wait_ms * 1000;
        int64_t wait = 0, timeout_ms;
        rf__embed_req_t *r;
        if (!c.head && c.in_flight == 0)
            break;
        if (now >= deadline) {
            rc = rf_err_set(err, RF_EUNAVAIL,
                            "the chat endpoint %s made no progress for %lld ms: %s",
                            e->cfg->classify_url, (long long)max_wait_ms, c.last_err);
            break;
        }
        while (c.head && c.in_flight < rf__embed_gov_limit(&e->gov)) {
            job_t *q = c.head;
            rf__embed_req_t *fr = NULL;
            int64_t est = 200;
            for (int i = 0; i < e->nreqs && !fr; i++)
                if (!e->reqs[i]->owner)
                    fr = e->reqs[i];
            if (!fr)
                break;
            for (size_t k = 0; k < q->n; k++)
                est += (int64_t)(items[q->idx[k]].len / 4 + 8);
            wait = rf__embed_gov_admit(&e->gov, now, c.in_flight, est);
            if (wait)
                break;
            c.head = q->next;
            rf_buf_reset(&fr->body);
            rc = build_chat(&c, q, &fr->body);
            if (rc) {
                rf_err_set(err, rc, "chat request body too large");
                rf__embed_gov_done(&e->gov, now, now, RF__EMBED_FATAL, -1, est, 0);
                job_free(q);
                goto out;
            }
            rf__embed_req_prep(fr, e->cfg->classify_url, e->chat_hdrs, e->cfg->embed_timeout_ms,
                               ((size_t)1 << 20) + q->n * 1024);
            fr->owner = q;
            fr->started_us = now;
            fr->est_tokens = est;
            curl_multi_add_handle(e->multi, fr->easy);
            c.in_flight++;
        }
        timeout_ms = (deadline - now) / 1000 + 1;
        if (wait && wait / 1000 + 1 < timeout_ms)
            timeout_ms = wait / 1000 + 1;
        r = rf__embed_multi_next(e, timeout_ms);
        if (r && (rc = chat_finish(&c, r, err)) != RF_OK)
            break;
    }
out:
    for (int i = 0; i < e->nreqs; i++) {
        rf__embed_req_t *r = e->reqs[i];
        if (!r->owner)
            continue;
        curl_multi_remove_handle(e->multi, r->easy);
        rf__embed_gov_done(&e->gov, rf_mono_us(), r->started_us, RF__EMBED_FATAL, -1, r->est_tokens,
                           0);
        job_free(r->owner);
        r->owner = NULL;
    }
    while ((j = c.head)) {
        c.head = j->next;
        job_free(j);
    }
    rf__embed_gov_count(&e->gov, 0, 0, 0, c.retries);
    if (rc)
        RF_LOG(RF_LOG_WARN, RF_MOD_EMBED, "rc=%s %s", rf_rc_name(rc), err ? err->msg : "");
    return rc;
}

rf_rc rf_embed_classify(rf_embed_t *e, const rf_embed_item_t *items, size_t n,
                        rf_embed_label_t *out, int64_t max_wait_ms, rf_err_t *err)
{
    if (!e || (n && (!items || !out)))
        return rf_err_set(err, RF_EINVAL, "rf_embed_classify: missing argument");
    for (size_t i = 0; i < n; i++) {
        out[i].ok = 0;
        out[i].label = -1;
        out[i].score = 0;
        out[i].reason[0] = '\0';
    }
    switch (e->cfg->classify_mode) {
    case RF_CLASSIFY_NEAREST:
        return classify_nearest(e, items, n, out, max_wait_ms, err);
    case RF_CLASSIFY_LLM:
        return classify_llm(e, items, n, out, max_wait_ms, err);
    default:
        return RF_OK;
    }
}
