/* index_int.h - what the files of index/ share and nobody else sees: the layout of
 * rf_index_t, its locks, and the functions the store, the vector index and the
 * checkpoint code call across files.  It upholds INVARIANT(offsets-with-state),
 * INVARIANT(index-is-a-view) and INVARIANT(one-record-per-key) together with them.
 *
 * Threads and ownership (the whole module):
 *  - One writer thread calls rf_index_apply and rf_index_checkpoint.  It alone owns
 *    `wdb` and the statements in `wst`, and it alone writes `vec` (under `vec_lock`
 *    held exclusively, only for the FAISS mutation, never across SQLite I/O).
 *  - Any number of reader threads call search/get/status/counts/offset_get.  They
 *    take `vec_lock` shared for the FAISS search, and borrow a read-only SQLite
 *    connection from `pool` (guarded by `pool_mu`; a connection is used by one thread
 *    at a time).  Counters and the offsets map are guarded by `stat_mu`.
 *  - The checkpoint thread (when checkpoint_interval_ms > 0) serialises `vec` under
 *    `vec_lock` held shared, so searches continue, and hashes and writes the file
 *    outside any lock.  `ckpt_mu` serialises it with rf_index_checkpoint().
 *  - Lock order, when more than one is held: ckpt_mu, then vec_lock, then stat_mu,
 *    then pos_mu.
 *    pool_mu is never held while another lock is taken.
 *  - vec_lock is reader-preferring (glibc default): a search never waits behind a
 *    writer that is itself waiting for a checkpoint serialisation.
 */
#ifndef RF_INDEX_INT_H
#define RF_INDEX_INT_H

#include "index/index.h"

#include <pthread.h>
#include <sqlite3.h>

#include <faiss/c_api/Index_c.h>

/* Vectors are stored as float32 little-endian; this build copies them as they are. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "index/ stores float32 little-endian vectors; add byte swapping for this platform"
#endif

/* Bounds on what a batch may carry (RF_ETOOBIG beyond). */
#define RF__INDEX_ID_MAX         4096
#define RF__INDEX_TEXT_MAX       ((size_t)16 << 20)
#define RF__INDEX_DEAD_MAX       ((size_t)64 << 20)
#define RF__INDEX_DIM_MAX        65536
#define RF__INDEX_K_MAX          10000
#define RF__INDEX_SCHEMA_VERSION 1
/* Read connections kept idle in the pool; more are opened on demand and closed after. */
#define RF__INDEX_POOL_IDLE 8
/* Checkpoints kept on disk, newest first. */
#define RF__INDEX_CKPT_KEEP 2

/* Statements prepared once on the writer connection. */
enum {
    RF__W_BEGIN,
    RF__W_COMMIT,
    RF__W_ROLLBACK,
    RF__W_REC_LOOKUP,
    RF__W_REC_INSERT,
    RF__W_REC_UPDATE,
    RF__W_REC_DELETE,
    RF__W_REC_TRUNCATE,
    RF__W_LOG_INSERT,
    RF__W_DEAD_INSERT,
    RF__W_OFF_UPSERT,
    RF__W_META_SET,
    RF__W_COUNT
};

/* A read-only connection with its statements; used by one thread at a time. */
typedef struct rf__index_rconn {
    sqlite3 *db;
    sqlite3_stmt *by_vid;
    sqlite3_stmt *by_id;
    sqlite3_stmt *begin;
    sqlite3_stmt *end;
    struct rf__index_rconn *next;
} rf__index_rconn_t;

/* One partition's next offset (the in-memory mirror of the `offsets` table). */
typedef struct rf__index_off {
    char *topic;
    int32_t partition;
    int64_t next_offset;
} rf__index_off_t;

struct rf_index {
    char *dir;
    char *db_path;
    int dim;
    int64_t ckpt_interval_ms;
    int lock_fd;

    /* Writer connection and its statements: writer thread (and open/close) only. */
    sqlite3 *wdb;
    sqlite3_stmt *wst[RF__W_COUNT];
    int64_t wseq; /* store seq as the writer knows it (equals `seq` outside apply) */

    /* Read connections. */
    pthread_mutex_t pool_mu;
    rf__index_rconn_t *pool;
    int pool_idle;

    /* Counters and offsets, guarded by stat_mu. */
    pthread_mutex_t stat_mu;
    int64_t seq; /* committed store seq */
    int64_t record_cnt;
    int64_t dead_cnt;
    int64_t newest_event_ms;
    int64_t ckpt_seq; /* seq of the newest checkpoint written or loaded, -1 none */
    rf__index_off_t *offs;
    size_t off_cnt;

    /* The vector index: IndexIDMap2 over IndexFlatIP, ids = vid. */
    pthread_rwlock_t vec_lock;
    FaissIndex *vec; /* written under vec_lock exclusive */
    int64_t vec_seq; /* store seq `vec` reflects; written under vec_lock exclusive */
    int vec_broken;  /* a mutation failed and the rebuild too: searches fail */

    /* The position searches see, published by the writer while it holds vec_lock
     * exclusively (so it always matches `vec`), and read under pos_mu.  pos_cond wakes
     * rf_index_position_wait on every publication.  Lock order: vec_lock, stat_mu, pos_mu. */
    pthread_mutex_t pos_mu;
    pthread_cond_t pos_cond;
    rf_index_position_t pub;

    /* Checkpoints. */
    pthread_mutex_t ckpt_mu; /* one checkpoint writer at a time */
    pthread_mutex_t thr_mu;  /* guards thr_stop, with thr_cond */
    pthread_cond_t thr_cond;
    int thr_stop;
    int thr_started;
    pthread_t thr;
};

/* ==== index_store.c ==== */

/* Opens (creating if new) the store at ix->db_path: pragmas, schema, the dim check,
 * the prepared statements, counters and offsets.  RF_ECONFIG on a dim mismatch,
 * RF_ECORRUPT when the file is not a usable store. */
rf_rc rf__index_store_open(rf_index_t *ix, rf_err_t *err);
/* Closes every connection (read pool included).  Safe on a partly opened ix. */
void rf__index_store_close(rf_index_t *ix);

/* Borrows a read connection (opened on demand); give it back with rconn_put.  broken
 * != 0 closes it instead of pooling it (after an unexpected SQLite error). */
rf_rc rf__index_rconn_get(rf_index_t *ix, rf__index_rconn_t **out, rf_err_t *err);
void rf__index_rconn_put(rf_index_t *ix, rf__index_rconn_t *rc, int broken);

/* Recovery reads, on the writer connection (open only, before any thread runs).
 * changed_vids: every distinct vid of a changelog row with seq > after (caller frees
 * *vids with free()) and *rows, the number of such rows.  scan_records: calls fn with chunks of up
 * to `chunk` records with seq > after (after < 0: every record); vecs are dim floats each, ids
 * their vids. */
rf_rc rf__index_store_changed_vids(rf_index_t *ix, int64_t after, int64_t **vids, size_t *n,
                                   int64_t *rows, rf_err_t *err);
typedef rf_rc (*rf__index_scan_fn)(void *opaque, size_t n, const float *vecs, const int64_t *ids,
                                   rf_err_t *err);
rf_rc rf__index_store_scan_records(rf_index_t *ix, int64_t after, size_t chunk,
                                   rf__index_scan_fn fn, void *opaque, int64_t *cnt_out,
                                   rf_err_t *err);

/* Reads the hit rows for `vids` (FAISS order, scores alongside) in one read
 * transaction into hits[0..*got).  A vid gone from the store is dropped; a row changed
 * after the FAISS state (row seq > vec_seq) is rescored against its current vector, so a
 * hit's score always belongs to the version returned.  q is the query (dim floats). */
rf_rc rf__index_store_hits(rf_index_t *ix, const float *q, const int64_t *vids, const float *scores,
                           size_t n, int64_t vec_seq, rf_index_hit_t *hits, size_t *got,
                           rf_err_t *err);

/* ==== index_vectors.c ==== */

/* A new empty IndexIDMap2 over IndexFlatIP(dim). */
rf_rc rf__index_vec_new(int dim, FaissIndex **out, rf_err_t *err);
/* Unlocked primitives on an index no other thread can see (recovery). */
rf_rc rf__index_vec_add(FaissIndex *vec, size_t n, const float *vecs, const int64_t *ids,
                        rf_err_t *err);
rf_rc rf__index_vec_remove(FaissIndex *vec, size_t n, const int64_t *ids, rf_err_t *err);
/* Applies one committed batch to ix->vec under vec_lock exclusive: removes `rm` ids,
 * adds `add_n` vectors, then sets vec_seq = seq.  On a FAISS failure, rebuilds the
 * whole index from the store; if that fails too the index is marked broken. */
rf_rc rf__index_vec_update(rf_index_t *ix, const int64_t *rm, size_t rm_n, const float *add,
                           const int64_t *add_ids, size_t add_n, int64_t seq, rf_err_t *err);
/* Rebuilds ix->vec from every record in the store, replacing it. Writer thread. */
rf_rc rf__index_vec_rebuild(rf_index_t *ix, rf_err_t *err);
/* Serialises ix->vec under vec_lock shared into a new buffer that starts with
 * `reserve` zero bytes (room for a header).  *buf caller frees with free(); *seq is
 * the vec_seq the bytes reflect. */
rf_rc rf__index_vec_save(rf_index_t *ix, size_t reserve, char **buf, size_t *len, int64_t *seq,
                         rf_err_t *err);
/* Reads an index serialised by rf__index_vec_save (without the reserve); checks it is
 * an IndexIDMap2 with inner product metric of dimension dim. */
rf_rc rf__index_vec_load(const void *data, size_t len, int dim, FaissIndex **out, rf_err_t *err);
void rf__index_vec_free(FaissIndex *vec);
/* The ids currently in the vector index, ascending (tests and checks).  *ids caller
 * frees with free(); *seq (may be NULL) the vec_seq they reflect. */
rf_rc rf__index_vec_ids(rf_index_t *ix, int64_t **ids, size_t *n, int64_t *seq, rf_err_t *err);

/* ==== index_checkpoint.c ==== */

/* Frees ix without writing a checkpoint: what a crash leaves behind, for tests.
 * Stops the checkpoint thread, closes the store, releases the lock. NULL ok. */
void rf__index_abandon(rf_index_t *ix);
/* Publishes the position of `vec` (vec_seq and the committed offsets) to searches and
 * waiters.  Caller holds vec_lock exclusively. */
void rf__index_pos_publish_locked(rf_index_t *ix);

/* The checkpoint file name for seq under dir; caller frees. */
char *rf__index_ckpt_path(const char *dir, int64_t seq);

#endif /* RF_INDEX_INT_H */
