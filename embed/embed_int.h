/* embed_int.h - what the files of embed/ share: the client struct, the HTTP request
 * wrapper, the rate governor and the provider wire-format table.
 *
 * Upholds DESIGN.md invariant 5 (bad input never stops the stream): every HTTP exchange is
 * sorted into one outcome, and only RF__EMBED_INPUT and a bad vector can fail an item.
 */
#ifndef RF_EMBED_INT_H
#define RF_EMBED_INT_H

#include "embed.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>

/* ==== Outcomes of one HTTP exchange ==== */

typedef enum rf__embed_outcome {
    RF__EMBED_OK = 0,    /* 2xx and a well-formed body */
    RF__EMBED_INPUT,     /* 400, 413, 422: the request's content was refused */
    RF__EMBED_THROTTLED, /* 429, 503: honour Retry-After, shrink concurrency */
    RF__EMBED_TIMEOUT,   /* no answer within embed.timeout.ms: shrink concurrency */
    RF__EMBED_TRANSIENT, /* other 5xx, 408, 424, connection failures, malformed bodies */
    RF__EMBED_AUTH,      /* 401, 403: the key is refused */
    RF__EMBED_FATAL,     /* 404 and other 4xx: wrong URL or model */
} rf__embed_outcome;

/* ==== HTTP requests (embed_http.c) ==== */

/* One request and its response.  The easy handle is reused from request to request so
 * its connection stays alive. */
typedef struct rf__embed_req {
    CURL *easy;
    rf_buf_t body;          /* request body */
    rf_buf_t resp;          /* response body, bounded by resp.max */
    long status;            /* HTTP status, 0 when none arrived */
    int64_t retry_after_ms; /* from Retry-After / retry-after-ms, -1 when absent */
    CURLcode cc;
    char errbuf[CURL_ERROR_SIZE];
    int64_t started_us;
    int64_t est_tokens; /* charged to the governor when started */
    int overflow;       /* the response was larger than resp.max */
    void *owner;        /* the batch or job it carries */
} rf__embed_req_t;

rf__embed_req_t *rf__embed_req_new(void);
void rf__embed_req_free(rf__embed_req_t *r);
/* Sets r->easy up to POST r->body to url with hdrs (borrowed until the request ends),
 * timeout_ms and a response limit of resp_max bytes; clears the previous response. */
void rf__embed_req_prep(rf__embed_req_t *r, const char *url, struct curl_slist *hdrs,
                        int64_t timeout_ms, size_t resp_max);
/* Sorts a finished request into an outcome.  On RF__EMBED_OK *root is the parsed body
 * (caller frees with json_decref); otherwise msg says what happened (never a secret). */
rf__embed_outcome rf__embed_req_outcome(rf__embed_req_t *r, json_t **root, char *msg, size_t cap);

/* Appends s[0..len) as a JSON string literal (quotes included). */
rf_rc rf__embed_json_str(rf_buf_t *b, const char *s, size_t len);
/* Parses JSON like json_loadb, first turning the bare NaN / Infinity / -Infinity tokens
 * some servers emit into null (which the vector parsers read as NaN). */
json_t *rf__embed_json_load(const char *text, size_t len, char *msg, size_t cap);
/* Reads a JSON array of numbers into out[dim] (null reads as NaN).  Returns 1, or 0 with
 * the reason in why. */
int rf__embed_vec_from_json(const json_t *arr, int dim, float *out, char *why, size_t cap);
/* Checks a vector is finite and non-zero and scales it to unit length.  Returns 1, or 0
 * with the reason in why. */
int rf__embed_vec_finish(float *v, int dim, char *why, size_t cap);

/* ==== Rate governor (embed_governor.c) ==== */

typedef struct rf__embed_gov {
    pthread_mutex_t mu;
    int limit;     /* AIMD concurrency limit, 1..max */
    int max;       /* embed.concurrency */
    int successes; /* since the limit last grew */
    int attempt;   /* consecutive failures, for exponential backoff */
    int in_flight; /* requests started and not yet done */
    int64_t backoff_until_us;
    int64_t last_decrease_us;
    int64_t retry_max_ms;
    double rpm, tpm;             /* budgets per minute, 0 = none */
    double req_level, tok_level; /* token bucket levels */
    int64_t refill_us;
    uint64_t rng;
    rf_embed_stats_t st; /* counters; concurrency fields filled on read */
} rf__embed_gov_t;

void rf__embed_gov_init(rf__embed_gov_t *g, const rf_conf_t *cfg);
void rf__embed_gov_fini(rf__embed_gov_t *g);
/* May a request estimated at est_tokens start now?  Returns 0 and counts it in flight
 * (and charges the budgets) when it may; otherwise the microseconds to wait before asking
 * again.  `own_in_flight` is the caller's own count checked against the AIMD limit, or -1
 * for a query, which only honours backoff and budgets. */
int64_t rf__embed_gov_admit(rf__embed_gov_t *g, int64_t now_us, int own_in_flight,
                            int64_t est_tokens);
/* Records how a request admitted at started_us ended.  tokens is what the endpoint
 * reported (0: unknown, the estimate stands).  Transient outcomes set the backoff. */
void rf__embed_gov_done(rf__embed_gov_t *g, int64_t now_us, int64_t started_us,
                        rf__embed_outcome oc, int64_t retry_after_ms, int64_t est_tokens,
                        int64_t tokens);
/* Current AIMD limit. */
int rf__embed_gov_limit(rf__embed_gov_t *g);
/* Adds to the counters texts / deduped / failed / retries. */
void rf__embed_gov_count(rf__embed_gov_t *g, uint64_t texts, uint64_t deduped, uint64_t failed,
                         uint64_t retries);

/* ==== Providers (embed_openai.c, embed_ollama.c, embed_tei.c) ==== */

typedef struct rf__embed_prov {
    const char *name;
    /* Appends the request body for texts[0..n) to body. */
    rf_rc (*build)(const rf_embed_t *e, const rf_slice_t *texts, size_t n, rf_buf_t *body);
    /* Reads a 2xx body: for each i < n fills vecs[i*dim..] or sets why[i] (a wrong
     * dimension).  *tokens gets the endpoint's usage count when it reports one.
     * RF_EPARSE (message in msg) when the body does not have the expected shape. */
    rf_rc (*parse)(const rf_embed_t *e, const json_t *root, size_t n, float *vecs, char (*why)[128],
                   int64_t *tokens, char *msg, size_t cap);
} rf__embed_prov_t;

extern const rf__embed_prov_t rf__embed_openai;
extern const rf__embed_prov_t rf__embed_ollama;
extern const rf__embed_prov_t rf__embed_tei;

/* ==== The client ==== */

#define RF__EMBED_POOL_MAX 8

struct rf_embed {
    const rf_conf_t *cfg;
    int dim;
    char *model_id;
    const rf__embed_prov_t *prov; /* NULL for hash */
    struct curl_slist *hdrs;      /* embedding requests */
    struct curl_slist *chat_hdrs; /* classification requests */
    CURLM *multi;
    rf__embed_gov_t gov;
    int healthy; /* some embedding request has succeeded */

    pthread_mutex_t pool_mu; /* query requests kept for their connections */
    rf__embed_req_t *pool[RF__EMBED_POOL_MAX];
    int pool_n;

    rf__embed_req_t **reqs; /* rf_embed_run's requests, embed.concurrency of them */
    int nreqs;

    /* classification */
    char **labels; /* one allocation, rf_conf_list_split */
    size_t nlabels;
    char **descs; /* one allocation, nlabels entries */
    float *label_vecs;
    int label_vecs_ready;
};

/* Response size limit for an embedding response of n texts. */
size_t rf__embed_resp_max(const rf_embed_t *e, size_t n);
/* Drives the requests in reqs[0..n) that were added to e->multi until one finishes or
 * timeout_ms passes; returns the finished request or NULL. */
rf__embed_req_t *rf__embed_multi_next(rf_embed_t *e, int64_t timeout_ms);

#endif /* RF_EMBED_INT_H */
