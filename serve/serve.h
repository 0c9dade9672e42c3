/* serve.h - the public face of serve/: the HTTP API (libmicrohttpd) over the index.
 *
 * It reads the store and index only through index/index.h; embedding a query text is
 * done through a callback that app/ provides, so serve/ knows nothing of embed/.
 * INVARIANT(fresh-is-measurable): every search response carries the position it
 * reflects.
 */
#ifndef RF_SERVE_H
#define RF_SERVE_H

#include "core/core.h"
#include "index/index.h"

typedef struct rf_serve rf_serve_t;

/* Embeds a query text into out[dim].  Called from HTTP threads; must be thread-safe.
 * Returns RF_OK or an error with details in err. */
typedef rf_rc (*rf_serve_embed_fn)(void *opaque, const char *text, size_t len, float *out,
                                   rf_err_t *err);

/* Counters the pipeline exposes in /metrics and /v1/status; read with relaxed atomics
 * from HTTP threads, written by the pipeline.  Owned by the caller; must outlive the
 * server. */
typedef struct rf_serve_counters {
    volatile int64_t events_consumed;
    volatile int64_t events_applied;
    volatile int64_t events_dead;
    volatile int64_t events_skipped;
    volatile int64_t batches_applied;
    volatile int64_t ready; /* 1 once recovery is done and consuming */
    char last_error[256];   /* guarded by last_error_lock */
    void *last_error_lock;  /* pthread_mutex_t *, may be NULL */
} rf_serve_counters_t;

/* A part of the process that reports through the HTTP API (the Iceberg exporter, the
 * embedding provider, the consumer): all callbacks are optional, called from HTTP
 * threads, and must be thread-safe. */
typedef struct rf_serve_section {
    const char *name; /* key in /v1/status, e.g. "iceberg" */
    void *opaque;
    /* A JSON object text for /v1/status under `name`; caller (serve) frees. */
    char *(*status_json)(void *opaque);
    /* Appends Prometheus text-format lines (with # HELP / # TYPE) to out. */
    void (*metrics)(void *opaque, rf_buf_t *out);
    /* NULL when this part does not hold readiness back, else a short reason written to
     * buf (shown by /readyz with 503). */
    const char *(*unready)(void *opaque, char *buf, size_t n);
} rf_serve_section_t;

typedef struct rf_serve_opts {
    const char *listen; /* "HOST:PORT"; port 0 picks one (see rf_serve_port) */
    int threads;
    size_t max_body;
    int max_k;
    int dim;
    rf_index_t *ix;          /* borrowed; must outlive the server */
    rf_serve_embed_fn embed; /* required */
    void *embed_opaque;
    rf_serve_counters_t *counters; /* borrowed; may be NULL */
    const rf_serve_section_t *sections; /* borrowed array; may be NULL */
    size_t section_cnt;
} rf_serve_opts_t;

/* Starts listening and serving on its own threads.  RF_EUNAVAIL when the address
 * cannot be bound.  Caller frees with rf_serve_stop(). */
rf_rc rf_serve_start(const rf_serve_opts_t *opts, rf_serve_t **out, rf_err_t *err);
/* The bound port (useful with port 0). */
int rf_serve_port(const rf_serve_t *srv);
/* Stops accepting, finishes in-flight requests and frees. NULL ok. */
void rf_serve_stop(rf_serve_t *srv);

#endif /* RF_SERVE_H */
