/* serve_json.c - the JSON bodies of the HTTP API, built with jansson: errors, search and
 * context answers, status (the index's, the pipeline counters, the recent records and
 * every section's) and readiness.
 * INVARIANT(fresh-is-measurable): every search and context body carries "position" (store
 * seq, the per-partition next offsets, the highest LSN per source and the age of the
 * newest event), and so does the 504 of a wait that timed out.
 */
#include "serve/serve_int.h"

#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* ==== Small utilities ==== */

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

static char *dump(json_t *root)
{
    char *text = root ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* The position a search reflected.  INVARIANT(fresh-is-measurable). */
static json_t *position_json(const rf_index_position_t *p, int64_t now_ms)
{
    json_t *pos = json_object(), *offsets = json_object(), *lsn = json_object();
    int64_t t = p->newest_event_time_ms;

    json_object_set_new(pos, "seq", json_integer(p->seq));
    for (size_t i = 0; i < p->offset_cnt; i++) {
        char key[320];
        snprintf(key, sizeof(key), "%s/%d", p->offsets[i].topic, (int)p->offsets[i].partition);
        json_object_set_new(offsets, key, json_integer(p->offsets[i].next_offset));
    }
    json_object_set_new(pos, "offsets", offsets);
    for (size_t i = 0; i < p->lsn_cnt; i++)
        json_object_set_new(lsn, p->lsns[i].source, json_integer(p->lsns[i].lsn));
    json_object_set_new(pos, "lsn", lsn);
    if (t > 0) {
        json_object_set_new(pos, "newest_event_time_ms", json_integer(t));
        json_object_set_new(pos, "newest_event_age_ms", json_integer(now_ms > t ? now_ms - t : 0));
    } else {
        json_object_set_new(pos, "newest_event_time_ms", json_null());
        json_object_set_new(pos, "newest_event_age_ms", json_null());
    }
    return pos;
}

/* ==== Errors ==== */

char *rf__serve_error_json(rf__serve_code code, const char *message, const rf_index_position_t *pos,
                           int64_t now_ms)
{
    const char *name = rf__serve_code_name(code);
    json_t *root, *e;
    char *text;

    /* A message may quote client bytes that are not UTF-8; jansson refuses those, so
     * fall back to a fixed text rather than answering without a body. */
    root = json_pack("{s:{s:s,s:s}}", "error", "code", name, "message", message);
    if (!root)
        root = json_pack("{s:{s:s,s:s}}", "error", "code", name, "message",
                         "the request was refused (details not printable)");
    e = json_object_get(root, "error");
    if (e && pos)
        json_object_set_new(e, "position", position_json(pos, now_ms));
    text = dump(root);
    if (!text)
        text = rf_xasprintf("{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}");
    return text;
}

/* ==== Search and context ==== */

static json_t *hit_json(const rf_index_hit_t *hit, unsigned include)
{
    json_t *h = json_object(), *pos = json_object(), *meta = NULL;

    if (hit->metadata_json && (include & RF__SERVE_INC_METADATA)) {
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
    if (include & RF__SERVE_INC_TEXT)
        json_object_set_new(h, "text", str_or_null(hit->text));
    if (include & RF__SERVE_INC_METADATA)
        json_object_set_new(h, "metadata", meta ? meta : json_null());
    if (include & RF__SERVE_INC_VECTOR) {
        /* The stored vector of the version returned (unit length, as it was indexed). */
        json_t *vec = hit->vec ? json_array() : json_null();
        for (int i = 0; hit->vec && i < hit->dim; i++)
            json_array_append_new(vec, real_or_null(hit->vec[i]));
        json_object_set_new(h, "vector", vec);
    }
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

char *rf__serve_search_json(const rf_index_results_t *res, unsigned include, int64_t now_ms)
{
    json_t *root = json_object(), *results = json_array();

    for (size_t i = 0; i < res->cnt; i++)
        json_array_append_new(results, hit_json(&res->hits[i], include));
    json_object_set_new(root, "results", results);
    /* INVARIANT(fresh-is-measurable): the position is the one of the index state the
     * search read (store seq, next offset per partition, newest event time). */
    json_object_set_new(root, "position", position_json(&res->pos, now_ms));
    return dump(root);
}

char *rf__serve_context_json(const rf_index_results_t *res, const rf__serve_context_t *ctx,
                             const rf__serve_cite_extra_t *extra, const rf__serve_request_t *req,
                             int64_t now_ms)
{
    json_t *root = json_object(), *cites = json_array(), *results = json_array();
    json_t *budget = json_object(), *omitted = json_object();
    size_t *cite_of = rf_xcalloc(res->cnt + 1, sizeof(*cite_of));

    for (size_t i = 0; i < ctx->passage_cnt; i++) {
        const rf__serve_passage_t *ps = &ctx->passages[i];
        const rf_index_hit_t *hit = &res->hits[ps->hit];
        json_t *c = json_object(), *pos = json_object();
        cite_of[ps->hit] = i + 1;
        json_object_set_new(c, "n", json_integer((json_int_t)(i + 1)));
        json_object_set_new(c, "id", str_or_null(hit->id));
        json_object_set_new(c, "score", real_or_null(hit->score));
        json_object_set_new(c, "source", str_or_null(extra[i].source));
        json_object_set_new(c, "source_position", str_or_null(extra[i].source_position));
        json_object_set_new(c, "updated_at_ms",
                            extra[i].updated_at_ms > 0 ? json_integer(extra[i].updated_at_ms)
                                                       : json_null());
        json_object_set_new(c, "truncated", json_boolean(ps->truncated));
        json_object_set_new(pos, "topic", str_or_null(hit->topic));
        json_object_set_new(pos, "partition", json_integer(hit->partition));
        json_object_set_new(pos, "offset", json_integer(hit->offset));
        json_object_set_new(pos, "event_time_ms", json_integer(hit->event_time_ms));
        json_object_set_new(pos, "seq", json_integer(hit->seq));
        json_object_set_new(c, "position", pos);
        json_array_append_new(cites, c);
    }
    for (size_t i = 0; i < res->cnt; i++) {
        json_t *h = hit_json(&res->hits[i], req->include);
        json_object_set_new(h, "citation",
                            cite_of[i] ? json_integer((json_int_t)cite_of[i]) : json_null());
        json_array_append_new(results, h);
    }
    json_object_set_new(budget, "max_chars", json_integer(req->max_chars));
    json_object_set_new(budget, "max_tokens",
                        req->max_tokens ? json_integer(req->max_tokens) : json_null());
    json_object_set_new(budget, "chars", json_integer((json_int_t)ctx->chars));
    json_object_set_new(budget, "estimated_tokens",
                        json_integer((json_int_t)((ctx->chars + RF__SERVE_CHARS_PER_TOKEN - 1) /
                                                  RF__SERVE_CHARS_PER_TOKEN)));
    json_object_set_new(budget, "chars_per_token", json_integer(RF__SERVE_CHARS_PER_TOKEN));
    json_object_set_new(omitted, "duplicates", json_integer((json_int_t)ctx->duplicates));
    json_object_set_new(omitted, "over_budget", json_integer((json_int_t)ctx->dropped));

    json_object_set_new(root, "context", str_or_null(ctx->text ? ctx->text : ""));
    json_object_set_new(root, "citations", cites);
    json_object_set_new(root, "results", results);
    json_object_set_new(root, "budget", budget);
    json_object_set_new(root, "omitted", omitted);
    json_object_set_new(root, "position", position_json(&res->pos, now_ms));
    free(cite_of);
    return dump(root);
}

/* ==== Status and readiness ==== */

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

/* A section's status object, or an object saying why there is none. */
static json_t *section_status(const rf_serve_section_t *sec)
{
    char *text = sec->status_json(sec->opaque);
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;

    free(text);
    if (j && json_is_object(j))
        return j;
    json_decref(j);
    RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "section=%s status is not a JSON object", sec->name);
    return json_pack("{s:s}", "error", "status unavailable");
}

char *rf__serve_status_json(const char *index_status, const rf_serve_counters_t *counters,
                            const char *recent_json, const rf_serve_section_t *sections,
                            size_t section_cnt)
{
    json_t *st = index_status ? json_loads(index_status, 0, NULL) : NULL;
    json_t *recent = recent_json ? json_loads(recent_json, 0, NULL) : NULL;

    if (!st || !json_is_object(st)) {
        json_decref(st);
        json_decref(recent);
        return NULL;
    }
    if (json_is_array(recent))
        json_object_set(st, "recent_records", recent);
    json_decref(recent);
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
    /* Each part reports under its own name; a name the index already uses is kept for
     * the index, so a section can never hide the store's own figures. */
    for (size_t i = 0; i < section_cnt; i++) {
        const rf_serve_section_t *sec = &sections[i];
        if (!sec->name || !sec->status_json || json_object_get(st, sec->name))
            continue;
        json_object_set_new(st, sec->name, section_status(sec));
    }
    return dump(st);
}

int rf__serve_ready_json(const rf_serve_counters_t *counters, const rf_serve_section_t *sections,
                         size_t section_cnt, char **body)
{
    json_t *reasons = json_object(), *root;
    int ready;

    if (counters && rf__serve_counter_get(&counters->ready) != 1)
        json_object_set_new(reasons, "pipeline",
                            json_string("recovering the index or not consuming yet"));
    for (size_t i = 0; i < section_cnt; i++) {
        char buf[256];
        const char *why;
        if (!sections[i].unready)
            continue;
        buf[0] = '\0';
        why = sections[i].unready(sections[i].opaque, buf, sizeof(buf));
        if (why)
            json_object_set_new(reasons, sections[i].name ? sections[i].name : "section",
                                str_or_null(why[0] ? why : "not ready"));
    }
    ready = json_object_size(reasons) == 0;
    if (ready) {
        json_decref(reasons);
        root = json_pack("{s:b}", "ready", 1);
    } else {
        root = json_pack("{s:b,s:o}", "ready", 0, "reasons", reasons);
    }
    *body = dump(root);
    return ready;
}
