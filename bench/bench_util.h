/* bench_util.h - pieces the index benchmarks share. */
#ifndef RF_BENCH_UTIL_H
#define RF_BENCH_UTIL_H

#include <string.h>

#include "index/index.h"

/* An upsert of one record by the benchmark model; topic may be NULL (no Kafka position). */
static inline rf_index_op_t bench_upsert(const char *id, const char *source, const char *text,
                                         const char *metadata_json, const float *vec,
                                         const char *topic, int64_t offset)
{
    rf_index_op_t op;
    memset(&op, 0, sizeof(op));
    op.kind = RF_INDEX_UPSERT;
    op.id = id;
    op.source = source;
    op.text = text;
    op.metadata_json = metadata_json;
    op.vec = vec;
    op.model = "bench";
    op.topic = topic;
    op.offset = topic ? offset : 0;
    return op;
}

#endif
