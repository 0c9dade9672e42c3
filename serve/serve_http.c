/* serve_http.c - the HTTP API on libmicrohttpd: listening, routing, API keys and rate
 * limits, bounded request bodies, waiting for a position without holding a worker
 * thread, and the handlers for search, context, records, status, health, metrics and
 * the status page.  Reads the store only through index/index.h; query texts are embedded
 * by the caller's callback.
 * INVARIANT(fresh-is-measurable): every search and context answer carries the position
 * it reflects, and a request with min_position is answered only once the index has
 * applied that position (or 504 with the position reached).
 */
#include "serve/serve.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <jansson.h>

#include "serve/serve_int.h"

#define RF_SERVE_CONN_LIMIT_DEF 1024      /* connections at once when opts say 0 */
#define RF_SERVE_MAX_WAIT_DEF   30000     /* largest wait_ms when opts say 0 */
#define RF_SERVE_CONN_TIMEOUT_S 30        /* idle seconds before a connection is closed */
#define RF_SERVE_MAX_THREADS    256       /* sanity bound on opts->threads */
#define RF_SERVE_DRAIN_MAX      (1 << 20) /* bytes read past max_body before hanging up */
#define RF_SERVE_STOP_WAIT_MS   5000      /* how long rf_serve_stop waits for in-flight work */
#define RF_SERVE_WAIT_SLICE_MS  250       /* a waiting request notices a stop this fast */

#define CT_JSON    "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"
#define CT_HTML    "text/html; charset=utf-8"

struct rf_serve {
    struct MHD_Daemon *mhd;
    int port;
    rf_serve_opts_t opts; /* copy; opts.listen points to listen below */
    char *listen;
    rf__serve_limits_t lim;
    rf__serve_metrics_t metrics;
    rf__serve_auth_t *auth; /* NULL without keys */
    rf__serve_rate_t *rate; /* NULL without a rate limit */
    atomic_int inflight;    /* requests between their first call and their completion */
    atomic_int starting;    /* MHD messages are kept in start_msg while starting */
    atomic_int stopping;    /* set by rf_serve_stop: waits end, new ones are refused */
    char start_msg[256];
    /* Threads waiting for a position on behalf of suspended requests. */
    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cond;
    int waiters;
};

enum { PHASE_NEW = 0, PHASE_WAITING, PHASE_WAITED };

/* One request's state, from MHD's first call to the completion callback. */
typedef struct req {
    rf_serve_t *srv;
    struct MHD_Connection *conn;
    rf__serve_route route;
    rf_buf_t body; /* bounded by max_body */
    uint64_t seen; /* body bytes received, kept or not */
    int too_large;
    unsigned status; /* 0 until a response is queued */
    int64_t t0_us;
    rf__serve_principal_t who;
    /* A search or context request, kept while it waits for its position. */
    int phase;
    rf__serve_request_t sreq;
    rf_rc wait_rc;
    char method[16];
    char path[160]; /* printable copy for the log line */
} req_t;

/* ==== Small utilities ==== */

/* MHD would percent-decode the path before routing; serve/ decodes record ids itself so
 * that "%2F" stays part of an id and "%00" is refused instead of truncating it. */
static size_t unescape_none(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s into a new string; NULL on a bad escape or an encoded NUL. */
static char *pct_decode(const char *s)
{
    size_t n = strlen(s), j = 0;
    char *out = rf_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            out[j++] = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        out[j++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[j] = '\0';
    return out;
}

/* A copy of s safe inside a quoted log value: no quotes, no spaces or control bytes. */
static void log_safe(char *dst, size_t n, const char *s)
{
    size_t j = 0;
    for (; s && *s && j + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        dst[j++] = (c <= 0x20 || c == '"' || c == '\\' || c >= 0x7f) ? '?' : (char)c;
    }
    dst[j] = '\0';
}

static rf__serve_route route_of(const char *url)
{
    if (!strcmp(url, "/v1/search"))
        return RF__SERVE_R_SEARCH;
    if (!strcmp(url, "/v1/context"))
        return RF__SERVE_R_CONTEXT;
    if (!strncmp(url, "/v1/records/", 12))
        return RF__SERVE_R_RECORDS;
    if (!strcmp(url, "/v1/status"))
        return RF__SERVE_R_STATUS;
    if (!strcmp(url, "/healthz"))
        return RF__SERVE_R_HEALTHZ;
    if (!strcmp(url, "/readyz"))
        return RF__SERVE_R_READYZ;
    if (!strcmp(url, "/metrics"))
        return RF__SERVE_R_METRICS;
    if (!strcmp(url, "/"))
        return RF__SERVE_R_PAGE;
    if (!strncmp(url, "/v1/admin/", 10))
        return RF__SERVE_R_ADMIN;
    return RF__SERVE_R_OTHER;
}

static int route_posts(rf__serve_route route)
{
    return route == RF__SERVE_R_SEARCH || route == RF__SERVE_R_CONTEXT;
}

/* The Allow header of a route; GET routes also answer HEAD. */
static const char *route_allow(rf__serve_route route)
{
    return route == RF__SERVE_R_ADMIN ? "GET, POST" : route_posts(route) ? "POST" : "GET, HEAD";
}

static int method_ok(rf__serve_route route, const char *method)
{
    if (route == RF__SERVE_R_ADMIN)
        return !strcmp(method, "POST") || !strcmp(method, "GET");
    if (route_posts(route))
        return !strcmp(method, "POST");
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

/* Probes for orchestrators answer without a key and are never rate limited. */
static int route_open(rf__serve_route route)
{
    return route == RF__SERVE_R_HEALTHZ || route == RF__SERVE_R_READYZ;
}

/* With keys, these show every tenant's figures, so they need admin rights. */
static int route_admin(rf__serve_route route)
{
    return route == RF__SERVE_R_STATUS || route == RF__SERVE_R_METRICS ||
           route == RF__SERVE_R_ADMIN;
}

/* The client's address as text, for rate buckets without keys. */
static void client_addr(struct MHD_Connection *conn, char *buf, size_t n)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    socklen_t len =
        sa && sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (!sa || getnameinfo(sa, len, buf, (socklen_t)n, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, n, "unknown");
}

/* ==== Responses ==== */

/* Queues a response; takes ownership of body (malloc'd, may be NULL when len is 0).
 * hname/hvalue: one extra header, or NULL. */
static enum MHD_Result reply(req_t *rq, unsigned status, const char *ctype, char *body, size_t len,
                             const char *hname, const char *hvalue)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (hname)
        MHD_add_response_header(resp, hname, hvalue);
    ret = MHD_queue_response(rq->conn, status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    rf__serve_metrics_count(&rq->srv->metrics, rq->route, status);
    return ret;
}

static enum MHD_Result reply_json(req_t *rq, unsigned status, char *body)
{
    if (!body) {
        body = rf__serve_error_json(RF__SERVE_E_INTERNAL, "could not build the response", NULL, 0);
        status = 500;
    }
    return reply(rq, status, CT_JSON, body, strlen(body), NULL, NULL);
}

static enum MHD_Result reply_error_hdr(req_t *rq, rf__serve_code code, const char *hname,
                                       const char *hvalue, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result reply_error_hdr(req_t *rq, rf__serve_code code, const char *hname,
                                       const char *hvalue, const char *fmt, ...)
{
    char msg[256];
    char *body;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = rf__serve_error_json(code, msg, NULL, 0);
    return reply(rq, rf__serve_code_status(code), CT_JSON, body, strlen(body), hname, hvalue);
}

#define reply_error(rq, code, ...) reply_error_hdr((rq), (code), NULL, NULL, __VA_ARGS__)

static enum MHD_Result reply_fail(req_t *rq, const rf__serve_fail_t *f)
{
    return reply_error(rq, f->code, "%s", f->msg);
}

/* ==== Searching ==== */

/* Embeds (or takes) the query vector and runs the filtered search.  On failure f says
 * what to answer. */
static rf_rc run_query(req_t *rq, rf_index_results_t *res, rf__serve_fail_t *f)
{
    rf_serve_t *srv = rq->srv;
    rf__serve_request_t *sreq = &rq->sreq;
    rf_index_filter_t flt;
    rf_index_query_t q;
    float *vec = sreq->vec;
    rf_err_t err;
    rf_rc rc = RF_OK;
    int64_t gen;
    int dim = 0, attempts = 0;

    rf_err_clear(&err);
    /* The query is embedded for the model generation the index serves; when the index
     * switches generations in between, it says so (RF_EAGAIN) and the query is embedded
     * again for the new one. */
again:
    gen = rf_index_gen_active(srv->opts.ix, &dim);
    if (sreq->vec && sreq->vec_dim != dim) {
        rc = rf__serve_fail(f, RF__SERVE_E_BAD_REQUEST,
                            "vector has %d dimensions; the index holds %d-dimensional vectors",
                            sreq->vec_dim, dim);
        goto out;
    }
    if (!sreq->vec) {
        if (vec != sreq->vec)
            free(vec);
        vec = rf_xcalloc((size_t)dim, sizeof(float));
        rc = srv->opts.embed(srv->opts.embed_opaque, gen, sreq->query, sreq->query_len, vec, dim,
                             &err);
        if (rc == RF_EAGAIN && ++attempts < 4)
            goto again;
        if (rc) {
            /* A provider that is down or throttling is worth retrying; anything else is
             * a failure of the embedding call itself. */
            int retry = rf_rc_retriable(rc);
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "rc=%s embedding the query failed: %s",
                   rf_rc_name(rc), err.msg);
            rf__serve_fail(f, retry ? RF__SERVE_E_EMBED_UNAVAILABLE : RF__SERVE_E_EMBED_FAILED,
                           "embedding the query failed: %s", err.msg[0] ? err.msg : rf_rc_msg(rc));
            goto out;
        }
        if (rf__serve_vec_normalize(vec, dim) != RF_OK) {
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "the embedder returned a zero or non-finite vector");
            rc = rf__serve_fail(f, RF__SERVE_E_EMBED_FAILED,
                                "the embedder returned a zero or non-finite vector");
            goto out;
        }
    }

    /* The key's tenant is a restriction no filter condition can widen. */
    memset(&flt, 0, sizeof(flt));
    flt.conds = sreq->conds;
    flt.cond_cnt = sreq->cond_cnt;
    flt.tenant = rq->who.tenant;
    memset(&q, 0, sizeof(q));
    q.vec = vec;
    q.k = sreq->k;
    q.filter = &flt;
    q.min_score = sreq->min_score;
    q.want_vec = (sreq->include & RF__SERVE_INC_VECTOR) != 0;
    /* INVARIANT(fresh-is-measurable): the results carry the position of the very index
     * state that was searched, so the offsets reported are never ahead of it. */
    q.gen = gen;
    rc = rf_index_query(srv->opts.ix, &q, res, &err);
    if (rc == RF_EAGAIN && ++attempts < 4) {
        rf_err_clear(&err);
        goto again;
    }
    if (rc == RF_EINVAL || rc == RF_ETOOBIG) {
        /* The parser bounds filters below the index's limits; say what the index said. */
        rf__serve_fail(f, RF__SERVE_E_BAD_FILTER, "%s", err.msg[0] ? err.msg : rf_rc_msg(rc));
        goto out;
    }
    if (rc) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_SERVE, "rc=%s search failed: %s", rf_rc_name(rc), err.msg);
        rf__serve_fail(f, RF__SERVE_E_INTERNAL, "search failed: %s",
                       err.msg[0] ? err.msg : rf_rc_msg(rc));
        goto out;
    }
    /* Belt and braces: a tenant-scoped key never receives another tenant's record. */
    for (size_t i = 0; i < res->cnt; i++)
        if (rq->who.tenant &&
            (!res->hits[i].tenant || strcmp(res->hits[i].tenant, rq->who.tenant) != 0)) {
            RF_LOG(RF_LOG_ERROR, RF_MOD_SERVE, "id=\"%.200s\" the index returned another tenant",
                   res->hits[i].id ? res->hits[i].id : "");
            rc = rf__serve_fail(f, RF__SERVE_E_INTERNAL,
                                "the search returned a record it must not; see the server log");
            goto out;
        }
out:
    if (vec != sreq->vec)
        free(vec);
    return rc;
}

/* Reads the source, source position and update time of each cited record. */
static void cite_extras(rf_index_t *ix, const rf_index_results_t *res,
                        const rf__serve_context_t *ctx, rf__serve_cite_extra_t *extra)
{
    for (size_t i = 0; i < ctx->passage_cnt; i++) {
        const rf_index_hit_t *hit = &res->hits[ctx->passages[i].hit];
        char *json = NULL;
        json_t *rec;
        memset(&extra[i], 0, sizeof(extra[i]));
        if (!hit->id || rf_index_record_get(ix, hit->id, &json, NULL) != RF_OK)
            continue;
        rec = json_loads(json, 0, NULL);
        free(json);
        if (!rec)
            continue;
        if (json_string_value(json_object_get(rec, "source")))
            extra[i].source = rf_xstrdup(json_string_value(json_object_get(rec, "source")));
        if (json_string_value(json_object_get(rec, "source_position")))
            extra[i].source_position =
                rf_xstrdup(json_string_value(json_object_get(rec, "source_position")));
        extra[i].updated_at_ms = json_integer_value(json_object_get(rec, "updated_at"));
        json_decref(rec);
    }
}

static enum MHD_Result answer_query(req_t *rq)
{
    rf_serve_t *srv = rq->srv;
    rf_index_results_t res;
    rf__serve_fail_t f;
    enum MHD_Result ret;
    int64_t t0 = rf_mono_us();
    char *body;

    memset(&res, 0, sizeof(res));
    if (run_query(rq, &res, &f) != RF_OK) {
        ret = reply_fail(rq, &f);
        goto out;
    }
    if (rq->sreq.kind == RF__SERVE_KIND_CONTEXT) {
        rf__serve_context_t ctx;
        rf__serve_cite_extra_t *extra;
        rf__serve_context_build(res.hits, res.cnt, rq->sreq.max_chars, &ctx);
        extra = rf_xcalloc(ctx.passage_cnt + 1, sizeof(*extra));
        cite_extras(srv->opts.ix, &res, &ctx, extra);
        body = rf__serve_context_json(&res, &ctx, extra, &rq->sreq, rf_now_ms());
        for (size_t i = 0; i < ctx.passage_cnt; i++) {
            free(extra[i].source);
            free(extra[i].source_position);
        }
        free(extra);
        rf__serve_context_fini(&ctx);
    } else {
        body = rf__serve_search_json(&res, rq->sreq.include, rf_now_ms());
    }
    ret = reply_json(rq, 200, body);
    if (rq->status == 200)
        rf__serve_metrics_observe_search(&srv->metrics, rf_mono_us() - t0);
out:
    rf_index_results_fini(&res);
    return ret;
}

/* ==== Waiting for a position ==== */

/* Runs on its own thread while the request's connection is suspended, so no HTTP worker
 * is held: rf_index_position_wait sleeps on the index's condition variable and wakes on
 * every applied batch.  The wait is re-armed every RF_SERVE_WAIT_SLICE_MS only to notice
 * a stopping server. */
static void *wait_main(void *arg)
{
    req_t *rq = arg;
    rf_serve_t *srv = rq->srv;
    const rf__serve_request_t *s = &rq->sreq;
    int64_t deadline = rf_mono_ms() + s->wait_ms;
    rf_rc rc;

    for (;;) {
        int64_t left = deadline - rf_mono_ms();
        if (atomic_load(&srv->stopping)) {
            rc = RF_ESTOPPED;
            break;
        }
        if (left < 0)
            left = 0;
        rc = rf_index_position_wait_lsn(
            srv->opts.ix, s->min_seq, s->want, s->want_cnt, s->lsns, s->lsn_cnt,
            left < RF_SERVE_WAIT_SLICE_MS ? left : RF_SERVE_WAIT_SLICE_MS);
        if (rc == RF_OK || left <= RF_SERVE_WAIT_SLICE_MS)
            break;
    }
    rq->wait_rc = rc;
    rq->phase = PHASE_WAITED;
    MHD_resume_connection(rq->conn);
    /* rq belongs to MHD again from here on; only srv is touched, and rf_serve_stop
     * waits for this count before freeing it. */
    pthread_mutex_lock(&srv->wait_mu);
    srv->waiters--;
    pthread_cond_broadcast(&srv->wait_cond);
    pthread_mutex_unlock(&srv->wait_mu);
    return NULL;
}

/* Suspends the connection and starts its waiting thread.  RF_OK when suspended. */
static rf_rc wait_start(req_t *rq)
{
    rf_serve_t *srv = rq->srv;
    pthread_attr_t attr;
    pthread_t th;
    int e;

    pthread_mutex_lock(&srv->wait_mu);
    srv->waiters++;
    pthread_mutex_unlock(&srv->wait_mu);
    rq->phase = PHASE_WAITING;
    MHD_suspend_connection(rq->conn);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    e = pthread_create(&th, &attr, wait_main, rq);
    pthread_attr_destroy(&attr);
    if (e) {
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "errno=%d cannot start a thread to wait for a position",
               e);
        rq->wait_rc = RF_EBUSY;
        rq->phase = PHASE_WAITED;
        pthread_mutex_lock(&srv->wait_mu);
        srv->waiters--;
        pthread_cond_broadcast(&srv->wait_cond);
        pthread_mutex_unlock(&srv->wait_mu);
        MHD_resume_connection(rq->conn);
    }
    return RF_OK;
}

static enum MHD_Result reply_wait_failed(req_t *rq, rf_rc rc)
{
    rf__serve_metrics_t *m = &rq->srv->metrics;
    rf_index_position_t pos;
    char msg[256], *body;

    if (rc == RF_ESTOPPED)
        return reply_error(rq, RF__SERVE_E_UNAVAILABLE, "the server is stopping");
    if (rc != RF_ETIMEDOUT)
        return reply_error(rq, RF__SERVE_E_UNAVAILABLE,
                           "the server cannot wait for a position now; retry");
    atomic_fetch_add_explicit(&m->waits[RF__SERVE_WAIT_TIMEOUT], 1, memory_order_relaxed);
    rf_index_position_get(rq->srv->opts.ix, &pos);
    snprintf(msg, sizeof(msg),
             "min_position was not reached within %lld ms; error.position is the position "
             "reached",
             (long long)rq->sreq.wait_ms);
    body = rf__serve_error_json(RF__SERVE_E_POSITION_TIMEOUT, msg, &pos, rf_now_ms());
    rf_index_position_fini(&pos);
    return reply(rq, rf__serve_code_status(RF__SERVE_E_POSITION_TIMEOUT), CT_JSON, body,
                 strlen(body), NULL, NULL);
}

/* ==== Handlers ==== */

static enum MHD_Result handle_query(req_t *rq, int kind)
{
    rf_serve_t *srv = rq->srv;
    rf__serve_fail_t f;
    rf__serve_request_t *s = &rq->sreq;

    if (rq->phase == PHASE_WAITED) {
        if (rq->wait_rc != RF_OK)
            return reply_wait_failed(rq, rq->wait_rc);
        atomic_fetch_add_explicit(&srv->metrics.waits[RF__SERVE_WAIT_REACHED], 1,
                                  memory_order_relaxed);
        return answer_query(rq);
    }
    {
        /* A given vector must have the dimension of the generation the index serves. */
        rf__serve_limits_t lim = srv->lim;
        rf_index_gen_active(srv->opts.ix, &lim.dim);
        if (rf__serve_request_parse(rq->body.ptr ? rq->body.ptr : "", rq->body.len, kind, &lim, s,
                                    &f) != RF_OK)
            return reply_fail(rq, &f);
    }
    if (s->has_position) {
        /* Already there: no thread, no suspension. */
        if (rf_index_position_wait_lsn(srv->opts.ix, s->min_seq, s->want, s->want_cnt, s->lsns,
                                       s->lsn_cnt, 0) == RF_OK) {
            atomic_fetch_add_explicit(&srv->metrics.waits[RF__SERVE_WAIT_AT_ONCE], 1,
                                      memory_order_relaxed);
            return answer_query(rq);
        }
        if (s->wait_ms == 0)
            return reply_wait_failed(rq, RF_ETIMEDOUT);
        if (atomic_load(&srv->stopping))
            return reply_wait_failed(rq, RF_ESTOPPED);
        wait_start(rq);
        return MHD_YES;
    }
    return answer_query(rq);
}

/* 1 when a record JSON belongs to tenant. */
static int record_of_tenant(const char *json, const char *tenant)
{
    json_t *rec = json_loads(json, 0, NULL);
    const char *t = json_string_value(json_object_get(rec, "tenant"));
    int ok = t && !strcmp(t, tenant);
    json_decref(rec);
    return ok;
}

static enum MHD_Result handle_record(req_t *rq, const char *url)
{
    char *id = pct_decode(url + strlen("/v1/records/")), *json = NULL;
    enum MHD_Result ret;
    rf_err_t err;
    rf_rc rc;

    rf_err_clear(&err);
    if (!id)
        return reply_error(rq, RF__SERVE_E_BAD_REQUEST,
                           "the record id has a malformed or NUL percent-escape");
    if (!*id) {
        ret = reply_error(rq, RF__SERVE_E_NOT_FOUND, "no record id in the path");
        goto out;
    }
    rc = rf_index_record_get(rq->srv->opts.ix, id, &json, &err);
    /* Another tenant's record is answered exactly like a missing one. */
    if (rc == RF_OK && rq->who.tenant && !record_of_tenant(json, rq->who.tenant))
        rc = RF_ENOTFOUND;
    if (rc == RF_ENOTFOUND) {
        ret = reply_error(rq, RF__SERVE_E_NOT_FOUND, "no record with id \"%.200s\"", id);
    } else if (rc) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_SERVE, "rc=%s reading a record failed: %s", rf_rc_name(rc),
               err.msg);
        ret = reply_error(rq, RF__SERVE_E_INTERNAL, "reading the record failed: %s",
                          err.msg[0] ? err.msg : rf_rc_msg(rc));
    } else {
        ret = reply_json(rq, 200, json);
        json = NULL;
    }
out:
    free(json);
    free(id);
    return ret;
}

static enum MHD_Result handle_status(req_t *rq)
{
    const rf_serve_opts_t *o = &rq->srv->opts;
    char *st = rf_index_status_json(o->ix), *recent = NULL, *body;
    rf_err_t err;

    rf_err_clear(&err);
    /* The status page lists these; a store that cannot list them still has a status. */
    if (rf_index_recent_json(o->ix, RF__SERVE_RECENT_CNT, RF__SERVE_RECENT_SNIPPET, &recent,
                             &err) != RF_OK)
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "reading the recent records failed: %s", err.msg);
    body = rf__serve_status_json(st, o->counters, recent, o->sections, o->section_cnt);
    free(recent);
    free(st);
    if (!body)
        return reply_error(rq, RF__SERVE_E_INTERNAL, "the index status is unavailable");
    return reply_json(rq, 200, body);
}

static enum MHD_Result handle_metrics(req_t *rq)
{
    rf_serve_t *srv = rq->srv;
    const union MHD_DaemonInfo *di =
        MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    rf__serve_metrics_src_t src;
    rf_buf_t out;
    size_t len;
    char *text;

    memset(&src, 0, sizeof(src));
    src.counters = srv->opts.counters;
    src.ix = srv->opts.ix;
    src.sections = srv->opts.sections;
    src.section_cnt = srv->opts.section_cnt;
    src.connections = di ? (int64_t)di->num_connections : -1;
    pthread_mutex_lock(&srv->wait_mu);
    src.waiting = srv->waiters;
    pthread_mutex_unlock(&srv->wait_mu);
    src.now_ms = rf_now_ms();
    rf_buf_init(&out, 4 << 20);
    if (rf__serve_metrics_render(&srv->metrics, &src, &out) != RF_OK) {
        rf_buf_fini(&out);
        return reply_error(rq, RF__SERVE_E_INTERNAL, "the metrics did not fit");
    }
    text = rf_buf_take(&out, &len);
    return reply(rq, 200, CT_METRICS, text, len, NULL, NULL);
}

static enum MHD_Result dispatch(req_t *rq, const char *url)
{
    const rf_serve_opts_t *o = &rq->srv->opts;
    char *body = NULL;

    switch (rq->route) {
    case RF__SERVE_R_SEARCH:
        return handle_query(rq, RF__SERVE_KIND_SEARCH);
    case RF__SERVE_R_CONTEXT:
        return handle_query(rq, RF__SERVE_KIND_CONTEXT);
    case RF__SERVE_R_RECORDS:
        return handle_record(rq, url);
    case RF__SERVE_R_STATUS:
        return handle_status(rq);
    case RF__SERVE_R_HEALTHZ:
        return reply_json(rq, 200, rf_xstrdup("{\"status\":\"ok\"}"));
    case RF__SERVE_R_READYZ: {
        int ready = rf__serve_ready_json(o->counters, o->sections, o->section_cnt, &body);
        return reply_json(rq, ready ? 200 : 503, body);
    }
    case RF__SERVE_R_METRICS:
        return handle_metrics(rq);
    case RF__SERVE_R_ADMIN: {
        int status;
        if (!o->admin)
            return reply_error(rq, RF__SERVE_E_NOT_FOUND, "no admin API in this process");
        status = o->admin(o->admin_opaque, rq->method, url, rq->body.ptr ? rq->body.ptr : "",
                          rq->body.len, &body);
        return reply_json(rq, (unsigned)status, body);
    }
    case RF__SERVE_R_PAGE:
        return reply(rq, 200, CT_HTML, rf_xstrdup(rf__serve_page_html), strlen(rf__serve_page_html),
                     NULL, NULL);
    default:
        return reply_error(rq, RF__SERVE_E_NOT_FOUND, "no such path");
    }
}

/* ==== MHD callbacks ==== */

/* Parses a Content-Length value; 0 when absent or not a plain number (MHD itself
 * refuses malformed lengths before the body is read). */
static uint64_t content_length(struct MHD_Connection *conn)
{
    const char *v =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t n = 0;
    if (!v)
        return 0;
    for (; *v >= '0' && *v <= '9'; v++) {
        if (n > (UINT64_MAX - 9) / 10)
            return UINT64_MAX;
        n = n * 10 + (uint64_t)(*v - '0');
    }
    return n;
}

static req_t *req_new(rf_serve_t *srv, struct MHD_Connection *conn, const char *url,
                      const char *method)
{
    req_t *rq = rf_xcalloc(1, sizeof(*rq));
    rq->srv = srv;
    rq->conn = conn;
    rq->route = route_of(url);
    rq->t0_us = rf_mono_us();
    rf_buf_init(&rq->body, srv->opts.max_body);
    log_safe(rq->method, sizeof(rq->method), method);
    log_safe(rq->path, sizeof(rq->path), url);
    atomic_fetch_add(&srv->inflight, 1);
    return rq;
}

/* Access control and rate limits, decided from the headers alone.  MHD_YES to go on
 * (rq->status still 0), or the refusal queued. */
static enum MHD_Result admit(req_t *rq, struct MHD_Connection *conn)
{
    rf_serve_t *srv = rq->srv;
    rf__serve_fail_t f;
    char name[64];
    int wait;

    if (route_open(rq->route))
        return MHD_YES;
    if (srv->auth) {
        const char *hdr =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        if (rf__serve_auth_check(srv->auth, hdr, &rq->who, &f) != RF_OK)
            return reply_error_hdr(rq, f.code, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                   "Bearer realm=\"ragfeed\"", "%s", f.msg);
        if (route_admin(rq->route) && !rq->who.admin)
            return reply_error(rq, RF__SERVE_E_FORBIDDEN,
                               "%s needs a key with admin rights (ragfeed keys create --admin)",
                               rf__serve_route_label(rq->route));
    }
    if (srv->rate) {
        if (rq->who.id[0])
            snprintf(name, sizeof(name), "key:%s", rq->who.id);
        else {
            char addr[48];
            client_addr(conn, addr, sizeof(addr));
            snprintf(name, sizeof(name), "addr:%s", addr);
        }
        wait = rf__serve_rate_take(srv->rate, name, rf_mono_ms());
        if (wait) {
            char after[16];
            snprintf(after, sizeof(after), "%d", wait);
            return reply_error_hdr(rq, RF__SERVE_E_RATE_LIMITED, MHD_HTTP_HEADER_RETRY_AFTER, after,
                                   "more than %g requests per second; retry after %d s",
                                   srv->opts.rate_per_key, wait);
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    rf_serve_t *srv = cls;
    req_t *rq = *con_cls;
    enum MHD_Result ret;

    (void)version;
    if (!rq) {
        /* First call: only headers are known.  Refuse early what needs no body, so a
         * client waiting on "Expect: 100-continue" never sends it. */
        rq = req_new(srv, conn, url, method);
        *con_cls = rq;
        /* Keys first: without one, even an unknown path gets nothing but 401. */
        ret = admit(rq, conn);
        if (rq->status)
            return ret;
        /* A stopping server still accepts connections (rf_serve_stop): it refuses their
         * requests instead, so that the drain ends. */
        if (atomic_load(&srv->stopping))
            return reply_error(rq, RF__SERVE_E_UNAVAILABLE, "the server is stopping");
        if (rq->route == RF__SERVE_R_OTHER)
            return reply_error(rq, RF__SERVE_E_NOT_FOUND, "no such path");
        if (!method_ok(rq->route, method))
            return reply_error_hdr(rq, RF__SERVE_E_METHOD_NOT_ALLOWED, MHD_HTTP_HEADER_ALLOW,
                                   route_allow(rq->route), "%s is not allowed here (allowed: %s)",
                                   rq->method, route_allow(rq->route));
        if (content_length(conn) > srv->opts.max_body)
            return reply_error(rq, RF__SERVE_E_TOO_LARGE, "the body is larger than %zu bytes",
                               srv->opts.max_body);
        return MHD_YES;
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        rq->seen += n;
        if (rq->status)
            return MHD_YES;
        if (!rq->too_large && rf_buf_append(&rq->body, upload_data, n) != RF_OK) {
            /* Keep reading (and dropping) so the 413 can be sent after the body, but
             * not forever. */
            rq->too_large = 1;
            rf_buf_fini(&rq->body);
        }
        if (rq->too_large && rq->seen > (uint64_t)srv->opts.max_body + RF_SERVE_DRAIN_MAX)
            return MHD_NO;
        return MHD_YES;
    }

    if (rq->status || rq->phase == PHASE_WAITING)
        return MHD_YES;
    if (rq->too_large)
        return reply_error(rq, RF__SERVE_E_TOO_LARGE, "the body is larger than %zu bytes",
                           srv->opts.max_body);
    return dispatch(rq, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    rf_serve_t *srv = cls;
    req_t *rq = *con_cls;

    (void)conn;
    if (!rq)
        return;
    RF_LOG(RF_LOG_DEBUG, RF_MOD_SERVE, "method=%s path=\"%s\" status=%u duration_us=%" PRId64 "%s",
           rq->method, rq->path, rq->status, rf_mono_us() - rq->t0_us,
           toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " the connection ended early");
    rf_buf_fini(&rq->body);
    rf__serve_request_fini(&rq->sreq);
    rf__serve_principal_fini(&rq->who);
    free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->inflight, 1);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    rf_serve_t *srv = cls;
    char line[256];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    /* While starting, the last message explains a failed start; afterwards MHD mostly
     * reports clients' protocol errors, which are not ours to warn about. */
    if (atomic_load(&srv->starting))
        snprintf(srv->start_msg, sizeof(srv->start_msg), "%s", line);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_SERVE, "libmicrohttpd: %s", line);
}

/* ==== Start and stop ==== */

/* Splits "HOST:PORT" or "[V6]:PORT" into host (borrowed inside buf) and port. */
static rf_rc parse_listen(const char *listen, char *buf, size_t n, const char **host,
                          const char **port, rf_err_t *err)
{
    char *colon, *p;

    if (snprintf(buf, n, "%s", listen) >= (int)n)
        return rf_err_set(err, RF_ECONFIG, "serve.listen=%.64s...: too long", listen);
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':')
            return rf_err_set(err, RF_ECONFIG,
                              "serve.listen=%s: expected [IPV6]:PORT, HOST:PORT or :PORT", listen);
        *close = '\0';
        *host = buf + 1;
        colon = close + 1;
    } else {
        colon = strrchr(buf, ':');
        if (!colon)
            return rf_err_set(err, RF_ECONFIG,
                              "serve.listen=%s: expected HOST:PORT (port 0 picks a free one)",
                              listen);
        *colon = '\0';
        *host = buf;
    }
    *port = colon + 1;
    if (!**port || strlen(*port) > 5)
        return rf_err_set(err, RF_ECONFIG, "serve.listen=%s: port must be 0..65535", listen);
    for (p = colon + 1; *p; p++)
        if (*p < '0' || *p > '9')
            return rf_err_set(err, RF_ECONFIG, "serve.listen=%s: port must be 0..65535", listen);
    if (strtol(*port, NULL, 10) > 65535)
        return rf_err_set(err, RF_ECONFIG, "serve.listen=%s: port must be 0..65535", listen);
    if (!**host)
        *host = NULL; /* ":PORT" listens on every address */
    return RF_OK;
}

static struct MHD_Daemon *start_on(rf_serve_t *srv, const struct addrinfo *ai)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_OptionItem ops[8];
    int n = 0;

    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                       (intptr_t)srv->opts.max_connections, NULL};
    ops[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, RF_SERVE_CONN_TIMEOUT_S, NULL};
    if (srv->opts.threads > 1)
        ops[n++] = (struct MHD_OptionItem){MHD_OPTION_THREAD_POOL_SIZE, srv->opts.threads, NULL};
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, srv,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL, MHD_OPTION_ARRAY, ops, MHD_OPTION_END);
}

/* Frees a server that never started or has stopped. */
static void serve_free(rf_serve_t *srv)
{
    rf__serve_auth_close(srv->auth);
    rf__serve_rate_free(srv->rate);
    rf__serve_metrics_fini(&srv->metrics);
    pthread_mutex_destroy(&srv->wait_mu);
    pthread_cond_destroy(&srv->wait_cond);
    free(srv->listen);
    free(srv);
}

static rf_rc check_opts(const rf_serve_opts_t *opts, rf_err_t *err)
{
    if (!opts || !opts->listen || !opts->ix || !opts->embed)
        return rf_err_set(err, RF_EINVAL, "serve: listen, ix and embed are required");
    if (opts->threads < 1 || opts->threads > RF_SERVE_MAX_THREADS)
        return rf_err_set(err, RF_EINVAL, "serve.threads=%d: must be 1..%d", opts->threads,
                          RF_SERVE_MAX_THREADS);
    if (opts->max_body < 1)
        return rf_err_set(err, RF_EINVAL, "serve.max_body=%zu: must be at least 1", opts->max_body);
    if (opts->max_k < 1)
        return rf_err_set(err, RF_EINVAL, "serve.max_k=%d: must be at least 1", opts->max_k);
    if (opts->dim < 1)
        return rf_err_set(err, RF_EINVAL, "serve: dim=%d must be at least 1", opts->dim);
    if (opts->auth != RF_SERVE_AUTH_NONE && opts->auth != RF_SERVE_AUTH_KEYS)
        return rf_err_set(err, RF_EINVAL, "serve.auth=%d: unknown", opts->auth);
    if (opts->auth == RF_SERVE_AUTH_KEYS && (!opts->keys_path || !*opts->keys_path))
        return rf_err_set(err, RF_EINVAL, "serve.auth=keys needs the key store's path");
    if (opts->max_wait_ms < 0 || opts->max_connections < 0 || opts->rate_burst < 0 ||
        !(opts->rate_per_key >= 0) || !isfinite(opts->rate_per_key))
        return rf_err_set(err, RF_EINVAL, "serve: limits must not be negative");
    return RF_OK;
}

rf_rc rf_serve_start(const rf_serve_opts_t *opts, rf_serve_t **out, rf_err_t *err)
{
    rf_serve_t *srv = NULL;
    struct addrinfo hints, *ais = NULL;
    const union MHD_DaemonInfo *info;
    char buf[300];
    const char *host = NULL, *port = NULL;
    rf_rc rc = RF_OK;
    int gai;

    *out = NULL;
    if ((rc = check_opts(opts, err)))
        return rc;
    rc = parse_listen(opts->listen, buf, sizeof(buf), &host, &port, err);
    if (rc)
        return rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    gai = getaddrinfo(host, port, &hints, &ais);
    if (gai)
        return rf_err_set(err, RF_EUNAVAIL, "serve.listen=%s: cannot resolve \"%s\": %s",
                          opts->listen, host ? host : "", gai_strerror(gai));

    srv = rf_xcalloc(1, sizeof(*srv));
    srv->opts = *opts;
    srv->listen = rf_xstrdup(opts->listen);
    srv->opts.listen = srv->listen;
    srv->opts.keys_path = NULL; /* borrowed for this call only */
    if (!srv->opts.max_wait_ms)
        srv->opts.max_wait_ms = RF_SERVE_MAX_WAIT_DEF;
    if (!srv->opts.max_connections)
        srv->opts.max_connections = RF_SERVE_CONN_LIMIT_DEF;
    srv->lim.dim = opts->dim;
    srv->lim.max_k = opts->max_k;
    srv->lim.max_wait_ms = srv->opts.max_wait_ms;
    rf__serve_metrics_init(&srv->metrics);
    pthread_mutex_init(&srv->wait_mu, NULL);
    pthread_cond_init(&srv->wait_cond, NULL);
    atomic_init(&srv->inflight, 0);
    atomic_init(&srv->stopping, 0);
    if (opts->auth == RF_SERVE_AUTH_KEYS &&
        (rc = rf__serve_auth_open(opts->keys_path, &srv->auth, err)))
        goto out;
    srv->rate = rf__serve_rate_new(opts->rate_per_key, opts->rate_burst);

    atomic_store(&srv->starting, 1);
    /* IPv4 first: "localhost" then means 127.0.0.1, which every client tries. */
    for (int pass = 0; pass < 2 && !srv->mhd; pass++)
        for (const struct addrinfo *ai = ais; ai && !srv->mhd; ai = ai->ai_next)
            if (ai->ai_family == (pass == 0 ? AF_INET : AF_INET6))
                srv->mhd = start_on(srv, ai);
    atomic_store(&srv->starting, 0);
    if (!srv->mhd) {
        rc = rf_err_set(err, RF_EUNAVAIL, "serve.listen=%s: cannot listen: %s", opts->listen,
                        srv->start_msg[0] ? srv->start_msg : "libmicrohttpd refused to start");
        goto out;
    }
    info = MHD_get_daemon_info(srv->mhd, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : 0;
    RF_LOG(RF_LOG_INFO, RF_MOD_SERVE,
           "listen=%s port=%d threads=%d auth=%s max_connections=%d serving HTTP", opts->listen,
           srv->port, opts->threads, srv->auth ? "keys" : "none", srv->opts.max_connections);
    *out = srv;
    srv = NULL;

out:
    if (ais)
        freeaddrinfo(ais);
    if (srv)
        serve_free(srv);
    return rc;
}

int rf_serve_port(const rf_serve_t *srv)
{
    return srv ? srv->port : 0;
}

void rf_serve_freshness_observe(rf_serve_t *srv, int stage, int64_t ms)
{
    if (srv)
        rf__serve_metrics_observe_fresh(&srv->metrics, stage, ms);
}

void rf_serve_events_count(rf_serve_t *srv, const char *topic, int outcome, int64_t n)
{
    if (srv)
        rf__serve_metrics_count_topic(&srv->metrics, topic, outcome, n);
}

void rf_serve_stop(rf_serve_t *srv)
{
    int64_t deadline;

    if (!srv)
        return;
    /* End the waits (each notices within a slice and answers 503) and refuse new
     * requests (503), then let requests already being handled finish (idle keep-alive
     * connections hold no request and do not count) before the threads are stopped.  No
     * MHD_quiesce_daemon: with a thread pool in epoll mode (libmicrohttpd 0.9.75) it races
     * with the workers, which also take the listen socket out of their epoll sets once
     * quiesced, and the loser aborts the process ("Failed to remove listen FD from epoll
     * set", seen in test_serve). */
    atomic_store(&srv->stopping, 1);
    deadline = rf_mono_ms() + RF_SERVE_STOP_WAIT_MS;
    while (atomic_load(&srv->inflight) > 0 && rf_mono_ms() < deadline)
        rf_sleep_ms(5);
    if (atomic_load(&srv->inflight) > 0)
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "inflight=%d stopping with requests still open",
               atomic_load(&srv->inflight));
    /* No suspended connection may outlive the daemon: every waiting thread resumes its
     * connection before it leaves the count, within a slice of the stop. */
    pthread_mutex_lock(&srv->wait_mu);
    while (srv->waiters > 0)
        pthread_cond_wait(&srv->wait_cond, &srv->wait_mu);
    pthread_mutex_unlock(&srv->wait_mu);
    MHD_stop_daemon(srv->mhd);
    RF_LOG(RF_LOG_INFO, RF_MOD_SERVE, "port=%d stopped serving HTTP", srv->port);
    serve_free(srv);
}
