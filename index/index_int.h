/* index_int.h - what the files of index/ share and nobody else sees: the layout of
 * rf_index_t, its segments and snapshots, its locks, and the functions the store, the
 * segments, search, filters and checkpoints call across files.  It upholds
 * INVARIANT(offsets-with-state), INVARIANT(index-is-a-view) and INVARIANT(one-record-per-key)
 * together with them.
 *
 * The vector index is a list of segments.  Each segment numbers its vectors 0..n-1 (the
 * internal id, "iid") and maps them to record vids; its tombstones are a bitmap of live
 * iids.  The newest segment (the tail) is flat and takes appends; at segment_size it is
 * sealed and a background thread rebuilds it as the `factory` index (same iids), and later
 * rebuilds any sealed segment whose dead fraction passes compact_ratio without its dead.
 * Searches read a snapshot: an immutable, reference-counted list of segment views (segment,
 * visible count, live bitmap) plus the position it reflects.
 *
 * Threads and ownership (the whole module):
 *  - One writer thread calls rf_index_apply and rf_index_checkpoint.  It alone owns `wdb`
 *    and the statements in `wst`.  It builds each new snapshot under `w_mu` (the
 *    maintenance thread takes w_mu only to install a finished rebuild), appends into the
 *    tail's slots beyond what any published snapshot shows, copies a live bitmap before
 *    changing it, and swaps `cur` under `cur_mu`.
 *  - Any number of reader threads search/get/status.  A search takes `cur_mu` only to take
 *    a reference on `cur`; everything it then reads is immutable.  Reads of the store
 *    borrow a read-only SQLite connection from `pool` (guarded by `pool_mu`).  Counters and
 *    the offsets map are guarded by `stat_mu`.
 *  - The maintenance thread builds and compacts segments from a snapshot, without locks,
 *    then, holding ckpt_mu (so that no checkpoint prunes the file meanwhile), writes the
 *    new segment's file and installs it under w_mu.  It alone removes sealed views.  It
 *    does the quick builds (flat, the interim IVF) itself, at normal priority, as searches
 *    scan a segment exactly until it is built; it hands the slow ones (HNSW) to the slow
 *    builder thread, at the lowest priority, and installs them once built.
 *  - The checkpoint thread (when checkpoint_interval_ms > 0) and rf_index_checkpoint write
 *    a snapshot under `ckpt_mu` only: searches and the writer go on.
 *  - The content-hash map changes with the snapshot, under w_mu and hm_mu; lookups take
 *    hm_mu only to copy the candidates out.
 *  - Lock order, when more than one is held: ckpt_mu, w_mu, hm_mu, cur_mu, stat_mu, pos_mu,
 *    mt_mu.
 *    pool_mu is never held while another lock is taken.
 */
#ifndef RF_INDEX_INT_H
#define RF_INDEX_INT_H

#include "index/index.h"

#include <pthread.h>
#include <semaphore.h>
#include <sqlite3.h>
#include <sys/types.h>

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
#define RF__INDEX_SCHEMA_VERSION 4
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
    RF__W_REC_SOURCE,
    RF__W_REC_DELETE,
    RF__W_REC_TRUNCATE,
    RF__W_LOG_INSERT,
    RF__W_DEAD_INSERT,
    RF__W_OFF_UPSERT,
    RF__W_META_SET,
    RF__W_GV_PUT,     /* a live-ingest vector of the second generation */
    RF__W_GV_PUT_IF,  /* a re-embedded vector, kept only if its record is unchanged */
    RF__W_GV_DELETE,  /* every generation vector of a vid */
    RF__W_GEN_CURSOR, /* a build's cursor and tokens */
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

/* Option defaults (rf_index_opts_t fields left 0). */
#define RF__INDEX_SEG_SIZE_DEF  50000
#define RF__INDEX_SEG_SIZE_MIN  16
#define RF__INDEX_SEG_SIZE_MAX  ((int64_t)1 << 31)
#define RF__INDEX_FACTORY_DEF   "HNSW32"
#define RF__INDEX_COMPACT_DEF   0.3
#define RF__INDEX_EF_DEF        128
#define RF__INDEX_NPROBE_DEF    16
#define RF__INDEX_EXACT_MAX_DEF 20000
/* A rebuilt segment with fewer live vectors than this stays flat (exact and small). */
#define RF__INDEX_ANN_MIN 256
/* A sealed segment of [INTERIM_MIN, INTERIM_MAX] vectors whose factory is slow to build
 * (HNSW) is first built as an IVF index (a k-means of sqrt(n) lists, seconds where HNSW
 * takes minutes on 2 cores), then rebuilt with the factory when no other work waits: a
 * steady stream of upserts keeps sealing segments faster than HNSW builds them, and until
 * built a segment is scanned exactly. */
#define RF__INDEX_INTERIM_MIN 2048
#define RF__INDEX_INTERIM_MAX 262144
/* With a slow factory the flat tail is sealed at this many vectors (or segment_size, if
 * smaller): searches scan it exactly, so it stays small, and the quick IVF index of each
 * sealed tail is merged with others into factory segments of up to segment_size, once
 * there are half a segment's or two tails' worth of them (index_segment.c, merge_min). */
#define RF__INDEX_TAIL_SLOW 8192
/* The interim IVF indexes of sealed tails (up to 2 * RF__INDEX_TAIL_SLOW vectors) share one
 * k-means of up to this many lists (at least 32 vectors a list to train it), trained on the
 * tail that first needs it and again every RF__INDEX_IVFQ_USES builds (the data drifts):
 * the builds in between only assign their vectors, and a search scores the shared
 * centroids once for all of them and scans nprobe of many lists in each. */
#define RF__INDEX_IVFQ_LISTS 256
#define RF__INDEX_IVFQ_USES  64
/* Tests: != 0 keeps the maintenance thread from rebuilding interim indexes (atomic). */
extern int rf__index_test_keep_interim;
/* Tests: != 0 makes checkpoints write format 2 (no content-hash keys), as older builds
 * did (atomic). */
extern int rf__index_test_ckpt_v2;

/* ==== Segments, snapshots (index_segment.c) ==== */

enum { RF__SEG_FLAT = 1, RF__SEG_ANN = 2 };

/* The rows of a segment: iid -> vid and the filterable attributes of each iid (an encoded
 * blob, index_filter.c).  Slot i is written once, by the writer, before any snapshot that
 * shows it is published; shared by the flat and the rebuilt version of a segment. */
typedef struct rf__index_rows {
    int refs; /* atomic */
    size_t cap;
    size_t filled; /* slots written; read only by the last owner when freeing */
    int64_t *vids;
    uint8_t **attrs;
    uint64_t *hkeys; /* the key of each slot's content hash (rf__index_hkey), 0 none */
} rf__index_rows_t;

typedef struct rf__index_inv rf__index_inv_t;

typedef struct rf__index_seg {
    int refs;    /* atomic */
    uint32_t id; /* segment number; the rebuild that keeps iids keeps it */
    int kind;    /* RF__SEG_FLAT or RF__SEG_ANN */
    int dim;
    int final;   /* flat by choice (too small, or factory "Flat"): never rebuilt for that */
    int interim; /* ANN: the quick IVF index, awaiting its rebuild with the factory */
    size_t cap;  /* slots */
    rf__index_rows_t *rows;
    float *vecs;               /* FLAT: cap * dim floats */
    int8_t *codes;             /* FLAT: cap * dim 8-bit codes of vecs (index_sq.c), or NULL */
    struct rf__index_sqm *sqm; /* FLAT: cap bounds of the codes, or NULL */
    /* IVF-Flat ANN: the codes of its lists' vectors, list after list (list l from vector
     * ivf_off[l]), and their bounds; NULL when not such an index.  Set before publication. */
    int8_t *ivf_codes;
    struct rf__index_sqm *ivf_sqm;
    size_t *ivf_off;
    FaissIndex *ann;      /* ANN: the factory index, ids = iids */
    size_t ann_bytes;     /* ANN: serialised size (the memory estimate); set before publication */
    uint64_t qhash;       /* IVF-Flat: a hash of its coarse centroids (equal: shared), else 0 */
    rf__index_inv_t *inv; /* sealed, rebuilt segments: attribute keys -> iids (or NULL) */
    int persisted;        /* ANN: its segment file is on disk (atomic) */
} rf__index_seg_t;

/* A bitmap of live iids, shared by snapshots until one is changed (then copied). */
typedef struct rf__index_bits {
    int refs; /* atomic */
    size_t nbytes;
    uint8_t b[];
} rf__index_bits_t;

typedef struct rf__index_view {
    rf__index_seg_t *seg;   /* one reference */
    size_t n;               /* slots visible */
    rf__index_bits_t *live; /* one reference; nbytes >= (n + 7) / 8 */
    size_t live_n;
    size_t attr_bytes; /* bytes of the attribute blobs of slots [0, n) */
    int sealed;        /* 0 for the tail */
} rf__index_view_t;

typedef struct rf__index_snap {
    int refs; /* atomic */
    size_t cnt;
    rf__index_view_t *v;     /* oldest first; the tail, if any, last */
    rf_index_position_t pos; /* the position this state reflects */
    uint32_t next_id;        /* no segment (or segment file) of this state has an id >= */
    int64_t gen;             /* the generation of its vectors */
    int dim;
    struct rf__index_snap *dead_next; /* on rf_index_t.dead, once no one holds it */
} rf__index_snap_t;

/* vid -> (segment id, iid), open addressing; the writer's alone (under w_mu). */
typedef struct rf__index_locmap {
    int64_t *keys; /* 0 = empty (vids start at 1) */
    uint64_t *vals;
    size_t cap, cnt;
} rf__index_locmap_t;

/* Content-hash key -> vid, a multimap (records may share a text), open addressing with
 * linear probing: which records hold the vector of a text (index_content.c).  Written by
 * whoever holds w_mu, under hm_mu; read under hm_mu. */
typedef struct rf__index_hmap {
    uint64_t *keys; /* 0 = empty */
    int64_t *vids;
    size_t cap, cnt; /* cap: 0 or a power of two */
} rf__index_hmap_t;

/* One vector to append: attrs is an encoded blob whose ownership passes to the index;
 * hkey the key of the record's content hash (0: none). */
typedef struct rf__index_add {
    int64_t vid;
    const float *vec;
    uint8_t *attrs;
    uint64_t hkey;
} rf__index_add_t;

struct rf_index {
    char *dir;
    char *db_path;
    int dim;
    int64_t ckpt_interval_ms;
    int lock_fd;
    const char *open_gen_desc; /* rf_index_open's options, during open only */
    int open_dim_from_store;

    /* Options of the vector index. */
    size_t seg_size;
    char *factory;
    double compact_ratio;
    int ef_search;
    int work_nice;       /* of the maintenance, checkpoint and reaper threads (rf_index_opts_t) */
    rf_cpus_t work_cpus; /* of those, the slow builder and the WAL thread (rf_index_opts_t) */
    pid_t maint_tid;     /* the maintenance thread's, once its priority is set (tests) */
    int ivf_nprobe;
    int64_t exact_max;

    /* Writer connection and its statements: writer thread (and open/close) only. */
    sqlite3 *wdb;
    sqlite3_stmt *wst[RF__W_COUNT];
    int64_t wseq; /* store seq as the writer knows it (equals `seq` outside apply) */

    /* WAL checkpoints (index_store.c).  A thread of its own copies the WAL back on its own
     * connection while the writer goes on; the writer's commit hook copies only the short
     * tail that thread left (so that the WAL can start over from the top), or everything
     * when the WAL passes wal_max_frames and the thread is idle (four times that: always, after
     * waiting for the thread).  wal_* counters are atomics. */
    sqlite3 *wal_db;
    pthread_t wal_thr;
    int wal_started, wal_stop, wal_kick; /* wal_stop, wal_kick under wal_mu */
    pthread_mutex_t wal_mu;
    pthread_cond_t wal_cond;
    int wal_kick_frames, wal_tail_frames, wal_max_frames;
    int64_t wal_log, wal_done;            /* the thread's last run: WAL frames, copied */
    int64_t wal_bg_runs, wal_inline_runs; /* checkpoints run by the thread / by a commit */
    int64_t wal_inline_frames;            /* frames the commits copied themselves */
    int64_t wal_waits;                    /* commits that waited for the thread's pass */
    int64_t wal_inline_us;                /* time the commits spent copying */

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
    rf_index_lsn_t *lsns; /* highest LSN applied per source (sources owned), by source */
    size_t lsn_cnt;
    /* Generations (written by the writer under stat_mu too; `dim` is the active one's and
     * changes only in a switch, with the maintenance and checkpoint threads stopped). */
    int64_t gen_active;
    int64_t gen_second; /* 0: none */
    int gen_second_dim;
    rf_index_gen_state gen_second_state;

    /* The vector index.  `cur` is replaced under cur_mu by whoever holds w_mu. */
    pthread_mutex_t w_mu;
    pthread_mutex_t cur_mu;
    rf__index_snap_t *cur;
    rf__index_locmap_t map; /* under w_mu */
    /* The content-hash map of the records in `cur` (what rf_index_vector_by_hash
     * consults instead of an index in the store, which every update paid for in random
     * page writes).  hkeys_fill: recovery read slots without keys (checkpoint files of
     * format 2); open fills them from the store. */
    pthread_mutex_t hm_mu;
    rf__index_hmap_t hmap;
    int hkeys_fill;
    int64_t hkeys_filled; /* slots given their key from the store by this open */
    uint32_t next_seg_id; /* under w_mu */
    size_t map_bytes;     /* atomic copy of the map's size, for status */

    /* The position searches see (that of `cur`), copied at each publication and read
     * under pos_mu.  pos_cond wakes rf_index_position_wait on every publication. */
    pthread_mutex_t pos_mu;
    pthread_cond_t pos_cond;
    rf_index_position_t pub;

    /* The reaper: frees the snapshots whose last reference a search dropped, so that no
     * search pays for freeing segments (a free() of another thread's memory waits for
     * that thread's malloc arena, and giving big blocks back to the kernel flushes the
     * TLB of every core running the process).  A lock-free stack and a semaphore: a
     * search never takes a lock to hand one over. */
    rf__index_snap_t *dead; /* atomic */
    sem_t dead_sem;
    pthread_t dead_thr;
    int dead_started, dead_stop;
    int64_t reaped;   /* snapshots the reaper freed (atomic; tests) */
    pid_t reaper_tid; /* atomic; tests */

    /* Maintenance thread: rebuilds and compactions. */
    pthread_mutex_t mt_mu;
    pthread_cond_t mt_cond;      /* work may be waiting, or stop */
    pthread_cond_t mt_idle_cond; /* the thread found nothing to do */
    int mt_stop, mt_kick, mt_idle, mt_started;
    uint32_t *mt_failed; /* segment ids whose rebuild failed: not retried (under mt_mu) */
    size_t mt_failed_n;
    pthread_t mt_thr;
    /* The interim IVF indexes' shared centroids (RF__INDEX_IVFQ_LISTS): the maintenance
     * thread's alone. */
    float *ivfq;
    size_t ivfq_nlist;
    int ivfq_dim, ivfq_uses;
    /* The slow builder: a thread at the lowest priority that builds, one at a time, the
     * indexes whose factory takes minutes (HNSW), so that the maintenance thread goes on
     * with the quick builds searches wait for.  The maintenance thread hands a job over
     * (sb_job) and installs it once built (sb_done); both under mt_mu. */
    pthread_t sb_thr;
    pthread_cond_t sb_cond; /* a job was handed over, or stop */
    struct rf__index_slow *sb_job, *sb_done;
    uint32_t *sb_busy; /* ids of the segments a slow job replaces (maintenance thread) */
    size_t sb_busy_n;
    int sb_hold; /* tests: != 0 keeps the slow builder from starting a job (under mt_mu) */
    int sb_started;

    /* Checkpoints. */
    pthread_mutex_t ckpt_mu; /* one checkpoint writer at a time */
    int64_t inst_gen;        /* atomic: rebuilds installed so far */
    int64_t ckpt_gen;        /* inst_gen of the last checkpoint (under ckpt_mu) */
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
/* Starts / stops the WAL checkpoint thread (see the fields above).  Start after the store
 * is open; stop before it is closed. */
rf_rc rf__index_wal_start(rf_index_t *ix, rf_err_t *err);
void rf__index_wal_stop(rf_index_t *ix);

/* ==== index_walvfs.c ==== */

/* The name of a VFS that gathers a WAL's appends into large writes (registered at the
 * first call), or NULL if it could not be registered.  Only for a connection with
 * synchronous = FULL, the only one to write the WAL. */
const char *rf__index_walvfs(void);
/* Process-wide: write calls the WALs opened with it got, and the writes SQLite made. */
void rf__index_walvfs_stats(uint64_t *calls, uint64_t *writes);

/* SQLite helpers shared with index_gen.c. */
rf_rc rf__index_db_fail(sqlite3 *db, int src, rf_err_t *err, const char *what);
rf_rc rf__index_db_exec(sqlite3 *db, const char *sql, rf_err_t *err);
rf_rc rf__index_db_scalar(sqlite3 *db, const char *sql, int64_t dflt, int64_t *out, rf_err_t *err);

/* ==== index_gen.c ==== */

/* Creates the generation tables (or upgrades a version-1 store) inside schema_init's
 * transaction, then loads the active and second generations into ix; a new store's
 * first generation gets ix->dim and desc.  Writer connection, open only. */
rf_rc rf__index_gen_schema(rf_index_t *ix, int64_t ver, const char *desc, int dim_from_store,
                           rf_err_t *err);
/* Stores a batch's generation vectors and progress, and the second vector of its upserts
 * (vid: the record written, seq: its new version).  Inside apply's transaction. */
rf_rc rf__index_gen_apply_op(rf_index_t *ix, const rf_index_op_t *op, int64_t vid, int64_t seq,
                             rf_err_t *err);
rf_rc rf__index_gen_apply_batch(rf_index_t *ix, const rf_index_batch_t *b, rf_err_t *err);

/* Borrows a read connection (opened on demand); give it back with rconn_put.  broken
 * != 0 closes it instead of pooling it (after an unexpected SQLite error). */
rf_rc rf__index_rconn_get(rf_index_t *ix, rf__index_rconn_t **out, rf_err_t *err);
void rf__index_rconn_put(rf_index_t *ix, rf__index_rconn_t *rc, int broken);

/* Recovery reads, on the writer connection (open only, before any thread runs).
 * changed_vids: every distinct vid of a changelog row with seq > after (caller frees
 * *vids with free()) and *rows, the number of such rows.  scan_records: calls fn for each
 * record with seq > after (after < 0: every record); the pointers of a call are valid
 * during it only. */
rf_rc rf__index_store_changed_vids(rf_index_t *ix, int64_t after, int64_t **vids, size_t *n,
                                   int64_t *rows, rf_err_t *err);
typedef struct rf__index_scan_rec {
    int64_t vid;
    const float *vec;
    const char *source, *tenant, *label, *metadata; /* NULL when NULL */
    int64_t event_time_ms;                          /* 0 unknown */
    uint64_t hkey;                                  /* of the content hash, 0 none */
} rf__index_scan_rec_t;
typedef rf_rc (*rf__index_scan_fn)(void *opaque, const rf__index_scan_rec_t *rec, rf_err_t *err);
rf_rc rf__index_store_scan_records(rf_index_t *ix, int64_t after, rf__index_scan_fn fn,
                                   void *opaque, int64_t *cnt_out, rf_err_t *err);

/* A compiled filter (index_filter.c). */
typedef struct rf__index_filter rf__index_filter_t;

/* Reads the hit rows for `vids` (search order, scores alongside) in one read
 * transaction into hits[0..*got), stopping once `need` hits are read unless a row was
 * rescored; want_vec != 0 copies each hit's stored vector into hit.vec.  A vid gone from the store
 * is dropped; a row changed after the snapshot searched (row seq > snap->pos.seq) is rescored
 * against its current vector (when it is of the snapshot's generation; a re-embedded row keeps its
 * score) and, when flt is not NULL, dropped unless it still satisfies the filter, so a hit's score
 * and attributes always belong to the version returned.  q is the query. */
rf_rc rf__index_store_hits(rf_index_t *ix, const float *q, const int64_t *vids, const float *scores,
                           size_t n, size_t need, const rf__index_snap_t *snap,
                           const rf__index_filter_t *flt, int want_vec, rf_index_hit_t *hits,
                           size_t *got, rf_err_t *err);

/* ==== index_content.c ==== */

/* The map key of a 32-byte content hash (its first 8 bytes; never 0); 0 for NULL. */
uint64_t rf__index_hkey(const uint8_t *hash);
/* Adds (key, vid) / removes that one pair (absent: nothing).  key 0: nothing. */
void rf__index_hmap_put(rf__index_hmap_t *m, uint64_t key, int64_t vid);
void rf__index_hmap_del(rf__index_hmap_t *m, uint64_t key, int64_t vid);
/* Up to max vids stored under key into out; returns how many. */
size_t rf__index_hmap_find(const rf__index_hmap_t *m, uint64_t key, int64_t *out, size_t max);
void rf__index_hmap_free(rf__index_hmap_t *m);
size_t rf__index_hmap_bytes(const rf__index_hmap_t *m);
/* Open, after recovery, when ix->hkeys_fill: gives every slot of `cur` its record's key
 * from the store, and the map its pairs. */
rf_rc rf__index_hkeys_fill(rf_index_t *ix, rf_err_t *err);

/* ==== index_lsn.c ==== */

/* The LSN of a source position when it is a number ("lsn=<digits>" or "<digits>", at
 * most INT64_MAX): 1 and *lsn set; else 0. */
int rf__index_lsn_parse(const char *source_pos, int64_t *lsn);
/* The batch's highest LSN per source that is above the one applied so far, in *out
 * (caller frees with free(); the sources are borrowed from the batch); returns the count.
 * Writer thread. */
size_t rf__index_lsn_collect(rf_index_t *ix, const rf_index_batch_t *b, rf_index_lsn_t **out);
/* Stores them in the meta table ("lsn:<source>"), inside apply's transaction. */
rf_rc rf__index_lsn_store(rf_index_t *ix, const rf_index_lsn_t *lsns, size_t n, rf_err_t *err);
/* Raises source's LSN in the stat_mu mirror to lsn.  Caller holds stat_mu. */
void rf__index_lsn_set_locked(rf_index_t *ix, const char *source, int64_t lsn);
/* Loads the stored LSNs into the mirror (writer connection, open only). */
rf_rc rf__index_lsn_load(rf_index_t *ix, rf_err_t *err);
/* Copies the mirror into pos->lsns.  Caller holds stat_mu. */
void rf__index_lsn_position_locked(rf_index_t *ix, rf_index_position_t *pos);
/* Frees the mirror (close). */
void rf__index_lsn_free(rf_index_t *ix);

/* ==== index_filter.c ==== */

/* The attribute blob of one record: its source, tenant, label, event time (0: none) and
 * the scalar top-level fields of its metadata JSON (arrays of scalars give one entry per
 * element).  Caller frees with free(); *len (may be NULL) its size. */
uint8_t *rf__index_attrs_encode(const char *source, const char *tenant, const char *label,
                                int64_t event_time_ms, const char *metadata_json, size_t *len);
size_t rf__index_attrs_len(const uint8_t *attrs);
/* Compiles f (borrowed for the call; the result copies what it needs).  RF_EINVAL names
 * the bad condition.  *out is NULL when f has no condition and no tenant. */
rf_rc rf__index_filter_compile(const rf_index_filter_t *f, rf__index_filter_t **out, rf_err_t *err);
void rf__index_filter_free(rf__index_filter_t *flt);
/* 1 when the record whose attribute blob is attrs satisfies flt. */
int rf__index_filter_match(const rf__index_filter_t *flt, const uint8_t *attrs);
/* Keys of a blob's entries (at most max), and of the values of condition i of a filter
 * (0 keys: the condition is a range, which no key can answer).  A record satisfies an
 * EQ/IN condition only if one of its keys is one of the condition's. */
size_t rf__index_attrs_keys(const uint8_t *attrs, uint64_t *out, size_t max);
size_t rf__index_filter_cond_cnt(const rf__index_filter_t *flt);
size_t rf__index_filter_cond_keys(const rf__index_filter_t *flt, size_t i, const uint64_t **keys);

/* An inverted index of a sealed segment's attribute keys: sorted distinct keys, each with
 * its iids (ascending) in post[off[i]..off[i+1]).  Built before the segment is published. */
struct rf__index_inv {
    uint64_t *keys;
    uint32_t *off; /* nkeys + 1 */
    uint32_t *post;
    size_t nkeys, npost;
};

/* ==== index_sq.c ==== */

/* What bounds the error of one vector's codes (index_sq.c). */
typedef struct rf__index_sqm {
    float d;  /* step: x ~ d * codes */
    float r;  /* ||x - d * codes||, rounded up */
    float xn; /* ||x||, rounded up */
    float c1; /* sum of |codes| */
} rf__index_sqm_t;

/* A query rounded to int16 (q ~ s * q) with what bounds that rounding; ok 0 when the
 * query has a value that is not finite (no bounds then). */
typedef struct rf__index_sqq {
    int16_t *q;
    int dim, ok;
    double s, qn, e, gam, tiny;
} rf__index_sqq_t;

void rf__index_sq_encode(const float *x, int dim, int8_t *codes, rf__index_sqm_t *m);
void rf__index_sq_query_init(rf__index_sqq_t *qq, const float *q, int dim);
void rf__index_sq_query_fini(rf__index_sqq_t *qq);
/* The integer dot product of a rounded query and codes (AVX2 when the CPU has it); _ref
 * is the plain loop, equal to it for every input. */
int32_t rf__index_sq_dot(const int16_t *q, const int8_t *c, int dim);
int32_t rf__index_sq_dot_ref(const int16_t *q, const int8_t *c, int dim);
/* [*lo, *hi] holds rf__index_dot(q, x) for the x whose codes and bounds these are. */
void rf__index_sq_bounds(const rf__index_sqq_t *qq, const int8_t *c, const rf__index_sqm_t *m,
                         double *lo, double *hi);

/* ==== index_segment.c ==== */

/* 1 when the CPU has AVX2 and FMA (asked once). */
int rf__index_avx2(void);
/* The dot product of two dim-vectors (AVX2 when the CPU has it). */
float rf__index_dot(const float *a, const float *b, int dim);
/* index_ivf.cpp: 1 when ann is an IVF-Flat index with inner product whose lists
 * index_search.c can scan itself, with its nlist and coarse centroids (nlist x dim,
 * borrowed); rf__index_ivf_list borrows list l: its size, vectors and ids. */
int rf__index_ivf_flat(const FaissIndex *ann, size_t *nlist, const float **centroids);
size_t rf__index_ivf_list(const FaissIndex *ann, size_t l, const float **vecs, const int64_t **ids);
/* An empty, trained IVF-Flat index (inner product) whose quantizer holds a copy of the
 * nlist x dim centroids; 0, or -1 when FAISS refused. */
int rf__index_ivf_with_centroids(int dim, size_t nlist, const float *centroids, FaissIndex **out);
/* index_hnsw.cpp: makes an inner-product HNSW index over flat vectors score them with
 * rf__index_dot (on) or with FAISS's own code (off); 1 done, 0 not such an index, -1 out
 * of memory.  Builds and loads turn it on; not while the index is in use. */
int rf__index_hnsw_simd(FaissIndex *ann, int on);
/* 1 when ann scores with rf__index_dot, 0 with FAISS's code, -1 not such an index. */
int rf__index_hnsw_is_simd(const FaissIndex *ann);
/* The qhash of an index (rf__index_seg_t.qhash): of its centroids when IVF-Flat, else 0. */
uint64_t rf__index_ann_qhash(const FaissIndex *ann);
/* Tests: != 0 makes searches of IVF-Flat views go through FAISS's own search. */
extern int rf__index_test_faiss_ivf;
/* Tests: != 0 makes flat views scan their floats only, not their codes first (atomic).
 * The counts of vectors the code scans bounded, and of those it scored from their floats
 * (atomic; index_search.c). */
extern int rf__index_test_sq_off;
extern int64_t rf__index_sq_scanned, rf__index_sq_rescored;

rf__index_snap_t *rf__index_snap_acquire(rf_index_t *ix);
void rf__index_snap_release(rf__index_snap_t *snap);
/* A search's release: a snapshot it held last goes to the reaper (inline if none runs). */
void rf__index_snap_drop(rf_index_t *ix, rf__index_snap_t *snap);
rf_rc rf__index_reaper_start(rf_index_t *ix, rf_err_t *err);
/* Stops the reaper and frees what it had not yet (no search may run). */
void rf__index_reaper_stop(rf_index_t *ix);
/* Names the calling thread and gives it ingest's CPUs (work_cpus) and priority: work_nice,
 * or background priority (rf_thread_background) when background != 0; returns its id. */
pid_t rf__index_work_thread(rf_index_t *ix, const char *name, int background);
static inline int rf__index_bit(const rf__index_bits_t *bits, size_t i)
{
    return (bits->b[i >> 3] >> (i & 7)) & 1;
}
/* Copies the vector of slot iid of a view's segment into out[dim]. */
rf_rc rf__index_seg_vector(const rf__index_seg_t *seg, size_t iid, float *out, rf_err_t *err);

/* Segment objects, for recovery.  seg_new makes a flat segment of cap slots with fresh
 * rows; seg_unref/bits_unref drop a reference (NULL ok). */
rf__index_seg_t *rf__index_seg_new_flat(int dim, uint32_t id, size_t cap);
/* Allocates a flat segment's codes for its cap slots; fills those of slots [from, to) from
 * its vectors (index_sq.c). */
void rf__index_seg_sq_alloc(rf__index_seg_t *seg);
void rf__index_seg_sq_fill(rf__index_seg_t *seg, size_t from, size_t to);
/* Makes the codes of an IVF-Flat segment's lists (nothing for another index). */
void rf__index_seg_ivf_codes(rf__index_seg_t *seg);
void rf__index_seg_unref(rf__index_seg_t *seg);
rf__index_bits_t *rf__index_bits_new(size_t nbits);
void rf__index_bits_unref(rf__index_bits_t *bits);
void rf__index_rows_unref(rf__index_rows_t *rows);

/* Replaces the index's snapshot with one made of views[0..cnt) (references taken over),
 * rebuilds the vid map from their live slots and publishes.  Open/recovery only. */
void rf__index_vec_install(rf_index_t *ix, rf__index_view_t *views, size_t cnt,
                           uint32_t next_seg_id);
/* Applies one committed batch under w_mu: tombstones every `rm` vid that is indexed, then
 * appends `adds` to the tail (sealing it when full), then publishes the new snapshot with
 * the position of store seq `seq` (and the offsets in the stat_mu mirror).  Takes
 * ownership of every adds[i].attrs.  Never fails (memory aside). */
void rf__index_vec_update(rf_index_t *ix, const int64_t *rm, size_t rm_n,
                          const rf__index_add_t *adds, size_t add_n, int64_t seq);
/* Gives vid's slot in `cur` the content-hash key hkey and puts the pair in the map; 0 when
 * vid is not in the vector index.  Open only (recovery, before any reader). */
int rf__index_vec_set_hkey(rf_index_t *ix, int64_t vid, uint64_t hkey);
/* Builds seg->inv from its rows (slots [0, seg->cap)); before the segment is published. */
void rf__index_seg_inv_build(rf__index_seg_t *seg);
/* The iids of seg whose attributes carry key (ascending), or 0. */
size_t rf__index_inv_lookup(const rf__index_inv_t *inv, uint64_t key, const uint32_t **iids);

/* Builds a whole new vector index for dimension dim from every record of the store (as
 * the writer connection sees it, so inside a transaction), aside: searches go on with
 * the current one.  replace_commit swaps it in as one snapshot (of generation gen);
 * replace_abort drops it.  Writer thread, with the maintenance and checkpoint threads
 * stopped; between begin and commit/abort the writer holds w_mu. */
typedef struct rf__index_repl rf__index_repl_t;
rf_rc rf__index_vec_replace_begin(rf_index_t *ix, int dim, rf__index_repl_t **out, rf_err_t *err);
void rf__index_vec_replace_commit(rf_index_t *ix, rf__index_repl_t *r, int64_t gen, int64_t seq);
void rf__index_vec_replace_abort(rf_index_t *ix, rf__index_repl_t *r);
/* Stops and restarts the background checkpoint thread (index_checkpoint.c). */
void rf__index_ckpt_thread_stop(rf_index_t *ix);
rf_rc rf__index_ckpt_thread_start(rf_index_t *ix, rf_err_t *err);

/* Seals the tail now (tests, bench, recovery). Writer thread. */
void rf__index_vec_seal(rf_index_t *ix);
/* Starts / stops the maintenance thread; kick wakes it; wait returns RF_OK once it has
 * nothing left to do (RF_ETIMEDOUT after timeout_ms). */
rf_rc rf__index_maint_start(rf_index_t *ix, rf_err_t *err);
void rf__index_maint_stop(rf_index_t *ix);
void rf__index_maint_kick(rf_index_t *ix);
rf_rc rf__index_maint_wait(rf_index_t *ix, int64_t timeout_ms);
/* Tests: hold != 0 keeps the slow builder from starting the job handed to it. */
void rf__index_test_slow_hold(rf_index_t *ix, int hold);
/* Builds `factory`'s index over n vectors (ids 0..n-1) and sets its search parameters;
 * an index that needs training trains on at most train_max of them (0: all).  *stop (may
 * be NULL) != 0 cancels between chunks (RF_ESTOPPED). */
rf_rc rf__index_ann_build(rf_index_t *ix, const char *factory, const float *vecs, size_t n,
                          size_t train_max, const int *stop, FaissIndex **out, rf_err_t *err);
/* Sets efSearch / nprobe on a built or loaded index before it is published. */
void rf__index_ann_tune(rf_index_t *ix, FaissIndex *ann);
/* What a commit does about the WAL (index_store.c), given the WAL's length in frames,
 * how many of them the thread's last pass copied, and whether a pass is running or asked
 * for (busy). */
enum {
    RF__WAL_NONE,     /* nothing */
    RF__WAL_KICK,     /* wake the thread */
    RF__WAL_TAIL,     /* copy the short tail the thread left (PASSIVE) */
    RF__WAL_ALL,      /* copy the rest (RESTART); if the thread is busy after all, go on */
    RF__WAL_ALL_WAIT, /* the same, waiting for a running pass first */
};
int rf__index_wal_action(const rf_index_t *ix, int64_t frames, int64_t copied, int busy);
/* Serialises a FAISS index into fp / reads one from memory. */
rf_rc rf__index_ann_write(FaissIndex *ann, FILE *fp, rf_err_t *err);
rf_rc rf__index_ann_load(const void *data, size_t len, int dim, FaissIndex **out, rf_err_t *err);
/* Live vids of the current snapshot, ascending (tests and checks).  *ids caller frees with
 * free(); *seq (may be NULL) the seq of the snapshot. */
rf_rc rf__index_vec_ids(rf_index_t *ix, int64_t **ids, size_t *n, int64_t *seq, rf_err_t *err);
/* Memory estimate of a snapshot's vector index, and its live and dead vector counts. */
void rf__index_snap_stats(rf_index_t *ix, const rf__index_snap_t *snap, int64_t *mem, int64_t *live,
                          int64_t *dead, int64_t *pending);

/* ==== index_search.c ==== */

void rf__index_hit_fini(rf_index_hit_t *h);
void rf__index_position_copy(rf_index_position_t *dst, const rf_index_position_t *src);

/* ==== index_checkpoint.c ==== */

/* Frees ix without writing a checkpoint: what a crash leaves behind, for tests.
 * Stops the threads, closes the store, releases the lock. NULL ok. */
void rf__index_abandon(rf_index_t *ix);
/* Publishes the position of `cur` to rf_index_position_get/wait.  Caller holds w_mu and
 * has just swapped `cur`. */
void rf__index_pos_publish_locked(rf_index_t *ix);

/* The checkpoint file name for seq under dir, and a segment file's; caller frees. */
char *rf__index_ckpt_path(const char *dir, int64_t seq);
char *rf__index_seg_path(const char *dir, uint32_t id);
/* Writes a FAISS segment's file (seg-<id>.seg, tmp + fsync + rename) and marks it persisted;
 * sets seg->ann_bytes, the size of its serialisation.  Before the segment is published
 * (maintenance thread) or from the checkpoint writer. */
rf_rc rf__index_seg_write(rf_index_t *ix, rf__index_seg_t *seg, rf_err_t *err);

#endif /* RF_INDEX_INT_H */
