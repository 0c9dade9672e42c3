/* serve_testlib.c - the fixture and HTTP calls of serve/'s tests (see serve_testlib.h).
 */
#include "serve_testlib.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "rf_test.h"

rf_rc fx_embed_letter(void *opaque, int64_t gen, const char *text, size_t len, float *out, int dim,
                      rf_err_t *err)
{
    int c;
    (void)opaque;
    (void)gen;
    if (dim != DIM)
        return rf_err_set(err, RF_EAGAIN, "test embedder: dim %d", dim);
    memset(out, 0, sizeof(float) * DIM);
    if (len && text[0] == '!')
        return rf_err_set(err, RF_EUNAVAIL, "test embedder: endpoint down");
    if (len && text[0] == '?')
        return rf_err_set(err, RF_EEMBED, "test embedder: refused");
    c = len ? tolower((unsigned char)text[0]) - 'a' : 0;
    if (c < 0)
        c = 0;
    out[c % DIM] = 1.0f;
    return RF_OK;
}

static void fill(fx_t *fx)
{
    static const float v1[DIM] = {1, 0, 0, 0}, v2[DIM] = {0.8f, 0.6f, 0, 0}, v3[DIM] = {0, 1, 0, 0},
                       v4[DIM] = {0, 0, 1, 0};
    int64_t now = rf_now_ms();
    rf_index_op_t ops[4];
    rf_index_offset_t off = {"t", 0, 4};
    rf_index_batch_t batch;
    rf_err_t err;

    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 4; i++) {
        ops[i].kind = RF_INDEX_UPSERT;
        ops[i].source = "t.docs";
        ops[i].model = "test";
        ops[i].topic = "t";
        ops[i].partition = 0;
        ops[i].offset = i;
        ops[i].event_time_ms = now - 1000 + i;
    }
    ops[0].id = "t.docs:1";
    ops[0].text = "apple";
    ops[0].vec = v1;
    ops[0].metadata_json = "{\"color\":\"red\"}";
    ops[0].tenant = "acme";
    ops[0].label = "fruit";
    ops[1].id = "t.docs:2";
    ops[1].text = "apricot banana";
    ops[1].vec = v2;
    ops[2].id = "t.docs:3";
    ops[2].text = "banana";
    ops[2].vec = v3;
    ops[3].id = "t.docs:4/x y";
    ops[3].text = "cherry";
    ops[3].vec = v4;
    memset(&batch, 0, sizeof(batch));
    batch.ops = ops;
    batch.op_cnt = 4;
    batch.offsets = &off;
    batch.offset_cnt = 1;
    if (rf_index_apply(fx->ix, &batch, &fx->seq, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_index_apply: %s", err.msg);
    RF_REQUIRE(fx->seq > 0);
}

void fx_open(fx_t *fx)
{
    rf_index_opts_t iopts;
    rf_err_t err;

    memset(fx, 0, sizeof(*fx));
    pthread_mutex_init(&fx->lock, NULL);
    fx->counters.last_error_lock = &fx->lock;
    fx->dir = rf_test_tmpdir("serve");
    RF_REQUIRE(fx->dir);
    memset(&iopts, 0, sizeof(iopts));
    iopts.dir = fx->dir;
    iopts.dim = DIM;
    if (rf_index_open(&iopts, &fx->ix, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_index_open: %s", err.msg);
    RF_REQUIRE(fx->ix);
    fill(fx);
}

rf_serve_opts_t fx_opts(fx_t *fx, int threads)
{
    rf_serve_opts_t o;
    memset(&o, 0, sizeof(o));
    o.listen = "127.0.0.1:0";
    o.threads = threads;
    o.max_body = 65536;
    o.max_k = MAX_K;
    o.dim = DIM;
    o.ix = fx->ix;
    o.embed = fx_embed_letter;
    o.counters = &fx->counters;
    return o;
}

void fx_serve(fx_t *fx, const rf_serve_opts_t *o)
{
    rf_err_t err;
    rf_err_clear(&err);
    if (rf_serve_start(o, &fx->srv, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_serve_start: %s", err.msg);
    RF_REQUIRE(fx->srv);
    fx->port = rf_serve_port(fx->srv);
    RF_REQUIRE(fx->port > 0);
    fx->curl = curl_easy_init();
    RF_REQUIRE(fx->curl);
}

void fx_start(fx_t *fx, size_t max_body, int with_counters, int threads)
{
    rf_serve_opts_t o;
    fx_open(fx);
    o = fx_opts(fx, threads);
    o.max_body = max_body;
    o.counters = with_counters ? &fx->counters : NULL;
    fx_serve(fx, &o);
}

void fx_stop(fx_t *fx)
{
    if (fx->curl)
        curl_easy_cleanup(fx->curl);
    rf_serve_stop(fx->srv);
    rf_index_close(fx->ix);
    if (fx->dir)
        rf_test_rmtree(fx->dir);
    free(fx->dir);
    pthread_mutex_destroy(&fx->lock);
    memset(fx, 0, sizeof(*fx));
}

void fx_upsert(fx_t *fx, const char *id, const char *text, const float *vec, const char *tenant,
               const char *label, const char *meta, int64_t event_time_ms, const char *topic,
               int32_t partition, int64_t offset)
{
    rf_index_op_t op;
    rf_index_offset_t off;
    rf_index_batch_t batch;
    rf_err_t err;

    memset(&op, 0, sizeof(op));
    op.kind = RF_INDEX_UPSERT;
    op.id = id;
    op.source = "t.docs";
    op.text = text;
    op.vec = vec;
    op.tenant = tenant;
    op.label = label;
    op.metadata_json = meta;
    op.model = "test";
    op.event_time_ms = event_time_ms;
    op.topic = topic;
    op.partition = partition;
    op.offset = offset;
    off.topic = topic;
    off.partition = partition;
    off.next_offset = offset + 1;
    memset(&batch, 0, sizeof(batch));
    batch.ops = &op;
    batch.op_cnt = 1;
    batch.offsets = &off;
    batch.offset_cnt = 1;
    if (rf_index_apply(fx->ix, &batch, &fx->seq, &err) != RF_OK)
        rf__test_fail(__FILE__, __LINE__, "rf_index_apply: %s", err.msg);
}

/* ==== HTTP ==== */

typedef struct upload {
    const char *p;
    size_t left;
} upload_t;

size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    rf_buf_append(ud, p, sz * n);
    return sz * n;
}

static size_t on_upload(char *p, size_t sz, size_t n, void *ud)
{
    upload_t *u = ud;
    size_t len = sz * n < u->left ? sz * n : u->left;
    memcpy(p, u->p, len);
    u->p += len;
    u->left -= len;
    return len;
}

void resp_fini(resp_t *r)
{
    rf_buf_fini(&r->body);
    rf_buf_fini(&r->headers);
    json_decref(r->json);
    memset(r, 0, sizeof(*r));
}

void http_ex(fx_t *fx, const char *method, const char *path, const char *body, size_t len,
             int chunked, resp_t *r)
{
    char url[512], auth[512];
    struct curl_slist *hdrs = NULL;
    upload_t up = {body, len};
    CURL *c = fx->curl;
    CURLcode cc;

    memset(r, 0, sizeof(*r));
    rf_buf_init(&r->body, 1 << 24);
    rf_buf_init(&r->headers, 1 << 16);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", fx->port, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    if (fx->key) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", fx->key);
        hdrs = curl_slist_append(hdrs, auth);
    }
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
        if (chunked) {
            hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_upload);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
        }
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    cc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (cc != CURLE_OK) {
        rf__test_fail(__FILE__, __LINE__, "%s %s: %s", method, path, curl_easy_strerror(cc));
        return;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->body.len)
        r->json = json_loadb(r->body.ptr, r->body.len, 0, NULL);
}

void http(fx_t *fx, const char *method, const char *path, const char *body, resp_t *r)
{
    http_ex(fx, method, path, body, body ? strlen(body) : 0, 0, r);
}

const char *err_code(const resp_t *r)
{
    const char *s = json_string_value(json_object_get(json_object_get(r->json, "error"), "code"));
    return s ? s : "";
}

const char *err_msg(const resp_t *r)
{
    const char *s =
        json_string_value(json_object_get(json_object_get(r->json, "error"), "message"));
    return s ? s : "";
}

int has_header(const resp_t *r, const char *line)
{
    return r->headers.ptr && strstr(r->headers.ptr, line) != NULL;
}

const char *result_id(const resp_t *r, size_t i)
{
    const char *s = json_string_value(
        json_object_get(json_array_get(json_object_get(r->json, "results"), i), "id"));
    return s ? s : "";
}

size_t result_cnt(const resp_t *r)
{
    return json_array_size(json_object_get(r->json, "results"));
}

double metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p;) {
        if (!strncmp(p, series, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

double metric_wait(fx_t *fx, const char *series, double want)
{
    int64_t deadline = rf_mono_ms() + 10000;
    double v = -1;
    fx_t probe;

    /* A handle of its own: the caller's may be busy in another thread. */
    memset(&probe, 0, sizeof(probe));
    probe.port = fx->port;
    probe.key = fx->key;
    probe.curl = curl_easy_init();
    for (;;) {
        resp_t r;
        http(&probe, "GET", "/metrics", NULL, &r);
        v = r.body.ptr ? metric_value(r.body.ptr, series) : -1;
        resp_fini(&r);
        if (v == want || rf_mono_ms() > deadline)
            break;
        rf_sleep_ms(5);
    }
    curl_easy_cleanup(probe.curl);
    return v;
}
