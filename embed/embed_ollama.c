/* embed_ollama.c - the Ollama embeddings wire format (`embed.provider = ollama`):
 * POST /api/embed {"model","input":[...],"truncate":bool} -> {"embeddings":[[...],...],
 * "prompt_eval_count"}; errors are {"error":"..."}.
 * `truncate` is always sent, from embed.truncate: Ollama's own default silently cuts
 * long texts, and nothing may be cut without the operator having said so.
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
        rc = rf_buf_printf(body, "],\"truncate\":%s}", cfg->embed_truncate ? "true" : "false");
    return rc;
}

static rf_rc parse(const rf_embed_t *e, const json_t *root, size_t n, float *vecs, char (*why)[128],
                   int64_t *tokens, char *msg, size_t cap)
{
    const json_t *embs = json_object_get(root, "embeddings");
    if (!json_is_array(embs) || json_array_size(embs) != n) {
        snprintf(msg, cap, "expected \"embeddings\" with %zu vectors, got %zu", n,
                 json_is_array(embs) ? json_array_size(embs) : 0);
        return RF_EPARSE;
    }
    for (size_t i = 0; i < n; i++)
        rf__embed_vec_from_json(json_array_get(embs, i), e->dim, vecs + i * (size_t)e->dim, why[i],
                                sizeof(why[i]));
    if (json_is_integer(json_object_get(root, "prompt_eval_count")))
        *tokens = json_integer_value(json_object_get(root, "prompt_eval_count"));
    return RF_OK;
}

const rf__embed_prov_t rf__embed_ollama = {"ollama", build, parse};
