/* serve_http.c - the HTTP API on libmicrohttpd: listening, routing, bounded request
 * bodies, and the handlers for search, records, status, health and metrics.  Reads the
 * store only through index/index.h; query texts are embedded by the caller's callback.
 * INVARIANT(fresh-is-measurable): every search answer carries the position it reflects.
 */
#include "serve/serve.h"

#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/serve_int.h"

#define RF_SERVE_CONN_LIMIT     1024      /* connections at once, over all threads */
#define RF_SERVE_CONN_TIMEOUT_S 30        /* idle seconds before a connection is closed */
#define RF_SERVE_MAX_THREADS    256       /* sanity bound on opts->threads */
#define RF_SERVE_DRAIN_MAX      (1 << 20) /* bytes read past max_body before hanging up */
#define RF_SERVE_STOP_WAIT_MS   5000      /* how long rf_serve_stop waits for in-flight work */

#define CT_JSON    "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct rf_serve {
    struct MHD_Daemon *mhd;
    int port;
    rf_serve_opts_t opts; /* copy; opts.listen points to listen below */
    char *listen;
    rf__serve_metrics_t metrics;
    atomic_int inflight; /* requests between their first call and their completion */
    atomic_int starting; /* MHD messages are kept in start_msg while starting */
    char start_msg[256];
};

/* One request's state, from MHD's first call to the completion callback. */
typedef struct req {
    rf_serve_t *srv;
    rf__serve_route route;
    rf_buf_t body; /* bounded by max_body */
    uint64_t seen; /* body bytes received, kept or not */
    int too_large;
    unsigned status; /* 0 until a response is queued */
    int64_t t0_us;
    char method[16];
    char path[160]; /* printable copy for the log line */
} req_t;

/* ==== Small helpers ==== */

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
    return RF__SERVE_R_OTHER;
}

/* The Allow header of a route; GET routes also answer HEAD. */
static const char *route_allow(rf__serve_route route)
{
    return route == RF__SERVE_R_SEARCH ? "POST" : "GET, HEAD";
}

static int method_ok(rf__serve_route route, const char *method)
{
    if (route == RF__SERVE_R_SEARCH)
        return !strcmp(method, "POST");
    return !strcmp(method, "GET") || !strcmp(method, "HEAD");
}

/* ==== Responses ==== */

/* Queues a response; takes ownership of body (malloc'd, may be NULL when len is 0). */
static enum MHD_Result reply(req_t *rq, struct MHD_Connection *conn, unsigned status,
                             const char *ctype, char *body, size_t len, const char *allow)
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
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    rq->status = status;
    rf__serve_metrics_count(&rq->srv->metrics, rq->route, status);
    return ret;
}

static enum MHD_Result reply_json(req_t *rq, struct MHD_Connection *conn, unsigned status,
                                  char *body)
{
    if (!body)
        return reply(rq, conn, 500, CT_JSON,
                     rf__serve_error_json("internal", "could not build the response"), 0, NULL);
    return reply(rq, conn, status, CT_JSON, body, strlen(body), NULL);
}

static enum MHD_Result reply_error(req_t *rq, struct MHD_Connection *conn, unsigned status,
                                   const char *code, const char *allow, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static enum MHD_Result reply_error(req_t *rq, struct MHD_Connection *conn, unsigned status,
                                   const char *code, const char *allow, const char *fmt, ...)
{
    char msg[256];
    char *body;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    body = rf__serve_error_json(code, msg);
    return reply(rq, conn, status, CT_JSON, body, strlen(body), allow);
}

/* ==== Handlers ==== */

static enum MHD_Result handle_search(req_t *rq, struct MHD_Connection *conn)
{
    rf_serve_t *srv = rq->srv;
    rf__serve_search_t sreq;
    rf__serve_fail_t f;
    rf_index_results_t res;
    rf_err_t err;
    float *vec = NULL;
    enum MHD_Result ret;
    int64_t t0 = rf_mono_us();
    rf_rc rc;

    memset(&res, 0, sizeof(res));
    rf_err_clear(&err);
    if (rf__serve_search_parse(rq->body.ptr ? rq->body.ptr : "", rq->body.len, srv->opts.dim,
                               srv->opts.max_k, &sreq, &f) != RF_OK)
        return reply_error(rq, conn, f.status, f.code, NULL, "%s", f.msg);

    if (sreq.vec) {
        vec = sreq.vec;
    } else {
        vec = rf_xcalloc((size_t)srv->opts.dim, sizeof(float));
        rc = srv->opts.embed(srv->opts.embed_opaque, sreq.query, sreq.query_len, vec, &err);
        if (rc) {
            /* A provider that is down or throttling is worth retrying; anything else is
             * a failure of the embedding call itself. */
            int retry = rf_rc_retriable(rc);
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "rc=%s embedding the query failed: %s",
                   rf_rc_name(rc), err.msg);
            ret = reply_error(
                rq, conn, retry ? 503 : 502, retry ? "embed_unavailable" : "embed_failed", NULL,
                "embedding the query failed: %s", err.msg[0] ? err.msg : rf_rc_msg(rc));
            goto out;
        }
        if (rf__serve_vec_normalize(vec, srv->opts.dim) != RF_OK) {
            RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "the embedder returned a zero or non-finite vector");
            ret = reply_error(rq, conn, 502, "embed_failed", NULL,
                              "the embedder returned a zero or non-finite vector");
            goto out;
        }
    }

    /* INVARIANT(fresh-is-measurable): the results carry the position of the very index
     * state that was searched, so the offsets reported are never ahead of it. */
    rc = rf_index_search(srv->opts.ix, vec, sreq.k, &res, &err);
    if (rc) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_SERVE, "rc=%s search failed: %s", rf_rc_name(rc), err.msg);
        ret = reply_error(rq, conn, 500, "internal", NULL, "search failed: %s",
                          err.msg[0] ? err.msg : rf_rc_msg(rc));
        goto out;
    }
    ret = reply_json(rq, conn, 200, rf__serve_search_json(&res, rf_now_ms()));
    if (rq->status == 200)
        rf__serve_metrics_observe_search(&srv->metrics, rf_mono_us() - t0);

out:
    if (vec != sreq.vec)
        free(vec);
    rf_index_results_fini(&res);
    rf__serve_search_fini(&sreq);
    return ret;
}

static enum MHD_Result handle_record(req_t *rq, struct MHD_Connection *conn, const char *url)
{
    char *id = pct_decode(url + strlen("/v1/records/")), *json = NULL;
    enum MHD_Result ret;
    rf_err_t err;
    rf_rc rc;

    rf_err_clear(&err);
    if (!id)
        return reply_error(rq, conn, 400, "bad_request", NULL,
                           "the record id has a malformed or NUL percent-escape");
    if (!*id) {
        ret = reply_error(rq, conn, 404, "not_found", NULL, "no record id in the path");
        goto out;
    }
    rc = rf_index_record_get(rq->srv->opts.ix, id, &json, &err);
    if (rc == RF_ENOTFOUND) {
        ret = reply_error(rq, conn, 404, "not_found", NULL, "no record with id \"%.200s\"", id);
    } else if (rc) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_SERVE, "rc=%s reading a record failed: %s", rf_rc_name(rc),
               err.msg);
        ret = reply_error(rq, conn, 500, "internal", NULL, "reading the record failed: %s",
                          err.msg[0] ? err.msg : rf_rc_msg(rc));
    } else {
        ret = reply_json(rq, conn, 200, json);
        json = NULL;
    }
out:
    free(json);
    free(id);
    return ret;
}

static enum MHD_Result handle_status(req_t *rq, struct MHD_Connection *conn)
{
    char *st = rf_index_status_json(rq->srv->opts.ix);
    char *body = rf__serve_status_json(st, rq->srv->opts.counters);
    free(st);
    if (!body)
        return reply_error(rq, conn, 500, "internal", NULL, "the index status is unavailable");
    return reply_json(rq, conn, 200, body);
}

static enum MHD_Result handle_metrics(req_t *rq, struct MHD_Connection *conn)
{
    rf_buf_t out;
    size_t len;
    char *text;

    rf_buf_init(&out, 1 << 20);
    if (rf__serve_metrics_render(&rq->srv->metrics, rq->srv->opts.counters, rq->srv->opts.ix,
                                 &out) != RF_OK) {
        rf_buf_fini(&out);
        return reply_error(rq, conn, 500, "internal", NULL, "the metrics did not fit");
    }
    text = rf_buf_take(&out, &len);
    return reply(rq, conn, 200, CT_METRICS, text, len, NULL);
}

static enum MHD_Result dispatch(req_t *rq, struct MHD_Connection *conn, const char *url)
{
    const rf_serve_counters_t *c = rq->srv->opts.counters;

    switch (rq->route) {
    case RF__SERVE_R_SEARCH:
        return handle_search(rq, conn);
    case RF__SERVE_R_RECORDS:
        return handle_record(rq, conn, url);
    case RF__SERVE_R_STATUS:
        return handle_status(rq, conn);
    case RF__SERVE_R_HEALTHZ:
        return reply_json(rq, conn, 200, rf_xstrdup("{\"status\":\"ok\"}"));
    case RF__SERVE_R_READYZ:
        if (!c || rf__serve_counter_get(&c->ready) == 1)
            return reply_json(rq, conn, 200, rf_xstrdup("{\"ready\":true}"));
        return reply_json(rq, conn, 503, rf_xstrdup("{\"ready\":false}"));
    case RF__SERVE_R_METRICS:
        return handle_metrics(rq, conn);
    default:
        return reply_error(rq, conn, 404, "not_found", NULL, "no such path");
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

static req_t *req_new(rf_serve_t *srv, const char *url, const char *method)
{
    req_t *rq = rf_xcalloc(1, sizeof(*rq));
    rq->srv = srv;
    rq->route = route_of(url);
    rq->t0_us = rf_mono_us();
    rf_buf_init(&rq->body, srv->opts.max_body);
    log_safe(rq->method, sizeof(rq->method), method);
    log_safe(rq->path, sizeof(rq->path), url);
    atomic_fetch_add(&srv->inflight, 1);
    return rq;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    rf_serve_t *srv = cls;
    req_t *rq = *con_cls;

    (void)version;
    if (!rq) {
        /* First call: only headers are known.  Refuse early what needs no body, so a
         * client waiting on "Expect: 100-continue" never sends it. */
        rq = req_new(srv, url, method);
        *con_cls = rq;
        if (rq->route == RF__SERVE_R_OTHER)
            return reply_error(rq, conn, 404, "not_found", NULL, "no such path");
        if (!method_ok(rq->route, method))
            return reply_error(rq, conn, 405, "method_not_allowed", route_allow(rq->route),
                               "%s is not allowed here (allowed: %s)", rq->method,
                               route_allow(rq->route));
        if (content_length(conn) > srv->opts.max_body)
            return reply_error(rq, conn, 413, "too_large", NULL,
                               "the body is larger than %zu bytes", srv->opts.max_body);
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

    if (rq->status)
        return MHD_YES;
    if (rq->too_large)
        return reply_error(rq, conn, 413, "too_large", NULL, "the body is larger than %zu bytes",
                           srv->opts.max_body);
    return dispatch(rq, conn, url);
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
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem ops[8];
    int n = 0;

    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    ops[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, RF_SERVE_CONN_LIMIT, NULL};
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
    rf__serve_metrics_init(&srv->metrics);
    atomic_init(&srv->inflight, 0);

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
    RF_LOG(RF_LOG_INFO, RF_MOD_SERVE, "listen=%s port=%d threads=%d serving HTTP", opts->listen,
           srv->port, opts->threads);
    *out = srv;
    srv = NULL;

out:
    if (ais)
        freeaddrinfo(ais);
    if (srv) {
        free(srv->listen);
        free(srv);
    }
    return rc;
}

int rf_serve_port(const rf_serve_t *srv)
{
    return srv ? srv->port : 0;
}

void rf_serve_stop(rf_serve_t *srv)
{
    MHD_socket fd;
    int64_t deadline;

    if (!srv)
        return;
    /* Stop accepting, then let requests already being handled finish (idle keep-alive
     * connections hold no request and do not count) before the threads are stopped. */
    fd = MHD_quiesce_daemon(srv->mhd);
    deadline = rf_mono_ms() + RF_SERVE_STOP_WAIT_MS;
    while (atomic_load(&srv->inflight) > 0 && rf_mono_ms() < deadline)
        rf_sleep_ms(5);
    if (atomic_load(&srv->inflight) > 0)
        RF_LOG(RF_LOG_WARN, RF_MOD_SERVE, "inflight=%d stopping with requests still open",
               atomic_load(&srv->inflight));
    MHD_stop_daemon(srv->mhd);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
    RF_LOG(RF_LOG_INFO, RF_MOD_SERVE, "port=%d stopped serving HTTP", srv->port);
    free(srv->listen);
    free(srv);
}
