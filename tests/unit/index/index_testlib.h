/* index_testlib.h - code shared by the index/ unit tests: deterministic vectors,
 * op builders, and a check that the vector index holds exactly the store's records
 * (INVARIANT(index-is-a-view)). */
#ifndef RF_INDEX_TESTLIB_H
#define RF_INDEX_TESTLIB_H

#include "index/index.h"

/* splitmix64 step: a small deterministic generator for tests. */
uint64_t tl_rand(uint64_t *state);
/* Uniform in [0, n). */
uint32_t tl_below(uint64_t *state, uint32_t n);
/* A unit vector drawn from state. */
void tl_vec_rand(uint64_t *state, int dim, float *out);
/* A unit vector determined by (a, b) alone. */
void tl_vec_for(uint64_t a, uint64_t b, int dim, float *out);
float tl_dot(const float *a, const float *b, int dim);

rf_index_op_t tl_upsert(const char *id, const char *source, const char *text, const float *vec);
rf_index_op_t tl_delete(const char *id, const char *source);
rf_index_op_t tl_truncate(const char *source);

/* Opens dir with dim and checkpoint interval; fails the current test on error. */
rf_index_t *tl_open(const char *dir, int dim, int64_t interval_ms);
/* Applies ops (plus optional offsets) as one batch; returns rc, *seq when given. */
rf_rc tl_apply(rf_index_t *ix, const rf_index_op_t *ops, size_t n, const rf_index_offset_t *offs,
               size_t off_n, int64_t *seq);

/* Counts rows of a table with a raw read-only connection to <dir>/store.db, using an
 * optional WHERE clause; -1 on error. */
int64_t tl_count(const char *dir, const char *where_sql);
/* 1 when the vector index ids equal the store's vids exactly (and reports the first
 * difference on stderr), 0 otherwise. */
int tl_vectors_match_store(rf_index_t *ix, const char *dir);

#endif
