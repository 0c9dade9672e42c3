/* fuzz_search_request.c - libFuzzer target for the request parser of POST /v1/search and
 * /v1/context: any bytes must give either a checked request or a 4xx error, never a
 * crash, a leak or an unbounded allocation.  The first byte picks the endpoint; a parsed
 * query text also goes through context assembly as a passage.
 */
#include "serve/serve_int.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rf__serve_limits_t lim = {4, 50, 30000};
    rf__serve_request_t req;
    rf__serve_fail_t f;
    int kind;
    rf_rc rc;

    if (!size)
        return 0;
    kind = data[0] & 1 ? RF__SERVE_KIND_CONTEXT : RF__SERVE_KIND_SEARCH;
    rc = rf__serve_request_parse((const char *)data + 1, size - 1, kind, &lim, &req, &f);
    if (rc != RF_OK) {
        unsigned status = rf__serve_code_status(f.code);
        if (status < 400 || status > 499 || !f.msg[0])
            __builtin_trap();
    } else {
        if (req.k < 1 || req.k > lim.max_k || (!req.query && !req.vec) ||
            req.wait_ms > lim.max_wait_ms || req.wait_ms < 0)
            __builtin_trap();
        for (size_t i = 0; i < req.want_cnt; i++)
            if (!req.want[i].topic || req.want[i].next_offset < 1)
                __builtin_trap();
        for (size_t i = 0; i < req.lsn_cnt; i++)
            if (!req.lsns[i].source || !req.lsns[i].source[0] || req.lsns[i].lsn < 0)
                __builtin_trap();
        if (req.query) {
            rf_index_hit_t hits[2];
            rf__serve_context_t ctx;
            memset(hits, 0, sizeof(hits));
            hits[0].id = "a";
            hits[0].text = req.query;
            hits[1].id = "b";
            hits[1].text = req.query;
            rf__serve_context_build(hits, 2, req.max_chars ? req.max_chars % 200 : 50, &ctx);
            if (ctx.chars > (size_t)(req.max_chars ? req.max_chars % 200 : 50) ||
                ctx.passage_cnt > 1)
                __builtin_trap();
            rf__serve_context_fini(&ctx);
        }
    }
    rf__serve_request_fini(&req);
    return 0;
}
