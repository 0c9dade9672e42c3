/* serve_int.h - declarations shared by serve/'s files; not for other modules.
 * serve_http.c owns the daemon, the routes and the waits; serve_request.c checks request
 * bodies; serve_json.c builds response bodies; serve_context.c assembles prompt context;
 * serve_keys.c keeps API keys and rate buckets; serve_metrics.c renders /metrics;
 * serve_page.c holds the status page.
 * INVARIANT(fresh-is-measurable): every search and context body carries its position.
 */
#ifndef RF_SERVE_INT_H
#define RF_SERVE_INT_H

#include "serve/serve.h"

#include <stdatomic.h>
#include <stdint.h>

/* ==== Routes and status codes (bounded label sets for the metrics) ==== */

/* Every route: id, method(s), path as documented, metrics label.  docs/API.md and
 * docs/openapi.yaml must name each (a test checks). */
#define RF__SERVE_ROUTE_MAP(XX)                                                                    \
    XX(SEARCH, "POST", "/v1/search")                                                               \
    XX(CONTEXT, "POST", "/v1/context")                                                             \
    XX(RECORDS, "GET", "/v1/records/{id}")                                                         \
    XX(STATUS, "GET", "/v1/status")                                                                \
    XX(HEALTHZ, "GET", "/healthz")                                                                 \
    XX(READYZ, "GET", "/readyz")                                                                   \
    XX(METRICS, "GET", "/metrics")                                                                 \
    XX(PAGE, "GET", "/")                                                                           \
    XX(ADMIN, "POST", "/v1/admin/reembed")

typedef enum rf__serve_route {
#define RF__SERVE_ROUTE_ENUM(name, method, path) RF__SERVE_R_##name,
    RF__SERVE_ROUTE_MAP(RF__SERVE_ROUTE_ENUM)
#undef RF__SERVE_ROUTE_ENUM
        RF__SERVE_R_OTHER,
    RF__SERVE_R_COUNT
} rf__serve_route;

/* The path label of a route ("/v1/records" for every record id, "other" for the rest). */
const char *rf__serve_route_label(rf__serve_route route);

/* Every status the handlers produce; anything else is counted as "other". */
#define RF__SERVE_STATUS_MAP(XX)                                                                   \
    XX(200) XX(400) XX(401) XX(403) XX(404) XX(405) XX(413) XX(429) XX(500) XX(502) XX(503) XX(504)

enum {
#define RF__SERVE_STATUS_ENUM(n) RF__SERVE_S_##n,
    RF__SERVE_STATUS_MAP(RF__SERVE_STATUS_ENUM)
#undef RF__SERVE_STATUS_ENUM
        RF__SERVE_S_OTHER,
    RF__SERVE_S_COUNT
};

/* Every error code the API answers with: name, code string, HTTP status.  Handlers can
 * only answer with these (the code is an enum), and the documents must list each. */
#define RF__SERVE_CODE_MAP(XX)                                                                     \
    XX(BAD_JSON, "bad_json", 400)                                                                  \
    XX(BAD_REQUEST, "bad_request", 400)                                                            \
    XX(BAD_K, "bad_k", 400)                                                                        \
    XX(BAD_FILTER, "bad_filter", 400)                                                              \
    XX(UNSUPPORTED, "unsupported", 400)                                                            \
    XX(UNAUTHORIZED, "unauthorized", 401)                                                          \
    XX(FORBIDDEN, "forbidden", 403)                                                                \
    XX(NOT_FOUND, "not_found", 404)                                                                \
    XX(METHOD_NOT_ALLOWED, "method_not_allowed", 405)                                              \
    XX(TOO_LARGE, "too_large", 413)                                                                \
    XX(RATE_LIMITED, "rate_limited", 429)                                                          \
    XX(INTERNAL, "internal", 500)                                                                  \
    XX(EMBED_FAILED, "embed_failed", 502)                                                          \
    XX(EMBED_UNAVAILABLE, "embed_unavailable", 503)                                                \
    XX(UNAVAILABLE, "unavailable", 503)                                                            \
    XX(POSITION_TIMEOUT, "position_timeout", 504)

typedef enum rf__serve_code {
#define RF__SERVE_CODE_ENUM(name, str, status) RF__SERVE_E_##name,
    RF__SERVE_CODE_MAP(RF__SERVE_CODE_ENUM)
#undef RF__SERVE_CODE_ENUM
        RF__SERVE_E_COUNT
} rf__serve_code;

/* The code's string ("bad_json") and its HTTP status. */
const char *rf__serve_code_name(rf__serve_code code);
unsigned rf__serve_code_status(rf__serve_code code);

/* ==== Metrics (serve_metrics.c) ==== */

/* Upper bounds in seconds of the search-duration histogram, +Inf implied. */
#define RF__SERVE_BUCKETS_MAP(XX)                                                                  \
    XX(0.0005)                                                                                     \
    XX(0.001)                                                                                      \
    XX(0.0025)                                                                                     \
    XX(0.005) XX(0.01) XX(0.025) XX(0.05) XX(0.1) XX(0.25) XX(0.5) XX(1.0) XX(2.5) XX(5.0)

enum {
#define RF__SERVE_BUCKET_COUNT(x) +1
    RF__SERVE_BUCKETS = 0 RF__SERVE_BUCKETS_MAP(RF__SERVE_BUCKET_COUNT)
#undef RF__SERVE_BUCKET_COUNT
};

/* Upper bounds in seconds of the freshness histograms: from tens of milliseconds (a live
 * stream) to hours (a snapshot of old rows). */
/* clang-format off */
#define RF__SERVE_FRESH_BUCKETS_MAP(XX)                                                            \
    XX(0.01) XX(0.025) XX(0.05) XX(0.1) XX(0.25) XX(0.5) XX(1.0) XX(2.5) XX(5.0) XX(10.0)        \
    XX(30.0) XX(60.0) XX(300.0) XX(3600.0)
/* clang-format on */

enum {
#define RF__SERVE_FRESH_COUNT(x) +1
    RF__SERVE_FRESH_BUCKETS = 0 RF__SERVE_FRESH_BUCKETS_MAP(RF__SERVE_FRESH_COUNT)
#undef RF__SERVE_FRESH_COUNT
};

#define RF__SERVE_TOPICS_MAX 256 /* topics with their own per-topic series */

/* Written by the HTTP threads with relaxed atomics; lives inside rf_serve_t. */
typedef struct rf__serve_metrics {
    atomic_uint_fast64_t http[RF__SERVE_R_COUNT][RF__SERVE_S_COUNT];
    atomic_uint_fast64_t search_bucket[RF__SERVE_BUCKETS + 1]; /* last is +Inf only */
    atomic_uint_fast64_t search_sum_us;
    atomic_uint_fast64_t fresh_bucket[RF_SERVE_STAGE_COUNT][RF__SERVE_FRESH_BUCKETS + 1];
    atomic_uint_fast64_t fresh_sum_ms[RF_SERVE_STAGE_COUNT];
    atomic_uint_fast64_t waits[3]; /* position waits: reached at once, after waiting, timed out */
    /* Per-topic counters: names are published once (topic_cnt grows under topic_lock) and
     * never change, so readers need no lock. */
    void *topic_lock; /* pthread_mutex_t * */
    char *topics[RF__SERVE_TOPICS_MAX + 1];
    atomic_size_t topic_cnt;
    atomic_uint_fast64_t topic_events[RF__SERVE_TOPICS_MAX + 1][RF_SERVE_EVENTS_COUNT];
} rf__serve_metrics_t;

enum { RF__SERVE_WAIT_AT_ONCE = 0, RF__SERVE_WAIT_REACHED = 1, RF__SERVE_WAIT_TIMEOUT = 2 };

void rf__serve_metrics_init(rf__serve_metrics_t *m);
void rf__serve_metrics_fini(rf__serve_metrics_t *m);
/* Counts one response with `status` on `route`. Any thread. */
void rf__serve_metrics_count(rf__serve_metrics_t *m, rf__serve_route route, unsigned status);
/* Records the duration of one answered search or context request. Any thread. */
void rf__serve_metrics_observe_search(rf__serve_metrics_t *m, int64_t us);
void rf__serve_metrics_observe_fresh(rf__serve_metrics_t *m, int stage, int64_t ms);
void rf__serve_metrics_count_topic(rf__serve_metrics_t *m, const char *topic, int outcome,
                                   int64_t n);

/* What /metrics shows besides serve's own counters; all borrowed. */
typedef struct rf__serve_metrics_src {
    const rf_serve_counters_t *counters; /* may be NULL */
    rf_index_t *ix;
    const rf_serve_section_t *sections;
    size_t section_cnt;
    int64_t connections; /* open now, -1 unknown */
    int64_t waiting;     /* requests waiting for a position now */
    int64_t now_ms;
} rf__serve_metrics_src_t;

/* Appends the Prometheus text (format 0.0.4) to out. */
rf_rc rf__serve_metrics_render(rf__serve_metrics_t *m, const rf__serve_metrics_src_t *src,
                               rf_buf_t *out);

/* Reads one pipeline counter with a relaxed atomic load. */
static inline int64_t rf__serve_counter_get(const volatile int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* ==== Requests (serve_request.c) ==== */

/* Why a request failed: the code (which gives the HTTP status) and a message. */
typedef struct rf__serve_fail {
    rf__serve_code code;
    char msg[256];
} rf__serve_fail_t;

/* Fills f and returns RF_EINVAL, so callers can `return rf__serve_fail(...)`. */
rf_rc rf__serve_fail(rf__serve_fail_t *f, rf__serve_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum { RF__SERVE_KIND_SEARCH = 0, RF__SERVE_KIND_CONTEXT = 1 };

/* Which result fields a client asked for ("include"). */
#define RF__SERVE_INC_TEXT     0x1u
#define RF__SERVE_INC_METADATA 0x2u
#define RF__SERVE_INC_VECTOR   0x4u

/* Bounds on what a request may ask for. */
#define RF__SERVE_FILTER_FIELDS_MAX 32      /* fields in one filter */
#define RF__SERVE_FILTER_IN_MAX     1024    /* values in one "in" list */
#define RF__SERVE_FIELD_NAME_MAX    256     /* bytes of a field name */
#define RF__SERVE_POSITIONS_MAX     1024    /* partitions in min_position.offsets */
#define RF__SERVE_LSN_SOURCES_MAX   256     /* sources in min_position.lsn */
#define RF__SERVE_CONTEXT_CHARS_MAX 1000000 /* largest max_chars (and 4 * max_tokens) */
#define RF__SERVE_CONTEXT_CHARS_DEF 8000    /* max_chars when no budget is given */
#define RF__SERVE_CHARS_PER_TOKEN   4       /* the stated token estimate */

typedef struct rf__serve_limits {
    int dim;
    int max_k;
    int64_t max_wait_ms;
} rf__serve_limits_t;

/* A checked search or context request.  Everything it points to is owned by it. */
typedef struct rf__serve_request {
    int kind;
    char *query; /* NULL when a vector was given */
    size_t query_len;
    float *vec; /* dim floats, unit length, when a vector was given */
    int vec_dim;
    int k;
    float min_score; /* -INFINITY when not given */
    unsigned include;
    /* filter: conditions in the order given; tenant is set later from the API key */
    rf_index_cond_t *conds;
    size_t cond_cnt;
    /* min_position */
    int has_position;
    int64_t min_seq;         /* -1 when not given */
    rf_index_offset_t *want; /* next offsets wanted: the client's offset + 1 */
    size_t want_cnt;
    rf_index_lsn_t *lsns; /* highest source LSNs wanted, per source */
    size_t lsn_cnt;
    int64_t wait_ms;
    /* context budget, in characters (Unicode code points) */
    int64_t max_chars;
    int64_t max_tokens; /* 0 when the budget was given as max_chars */
    /* Every allocation the fields above point into. */
    void **owned;
    size_t owned_cnt, owned_cap;
} rf__serve_request_t;

/* Parses and checks a POST /v1/search (kind RF__SERVE_KIND_SEARCH) or /v1/context body.
 * On failure f says what to answer and req holds nothing.  Release with
 * rf__serve_request_fini() (also after a failure). */
rf_rc rf__serve_request_parse(const char *body, size_t len, int kind, const rf__serve_limits_t *lim,
                              rf__serve_request_t *req, rf__serve_fail_t *f);
void rf__serve_request_fini(rf__serve_request_t *req);

/* Scales vec[dim] to unit length.  Returns RF_EINVAL when an entry is not finite or the
 * vector has zero length. */
rf_rc rf__serve_vec_normalize(float *vec, int dim);

/* Milliseconds since the epoch of an ISO-8601 UTC time ("2024-05-01T12:00:00Z",
 * fractions and +hh:mm offsets allowed, a date alone is midnight UTC).  RF_EPARSE when
 * it is not one. */
rf_rc rf__serve_iso_ms(const char *s, int64_t *ms);

/* ==== Context assembly (serve_context.c) ==== */

/* One passage of a context, in the order of the context string. */
typedef struct rf__serve_passage {
    size_t hit;    /* index into the results */
    int truncated; /* 1 when its text was cut (and ends with the marker) */
} rf__serve_passage_t;

typedef struct rf__serve_context {
    char *text;   /* the context string; caller frees via _fini */
    size_t chars; /* its length in characters */
    rf__serve_passage_t *passages;
    size_t passage_cnt;
    size_t duplicates; /* hits left out as the same id or text as a better one */
    size_t dropped;    /* hits left out for the budget */
} rf__serve_context_t;

#define RF__SERVE_TRUNC_MARKER " [truncated]"
#define RF__SERVE_TRUNC_MIN    40 /* fewer characters of a passage are dropped, not cut */

/* Builds the context from hits in score order within max_chars characters.  Never fails
 * (an empty context when nothing fits). */
void rf__serve_context_build(const rf_index_hit_t *hits, size_t cnt, int64_t max_chars,
                             rf__serve_context_t *ctx);
void rf__serve_context_fini(rf__serve_context_t *ctx);
/* Characters (UTF-8 code points) in s[0..n). */
size_t rf__serve_utf8_chars(const char *s, size_t n);

/* ==== Response bodies (serve_json.c) ==== */

/* {"error":{"code":..,"message":..}} plus "position" when pos is not NULL; caller frees
 * with free(); never NULL. */
char *rf__serve_error_json(rf__serve_code code, const char *message, const rf_index_position_t *pos,
                           int64_t now_ms);

/* The search answer for res.  Caller frees with free(); NULL on failure. */
char *rf__serve_search_json(const rf_index_results_t *res, unsigned include, int64_t now_ms);

/* Extra facts about a cited record that the hit does not carry (read from the store). */
typedef struct rf__serve_cite_extra {
    char *source;          /* NULL when unknown */
    char *source_position; /* LSN / binlog position, NULL when none */
    int64_t updated_at_ms; /* 0 when unknown */
} rf__serve_cite_extra_t;

/* The context answer: context, citations (one per passage, extra[i] for passage i),
 * results, budget and position.  Caller frees; NULL on failure. */
char *rf__serve_context_json(const rf_index_results_t *res, const rf__serve_context_t *ctx,
                             const rf__serve_cite_extra_t *extra, const rf__serve_request_t *req,
                             int64_t now_ms);

/* How many recently written records /v1/status lists, and the characters of text each
 * shows. */
#define RF__SERVE_RECENT_CNT     10
#define RF__SERVE_RECENT_SNIPPET 120

/* The index status merged with the pipeline counters (may be NULL), the recent records
 * (a JSON array text, rf_index_recent_json; NULL: left out) under "recent_records" and
 * each section's status object under its name.  Caller frees with free(); NULL when
 * index_status is not a JSON object. */
char *rf__serve_status_json(const char *index_status, const rf_serve_counters_t *counters,
                            const char *recent_json, const rf_serve_section_t *sections,
                            size_t section_cnt);

/* /readyz: 1 and {"ready":true}, or 0 and {"ready":false,"reasons":{part: reason}}.
 * *body caller frees. */
int rf__serve_ready_json(const rf_serve_counters_t *counters, const rf_serve_section_t *sections,
                         size_t section_cnt, char **body);

/* Copies counters->last_error under its lock into buf. */
void rf__serve_last_error(const rf_serve_counters_t *counters, char *buf, size_t n);

/* ==== API keys and rate buckets (serve_keys.c) ==== */

/* Who made a request. */
typedef struct rf__serve_principal {
    char id[32];  /* key id, "" without keys */
    char *tenant; /* NULL: every tenant; owned */
    int admin;
} rf__serve_principal_t;

typedef struct rf__serve_auth rf__serve_auth_t;

/* Opens the key store for checking; reloads it at most once a second when it changed. */
rf_rc rf__serve_auth_open(const char *path, rf__serve_auth_t **out, rf_err_t *err);
void rf__serve_auth_close(rf__serve_auth_t *auth);
/* Checks an Authorization header value (may be NULL).  RF_OK fills who; RF_EAUTH with a
 * message in f otherwise.  Any thread. */
rf_rc rf__serve_auth_check(rf__serve_auth_t *auth, const char *authorization,
                           rf__serve_principal_t *who, rf__serve_fail_t *f);
void rf__serve_principal_fini(rf__serve_principal_t *who);

/* Token buckets, one per key (or client address). */
typedef struct rf__serve_rate rf__serve_rate_t;

rf__serve_rate_t *rf__serve_rate_new(double per_s, int burst);
void rf__serve_rate_free(rf__serve_rate_t *rl);
/* Takes one token from name's bucket at time now_ms.  0 when allowed; otherwise the
 * seconds (at least 1) after which a request will be allowed again.  Any thread. */
int rf__serve_rate_take(rf__serve_rate_t *rl, const char *name, int64_t now_ms);

/* ==== Status page (serve_page.c) ==== */

extern const char rf__serve_page_html[];

#endif /* RF_SERVE_INT_H */
