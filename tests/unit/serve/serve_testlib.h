/* serve_testlib.h - the fixture serve/'s HTTP tests share: a real index in a temporary
 * directory with four records, a server on a free port, and libcurl calls that keep
 * status, headers and the parsed JSON body.  The embedder maps a query to a one-hot
 * vector by its first letter ('a' -> e0, 'b' -> e1, ...; "!" fails as unavailable, "?"
 * fails for good).
 */
#ifndef RF_SERVE_TESTLIB_H
#define RF_SERVE_TESTLIB_H

#include "serve/serve.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>

#define DIM   4
#define MAX_K 50

typedef struct fx {
    char *dir;
    rf_index_t *ix;
    rf_serve_t *srv;
    rf_serve_counters_t counters;
    pthread_mutex_t lock;
    int port;
    CURL *curl;
    int64_t seq;
    const char *key; /* sent as "Authorization: Bearer <key>" when not NULL */
} fx_t;

typedef struct resp {
    long status;
    rf_buf_t body;
    rf_buf_t headers;
    json_t *json; /* body parsed, when it is JSON */
} resp_t;

rf_rc fx_embed_letter(void *opaque, int64_t gen, const char *text, size_t len, float *out, int dim,
                      rf_err_t *err);

/* Opens the index with the four records of offsets 0..3 on "t"/0 (next offset 4):
 * t.docs:1 "apple" (tenant acme, label fruit, color red), t.docs:2 "apricot banana",
 * t.docs:3 "banana", t.docs:4/x y "cherry". */
void fx_open(fx_t *fx);
/* Default options for fx's index: 127.0.0.1:0, threads, max_body 65536, MAX_K. */
rf_serve_opts_t fx_opts(fx_t *fx, int threads);
/* Starts the server with o and a curl handle. */
void fx_serve(fx_t *fx, const rf_serve_opts_t *o);
/* fx_open + fx_serve with the classic knobs. */
void fx_start(fx_t *fx, size_t max_body, int with_counters, int threads);
void fx_stop(fx_t *fx);

/* Applies one upsert per (id, text, vec) on topic/partition at offset, then sets that
 * partition's next offset to offset + 1.  tenant, label, meta may be NULL. */
void fx_upsert(fx_t *fx, const char *id, const char *text, const float *vec, const char *tenant,
               const char *label, const char *meta, int64_t event_time_ms, const char *topic,
               int32_t partition, int64_t offset);

/* One request on the fixture's handle (connections are reused between calls).
 * chunked sends the body with Transfer-Encoding: chunked. */
void http_ex(fx_t *fx, const char *method, const char *path, const char *body, size_t len,
             int chunked, resp_t *r);
void http(fx_t *fx, const char *method, const char *path, const char *body, resp_t *r);
void resp_fini(resp_t *r);

const char *err_code(const resp_t *r);
const char *err_msg(const resp_t *r);
int has_header(const resp_t *r, const char *line);
const char *result_id(const resp_t *r, size_t i);
size_t result_cnt(const resp_t *r);
size_t on_body(char *p, size_t sz, size_t n, void *ud);

/* The value of a sample line "name value" in a /metrics text; -1 when absent. */
double metric_value(const char *text, const char *series);
/* Polls /metrics until series reaches want or 10 s pass; returns the last value. */
double metric_wait(fx_t *fx, const char *series, double want);

#endif /* RF_SERVE_TESTLIB_H */
