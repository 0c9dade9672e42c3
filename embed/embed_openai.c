/* embed_openai.c - the OpenAI embeddings wire format (`embed.provider = openai`), spoken by
 * OpenAI, Azure OpenAI, vLLM, LiteLLM, LocalAI and others:
 * POST {"model","input":[...],"encoding_format":"base64"|"float","dimensions"?} ->
 * {"data":[{"index","embedding"}],"usage":{"prompt_tokens","total_tokens"}}.
 * A base64 embedding is the little-endian float32 array; float arrays are accepted too,
 * whatever was asked, since some compatible servers ignore encoding_format.
 */
#include "embed_int.h"

#include <string.h>

static rf_rc build(const rf_embed_t *e, const rf_slice_t *texts, size_t n, rf_buf_t *body)
{
    const rf_conf_t *cfg = e->cfg;
    rf_rc rc = rf_buf_puts(body, "{\"model\":");
    if (!rc)
        rc = rf__embed_json_str(body, cfg->embed_model, strlen(cfg->embed_model));
    if (!rc)
        rc = rf_buf_puts(body, ",\"input\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = rf_buf_append(body, ",", 1);
        if (!rc)
            rc = rf__embed_json_str(body, (const char *)texts[i].ptr, texts[i].len);
    }
    if (!rc)
        rc = rf_buf_printf(body, "],\"encoding_format\":\"%s\"",
                           cfg->embed_encoding == RF_EMBED_ENCODING_BASE64 ? "base64" : "float");
    if (!rc && cfg->embed_dimensions_param)
        rc = rf_buf_printf(body, ",\"dimensions\":%d", e->dim);
    if (!rc)
        rc = rf_buf_puts(body, "}");
    return rc;
}

/* Standard base64 (RFC 4648, padded) to bytes; returns the byte count or -1.  A table
 * decoder: this runs over every vector of every response, and libsodium's constant-time
 * decoder costs several times more for data that is not secret. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    static signed char tab[256];
    static int ready;
    size_t o = 0;
    if (!ready) {
        const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        memset(tab, -1, sizeof(tab));
        for (int i = 0; i < 64; i++)
            tab[(unsigned char)abc[i]] = (signed char)i;
        ready = 1; /* idempotent: racing threads write the same table */
    }
    if (len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4) {
        int a = tab[(unsigned char)in[i]], b = tab[(unsigned char)in[i + 1]];
        int c = tab[(unsigned char)in[i + 2]], d = tab[(unsigned char)in[i + 3]];
        int last = i + 4 == len;
        if (a < 0 || b < 0)
            return -1;
        if (last && in[i + 2] == '=' && in[i + 3] == '=') {
            if (o + 1 > cap)
                return -1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
            break;
        }
        if (last && in[i + 3] == '=') {
            if (c < 0 || o + 2 > cap)
                return -1;
            out[o++] = (unsigned char)(a << 2 | b >> 4);
            out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
            break;
        }
        if (c < 0 || d < 0 || o + 3 > cap)
            return -1;
        out[o++] = (unsigned char)(a << 2 | b >> 4);
        out[o++] = (unsigned char)((b & 15) << 4 | c >> 2);
        out[o++] = (unsigned char)((c & 3) << 6 | d);
    }
    return (long)o;
}

/* Decodes a base64 little-endian float32 array into out[dim]. */
static int vec_from_base64(const char *b64, size_t len, int dim, float *out, char *why, size_t cap)
{
    size_t need = (size_t)dim * 4, rawcap = len / 4 * 3;
    unsigned char *raw = rf_xmalloc(rawcap ? rawcap : 1);
    long got = b64_decode(b64, len, raw, rawcap);
    int ok = 0;
    if (got < 0) {
        snprintf(why, cap, "embedding is not valid base64");
        goto out;
    }
    if ((size_t)got != need) {
        snprintf(why, cap, "the endpoint returned %ld dimensions, expected embed.dim=%d", got / 4,
                 dim);
        goto out;
    }
    for (int i = 0; i < dim; i++) {
        const unsigned char *p = raw + 4 * (size_t)i;
        uint32_t u =
            (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        memcpy(&out[i], &u, 4);
    }
    ok = 1;
out:
    free(raw);
    return ok;
}

static rf_rc parse(const rf_embed_t *e, const json_t *root, size_t n, float *vecs, char (*why)[128],
                   int64_t *tokens, char *msg, size_t cap)
{
    const json_t *data = json_object_get(root, "data"), *usage, *el;
    unsigned char *seen = NULL;
    size_t i;
    rf_rc rc = RF_EPARSE;
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(msg, cap, "expected \"data\" with %zu embeddings, got %zu", n,
                 json_is_array(data) ? json_array_size(data) : 0);
        return RF_EPARSE;
    }
    seen = rf_xcalloc(n, 1);
    json_array_foreach(data, i, el)
    {
        const json_t *idx = json_object_get(el, "index"), *emb = json_object_get(el, "embedding");
        size_t k = i;
        if (idx) {
            if (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
                (size_t)json_integer_value(idx) >= n) {
                snprintf(msg, cap, "data[%zu].index is not an index below %zu", i, n);
                goto out;
            }
            k = (size_t)json_integer_value(idx);
        }
        if (seen[k]) {
            snprintf(msg, cap, "index %zu appears twice in \"data\"", k);
            goto out;
        }
        seen[k] = 1;
        if (json_is_string(emb)) {
            if (!vec_from_base64(json_string_value(emb), json_string_length(emb), e->dim,
                                 vecs + k * (size_t)e->dim, why[k], sizeof(why[k])))
                continue;
        } else {
            rf__embed_vec_from_json(emb, e->dim, vecs + k * (size_t)e->dim, why[k], sizeof(why[k]));
        }
    }
    usage = json_object_get(root, "usage");
    if (json_is_integer(json_object_get(usage, "total_tokens")))
        *tokens = json_integer_value(json_object_get(usage, "total_tokens"));
    else if (json_is_integer(json_object_get(usage, "prompt_tokens")))
        *tokens = json_integer_value(json_object_get(usage, "prompt_tokens"));
    rc = RF_OK;
out:
    free(seen);
    return rc;
}

const rf__embed_prov_t rf__embed_openai = {"openai", build, parse};
