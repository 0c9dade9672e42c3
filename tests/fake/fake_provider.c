/* fake_provider.c - a stand-in embedding and chat server for tests and benchmarks.
 *
 * Speaks the OpenAI (POST /v1/embeddings, /v1/chat/completions), Ollama (POST /api/embed)
 * and text-embeddings-inference (POST /embed) wire formats, including their error bodies.
 * Vectors are rf_embed_hash(text) so results can be checked exactly.  Faults are injected
 * on command through POST /_control and counts are read from GET /_stats, so tests can
 * prove DESIGN.md invariant 5 (transient faults never lose or dead-letter anything).
 *
 * Usage: fake_provider [--port N] [--dim D] [--latency-ms L] [--watch-stdin]
 * The first stdout line is `listening=127.0.0.1:PORT`.  With --watch-stdin it exits when
 * its standard input closes (so it dies with the test that started it).
 */
#include "embed/embed.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MAX_BODY ((size_t)64 << 20)

enum { P_OPENAI, P_OLLAMA, P_TEI, P_CHAT };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    /* counted faults: taken one per embedding/chat request while count != 0 */
    char fault[16];
    long count;       /* -1: forever */
    long retry_after; /* seconds for Retry-After on 429/503, -1: none */
    long slow_ms;     /* how long a "slow" request sleeps */
    long latency_ms;  /* every request sleeps this long */
    int dim;
    /* per-text faults, persistent while set */
    char reject[64];   /* 400 when a text contains this */
    char wrongdim[64]; /* a vector one element too long for texts containing this */
    char nan[64];      /* a NaN in the vector of texts containing this */
    char key[64];      /* when set, requests need `Authorization: Bearer KEY` or `api-key` */
    /* stats */
    long calls, ok_calls, texts, max_batch, max_chars, in_flight, max_in_flight, chat_calls, faults,
        rejects;
} st = {"", 0, -1, 3000, 0, 64, "", "", "", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

typedef struct conn {
    rf_buf_t body;
    int counted;
} conn_t;

static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    if (!k || k > n)
        return 0;
    for (size_t i = 0; i + k <= n; i++)
        if (!memcmp(s + i, needle, k))
            return 1;
    return 0;
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, const char *body,
                                 size_t len, long retry_after)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    MHD_add_response_header(r, "Content-Type", "application/json");
    if (retry_after >= 0) {
        char v[32];
        snprintf(v, sizeof(v), "%ld", retry_after);
        MHD_add_response_header(r, "Retry-After", v);
    }
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The provider's own error body. */
static enum MHD_Result send_error(struct MHD_Connection *c, int prov, unsigned status,
                                  const char *msg, long retry_after)
{
    char buf[512];
    const char *type = status == 429   ? "rate_limit_exceeded"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    if (prov == P_OPENAI || prov == P_CHAT)
        snprintf(buf, sizeof(buf),
                 "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                 msg, type);
    else if (prov == P_OLLAMA)
        snprintf(buf, sizeof(buf), "{\"error\":\"%s\"}", msg);
    else
        snprintf(buf, sizeof(buf), "{\"error\":\"%s\",\"error_type\":\"%s\"}", msg,
                 status == 429   ? "Overloaded"
                 : status == 503 ? "Unhealthy"
                 : status == 413 ? "Validation"
                 : status >= 500 ? "Backend"
                                 : "Empty");
    return send_text(c, status, buf, strlen(buf), retry_after);
}

static void put_vec(rf_buf_t *out, int prov, int b64, const float *v, int n)
{
    if (b64) {
        size_t blen = sodium_base64_ENCODED_LEN((size_t)n * 4, sodium_base64_VARIANT_ORIGINAL);
        unsigned char *raw = rf_xmalloc((size_t)n * 4);
        char *enc = rf_xmalloc(blen);
        for (int i = 0; i < n; i++) {
            uint32_t u;
            memcpy(&u, &v[i], 4);
            raw[4 * i] = (unsigned char)u;
            raw[4 * i + 1] = (unsigned char)(u >> 8);
            raw[4 * i + 2] = (unsigned char)(u >> 16);
            raw[4 * i + 3] = (unsigned char)(u >> 24);
        }
        sodium_bin2base64(enc, blen, raw, (size_t)n * 4, sodium_base64_VARIANT_ORIGINAL);
        rf_buf_printf(out, "\"%s\"", enc);
        free(raw);
        free(enc);
        return;
    }
    rf_buf_puts(out, "[");
    for (int i = 0; i < n; i++) {
        if (v[i] != v[i])
            /* Python servers print NaN; serde (TEI) prints null. */
            rf_buf_printf(out, "%s%s", i ? "," : "", prov == P_TEI ? "null" : "NaN");
        else
            rf_buf_printf(out, "%s%.9g", i ? "," : "", (double)v[i]);
    }
    rf_buf_puts(out, "]");
}

/* Takes one counted fault; returns its name or "". */
static void take_fault(char *out, size_t cap, long *retry_after, long *slow_ms)
{
    pthread_mutex_lock(&mu);
    out[0] = '\0';
    if (st.fault[0] && st.count != 0) {
        snprintf(out, cap, "%s", st.fault);
        if (st.count > 0)
            st.count--;
        st.faults++;
    }
    *retry_after = st.retry_after;
    *slow_ms = st.slow_ms;
    pthread_mutex_unlock(&mu);
}

static const char *pick_label(const char *text, size_t len, json_t *labels, char *buf, size_t cap)
{
    size_t i;
    json_t *l;
    const char *m = NULL;
    for (size_t k = 0; k + 6 <= len; k++)
        if (!memcmp(text + k, "label:", 6)) {
            size_t e = k + 6;
            while (e < len && text[e] != ' ' && text[e] != ',' && text[e] != '.')
                e++;
            snprintf(buf, cap, "%.*s", (int)(e - k - 6), text + k + 6);
            return buf;
        }
    json_array_foreach(labels, i, l)
    {
        const char *name = json_string_value(l);
        size_t nl = name ? strlen(name) : 0;
        for (size_t k = 0; nl && k + nl <= len && !m; k++)
            if (!strncasecmp(text + k, name, nl))
                m = name;
        if (m)
            return m;
    }
    return json_string_value(json_array_get(labels, 0));
}

static enum MHD_Result chat(struct MHD_Connection *c, json_t *req, const char *fault)
{
    json_t *msgs = json_object_get(req, "messages"), *user, *texts, *labels, *t, *resp;
    rf_buf_t out;
    size_t i;
    char *content, *body;
    enum MHD_Result ret;
    user =
        json_loads(json_string_value(json_object_get(json_array_get(msgs, 1), "content")), 0, NULL);
    texts = json_object_get(user, "texts");
    labels = json_object_get(user, "labels");
    if (!json_is_array(texts) || !json_is_array(labels) ||
        !json_is_object(json_object_get(req, "response_format"))) {
        json_decref(user);
        return send_error(c, P_CHAT, 400, "expected labels, texts and response_format", -1);
    }
    rf_buf_init(&out, 0);
    rf_buf_puts(&out, "{\"results\":[");
    json_array_foreach(texts, i, t)
    {
        const char *tx = json_string_value(json_object_get(t, "text"));
        char lb[64];
        const char *label = pick_label(tx ? tx : "", tx ? strlen(tx) : 0, labels, lb, sizeof(lb));
        json_t *one = json_pack("{s:I,s:s,s:f}", "id",
                                (json_int_t)json_integer_value(json_object_get(t, "id")), "label",
                                !strcmp(fault, "badlabel") ? "not-a-label" : label, "score", 0.9);
        char *s = json_dumps(one, JSON_COMPACT);
        rf_buf_printf(&out, "%s%s", i ? "," : "", s);
        free(s);
        json_decref(one);
    }
    rf_buf_puts(&out, "]}");
    content = rf_buf_take(&out, NULL);
    if (!strcmp(fault, "badjson"))
        content[strlen(content) / 2] = '\0';
    resp = json_pack("{s:s,s:s,s:[{s:i,s:{s:s,s:s},s:s}],s:{s:i,s:i,s:i}}", "id", "chatcmpl-fake",
                     "object", "chat.completion", "choices", "index", 0, "message", "role",
                     "assistant", "content", content, "finish_reason", "stop", "usage",
                     "prompt_tokens", 10, "completion_tokens", 10, "total_tokens", 20);
    body = json_dumps(resp, JSON_COMPACT);
    ret = send_text(c, 200, body, strlen(body), -1);
    free(body);
    free(content);
    json_decref(resp);
    json_decref(user);
    return ret;
}

static enum MHD_Result embed(struct MHD_Connection *c, int prov, json_t *req, const char *fault)
{
    json_t *in = json_object_get(req, prov == P_TEI ? "inputs" : "input"), *one = NULL;
    size_t n, chars = 0;
    int dim, b64 = 0;
    rf_buf_t out;
    float *v;
    enum MHD_Result ret;
    char reject[64], wrongdim[64], nan[64];
    if (json_is_string(in)) {
        one = json_pack("[O]", in);
        in = one;
    }
    if (!json_is_array(in) || json_array_size(in) == 0) {
        json_decref(one);
        return send_error(c, prov, 400, "input must be a non-empty array", -1);
    }
    if (prov == P_OPENAI && !json_is_string(json_object_get(req, "model"))) {
        json_decref(one);
        return send_error(c, prov, 400, "you must provide a model parameter", -1);
    }
    if (prov != P_OPENAI && !json_is_boolean(json_object_get(req, "truncate"))) {
        json_decref(one);
        return send_error(c, prov, 400, "truncate must be sent explicitly", -1);
    }
    n = json_array_size(in);
    pthread_mutex_lock(&mu);
    dim = st.dim;
    memcpy(reject, st.reject, sizeof(reject));
    memcpy(wrongdim, st.wrongdim, sizeof(wrongdim));
    memcpy(nan, st.nan, sizeof(nan));
    pthread_mutex_unlock(&mu);
    if (prov == P_OPENAI) {
        json_t *d = json_object_get(req, "dimensions");
        const char *ef = json_string_value(json_object_get(req, "encoding_format"));
        if (json_is_integer(d))
            dim = (int)json_integer_value(d);
        b64 = ef && !strcmp(ef, "base64");
    }
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(in, i));
        size_t tl = json_string_length(json_array_get(in, i));
        if (!t) {
            json_decref(one);
            return send_error(c, prov, 400, "input must be strings", -1);
        }
        chars += tl;
        if (contains(t, tl, reject)) {
            json_decref(one);
            pthread_mutex_lock(&mu);
            st.rejects++;
            pthread_mutex_unlock(&mu);
            return send_error(c, prov, prov == P_TEI ? 413 : 400,
                              "Input validation error: input is too long for the model", -1);
        }
    }
    pthread_mutex_lock(&mu);
    st.ok_calls++;
    st.texts += (long)n;
    if ((long)n > st.max_batch)
        st.max_batch = (long)n;
    if ((long)chars > st.max_chars)
        st.max_chars = (long)chars;
    pthread_mutex_unlock(&mu);

    rf_buf_init(&out, 0);
    v = rf_xmalloc(((size_t)dim + 1) * sizeof(float));
    if (prov == P_OPENAI)
        rf_buf_puts(&out, "{\"object\":\"list\",\"data\":[");
    else if (prov == P_OLLAMA)
        rf_buf_puts(&out, "{\"model\":\"fake\",\"embeddings\":[");
    else
        rf_buf_puts(&out, "[");
    for (size_t i = 0; i < n; i++) {
        const char *t = json_string_value(json_array_get(in, i));
        size_t tl = json_string_length(json_array_get(in, i));
        int d = dim;
        rf_embed_hash(t, tl, dim, v);
        if (contains(t, tl, wrongdim))
            v[d++] = 0.5f;
        if (contains(t, tl, nan))
            v[0] = NAN;
        if (i)
            rf_buf_puts(&out, ",");
        if (prov == P_OPENAI)
            rf_buf_printf(&out, "{\"object\":\"embedding\",\"index\":%zu,\"embedding\":", i);
        put_vec(&out, prov, b64, v, d);
        if (prov == P_OPENAI)
            rf_buf_puts(&out, "}");
    }
    if (prov == P_OPENAI)
        rf_buf_printf(
            &out, "],\"model\":\"fake\",\"usage\":{\"prompt_tokens\":%zu,\"total_tokens\":%zu}}",
            chars / 4 + 1, chars / 4 + 1);
    else if (prov == P_OLLAMA)
        rf_buf_printf(&out, "],\"prompt_eval_count\":%zu}", chars / 4 + 1);
    else
        rf_buf_puts(&out, "]");
    if (!strcmp(fault, "malformed"))
        out.len = out.len / 2; /* cut mid-document */
    ret = send_text(c, 200, out.ptr, out.len, -1);
    rf_buf_fini(&out);
    free(v);
    json_decref(one);
    return ret;
}

static enum MHD_Result control(struct MHD_Connection *c, const char *body, size_t len)
{
    json_t *req = json_loadb(body, len, 0, NULL);
    const char *s;
    if (!json_is_object(req)) {
        json_decref(req);
        return send_text(c, 400, "{\"error\":\"bad json\"}", 20, -1);
    }
    pthread_mutex_lock(&mu);
    if ((s = json_string_value(json_object_get(req, "fault")))) {
        snprintf(st.fault, sizeof(st.fault), "%s", !strcmp(s, "none") ? "" : s);
        st.count = json_is_integer(json_object_get(req, "count"))
                       ? (long)json_integer_value(json_object_get(req, "count"))
                       : 1;
        st.retry_after = json_is_integer(json_object_get(req, "retry_after"))
                             ? (long)json_integer_value(json_object_get(req, "retry_after"))
                             : -1;
    }
    if (json_is_integer(json_object_get(req, "slow_ms")))
        st.slow_ms = (long)json_integer_value(json_object_get(req, "slow_ms"));
    if (json_is_integer(json_object_get(req, "latency_ms")))
        st.latency_ms = (long)json_integer_value(json_object_get(req, "latency_ms"));
    if (json_is_integer(json_object_get(req, "dim")))
        st.dim = (int)json_integer_value(json_object_get(req, "dim"));
    if ((s = json_string_value(json_object_get(req, "reject"))))
        snprintf(st.reject, sizeof(st.reject), "%s", s);
    if ((s = json_string_value(json_object_get(req, "wrongdim"))))
        snprintf(st.wrongdim, sizeof(st.wrongdim), "%s", s);
    if ((s = json_string_value(json_object_get(req, "key"))))
        snprintf(st.key, sizeof(st.key), "%s", s);
    if ((s = json_string_value(json_object_get(req, "nan"))))
        snprintf(st.nan, sizeof(st.nan), "%s", s);
    if (json_is_true(json_object_get(req, "reset"))) {
        st.calls = st.ok_calls = st.texts = st.max_batch = st.max_chars = 0;
        st.max_in_flight = st.chat_calls = st.faults = st.rejects = 0;
    }
    pthread_mutex_unlock(&mu);
    json_decref(req);
    return send_text(c, 200, "{\"ok\":true}", 11, -1);
}

static enum MHD_Result stats(struct MHD_Connection *c)
{
    char buf[512];
    int n;
    pthread_mutex_lock(&mu);
    n = snprintf(buf, sizeof(buf),
                 "{\"calls\":%ld,\"ok_calls\":%ld,\"texts\":%ld,\"max_batch\":%ld,"
                 "\"max_chars\":%ld,\"in_flight\":%ld,\"max_in_flight\":%ld,\"chat_calls\":%ld,"
                 "\"faults\":%ld,\"faults_left\":%ld,\"rejects\":%ld}",
                 st.calls, st.ok_calls, st.texts, st.max_batch, st.max_chars, st.in_flight,
                 st.max_in_flight, st.chat_calls, st.faults, st.count, st.rejects);
    pthread_mutex_unlock(&mu);
    return send_text(c, 200, buf, (size_t)n, -1);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_size, void **con_cls)
{
    conn_t *cn = *con_cls;
    json_t *req;
    enum MHD_Result ret;
    int prov;
    char fault[16];
    long retry_after, slow_ms, latency;
    (void)cls;
    (void)version;
    if (!cn) {
        cn = rf_xcalloc(1, sizeof(*cn));
        rf_buf_init(&cn->body, MAX_BODY);
        *con_cls = cn;
        if (strncmp(url, "/_", 2)) {
            pthread_mutex_lock(&mu);
            cn->counted = 1;
            if (++st.in_flight > st.max_in_flight)
                st.max_in_flight = st.in_flight;
            pthread_mutex_unlock(&mu);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        if (rf_buf_append(&cn->body, upload, *upload_size))
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (!strcmp(method, "GET") && !strcmp(url, "/_stats"))
        return stats(c);
    if (strcmp(method, "POST"))
        return send_text(c, 405, "{\"error\":\"method\"}", 18, -1);
    if (!strcmp(url, "/_control"))
        return control(c, cn->body.ptr ? cn->body.ptr : "", cn->body.len);
    if (!strcmp(url, "/v1/embeddings"))
        prov = P_OPENAI;
    else if (!strcmp(url, "/api/embed"))
        prov = P_OLLAMA;
    else if (!strcmp(url, "/embed"))
        prov = P_TEI;
    else if (!strcmp(url, "/v1/chat/completions"))
        prov = P_CHAT;
    else
        return send_text(c, 404, "{\"error\":\"not found\"}", 21, -1);

    {
        char key[64], bearer[80];
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        const char *apikey = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "api-key");
        pthread_mutex_lock(&mu);
        memcpy(key, st.key, sizeof(key));
        pthread_mutex_unlock(&mu);
        snprintf(bearer, sizeof(bearer), "Bearer %s", key);
        if (key[0] && !(auth && !strcmp(auth, bearer)) && !(apikey && !strcmp(apikey, key)))
            return send_error(c, prov, 401, "Incorrect API key provided", -1);
    }
    pthread_mutex_lock(&mu);
    st.calls++;
    if (prov == P_CHAT)
        st.chat_calls++;
    latency = st.latency_ms;
    pthread_mutex_unlock(&mu);
    if (latency > 0)
        usleep((useconds_t)latency * 1000);
    take_fault(fault, sizeof(fault), &retry_after, &slow_ms);
    if (!strcmp(fault, "drop"))
        return MHD_NO; /* closes the connection without a response */
    if (!strcmp(fault, "429"))
        return send_error(c, prov, 429, "Rate limit reached, retry later", retry_after);
    if (!strcmp(fault, "503"))
        return send_error(c, prov, 503, "Model is loading", retry_after);
    if (!strcmp(fault, "500"))
        return send_error(c, prov, 500, "The server had an error", -1);
    if (!strcmp(fault, "slow"))
        usleep((useconds_t)slow_ms * 1000);
    req = json_loadb(cn->body.ptr ? cn->body.ptr : "", cn->body.len, 0, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        return send_error(c, prov, prov == P_TEI ? 422 : 400, "could not parse the JSON body", -1);
    }
    ret = prov == P_CHAT ? chat(c, req, fault) : embed(c, prov, req, fault);
    json_decref(req);
    return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    conn_t *cn = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (!cn)
        return;
    if (cn->counted) {
        pthread_mutex_lock(&mu);
        st.in_flight--;
        pthread_mutex_unlock(&mu);
    }
    rf_buf_fini(&cn->body);
    free(cn);
    *con_cls = NULL;
}

static void *watch_stdin(void *arg)
{
    char buf[256];
    (void)arg;
    while (read(0, buf, sizeof(buf)) > 0)
        ;
    kill(getpid(), SIGTERM);
    return NULL;
}

int main(int argc, char **argv)
{
    long port = 0;
    int watch = 0, sig;
    sigset_t set;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    pthread_t th;
    struct sockaddr_in sa;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
            st.dim = (int)strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--latency-ms") && i + 1 < argc)
            st.latency_ms = strtol(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--watch-stdin"))
            watch = 1;
        else {
            fprintf(stderr, "usage: fake_provider [--port N] [--dim D] [--latency-ms L] "
                            "[--watch-stdin]\n");
            return 2;
        }
    }
    if (sodium_init() < 0)
        return 1;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* Loopback only: tests never listen beyond this machine. */
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                             MHD_USE_ERROR_LOG,
                         (uint16_t)port, NULL, NULL, handler, NULL, MHD_OPTION_NOTIFY_COMPLETED,
                         completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "fake_provider: cannot listen on port %ld\n", port);
        return 1;
    }
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("listening=127.0.0.1:%u\n", (unsigned)info->port);
    fflush(stdout);
    if (watch)
        pthread_create(&th, NULL, watch_stdin, NULL);
    sigwait(&set, &sig);
    /* Connection threads may be sleeping in injected latency; do not wait for them. */
    _exit(0);
}
