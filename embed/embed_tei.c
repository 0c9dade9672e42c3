/* embed_tei.c - the text-embeddings-inference wire format (`embed.provider = tei`):
 * POST /embed {"inputs":[...],"truncate":bool} -> [[...],...]; errors are
 * {"error","error_type"} with 413 (validation: too long, batch too large), 422
 * (tokenizer), 400 (empty), 424 (backend), 429 (overloaded), 503 (unhealthy).
 * The server serves one model, so embed.model is only recorded with the vectors.
 */
#include "embed_int.h"

static rf_rc build(const rf_embed_t *e, const rf_slice_t *texts, size_t n, rf_buf_t *body)
{
    rf_rc rc = rf_buf_puts(body, "{\"inputs\":[");
    for (size_t i = 0; i < n && !rc; i++) {
        if (i)
            rc = rf_buf_append(body, ",", 1);
        if (!rc)
            rc = rf__embed_json_str(body, (const char *)texts[i].ptr, texts[i].len);
    }
    if (!rc)
        rc = rf_buf_printf(body, "],\"truncate\":%s}", e->cfg->embed_truncate ? "true" : "false");
    return rc;
}

static rf_rc parse(const rf_embed_t *e, const json_t *root, size_t n, float *vecs, char (*why)[128],
                   int64_t *tokens, char *msg, size_t cap)
{
    (void)tokens; /* TEI reports no usage in the body */
    if (!json_is_array(root) || json_array_size(root) != n) {
        snprintf(msg, cap, "expected an array of %zu vectors, got %zu", n,
                 json_is_array(root) ? json_array_size(root) : 0);
        return RF_EPARSE;
    }
    for (size_t i = 0; i < n; i++)
        rf__embed_vec_from_json(json_array_get(root, i), e->dim, vecs + i * (size_t)e->dim, why[i],
                                sizeof(why[i]));
    return RF_OK;
}

const rf__embed_prov_t rf__embed_tei = {"tei", build, parse};
