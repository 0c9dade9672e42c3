/* index_checkpoint.c - opening and closing an index: the state-dir lock, recovery of the
 * vector index (newest valid checkpoint + changelog replay, or a full rebuild from the
 * store), checkpoint files and the background checkpoint thread.
 *
 * Upholds INVARIANT(index-is-a-view): a checkpoint is only a cache of the store, tagged
 * with the seq it reflects and verified by hash; a bad one costs time, never data, and
 * recovery never calls an embedding endpoint.  Threads: see index_int.h.
 */
#include "index/index.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "index/index_int.h"

/* ==== Checkpoint file format ==== */

/* A checkpoint is a 64-byte header then the FAISS serialisation of the index:
 *   0  magic "RFIDX001"          8 bytes
 *   8  format version            u32 little-endian
 *  12  dim                       u32
 *  16  store seq reflected       i64
 *  24  payload length            u64
 *  32  BLAKE2b-256 over bytes 0..31 and the payload
 * The hash covers the header fields too: a flipped seq would otherwise make recovery
 * replay from the wrong point. */
#define CKPT_MAGIC   "RFIDX001"
#define CKPT_VERSION 1u
#define CKPT_HDR     64

static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void ckpt_hash(const uint8_t *hdr, const uint8_t *payload, size_t len, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, hdr, 32);
    crypto_generichash_update(&st, payload, len);
    crypto_generichash_final(&st, out, 32);
}

char *rf__index_ckpt_path(const char *dir, int64_t seq)
{
    return rf_xasprintf("%s/index-%lld.ckpt", dir, (long long)seq);
}

/* Parses "index-<seq>.ckpt"; returns 1 and *seq on a match. */
static int ckpt_name_seq(const char *name, int64_t *seq)
{
    const char *p;
    char *end;
    long long v;
    if (strncmp(name, "index-", 6) != 0)
        return 0;
    p = name + 6;
    if (*p < '0' || *p > '9')
        return 0;
    errno = 0;
    v = strtoll(p, &end, 10);
    if (errno || strcmp(end, ".ckpt") != 0)
        return 0;
    *seq = v;
    return 1;
}

static int seq_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

/* The seqs of the checkpoint files in dir, newest first; caller frees.  Leftover
 * temporary files of an interrupted write are removed on the way when `sweep`. */
static int64_t *ckpt_list(const char *dir, size_t *n, int sweep)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int64_t *v = NULL, seq;
    size_t cnt = 0, cap = 0;
    *n = 0;
    if (!d)
        return NULL;
    while ((de = readdir(d))) {
        if (ckpt_name_seq(de->d_name, &seq)) {
            if (cnt == cap) {
                cap = cap ? cap * 2 : 8;
                v = rf_xrealloc(v, cap * sizeof(*v));
            }
            v[cnt++] = seq;
        } else if (sweep && strncmp(de->d_name, "index-", 6) == 0 &&
                   strstr(de->d_name, ".ckpt.tmp.")) {
            char *p = rf_xasprintf("%s/%s", dir, de->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
    if (cnt)
        qsort(v, cnt, sizeof(*v), seq_desc);
    *n = cnt;
    return v;
}

/* Keeps the checkpoint just written and the newest older one; removes the rest,
 * including any with a higher seq (left by another history of this store). */
static void ckpt_prune(rf_index_t *ix, int64_t keep_seq)
{
    size_t n, kept = 0;
    int64_t *v = ckpt_list(ix->dir, &n, 0);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == keep_seq || (v[i] < keep_seq && kept + 1 < RF__INDEX_CKPT_KEEP)) {
            if (v[i] != keep_seq)
                kept++;
            continue;
        }
        char *p = rf__index_ckpt_path(ix->dir, v[i]);
        if (unlink(p) == 0)
            RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "path=%s removed old checkpoint", p);
        free(p);
    }
    free(v);
}

/* Reads and verifies one checkpoint; *out is its vector index, *seq_out its seq. */
static rf_rc ckpt_load(rf_index_t *ix, int64_t name_seq, int64_t store_seq, FaissIndex **out,
                       int64_t *seq_out, rf_err_t *err)
{
    char *path = rf__index_ckpt_path(ix->dir, name_seq);
    uint8_t *map = MAP_FAILED, hash[32];
    size_t size = 0;
    uint64_t len;
    int64_t seq;
    struct stat sb;
    rf_rc rc = RF_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    if (fd < 0) {
        rc = rf_err_sys(err, RF_EIO, "open %s", path);
        goto out;
    }
    if (fstat(fd, &sb)) {
        rc = rf_err_sys(err, RF_EIO, "stat %s", path);
        goto out;
    }
    size = (size_t)sb.st_size;
    if (size < CKPT_HDR) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: %zu bytes, shorter than the header", path, size);
        goto out;
    }
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        rc = rf_err_sys(err, RF_EIO, "mmap %s", path);
        goto out;
    }
    seq = (int64_t)get_le(map + 16, 8);
    len = get_le(map + 24, 8);
    if (memcmp(map, CKPT_MAGIC, 8) != 0) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: bad magic", path);
    } else if (get_le(map + 8, 4) != CKPT_VERSION) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: format version %u, this build reads %u", path,
                        (unsigned)get_le(map + 8, 4), CKPT_VERSION);
    } else if (get_le(map + 12, 4) != (uint64_t)ix->dim) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: dim %u, store dim %d", path,
                        (unsigned)get_le(map + 12, 4), ix->dim);
    } else if (len != size - CKPT_HDR) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: payload length %" PRIu64 ", file holds %zu", path,
                        len, size - CKPT_HDR);
    } else if (seq != name_seq) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: header seq %lld differs from its name", path,
                        (long long)seq);
    } else if (seq > store_seq) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: seq %lld is ahead of the store (seq %lld)", path,
                        (long long)seq, (long long)store_seq);
    }
    if (rc)
        goto out;
    ckpt_hash(map, map + CKPT_HDR, (size_t)len, hash);
    if (sodium_memcmp(hash, map + 32, 32) != 0) {
        rc = rf_err_set(err, RF_ECORRUPT, "%s: hash mismatch", path);
        goto out;
    }
    if ((rc = rf__index_vec_load(map + CKPT_HDR, (size_t)len, ix->dim, out, err)))
        goto out;
    *seq_out = seq;
out:
    if (map != MAP_FAILED)
        munmap(map, size);
    if (fd >= 0)
        close(fd);
    free(path);
    return rc;
}

static int64_t vec_seq_get(rf_index_t *ix)
{
    int64_t v;
    pthread_rwlock_rdlock(&ix->vec_lock);
    v = ix->vec_broken ? -2 : ix->vec_seq;
    pthread_rwlock_unlock(&ix->vec_lock);
    return v;
}

static int64_t ckpt_seq_get(rf_index_t *ix)
{
    int64_t v;
    pthread_mutex_lock(&ix->stat_mu);
    v = ix->ckpt_seq;
    pthread_mutex_unlock(&ix->stat_mu);
    return v;
}

/* Writes a checkpoint of the current vector index.  Unless force, does nothing when
 * the index has not changed since the last checkpoint.  Any thread; ckpt_mu makes
 * writers take turns. */
static rf_rc ckpt_write(rf_index_t *ix, int force, rf_err_t *err)
{
    char *buf = NULL, *path = NULL;
    size_t len = 0;
    int64_t seq = 0, t0 = rf_mono_ms();
    uint8_t *hdr;
    rf_rc rc;
    pthread_mutex_lock(&ix->ckpt_mu);
    if (!force) {
        int64_t vs = vec_seq_get(ix);
        if (vs == -2 || vs == ckpt_seq_get(ix)) {
            rc = RF_OK;
            goto out;
        }
    }
    /* Serialising takes vec_lock shared (searches continue); hashing and writing happen
     * after it is released. */
    if ((rc = rf__index_vec_save(ix, CKPT_HDR, &buf, &len, &seq, err)))
        goto out;
    hdr = (uint8_t *)buf;
    memcpy(hdr, CKPT_MAGIC, 8);
    put_le(hdr + 8, CKPT_VERSION, 4);
    put_le(hdr + 12, (uint64_t)ix->dim, 4);
    put_le(hdr + 16, (uint64_t)seq, 8);
    put_le(hdr + 24, (uint64_t)(len - CKPT_HDR), 8);
    ckpt_hash(hdr, hdr + CKPT_HDR, len - CKPT_HDR, hdr + 32);
    path = rf__index_ckpt_path(ix->dir, seq);
    /* INVARIANT(index-is-a-view): tmp + fsync + rename, so a crash leaves either the old
     * set of checkpoints or a complete new one, never a torn file under the real name. */
    if ((rc = rf_file_write_atomic(path, buf, len, err)))
        goto out;
    pthread_mutex_lock(&ix->stat_mu);
    ix->ckpt_seq = seq;
    pthread_mutex_unlock(&ix->stat_mu);
    ckpt_prune(ix, seq);
    RF_LOG(RF_LOG_DEBUG, RF_MOD_INDEX, "seq=%lld bytes=%zu ms=%lld checkpoint written",
           (long long)seq, len, (long long)(rf_mono_ms() - t0));
out:
    pthread_mutex_unlock(&ix->ckpt_mu);
    free(path);
    free(buf);
    return rc;
}

/* ==== Recovery ==== */

static rf_rc scan_add(void *opaque, size_t n, const float *vecs, const int64_t *ids, rf_err_t *err)
{
    return rf__index_vec_add(opaque, n, vecs, ids, err);
}

/* Builds ix->vec: the newest valid checkpoint plus the changelog after it, or every
 * record when no checkpoint can be used.  Runs in rf_index_open, before other threads. */
static rf_rc recover(rf_index_t *ix, rf_err_t *err)
{
    int64_t t0 = rf_mono_ms(), store_seq = ix->wseq, ckpt_seq = -1, rows = 0, added = 0;
    int64_t *seqs, *vids = NULL;
    size_t n, vid_n = 0;
    FaissIndex *vec = NULL;
    rf_rc rc = RF_OK;

    seqs = ckpt_list(ix->dir, &n, 1);
    for (size_t i = 0; i < n && !vec; i++) {
        rf_err_t e;
        if (ckpt_load(ix, seqs[i], store_seq, &vec, &ckpt_seq, &e) == RF_OK)
            break;
        /* INVARIANT(index-is-a-view): a bad checkpoint is skipped, never fatal; the
         * older one or the store itself has everything. */
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX, "checkpoint skipped: %s", e.msg);
        ckpt_seq = -1;
    }
    free(seqs);
    if (vec) {
        if ((rc = rf__index_store_changed_vids(ix, ckpt_seq, &vids, &vid_n, &rows, err)))
            goto out;
        if (rows != store_seq - ckpt_seq) {
            /* The changelog after the checkpoint is incomplete (pruned): replaying it
             * would miss changes, so the store's records are the only safe source. */
            RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
                   "checkpoint_seq=%lld seq=%lld rows=%lld changelog after the checkpoint is"
                   " incomplete, rebuilding from records",
                   (long long)ckpt_seq, (long long)store_seq, (long long)rows);
            rf__index_vec_free(vec);
            vec = NULL;
            ckpt_seq = -1;
        }
    }
    if (vec) {
        /* Replay is idempotent: every vid the changelog touched after the checkpoint is
         * removed, then every record whose current version came after it is re-added
         * from the vectors stored with it (never re-embedded). */
        if ((rc = rf__index_vec_remove(vec, vid_n, vids, err)) ||
            (rc = rf__index_store_scan_records(ix, ckpt_seq, 4096, scan_add, vec, &added, err)))
            goto out;
    } else {
        if ((rc = rf__index_vec_new(ix->dim, &vec, err)) ||
            (rc = rf__index_store_scan_records(ix, -1, 4096, scan_add, vec, &added, err)))
            goto out;
        rows = store_seq;
    }
    ix->vec = vec;
    ix->vec_seq = store_seq;
    ix->ckpt_seq = ckpt_seq;
    vec = NULL;
    RF_LOG(RF_LOG_INFO, RF_MOD_INDEX,
           "seq=%lld checkpoint_seq=%lld replayed_rows=%lld readded=%lld vectors=%lld ms=%lld"
           " vector index recovered%s",
           (long long)store_seq, (long long)ckpt_seq, (long long)rows, (long long)added,
           (long long)faiss_Index_ntotal(ix->vec), (long long)(rf_mono_ms() - t0),
           ckpt_seq < 0 ? " (full rebuild from the store)" : "");
out:
    rf__index_vec_free(vec);
    free(vids);
    return rc;
}

/* ==== Background checkpoints ==== */

static void *ckpt_main(void *arg)
{
    rf_index_t *ix = arg;
    pthread_mutex_lock(&ix->thr_mu);
    while (!ix->thr_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(ix->ckpt_interval_ms / 1000);
        ts.tv_nsec += (long)(ix->ckpt_interval_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (!ix->thr_stop && pthread_cond_timedwait(&ix->thr_cond, &ix->thr_mu, &ts) == 0)
            ;
        if (ix->thr_stop)
            break;
        pthread_mutex_unlock(&ix->thr_mu);
        {
            rf_err_t e;
            if (ckpt_write(ix, 0, &e))
                RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
                       "checkpoint failed, retrying at the next interval: %s", e.msg);
        }
        pthread_mutex_lock(&ix->thr_mu);
    }
    pthread_mutex_unlock(&ix->thr_mu);
    return NULL;
}

static void thread_stop(rf_index_t *ix)
{
    if (!ix->thr_started)
        return;
    pthread_mutex_lock(&ix->thr_mu);
    ix->thr_stop = 1;
    pthread_cond_signal(&ix->thr_cond);
    pthread_mutex_unlock(&ix->thr_mu);
    pthread_join(ix->thr, NULL);
    ix->thr_started = 0;
}

/* ==== Open and close ==== */

static void teardown(rf_index_t *ix)
{
    thread_stop(ix);
    rf__index_store_close(ix);
    rf__index_vec_free(ix->vec);
    ix->vec = NULL;
    if (ix->lock_fd >= 0)
        close(ix->lock_fd); /* releases the flock */
    pthread_cond_destroy(&ix->thr_cond);
    pthread_mutex_destroy(&ix->thr_mu);
    rf_index_position_fini(&ix->pub);
    pthread_cond_destroy(&ix->pos_cond);
    pthread_mutex_destroy(&ix->pos_mu);
    pthread_mutex_destroy(&ix->ckpt_mu);
    pthread_rwlock_destroy(&ix->vec_lock);
    pthread_mutex_destroy(&ix->stat_mu);
    pthread_mutex_destroy(&ix->pool_mu);
    free(ix->db_path);
    free(ix->dir);
    free(ix);
}

/* One process per state dir: a second open (in any process) is refused while the
 * first holds the lock; the kernel drops it when the holder exits, even on a crash. */
static rf_rc dir_lock(rf_index_t *ix, rf_err_t *err)
{
    char *path = rf_xasprintf("%s/LOCK", ix->dir);
    rf_rc rc = RF_OK;
    ix->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (ix->lock_fd < 0) {
        rc = rf_err_sys(err, RF_EIO, "open %s", path);
    } else if (flock(ix->lock_fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            rc = rf_err_set(err, RF_EBUSY,
                            "state dir %s is in use by another ragfeed process (%s is locked)",
                            ix->dir, path);
        else
            rc = rf_err_sys(err, RF_EIO, "flock %s", path);
    }
    free(path);
    return rc;
}

rf_rc rf_index_open(const rf_index_opts_t *opts, rf_index_t **out, rf_err_t *err)
{
    rf_index_t *ix;
    pthread_condattr_t ca;
    rf_rc rc;
    if (out)
        *out = NULL;
    if (!opts || !opts->dir || !*opts->dir || !out)
        return rf_err_set(err, RF_EINVAL, "rf_index_open: NULL argument");
    if (opts->dim < 1 || opts->dim > RF__INDEX_DIM_MAX)
        return rf_err_set(err, RF_ECONFIG, "index dim=%d: must be 1..%d", opts->dim,
                          RF__INDEX_DIM_MAX);
    if (opts->checkpoint_interval_ms < 0)
        return rf_err_set(err, RF_ECONFIG, "checkpoint interval %lld ms: must be >= 0",
                          (long long)opts->checkpoint_interval_ms);
    if (sodium_init() < 0)
        return rf_err_set(err, RF_EUNAVAIL, "libsodium failed to initialise");
    ix = rf_xcalloc(1, sizeof(*ix));
    ix->dir = rf_xstrdup(opts->dir);
    ix->db_path = rf_xasprintf("%s/store.db", opts->dir);
    ix->dim = opts->dim;
    ix->ckpt_interval_ms = opts->checkpoint_interval_ms;
    ix->lock_fd = -1;
    ix->ckpt_seq = -1;
    pthread_mutex_init(&ix->pool_mu, NULL);
    pthread_mutex_init(&ix->stat_mu, NULL);
    pthread_rwlock_init(&ix->vec_lock, NULL);
    pthread_mutex_init(&ix->ckpt_mu, NULL);
    pthread_mutex_init(&ix->thr_mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&ix->thr_cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&ix->pos_mu, NULL);
    pthread_cond_init(&ix->pos_cond, NULL); /* realtime clock: pthread_cond_timedwait */

    if ((rc = rf_mkdirs(ix->dir, err)) || (rc = dir_lock(ix, err)) ||
        (rc = rf__index_store_open(ix, err)) || (rc = recover(ix, err)))
        goto out;
    pthread_rwlock_wrlock(&ix->vec_lock);
    rf__index_pos_publish_locked(ix);
    pthread_rwlock_unlock(&ix->vec_lock);
    if (ix->ckpt_interval_ms > 0) {
        if (pthread_create(&ix->thr, NULL, ckpt_main, ix)) {
            rc = rf_err_sys(err, RF_EIO, "start checkpoint thread");
            goto out;
        }
        ix->thr_started = 1;
    }
out:
    if (rc) {
        teardown(ix);
        return rc;
    }
    *out = ix;
    return RF_OK;
}

rf_rc rf_index_checkpoint(rf_index_t *ix, rf_err_t *err)
{
    if (!ix)
        return rf_err_set(err, RF_EINVAL, "rf_index_checkpoint: NULL index");
    return ckpt_write(ix, 1, err);
}

void rf_index_close(rf_index_t *ix)
{
    rf_err_t e;
    if (!ix)
        return;
    thread_stop(ix);
    if (ix->vec && ckpt_write(ix, 0, &e))
        RF_LOG(RF_LOG_WARN, RF_MOD_INDEX,
               "final checkpoint failed; the next open replays the changelog: %s", e.msg);
    teardown(ix);
}

void rf__index_abandon(rf_index_t *ix)
{
    if (ix)
        teardown(ix);
}
