/* embed_http.c - the HTTP side of the REST providers: request set-up on reusable libcurl
 * easy handles (keep-alive, HTTP/2 when offered, a timeout per request, a bounded
 * response), the event loop step over the one multi handle, and the sorting of every
 * finished exchange into one outcome (embed_int.h), plus the JSON and vector helpers the
 * providers share.
 *
 * Upholds DESIGN.md invariant 5: a transport failure, a 5xx, a 429 or a malformed body is
 * transient and never fails an item; only 400/413/422 and bad vectors can.
 */
#include "embed_int.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

/* Error texts quoted from a response are cut to this many bytes. */
#define ERR_QUOTE_MAX 200

/* ==== JSON helpers ==== */

rf_rc rf__embed_json_str(rf_buf_t *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0;
    rf_rc rc = rf_buf_append(b, "\"", 1);
    for (size_t i = 0; i < len && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[6];
        size_t en = 0;
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            en = 2;
        } else if (c == '\n') {
            memcpy(esc, "\\n", 2);
            en = 2;
        } else if (c == '\t') {
            memcpy(esc, "\\t", 2);
            en = 2;
        } else if (c == '\r') {
            memcpy(esc, "\\r", 2);
            en = 2;
        } else if (c < 0x20) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            en = 6;
        }
        if (!en) {
            run++;
            continue;
        }
        /* Copy the plain run before this character in one go. */
        rc = rf_buf_append(b, s + i - run, run);
        if (!rc)
            rc = rf_buf_append(b, esc, en);
        run = 0;
    }
    if (!rc)
        rc = rf_buf_append(b, s + len - run, run);
    if (!rc)
        rc = rf_buf_append(b, "\"", 1);
    return rc;
}

/* Rewrites bare NaN / Infinity / -Infinity tokens outside strings to null.  Returns a
 * new NUL-terminated text (caller frees with free()) or NULL when there was none. */
static char *nan_to_null(const char *t, size_t len, size_t *out_len)
{
    static const char *const toks[] = {"-Infinity", "Infinity", "NaN"};
    char *out = NULL;
    size_t o = 0;
    int in_str = 0, changed = 0;
    /* "NaN" -> "null" is the only growth: at most one byte per three. */
    out = rf_xmalloc(len + len / 3 + 2);
    for (size_t i = 0; i < len;) {
        char c = t[i];
        if (in_str) {
            out[o++] = c;
            if (c == '\\' && i + 1 < len) {
                out[o++] = t[i + 1];
                i += 2;
                continue;
            }
            if (c == '"')
                in_str = 0;
            i++;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            out[o++] = c;
            i++;
            continue;
        }
        if (c == 'N' || c == 'I' || c == '-') {
            size_t k;
            for (k = 0; k < sizeof(toks) / sizeof(toks[0]); k++) {
                size_t tl = strlen(toks[k]);
                if (i + tl <= len && !memcmp(t + i, toks[k], tl)) {
                    memcpy(out + o, "null", 4);
                    o += 4;
                    i += tl;
                    changed = 1;
                    break;
                }
            }
            if (k < sizeof(toks) / sizeof(toks[0]))
                continue;
        }
        out[o++] = c;
        i++;
    }
    out[o] = '\0';
    if (!changed) {
        free(out);
        return NULL;
    }
    *out_len = o;
    return out;
}

json_t *rf__embed_json_load(const char *text, size_t len, char *msg, size_t cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr);
    if (!root) {
        size_t n2 = 0;
        char *fixed = nan_to_null(text, len, &n2);
        if (fixed) {
            root = json_loadb(fixed, n2, 0, &jerr);
            free(fixed);
        }
    }
    if (!root && msg)
        snprintf(msg, cap, "malformed JSON at byte %d: %s", jerr.position, jerr.text);
    return root;
}

/* ==== Vectors ==== */

int rf__embed_vec_from_json(const json_t *arr, int dim, float *out, char *why, size_t cap)
{
    size_t n;
    if (!json_is_array(arr)) {
        snprintf(why, cap, "embedding is not an array");
        return 0;
    }
    n = json_array_size(arr);
    if (n != (size_t)dim) {
        snprintf(why, cap, "the endpoint returned %zu dimensions, expected embed.dim=%d", n, dim);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(arr, i);
        if (json_is_number(v))
            out[i] = (float)json_number_value(v);
        else if (json_is_null(v))
            out[i] = NAN;
        else {
            snprintf(why, cap, "embedding element %zu is not a number", i);
            return 0;
        }
    }
    return 1;
}

int rf__embed_vec_finish(float *v, int dim, char *why, size_t cap)
{
    double sum = 0;
    for (int i = 0; i < dim; i++) {
        if (!isfinite(v[i])) {
            snprintf(why, cap, "the endpoint returned a vector holding NaN or Inf (element %d)", i);
            return 0;
        }
        sum += (double)v[i] * v[i];
    }
    if (!(sum > 0) || !isfinite(sum)) {
        snprintf(why, cap, "the endpoint returned a zero vector");
        return 0;
    }
    {
        float inv = (float)(1.0 / sqrt(sum));
        for (int i = 0; i < dim; i++)
            v[i] *= inv;
    }
    return 1;
}

size_t rf__embed_resp_max(const rf_embed_t *e, size_t n)
{
    /* A float printed as JSON text takes at most ~25 bytes; allow 32 and room for the
     * envelope, and never more than 512 MiB. */
    size_t m = n * (size_t)e->dim * 32 + 65536;
    return m > ((size_t)512 << 20) ? ((size_t)512 << 20) : m;
}

/* ==== Requests ==== */

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    rf__embed_req_t *r = ud;
    size_t n = size * nmemb;
    if (rf_buf_append(&r->resp, ptr, n)) {
        r->overflow = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

/* Parses a Retry-After value: delta seconds or an HTTP date. */
static int64_t parse_retry_after(const char *v, size_t n)
{
    char tmp[64];
    char *end;
    long long secs;
    time_t when;
    if (n >= sizeof(tmp))
        return -1;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    secs = strtoll(tmp, &end, 10);
    if (end != tmp && *end == '\0' && secs >= 0)
        return secs * 1000;
    when = curl_getdate(tmp, NULL);
    if (when == (time_t)-1)
        return -1;
    {
        int64_t ms = (int64_t)when * 1000 - rf_now_ms();
        return ms > 0 ? ms : 0;
    }
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
    rf__embed_req_t *r = ud;
    size_t n = size * nitems, vlen;
    const char *colon, *v;
    if (n >= 5 && !strncasecmp(buf, "HTTP/", 5)) {
        /* A new response (after a 100 Continue or a redirect): forget the previous one. */
        r->retry_after_ms = -1;
        return n;
    }
    colon = memchr(buf, ':', n);
    if (!colon)
        return n;
    v = colon + 1;
    vlen = n - (size_t)(v - buf);
    while (vlen && isspace((unsigned char)*v)) {
        v++;
        vlen--;
    }
    while (vlen && isspace((unsigned char)v[vlen - 1]))
        vlen--;
    if ((size_t)(colon - buf) == 11 && !strncasecmp(buf, "retry-after", 11)) {
        int64_t ms = parse_retry_after(v, vlen);
        if (ms >= 0 && r->retry_after_ms < 0)
            r->retry_after_ms = ms;
    } else if ((size_t)(colon - buf) == 14 && !strncasecmp(buf, "retry-after-ms", 14)) {
        /* Azure's millisecond form is more precise than Retry-After; prefer it. */
        char tmp[32];
        if (vlen && vlen < sizeof(tmp)) {
            char *end;
            long long ms;
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            ms = strtoll(tmp, &end, 10);
            if (end != tmp && *end == '\0' && ms >= 0)
                r->retry_after_ms = ms;
        }
    }
    return n;
}

rf__embed_req_t *rf__embed_req_new(void)
{
    rf__embed_req_t *r = rf_xcalloc(1, sizeof(*r));
    r->easy = curl_easy_init();
    if (!r->easy) {
        RF_LOG(RF_LOG_ERROR, RF_MOD_EMBED, "curl_easy_init failed");
        abort();
    }
    rf_buf_init(&r->body, 0);
    rf_buf_init(&r->resp, 0);
    r->retry_after_ms = -1;
    return r;
}

void rf__embed_req_free(rf__embed_req_t *r)
{
    if (!r)
        return;
    curl_easy_cleanup(r->easy);
    rf_buf_fini(&r->body);
    rf_buf_fini(&r->resp);
    free(r);
}

void rf__embed_req_prep(rf__embed_req_t *r, const char *url, struct curl_slist *hdrs,
                        int64_t timeout_ms, size_t resp_max)
{
    CURL *c = r->easy;
    rf_buf_reset(&r->resp);
    r->resp.max = resp_max;
    r->status = 0;
    r->retry_after_ms = -1;
    r->cc = CURLE_OK;
    r->errbuf[0] = '\0';
    r->overflow = 0;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, r->body.ptr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(c, CURLOPT_PRIVATE, r);
}

/* Quotes the error text of an error body ({"error":{"message"}}, {"error":"..."},
 * {"message":"..."}) or the start of the raw body. */
static void error_text(const rf__embed_req_t *r, char *out, size_t cap)
{
    json_t *root = json_loadb(r->resp.ptr ? r->resp.ptr : "", r->resp.len, 0, NULL);
    const char *m = NULL;
    if (root) {
        json_t *e = json_object_get(root, "error");
        if (json_is_string(e))
            m = json_string_value(e);
        else if (json_is_object(e) && json_is_string(json_object_get(e, "message")))
            m = json_string_value(json_object_get(e, "message"));
        else if (json_is_string(json_object_get(root, "message")))
            m = json_string_value(json_object_get(root, "message"));
    }
    if (m)
        snprintf(out, cap, "%.*s", ERR_QUOTE_MAX, m);
    else if (r->resp.len)
        snprintf(out, cap, "%.*s", (int)(r->resp.len < 120 ? r->resp.len : 120), r->resp.ptr);
    else
        snprintf(out, cap, "(empty body)");
    json_decref(root);
}

rf__embed_outcome rf__embed_req_outcome(rf__embed_req_t *r, json_t **root, char *msg, size_t cap)
{
    char quote[ERR_QUOTE_MAX + 1];
    long st;
    *root = NULL;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
    r->status = st;
    if (r->overflow) {
        snprintf(msg, cap, "response larger than %zu bytes", r->resp.max);
        return RF__EMBED_TRANSIENT;
    }
    if (r->cc == CURLE_OPERATION_TIMEDOUT) {
        snprintf(msg, cap, "timed out: %s", r->errbuf[0] ? r->errbuf : "no response");
        return RF__EMBED_TIMEOUT;
    }
    if (r->cc != CURLE_OK) {
        snprintf(msg, cap, "%s: %s", curl_easy_strerror(r->cc), r->errbuf);
        return RF__EMBED_TRANSIENT;
    }
    if (st >= 200 && st < 300) {
        char jmsg[160];
        *root =
            rf__embed_json_load(r->resp.ptr ? r->resp.ptr : "", r->resp.len, jmsg, sizeof(jmsg));
        if (!*root) {
            snprintf(msg, cap, "HTTP %ld with %s", st, jmsg);
            return RF__EMBED_TRANSIENT;
        }
        return RF__EMBED_OK;
    }
    error_text(r, quote, sizeof(quote));
    snprintf(msg, cap, "HTTP %ld: %s", st, quote);
    switch (st) {
    case 400:
    case 413:
    case 422:
        return RF__EMBED_INPUT;
    case 429:
    case 503:
        return RF__EMBED_THROTTLED;
    case 401:
    case 403:
        return RF__EMBED_AUTH;
    case 408:
    case 424:
        return RF__EMBED_TRANSIENT;
    default:
        return st >= 500 ? RF__EMBED_TRANSIENT : RF__EMBED_FATAL;
    }
}

/* ==== The event loop step ==== */

rf__embed_req_t *rf__embed_multi_next(rf_embed_t *e, int64_t timeout_ms)
{
    int64_t deadline = rf_mono_ms() + timeout_ms;
    for (;;) {
        int running = 0, left = 0;
        CURLMsg *m;
        int64_t now;
        curl_multi_perform(e->multi, &running);
        while ((m = curl_multi_info_read(e->multi, &left))) {
            rf__embed_req_t *r = NULL;
            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
            r->cc = m->data.result;
            curl_multi_remove_handle(e->multi, m->easy_handle);
            return r;
        }
        now = rf_mono_ms();
        if (now >= deadline)
            return NULL;
        curl_multi_poll(e->multi, NULL, 0, (int)(deadline - now > 1000 ? 1000 : deadline - now),
                        NULL);
    }
}
