/* index.h - the public face of index/: the store (SQLite: records, changelog, Kafka
 * offsets, dead letters) and the in-memory vector index derived from it.
 *
 * INVARIANT(offsets-with-state): one store transaction per batch carries the record
 * changes, their changelog rows and the next Kafka offsets.  INVARIANT(index-is-a-view):
 * FAISS state is rebuilt from checkpoints plus the changelog; it is never a source of
 * truth.  INVARIANT(one-record-per-key): search never returns deleted or superseded
 * versions.
 *
 * Threads: rf_index_apply / rf_index_checkpoint are called by one writer thread;
 * search, get and status may be called from any number of threads at once.
 */
#ifndef RF_INDEX_H
#define RF_INDEX_H

#include "core/core.h"

typedef struct rf_index rf_index_t;

typedef enum rf_index_op_kind {
    RF_INDEX_UPSERT = 1,
    RF_INDEX_DELETE = 2,
    RF_INDEX_TRUNCATE = 3, /* delete every record whose source equals op.source */
} rf_index_op_kind;

/* One change to apply.  All pointers are borrowed for the duration of the call. */
typedef struct rf_index_op {
    rf_index_op_kind kind;
    const char *id;              /* record id ("inventory.products:1001"); NULL for TRUNCATE */
    const char *source;          /* "inventory.products" */
    const char *text;            /* UPSERT only */
    const char *metadata_json;   /* UPSERT: JSON object text or NULL */
    const char *tenant;          /* may be NULL */
    const float *vec;            /* UPSERT: dim floats, unit length */
    const char *model;           /* model that made vec */
    const uint8_t *content_hash; /* 32 bytes (BLAKE2b-256) or NULL */
    const char *label;           /* may be NULL */
    double label_score;
    int64_t event_time_ms;  /* when the change happened at the source (0 unknown) */
    const char *source_pos; /* LSN / binlog position, may be NULL */
    const char *topic;      /* Kafka coordinates of the event */
    int32_t partition;
    int64_t offset;
    /* Model generations (UPSERT): vec belongs to generation `gen` (0: the active one).
     * While a second generation exists (one being built, or the previous one kept for a
     * rollback), live ingest also gives its vector: vec2 of generation gen2, with its own
     * content hash.  The store keeps each vector with its generation; whichever of the two
     * is active goes to the record and the search index. */
    int64_t gen;
    const float *vec2;            /* NULL: no second vector */
    int64_t gen2;                 /* generation of vec2 */
    const uint8_t *content_hash2; /* 32 bytes or NULL */
    const char *model2;           /* model that made vec2 */
} rf_index_op_t;

/* A dead letter to record in the store (the Kafka DLQ topic is ingest's business). */
typedef struct rf_index_dead {
    const char *topic;
    int32_t partition;
    int64_t offset;
    rf_slice_t key;   /* ptr NULL when the key was NULL */
    rf_slice_t value; /* ptr NULL when the value was NULL */
    const char *reason;
} rf_index_dead_t;

/* The next offset to consume for one partition. */
typedef struct rf_index_offset {
    const char *topic;
    int32_t partition;
    int64_t next_offset;
} rf_index_offset_t;

/* A vector of a generation being built for an existing record (re-embedding).  It is
 * stored only if the record is still at version rec_seq (its `seq`); a record that
 * changed meanwhile got its vector from live ingest, or is picked up again. */
typedef struct rf_index_genvec {
    int64_t vid;     /* from rf_index_gen_pending */
    int64_t rec_seq; /* the record version the text was read from */
    const float *vec;
    const uint8_t *content_hash; /* 32 bytes or NULL */
} rf_index_genvec_t;

/* A batch: effects plus the offsets they bring the store to. */
typedef struct rf_index_batch {
    const rf_index_op_t *ops;
    size_t op_cnt;
    const rf_index_dead_t *dead;
    size_t dead_cnt;
    const rf_index_offset_t *offsets;
    size_t offset_cnt;
    /* Re-embedding progress, in the same transaction: vectors of generation `gen` (which
     * must be the one being built), the scan cursor reached (> 0 to store it) and the
     * tokens spent on them. */
    int64_t gen;
    const rf_index_genvec_t *genvecs;
    size_t genvec_cnt;
    int64_t gen_cursor;
    int64_t gen_tokens;
} rf_index_batch_t;

typedef struct rf_index_opts {
    const char *dir;                /* state directory (created if missing); borrowed */
    int dim;                        /* vector dimension; a store made with another dim is refused */
    int64_t checkpoint_interval_ms; /* 0: only at close and on demand */
    /* The segmented vector index (a zero or NULL field takes the default shown). */
    int64_t segment_size;     /* vectors in the mutable flat segment before it is sealed and
                               * rebuilt in the background (50000) */
    const char *factory;      /* FAISS index_factory string of sealed segments ("HNSW32");
                               * "Flat" keeps them exact; borrowed */
    double compact_ratio;     /* a sealed segment whose dead fraction exceeds this is rebuilt
                               * without its dead vectors (0.3); > 1 never */
    int ef_search;            /* HNSW efSearch of sealed segments (128) */
    int ivf_nprobe;           /* IVF nprobe of sealed segments (16) */
    int64_t filter_exact_max; /* a filter matching at most this many records is searched
                               * exactly over their vectors (20000) */
    int work_nice;            /* nice value (0..19) of the index's maintenance, checkpoint and
                               * reaper threads; 0 keeps the opener's */
    rf_cpus_t work_cpus;      /* CPUs of those threads, the slow builder's and the WAL
                               * checkpointer's; cnt 0: any */
    /* Generations: a new store's first generation gets dim and gen_desc (a JSON object
     * text naming the embedder; NULL: "{}").  On an existing store, dim_from_store != 0
     * takes the active generation's dim instead of refusing a different `dim`. */
    const char *gen_desc;
    int dim_from_store;
} rf_index_opts_t;

/* Opens (or creates) the store under opts->dir and recovers the vector index: loads the
 * newest valid checkpoint and replays the changelog after it.  A corrupt or missing
 * checkpoint is skipped (logged), never fatal.  Returns RF_ECORRUPT when the store
 * itself is unusable, RF_ECONFIG when dim differs from the store's, RF_EBUSY when
 * another process (or handle) has the directory open (<dir>/LOCK is flock'ed).
 * Caller frees with rf_index_close(). */
rf_rc rf_index_open(const rf_index_opts_t *opts, rf_index_t **out, rf_err_t *err);

/* Writes a final checkpoint (when anything changed since the last) and frees. NULL ok. */
void rf_index_close(rf_index_t *ix);

/* Applies a batch in one store transaction, then updates the in-memory index.
 * Within a batch, ops are applied in order (the last op for an id wins).
 * On success *seq_out (may be NULL) is the store sequence after the batch.
 * On failure nothing of the batch is visible. Writer thread only. */
rf_rc rf_index_apply(rf_index_t *ix, const rf_index_batch_t *batch, int64_t *seq_out,
                     rf_err_t *err);

/* Next offset stored for (topic, partition), or -1 when the store has none.
 * Any thread. */
int64_t rf_index_offset_get(rf_index_t *ix, const char *topic, int32_t partition);

/* One search hit; strings owned by the result set. */
typedef struct rf_index_hit {
    char *id;
    float score;
    char *text;
    char *metadata_json; /* NULL when none */
    char *label;         /* NULL when none */
    char *tenant;        /* NULL when none */
    char *topic;
    int32_t partition;
    int64_t offset;
    int64_t event_time_ms;
    int64_t seq; /* store seq of the version returned; may exceed results.seq when the
                  * record changed after the FAISS state searched (it is then re-scored) */
    float *vec;  /* the stored vector of the version returned, when the query asked for it
                  * (rf_index_query_t.want_vec); else NULL.  Owned by the result set */
    int dim;     /* floats in vec; 0 when vec is NULL */
} rf_index_hit_t;

/* The highest numeric source position (a PostgreSQL LSN, as Debezium reports it: a
 * decimal number) applied for one source (the record `source`, "inventory.products").
 * Only positions that are numbers count: "lsn=<digits>" or "<digits>" in
 * rf_index_op_t.source_pos; a MySQL "file:pos" position is not tracked. */
typedef struct rf_index_lsn {
    const char *source;
    int64_t lsn;
} rf_index_lsn_t;

/* The position a state of the index reflects: the store sequence, the next offset of
 * every partition applied, the newest event time, and the highest LSN applied per
 * source.  INVARIANT(fresh-is-measurable). */
typedef struct rf_index_position {
    int64_t seq;
    rf_index_offset_t *offsets; /* topics owned by the position */
    size_t offset_cnt;
    int64_t newest_event_time_ms; /* 0 when unknown */
    rf_index_lsn_t *lsns;         /* sources owned by the position; by source name */
    size_t lsn_cnt;
} rf_index_position_t;

void rf_index_position_fini(rf_index_position_t *pos);

typedef struct rf_index_results {
    rf_index_hit_t *hits;
    size_t cnt;
    int64_t gen;             /* generation of the vectors searched */
    int64_t seq;             /* store sequence the search reflected (== pos.seq) */
    rf_index_position_t pos; /* the position of the index state searched */
} rf_index_results_t;

/* ==== Filters ==== */

/* One condition on a record.  `field` names a metadata field, or one of the record's own
 * columns: "source", "tenant", "label", "event_time_ms".  Values are JSON scalar texts
 * ("42", "\"books\"", "true").  Numbers compare numerically; strings compare bytewise
 * (ISO-8601 UTC times therefore order correctly). */
typedef enum rf_index_cond_kind {
    RF_INDEX_COND_EQ = 1,    /* field == values[0] */
    RF_INDEX_COND_IN = 2,    /* field equals one of values[0..value_cnt) */
    RF_INDEX_COND_RANGE = 3, /* lo <= field <= hi, with either bound optional */
} rf_index_cond_kind;

typedef struct rf_index_cond {
    const char *field;
    rf_index_cond_kind kind;
    const char *const *values; /* EQ, IN */
    size_t value_cnt;
    const char *lo, *hi;  /* RANGE: JSON scalar texts or NULL for unbounded */
    int lo_excl, hi_excl; /* RANGE: 1 for > / < instead of >= / <= */
} rf_index_cond_t;

/* A conjunction of conditions plus an optional tenant restriction that no condition can
 * widen (API keys scoped to one tenant).  All pointers borrowed for the call. */
typedef struct rf_index_filter {
    const rf_index_cond_t *conds;
    size_t cond_cnt;
    const char *tenant; /* NULL: every tenant */
} rf_index_filter_t;

typedef struct rf_index_query {
    const float *vec; /* dim floats, unit length */
    int k;
    const rf_index_filter_t *filter; /* NULL: no filter */
    float min_score;                 /* hits scoring below are dropped; -INFINITY or -2 for none */
    int64_t gen;  /* generation vec was embedded for (0: the active one, whatever it is).
                   * RF_EAGAIN when the index has switched to another generation: embed
                   * the query again with the active generation's model and retry. */
    int want_vec; /* 1: each hit carries its stored vector (hit.vec, hit.dim) */
} rf_index_query_t;

/* Filtered top-k.  Every hit satisfies the filter; `k` hits come back whenever k
 * matching records exist.  Any thread. */
rf_rc rf_index_query(rf_index_t *ix, const rf_index_query_t *q, rf_index_results_t *res,
                     rf_err_t *err);

/* Top-k by inner product (cosine for unit vectors).  Any thread; never blocks on a
 * checkpoint.  Free with rf_index_results_fini(). */
rf_rc rf_index_search(rf_index_t *ix, const float *vec, int k, rf_index_results_t *res,
                      rf_err_t *err);
void rf_index_results_fini(rf_index_results_t *res);

/* The position searches currently see (what has been applied to the vector index,
 * which can trail the store by the in-memory update of one batch).  Any thread.
 * Caller frees with rf_index_position_fini(). */
void rf_index_position_get(rf_index_t *ix, rf_index_position_t *pos);

/* Waits until searches see at least min_seq (ignored when < 0) and, for each given
 * (topic, partition, next_offset), an applied next offset >= next_offset; that is, every
 * message before next_offset has been applied (or dead-lettered).  Wakes on each applied
 * batch, without polling.  Returns RF_OK when reached, RF_ETIMEDOUT after timeout_ms.
 * Any thread. */
rf_rc rf_index_position_wait(rf_index_t *ix, int64_t min_seq, const rf_index_offset_t *want,
                             size_t want_cnt, int64_t timeout_ms);

/* rf_index_position_wait, and also until, for each of lsns[0..lsn_cnt) (borrowed), the
 * source's highest LSN applied is >= lsn.  A source that spans several partitions may
 * reach a high LSN on one partition before a lower one on another is applied; a source
 * read through one partition has its positions applied in order.  Any thread. */
rf_rc rf_index_position_wait_lsn(rf_index_t *ix, int64_t min_seq, const rf_index_offset_t *want,
                                 size_t want_cnt, const rf_index_lsn_t *lsns, size_t lsn_cnt,
                                 int64_t timeout_ms);

/* The current record as a JSON object text (id, text, metadata, tenant, label, model,
 * content_hash, event_time, source_position, kafka{topic,partition,offset}, seq,
 * updated_at).  RF_ENOTFOUND when absent.  *json caller frees with free(). Any thread. */
rf_rc rf_index_record_get(rf_index_t *ix, const char *id, char **json, rf_err_t *err);

/* Status: {"records":N,"seq":N,"offsets":{"topic/partition":next},"dead_letters":N,
 *          "checkpoint_seq":N (-1 none),"newest_event_time_ms":N,"index_seq":N,
 *          "vectors":N,"segments":N,"segments_pending":N,"dead_vectors":N,
 *          "memory_bytes":N,"bytes_per_record":N,"lsn":{"source":N}}.  memory_bytes
 *          estimates what the vector index holds in memory (vectors, graphs or lists, the
 *          8-bit codes of flat and quick IVF segments, id maps, tombstones, filterable
 *          metadata); bytes_per_record divides it by the live
 *          vectors; lsn is the highest LSN stored per source.  Caller frees. Any thread. */
char *rf_index_status_json(rf_index_t *ix);

/* The `n` (1..100) records written most recently that still exist, newest first, as a
 * JSON array text of {"id","source","tenant","updated_at_ms","seq","snippet"}; snippet is
 * the first snippet_chars (1..1000) characters of the text.  RF_EINVAL for n or
 * snippet_chars out of range.  *json caller frees with free().  Any thread. */
rf_rc rf_index_recent_json(rf_index_t *ix, size_t n, size_t snippet_chars, char **json,
                           rf_err_t *err);

/* The vector index's size, as the status reports it (memory_bytes: vectors, graphs or
 * lists, 8-bit codes, id and content-hash maps, tombstones, filterable metadata).  Any
 * thread. */
typedef struct rf_index_stats {
    int64_t vectors, dead_vectors, segments, segments_pending, memory_bytes, bytes_per_record;
} rf_index_stats_t;
void rf_index_stats(rf_index_t *ix, rf_index_stats_t *out);

/* Counts for tests and metrics. Any thread. */
int64_t rf_index_record_count(rf_index_t *ix);
int64_t rf_index_seq(rf_index_t *ix);
int64_t rf_index_dead_count(rf_index_t *ix);

/* The stored vector, of any generation, of any current record whose content hash
 * (BLAKE2b over model, dim and normalised text) equals hash: the embedding cache, so an
 * unchanged text is never embedded twice under one model.  RF_OK and out[dim] filled, or
 * RF_ENOTFOUND.  Any thread (it reads through a read connection, beside the writer). */
rf_rc rf_index_vector_by_hash(rf_index_t *ix, const uint8_t hash[32], int dim, float *out,
                              rf_err_t *err);

/* ==== Model generations ====
 *
 * Every vector belongs to a generation: the embedder (provider, model, dimension,
 * parameters) that made it, described by an opaque JSON object text.  The store holds at
 * most two at once: the active one, which records and searches use, and a second one
 * that is either being built (re-embedding) or the previous active one kept for a
 * rollback.  Switching (cut-over or rollback) is one store transaction plus one swap of
 * the vector index; searches go on throughout. */
typedef enum rf_index_gen_state {
    RF_INDEX_GEN_ACTIVE = 1,
    RF_INDEX_GEN_BUILDING = 2,
    RF_INDEX_GEN_PREVIOUS = 3,
} rf_index_gen_state;

typedef struct rf_index_gen {
    int64_t gen;
    int dim;
    rf_index_gen_state state;
    char *desc;     /* JSON object text */
    int64_t cursor; /* building: vids up to this one have been read for embedding */
    int64_t tokens; /* tokens spent building it */
    int64_t created_at_ms;
    int64_t activated_at_ms; /* 0: never active */
} rf_index_gen_t;

/* "active", "building" or "previous". */
const char *rf_index_gen_state_name(rf_index_gen_state st);

/* Every generation the store keeps, oldest first.  Free with rf_index_gen_list_free().
 * Any thread. */
rf_rc rf_index_gen_list(rf_index_t *ix, rf_index_gen_t **gens, size_t *n, rf_err_t *err);
void rf_index_gen_list_free(rf_index_gen_t *gens, size_t n);

/* The active generation (and its dim), and the second one (0 when there is none; its dim
 * and state).  Any thread; cheap (in-memory). */
int64_t rf_index_gen_active(rf_index_t *ix, int *dim);
int64_t rf_index_gen_second(rf_index_t *ix, int *dim, rf_index_gen_state *state);

/* Starts a new generation to build.  A previous generation kept for rollback is dropped
 * first; RF_EBUSY when one is being built already.  Writer thread. */
rf_rc rf_index_gen_create(rf_index_t *ix, int dim, const char *desc, int64_t *gen, rf_err_t *err);

/* Drops the second generation (cancels a build, or gives up the rollback).  RF_EINVAL
 * for the active one, RF_ENOTFOUND for an unknown one.  Writer thread. */
rf_rc rf_index_gen_drop(rf_index_t *ix, int64_t gen, rf_err_t *err);

/* Records gen's tokens/cursor outside a batch (dry runs aside, for a build with nothing
 * left to embed).  Writer thread. */
rf_rc rf_index_gen_progress(rf_index_t *ix, int64_t gen, int64_t cursor, int64_t tokens,
                            rf_err_t *err);

/* How many current records lack a vector of gen for their current version, and how
 * many records there are.  Any thread. */
rf_rc rf_index_gen_missing(rf_index_t *ix, int64_t gen, int64_t *missing, int64_t *total,
                           rf_err_t *err);

/* Makes gen (the second generation) the active one: in one store transaction every
 * record takes its gen vector (the old ones are kept as the second generation, for a
 * rollback), a changelog row per record records the change (the history shows the
 * re-embedding), then the vector index is rebuilt aside and swapped in.  Refused with
 * RF_EAGAIN (and *missing, may be NULL, set) unless every record has a vector of gen for
 * its current version.  The same call is the rollback.  Writer thread. */
rf_rc rf_index_gen_activate(rf_index_t *ix, int64_t gen, int64_t *missing, rf_err_t *err);

/* Records still to embed for gen: current records with vid > after_vid that lack a
 * vector of gen for their current version, by ascending vid, at most max.  gen 0: every
 * record (a dry run before the generation exists).  Any thread. */
typedef struct rf_index_gen_item {
    int64_t vid;
    int64_t rec_seq;
    char *id;
    char *text;
} rf_index_gen_item_t;
rf_rc rf_index_gen_pending(rf_index_t *ix, int64_t gen, int64_t after_vid, size_t max,
                           rf_index_gen_item_t **items, size_t *n, rf_err_t *err);
void rf_index_gen_items_free(rf_index_gen_item_t *items, size_t n);

/* Writes a checkpoint now (synchronously, for tests and clean stops). Writer thread. */
rf_rc rf_index_checkpoint(rf_index_t *ix, rf_err_t *err);

/* ==== Changelog reader (for the Iceberg exporter) ==== */

/* A read-only view of the changelog on its own SQLite connection: it never blocks the
 * writer (WAL) and sees whole batches only.  It needs no rf_index_t, so another process
 * (`ragfeed history export`) can read a store that `ragfeed run` is writing.  A handle
 * belongs to one thread at a time.  INVARIANT(history-exported-once): rows come in seq
 * order, each seq once. */
typedef struct rf_index_changelog rf_index_changelog_t;

/* One changelog row.  Every pointer is borrowed and valid only during the callback. */
typedef struct rf_index_change {
    int64_t seq;
    int is_delete;               /* op: 0 upsert, 1 delete */
    const char *id;              /* never NULL */
    int64_t vid;                 /* the record's row id in the store */
    const char *source;          /* may be NULL */
    const char *tenant;          /* may be NULL */
    const char *text;            /* upsert: the text; delete: NULL */
    const char *metadata_json;   /* JSON object text or NULL */
    const float *vec;            /* dim floats, or NULL (deletes) */
    int dim;                     /* 0 when vec is NULL */
    const char *model;           /* may be NULL */
    int64_t gen;                 /* generation of vec (0: no vec) */
    int reembed;                 /* 1: written by a generation switch, not by an event */
    const uint8_t *content_hash; /* 32 bytes or NULL */
    const char *label;           /* may be NULL */
    int has_label_score;
    double label_score;
    int64_t event_time_ms;  /* 0 unknown */
    const char *source_pos; /* may be NULL */
    const char *topic;      /* Kafka coordinates; topic NULL and has_kafka 0 when unknown */
    int has_kafka;
    int32_t partition;
    int64_t offset;
    int64_t ingest_time_ms; /* when the store applied it */
} rf_index_change_t;

/* Called for each row in seq order.  A return other than RF_OK stops the scan, which
 * then returns that code (err as the callback left it). */
typedef rf_rc (*rf_index_change_fn)(void *opaque, const rf_index_change_t *chg, rf_err_t *err);

/* Opens <state_dir>/store.db read-only.  RF_ENOTFOUND when there is no store there,
 * RF_ESTORE when the file is not a ragfeed store.  Caller frees with
 * rf_index_changelog_close(). */
rf_rc rf_index_changelog_open(const char *state_dir, rf_index_changelog_t **out, rf_err_t *err);

/* Calls fn for at most max rows with seq > after_seq, in seq order, all read in one
 * read transaction.  *n_out (may be NULL) is the number of rows passed to fn and
 * accepted.  Errors: the callback's, RF_ECORRUPT for a malformed row, RF_EBUSY/RF_EIO
 * from SQLite. */
rf_rc rf_index_changelog_scan(rf_index_changelog_t *cl, int64_t after_seq, size_t max,
                              rf_index_change_fn fn, void *opaque, size_t *n_out, rf_err_t *err);

/* The highest seq in the changelog (0 when empty). */
rf_rc rf_index_changelog_max_seq(rf_index_changelog_t *cl, int64_t *seq, rf_err_t *err);

/* Closes the connection and frees.  NULL is a no-op. */
void rf_index_changelog_close(rf_index_changelog_t *cl);

#endif /* RF_INDEX_H */
