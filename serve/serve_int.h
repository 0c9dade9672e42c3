/* serve_int.h - declarations shared by serve/'s files (JSON bodies, metrics); not for
 * other modules.  serve_http.c owns the daemon and the routes, serve_json.c builds and
 * checks JSON bodies, serve_metrics.c keeps the request counters and renders /metrics.
 * INVARIANT(fresh-is-measurable): the search body always carries its position.
 */
#ifndef RF_SERVE_INT_H
#define RF_SERVE_INT_H

#include "serve/serve.h"

#include <stdatomic.h>
#include <stdint.h>

/* ==== Routes and status codes (bounded label sets for the metrics) ==== */

typedef enum rf__serve_route {
    RF__SERVE_R_SEARCH = 0,
    RF__SERVE_R_RECORDS,
    RF__SERVE_R_STATUS,
    RF__SERVE_R_HEALTHZ,
    RF__SERVE_R_READYZ,
    RF__SERVE_R_METRICS,
    RF__SERVE_R_OTHER,
    RF__SERVE_R_COUNT
} rf__serve_route;

/* The path label of a route ("/v1/records" for every record id, "other" for the rest). */
const char *rf__serve_route_label(rf__serve_route route);

/* Every status the handlers produce; anything else is counted as "other". */
#define RF__SERVE_STATUS_MAP(XX) XX(200) XX(400) XX(404) XX(405) XX(413) XX(500) XX(502) XX(503)

enum {
#define RF__SERVE_STATUS_ENUM(n) RF__SERVE_S_##n,
    RF__SERVE_STATUS_MAP(RF__SERVE_STATUS_ENUM)
#undef RF__SERVE_STATUS_ENUM
        RF__SERVE_S_OTHER,
    RF__SERVE_S_COUNT
};

/* ==== Metrics (serve_metrics.c) ==== */

/* Upper bounds in seconds of the search-duration histogram, +Inf implied. */
#define RF__SERVE_BUCKETS_MAP(XX)                                                                  \
    XX(0.0005)                                                                                     \
    XX(0.001)                                                                                      \
    XX(0.0025) XX(0.005) XX(0.01) XX(0.025) XX(0.05) XX(0.1) XX(0.25) XX(0.5) XX(1.0) XX(2.5)      \
        XX(5.0)

enum {
#define RF__SERVE_BUCKET_COUNT(x) +1
    RF__SERVE_BUCKETS = 0 RF__SERVE_BUCKETS_MAP(RF__SERVE_BUCKET_COUNT)
#undef RF__SERVE_BUCKET_COUNT
};

/* Written by the HTTP threads with relaxed atomics; lives inside rf_serve_t. */
typedef struct rf__serve_metrics {
    atomic_uint_fast64_t http[RF__SERVE_R_COUNT][RF__SERVE_S_COUNT];
    atomic_uint_fast64_t search_bucket[RF__SERVE_BUCKETS + 1]; /* last is +Inf only */
    atomic_uint_fast64_t search_sum_us;
} rf__serve_metrics_t;

void rf__serve_metrics_init(rf__serve_metrics_t *m);
/* Counts one response with `status` on `route`. Any thread. */
void rf__serve_metrics_count(rf__serve_metrics_t *m, rf__serve_route route, unsigned status);
/* Records the duration of one answered search. Any thread. */
void rf__serve_metrics_observe_search(rf__serve_metrics_t *m, int64_t us);
/* Appends the Prometheus text (format 0.0.4) to out.  counters may be NULL; ix borrowed. */
rf_rc rf__serve_metrics_render(rf__serve_metrics_t *m, const rf_serve_counters_t *counters,
                               rf_index_t *ix, rf_buf_t *out);

/* Reads one pipeline counter with a relaxed atomic load. */
static inline int64_t rf__serve_counter_get(const volatile int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ==== JSON bodies (serve_json.c) ==== */

/* Why a request failed: HTTP status, short code and a message for the client. */
typedef struct rf__serve_fail {
    unsigned status;
    const char *code; /* static string: "bad_json", "bad_request", ... */
    char msg[256];
} rf__serve_fail_t;

/* Fills f and returns RF_EINVAL, so callers can `return rf__serve_fail(...)`. */
rf_rc rf__serve_fail(rf__serve_fail_t *f, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A checked search request. */
typedef struct rf__serve_search {
    char *query; /* NULL when a vector was given; caller frees via _fini */
    size_t query_len;
    float *vec; /* dim floats, unit length, when a vector was given */
    int k;
} rf__serve_search_t;

/* Parses and checks a POST /v1/search body.  On failure f says what to answer and the
 * request holds nothing.  Release with rf__serve_search_fini(). */
rf_rc rf__serve_search_parse(const char *body, size_t len, int dim, int max_k,
                             rf__serve_search_t *req, rf__serve_fail_t *f);
void rf__serve_search_fini(rf__serve_search_t *req);

/* Scales vec[dim] to unit length.  Returns RF_EINVAL when an entry is not finite or the
 * vector has zero length. */
rf_rc rf__serve_vec_normalize(float *vec, int dim);

/* {"error":{"code":..,"message":..}}; caller frees with free(); never NULL. */
char *rf__serve_error_json(const char *code, const char *message);

/* The search answer for res, with the position res.pos reflects.  Caller frees with
 * free(); NULL on failure. */
char *rf__serve_search_json(const rf_index_results_t *res, int64_t now_ms);

/* The index status merged with the pipeline counters (may be NULL).  Caller frees with
 * free(); NULL when index_status is not a JSON object. */
char *rf__serve_status_json(const char *index_status, const rf_serve_counters_t *counters);

/* Copies counters->last_error under its lock into buf. */
void rf__serve_last_error(const rf_serve_counters_t *counters, char *buf, size_t n);

#endif /* RF_SERVE_INT_H */
