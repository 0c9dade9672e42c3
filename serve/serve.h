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

/* Embeds a query text into out[dim] with the embedder of model generation gen (the one
 * the index serves; see rf_index_gen_active).  Called from HTTP threads; must be
 * thread-safe.  Returns RF_OK, RF_EAGAIN when that generation's embedder is gone (the
 * index switched meanwhile: the server asks again), or an error with details in err. */
typedef rf_rc (*rf_serve_embed_fn)(void *opaque, int64_t gen, const char *text, size_t len,
                                   float *out, int dim, rf_err_t *err);

/* Answers a request under /v1/admin/ (the server has checked admin rights): the method,
 * the path and the body.  Returns the HTTP status and *json, the answer (malloc'd). */
typedef int (*rf_serve_admin_fn)(void *opaque, const char *method, const char *path,
                                 const char *body, size_t len, char **json);

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
    rf_serve_admin_fn admin; /* /v1/admin/...; NULL: 404 */
    void *admin_opaque;
    rf_serve_counters_t *counters;      /* borrowed; may be NULL */
    const rf_serve_section_t *sections; /* borrowed array; may be NULL */
    size_t section_cnt;
    /* Access control and limits (serve.*).  A zero value means the documented default. */
    int auth;              /* RF_SERVE_AUTH_NONE (default) or RF_SERVE_AUTH_KEYS */
    const char *keys_path; /* the key store, "<state.dir>/keys.db"; required with
                            * RF_SERVE_AUTH_KEYS (created when missing); borrowed for the
                            * call only */
    int64_t max_wait_ms;   /* largest wait_ms a request may ask for; 0: 30000 */
    int max_connections;   /* open connections at once; 0: 1024 */
    double rate_per_key;   /* requests per second per API key (per client address without
                            * keys); 0: no limit */
    int rate_burst;        /* requests a key may make at once; 0: ceil(rate_per_key) */
} rf_serve_opts_t;

/* Freshness stages: each observation is the time from a change's event time (at the
 * source database) to the moment the change reached the stage. */
enum {
    RF_SERVE_STAGE_CONSUMED = 0, /* read from Kafka */
    RF_SERVE_STAGE_EMBEDDED = 1, /* its vector is ready */
    RF_SERVE_STAGE_APPLIED = 2,  /* committed to the store and visible to searches */
    RF_SERVE_STAGE_EXPORTED = 3, /* committed to the Iceberg table */
    RF_SERVE_STAGE_COUNT
};

/* Pipeline outcomes counted per topic. */
enum {
    RF_SERVE_EVENTS_CONSUMED = 0,
    RF_SERVE_EVENTS_APPLIED = 1,
    RF_SERVE_EVENTS_DEAD = 2, /* dead-lettered */
    RF_SERVE_EVENTS_COUNT
};

/* Starts listening and serving on its own threads.  RF_EUNAVAIL when the address
 * cannot be bound.  Caller frees with rf_serve_stop(). */
rf_rc rf_serve_start(const rf_serve_opts_t *opts, rf_serve_t **out, rf_err_t *err);
/* The bound port (useful with port 0). */
int rf_serve_port(const rf_serve_t *srv);
/* Stops accepting, finishes in-flight requests and frees. NULL ok.  Requests waiting
 * for a position are answered 503 within a quarter of a second. */
void rf_serve_stop(rf_serve_t *srv);

/* Records one freshness observation: `ms` milliseconds from event time to `stage`
 * (RF_SERVE_STAGE_*), shown as the ragfeed_freshness_seconds histogram.  Negative values
 * (clock skew) count as 0; an unknown stage or a NULL srv is ignored.  Any thread;
 * lock-free. */
void rf_serve_freshness_observe(rf_serve_t *srv, int stage, int64_t ms);

/* Adds n events of `topic` (borrowed) with `outcome` (RF_SERVE_EVENTS_*) to the per-topic
 * counters (ragfeed_topic_events_total).  At most 256 topics are tracked; later ones are
 * counted under topic="_other".  Any thread. */
void rf_serve_events_count(rf_serve_t *srv, const char *topic, int outcome, int64_t n);

/* ==== API keys ==== */

/* The key store: a small SQLite file (keys.db) of hashed API keys.  A key is shown once,
 * when created; the store keeps its BLAKE2b hash, its id, tenant scope and rights.  The
 * server re-reads the file at most once a second, so `ragfeed keys revoke` takes effect
 * without a restart.  A store handle is for one thread at a time. */
typedef struct rf_serve_keys rf_serve_keys_t;

typedef struct rf_serve_key_info {
    char id[32];     /* "k" + 16 hex digits; the key itself starts "rf_<id>_" */
    char prefix[48]; /* the first characters of the key, "rf_<id>_", safe to show */
    char *tenant;    /* NULL: every tenant */
    int admin;       /* 1: admin rights (status and metrics when serve.auth = keys) */
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while valid */
} rf_serve_key_info_t;

/* Opens (creating when missing) the key store at path.  Caller frees with
 * rf_serve_keys_close(). */
rf_rc rf_serve_keys_open(const char *path, rf_serve_keys_t **out, rf_err_t *err);
void rf_serve_keys_close(rf_serve_keys_t *ks);
/* Creates a key for `tenant` (borrowed; NULL or "" for every tenant), with admin rights
 * when admin is 1.  *key (caller frees with free()) is the only copy of the secret;
 * info (may be NULL) receives its description (release with rf_serve_key_info_fini).
 * RF_EINVAL for a tenant longer than 256 bytes or with control characters. */
rf_rc rf_serve_keys_create(rf_serve_keys_t *ks, const char *tenant, int admin, char **key,
                           rf_serve_key_info_t *info, rf_err_t *err);
/* Every key, revoked ones included, oldest first; *infos caller frees with
 * rf_serve_key_infos_free(). */
rf_rc rf_serve_keys_list(rf_serve_keys_t *ks, rf_serve_key_info_t **infos, size_t *cnt,
                         rf_err_t *err);
/* Revokes a key by id (or by its printed prefix).  RF_ENOTFOUND when no such key;
 * revoking a revoked key is RF_OK and keeps the first revocation time. */
rf_rc rf_serve_keys_revoke(rf_serve_keys_t *ks, const char *id, rf_err_t *err);
void rf_serve_key_info_fini(rf_serve_key_info_t *info);
void rf_serve_key_infos_free(rf_serve_key_info_t *infos, size_t cnt);

#endif /* RF_SERVE_H */
