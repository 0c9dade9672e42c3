/* serve_json.c - the JSON side of the HTTP API: checking search requests (strictly: an
 * object, known fields only, bounded k, finite vectors) and building the search, status
 * and error bodies with jansson.
 * INVARIANT(fresh-is-measurable): every search body carries "position" (store seq, the
 * per-partition next offsets and the age of the newest event).
 */
#include "serve/serve_int.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ==== Errors ==== */

rf_rc rf__serve_fail(rf__serve_fail_t *f, unsigned status, const char *code, const char *fmt, ...)
{
    va_list ap;
    f->status = status;
    f->code = code;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
    va_end(ap);
    return RF_EINVAL;
}

char *rf__serve_error_json(const char *code, const char *message)
{
    json_t *root;
    char *text;

    /* A message may quote client bytes that are not UTF-8; jansson refuses those, so
     * fall back to a fixed text rather than answering without a body. */
    root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message);
    if (!root)
        root = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message",
                         "the request was refused (details not printable)");
    text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (!text)
        text = rf_xasprintf("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    return text;
}

/* ==== Search requests ==== */

rf_rc rf__serve_vec_normalize(float *vec, int dim)
{
    double sum = 0.0, norm;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(vec[i]))
            return RF_EINVAL;
        sum += (double)vec[i] * (double)vec[i];
    }
    norm = sqrt(sum);
    if (!(norm > 0.0) || !isfinite(norm))
        return RF_EINVAL;
    for (int i = 0; i < dim; i++)
        vec[i] = (float)((double)vec[i] / norm);
    return RF_OK;
}

static int is_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
            return 0;
    return 1;
}

static rf_rc parse_vector(json_t *arr, int dim, float **out, rf__serve_fail_t *f)
{
    float *vec;
    size_t i;
    json_t *v;

    if (!json_is_array(arr))
        return rf__serve_fail(f, 400, "bad_request", "vector must be an array of %d numbers", dim);
    if (json_array_size(arr) != (size_t)dim)
        return rf__serve_fail(f, 400, "bad_request",
                              "vector has %zu entries; the index has dimension %d",
                              json_array_size(arr), dim);
    vec = rf_xmalloc(sizeof(float) * (size_t)dim);
    json_array_foreach(arr, i, v)
    {
        double d;
        if (!json_is_number(v)) {
            free(vec);
            return rf__serve_fail(f, 400, "bad_request", "vector[%zu] is not a number", i);
        }
        d = json_number_value(v);
        vec[i] = (float)d;
        if (!isfinite(d) || !isfinite(vec[i])) {
            free(vec);
            return rf__serve_fail(f, 400, "bad_request", "vector[%zu] is out of range for a float",
                                  i);
        }
    }
    if (rf__serve_vec_normalize(vec, dim) != RF_OK) {
        free(vec);
        return rf__serve_fail(f, 400, "bad_request", "vector has zero length");
    }
    *out = vec;
    return RF_OK;
}

rf_rc rf__serve_search_parse(const char *body, size_t len, int dim, int max_k,
                             rf__serve_search_t *req, rf__serve_fail_t *f)
{
    json_error_t jerr;
    json_t *root = NULL, *query, *vector, *k, *val;
    const char *key;
    rf_rc rc = RF_OK;

    memset(req, 0, sizeof(*req));
    req->k = 10 < max_k ? 10 : max_k;

    /* Duplicate keys would make "which k?" ambiguous; refuse them. */
    root = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root) {
        rc = rf__serve_fail(f, 400, "bad_json", "invalid JSON at line %d column %d: %s", jerr.line,
                            jerr.column, jerr.text);
        goto out;
    }
    if (!json_is_object(root)) {
        rc = rf__serve_fail(f, 400, "bad_json", "the body must be a JSON object");
        goto out;
    }
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "query") != 0 && strcmp(key, "vector") != 0 && strcmp(key, "k") != 0) {
            rc = rf__serve_fail(f, 400, "bad_request",
                                "unknown field \"%.64s\" (expected query, vector, k)", key);
            goto out;
        }
    }

    query = json_object_get(root, "query");
    vector = json_object_get(root, "vector");
    if (query && vector) {
        rc = rf__serve_fail(f, 400, "bad_request", "give either query or vector, not both");
        goto out;
    }
    if (!query && !vector) {
        rc = rf__serve_fail(f, 400, "bad_request",
                            "query (a non-empty string) or vector (numbers) is required");
        goto out;
    }
    if (query) {
        if (!json_is_string(query)) {
            rc = rf__serve_fail(f, 400, "bad_request", "query must be a string");
            goto out;
        }
        if (is_blank(json_string_value(query), json_string_length(query))) {
            rc = rf__serve_fail(f, 400, "bad_request", "query is empty");
            goto out;
        }
    } else {
        rc = parse_vector(vector, dim, &req->vec, f);
        if (rc)
            goto out;
    }

    k = json_object_get(root, "k");
    if (k) {
        json_int_t kv;
        if (!json_is_integer(k) || (kv = json_integer_value(k)) < 1 || kv > max_k) {
            rc = rf__serve_fail(f, 400, "bad_k", "k must be an integer from 1 to %d", max_k);
            goto out;
        }
        req->k = (int)kv;
    }
    if (query) {
        req->query_len = json_string_length(query);
        req->query = rf_xstrndup(json_string_value(query), req->query_len);
    }

out:
    if (rc) {
        free(req->vec);
        req->vec = NULL;
    }
    json_decref(root);
    return rc;
}

void rf__serve_search_fini(rf__serve_search_t *req)
{
    if (!req)
        return;
    free(req->query);
    free(req->vec);
    memset(req, 0, sizeof(*req));
}

/* ==== Response bodies ==== */

/* A string or null (NULL, or text jansson refuses as not UTF-8). */
static json_t *str_or_null(const char *s)
{
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}

/* A number for a float; JSON has no NaN, so those become null. */
static json_t *real_or_null(double d)
{
    json_t *j = isfinite(d) ? json_real(d) : NULL;
    return j ? j : json_null();
}

static json_t *hit_json(const rf_index_hit_t *hit)
{
    json_t *h = json_object(), *pos = json_object(), *meta = NULL;

    if (hit->metadata_json) {
        meta = json_loads(hit->metadata_json, 0, NULL);
        if (meta && !json_is_object(meta)) {
            json_decref(meta);
            meta = NULL;
        }
        if (!meta)
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "id=\"%.200s\" stored metadata is not a JSON object",
                   hit->id ? hit->id : "");
    }
    json_object_set_new(h, "id", str_or_null(hit->id));
    json_object_set_new(h, "score", real_or_null(hit->score));
    json_object_set_new(h, "text", str_or_null(hit->text));
    json_object_set_new(h, "metadata", meta ? meta : json_null());
    json_object_set_new(h, "label", str_or_null(hit->label));
    json_object_set_new(h, "tenant", str_or_null(hit->tenant));
    json_object_set_new(pos, "topic", str_or_null(hit->topic));
    json_object_set_new(pos, "partition", json_integer(hit->partition));
    json_object_set_new(pos, "offset", json_integer(hit->offset));
    json_object_set_new(pos, "event_time_ms", json_integer(hit->event_time_ms));
    json_object_set_new(pos, "seq", json_integer(hit->seq));
    json_object_set_new(h, "position", pos);
    return h;
}

/* The index's status as an object, or NULL. */
static json_t *load_status(const char *index_status)
{
    json_t *st;
    if (!index_status)
        return NULL;
    st = json_loads(index_status, 0, NULL);
    if (st && !json_is_object(st)) {
        json_decref(st);
        st = NULL;
    }
    return st;
}

char *rf__serve_search_json(const rf_index_results_t *res, int64_t now_ms)
{
    json_t *root = json_object(), *results = json_array(), *pos = json_object();
    json_t *offsets = json_object();
    int64_t t = res->pos.newest_event_time_ms;
    char *text;

    for (size_t i = 0; i < res->cnt; i++)
        json_array_append_new(results, hit_json(&res->hits[i]));

    /* INVARIANT(fresh-is-measurable): the position is the one of the index state the
     * search read (store seq, next offset per partition, newest event time). */
    json_object_set_new(pos, "seq", json_integer(res->seq));
    for (size_t i = 0; i < res->pos.offset_cnt; i++) {
        char key[320];
        snprintf(key, sizeof(key), "%s/%d", res->pos.offsets[i].topic,
                 (int)res->pos.offsets[i].partition);
        json_object_set_new(offsets, key, json_integer(res->pos.offsets[i].next_offset));
    }
    json_object_set_new(pos, "offsets", offsets);
    if (t > 0) {
        json_object_set_new(pos, "newest_event_time_ms", json_integer(t));
        json_object_set_new(pos, "newest_event_age_ms", json_integer(now_ms > t ? now_ms - t : 0));
    } else {
        json_object_set_new(pos, "newest_event_time_ms", json_null());
        json_object_set_new(pos, "newest_event_age_ms", json_null());
    }

    json_object_set_new(root, "results", results);
    json_object_set_new(root, "position", pos);
    text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    return text;
}

void rf__serve_last_error(const rf_serve_counters_t *counters, char *buf, size_t n)
{
    pthread_mutex_t *lock;
    if (!n)
        return;
    buf[0] = '\0';
    if (!counters)
        return;
    lock = counters->last_error_lock;
    if (lock)
        pthread_mutex_lock(lock);
    snprintf(buf, n, "%.*s", (int)sizeof(counters->last_error), counters->last_error);
    if (lock)
        pthread_mutex_unlock(lock);
}

char *rf__serve_status_json(const char *index_status, const rf_serve_counters_t *counters)
{
    json_t *st = load_status(index_status);
    char *text;

    if (!st)
        return NULL;
    if (counters) {
        char last[sizeof(counters->last_error) + 1];
        rf__serve_last_error(counters, last, sizeof(last));
        json_object_set_new(st, "events_consumed",
                            json_integer(rf__serve_counter_get(&counters->events_consumed)));
        json_object_set_new(st, "events_applied",
                            json_integer(rf__serve_counter_get(&counters->events_applied)));
        json_object_set_new(st, "events_dead",
                            json_integer(rf__serve_counter_get(&counters->events_dead)));
        json_object_set_new(st, "events_skipped",
                            json_integer(rf__serve_counter_get(&counters->events_skipped)));
        json_object_set_new(st, "batches_applied",
                            json_integer(rf__serve_counter_get(&counters->batches_applied)));
        json_object_set_new(st, "ready",
                            json_boolean(rf__serve_counter_get(&counters->ready) == 1));
        json_object_set_new(st, "last_error", last[0] ? str_or_null(last) : json_null());
    } else {
        json_object_set_new(st, "ready", json_true());
    }
    text = json_dumps(st, JSON_COMPACT);
    json_decref(st);
    return text;
}
