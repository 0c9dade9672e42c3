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

/* A batch: effects plus the offsets they bring the store to. */
typedef struct rf_index_batch {
    const rf_index_op_t *ops;
    size_t op_cnt;
    const rf_index_dead_t *dead;
    size_t dead_cnt;
    const rf_index_offset_t *offsets;
    size_t offset_cnt;
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
    int ef_search;            /* HNSW efSearch of sealed segments (64) */
    int ivf_nprobe;           /* IVF nprobe of sealed segments (16) */
    int64_t filter_exact_max; /* a filter matching at most this many records is searched
                               * exactly over their vectors (20000) */
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
} rf_index_hit_t;

/* The position a state of the index reflects: the store sequence, the next offset of
 * every partition applied, and the newest event time.  INVARIANT(fresh-is-measurable). */
typedef struct rf_index_position {
    int64_t seq;
    rf_index_offset_t *offsets; /* topics owned by the position */
    size_t offset_cnt;
    int64_t newest_event_time_ms; /* 0 when unknown */
} rf_index_position_t;

void rf_index_position_fini(rf_index_position_t *pos);

typedef struct rf_index_results {
    rf_index_hit_t *hits;
    size_t cnt;
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

/* The current record as a JSON object text (id, text, metadata, tenant, label, model,
 * content_hash, event_time, source_position, kafka{topic,partition,offset}, seq,
 * updated_at).  RF_ENOTFOUND when absent.  *json caller frees with free(). Any thread. */
rf_rc rf_index_record_get(rf_index_t *ix, const char *id, char **json, rf_err_t *err);

/* Status: {"records":N,"seq":N,"offsets":{"topic/partition":next},"dead_letters":N,
 *          "checkpoint_seq":N (-1 none),"newest_event_time_ms":N,"index_seq":N,
 *          "vectors":N,"segments":N,"segments_pending":N,"dead_vectors":N,
 *          "memory_bytes":N,"bytes_per_record":N}.  memory_bytes estimates what the
 *          vector index holds in memory (vectors, graphs or lists, id maps, tombstones,
 *          filterable metadata); bytes_per_record divides it by the live vectors.
 *          Caller frees. Any thread. */
char *rf_index_status_json(rf_index_t *ix);

/* Counts for tests and metrics. Any thread. */
int64_t rf_index_record_count(rf_index_t *ix);
int64_t rf_index_seq(rf_index_t *ix);
int64_t rf_index_dead_count(rf_index_t *ix);

/* The stored vector of any current record whose content hash (BLAKE2b over model, dim
 * and normalised text) equals hash: the embedding cache, so an unchanged text is never
 * embedded twice.  RF_OK and out[dim] filled, or RF_ENOTFOUND.  Any thread (it reads
 * through a read connection, beside the writer). */
rf_rc rf_index_vector_by_hash(rf_index_t *ix, const uint8_t hash[32], float *out, rf_err_t *err);

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
